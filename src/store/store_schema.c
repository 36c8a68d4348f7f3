/* store_schema.c - the metadata store's tables and their versioned migrations. */

/*
 * Tables (schema version 7, kept by the driver: PRAGMA user_version on SQLite,
 * the one-row table portico_schema on PostgreSQL). Each version's
 * statements are idempotent; opening a store at version v runs the steps of every version
 * after v, in one transaction, and records the new version in it.
 *
 * Version 1:
 *   scripts(name PK, current, created)           one row per script; `current` is the version
 *                                                endpoints run
 *   script_versions(name, version, source,       every version ever stored, (name, version) PK
 *                   created)
 *   script_seq(name PK, last)                    highest version ever given to a name; never
 *                                                deleted (invariant 3 of store.c)
 *   endpoints(name PK, path UNIQUE, shape        shape = path with every {param} and `*`
 *             UNIQUE, methods, script, auth,     segment written `*`: two paths with the same
 *             created)                           shape would be ambiguous to the router
 *   connections(name PK, kind, dsn)              warehouse connections; a row named "dw"
 *                                                exists only when `portico init --warehouse`
 *                                                made the default warehouse PostgreSQL
 *
 * Version 2 (authorization, DESIGN section 4):
 *   tokens(id PK, name, created, expires,        issued JWTs by jti; revoked = when, NULL
 *          scope, rate, revoked, last_used)      while valid
 *   apikeys(id PK, name, hash UNIQUE, hint,      built-in API keys, stored as a keyed hash
 *           created, scope, rate, revoked,       only; name is unique among keys that are
 *           last_used)                           not revoked (partial index)
 *   secrets(name PK, key_id, box, created,       values encrypted under the master key
 *           updated)                             `key_id` (auth/secrets.c); never plain text
 *   issuers(issuer PK, audience, jwks, created)  outside identity providers and their JWKS
 *
 * Version 3 (Peliqan's script ids, state and runs):
 *   script_meta(id PK, name UNIQUE -> scripts    one row per script: its stable id (never
 *               ON DELETE CASCADE, run_mode,     reused), its run mode, its state
 *               state, state_updated)            (pq.set_state; NULL: none yet). Migration
 *                                                gives existing scripts ids in order of
 *                                                creation
 *   script_runs(id PK, script_id, script,        `portico run` and pq.run_script runs
 *               version, trigger, status,        (store_runs.c); no foreign key: the record
 *               started, finished, exit_code,    of a run outlives its script
 *               output, output_dropped, error)
 *
 * Version 4 (tables that were created on first use before, so that no reader has to ask the
 * engine's catalog whether they exist):
 *   settings(key PK, value)                      the webhook token, the master key of the
 *                                                last rotation (invariant 6)
 *   webhook_sources(name PK, verify, secret,     named webhook sources (store_webhooks.c)
 *                   header, dedup_header,
 *                   script, created)
 *
 * Version 5 (the admin plane, docs/ADMIN.md; store_users.c, store_audit.c):
 *   users(name PK, role, hash, created)          hash: Argon2id string, never the password
 *   sessions(id_hash PK, username, csrf,         id_hash: hash of the cookie's value
 *            last_seen)
 *   admin_tokens(id PK, hash UNIQUE,               hash of the token's secret part
 *                username, name, created,
 *                expires, revoked, last_used)
 *   login_failures(key PK, failures,             "user:NAME" / "addr:IP" lock-outs
 *                  last_failure, locked_until)
 *   audit(id PK, time, actor, action, object,    append-only; time in unix ms
 *         detail)
 *   None of them bumps the change counter: no worker serves differently because of them.
 *
 * Version 6 (per-endpoint settings, core/epset.h; store_endpoints.c):
 *   endpoint_settings(name PK -> endpoints       one row per endpoint that has a setting;
 *                     ON DELETE CASCADE,         0 (or no row): the server-wide value; cors
 *                     timeout_ms, max_conc,      NULL: no CORS. Written in the transaction
 *                     queue_wait_ms, cache_ms,   that writes the endpoint
 *                     max_body, cors)
 *
 * Version 7 (nodes, issue 11 section 3; store_nodes.c):
 *   store_changes(id PK, version)                one row (id 1): bumped by every commit that
 *                                                bumps the change counter, on PostgreSQL only
 *                                                (SQLite nodes share the counter file); other
 *                                                nodes compare it with what they loaded
 *   nodes(id PK, host, addresses, version, pid,  one row per node that ran `portico serve`:
 *         started, last_seen)                    its heartbeat, every few seconds
 *
 * Version 8 (rate limits shared by the nodes of a PostgreSQL store; store_ratelimit.c):
 *   rate_budget(key PK, tat, granted)            one row per limited caller (the 64-bit key
 *                                                of auth/ratelimit.h): the cluster-wide GCRA
 *                                                arrival time in ns of the database's clock,
 *                                                and the size of the last slice leased. Unused
 *                                                on SQLite (one node)
 *
 * Every statement is written once for SQLite and PostgreSQL: BIGINT for integers (SQLite
 * gives it integer affinity), {id} and {blob} where the types differ, and {deferrable} after
 * every REFERENCES (db.h): a rename updates both ends of a key in one transaction, which
 * PostgreSQL allows only for a key declared deferrable. On PostgreSQL the migration's
 * transaction holds the store's advisory lock (db_pg.c), so two nodes starting on a fresh
 * database at once take turns and the second finds the schema made.
 */
