/* cli.h - the `portico` commands (one file per group: cli_init.c, cli_script.c, ...) and the
 * argument, error and table helpers they share (cli.c). */
#ifndef PT_CLI_H
#define PT_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "store/store.h"

/* Exit statuses: 0 success, 1 an error (one "error: ..." line on stderr), 2 a usage error
 * (a "usage: ..." line on stderr). */
enum { PT_CLI_OK = 0, PT_CLI_ERROR = 1, PT_CLI_USAGE = 2 };

/* Every command gets the data dir (borrowed) and the arguments after its name (argv[0] is the
 * first argument), and returns the process exit status. */
int pt_cli_init(const char *datadir, int argc, char **argv);
int pt_cli_script(const char *datadir, int argc, char **argv);
int pt_cli_endpoint(const char *datadir, int argc, char **argv);
int pt_cli_db(const char *datadir, int argc, char **argv);
int pt_cli_run(const char *datadir, int argc, char **argv);
int pt_cli_runs(const char *datadir, int argc, char **argv);
int pt_cli_serve(const char *datadir, int argc, char **argv);
int pt_cli_token(const char *datadir, int argc, char **argv);
int pt_cli_apikey(const char *datadir, int argc, char **argv);
int pt_cli_secret(const char *datadir, int argc, char **argv);
int pt_cli_auth(const char *datadir, int argc, char **argv);
int pt_cli_webhook(const char *datadir, int argc, char **argv);
int pt_cli_user(const char *datadir, int argc, char **argv);
int pt_cli_audit(const char *datadir, int argc, char **argv);
int pt_cli_nodes(const char *datadir, int argc, char **argv);
int pt_cli_logs(const char *datadir, int argc, char **argv);
int pt_cli_export(const char *datadir, int argc, char **argv);
int pt_cli_apply(const char *datadir, int argc, char **argv);
int pt_cli_store(const char *datadir, int argc, char **argv);

/* One subcommand of a command group ("script rm"), or one command of main.c: its name,
 * another name for it or NULL ("ls" for "list"), and the function that runs it with the
 * arguments after its name. Tables of them end with an entry whose name is NULL. */
typedef struct pt_cli_sub {
    const char *name;
    const char *alias;
    int (*fn)(const char *datadir, int argc, char **argv);
    int remote; /* 0: no admin API route yet, refused with --server; PT_CLI_REMOTE: works
                   through cli_api.h in both modes; PT_CLI_LOCAL: always on the data dir */
} pt_cli_sub;

enum { PT_CLI_REMOTE = 1, PT_CLI_LOCAL = 2 };

/* Returns the entry of subs whose name or alias is name (borrowed from subs), or NULL. */
const pt_cli_sub *pt_cli_sub_find(const pt_cli_sub *subs, const char *name);
/* Runs the subcommand argv[0] of a command group (group is "script", usage the part after
 * "usage: portico "), and returns its exit status. No argument prints the usage on stderr
 * (PT_CLI_USAGE); "--help", "-h" or "help" print it on stdout (PT_CLI_OK); a name not in
 * subs prints "error: unknown command 'GROUP NAME' (usage: ...)" (PT_CLI_USAGE). With
 * --server, a subcommand whose `remote` is 0 is refused (pt_cli_api_local_only). Sets the
 * command's name ("script.add") for the audit log (pt_cli_api_command). */
int pt_cli_dispatch(const char *group, const char *usage, const pt_cli_sub *subs,
                    const char *datadir, int argc, char **argv);

/* takes_value of an option that may be given several times ("--endpoint a --endpoint b"). */
#define PT_CLI_LIST 2

/* One option of a command: "--path" with a value, a flag, or a repeatable option. */
typedef struct pt_cli_opt {
    const char *name;   /* "--path" */
    int takes_value;    /* 1: "--path P" or "--path=P"; 0: a flag; PT_CLI_LIST: repeatable */
    const char **value; /* set to the value (borrowed from argv), or to "" for a flag */
    const char **list;  /* PT_CLI_LIST: the values in order (room for maxlist), count in *nlist */
    int *nlist;
    int maxlist;
} pt_cli_opt;

