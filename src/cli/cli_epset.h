/* cli_epset.h - the per-endpoint settings flags of `endpoint add|set` (--timeout,
 * --max-concurrency, --queue-wait, --cache, --max-body, --cors and their --no-* forms): parsed
 * into the admin API's "settings" object (admin/admin_epset.h), and printed by show and list. */
#ifndef PT_CLI_EPSET_H
#define PT_CLI_EPSET_H

#include <jansson.h>
#include <stddef.h>

#include "cli/cli.h"

/* The flags' values as given (borrowed from argv), NULL when not given. */
typedef struct pt_cli_epset {
    const char *timeout, *max_concurrency, *queue_wait, *cache, *max_body, *cors;
    const char *no_cache, *no_cors;
} pt_cli_epset;

#define PT_CLI_EPSET_NOPTS 8 /* entries pt_cli_epset_opts writes */
#define PT_CLI_EPSET_USAGE                                                                         \
    "[--timeout 5s|default] [--max-concurrency N|default] [--queue-wait 200ms|default] "           \
    "[--cache 30s|--no-cache] [--max-body 1MiB|default] [--cors ORIGIN,...|*|--no-cors]"

/* Writes the PT_CLI_EPSET_NOPTS option entries that fill e into opts (e must outlive the
 * parse). */
void pt_cli_epset_opts(pt_cli_epset *e, pt_cli_opt *opts);
/* Whether any settings flag was given. */
int pt_cli_epset_given(const pt_cli_epset *e);
/* Checks the flags and adds the "settings" object to body (borrowed) when any was given.
 * Returns 0, or PT_CLI_ERROR with an error naming the flag printed. */
int pt_cli_epset_body(const pt_cli_epset *e, json_t *body);
/* "timeout=5s cache=30s cors=https://a.example" from an endpoint's JSON, "-" when none, into
 * out. */
void pt_cli_epset_summary(json_t *ep, char *out, size_t outsz);
/* Prints the settings lines of `endpoint show` from an endpoint's JSON. */
void pt_cli_epset_print(json_t *ep);

#endif
