/* store.h - the metadata store: scripts and their versions, endpoints, warehouse connections,
 * and what authorization needs: tokens, API keys, encrypted secrets and trusted issuers.
 *
 * One store above a thin SQL driver (db.h): db_sqlite.c (DATA/portico.db: embedded, WAL, the
 * default) or db_pg.c when the data dir records a PostgreSQL DSN (DATA/store.dsn), so that
 * several nodes share one database. Every mutating call commits before
 * it returns and then bumps the change counter (changes.h) so that running workers reload on
 * their next request. Not thread-safe: one pt_store per thread. */
#ifndef PT_STORE_H
#define PT_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "core/epset.h"

typedef struct pt_store pt_store;

/* Opens the store of data dir `datadir`, migrating its schema when it is older. Only
 * pt_store_create makes a store: a missing portico.db is PT_ENOTFOUND, and an empty, corrupt,
 * truncated or foreign one (PT_EDB, PT_EINVAL) or a read-only one (PT_EIO) is refused and left
 * as it is. On error returns a pt_err and writes a one-line reason, naming the file and the
 * cause, into err. Caller frees with pt_store_close. */
int pt_store_open(const char *datadir, pt_store **out, char *err, size_t errsz);
/* As pt_store_open, but creates the store when the data dir has none (`portico init`). An
 * existing file is checked and refused as pt_store_open does, never replaced. */
int pt_store_create(const char *datadir, pt_store **out, char *err, size_t errsz);
void pt_store_close(pt_store *st); /* NULL is a no-op */
/* "sqlite" or "postgres" (static). */
const char *pt_store_engine(const pt_store *st);

/* The PostgreSQL store a data dir uses: DATADIR/store.dsn holds its DSN (one line, file mode
 * 0600; it may hold a password, so it is never logged). With it, pt_store_open and
 * pt_store_create use that database instead of DATADIR/portico.db; the data dir keeps the
 * keys and the per-node files (change counter, logs). */
#define PT_STORE_DSN_FILE "store.dsn"
/* Reads the recorded DSN: 0 with *dsn NULL when the data dir has none (SQLite), 0 with *dsn
 * (caller frees) when it has one, or a pt_err with a reason in err. */
int pt_store_dsn_load(const char *datadir, char **dsn, char *err, size_t errsz);
/* Does datadir name a store: a portico.db or a store.dsn? (1 or 0; nothing is opened) */
int pt_store_exists(const char *datadir);
/* A row of table settings: 0 with *value (caller frees), PT_ENOTFOUND, or a pt_err (reason in
 * pt_store_errmsg). */
int pt_store_setting_get(pt_store *st, const char *key, char **value);
/* Adds the row key = value (both borrowed) unless key has one: 0, or PT_EEXIST when it had
 * (the row is left as it was). No change counter bump: settings are read when used. */
int pt_store_setting_add(pt_store *st, const char *key, const char *value);
/* Sets the row key = value (both borrowed), adding it or replacing what it held. 0 or a
 * pt_err. No change counter bump. */
int pt_store_setting_set(pt_store *st, const char *key, const char *value);
/* Records dsn (borrowed) for datadir, replacing the file atomically, mode 0600. */
int pt_store_dsn_save(const char *datadir, const char *dsn, char *err, size_t errsz);
/* The driver's last error message (borrowed, valid until the next call). */
const char *pt_store_errmsg(pt_store *st);

/* Names of endpoints and connections: [A-Za-z0-9_][A-Za-z0-9_.-]{0,63}. */
int pt_store_name_valid(const char *name);
/* Script names are free text, as in Peliqan ("Load - Data Warehouse"): 1 to 128 bytes of
 * well-formed UTF-8, no control characters, no leading or trailing space. */
int pt_store_script_name_valid(const char *name);

/* The run modes Peliqan gives a script (pq.add_script's run_mode), stored as given. Scripts
 * added with `portico script add` are "API" (handlers). */
int pt_store_run_mode_valid(const char *mode);

typedef struct pt_script {
    int64_t id; /* stable, given at creation, never reused (not even after rm) */
    char *name;
    int version;  /* 1, 2, ... */
    int current;  /* the version endpoints run */
    char *source; /* NUL-terminated UTF-8 */
    size_t source_len;
    int64_t created; /* unix seconds: when this version was stored */
    char *run_mode;  /* "API", "STREAMLIT" or "SHELL" */
} pt_script;
void pt_script_free(pt_script *s); /* NULL is a no-op */

