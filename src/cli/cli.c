/* cli.c - helpers shared by the `portico` commands: subcommand dispatch, option parsing, errors,
 * files, tables. */
#include "cli/cli.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli_api.h"
#include "core/err.h"
#include "core/file.h"
#include "warehouse/wh.h"

int
pt_cli_error(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    char *p;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* One line, whatever the message holds (SQL errors may quote multi-line input). */
    for (p = msg; *p != '\0'; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    fprintf(stderr, "error: %s\n", msg);
    return PT_CLI_ERROR;
}

int
pt_cli_usage(const char *usage)
{
    fprintf(stderr, "usage: portico %s\n", usage);
    return PT_CLI_USAGE;
}

/* Is arg an option ("--name" or "--name=value", name of [a-z0-9-])? Anything else, such as
 * SQL starting with a "--" comment, is a positional argument. */
static int
is_option(const char *arg)
{
    const char *p;

    if (strncmp(arg, "--", 2) != 0 || !islower((unsigned char)arg[2]))
        return 0;
    for (p = arg + 2; *p != '\0' && *p != '='; p++)
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '-'))
            return 0;
    return 1;
}

int
pt_cli_parse(int argc, char **argv, const pt_cli_opt *opts, char **pos, int min_pos, int max_pos,
             int *npos, const char *usage)
{
    int i, n = 0, only_pos = 0;

    for (i = 0; i < argc; i++) {
        const char *arg = argv[i];
        const pt_cli_opt *o;
        const char *eq;
        size_t namelen;

        if (!only_pos && strcmp(arg, "--") == 0) {
            only_pos = 1;
            continue;
        }
        if (!only_pos && (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)) {
            printf("usage: portico %s\n", usage);
            return -1;
        }
        if (only_pos || !is_option(arg)) {
            if (n == max_pos)
                return pt_cli_usage(usage);
            pos[n++] = argv[i];
            continue;
        }
        eq = strchr(arg, '=');
        namelen = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
        for (o = opts; o != NULL && o->name != NULL; o++)
            if (strlen(o->name) == namelen && strncmp(o->name, arg, namelen) == 0)
                break;
        if (o == NULL || o->name == NULL)
            return pt_cli_error("unknown option '%.*s' (usage: portico %s)", (int)namelen, arg,
                                usage);
        if (!o->takes_value) {
            if (eq != NULL)
                return pt_cli_error("%s takes no value", o->name);
            *o->value = "";
            continue;
        }
        const char *v;
        if (eq != NULL)
            v = eq + 1;
        else if (i + 1 < argc)
            v = argv[++i];
        else
            return pt_cli_error("%s needs a value", o->name);
        if (o->takes_value != PT_CLI_LIST) {
            *o->value = v;
        } else {
            if (*o->nlist >= o->maxlist)
                return pt_cli_error("too many %s options (at most %d)", o->name, o->maxlist);
            o->list[(*o->nlist)++] = v;
        }
    }
    if (n < min_pos)
        return pt_cli_usage(usage);
    *npos = n;
    return 0;
}

const pt_cli_sub *
pt_cli_sub_find(const pt_cli_sub *subs, const char *name)
{
    const pt_cli_sub *s;

    for (s = subs; s->name != NULL; s++)
        if (strcmp(name, s->name) == 0 || (s->alias != NULL && strcmp(name, s->alias) == 0))
            return s;
    return NULL;
}

/* The running command's name, "user.token.create" (see pt_cli_api_command). */
static char command[128];

int
pt_cli_dispatch(const char *group, const char *usage, const pt_cli_sub *subs, const char *datadir,
                int argc, char **argv)
{
    const pt_cli_sub *s;

    if (argc == 0)
        return pt_cli_usage(usage);
    if (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0 ||
        strcmp(argv[0], "help") == 0) {
        printf("usage: portico %s\n", usage);
        return PT_CLI_OK;
    }
    s = pt_cli_sub_find(subs, argv[0]);
    if (s == NULL) {
        /* fprintf, not pt_cli_error: the name is echoed as given, newlines and all. */
        fprintf(stderr, "error: unknown command '%s %s' (usage: portico %s)\n", group, argv[0],
                usage);
        return PT_CLI_USAGE;
    }
    snprintf(command, sizeof command, "%s %s", group, s->name);
    if (pt_cli_api_server() != NULL && s->remote == 0)
        return pt_cli_api_local_only(command);
    for (char *p = command; *p != '\0'; p++)
        if (*p == ' ')
            *p = '.';
    pt_cli_api_command(command);
    return s->fn(datadir, argc - 1, argv + 1);
}