#include <stdio.h>

#include "core/err.h"
#include "store/store_int.h"

static const char v1_sql[] =
    "CREATE TABLE IF NOT EXISTS scripts("
    "  name TEXT PRIMARY KEY,"
    "  current BIGINT NOT NULL,"
    "  created BIGINT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS script_versions("
    "  name TEXT NOT NULL REFERENCES scripts(name) ON DELETE CASCADE {deferrable},"
    "  version BIGINT NOT NULL,"
    "  source TEXT NOT NULL,"
    "  created BIGINT NOT NULL,"
    "  PRIMARY KEY(name, version));"
    "CREATE TABLE IF NOT EXISTS script_seq("
    "  name TEXT PRIMARY KEY,"
    "  last BIGINT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS endpoints("
    "  name TEXT PRIMARY KEY,"
    "  path TEXT NOT NULL UNIQUE,"
    "  shape TEXT NOT NULL UNIQUE,"
    "  methods BIGINT NOT NULL,"
    "  script TEXT NOT NULL REFERENCES scripts(name) {deferrable},"
    "  auth TEXT NOT NULL CHECK (auth IN ('public', 'jwt', 'apikey')),"
    "  created BIGINT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS endpoints_script ON endpoints(script);"
    "CREATE TABLE IF NOT EXISTS connections("
    "  name TEXT PRIMARY KEY,"
    "  kind TEXT NOT NULL CHECK (kind IN ('sqlite', 'postgres')),"
    "  dsn TEXT NOT NULL);";

static const char v2_sql[] = "CREATE TABLE IF NOT EXISTS tokens("
                             "  id TEXT PRIMARY KEY,"
                             "  name TEXT NOT NULL,"
                             "  created BIGINT NOT NULL,"
                             "  expires BIGINT,"
                             "  scope TEXT,"
                             "  rate TEXT,"
                             "  revoked BIGINT,"
                             "  last_used BIGINT);"
                             "CREATE TABLE IF NOT EXISTS apikeys("
                             "  id {id},"
                             "  name TEXT NOT NULL,"
                             "  hash {blob} NOT NULL UNIQUE,"
                             "  hint TEXT NOT NULL,"
                             "  created BIGINT NOT NULL,"
                             "  scope TEXT,"
                             "  rate TEXT,"
                             "  revoked BIGINT,"
                             "  last_used BIGINT);"
                             "CREATE UNIQUE INDEX IF NOT EXISTS apikeys_live_name"
                             "  ON apikeys(name) WHERE revoked IS NULL;"
                             "CREATE TABLE IF NOT EXISTS secrets("
                             "  name TEXT PRIMARY KEY,"
                             "  key_id TEXT NOT NULL,"
                             "  box {blob} NOT NULL,"
                             "  created BIGINT NOT NULL,"
                             "  updated BIGINT NOT NULL);"
                             "CREATE TABLE IF NOT EXISTS issuers("
                             "  issuer TEXT PRIMARY KEY,"
                             "  audience TEXT,"
                             "  jwks TEXT NOT NULL,"
                             "  created BIGINT NOT NULL);";

