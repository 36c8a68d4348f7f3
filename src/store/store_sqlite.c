/* store_sqlite.c - the metadata store's embedded SQLite driver: DATA/portico.db. */

/*
 * Design notes
 *
 * Tables (schema version 4, kept in PRAGMA user_version; every statement below is idempotent,
 * so migrating from any older version runs them all):
 *
 *   scripts(name PK, current, created)           one row per script; `current` is the version
 *                                                endpoints run
 *   script_versions(name, version, source,       every version ever stored, (name, version) PK
 *                   created)
 *   script_seq(name PK, last)                    highest version ever given to a name; never
 *                                                deleted, see invariant 3
 *   endpoints(name PK, path UNIQUE, shape        shape = path with every {param} and `*`
 *             UNIQUE, methods, script, auth,     segment written `*`: two paths with the same
 *             created)                           shape would be ambiguous to the router
 *   connections(name PK, kind, dsn)              warehouse connections; a row named "dw"
 *                                                exists only when `portico init --warehouse`
 *                                                made the default warehouse PostgreSQL
 *
 * Added by schema version 2 (authorization, DESIGN section 4):
 *
 *   tokens(id PK, name, created, expires,        issued JWTs by jti; revoked = when, NULL
 *          scope, rate, revoked, last_used)      while valid
 *   apikeys(id PK, name, hash UNIQUE, hint,      built-in API keys, stored as a keyed hash
 *           created, scope, rate, revoked,       only; name is unique among keys that are
 *           last_used)                           not revoked (partial index)
 *   secrets(name PK, key_id, box, created,       values encrypted under the master key
 *           updated)                             `key_id` (auth/secrets.c); never plain text
 *   issuers(issuer PK, audience, jwks, created)  outside identity providers and their JWKS
 *
 * Added by schema version 3 (Peliqan's script ids, state and runs):
 *
 *   script_meta(id PK AUTOINCREMENT, name        one row per script: its stable id (never
 *               UNIQUE -> scripts ON DELETE      reused: AUTOINCREMENT), its run mode, its
 *               CASCADE, run_mode, state,        state (pq.set_state; NULL: none yet).
 *               state_updated)                   Migration gives existing scripts ids in
 *                                                order of creation
 *   script_runs(id PK AUTOINCREMENT, script_id,  `portico run` and pq.run_script runs
 *               script, version, trigger,        (store_runs.c); no foreign key: the record
 *               status, started, finished,       of a run outlives its script
 *               exit_code, output,
 *               output_dropped, error)
 *
 * Added by schema version 4 (the admin plane; statements in store_users.c and store_audit.c):
 *
 *   users(name PK, role, hash, created)          hash: Argon2id string, never the password
 *   sessions(id_hash PK, user, csrf, created,    id_hash: hash of the cookie's value
 *            last_seen)
 *   admin_tokens(id PK, hash UNIQUE, user,       hash of the token's secret part
 *                name, created, expires,
 *                revoked, last_used)
 *   login_failures(key PK, failures,             "user:NAME" / "addr:IP" lock-outs
 *                  last_failure, locked_until)
 *   audit(id PK AUTOINCREMENT, time, actor,      append-only; time in unix ms
 *         action, object, detail)
 *
 * Invariants:
 *   1. scripts.current always names an existing row of script_versions.
 *   2. An endpoint's script exists (foreign key, and checked first for a clear message); a
 *      script used by an endpoint cannot be removed.
 *   3. A (name, version) pair is never reused, even after `script rm` and a new `script add`:
 *      workers cache compiled modules by (name, version), so reuse could run stale code.
 *   4. Every mutation runs in one BEGIN IMMEDIATE transaction (the write lock is taken up front,
 *      so concurrent writers wait on busy_timeout instead of failing on lock upgrade), and
 *      bumps the change counter only after COMMIT. The one exception is pt_store_mark_used
 *      (last-used times), which workers call and which no worker reads.
 *   5. No secret value, token or API key is stored: secrets only encrypted, tokens by id, API
 *      keys as a keyed hash. Error messages name things, never those values.
 *   6. Once a master key rotation has recorded its key (settings row `secrets_master_key_id`,
 *      written in the transaction that re-encrypts every secret), a secret is only written
 *      under that key: pt_store_secret_put checks it in its own transaction, so a `secret set`
 *      that sealed with a key loaded before a rotation cannot leave a row under a retired key.
 *   7. Every script has exactly one script_meta row (created with it, removed with it), so
 *      its id and state survive new versions; ids, like versions, are never reused. State and
 *      run records are written without bumping the change counter (invariant 4's other
 *      exception): no worker serves differently because of them. The same holds for the
 *      tables of version 4 (users, sessions, admin tokens, failed logins, audit).
 *
 * Several processes share the file (the CLI writes while workers read): WAL, so readers never
 * block the writer; busy_timeout 5000 ms; synchronous=FULL because metadata is small and rarely
 * written, and a published endpoint must survive a power cut. Validation messages are written
 * for the CLI, which prints them as they are.
 *
 * Relative sqlite DSNs in `connections` are relative to the data dir (so a data dir can be
 * moved); pt_store_connection_get/list return them joined with the data dir.
 */
#include "store/store.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sqlite3.h>

#include "core/err.h"
#include "core/log.h"
#include "core/http.h"
#include "store/changes.h"
#include "store/store_sqlite_int.h"

#define SCHEMA_VERSION 4
#define BUSY_TIMEOUT_MS 5000

struct pt_store {
    sqlite3 *db;
    char *datadir; /* owned */
    char err[512];
};

static const char schema_sql[] = "CREATE TABLE IF NOT EXISTS scripts("
                                 "  name TEXT PRIMARY KEY,"
                                 "  current INTEGER NOT NULL,"
                                 "  created INTEGER NOT NULL);"
                                 "CREATE TABLE IF NOT EXISTS script_versions("
                                 "  name TEXT NOT NULL REFERENCES scripts(name) ON DELETE CASCADE,"
                                 "  version INTEGER NOT NULL,"
                                 "  source TEXT NOT NULL,"
                                 "  created INTEGER NOT NULL,"
                                 "  PRIMARY KEY(name, version));"
                                 "CREATE TABLE IF NOT EXISTS script_seq("
                                 "  name TEXT PRIMARY KEY,"
                                 "  last INTEGER NOT NULL);"
                                 "CREATE TABLE IF NOT EXISTS endpoints("
                                 "  name TEXT PRIMARY KEY,"
                                 "  path TEXT NOT NULL UNIQUE,"
                                 "  shape TEXT NOT NULL UNIQUE,"
                                 "  methods INTEGER NOT NULL,"
                                 "  script TEXT NOT NULL REFERENCES scripts(name),"
                                 "  auth TEXT NOT NULL CHECK (auth IN ('public', 'jwt', 'apikey')),"
                                 "  created INTEGER NOT NULL);"
                                 "CREATE INDEX IF NOT EXISTS endpoints_script ON endpoints(script);"
                                 "CREATE TABLE IF NOT EXISTS connections("
                                 "  name TEXT PRIMARY KEY,"
                                 "  kind TEXT NOT NULL CHECK (kind IN ('sqlite', 'postgres')),"
                                 "  dsn TEXT NOT NULL);"
                                 /* version 2 */
                                 "CREATE TABLE IF NOT EXISTS tokens("
                                 "  id TEXT PRIMARY KEY,"
                                 "  name TEXT NOT NULL,"
                                 "  created INTEGER NOT NULL,"
                                 "  expires INTEGER,"
                                 "  scope TEXT,"
                                 "  rate TEXT,"
                                 "  revoked INTEGER,"
                                 "  last_used INTEGER);"
                                 "CREATE TABLE IF NOT EXISTS apikeys("
                                 "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
                                 "  name TEXT NOT NULL,"
                                 "  hash BLOB NOT NULL UNIQUE,"
                                 "  hint TEXT NOT NULL,"
                                 "  created INTEGER NOT NULL,"
                                 "  scope TEXT,"
                                 "  rate TEXT,"
                                 "  revoked INTEGER,"
                                 "  last_used INTEGER);"
                                 "CREATE UNIQUE INDEX IF NOT EXISTS apikeys_live_name"
                                 "  ON apikeys(name) WHERE revoked IS NULL;"
                                 "CREATE TABLE IF NOT EXISTS secrets("
                                 "  name TEXT PRIMARY KEY,"
                                 "  key_id TEXT NOT NULL,"
                                 "  box BLOB NOT NULL,"
                                 "  created INTEGER NOT NULL,"
                                 "  updated INTEGER NOT NULL);"
                                 "CREATE TABLE IF NOT EXISTS issuers("
                                 "  issuer TEXT PRIMARY KEY,"
                                 "  audience TEXT,"
                                 "  jwks TEXT NOT NULL,"
                                 "  created INTEGER NOT NULL);"
                                 /* version 3 */
                                 "CREATE TABLE IF NOT EXISTS script_meta("
                                 "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
                                 "  name TEXT NOT NULL UNIQUE"
                                 "    REFERENCES scripts(name) ON DELETE CASCADE,"
                                 "  run_mode TEXT NOT NULL DEFAULT 'API',"
                                 "  state TEXT,"
                                 "  state_updated INTEGER);"
                                 "INSERT INTO script_meta(name)"
                                 "  SELECT name FROM scripts"
                                 "  WHERE name NOT IN (SELECT name FROM script_meta)"
                                 "  ORDER BY created, rowid;"
                                 "CREATE TABLE IF NOT EXISTS script_runs("
                                 "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
                                 "  script_id INTEGER,"
                                 "  script TEXT NOT NULL,"
                                 "  version INTEGER NOT NULL,"
                                 "  trigger TEXT NOT NULL,"
                                 "  status TEXT NOT NULL"
                                 "    CHECK (status IN ('running', 'success', 'error')),"
                                 "  started INTEGER NOT NULL,"
                                 "  finished INTEGER,"
                                 "  exit_code INTEGER,"
                                 "  output TEXT NOT NULL DEFAULT '',"
                                 "  output_dropped INTEGER NOT NULL DEFAULT 0,"
                                 "  error TEXT);"
                                 "CREATE INDEX IF NOT EXISTS script_runs_script"
                                 "  ON script_runs(script_id, id);"
                                 "CREATE INDEX IF NOT EXISTS script_runs_name"
                                 "  ON script_runs(script, id);";