/* Stores source as a new version of script `name` (creating the script, with run mode "API")
 * and makes it current. Returns 0 and the version in *version, or a pt_err. Version numbers
 * are never reused, even after pt_store_script_rm (workers cache compiled scripts by name and
 * version). */
int pt_store_script_put(pt_store *st, const char *name, const char *source, size_t len,
                        int *version);
/* Creates a new script with its first version (pq.add_script). PT_EEXIST when the name is
 * taken, PT_EINVAL for a bad name or run mode (reason in pt_store_errmsg). Returns 0 with the
 * new script's id in *id (may be NULL). */
int pt_store_script_create(pt_store *st, const char *name, const char *source, size_t len,
                           const char *run_mode, int64_t *id);
/* Sets the run mode of script `id`. PT_ENOTFOUND, PT_EINVAL. */
int pt_store_script_set_run_mode(pt_store *st, int64_t id, const char *run_mode);
/* Fetches version `version` of a script, or its current version when version is 0.
 * Returns 0, PT_ENOTFOUND. Caller frees *out with pt_script_free. */
int pt_store_script_get(pt_store *st, const char *name, int version, pt_script **out);
/* pt_store_script_get by id. */
int pt_store_script_get_by_id(pt_store *st, int64_t id, int version, pt_script **out);

/* ---- Script state (pq.get_state / pq.set_state) ------------------------------------------
 * One text value per script, kept across versions and restarts, removed with the script.
 * Writing state does not bump the change counter: no worker serves differently because of it.
 */
#define PT_STORE_STATE_MAX (16u << 20) /* bytes */

/* The state of script `id`: 0 with *value (caller frees; NUL-terminated) and *len, or with
 * *value NULL when none was ever set. PT_ENOTFOUND (message names the id) for an unknown id. */
int pt_store_state_get(pt_store *st, int64_t id, char **value, size_t *len);
/* Replaces the state of script `id` (value borrowed). PT_ENOTFOUND, PT_ETOOBIG past
 * PT_STORE_STATE_MAX. */
int pt_store_state_set(pt_store *st, int64_t id, const char *value, size_t len);
/* Makes `version` current (0: the version before the current one). PT_ENOTFOUND, PT_EINVAL. */
int pt_store_script_rollback(pt_store *st, const char *name, int version, int *now_current);
/* Renames a script, with its versions, id and state; endpoints and webhook sources that run
 * it follow. PT_ENOTFOUND (no such script), PT_EEXIST when new_name is taken or was ever used
 * by another script (workers cache compiled scripts by name and version, so a name's versions
 * are never reused), PT_EINVAL for a bad new name. */
int pt_store_script_rename(pt_store *st, const char *name, const char *new_name);
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
    unsigned methods; /* PT_M_* bits from core/http.h */
    char *script;     /* script name */
    char *auth;       /* "public", "jwt", "apikey" */
    int64_t created;
    pt_ep_settings settings; /* core/epset.h; written with the endpoint by add and set */
} pt_endpoint;

/* Adds an endpoint; PT_EEXIST if the name or the path is taken, PT_ENOTFOUND if the script
 * does not exist, PT_EINVAL for a bad path or settings (pt_epset_check; reason in
 * pt_store_errmsg). */
int pt_store_endpoint_add(pt_store *st, const pt_endpoint *ep);
/* Replaces the path, methods, script, auth and settings of the endpoint named ep->name (its created
 * time is kept) in one transaction: a request sees the old endpoint or the new one, never none.
 * PT_ENOTFOUND when there is no such endpoint or no such script (in that order; the message
 * says which), PT_EEXIST when another endpoint has the path, PT_EINVAL as for add. ep borrowed. */
int pt_store_endpoint_set(pt_store *st, const pt_endpoint *ep);
int pt_store_endpoint_get(pt_store *st, const char *name, pt_endpoint *out); /* free fields */
int pt_store_endpoint_rm(pt_store *st, const char *name);
int pt_store_endpoint_list(pt_store *st, pt_endpoint **out, size_t *n);
void pt_endpoint_clear(pt_endpoint *ep); /* frees the fields */