static const char v3_sql[] = "CREATE TABLE IF NOT EXISTS script_meta("
                             "  id {id},"
                             "  name TEXT NOT NULL UNIQUE"
                             "    REFERENCES scripts(name) ON DELETE CASCADE {deferrable},"
                             "  run_mode TEXT NOT NULL DEFAULT 'API',"
                             "  state TEXT,"
                             "  state_updated BIGINT);"
                             "INSERT INTO script_meta(name)"
                             "  SELECT name FROM scripts"
                             "  WHERE name NOT IN (SELECT name FROM script_meta)"
                             "  ORDER BY created, {rowid};"
                             "CREATE TABLE IF NOT EXISTS script_runs("
                             "  id {id},"
                             "  script_id BIGINT,"
                             "  script TEXT NOT NULL,"
                             "  version BIGINT NOT NULL,"
                             "  trigger TEXT NOT NULL,"
                             "  status TEXT NOT NULL"
                             "    CHECK (status IN ('running', 'success', 'error')),"
                             "  started BIGINT NOT NULL,"
                             "  finished BIGINT,"
                             "  exit_code BIGINT,"
                             "  output TEXT NOT NULL DEFAULT '',"
                             "  output_dropped BIGINT NOT NULL DEFAULT 0,"
                             "  error TEXT);"
                             "CREATE INDEX IF NOT EXISTS script_runs_script"
                             "  ON script_runs(script_id, id);"
                             "CREATE INDEX IF NOT EXISTS script_runs_name"
                             "  ON script_runs(script, id);";

static const char v4_sql[] = "CREATE TABLE IF NOT EXISTS settings("
                             "  key TEXT PRIMARY KEY,"
                             "  value TEXT NOT NULL);"
                             "CREATE TABLE IF NOT EXISTS webhook_sources("
                             "  name TEXT PRIMARY KEY,"
                             "  verify TEXT NOT NULL,"
                             "  secret TEXT,"
                             "  header TEXT,"
                             "  dedup_header TEXT,"
                             "  script TEXT,"
                             "  created BIGINT NOT NULL);";

static const char v5_sql[] =
    "CREATE TABLE IF NOT EXISTS users("
    "  name TEXT PRIMARY KEY,"
    "  role TEXT NOT NULL CHECK (role IN ('admin', 'editor', 'viewer')),"
    "  hash TEXT NOT NULL,"
    "  created BIGINT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS sessions("
    "  id_hash TEXT PRIMARY KEY,"
    "  username TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE {deferrable},"
    "  csrf TEXT NOT NULL,"
    "  created BIGINT NOT NULL,"
    "  last_seen BIGINT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS admin_tokens("
    "  id TEXT PRIMARY KEY,"
    "  hash TEXT NOT NULL UNIQUE,"
    "  username TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE {deferrable},"
    "  name TEXT NOT NULL,"
    "  created BIGINT NOT NULL,"
    "  expires BIGINT,"
    "  revoked BIGINT,"
    "  last_used BIGINT);"
    "CREATE TABLE IF NOT EXISTS login_failures("
    "  key TEXT PRIMARY KEY,"
    "  failures BIGINT NOT NULL,"
    "  last_failure BIGINT NOT NULL,"
    "  locked_until BIGINT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS audit("
    "  id {id},"
    "  time BIGINT NOT NULL,"
    "  actor TEXT NOT NULL,"
    "  action TEXT NOT NULL,"
    "  object TEXT NOT NULL,"
    "  detail TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS audit_time ON audit(time);";

