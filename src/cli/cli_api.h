/* cli_api.h - the CLI as a client of the admin API: a command builds one call (method, path,
 * JSON body) and prints the JSON answer; the transport is in-process against the data dir's
 * store (no --server) or HTTP to a running server's admin listener (--server URL or
 * $PORTICO_SERVER, with $PORTICO_TOKEN as the Bearer token). Both print from the same JSON,
 * so the output and the exit statuses are the same in both modes. */
#ifndef PT_CLI_API_H
#define PT_CLI_API_H

#include <stddef.h>

#include <jansson.h>

/* The answer to one call. */
typedef struct pt_cli_reply {
    int status;   /* the HTTP status (200, 201, 404, ...) */
    json_t *body; /* the JSON answer (owned), or NULL */
    char *raw;    /* a non-JSON answer (text/x-diff; owned, NUL-terminated), or NULL */
    size_t raw_len;
} pt_cli_reply;

void pt_cli_reply_clear(pt_cli_reply *r);

/* Sets the server the commands go to (main.c): server from --server, or NULL for
 * $PORTICO_SERVER; an empty value means the data dir. token NULL means $PORTICO_TOKEN. Both
 * borrowed for the process's life. */
void pt_cli_api_setup(const char *server, const char *token);
/* The server's URL when the CLI runs remotely (borrowed), else NULL. */
const char *pt_cli_api_server(void);
/* Sets the name of the running command ("user.add", "script.rm"), the action of the audit
 * entries of in-process changes (static or borrowed for the process's life). */
void pt_cli_api_command(const char *name);

/* Makes one admin API call: method, path below /_portico/admin/v1 (segments already escaped,
 * see pt_cli_api_path), query (an object of strings) and body; query and body are stolen
 * (NULL for none). Returns 0 with *out filled and a 2xx status; or, for a refusal, prints it
 * as "error: <message>" and returns PT_CLI_ERROR (out cleared); the same for an unreachable
 * server or a missing token. */
int pt_cli_api(const char *datadir, const char *method, const char *path, json_t *query,
               json_t *body, pt_cli_reply *out);
/* pt_cli_api without the printing: returns 0 with *out filled whatever the status (the
 * caller looks at out->status), or PT_CLI_ERROR (printed) when no answer came. */
int pt_cli_api_raw(const char *datadir, const char *method, const char *path, json_t *query,
                   json_t *body, pt_cli_reply *out);
/* Follows the event stream at path (below the prefix) with query (stolen) on the server
 * (remote mode only): on_event gets each event's data as it comes (see pt_cli_http_events).
 * Returns 0 when the stream ends or on_event stops it, or the exit status of a refusal or a
 * broken connection (printed). */
int pt_cli_api_events(const char *path, json_t *query,
                      int (*on_event)(const char *data, size_t n, void *ctx), void *ctx);
/* Prints the error of a refused reply ("error: <message>") and returns its exit status. */
int pt_cli_api_error(const pt_cli_reply *r);

/* Builds a path below the prefix from NULL-terminated segments, each percent-encoded:
 * pt_cli_api_path(out, sizeof out, "scripts", name, "versions", NULL) -> "/scripts/a%20b/versions".
 * Returns 0, or -1 when out is too small. */
int pt_cli_api_path(char *out, size_t outsz, ...) __attribute__((sentinel));

/* The refusal of a command that has no admin API route yet, in remote mode: prints
 * "error: 'NAME' is not available remotely yet (...)" and returns PT_CLI_USAGE. */
int pt_cli_api_local_only(const char *name);

/* ---- printing list answers as tables (every `list` command) ---- */