/* One transaction around many changes (portico apply): after pt_store_tx_begin, each store
 * function's own transaction is a savepoint inside it, and nothing is visible to others until
 * pt_store_tx_finish(st, 0) commits (and bumps the change counter once); any other rc rolls
 * everything back. Returns rc, or the error of BEGIN / COMMIT. Not nestable (PT_EINVAL). */
int pt_store_tx_begin(pt_store *st);
int pt_store_tx_finish(pt_store *st, int rc);
void pt_store_endpoints_free(pt_endpoint *list, size_t n); /* frees fields and array */

typedef struct pt_connection {
    char *name;
    char *kind; /* "sqlite" or "postgres" */
    char *dsn;  /* sqlite: directory of schema files (stored relative to the data dir when
                 * given so; get and list return it joined with the data dir); postgres: DSN */
} pt_connection;

/* Warehouse connections. "dw" always exists: the embedded SQLite warehouse under
 * DATA/warehouse/dw, or the PostgreSQL database pt_store_warehouse_set stored. get and list
 * fill fields the caller frees (pt_connection_clear, pt_store_connections_free); add copies. */
int pt_store_connection_add(pt_store *st, const pt_connection *c);
int pt_store_connection_get(pt_store *st, const char *name, pt_connection *out);
int pt_store_connection_rm(pt_store *st, const char *name);
int pt_store_connection_list(pt_store *st, pt_connection **out, size_t *n);
void pt_connection_clear(pt_connection *c);
void pt_store_connections_free(pt_connection *list, size_t n);
/* Makes the default warehouse "dw" the PostgreSQL database dsn (borrowed; stored, never
 * logged). Running it again with the same dsn is a no-op; a different one is PT_EEXIST (the
 * warehouse's data would be stranded), as is a dw that is already PostgreSQL elsewhere.
 * Returns 0, PT_EINVAL (empty dsn), PT_EEXIST or PT_EDB, with pt_store_errmsg. */
int pt_store_warehouse_set(pt_store *st, const char *dsn);

/* ---- Authorization (DESIGN section 4) --------------------------------------------------- */

/* Scopes are endpoint names separated by single spaces; NULL (or "") means every endpoint.
 * Rates are kept as typed ("100/min", parsed by auth/ratelimit.h); NULL means no limit. */

typedef struct pt_token {
    char *id;          /* the token's jti */
    char *name;        /* its subject (`sub`) */
    int64_t created;   /* unix seconds, also its `iat` */
    int64_t expires;   /* 0: never */
    char *scope;       /* NULL: every endpoint */
    char *rate;        /* NULL: no limit */
    int64_t revoked;   /* when it was revoked, 0: valid */
    int64_t last_used; /* 0: never; written in batches by the workers */
} pt_token;

/* Records an issued token. PT_EEXIST when the id is taken, PT_ENOTFOUND when the scope names
 * an unknown endpoint, PT_EINVAL for a bad name (reason in pt_store_errmsg). */
int pt_store_token_add(pt_store *st, const pt_token *t);
/* Revokes a token (revoking twice keeps the first time). PT_ENOTFOUND when unknown. */
int pt_store_token_revoke(pt_store *st, const char *id);
/* Every token, oldest first. Caller frees with pt_store_tokens_free. */
int pt_store_token_list(pt_store *st, pt_token **out, size_t *n);
void pt_store_tokens_free(pt_token *list, size_t n);

#define PT_STORE_HASH_BYTES 32

typedef struct pt_apikey {
    int64_t id;                              /* assigned by pt_store_apikey_add */
    char *name;                              /* unique among keys not revoked */
    unsigned char hash[PT_STORE_HASH_BYTES]; /* keyed hash of the key (auth/apikey.h) */
    char *hint;                              /* the key's first characters, for lists */
    int64_t created;
    char *scope;
    char *rate;
    int64_t revoked;
    int64_t last_used;
} pt_apikey;

/* Records a key and sets k->id. PT_EEXIST when a key that is not revoked has this name (or
 * the hash exists), PT_ENOTFOUND for an unknown endpoint in the scope, PT_EINVAL. */
