/* store.h - the metadata store: scripts and their versions, endpoints, warehouse connections.
 *
 * One interface, several drivers: store_sqlite.c (embedded, WAL, the default) and later a
 * PostgreSQL driver for several nodes sharing one database. Every mutating call commits before
 * it returns and then bumps the change counter (changes.h) so that running workers reload on
 * their next request. Not thread-safe: one pt_store per thread. */
#ifndef PT_STORE_H
#define PT_STORE_H

#include <stddef.h>
#include <stdint.h>

typedef struct pt_store pt_store;

/* Opens (creating if needed) the store of data dir `datadir`. On error returns a pt_err and
 * writes a one-line reason into err. Caller frees with pt_store_close. */
int pt_store_open(const char *datadir, pt_store **out, char *err, size_t errsz);
void pt_store_close(pt_store *st); /* NULL is a no-op */
/* The driver's last error message (borrowed, valid until the next call). */
const char *pt_store_errmsg(pt_store *st);

/* Names of scripts, endpoints and connections: [A-Za-z0-9_][A-Za-z0-9_.-]{0,63}. */
int pt_store_name_valid(const char *name);

typedef struct pt_script {
    char *name;
    int version;  /* 1, 2, ... */
    int current;  /* the version endpoints run */
    char *source; /* NUL-terminated UTF-8 */
    size_t source_len;
    int64_t created; /* unix seconds */
} pt_script;
void pt_script_free(pt_script *s); /* NULL is a no-op */

/* Stores source as a new version of script `name` (creating the script) and makes it current.
 * Returns 0 and the version in *version, or a pt_err. Version numbers are never reused, even
 * after pt_store_script_rm (workers cache compiled scripts by name and version). */
int pt_store_script_put(pt_store *st, const char *name, const char *source, size_t len,
                        int *version);
/* Fetches version `version` of a script, or its current version when version is 0.
 * Returns 0, PT_ENOTFOUND. Caller frees *out with pt_script_free. */
int pt_store_script_get(pt_store *st, const char *name, int version, pt_script **out);
/* Makes `version` current (0: the version before the current one). PT_ENOTFOUND, PT_EINVAL. */
int pt_store_script_rollback(pt_store *st, const char *name, int version, int *now_current);
/* Removes a script and all its versions; PT_EEXIST (with the endpoint named in the error
 * message) when an endpoint still uses it, PT_ENOTFOUND when unknown. */
int pt_store_script_rm(pt_store *st, const char *name);
/* Lists scripts (current version only, source included). Caller frees with
 * pt_store_scripts_free. Version lists: pt_store_script_versions (all versions of one). */
int pt_store_script_list(pt_store *st, pt_script **out, size_t *n);
int pt_store_script_versions(pt_store *st, const char *name, pt_script **out, size_t *n);
void pt_store_scripts_free(pt_script *list, size_t n);

typedef struct pt_endpoint {
    char *name;
    char *path;       /* pattern, e.g. /customers/{id} */
    unsigned methods; /* PT_M_* bits from router.h */
    char *script;     /* script name */
    char *auth;       /* "public", "jwt", "apikey" */
    int64_t created;
} pt_endpoint;

/* Adds an endpoint; PT_EEXIST if the name or the path is taken, PT_ENOTFOUND if the script
 * does not exist, PT_EINVAL for a bad path (reason in pt_store_errmsg). */
int pt_store_endpoint_add(pt_store *st, const pt_endpoint *ep);
int pt_store_endpoint_get(pt_store *st, const char *name, pt_endpoint *out); /* free fields */
int pt_store_endpoint_rm(pt_store *st, const char *name);
int pt_store_endpoint_list(pt_store *st, pt_endpoint **out, size_t *n);
void pt_endpoint_clear(pt_endpoint *ep);                   /* frees the fields */
void pt_store_endpoints_free(pt_endpoint *list, size_t n); /* frees fields and array */

typedef struct pt_connection {
    char *name;
    char *kind; /* "sqlite" or "postgres" */
    char *dsn;  /* sqlite: directory of schema files (stored relative to the data dir when
                 * given so; get and list return it joined with the data dir); postgres: DSN */
} pt_connection;

/* Warehouse connections. "dw" always exists (embedded SQLite under DATA/warehouse/dw). */
int pt_store_connection_add(pt_store *st, const pt_connection *c);
int pt_store_connection_get(pt_store *st, const char *name, pt_connection *out);
int pt_store_connection_rm(pt_store *st, const char *name);
int pt_store_connection_list(pt_store *st, pt_connection **out, size_t *n);
void pt_connection_clear(pt_connection *c);
void pt_store_connections_free(pt_connection *list, size_t n);

#endif