/* Parses argv against opts (options may come anywhere; "--" ends them) and stores the other
 * arguments in pos (borrowed). Between min_pos and max_pos positional arguments are accepted.
 * Returns 0; or prints the error and returns the exit status (PT_CLI_ERROR for an unknown
 * option or a missing value, PT_CLI_USAGE for a wrong argument count); or, for --help, prints
 * the usage on stdout and returns -1 (the caller exits with 0). usage is the part after
 * "usage: portico ". */
int pt_cli_parse(int argc, char **argv, const pt_cli_opt *opts, char **pos, int min_pos,
                 int max_pos, int *npos, const char *usage);

/* Prints "error: <message>" on stderr; returns PT_CLI_ERROR. */
int pt_cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "usage: portico <usage>" on stderr; returns PT_CLI_USAGE. */
int pt_cli_usage(const char *usage);

/* Checks that datadir is an initialised data dir; prints the error otherwise. Returns 0 or
 * PT_CLI_ERROR. */
int pt_cli_need_datadir(const char *datadir);
/* pt_cli_need_datadir, then opens the store. Returns 0 (caller frees *st with
 * pt_store_close) or PT_CLI_ERROR (error printed). */
int pt_cli_open_store(const char *datadir, pt_store **st);

/* Text tables with aligned columns (widths counted in UTF-8 characters). */
typedef struct pt_cli_table pt_cli_table;

/* Checks a PostgreSQL DSN given with option opt ("--store") before anything is made with it:
 * its form, then a connection (warehouse/wh.h). shown gets the DSN with its password masked,
 * for messages. Returns 0, or PT_CLI_ERROR with one line printed ("cannot use SHOWN as WHAT:
 * libpq's reason"). dsn, opt and what are borrowed. */
int pt_cli_check_pg_dsn(const char *dsn, const char *opt, const char *what, char *shown,
                        size_t shownsz);

/* Reads a whole file (NUL-terminated; at most max bytes). Returns 0 (caller frees *data) or
 * PT_CLI_ERROR with "error: cannot read PATH: reason" printed. */
int pt_cli_read_file(const char *path, size_t max, char **data, size_t *len);
/* Creates dir and its missing parents (parents 0755, dir itself `mode`); an existing
 * directory is left as it is. Returns 0 or -1 with errno set. */
int pt_cli_mkdir_p(const char *dir, unsigned mode);
/* Parses a whole decimal number in [min, max]. Returns 0 or -1. */
int pt_cli_parse_long(const char *s, long min, long max, long *out);
/* Formats unix time t as "2026-11-29 02:43:49 UTC" into out. */
void pt_cli_format_time(int64_t t, char *out, size_t outsz);

/* Joins the endpoint names of repeated --endpoint options (each may also be a comma-separated
 * list) into a store scope ("a b"); an empty list gives "" (every endpoint). Returns 0, or
 * prints the error and returns PT_CLI_ERROR for an invalid name or too long a list. */
int pt_cli_scope(const char *const *list, int n, char *out, size_t outsz);
/* Formats a store scope for display: "a,b", or "all" when empty. */
void pt_cli_scope_display(const char *scope, char *out, size_t outsz);

/* Returns a table of ncols columns, or NULL when out of memory. Free with
 * pt_cli_table_free. */
pt_cli_table *pt_cli_table_new(size_t ncols);
/* pt_cli_table_new, with head[0..ncols) (copied) as the first row. Returns NULL when out of
 * memory; caller frees with pt_cli_table_free. */
pt_cli_table *pt_cli_table_new_header(size_t ncols, const char *const *head);
void pt_cli_table_free(pt_cli_table *t); /* NULL is a no-op */
/* Appends one cell (copied; n bytes), filling rows left to right. Returns 0 or PT_ENOMEM. */
int pt_cli_table_add(pt_cli_table *t, const char *cell, size_t n);
int pt_cli_table_adds(pt_cli_table *t, const char *cell);
/* Appends a time cell ("2026-11-29 02:43:49 UTC"), or `none` when t is 0. */
int pt_cli_table_add_time(pt_cli_table *t, int64_t when, const char *none);
/* Prints the table; the first row is the header, underlined with dashes when rule is set. */
void pt_cli_table_print(const pt_cli_table *t, FILE *f, int rule);

#endif