int pt_store_apikey_add(pt_store *st, pt_apikey *k);
/* Revokes the key called name that is not revoked yet; PT_ENOTFOUND when there is none. */
int pt_store_apikey_revoke(pt_store *st, const char *name);
/* Every key, revoked ones included, oldest first. Caller frees with pt_store_apikeys_free. */
int pt_store_apikey_list(pt_store *st, pt_apikey **out, size_t *n);
void pt_store_apikeys_free(pt_apikey *list, size_t n);

/* One "last used" time, for pt_store_mark_used. */
typedef struct pt_store_use {
    const char *id; /* token id, or API key id in decimal (borrowed) */
    int64_t when;
} pt_store_use;

/* Raises the last-used times of tokens and API keys (never lowers them) in one transaction.
 * Workers call it in batches. It is the one mutation that does not bump the change counter:
 * no worker serves differently because of it, and a bump would make every worker reload.
 * Does not wait for the write lock: PT_EUNAVAIL when another writer holds it (try later). */
int pt_store_mark_used(pt_store *st, const pt_store_use *tokens, size_t ntokens,
                       const pt_store_use *keys, size_t nkeys);

typedef struct pt_secret {
    char *name;         /* 1 to 128 bytes of UTF-8 without control characters */
    char *key_id;       /* fingerprint of the master key it is encrypted under (keys.h) */
    unsigned char *box; /* nonce and ciphertext (auth/secrets.h); never the value */
    size_t box_len;
    int64_t created;
    int64_t updated;
} pt_secret;

/* Is name acceptable as a secret name (see pt_secret)? */
int pt_store_secret_name_valid(const char *name);
/* Creates or replaces a secret (created is kept on replace). PT_EINVAL for a bad name.
 * PT_EUNAVAIL when a rotation has recorded another master key than s->key_id as current
 * (pt_store_secret_rewrite): checked in the transaction that writes, so a row is never stored
 * under a key that a rotation has just retired; seal it again under the current key and retry. */
int pt_store_secret_put(pt_store *st, const pt_secret *s);
/* pt_store_secret_put for a new name only: PT_EEXIST when the name is taken (atomically: of
 * two concurrent creates one wins, the other stores nothing). */
int pt_store_secret_create(pt_store *st, const pt_secret *s);
/* The fingerprint of the master key that the last rotation sealed every secret under, into out
 * (at least 17 bytes). Returns 0, PT_ENOTFOUND when no rotation has recorded one (every key is
 * accepted then), or another pt_err. */
int pt_store_secret_key_id(pt_store *st, char *out, size_t outsz);
/* Fetches one secret; PT_ENOTFOUND when unknown. Caller frees with pt_secret_clear. */
int pt_store_secret_get(pt_store *st, const char *name, pt_secret *out);
int pt_store_secret_rm(pt_store *st, const char *name);
/* Every secret by name. Caller frees with pt_store_secrets_free. */
int pt_store_secret_list(pt_store *st, pt_secret **out, size_t *n);
void pt_secret_clear(pt_secret *s);
void pt_store_secrets_free(pt_secret *list, size_t n);
/* Rewrites every secret in one transaction: fn gets each row and replaces its key_id and box
 * (freeing the old ones with free()); a non-zero return rolls everything back and is
 * returned. Every row must come back under key_id (PT_EINVAL otherwise), and key_id is recorded
 * as the current master key in the same transaction (see pt_store_secret_put). Used to
 * re-encrypt under a new master key. */
int pt_store_secret_rewrite(pt_store *st, const char *key_id, int (*fn)(void *ctx, pt_secret *s),
                            void *ctx);

typedef struct pt_issuer {
    char *issuer;   /* the `iss` its tokens carry */
    char *audience; /* required `aud`, or NULL */
    char *jwks;     /* the JWKS document (JSON text) its keys come from */
    int64_t created;
} pt_issuer;

/* Trusts an issuer, replacing what was stored for it. */
int pt_store_issuer_put(pt_store *st, const pt_issuer *i);
int pt_store_issuer_rm(pt_store *st, const char *issuer);
int pt_store_issuer_list(pt_store *st, pt_issuer **out, size_t *n);
void pt_store_issuers_free(pt_issuer *list, size_t n);

#endif