int
pt_cli_need_datadir(const char *datadir)
{
    struct stat sb;

    if (stat(datadir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return pt_cli_error("no data dir at %s (run 'portico init')", datadir);
    if (!pt_store_exists(datadir))
        return pt_cli_error("no data dir at %s (run 'portico init')", datadir);
    return 0;
}

/* Turns libpq's multi-line messages ("...failed: Connection refused\n\tIs the server
 * running...") into one line: every run of white space becomes one space. */
static void
one_line(char *s)
{
    char *start = s, *w = s;
    int pending = 0;

    for (; *s != '\0'; s++) {
        if (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r') {
            pending = 1;
            continue;
        }
        if (pending && w > start)
            *w++ = ' ';
        pending = 0;
        *w++ = *s;
    }
    *w = '\0';
}

/* Is dsn a PostgreSQL connection string: a postgres:// or postgresql:// URI, or libpq's
 * key=value form (anything without "://")? */
static int
looks_postgres(const char *dsn)
{
    return strncmp(dsn, "postgresql://", 13) == 0 || strncmp(dsn, "postgres://", 11) == 0 ||
           strstr(dsn, "://") == NULL;
}

int
pt_cli_check_pg_dsn(const char *dsn, const char *opt, const char *what, char *shown, size_t shownsz)
{
    char err[512];

    if (dsn[0] == '\0' || !looks_postgres(dsn))
        return pt_cli_error("%s takes a PostgreSQL connection string "
                            "(postgresql://USER@HOST/DB or 'host=... dbname=...')",
                            opt);
    pt_wh_dsn_redact(dsn, shown, shownsz);
    if (pt_wh_pg_check(dsn, err, sizeof err) != 0) {
        one_line(err);
        return pt_cli_error("cannot use %s as %s: %s", shown, what, err);
    }
    return 0;
}

int
pt_cli_open_store(const char *datadir, pt_store **st)
{
    char err[512];

    *st = NULL;
    if (pt_cli_need_datadir(datadir) != 0)
        return PT_CLI_ERROR;
    if (pt_store_open(datadir, st, err, sizeof err) != 0)
        return pt_cli_error("%s", err);
    return 0;
}

int
pt_cli_read_file(const char *path, size_t max, char **data, size_t *len)
{
    char err[256];

    if (pt_file_read(path, max, data, len, err, sizeof err) != 0)
        return pt_cli_error("cannot read %s: %s", path, err);
    return 0;
}

int
pt_cli_parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    long v;

    if (s == NULL || !(isdigit((unsigned char)s[0]) || s[0] == '-'))
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

void
pt_cli_format_time(int64_t t, char *out, size_t outsz)
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (gmtime_r(&tt, &tm) == NULL || strftime(out, outsz, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
        snprintf(out, outsz, "%lld", (long long)t);
}

int
pt_cli_scope(const char *const *list, int n, char *out, size_t outsz)
{
    size_t o = 0;

    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        const char *p = list[i];
        while (*p != '\0') {
            const char *end = strchr(p, ',');
            size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
            char name[80];
            if (len == 0 || len >= sizeof name)
                return pt_cli_error("invalid --endpoint '%s' (endpoint names, comma-separated)",
                                    list[i]);
            memcpy(name, p, len);
            name[len] = '\0';
            if (!pt_store_name_valid(name))
                return pt_cli_error("invalid endpoint name '%s'", name);
            if (o + len + 2 > outsz)
                return pt_cli_error("too many endpoints in the scope");
            if (o > 0)
                out[o++] = ' ';
            memcpy(out + o, name, len + 1);
            o += len;
            p += len;
            if (*p == ',')
                p++;
        }
    }
    return 0;
}

void
pt_cli_scope_display(const char *scope, char *out, size_t outsz)
{
    size_t i;

    if (scope == NULL || scope[0] == '\0') {
        snprintf(out, outsz, "all");
        return;
    }
    snprintf(out, outsz, "%s", scope);
    for (i = 0; out[i] != '\0'; i++)
        if (out[i] == ' ')
            out[i] = ',';
}

/* Creates dir and its missing parents (parents 0755, dir itself `mode`); an existing
 * directory is left as it is. Returns 0 or -1 with errno set. */
int
pt_cli_mkdir_p(const char *dir, unsigned mode)
{
    char path[4096];
    struct stat sb;
    size_t len = strlen(dir);
    char *p;

    if (len == 0 || len >= sizeof path) {
        errno = len == 0 ? ENOENT : ENAMETOOLONG;
        return -1;
    }
    memcpy(path, dir, len + 1);
    while (len > 1 && path[len - 1] == '/')
        path[--len] = '\0';
    for (p = path + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(path, (mode_t)mode) != 0) {
        if (errno != EEXIST)
            return -1;
        if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
            errno = ENOTDIR;
            return -1;
        }
    }
    return 0;
}

/* ---- tables ------------------------------------------------------------------------------- */

struct pt_cli_table {
    size_t ncols;
    char **cells; /* row-major, each owned */
    size_t n;
    size_t cap;
};

pt_cli_table *
pt_cli_table_new(size_t ncols)
{
    pt_cli_table *t = calloc(1, sizeof *t);

    if (t != NULL)
        t->ncols = ncols > 0 ? ncols : 1;
    return t;
}

pt_cli_table *
pt_cli_table_new_header(size_t ncols, const char *const *head)
{
    pt_cli_table *t = pt_cli_table_new(ncols);
    size_t i;

    for (i = 0; t != NULL && i < ncols; i++)
        if (pt_cli_table_adds(t, head[i]) != 0) {
            pt_cli_table_free(t);
            t = NULL;
        }
    return t;
}

void
pt_cli_table_free(pt_cli_table *t)
{
    size_t i;

    if (t == NULL)
        return;
    for (i = 0; i < t->n; i++)
        free(t->cells[i]);
    free(t->cells);
    free(t);
}

int
pt_cli_table_add(pt_cli_table *t, const char *cell, size_t n)
{
    char *copy;

    if (t->n == t->cap) {
        size_t ncap = t->cap != 0 ? t->cap * 2 : 64;
        char **nc = realloc(t->cells, ncap * sizeof *nc);
        if (nc == NULL)
            return PT_ENOMEM;
        t->cells = nc;
        t->cap = ncap;
    }
    copy = malloc(n + 1);
    if (copy == NULL)
        return PT_ENOMEM;
    memcpy(copy, cell, n);
    copy[n] = '\0';
    t->cells[t->n++] = copy;
    return 0;
}

int
pt_cli_table_adds(pt_cli_table *t, const char *cell)
{
    return pt_cli_table_add(t, cell, strlen(cell));
}

int
pt_cli_table_add_time(pt_cli_table *t, int64_t when, const char *none)
{
    char buf[64];

    if (when == 0)
        return pt_cli_table_adds(t, none);
    pt_cli_format_time(when, buf, sizeof buf);
    return pt_cli_table_adds(t, buf);
}

/* Display width of UTF-8 text: one per character (continuation bytes do not count). */
static size_t
text_width(const char *s)
{
    size_t w = 0;

    for (; *s != '\0'; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            w++;
    return w;
}

void
pt_cli_table_print(const pt_cli_table *t, FILE *f, int rule)
{
    size_t *width = calloc(t->ncols, sizeof *width);
    size_t i, c;

    if (width == NULL)
        return;
    for (i = 0; i < t->n; i++) {
        size_t w = text_width(t->cells[i]);
        if (w > width[i % t->ncols])
            width[i % t->ncols] = w;
    }
    for (i = 0; i < t->n; i++) {
        c = i % t->ncols;
        fputs(t->cells[i], f);
        if (c + 1 < t->ncols && i + 1 < t->n) {
            fprintf(f, "%*s", (int)(width[c] - text_width(t->cells[i]) + 2), "");
            continue;
        }
        fputc('\n', f);
        if (rule && i + 1 == t->ncols) {
            for (c = 0; c < t->ncols; c++) {
                size_t k;
                for (k = 0; k < width[c]; k++)
                    fputc('-', f);
                if (c + 1 < t->ncols)
                    fputs("  ", f);
            }
            fputc('\n', f);
        }
    }
    free(width);
}