/* How a column's cell is made from a member of a row object. */
enum pt_cli_col_kind {
    PT_CLI_COL_TEXT = 0, /* a string as it is, or an integer in decimal */
    PT_CLI_COL_TIME,     /* unix seconds as "2026-11-29 02:43:49 UTC" */
    PT_CLI_COL_TIME_MS,  /* unix milliseconds, likewise */
    PT_CLI_COL_LIST,     /* an array of strings joined with ',' */
    PT_CLI_COL_JSON,     /* any JSON value, compact */
    PT_CLI_COL_FN,       /* what `format` writes from the whole row (field unused) */
};

/* One column of a list: its header, the row member it shows, how, the cell when the member
 * is missing, null, "", 0 or [] (NULL: ""), text appended to a present value (or NULL), and
 * for PT_CLI_COL_FN the function that writes the cell from the row (borrowed) into out (at
 * most outsz bytes, NUL-terminated; "" counts as missing). */
typedef struct pt_cli_col {
    const char *head;
    const char *field;
    enum pt_cli_col_kind kind;
    const char *none;
    const char *suffix;
    void (*format)(json_t *row, char *out, size_t outsz);
} pt_cli_col;

/* Prints the array `member` of body (borrowed), one row per object, as a table with the
 * header cols[0..ncols).head (underlined when rule). Returns 0 or PT_CLI_ERROR (printed). */
int pt_cli_api_table(json_t *body, const char *member, const pt_cli_col *cols, size_t ncols,
                     int rule);
/* The `GROUP list` commands: parses argv for no arguments (usage as for pt_cli_parse), GETs
 * path and prints its array `member` with pt_cli_api_table. Returns the exit status. */
int pt_cli_api_list_cmd(const char *datadir, int argc, char **argv, const char *usage,
                        const char *path, const char *member, const pt_cli_col *cols, size_t ncols);
/* The commands that are one call on one name ("token revoke ID", "secret rm NAME"): parses
 * argv for exactly that argument, sends method to /collection/NAME (collection as it is,
 * "webhooks/sources"; NAME percent-encoded) and prints
 * "<before>NAME<after>". Returns the exit status. */
int pt_cli_api_name_cmd(const char *datadir, int argc, char **argv, const char *usage,
                        const char *method, const char *collection, const char *before,
                        const char *after);

/* Adds "endpoints" (the names of repeated --endpoint options, see pt_cli_scope) and "rate"
 * (NULL: none) to body (borrowed), checked as the CLI always did: the body of `token create`
 * and `apikey create` (cli_token.c). 0, or the exit status with the error printed. */
int pt_cli_limits_body(json_t *body, const char *const *endpoints, int nendpoints,
                       const char *rate);

/* Sets the CA file (PEM) that https:// servers' certificates are verified against (main.c,
 * --cacert; borrowed for the process's life). NULL: $PORTICO_CA_FILE, else the system's
 * store. */
void pt_cli_http_cafile(const char *path);

/* One HTTP/1.1 exchange (cli_http.c): sends method to url (http[s]://host[:port]/path?query)
 * with the Bearer token (NULL: none) and body[0..body_len) as application/json (NULL: none);
 * fills *status, *resp (malloc'd, NUL-terminated, caller frees), *resp_len and whether the
 * answer is JSON. Returns 0, or -1 with a one-line reason in err. */
int pt_cli_http(const char *url, const char *token, const char *method, const char *body,
                size_t body_len, int *status, char **resp, size_t *resp_len, int *is_json,
                char *err, size_t errsz);

/* A live event stream (Server-Sent Events, cli_http.c): GETs url with the Bearer token and
 * calls on_event(data, n, ctx) with the data of each event (NUL-terminated) as it comes, for
 * as long as the server sends (no timeout) or until on_event returns non-zero. Fills *status;
 * a refusal (not 200) comes back whole in *resp (malloc'd, caller frees) as pt_cli_http
 * gives it. Returns 0, or -1 with a one-line reason in err. */
int pt_cli_http_events(const char *url, const char *token,
                       int (*on_event)(const char *data, size_t n, void *ctx), void *ctx,
                       int *status, char **resp, size_t *resp_len, char *err, size_t errsz);

#endif