static const char v6_sql[] =
    "CREATE TABLE IF NOT EXISTS endpoint_settings("
    "  name TEXT PRIMARY KEY REFERENCES endpoints(name) ON DELETE CASCADE {deferrable},"
    "  timeout_ms BIGINT NOT NULL DEFAULT 0,"
    "  max_conc BIGINT NOT NULL DEFAULT 0,"
    "  queue_wait_ms BIGINT NOT NULL DEFAULT 0,"
    "  cache_ms BIGINT NOT NULL DEFAULT 0,"
    "  max_body BIGINT NOT NULL DEFAULT 0,"
    "  cors TEXT);";

static const char v7_sql[] =
    "CREATE TABLE IF NOT EXISTS store_changes("
    "  id BIGINT PRIMARY KEY,"
    "  version BIGINT NOT NULL);"
    "INSERT INTO store_changes(id, version) VALUES (1, 0) ON CONFLICT(id) DO NOTHING;"
    "CREATE TABLE IF NOT EXISTS nodes("
    "  id TEXT PRIMARY KEY,"
    "  host TEXT NOT NULL,"
    "  addresses TEXT NOT NULL,"
    "  version TEXT NOT NULL,"
    "  pid BIGINT NOT NULL,"
    "  started BIGINT NOT NULL,"
    "  last_seen BIGINT NOT NULL);";

static const char v8_sql[] = "CREATE TABLE IF NOT EXISTS rate_budget("
                             "  key BIGINT PRIMARY KEY,"
                             "  tat BIGINT NOT NULL,"
                             "  granted BIGINT NOT NULL DEFAULT 0);";

/* The steps, in order: steps[i] brings a store to version i + 1. */
static const char *const steps[] = {v1_sql, v2_sql, v3_sql, v4_sql, v5_sql, v6_sql, v7_sql, v8_sql};

_Static_assert(sizeof steps / sizeof steps[0] == PT_STORE_SCHEMA_VERSION,
               "one migration step per schema version");

int
pt_store_migrate(pt_store *st)
{
    int64_t version = 0;
    int rc;

    rc = pt_db_schema_version(st->db, &version);
    if (rc != 0)
        return pt_store_fail(st, rc, "read the schema version");
    if (version == PT_STORE_SCHEMA_VERSION)
        return 0; /* the common case: no write lock taken at open */
    if (version > PT_STORE_SCHEMA_VERSION) {
        pt_store_seterr(st, "metadata store has schema version %lld, newer than this portico (%d)",
                        (long long)version, PT_STORE_SCHEMA_VERSION);
        return PT_EINVAL;
    }
    rc = pt_store_begin(st);
    if (rc != 0)
        return rc;
    /* Another process may have migrated while this one waited for the lock. */
    rc = pt_db_schema_version(st->db, &version);
    if (rc != 0)
        pt_store_fail(st, rc, "read the schema version");
    else if (version > PT_STORE_SCHEMA_VERSION)
        rc = PT_EINVAL; /* a newer portico migrated meanwhile: the message below */
    for (int64_t v = version; rc == 0 && v < PT_STORE_SCHEMA_VERSION; v++) {
        rc = pt_db_exec(st->db, steps[v]);
        if (rc != 0) {
            char what[64];
            snprintf(what, sizeof what, "migrate to schema version %lld", (long long)v + 1);
            pt_store_fail(st, rc, what);
        }
    }
    if (rc == 0 && version < PT_STORE_SCHEMA_VERSION) {
        rc = pt_db_set_schema_version(st->db, PT_STORE_SCHEMA_VERSION);
        if (rc != 0)
            pt_store_fail(st, rc, "record the schema version");
    }
    if (rc == PT_EINVAL)
        pt_store_seterr(st, "metadata store has schema version %lld, newer than this portico (%d)",
                        (long long)version, PT_STORE_SCHEMA_VERSION);
    return pt_store_finish_quiet(st, rc);
}