static void vseterr(pt_store *st, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
static void seterr(pt_store *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
vseterr(pt_store *st, const char *fmt, va_list ap)
{
    vsnprintf(st->err, sizeof st->err, fmt, ap);
}

static void
seterr(pt_store *st, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vseterr(st, fmt, ap);
    va_end(ap);
}

/* Records SQLite's message for a failed call and returns PT_EDB. */
static int
dberr(pt_store *st, const char *what)
{
    seterr(st, "metadata store: %s: %s", what, sqlite3_errmsg(st->db));
    return PT_EDB;
}

static char *
xstrdup(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

/* strdup of a text column; "" for NULL. Caller frees. */
static char *
coldup(sqlite3_stmt *stmt, int i)
{
    const unsigned char *s = sqlite3_column_text(stmt, i);

    return strdup(s != NULL ? (const char *)s : "");
}

static int
prepare(pt_store *st, const char *sql, sqlite3_stmt **stmt)
{
    if (sqlite3_prepare_v2(st->db, sql, -1, stmt, NULL) != SQLITE_OK) {
        *stmt = NULL;
        return dberr(st, "prepare");
    }
    return 0;
}

static int
exec_sql(pt_store *st, const char *sql)
{
    if (sqlite3_exec(st->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return dberr(st, sql);
    return 0;
}

static int
begin(pt_store *st)
{
    return exec_sql(st, "BEGIN IMMEDIATE");
}

/* Commits and bumps the change counter. A failed bump is logged, not returned: the change is
 * committed, and reporting failure would invite a retry that duplicates it. */
static int
commit(pt_store *st)
{
    int rc = exec_sql(st, "COMMIT");

    if (rc != 0)
        return rc;
    rc = pt_changes_bump_dir(st->datadir);
    if (rc != 0)
        pt_log_warn("store: cannot bump the change counter in %s/run: %s (running servers "
                    "will not see this change until restarted)",
                    st->datadir, pt_strerror(rc));
    return 0;
}

static void
rollback(pt_store *st)
{
    if (!sqlite3_get_autocommit(st->db))
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
}

/* Ends the transaction begin() opened: commits (bumping the change counter) when rc is 0, rolls
 * back otherwise. Returns rc, or COMMIT's error, after which it rolls back too (a no-op when the
 * failed COMMIT already ended the transaction). */
static int
finish(pt_store *st, int rc)
{
    if (rc == 0)
        rc = commit(st);
    if (rc != 0)
        rollback(st);
    return rc;
}

/* Steps a statement that returns no rows (or whose rows are ignored) to completion. */
static int
step_done(pt_store *st, sqlite3_stmt *stmt, const char *what)
{
    int rc;

    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
        ;
    if (rc != SQLITE_DONE)
        return dberr(st, what);
    return 0;
}

/* step_done, then finalizes stmt; takes ownership of stmt, even on error. */
static int
run_stmt(pt_store *st, sqlite3_stmt *stmt, const char *what)
{
    int rc = step_done(st, stmt, what);

    sqlite3_finalize(stmt);
    return rc;
}

/* Binds text a as ?1 (unless NULL) and integer b as ?2 when the SQL has a ?2: the parameters of
 * query_int, run_sql and list_rows. a is borrowed until the statement is finalized. */
static void
bind_ab(sqlite3_stmt *stmt, const char *a, int64_t b)
{
    if (a != NULL)
        sqlite3_bind_text(stmt, 1, a, -1, SQLITE_STATIC);
    if (sqlite3_bind_parameter_count(stmt) >= 2)
        sqlite3_bind_int64(stmt, 2, b);
}

/* Prepares sql, binds a and b (bind_ab) and runs it to completion; a failed step is reported
 * as `what`. */
static int
run_sql(pt_store *st, const char *sql, const char *a, int64_t b, const char *what)
{
    sqlite3_stmt *stmt = NULL;
    int rc = prepare(st, sql, &stmt);

    if (rc != 0)
        return rc;
    bind_ab(stmt, a, b);
    return run_stmt(st, stmt, what);
}

static int mutate_one(pt_store *st, const char *sql, const char *a, int64_t b, const char *what,
                      const char *missing, ...) __attribute__((format(printf, 6, 7)));

/* Runs a one-statement mutation (run_sql: a and b bound as bind_ab says, a failed step reported
 * as `what`) in a transaction of its own; when it changed no row, rolls back and returns
 * PT_ENOTFOUND with the message `missing` (printf format and arguments). */
static int
mutate_one(pt_store *st, const char *sql, const char *a, int64_t b, const char *what,
           const char *missing, ...)
{
    va_list ap;
    int rc = begin(st);

    if (rc != 0)
        return rc;
    rc = run_sql(st, sql, a, b, what);
    if (rc == 0 && sqlite3_changes(st->db) == 0) {
        va_start(ap, missing);
        vseterr(st, missing, ap);
        va_end(ap);
        rc = PT_ENOTFOUND;
    }
    return finish(st, rc);
}

/* Binds s as text, or NULL when s is NULL or empty. s is borrowed until the statement is
 * finalized. */
static void
bind_opt_text(sqlite3_stmt *stmt, int i, const char *s)
{
    if (s != NULL && s[0] != '\0')
        sqlite3_bind_text(stmt, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(stmt, i);
}

/* Binds v, or NULL when v is 0. */
static void
bind_opt_int(sqlite3_stmt *stmt, int i, int64_t v)
{
    if (v != 0)
        sqlite3_bind_int64(stmt, i, v);
    else
        sqlite3_bind_null(stmt, i);
}

/* Clears the n elements of list as kind says and frees the array; NULL is a no-op. */
static void
free_rows(void *list, size_t n, const pt_store_rowkind *kind)
{
    if (list == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        kind->clear((char *)list + i * kind->size);
    free(list);
}

/* Steps stmt and reads each row into a new element of an array that grows as needed. Takes
 * ownership of stmt (finalized here, even on error). On success *out (caller frees with
 * free_rows or the type's own free function; NULL when there were no rows) and *n; on error
 * *out is NULL, *n 0, and the store error says "out of memory" or names kind->what. */
static int
collect_rows(pt_store *st, sqlite3_stmt *stmt, const pt_store_rowkind *kind, void **out, size_t *n)
{
    void *list = NULL;
    size_t len = 0, cap = 0;
    int rc;

    *out = NULL;
    *n = 0;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        void *elem;

        if (len == cap) {
            size_t ncap = cap != 0 ? cap * 2 : 8;
            void *grown = realloc(list, ncap * kind->size);

            if (grown == NULL) {
                rc = PT_ENOMEM;
                break;
            }
            list = grown;
            cap = ncap;
        }
        /* Counted before it is read, so that a half-read element is cleared with the rest. */
        elem = (char *)list + len++ * kind->size;
        memset(elem, 0, kind->size);
        rc = kind->read(st, stmt, elem);
        if (rc != 0)
            break;
    }
    if (rc == SQLITE_DONE)
        rc = 0;
    else if (rc == PT_ENOMEM)
        seterr(st, "out of memory");
    else if (rc > 0) /* an SQLite result code, not a pt_err */
        rc = dberr(st, kind->what);
    sqlite3_finalize(stmt);
    if (rc != 0) {
        free_rows(list, len, kind);
        return rc;
    }
    *out = list;
    *n = len;
    return 0;
}

/* Runs sql with a and b bound (bind_ab) and collects its rows (collect_rows). */
static int
list_rows(pt_store *st, const char *sql, const char *a, int64_t b, const pt_store_rowkind *kind,
          void **out, size_t *n)
{
    sqlite3_stmt *stmt = NULL;
    int rc;

    *out = NULL;
    *n = 0;
    rc = prepare(st, sql, &stmt);
    if (rc != 0)
        return rc;
    bind_ab(stmt, a, b);
    return collect_rows(st, stmt, kind, out, n);
}

/* Reads the one row of sql (?1 bound to a) into elem, which is zeroed first. Returns 0,
 * PT_ENOTFOUND when there is no row (the caller words the message), or another pt_err with elem
 * zeroed; a failed step is reported as `what`. Caller clears elem as kind does. */
static int
get_row(pt_store *st, const char *sql, const char *a, const pt_store_rowkind *kind, void *elem,
        const char *what)
{
    sqlite3_stmt *stmt = NULL;
    int rc;

    memset(elem, 0, kind->size);
    rc = prepare(st, sql, &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_text(stmt, 1, a, -1, SQLITE_STATIC);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        rc = kind->read(st, stmt, elem);
        if (rc != 0) {
            kind->clear(elem);
            memset(elem, 0, kind->size);
            if (rc == PT_ENOMEM)
                seterr(st, "out of memory");
        }
    } else if (rc == SQLITE_DONE) {
        rc = PT_ENOTFOUND;
    } else {
        rc = dberr(st, what);
    }
    sqlite3_finalize(stmt);
    return rc;
}

/* ---- For the other files of this driver (store_sqlite_int.h) ---------------------------- */

sqlite3 *
pt_store_sqlite_db(pt_store *st)
{
    return st->db;
}

int
pt_store_sqlite_fail(pt_store *st, const char *what)
{
    return dberr(st, what);
}

void
pt_store_sqlite_seterr(pt_store *st, const char *msg)
{
    seterr(st, "%s", msg);
}

int
pt_store_sqlite_begin(pt_store *st)
{
    return begin(st);
}

int
pt_store_sqlite_finish(pt_store *st, int rc)
{
    return finish(st, rc);
}

int
pt_store_sqlite_finish_quiet(pt_store *st, int rc)
{
    if (rc == 0)
        rc = exec_sql(st, "COMMIT");
    if (rc != 0)
        rollback(st);
    return rc;
}

int
pt_store_sqlite_run(pt_store *st, sqlite3_stmt *stmt, const char *what)
{
    return run_stmt(st, stmt, what);
}

int
pt_store_sqlite_changed_one(pt_store *st, const char *missing)
{
    if (sqlite3_changes(st->db) != 0)
        return 0;
    seterr(st, "%s", missing);
    return PT_ENOTFOUND;
}

void
pt_store_sqlite_bind_opt_text(sqlite3_stmt *stmt, int i, const char *s)
{
    bind_opt_text(stmt, i, s);
}

int
pt_store_sqlite_rows(pt_store *st, sqlite3_stmt *stmt, const pt_store_rowkind *kind, void **out,
                     size_t *n)
{
    return collect_rows(st, stmt, kind, out, n);
}

void
pt_store_sqlite_free_rows(void *list, size_t n, const pt_store_rowkind *kind)
{
    free_rows(list, n, kind);
}

/* Runs a one-row, one-integer query; returns 1 and *v when a row came back, 0 when none, or a
 * pt_err. a and b are bound as bind_ab says. */
static int
query_int(pt_store *st, const char *sql, const char *a, int64_t b, int64_t *v)
{
    sqlite3_stmt *stmt = NULL;
    int rc = prepare(st, sql, &stmt);

    if (rc != 0)
        return rc;
    bind_ab(stmt, a, b);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        *v = sqlite3_column_int64(stmt, 0);
        rc = 1;
    } else if (rc == SQLITE_DONE) {
        rc = 0;
    } else {
        rc = dberr(st, "query");
    }
    sqlite3_finalize(stmt);
    return rc;
}

static int
migrate(pt_store *st)
{
    int64_t version = 0;
    int rc;

    rc = query_int(st, "PRAGMA user_version", NULL, 0, &version);
    if (rc < 0)
        return rc;
    if (version == SCHEMA_VERSION)
        return 0; /* the common case: no write lock taken at open */
    if (version > SCHEMA_VERSION) {
        seterr(st, "metadata store has schema version %lld, newer than this portico (%d)",
               (long long)version, SCHEMA_VERSION);
        return PT_EINVAL;
    }
    rc = begin(st);
    if (rc != 0)
        return rc;
    rc = exec_sql(st, schema_sql);
    if (rc == 0)
        rc = exec_sql(st, pt_store_users_schema);
    if (rc == 0)
        rc = exec_sql(st, pt_store_audit_schema);
    if (rc == 0) {
        char pragma[64];
        snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", SCHEMA_VERSION);
        rc = exec_sql(st, pragma);
    }
    if (rc == 0)
        rc = exec_sql(st, "COMMIT");
    if (rc != 0)
        rollback(st);
    return rc;
}

int
pt_store_open(const char *datadir, pt_store **out, char *err, size_t errsz)
{
    char path[4096];
    struct stat sb;
    pt_store *st = NULL;
    int rc;

    *out = NULL;
    if (stat(datadir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        snprintf(err, errsz, "no data dir at %s", datadir);
        return PT_ENOTFOUND;
    }
    if (snprintf(path, sizeof path, "%s/portico.db", datadir) >= (int)sizeof path) {
        snprintf(err, errsz, "data dir path too long");
        return PT_EINVAL;
    }
    st = calloc(1, sizeof *st);
    if (st == NULL || (st->datadir = strdup(datadir)) == NULL) {
        rc = PT_ENOMEM;
        snprintf(err, errsz, "out of memory");
        goto fail;
    }
    if (sqlite3_open_v2(path, &st->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        snprintf(err, errsz, "cannot open %s: %s", path,
                 st->db != NULL ? sqlite3_errmsg(st->db) : "out of memory");
        rc = PT_EDB;
        goto fail;
    }
    sqlite3_busy_timeout(st->db, BUSY_TIMEOUT_MS);
    rc = exec_sql(st, "PRAGMA journal_mode = WAL");
    if (rc == 0)
        rc = exec_sql(st, "PRAGMA synchronous = FULL");
    if (rc == 0)
        rc = exec_sql(st, "PRAGMA foreign_keys = ON");
    if (rc == 0)
        rc = migrate(st);
    if (rc != 0) {
        snprintf(err, errsz, "%s", st->err);
        goto fail;
    }
    *out = st;
    return 0;
fail:
    pt_store_close(st);
    return rc;
}

void
pt_store_close(pt_store *st)
{
    if (st == NULL)
        return;
    sqlite3_close_v2(st->db);
    free(st->datadir);
    free(st);
}

const char *
pt_store_errmsg(pt_store *st)
{
    return st->err;
}

int
pt_store_name_valid(const char *name)
{
    size_t i;

    if (name == NULL || !(isalnum((unsigned char)name[0]) || name[0] == '_'))
        return 0;
    for (i = 1; name[i] != '\0'; i++) {
        unsigned char c = (unsigned char)name[i];
        if (i >= 64 || !(isalnum(c) || c == '_' || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

static int
check_name(pt_store *st, const char *what, const char *name)
{
    if (pt_store_name_valid(name))
        return 0;
    seterr(st,
           "invalid %s name '%s' (letters, digits, '_', '.', '-'; at most 64; "
           "not starting with '.' or '-')",
           what, name != NULL ? name : "");
    return PT_EINVAL;
}

/* ---- scripts ------------------------------------------------------------------------------ */

static int text_name_valid(const char *name);

int
pt_store_script_name_valid(const char *name)
{
    size_t n;

    if (!text_name_valid(name))
        return 0;
    n = strlen(name);
    return name[0] != ' ' && name[n - 1] != ' ';
}

int
pt_store_run_mode_valid(const char *mode)
{
    return mode != NULL && (strcmp(mode, "API") == 0 || strcmp(mode, "STREAMLIT") == 0 ||
                            strcmp(mode, "SHELL") == 0);
}

static int
script_check_name(pt_store *st, const char *name)
{
    if (pt_store_script_name_valid(name))
        return 0;
    seterr(st,
           "invalid script name '%.128s' (1 to 128 bytes of UTF-8, no control characters, no "
           "leading or trailing space)",
           name != NULL ? name : "");
    return PT_EINVAL;
}

static int
script_check_mode(pt_store *st, const char *mode)
{
    if (pt_store_run_mode_valid(mode))
        return 0;
    seterr(st, "invalid run_mode '%.32s' (one of 'API', 'STREAMLIT', 'SHELL')",
           mode != NULL ? mode : "");
    return PT_EINVAL;
}

static void
script_clear(void *elem)
{
    pt_script *s = elem;

    free(s->name);
    free(s->source);
    free(s->run_mode);
}

/* The columns script_read reads, from scripts s, script_versions v and script_meta m. */
#define SCRIPT_COLS "SELECT s.name, v.version, s.current, v.source, v.created, m.id, m.run_mode "
#define SCRIPT_FROM                                                                                \
    "FROM scripts s JOIN script_versions v ON v.name = s.name "                                    \
    "LEFT JOIN script_meta m ON m.name = s.name "

/* Fills elem (a zeroed pt_script) from a row (SCRIPT_COLS). Returns 0 or PT_ENOMEM, leaving
 * what it copied for script_clear. */
static int
script_read(pt_store *st, sqlite3_stmt *stmt, void *elem)
{
    pt_script *s = elem;
    const void *src = sqlite3_column_blob(stmt, 3);
    size_t len = (size_t)sqlite3_column_bytes(stmt, 3);

    (void)st;
    s->name = coldup(stmt, 0);
    s->version = sqlite3_column_int(stmt, 1);
    s->current = sqlite3_column_int(stmt, 2);
    s->source = malloc(len + 1);
    s->source_len = len;
    s->created = sqlite3_column_int64(stmt, 4);
    s->id = sqlite3_column_int64(stmt, 5);
    s->run_mode = strdup(sqlite3_column_type(stmt, 6) == SQLITE_NULL
                             ? "API"
                             : (const char *)sqlite3_column_text(stmt, 6));
    if (s->name == NULL || s->source == NULL || s->run_mode == NULL)
        return PT_ENOMEM;
    if (len > 0)
        memcpy(s->source, src, len);
    s->source[len] = '\0';
    return 0;
}

static const pt_store_rowkind script_kind = {
    .size = sizeof(pt_script), .read = script_read, .clear = script_clear, .what = "list scripts"};

void
pt_script_free(pt_script *s)
{
    if (s == NULL)
        return;
    script_clear(s);
    free(s);
}

void
pt_store_scripts_free(pt_script *list, size_t n)
{
    free_rows(list, n, &script_kind);
}

/* Runs a query whose rows are SCRIPT_COLS, with a and b bound as bind_ab says, and collects
 * them. Caller frees *out with pt_store_scripts_free. */
static int
script_rows(pt_store *st, const char *sql, const char *a, int64_t b, pt_script **out, size_t *n)
{
    void *list = NULL;
    int rc = list_rows(st, sql, a, b, &script_kind, &list, n);

    *out = list;
    return rc;
}

/* Stores a new version of script `name`; with `create`, the script must not exist yet and gets
 * run mode `mode`, else it is created with mode "API" when new. Sets *version and *id. */
static int
script_store(pt_store *st, const char *name, const char *source, size_t len, int create,
             const char *mode, int *version, int64_t *id)
{
    sqlite3_stmt *stmt = NULL;
    int64_t last = 0, now = (int64_t)time(NULL), sid = 0;
    int v = 0;
    int rc;

    rc = script_check_name(st, name);
    if (rc == 0 && create)
        rc = script_check_mode(st, mode);
    if (rc != 0)
        return rc;
    if (memchr(source, '\0', len) != NULL) {
        seterr(st, "script '%s' contains a NUL byte", name);
        return PT_EINVAL;
    }
    if (len > INT32_MAX) {
        seterr(st, "script '%s' is too big", name);
        return PT_ETOOBIG;
    }
    rc = begin(st);
    if (rc != 0)
        return rc;
    if (create) {
        rc = query_int(st, "SELECT 1 FROM scripts WHERE name = ?1", name, 0, &last);
        if (rc < 0)
            goto done;
        if (rc == 1) {
            seterr(st, "a script named '%s' already exists", name);
            rc = PT_EEXIST;
            goto done;
        }
    }
    rc = query_int(st,
                   "SELECT max(coalesce((SELECT last FROM script_seq WHERE name = ?1), 0),"
                   " coalesce((SELECT max(version) FROM script_versions WHERE name = ?1), 0))",
                   name, 0, &last);
    if (rc < 0)
        goto done;
    v = (int)last + 1;

    rc = prepare(st,
                 "INSERT INTO scripts(name, current, created) VALUES (?1, ?2, ?3) "
                 "ON CONFLICT(name) DO UPDATE SET current = excluded.current",
                 &stmt);
    if (rc != 0)
        goto done;
    sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int(stmt, 2, v);
    sqlite3_bind_int64(stmt, 3, now);
    rc = run_stmt(st, stmt, "store script");
    if (rc != 0)
        goto done;

    rc = prepare(st,
                 "INSERT INTO script_versions(name, version, source, created) "
                 "VALUES (?1, ?2, ?3, ?4)",
                 &stmt);
    if (rc != 0)
        goto done;
    sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int(stmt, 2, v);
    sqlite3_bind_text(stmt, 3, source, (int)len, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 4, now);
    rc = run_stmt(st, stmt, "store script version");
    if (rc != 0)
        goto done;

    rc = run_sql(st,
                 "INSERT INTO script_seq(name, last) VALUES (?1, ?2) "
                 "ON CONFLICT(name) DO UPDATE SET last = excluded.last",
                 name, v, "store script sequence");
    if (rc != 0)
        goto done;

    /* Invariant 7: a new script gets its id here; a new version keeps it. */
    rc = prepare(st,
                 "INSERT INTO script_meta(name, run_mode) VALUES (?1, ?2) "
                 "ON CONFLICT(name) DO NOTHING",
                 &stmt);
    if (rc != 0)
        goto done;
    sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, create ? mode : "API", -1, SQLITE_STATIC);
    rc = run_stmt(st, stmt, "store script id");
    if (rc != 0)
        goto done;
    rc = query_int(st, "SELECT id FROM script_meta WHERE name = ?1", name, 0, &sid);
    rc = rc == 1 ? 0 : (rc == 0 ? dberr(st, "read script id") : rc);
done:
    rc = finish(st, rc);
    if (rc == 0 && version != NULL)
        *version = v;
    if (rc == 0 && id != NULL)
        *id = sid;
    return rc;
}

int
pt_store_script_put(pt_store *st, const char *name, const char *source, size_t len, int *version)
{
    return script_store(st, name, source, len, 0, NULL, version, NULL);
}

int
pt_store_script_create(pt_store *st, const char *name, const char *source, size_t len,
                       const char *run_mode, int64_t *id)
{
    return script_store(st, name, source, len, 1, run_mode, NULL, id);
}

int
pt_store_script_set_run_mode(pt_store *st, int64_t id, const char *run_mode)
{
    int rc = script_check_mode(st, run_mode);

    if (rc != 0)
        return rc;
    return mutate_one(st, "UPDATE script_meta SET run_mode = ?1 WHERE id = ?2", run_mode, id,
                      "update", "no script with id %lld", (long long)id);
}

int
pt_store_script_get(pt_store *st, const char *name, int version, pt_script **out)
{
    pt_script *list = NULL;
    size_t n = 0;
    int64_t exists = 0;
    int rc;

    *out = NULL;
    if (version < 0) {
        seterr(st, "invalid version %d", version);
        return PT_EINVAL;
    }
    /* ?2 = 0 selects the current version. */
    rc = script_rows(
        st, SCRIPT_COLS SCRIPT_FROM "WHERE s.name = ?1 AND v.version = iif(?2 = 0, s.current, ?2)",
        name, version, &list, &n);
    if (rc != 0)
        return rc;
    if (n == 0) {
        pt_store_scripts_free(list, n);
        rc = query_int(st, "SELECT 1 FROM scripts WHERE name = ?1", name, 0, &exists);
        if (rc < 0)
            return rc;
        if (rc == 0)
            seterr(st, "no script named '%s'", name);
        else
            seterr(st, "script '%s' has no version %d", name, version);
        return PT_ENOTFOUND;
    }
    *out = malloc(sizeof **out);
    if (*out == NULL) {
        pt_store_scripts_free(list, n);
        seterr(st, "out of memory");
        return PT_ENOMEM;
    }
    **out = list[0];
    free(list); /* the fields moved to *out */
    return 0;
}

int
pt_store_script_rollback(pt_store *st, const char *name, int version, int *now_current)
{
    int64_t current = 0, target = 0;
    int rc;

    if (version < 0) {
        seterr(st, "invalid version %d", version);
        return PT_EINVAL;
    }
    rc = begin(st);
    if (rc != 0)
        return rc;
    rc = query_int(st, "SELECT current FROM scripts WHERE name = ?1", name, 0, &current);
    if (rc < 0)
        goto fail;
    if (rc == 0) {
        seterr(st, "no script named '%s'", name);
        rc = PT_ENOTFOUND;
        goto fail;
    }
    if (version == 0) {
        rc = query_int(st,
                       "SELECT max(version) FROM script_versions WHERE name = ?1 AND version < ?2 "
                       "HAVING count(*) > 0",
                       name, current, &target);
        if (rc < 0)
            goto fail;
        if (rc == 0) {
            seterr(st, "script '%s' has no version before %lld", name, (long long)current);
            rc = PT_EINVAL;
            goto fail;
        }
    } else {
        rc = query_int(st, "SELECT version FROM script_versions WHERE name = ?1 AND version = ?2",
                       name, version, &target);
        if (rc < 0)
            goto fail;
        if (rc == 0) {
            seterr(st, "script '%s' has no version %d", name, version);
            rc = PT_ENOTFOUND;
            goto fail;
        }
    }
    if (target == current) {
        rollback(st); /* nothing to change */
    } else {
        rc = finish(st, run_sql(st, "UPDATE scripts SET current = ?2 WHERE name = ?1", name, target,
                                "rollback script"));
        if (rc != 0)
            return rc;
    }
    if (now_current != NULL)
        *now_current = (int)target;
    return 0;
fail:
    rollback(st);
    return rc;
}

/* Writes into st->err the name of one endpoint that uses script `name`; returns 1 if there is
 * one, 0 if none, or a pt_err. */
static int
script_user(pt_store *st, const char *name)
{
    sqlite3_stmt *stmt = NULL;
    int rc =
        prepare(st, "SELECT name FROM endpoints WHERE script = ?1 ORDER BY name LIMIT 1", &stmt);

    if (rc != 0)
        return rc;
    sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        seterr(st, "script '%s' is used by endpoint '%s'", name,
               (const char *)sqlite3_column_text(stmt, 0));
        rc = 1;
    } else if (rc == SQLITE_DONE) {
        rc = 0;
    } else {
        rc = dberr(st, "find endpoints");
    }
    sqlite3_finalize(stmt);
    return rc;
}

int
pt_store_script_rm(pt_store *st, const char *name)
{
    int rc;

    rc = begin(st);
    if (rc != 0)
        return rc;
    rc = script_user(st, name);
    if (rc == 1)
        rc = PT_EEXIST;
    if (rc == 0)
        rc = run_sql(st, "DELETE FROM script_versions WHERE name = ?1", name, 0,
                     "remove script versions");
    if (rc == 0)
        rc = run_sql(st, "DELETE FROM scripts WHERE name = ?1", name, 0, "remove script");
    if (rc == 0 && sqlite3_changes(st->db) == 0) {
        seterr(st, "no script named '%s'", name);
        rc = PT_ENOTFOUND;
    }
    return finish(st, rc);
}

/* Runs sql with the text parameters ?1 = a and ?2 = b (borrowed) to completion. */
static int
run_sql_tt(pt_store *st, const char *sql, const char *a, const char *b, const char *what)
{
    sqlite3_stmt *stmt = NULL;
    int rc = prepare(st, sql, &stmt);

    if (rc != 0)
        return rc;
    sqlite3_bind_text(stmt, 1, a, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, b, -1, SQLITE_STATIC);
    return run_stmt(st, stmt, what);
}

int
pt_store_script_rename(pt_store *st, const char *name, const char *new_name)
{
    /* Every place that names a script, ?1 the old name and ?2 the new one. script_seq keeps
     * the old name's row (invariant 3: a new script under the old name goes on from its last
     * version) and gets one for the new name. */
    static const char *const moves[] = {
        "INSERT INTO script_seq(name, last) VALUES "
        "(?1, (SELECT max(version) FROM script_versions WHERE name = ?1)) "
        "ON CONFLICT(name) DO UPDATE SET last = max(last, excluded.last)",
        "UPDATE scripts SET name = ?2 WHERE name = ?1",
        "UPDATE script_versions SET name = ?2 WHERE name = ?1",
        "UPDATE script_meta SET name = ?2 WHERE name = ?1",
        "INSERT INTO script_seq(name, last) SELECT ?2, last FROM script_seq WHERE name = ?1",
        "UPDATE endpoints SET script = ?2 WHERE script = ?1",
    };
    int64_t one = 0;
    int rc;

    rc = script_check_name(st, new_name);
    if (rc != 0)
        return rc;
    rc = begin(st);
    if (rc != 0)
        return rc;
    rc = query_int(st, "SELECT 1 FROM scripts WHERE name = ?1", name, 0, &one);
    if (rc < 0)
        goto done;
    if (rc == 0) {
        seterr(st, "no script named '%s'", name);
        rc = PT_ENOTFOUND;
        goto done;
    }
    /* Invariant 3 again: workers cache compiled modules by (name, version) and the versions
     * keep their numbers, so the new name must never have had versions of its own. */
    rc = query_int(st,
                   "SELECT 1 WHERE EXISTS (SELECT 1 FROM scripts WHERE name = ?1) "
                   "OR EXISTS (SELECT 1 FROM script_seq WHERE name = ?1)",
                   new_name, 0, &one);
    if (rc < 0)
        goto done;
    if (rc == 1) {
        seterr(st,
               strcmp(name, new_name) == 0
                   ? "script '%s' already has that name"
                   : "the script name '%s' is taken, or was used before (the versions of a "
                     "name are never reused)",
               new_name);
        rc = PT_EEXIST;
        goto done;
    }
    /* The foreign keys hold again once every table is updated: check them at COMMIT. */
    rc = exec_sql(st, "PRAGMA defer_foreign_keys = ON");
    for (size_t i = 0; rc == 0 && i < sizeof moves / sizeof moves[0]; i++)
        rc = run_sql_tt(st, moves[i], name, new_name, "rename script");
    /* Webhook sources (store_webhooks.c) name their processing script, when the table exists. */
    if (rc == 0)
        rc = query_int(st,
                       "SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                       "name = 'webhook_sources'",
                       NULL, 0, &one);
    if (rc == 1)
        rc = run_sql_tt(st, "UPDATE webhook_sources SET script = ?2 WHERE script = ?1", name,
                        new_name, "rename script");
done:
    return finish(st, rc);
}

int
pt_store_script_list(pt_store *st, pt_script **out, size_t *n)
{
    return script_rows(st, SCRIPT_COLS SCRIPT_FROM "WHERE v.version = s.current ORDER BY s.name",
                       NULL, 0, out, n);
}

int
pt_store_script_versions(pt_store *st, const char *name, pt_script **out, size_t *n)
{
    int rc = script_rows(st, SCRIPT_COLS SCRIPT_FROM "WHERE s.name = ?1 ORDER BY v.version", name,
                         0, out, n);

    if (rc == 0 && *n == 0) {
        seterr(st, "no script named '%s'", name);
        return PT_ENOTFOUND;
    }
    return rc;
}

/* Reads the name of script `id` into a new string (caller frees). PT_ENOTFOUND with the message
 * naming the id. */
static int
script_name_of(pt_store *st, int64_t id, char **name)
{
    sqlite3_stmt *stmt = NULL;
    int rc;

    *name = NULL;
    rc = prepare(st, "SELECT name FROM script_meta WHERE id = ?1", &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(stmt, 1, id);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        *name = coldup(stmt, 0);
        rc = *name != NULL ? 0 : PT_ENOMEM;
        if (rc != 0)
            seterr(st, "out of memory");
    } else if (rc == SQLITE_DONE) {
        seterr(st, "no script with id %lld", (long long)id);
        rc = PT_ENOTFOUND;
    } else {
        rc = dberr(st, "find script");
    }
    sqlite3_finalize(stmt);
    return rc;
}

int
pt_store_script_get_by_id(pt_store *st, int64_t id, int version, pt_script **out)
{
    char *name = NULL;
    int rc;

    *out = NULL;
    rc = script_name_of(st, id, &name);
    if (rc == 0)
        rc = pt_store_script_get(st, name, version, out);
    free(name);
    return rc;
}

/* ---- script state ------------------------------------------------------------------------- */

int
pt_store_state_get(pt_store *st, int64_t id, char **value, size_t *len)
{
    sqlite3_stmt *stmt = NULL;
    int rc;

    *value = NULL;
    *len = 0;
    rc = prepare(st, "SELECT state FROM script_meta WHERE id = ?1", &stmt);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(stmt, 1, id);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        rc = 0;
        if (sqlite3_column_type(stmt, 0) != SQLITE_NULL) {
            const void *p = sqlite3_column_blob(stmt, 0);
            size_t n = (size_t)sqlite3_column_bytes(stmt, 0);
            *value = malloc(n + 1);
            if (*value == NULL) {
                seterr(st, "out of memory");
                rc = PT_ENOMEM;
            } else {
                if (n > 0)
                    memcpy(*value, p, n);
                (*value)[n] = '\0';
                *len = n;
            }
        }
    } else if (rc == SQLITE_DONE) {
        seterr(st, "no script with id %lld", (long long)id);
        rc = PT_ENOTFOUND;
    } else {
        rc = dberr(st, "read script state");
    }
    sqlite3_finalize(stmt);
    return rc;
}

int
pt_store_state_set(pt_store *st, int64_t id, const char *value, size_t len)
{
    sqlite3_stmt *stmt = NULL;
    int rc;

    if (len > PT_STORE_STATE_MAX) {
        seterr(st, "state of %zu bytes is too big (at most %u bytes)", len, PT_STORE_STATE_MAX);
        return PT_ETOOBIG;
    }
    rc = begin(st);
    if (rc != 0)
        return rc;
    rc = prepare(st, "UPDATE script_meta SET state = ?2, state_updated = ?3 WHERE id = ?1", &stmt);
    if (rc == 0) {
        sqlite3_bind_int64(stmt, 1, id);
        sqlite3_bind_text(stmt, 2, value, (int)len, SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 3, (int64_t)time(NULL));
        rc = run_stmt(st, stmt, "store script state");
    }
    if (rc == 0 && sqlite3_changes(st->db) == 0) {
        seterr(st, "no script with id %lld", (long long)id);
        rc = PT_ENOTFOUND;
    }
    return pt_store_sqlite_finish_quiet(st, rc); /* invariant 7: no bump */
}

/* ---- endpoints ---------------------------------------------------------------------------- */

void
pt_endpoint_clear(pt_endpoint *ep)
{
    if (ep == NULL)
        return;
    free(ep->name);
    free(ep->path);
    free(ep->script);
    free(ep->auth);
    memset(ep, 0, sizeof *ep);
}

static void
endpoint_clear(void *elem)
{
    pt_endpoint_clear(elem);
}

/* The router's view of a path: every {param} and `*` segment becomes `*`. Caller frees. */
static char *
path_shape(const char *path)
{
    char *out = malloc(strlen(path) + 1);
    const char *p = path;
    char *o = out;

    if (out == NULL)
        return NULL;
    while (*p != '\0') {
        if (*p == '/') {
            *o++ = *p++;
            continue;
        }
        const char *end = strchr(p, '/');
        size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
        if (p[0] == '{' || (n == 1 && p[0] == '*')) {
            *o++ = '*';
        } else {
            memcpy(o, p, n);
            o += n;
        }
        p += n;
    }
    *o = '\0';
    return out;
}

/* Fills elem (a zeroed pt_endpoint) from a row of endpoint_cols. Returns 0 or PT_ENOMEM,
 * leaving what it copied for endpoint_clear. */
static int
endpoint_read(pt_store *st, sqlite3_stmt *stmt, void *elem)
{
    pt_endpoint *ep = elem;

    (void)st;
    ep->name = coldup(stmt, 0);
    ep->path = coldup(stmt, 1);
    ep->methods = (unsigned)sqlite3_column_int(stmt, 2);
    ep->script = coldup(stmt, 3);
    ep->auth = coldup(stmt, 4);
    ep->created = sqlite3_column_int64(stmt, 5);
    if (ep->name == NULL || ep->path == NULL || ep->script == NULL || ep->auth == NULL)
        return PT_ENOMEM;
    return 0;
}

static const pt_store_rowkind endpoint_kind = {.size = sizeof(pt_endpoint),
                                               .read = endpoint_read,
                                               .clear = endpoint_clear,
                                               .what = "list endpoints"};

void
pt_store_endpoints_free(pt_endpoint *list, size_t n)
{
    free_rows(list, n, &endpoint_kind);
}

static const char endpoint_cols[] = "SELECT name, path, methods, script, auth, created "
                                    "FROM endpoints";

int
pt_store_endpoint_add(pt_store *st, const pt_endpoint *ep)
{
    sqlite3_stmt *stmt = NULL;
    char reason[256] = "";
    char *shape = NULL;
    int64_t one = 0;
    int rc;

    rc = check_name(st, "endpoint", ep->name);
    if (rc != 0)
        return rc;
    if (ep->path == NULL || pt_http_check_path(ep->path, reason, sizeof reason) != 0) {
        seterr(st, "invalid path '%s': %s", ep->path != NULL ? ep->path : "",
               reason[0] != '\0' ? reason : "not a valid endpoint path");
        return PT_EINVAL;
    }
    if (ep->methods == 0 || (ep->methods & ~0x7fu) != 0) {
        seterr(st, "invalid methods for endpoint '%s'", ep->name);
        return PT_EINVAL;
    }
    if (ep->auth == NULL || (strcmp(ep->auth, "public") != 0 && strcmp(ep->auth, "jwt") != 0 &&
                             strcmp(ep->auth, "apikey") != 0)) {
        seterr(st, "invalid auth '%s' (public, jwt or apikey)", ep->auth != NULL ? ep->auth : "");
        return PT_EINVAL;
    }
    if (ep->script == NULL) {
        seterr(st, "endpoint '%s' needs a script", ep->name);
        return PT_EINVAL;
    }
    shape = path_shape(ep->path);
    if (shape == NULL) {
        seterr(st, "out of memory");
        return PT_ENOMEM;
    }

    rc = begin(st);
    if (rc != 0) {
        free(shape);
        return rc;
    }
    rc = query_int(st, "SELECT 1 FROM scripts WHERE name = ?1", ep->script, 0, &one);
    if (rc < 0)
        goto done;
    if (rc == 0) {
        seterr(st, "no script named '%s'", ep->script);
        rc = PT_ENOTFOUND;
        goto done;
    }
    rc = query_int(st, "SELECT 1 FROM endpoints WHERE name = ?1", ep->name, 0, &one);
    if (rc < 0)
        goto done;
    if (rc == 1) {
        seterr(st, "endpoint '%s' already exists", ep->name);
        rc = PT_EEXIST;
        goto done;
    }
    rc = prepare(st, "SELECT name, path FROM endpoints WHERE path = ?1 OR shape = ?2 LIMIT 1",
                 &stmt);
    if (rc != 0)
        goto done;
    sqlite3_bind_text(stmt, 1, ep->path, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, shape, -1, SQLITE_STATIC);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        seterr(st, "endpoint '%s' already uses path %s", sqlite3_column_text(stmt, 0),
               sqlite3_column_text(stmt, 1));
        rc = PT_EEXIST;
    } else if (rc != SQLITE_DONE) {
        rc = dberr(st, "check path");
    } else {
        rc = 0;
    }
    sqlite3_finalize(stmt);
    if (rc != 0)
        goto done;

    rc = prepare(st,
                 "INSERT INTO endpoints(name, path, shape, methods, script, auth, created) "
                 "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                 &stmt);
    if (rc != 0)
        goto done;
    sqlite3_bind_text(stmt, 1, ep->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, ep->path, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, shape, -1, SQLITE_STATIC);
    sqlite3_bind_int(stmt, 4, (int)ep->methods);
    sqlite3_bind_text(stmt, 5, ep->script, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 6, ep->auth, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 7, ep->created != 0 ? ep->created : (int64_t)time(NULL));
    rc = run_stmt(st, stmt, "add endpoint");
done:
    rc = finish(st, rc);
    free(shape);
    return rc;
}

int
pt_store_endpoint_get(pt_store *st, const char *name, pt_endpoint *out)
{
    char sql[128];
    int rc;

    snprintf(sql, sizeof sql, "%s WHERE name = ?1", endpoint_cols);
    rc = get_row(st, sql, name, &endpoint_kind, out, "get endpoint");
    if (rc == PT_ENOTFOUND)
        seterr(st, "no endpoint named '%s'", name);
    return rc;
}

int
pt_store_endpoint_rm(pt_store *st, const char *name)
{
    return mutate_one(st, "DELETE FROM endpoints WHERE name = ?1", name, 0, "remove endpoint",
                      "no endpoint named '%s'", name);
}

int
pt_store_endpoint_list(pt_store *st, pt_endpoint **out, size_t *n)
{
    void *list = NULL;
    char sql[128];
    int rc;

    snprintf(sql, sizeof sql, "%s ORDER BY name", endpoint_cols);
    rc = list_rows(st, sql, NULL, 0, &endpoint_kind, &list, n);
    *out = list;
    return rc;
}

/* ---- connections -------------------------------------------------------------------------- */

/* The built-in warehouse connection, which has no row in `connections`. */
#define DW_NAME "dw"
#define DW_KIND "sqlite"
#define DW_DSN "warehouse/dw"

void
pt_connection_clear(pt_connection *c)
{
    if (c == NULL)
        return;
    free(c->name);
    free(c->kind);
    free(c->dsn);
    memset(c, 0, sizeof *c);
}

static void
connection_clear(void *elem)
{
    pt_connection_clear(elem);
}

/* Fills c; a relative sqlite dsn is joined with the data dir. Returns 0 or PT_ENOMEM. */
static int
connection_fill(pt_store *st, pt_connection *c, const char *name, const char *kind, const char *dsn)
{
    memset(c, 0, sizeof *c);
    c->name = xstrdup(name);
    c->kind = xstrdup(kind);
    if (strcmp(kind, "sqlite") == 0 && dsn[0] != '/') {
        size_t n = strlen(st->datadir) + strlen(dsn) + 2;
        c->dsn = malloc(n);
        if (c->dsn != NULL)
            snprintf(c->dsn, n, "%s/%s", st->datadir, dsn);
    } else {
        c->dsn = xstrdup(dsn);
    }
    if (c->name == NULL || c->kind == NULL || c->dsn == NULL) {
        pt_connection_clear(c);
        seterr(st, "out of memory");
        return PT_ENOMEM;
    }
    return 0;
}

/* Fills elem (a pt_connection) from a row (name, kind, dsn) with connection_fill. */
static int
connection_read(pt_store *st, sqlite3_stmt *stmt, void *elem)
{
    return connection_fill(st, elem, (const char *)sqlite3_column_text(stmt, 0),
                           (const char *)sqlite3_column_text(stmt, 1),
                           (const char *)sqlite3_column_text(stmt, 2));
}

static const pt_store_rowkind connection_kind = {.size = sizeof(pt_connection),
                                                 .read = connection_read,
                                                 .clear = connection_clear,
                                                 .what = "list connections"};

void
pt_store_connections_free(pt_connection *list, size_t n)
{
    free_rows(list, n, &connection_kind);
}

int
pt_store_connection_add(pt_store *st, const pt_connection *c)
{
    sqlite3_stmt *stmt = NULL;
    int64_t one = 0;
    int rc;

    rc = check_name(st, "connection", c->name);
    if (rc != 0)
        return rc;
    if (strcmp(c->name, DW_NAME) == 0) {
        seterr(st, "connection 'dw' already exists (it is built in)");
        return PT_EEXIST;
    }
    if (c->kind == NULL || (strcmp(c->kind, "sqlite") != 0 && strcmp(c->kind, "postgres") != 0)) {
        seterr(st, "invalid connection kind '%s' (sqlite or postgres)",
               c->kind != NULL ? c->kind : "");
        return PT_EINVAL;
    }
    if (c->dsn == NULL || c->dsn[0] == '\0') {
        seterr(st, "connection '%s' needs a %s", c->name,
               strcmp(c->kind, "sqlite") == 0 ? "directory" : "DSN");
        return PT_EINVAL;
    }
    rc = begin(st);
    if (rc != 0)
        return rc;
    rc = query_int(st, "SELECT 1 FROM connections WHERE name = ?1", c->name, 0, &one);
    if (rc == 1) {
        seterr(st, "connection '%s' already exists", c->name);
        rc = PT_EEXIST;
    }
    if (rc != 0)
        goto done;
    rc = prepare(st, "INSERT INTO connections(name, kind, dsn) VALUES (?1, ?2, ?3)", &stmt);
    if (rc != 0)
        goto done;
    sqlite3_bind_text(stmt, 1, c->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, c->kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, c->dsn, -1, SQLITE_STATIC);
    rc = run_stmt(st, stmt, "add connection");
done:
    return finish(st, rc);
}

int
pt_store_warehouse_set(pt_store *st, const char *dsn)
{
    sqlite3_stmt *stmt = NULL;
    pt_connection old = {0};
    int rc;

    if (dsn == NULL || dsn[0] == '\0') {
        seterr(st, "the default warehouse needs a PostgreSQL DSN");
        return PT_EINVAL;
    }
    rc = begin(st);
    if (rc != 0)
        return rc;
    rc = get_row(st, "SELECT name, kind, dsn FROM connections WHERE name = ?1", DW_NAME,
                 &connection_kind, &old, "get connection");
    if (rc == 0) {
        /* Same DSN: init run again with the same option. Anything else would strand the data
         * of the warehouse scripts have been writing to. */
        if (strcmp(old.kind, "postgres") != 0 || strcmp(old.dsn, dsn) != 0) {
            seterr(st, "the default warehouse 'dw' is already set to another PostgreSQL "
                       "database; it cannot be changed");
            rc = PT_EEXIST;
        }
        goto done;
    }
    if (rc != PT_ENOTFOUND)
        goto done;
    rc = prepare(st, "INSERT INTO connections(name, kind, dsn) VALUES (?1, 'postgres', ?2)", &stmt);
    if (rc != 0)
        goto done;
    sqlite3_bind_text(stmt, 1, DW_NAME, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, dsn, -1, SQLITE_STATIC);
    rc = run_stmt(st, stmt, "set the default warehouse");
done:
    pt_connection_clear(&old);
    return finish(st, rc);
}

int
pt_store_connection_get(pt_store *st, const char *name, pt_connection *out)
{
    int rc;

    rc = get_row(st, "SELECT name, kind, dsn FROM connections WHERE name = ?1", name,
                 &connection_kind, out, "get connection");
    if (rc == PT_ENOTFOUND && strcmp(name, DW_NAME) == 0)
        return connection_fill(st, out, DW_NAME, DW_KIND, DW_DSN);
    if (rc == PT_ENOTFOUND)
        seterr(st, "no connection named '%s'", name);
    return rc;
}

int
pt_store_connection_rm(pt_store *st, const char *name)
{
    if (strcmp(name, DW_NAME) == 0) {
        seterr(st, "connection 'dw' is built in and cannot be removed");
        return PT_EINVAL;
    }
    return mutate_one(st, "DELETE FROM connections WHERE name = ?1", name, 0, "remove connection",
                      "no connection named '%s'", name);
}

int
pt_store_connection_list(pt_store *st, pt_connection **out, size_t *n)
{
    void *list = NULL;
    int rc;

    /* The default warehouse comes first (its stored row when init made it PostgreSQL, else the
     * built-in one), then the stored ones by name. */
    rc = list_rows(st,
                   "SELECT name, kind, dsn FROM ("
                   "SELECT 0 AS builtin, '" DW_NAME "' AS name, '" DW_KIND "' AS kind, '" DW_DSN
                   "' AS dsn WHERE NOT EXISTS (SELECT 1 FROM connections WHERE name = '" DW_NAME
                   "') UNION ALL SELECT name <> '" DW_NAME "', name, kind, dsn FROM connections) "
                   "ORDER BY builtin, name",
                   NULL, 0, &connection_kind, &list, n);
    *out = list;
    return rc;
}

/* ---- authorization: shared helpers -------------------------------------------------------- */

/* strdup of a text column, or NULL for SQL NULL. *oom is set when the copy failed. */
static char *
colnull(sqlite3_stmt *stmt, int i, int *oom)
{
    char *s;

    if (sqlite3_column_type(stmt, i) == SQLITE_NULL)
        return NULL;
    s = coldup(stmt, i);
    if (s == NULL)
        *oom = 1;
    return s;
}

/* Checks, inside a transaction, that every name of a space-separated scope is an endpoint. */
static int
check_scope(pt_store *st, const char *scope)
{
    const char *p = scope;
    int64_t one = 0;
    char name[80];
    int rc;

    while (p != NULL && *p != '\0') {
        const char *e;
        size_t n;

        while (*p == ' ')
            p++;
        if (*p == '\0')
            break;
        for (e = p; *e != '\0' && *e != ' '; e++)
            ;
        n = (size_t)(e - p);
        if (n >= sizeof name) {
            seterr(st, "invalid endpoint name in scope");
            return PT_EINVAL;
        }
        memcpy(name, p, n);
        name[n] = '\0';
        rc = query_int(st, "SELECT 1 FROM endpoints WHERE name = ?1", name, 0, &one);
        if (rc < 0)
            return rc;
        if (rc == 0) {
            seterr(st, "no endpoint named '%s'", name);
            return PT_ENOTFOUND;
        }
        p = e;
    }
    return 0;
}

/* ---- tokens ------------------------------------------------------------------------------- */

static void
token_clear(void *elem)
{
    pt_token *t = elem;

    free(t->id);
    free(t->name);
    free(t->scope);
    free(t->rate);
}

/* Fills elem (a zeroed pt_token) from a row (id, name, created, expires, scope, rate, revoked,
 * last_used). Returns 0 or PT_ENOMEM, leaving what it copied for token_clear. */
static int
token_read(pt_store *st, sqlite3_stmt *stmt, void *elem)
{
    pt_token *t = elem;
    int oom = 0;

    (void)st;
    t->id = colnull(stmt, 0, &oom);
    t->name = colnull(stmt, 1, &oom);
    t->created = sqlite3_column_int64(stmt, 2);
    t->expires = sqlite3_column_int64(stmt, 3);
    t->scope = colnull(stmt, 4, &oom);
    t->rate = colnull(stmt, 5, &oom);
    t->revoked = sqlite3_column_int64(stmt, 6);
    t->last_used = sqlite3_column_int64(stmt, 7);
    return oom ? PT_ENOMEM : 0;
}

static const pt_store_rowkind token_kind = {
    .size = sizeof(pt_token), .read = token_read, .clear = token_clear, .what = "list tokens"};

void
pt_store_tokens_free(pt_token *list, size_t n)
{
    free_rows(list, n, &token_kind);
}

int
pt_store_token_add(pt_store *st, const pt_token *t)
{
    sqlite3_stmt *stmt = NULL;
    int64_t one = 0;
    int rc;

    if (t->id == NULL || t->id[0] == '\0' || strlen(t->id) > 64) {
        seterr(st, "invalid token id");
        return PT_EINVAL;
    }
    rc = check_name(st, "token", t->name);
    if (rc != 0)
        return rc;
    rc = begin(st);
    if (rc != 0)
        return rc;
    rc = check_scope(st, t->scope);
    if (rc != 0)
        goto done;
    rc = query_int(st, "SELECT 1 FROM tokens WHERE id = ?1", t->id, 0, &one);
    if (rc == 1) {
        seterr(st, "token id '%s' already exists", t->id);
        rc = PT_EEXIST;
    }
    if (rc != 0)
        goto done;
    rc = prepare(st,
                 "INSERT INTO tokens(id, name, created, expires, scope, rate) "
                 "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                 &stmt);
    if (rc != 0)
        goto done;
    sqlite3_bind_text(stmt, 1, t->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, t->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 3, t->created != 0 ? t->created : (int64_t)time(NULL));
    bind_opt_int(stmt, 4, t->expires);
    bind_opt_text(stmt, 5, t->scope);
    bind_opt_text(stmt, 6, t->rate);
    rc = run_stmt(st, stmt, "add token");
done:
    return finish(st, rc);
}

int
pt_store_token_revoke(pt_store *st, const char *id)
{
    return mutate_one(st, "UPDATE tokens SET revoked = coalesce(revoked, ?2) WHERE id = ?1", id,
                      (int64_t)time(NULL), "update", "no token with id '%.64s'", id);
}

int
pt_store_token_list(pt_store *st, pt_token **out, size_t *n)
{
    void *list = NULL;
    int rc = list_rows(st,
                       "SELECT id, name, created, expires, scope, rate, revoked, last_used "
                       "FROM tokens ORDER BY created, rowid",
                       NULL, 0, &token_kind, &list, n);

    *out = list;
    return rc;
}

/* ---- API keys ----------------------------------------------------------------------------- */

static void
apikey_clear(void *elem)
{
    pt_apikey *k = elem;

    free(k->name);
    free(k->hint);
    free(k->scope);
    free(k->rate);
}

/* Fills elem (a zeroed pt_apikey) from a row (id, name, hash, hint, created, scope, rate,
 * revoked, last_used). Returns 0 or PT_ENOMEM, leaving what it copied for apikey_clear. */
static int
apikey_read(pt_store *st, sqlite3_stmt *stmt, void *elem)
{
    pt_apikey *k = elem;
    int oom = 0;

    (void)st;
    k->id = sqlite3_column_int64(stmt, 0);
    k->name = colnull(stmt, 1, &oom);
    if (sqlite3_column_bytes(stmt, 2) == PT_STORE_HASH_BYTES)
        memcpy(k->hash, sqlite3_column_blob(stmt, 2), PT_STORE_HASH_BYTES);
    k->hint = colnull(stmt, 3, &oom);
    k->created = sqlite3_column_int64(stmt, 4);
    k->scope = colnull(stmt, 5, &oom);
    k->rate = colnull(stmt, 6, &oom);
    k->revoked = sqlite3_column_int64(stmt, 7);
    k->last_used = sqlite3_column_int64(stmt, 8);
    return oom ? PT_ENOMEM : 0;
}

static const pt_store_rowkind apikey_kind = {
    .size = sizeof(pt_apikey), .read = apikey_read, .clear = apikey_clear, .what = "list API keys"};

void
pt_store_apikeys_free(pt_apikey *list, size_t n)
{
    free_rows(list, n, &apikey_kind);
}

int
pt_store_apikey_add(pt_store *st, pt_apikey *k)
{
    sqlite3_stmt *stmt = NULL;
    int64_t one = 0;
    int rc;

    rc = check_name(st, "API key", k->name);
    if (rc != 0)
        return rc;
    rc = begin(st);
    if (rc != 0)
        return rc;
    rc = check_scope(st, k->scope);
    if (rc != 0)
        goto done;
    rc = query_int(st, "SELECT 1 FROM apikeys WHERE name = ?1 AND revoked IS NULL", k->name, 0,
                   &one);
    if (rc == 1) {
        seterr(st, "an API key named '%s' already exists (revoke it first)", k->name);
        rc = PT_EEXIST;
    }
    if (rc != 0)
        goto done;
    rc = prepare(st,
                 "INSERT INTO apikeys(name, hash, hint, created, scope, rate) "
                 "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                 &stmt);
    if (rc != 0)
        goto done;
    sqlite3_bind_text(stmt, 1, k->name, -1, SQLITE_STATIC);
    sqlite3_bind_blob(stmt, 2, k->hash, PT_STORE_HASH_BYTES, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 3, k->hint != NULL ? k->hint : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 4, k->created != 0 ? k->created : (int64_t)time(NULL));
    bind_opt_text(stmt, 5, k->scope);
    bind_opt_text(stmt, 6, k->rate);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_CONSTRAINT) {
        seterr(st, "API key already exists");
        rc = PT_EEXIST;
    } else if (rc != SQLITE_DONE) {
        rc = dberr(st, "add API key");
    } else {
        rc = 0;
        k->id = sqlite3_last_insert_rowid(st->db);
    }
    sqlite3_finalize(stmt);
done:
    return finish(st, rc);
}

int
pt_store_apikey_revoke(pt_store *st, const char *name)
{
    return mutate_one(st, "UPDATE apikeys SET revoked = ?2 WHERE name = ?1 AND revoked IS NULL",
                      name, (int64_t)time(NULL), "update",
                      "no API key named '%.64s' (or it is already revoked)", name);
}

int
pt_store_apikey_list(pt_store *st, pt_apikey **out, size_t *n)
{
    void *list = NULL;
    int rc = list_rows(st,
                       "SELECT id, name, hash, hint, created, scope, rate, revoked, last_used "
                       "FROM apikeys ORDER BY id",
                       NULL, 0, &apikey_kind, &list, n);

    *out = list;
    return rc;
}

/* ---- last used ---------------------------------------------------------------------------- */

/* Raises last_used for each entry of uses with sql (?1 id, ?2 when). */
static int
mark_rows(pt_store *st, const char *sql, const pt_store_use *uses, size_t n, int int_ids)
{
    sqlite3_stmt *stmt = NULL;
    int rc;

    if (n == 0)
        return 0;
    rc = prepare(st, sql, &stmt);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (int_ids)
            sqlite3_bind_int64(stmt, 1, strtoll(uses[i].id, NULL, 10));
        else
            sqlite3_bind_text(stmt, 1, uses[i].id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 2, uses[i].when);
        rc = step_done(st, stmt, "mark used");
        sqlite3_reset(stmt);
    }
    sqlite3_finalize(stmt);
    return rc;
}

int
pt_store_mark_used(pt_store *st, const pt_store_use *tokens, size_t ntokens,
                   const pt_store_use *keys, size_t nkeys)
{
    int rc;

    if (ntokens == 0 && nkeys == 0)
        return 0;
    /* A worker calls this on its event loop: never wait for the lock, never fsync (a lost
     * last-used time after a power cut is harmless). */
    sqlite3_busy_timeout(st->db, 0);
    exec_sql(st, "PRAGMA synchronous = NORMAL");
    rc = begin(st);
    if (rc != 0) {
        if (sqlite3_errcode(st->db) == SQLITE_BUSY)
            rc = PT_EUNAVAIL;
        goto done;
    }
    rc =
        mark_rows(st, "UPDATE tokens SET last_used = max(coalesce(last_used, 0), ?2) WHERE id = ?1",
                  tokens, ntokens, 0);
    if (rc == 0)
        rc = mark_rows(
            st, "UPDATE apikeys SET last_used = max(coalesce(last_used, 0), ?2) WHERE id = ?1",
            keys, nkeys, 1);
    if (rc == 0)
        rc = exec_sql(st, "COMMIT"); /* no bump: see store.h */
    if (rc != 0)
        rollback(st);
done:
    exec_sql(st, "PRAGMA synchronous = FULL");
    sqlite3_busy_timeout(st->db, BUSY_TIMEOUT_MS);
    return rc;
}

/* ---- secrets ------------------------------------------------------------------------------ */

/* Is name 1 to 128 bytes of well-formed UTF-8 without control characters? (secret and script
 * names) */
static int
text_name_valid(const char *name)
{
    const unsigned char *p = (const unsigned char *)name;
    size_t n;

    if (name == NULL || (n = strlen(name)) == 0 || n > 128)
        return 0;
    while (*p != '\0') {
        size_t extra;
        uint32_t cp;
        if (*p < 0x20 || *p == 0x7f)
            return 0;
        if (*p < 0x80) {
            p++;
            continue;
        }
        /* Well-formed UTF-8 only: no overlongs, surrogates or code points past U+10FFFF. */
        if (*p >= 0xc2 && *p <= 0xdf) {
            extra = 1;
            cp = *p & 0x1f;
        } else if (*p >= 0xe0 && *p <= 0xef) {
            extra = 2;
            cp = *p & 0x0f;
        } else if (*p >= 0xf0 && *p <= 0xf4) {
            extra = 3;
            cp = *p & 0x07;
        } else {
            return 0;
        }
        for (size_t i = 1; i <= extra; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        if ((extra == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (extra == 3 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0x80 && cp <= 0x9f))
            return 0;
        p += extra + 1;
    }
    return 1;
}

int
pt_store_secret_name_valid(const char *name)
{
    return text_name_valid(name);
}

void
pt_secret_clear(pt_secret *s)
{
    if (s == NULL)
        return;
    free(s->name);
    free(s->key_id);
    free(s->box);
    memset(s, 0, sizeof *s);
}

static void
secret_clear(void *elem)
{
    pt_secret_clear(elem);
}

/* Fills elem (a zeroed pt_secret) from a row (name, key_id, box, created, updated). Returns 0 or
 * PT_ENOMEM, leaving what it copied for secret_clear. */
static int
secret_read(pt_store *st, sqlite3_stmt *stmt, void *elem)
{
    pt_secret *s = elem;
    size_t n = (size_t)sqlite3_column_bytes(stmt, 2);
    const void *box = sqlite3_column_blob(stmt, 2);

    (void)st;
    s->name = coldup(stmt, 0);
    s->key_id = coldup(stmt, 1);
    s->box = malloc(n > 0 ? n : 1);
    s->box_len = n;
    s->created = sqlite3_column_int64(stmt, 3);
    s->updated = sqlite3_column_int64(stmt, 4);
    if (s->name == NULL || s->key_id == NULL || s->box == NULL)
        return PT_ENOMEM;
    if (n > 0)
        memcpy(s->box, box, n);
    return 0;
}

static const pt_store_rowkind secret_kind = {
    .size = sizeof(pt_secret), .read = secret_read, .clear = secret_clear, .what = "list secrets"};

void
pt_store_secrets_free(pt_secret *list, size_t n)
{
    free_rows(list, n, &secret_kind);
}

static int
secret_check_name(pt_store *st, const char *name)
{
    if (pt_store_secret_name_valid(name))
        return 0;
    seterr(st, "invalid secret name (1 to 128 bytes of UTF-8, no control characters)");
    return PT_EINVAL;
}

/* The settings row where a rotation records its master key (invariant 6). The table is shared
 * with store_webhooks.c, which creates it the same way when it first needs it. */
#define SECRET_KEY_SETTING "secrets_master_key_id"
static const char settings_sql[] = "CREATE TABLE IF NOT EXISTS settings("
                                   "  key TEXT PRIMARY KEY,"
                                   "  value TEXT NOT NULL);";

/* Reads the recorded master key fingerprint into out (inside or outside a transaction).
 * Returns 0, PT_ENOTFOUND when none is recorded, or a pt_err. */
static int
secret_key_read(pt_store *st, char *out, size_t outsz)
{
    sqlite3_stmt *stmt = NULL;
    int64_t one = 0;
    int rc;

    /* Read-only: an older store has no settings table yet, and readers do not create it. */
    rc = query_int(st, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'settings'",
                   NULL, 0, &one);
    if (rc <= 0)
        return rc < 0 ? rc : PT_ENOTFOUND;
    rc = prepare(st, "SELECT value FROM settings WHERE key = '" SECRET_KEY_SETTING "'", &stmt);
    if (rc != 0)
        return rc;
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        const unsigned char *v = sqlite3_column_text(stmt, 0);
        if (v == NULL || snprintf(out, outsz, "%s", (const char *)v) >= (int)outsz) {
            seterr(st, "metadata store: malformed %s setting", SECRET_KEY_SETTING);
            rc = PT_EINVAL;
        } else {
            rc = 0;
        }
    } else if (rc == SQLITE_DONE) {
        rc = PT_ENOTFOUND;
    } else {
        rc = dberr(st, "read the master key id");
    }
    sqlite3_finalize(stmt);
    return rc;
}

int
pt_store_secret_key_id(pt_store *st, char *out, size_t outsz)
{
    return secret_key_read(st, out, outsz);
}

int
pt_store_secret_put(pt_store *st, const pt_secret *s)
{
    sqlite3_stmt *stmt = NULL;
    char current[64];
    int rc;

    rc = secret_check_name(st, s->name);
    if (rc != 0)
        return rc;
    if (s->key_id == NULL || s->box == NULL || s->box_len == 0 || s->box_len > INT32_MAX) {
        seterr(st, "invalid secret record");
        return PT_EINVAL;
    }
    rc = begin(st);
    if (rc != 0)
        return rc;
    /* Invariant 6, under the write lock: no rotation can commit between this check and ours. */
    rc = secret_key_read(st, current, sizeof current);
    if (rc == 0 && strcmp(current, s->key_id) != 0) {
        seterr(st,
               "the master key was rotated (secrets are now under master key %s, this value "
               "was sealed under %.16s)",
               current, s->key_id);
        rc = PT_EUNAVAIL;
    }
    if (rc != 0 && rc != PT_ENOTFOUND)
        goto done;
    rc = prepare(st,
                 "INSERT INTO secrets(name, key_id, box, created, updated) "
                 "VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT(name) DO UPDATE SET "
                 "key_id = excluded.key_id, box = excluded.box, updated = excluded.updated",
                 &stmt);
    if (rc != 0)
        goto done;
    sqlite3_bind_text(stmt, 1, s->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, s->key_id, -1, SQLITE_STATIC);
    sqlite3_bind_blob(stmt, 3, s->box, (int)s->box_len, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 4, s->updated != 0 ? s->updated : (int64_t)time(NULL));
    rc = run_stmt(st, stmt, "store secret");
done:
    return finish(st, rc);
}

int
pt_store_secret_get(pt_store *st, const char *name, pt_secret *out)
{
    int rc = get_row(st, "SELECT name, key_id, box, created, updated FROM secrets WHERE name = ?1",
                     name, &secret_kind, out, "get secret");

    if (rc == PT_ENOTFOUND)
        seterr(st, "no secret named '%.128s'", name);
    return rc;
}

int
pt_store_secret_rm(pt_store *st, const char *name)
{
    return mutate_one(st, "DELETE FROM secrets WHERE name = ?1", name, 0, "update",
                      "no secret named '%.128s'", name);
}

/* Collects every secret row (inside or outside a transaction). Caller frees *out with
 * pt_store_secrets_free. */
static int
secret_rows(pt_store *st, pt_secret **out, size_t *n)
{
    void *list = NULL;
    int rc = list_rows(st, "SELECT name, key_id, box, created, updated FROM secrets ORDER BY name",
                       NULL, 0, &secret_kind, &list, n);

    *out = list;
    return rc;
}

int
pt_store_secret_list(pt_store *st, pt_secret **out, size_t *n)
{
    return secret_rows(st, out, n);
}

int
pt_store_secret_rewrite(pt_store *st, const char *key_id, int (*fn)(void *ctx, pt_secret *s),
                        void *ctx)
{
    sqlite3_stmt *stmt = NULL;
    pt_secret *list = NULL;
    size_t n = 0;
    int rc;

    if (key_id == NULL || key_id[0] == '\0' || strlen(key_id) > 63) {
        seterr(st, "invalid master key id");
        return PT_EINVAL;
    }
    rc = begin(st);
    if (rc != 0)
        return rc;
    rc = secret_rows(st, &list, &n);
    if (rc != 0)
        goto done;
    rc = prepare(st, "UPDATE secrets SET key_id = ?2, box = ?3 WHERE name = ?1", &stmt);
    if (rc != 0)
        goto done;
    for (size_t i = 0; i < n; i++) {
        rc = fn(ctx, &list[i]);
        if (rc != 0)
            goto done;
        if (list[i].key_id == NULL || strcmp(list[i].key_id, key_id) != 0) {
            seterr(st, "secret '%.128s' was not re-encrypted under master key %s", list[i].name,
                   key_id);
            rc = PT_EINVAL;
            goto done;
        }
        sqlite3_bind_text(stmt, 1, list[i].name, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 2, list[i].key_id, -1, SQLITE_STATIC);
        sqlite3_bind_blob(stmt, 3, list[i].box, (int)list[i].box_len, SQLITE_STATIC);
        rc = step_done(st, stmt, "rewrite secret");
        sqlite3_reset(stmt);
        if (rc != 0)
            goto done;
    }
    sqlite3_finalize(stmt);
    stmt = NULL;
    /* Record the key in the same transaction (invariant 6). */
    rc = exec_sql(st, settings_sql);
    if (rc == 0)
        rc = run_sql(st,
                     "INSERT INTO settings(key, value) VALUES ('" SECRET_KEY_SETTING "', ?1) "
                     "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                     key_id, 0, "record the master key id");
done:
    sqlite3_finalize(stmt);
    rc = finish(st, rc);
    pt_store_secrets_free(list, n);
    return rc;
}

/* ---- trusted issuers ---------------------------------------------------------------------- */

static void
issuer_clear(void *elem)
{
    pt_issuer *i = elem;

    free(i->issuer);
    free(i->audience);
    free(i->jwks);
}

/* Fills elem (a zeroed pt_issuer) from a row (issuer, audience, jwks, created). Returns 0 or
 * PT_ENOMEM (also for a NULL issuer or jwks), leaving what it copied for issuer_clear. */
static int
issuer_read(pt_store *st, sqlite3_stmt *stmt, void *elem)
{
    pt_issuer *i = elem;
    int oom = 0;

    (void)st;
    i->issuer = colnull(stmt, 0, &oom);
    i->audience = colnull(stmt, 1, &oom);
    i->jwks = colnull(stmt, 2, &oom);
    i->created = sqlite3_column_int64(stmt, 3);
    return oom || i->issuer == NULL || i->jwks == NULL ? PT_ENOMEM : 0;
}

static const pt_store_rowkind issuer_kind = {
    .size = sizeof(pt_issuer), .read = issuer_read, .clear = issuer_clear, .what = "list issuers"};

void
pt_store_issuers_free(pt_issuer *list, size_t n)
{
    free_rows(list, n, &issuer_kind);
}

int
pt_store_issuer_put(pt_store *st, const pt_issuer *i)
{
    sqlite3_stmt *stmt = NULL;
    int rc;

    if (i->issuer == NULL || i->issuer[0] == '\0' || strlen(i->issuer) > 1024 || i->jwks == NULL) {
        seterr(st, "an issuer needs a name (at most 1024 bytes) and a JWKS document");
        return PT_EINVAL;
    }
    rc = begin(st);
    if (rc != 0)
        return rc;
    rc = prepare(st,
                 "INSERT INTO issuers(issuer, audience, jwks, created) VALUES (?1, ?2, ?3, ?4) "
                 "ON CONFLICT(issuer) DO UPDATE SET audience = excluded.audience, "
                 "jwks = excluded.jwks, created = excluded.created",
                 &stmt);
    if (rc == 0) {
        sqlite3_bind_text(stmt, 1, i->issuer, -1, SQLITE_STATIC);
        bind_opt_text(stmt, 2, i->audience);
        sqlite3_bind_text(stmt, 3, i->jwks, -1, SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 4, i->created != 0 ? i->created : (int64_t)time(NULL));
        rc = run_stmt(st, stmt, "trust issuer");
    }
    return finish(st, rc);
}

int
pt_store_issuer_rm(pt_store *st, const char *issuer)
{
    return mutate_one(st, "DELETE FROM issuers WHERE issuer = ?1", issuer, 0, "update",
                      "issuer '%.1024s' is not trusted", issuer);
}

int
pt_store_issuer_list(pt_store *st, pt_issuer **out, size_t *n)
{
    void *list = NULL;
    int rc = list_rows(st, "SELECT issuer, audience, jwks, created FROM issuers ORDER BY issuer",
                       NULL, 0, &issuer_kind, &list, n);

    *out = list;
    return rc;
}
