/* store.c - the metadata store's core: opening DATA/portico.db (or the PostgreSQL database
 * DATA/store.dsn names) over the SQL driver, the error
 * message, transactions that bump the change counter, and the statement and row helpers every
 * record kind's file uses (store_int.h). */

/*
 * Design notes
 *
 * One store above the SQL driver (db.h): each record kind has its file, and each of its
 * statements is written once, in SQL that SQLite and PostgreSQL both run.
 *
 *   store.c              open, close, errors, transactions, statement and row helpers
 *   store_schema.c       the tables and the versioned migrations (PT_STORE_SCHEMA_VERSION)
 *   store_scripts.c      scripts, their versions, ids, run modes and state
 *   store_endpoints.c    endpoints
 *   store_connections.c  warehouse connections
 *   store_auth.c         tokens, API keys, last-used times, secrets, trusted issuers
 *   store_webhooks.c     the inbox token and the named webhook sources
 *   store_runs.c         the record of script runs
 *   store_users.c        admin API users, sessions, admin tokens, failed logins
 *   store_audit.c        the audit log
 *   store_migrate.c      copying an SQLite store into an empty PostgreSQL one
 *
 * The tables and what each holds are described in store_schema.c.
 *
 * Invariants:
 *   1. scripts.current always names an existing row of script_versions.
 *   2. An endpoint's script exists (foreign key, and checked first for a clear message); a
 *      script used by an endpoint cannot be removed.
 *   3. A (name, version) pair is never reused, even after `script rm` and a new `script add`:
 *      workers cache compiled modules by (name, version), so reuse could run stale code.
 *   4. Every mutation runs in one transaction that takes the write lock up front
 *      (pt_db_begin: concurrent writers wait on the busy timeout instead of failing on lock
 *      upgrade), and bumps the change counter only after COMMIT. The one exception is
 *      pt_store_mark_used (last-used times), which workers call and which no worker reads.
 *   5. No secret value, token or API key is stored: secrets only encrypted, tokens by id, API
 *      keys as a keyed hash. Error messages name things, never those values.
 *   6. Once a master key rotation has recorded its key (settings row `secrets_master_key_id`,
 *      written in the transaction that re-encrypts every secret), a secret is only written
 *      under that key: pt_store_secret_put checks it in its own transaction, so a `secret set`
 *      that sealed with a key loaded before a rotation cannot leave a row under a retired key.
 *   7. Every script has exactly one script_meta row (created with it, removed with it), so
 *      its id and state survive new versions; ids, like versions, are never reused. State and
 *      run records are written without bumping the change counter (invariant 4's other
 *      exception): no worker serves differently because of them.
 *   8. Only `portico init` creates a store (pt_store_create). pt_store_open refuses a missing,
 *      empty or foreign file, so a lost or damaged portico.db is never silently replaced by an
 *      empty install.
 *
 * PostgreSQL (db_pg.c) when the data dir has a store.dsn: the same statements, the same
 * invariants; the write lock of invariant 4 is an advisory lock held for the transaction, so
 * writers on every node take turns as they do on one SQLite file. The change counter is the
 * node's own (DATA/run); a commit that bumps it also bumps the store's change version and
 * NOTIFYs the other nodes in the same transaction (store_nodes.h), whose masters bump their
 * own counters (server/nodesync.c).
 *
 * Several processes share the file (the CLI writes while workers read): WAL, so readers never
 * block the writer; busy timeout 5000 ms; synchronous=FULL because metadata is small and rarely
 * written, and a published endpoint must survive a power cut. Validation messages are written
 * for the CLI, which prints them as they are.
 */
#include "store/store.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "core/log.h"
#include "store/changes.h"
#include "store/store_int.h"
#include "store/store_nodes.h"

/* ---- errors ------------------------------------------------------------------------------ */

void
pt_store_seterr(pt_store *st, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(st->err, sizeof st->err, fmt, ap);
    va_end(ap);
}

int
pt_store_fail(pt_store *st, int rc, const char *what)
{
    pt_store_seterr(st, "metadata store: %s: %s", what, pt_db_errmsg(st->db));
    return rc;
}

const char *
pt_store_errmsg(pt_store *st)
{
    return st->err;
}

/* ---- open and close ---------------------------------------------------------------------- */

/* Says what to do about a store file that cannot be used. */
#define RESTORE_HINT "restore it from a backup or run `portico init` in a new data dir"

/* Checks, without opening it (see check_existing in db_sqlite.c for why), what can be known of
 * the file at path before SQLite reads it (invariant 8): a regular file, not empty, writable.
 * Returns 0, 1 when the file does not exist, or a pt_err with the reason, naming the file, in
 * err. */
static int
check_file(const char *path, char *err, size_t errsz)
{
    struct stat sb;

    if (stat(path, &sb) != 0) {
        if (errno == ENOENT)
            return 1;
        snprintf(err, errsz, "cannot read %s: %s", path, strerror(errno));
        return PT_EIO;
    }
    if (!S_ISREG(sb.st_mode)) {
        snprintf(err, errsz, "%s is not a regular file: not a Portico store; " RESTORE_HINT, path);
        return PT_EINVAL;
    }
    if (sb.st_size == 0) {
        snprintf(err, errsz, "%s is empty (0 bytes): not a Portico store; " RESTORE_HINT, path);
        return PT_EDB;
    }
    if (access(path, R_OK | W_OK) != 0) {
        snprintf(err, errsz, "%s is read-only (%s): portico writes to its store", path,
                 strerror(errno));
        return PT_EIO;
    }
    return 0;
}

/* Opens the PostgreSQL store dsn names for datadir; with create, a database without a store
 * gets one (the migration makes it), and one with a store is joined. */
static int
store_open_pg(pt_store *st, const char *dsn, int create, char *err, size_t errsz)
{
    int64_t version = 0;
    int rc = pt_db_open_pg(dsn, 0, PT_STORE_BUSY_TIMEOUT_MS, &st->db, err, errsz);

    if (rc != 0)
        return rc;
    rc = pt_db_schema_version(st->db, &version);
    if (rc != 0) {
        snprintf(err, errsz, "PostgreSQL store: cannot read the schema version: %s",
                 pt_db_errmsg(st->db));
        return rc;
    }
    if (version == 0 && !create) {
        snprintf(err, errsz,
                 "the PostgreSQL database named in %s/" PT_STORE_DSN_FILE
                 " holds no Portico store (run `portico init --store DSN`)",
                 st->datadir);
        return PT_ENOTFOUND;
    }
    return 0;
}

/* Opens the store of datadir; with create, makes a new one when there is no portico.db. */
static int
store_open(const char *datadir, int create, pt_store **out, char *err, size_t errsz)
{
    char path[4096];
    struct stat sb;
    pt_store *st = NULL;
    char *dsn = NULL;
    int rc, fresh = 0;

    *out = NULL;
    if (stat(datadir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        snprintf(err, errsz, "no data dir at %s", datadir);
        return PT_ENOTFOUND;
    }
    if (snprintf(path, sizeof path, "%s/portico.db", datadir) >= (int)sizeof path) {
        snprintf(err, errsz, "data dir path too long");
        return PT_EINVAL;
    }
    rc = pt_store_dsn_load(datadir, &dsn, err, errsz);
    if (rc != 0)
        return rc;
    if (dsn == NULL) {
        fresh = check_file(path, err, errsz);
        if (fresh < 0)
            return fresh;
        if (fresh && !create) {
            snprintf(err, errsz, "no Portico store at %s (run `portico init`)", path);
            return PT_ENOTFOUND;
        }
    }
    if (access(datadir, W_OK) != 0) {
        snprintf(err, errsz, "data dir %s is read-only (%s): portico writes to its store", datadir,
                 strerror(errno));
        rc = PT_EIO;
        goto fail;
    }
    st = calloc(1, sizeof *st);
    if (st == NULL || (st->datadir = strdup(datadir)) == NULL) {
        rc = PT_ENOMEM;
        snprintf(err, errsz, "out of memory");
        goto fail;
    }
    if (dsn != NULL) {
        rc = store_open_pg(st, dsn, create, err, errsz);
    } else {
        rc = pt_db_open_sqlite(path, fresh ? PT_DB_CREATE : PT_DB_VERSIONED,
                               PT_STORE_BUSY_TIMEOUT_MS, &st->db, err, errsz);
        if (rc == PT_EINVAL) /* no schema version: every store init made has one */
            snprintf(err, errsz,
                     "%s is not a Portico store (a database without its tables); " RESTORE_HINT,
                     path);
        else if (rc == PT_EDB && strlen(err) + sizeof RESTORE_HINT + 2 < errsz)
            strcat(err, "; " RESTORE_HINT);
    }
    if (rc != 0)
        goto fail;
    rc = pt_store_migrate(st);
    if (rc != 0) {
        snprintf(err, errsz, "%s", st->err);
        goto fail;
    }
    free(dsn);
    *out = st;
    return 0;
fail:
    free(dsn);
    pt_store_close(st);
    return rc;
}

int
pt_store_open(const char *datadir, pt_store **out, char *err, size_t errsz)
{
    return store_open(datadir, 0, out, err, errsz);
}

int
pt_store_create(const char *datadir, pt_store **out, char *err, size_t errsz)
{
    return store_open(datadir, 1, out, err, errsz);
}

const char *
pt_store_engine(const pt_store *st)
{
    return pt_db_engine(st->db);
}

/* ---- the recorded DSN -------------------------------------------------------------------- */

int
pt_store_dsn_load(const char *datadir, char **dsn, char *err, size_t errsz)
{
    char path[4096], buf[4096];
    size_t n;
    FILE *f;

    *dsn = NULL;
    if (snprintf(path, sizeof path, "%s/" PT_STORE_DSN_FILE, datadir) >= (int)sizeof path) {
        snprintf(err, errsz, "data dir path too long");
        return PT_EINVAL;
    }
    f = fopen(path, "r");
    if (f == NULL) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errsz, "cannot read %s: %s", path, strerror(errno));
        return PT_EIO;
    }
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    if (n == 0 || n >= sizeof buf - 2 || strchr(buf, '\n') != NULL) {
        snprintf(err, errsz, "%s does not hold one PostgreSQL DSN (one line)", path);
        return PT_EINVAL;
    }
    *dsn = strdup(buf);
    if (*dsn == NULL) {
        snprintf(err, errsz, "out of memory");
        return PT_ENOMEM;
    }
    return 0;
}

int
pt_store_dsn_save(const char *datadir, const char *dsn, char *err, size_t errsz)
{
    char path[4096], tmp[4200];
    size_t n = strlen(dsn);
    int fd, rc = 0;

    if (n == 0 || strpbrk(dsn, "\r\n") != NULL) {
        snprintf(err, errsz, "a store DSN is one non-empty line");
        return PT_EINVAL;
    }
    if (snprintf(path, sizeof path, "%s/" PT_STORE_DSN_FILE, datadir) >= (int)sizeof path) {
        snprintf(err, errsz, "data dir path too long");
        return PT_EINVAL;
    }
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, dsn, n) != (ssize_t)n || write(fd, "\n", 1) != 1 || fsync(fd) != 0) {
        snprintf(err, errsz, "cannot write %s: %s", tmp, strerror(errno));
        rc = PT_EIO;
    }
    if (fd >= 0)
        close(fd);
    if (rc == 0 && rename(tmp, path) != 0) {
        snprintf(err, errsz, "cannot write %s: %s", path, strerror(errno));
        rc = PT_EIO;
    }
    if (rc != 0)
        unlink(tmp);
    return rc;
}

int
pt_store_exists(const char *datadir)
{
    char path[4096];
    struct stat sb;

    if (snprintf(path, sizeof path, "%s/portico.db", datadir) < (int)sizeof path &&
        stat(path, &sb) == 0)
        return 1;
    return snprintf(path, sizeof path, "%s/" PT_STORE_DSN_FILE, datadir) < (int)sizeof path &&
           stat(path, &sb) == 0;
}

/* ---- settings ---------------------------------------------------------------------------- */

int
pt_store_setting_get(pt_store *st, const char *key, char **value)
{
    pt_db_stmt *s = NULL;
    int rc;

    *value = NULL;
    rc = pt_store_prepare(st, "SELECT value FROM settings WHERE key = ?1", &s);
    if (rc != 0)
        return rc;
    rc = pt_db_bind_text(s, 1, key, (size_t)-1);
    if (rc == 0)
        rc = pt_db_step(s);
    if (rc == PT_DB_ROW) {
        *value = pt_store_coldup(s, 0);
        rc = *value != NULL ? 0 : PT_ENOMEM;
        if (rc != 0)
            pt_store_seterr(st, "out of memory");
    } else if (rc == PT_DB_DONE) {
        rc = PT_ENOTFOUND;
    } else {
        rc = pt_store_fail(st, rc, "read a setting");
    }
    pt_db_finalize(s);
    return rc;
}

/* Runs an INSERT into settings (?1 key, ?2 value) in a transaction of its own; with must_add,
 * a statement that changed nothing is PT_EEXIST. */
static int
setting_write(pt_store *st, const char *sql, const char *key, const char *value, int must_add)
{
    pt_db_stmt *s = NULL;
    int rc = pt_store_begin(st);

    if (rc != 0)
        return rc;
    rc = pt_store_prepare(st, sql, &s);
    if (rc == 0) {
        rc = pt_db_bind_text(s, 1, key, (size_t)-1);
        if (rc == 0)
            rc = pt_db_bind_text(s, 2, value, (size_t)-1);
        if (rc != 0) {
            pt_db_finalize(s);
            rc = pt_store_fail(st, rc, "write a setting");
        } else {
            rc = pt_store_run_stmt(st, s, "write a setting"); /* finalizes s */
        }
    }
    if (rc == 0 && must_add && pt_db_changes(st->db) == 0) {
        pt_store_seterr(st, "setting '%s' exists", key);
        rc = PT_EEXIST;
    }
    return pt_store_finish_quiet(st, rc);
}

int
pt_store_setting_add(pt_store *st, const char *key, const char *value)
{
    return setting_write(st,
                         "INSERT INTO settings(key, value) VALUES (?1, ?2) "
                         "ON CONFLICT(key) DO NOTHING",
                         key, value, 1);
}

int
pt_store_setting_set(pt_store *st, const char *key, const char *value)
{
    return setting_write(st,
                         "INSERT INTO settings(key, value) VALUES (?1, ?2) "
                         "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                         key, value, 0);
}

void
pt_store_close(pt_store *st)
{
    if (st == NULL)
        return;
    pt_db_close(st->db);
    free(st->datadir);
    free(st);
}

/* ---- transactions ------------------------------------------------------------------------ */

int
pt_store_begin(pt_store *st)
{
    int rc;

    if (st->outer) {
        rc = pt_db_exec(st->db, "SAVEPOINT pt_nested");
        if (rc != 0)
            return pt_store_fail(st, rc, "savepoint");
        st->depth++;
        return 0;
    }
    rc = pt_db_begin(st->db);
    return rc != 0 ? pt_store_fail(st, rc, "begin") : 0;
}

/* Ends a savepoint inside the outer transaction: kept when rc is 0, undone otherwise. */
static int
nested_finish(pt_store *st, int rc)
{
    int rc2;

    st->depth--;
    if (rc != 0)
        pt_db_exec(st->db, "ROLLBACK TO pt_nested");
    rc2 = pt_db_exec(st->db, "RELEASE pt_nested");
    if (rc == 0 && rc2 != 0)
        rc = pt_store_fail(st, rc2, "release savepoint");
    return rc;
}

void
pt_store_abort(pt_store *st)
{
    if (st->outer && st->depth > 0)
        nested_finish(st, PT_EINVAL);
    else
        pt_db_rollback(st->db);
}

int
pt_store_tx_begin(pt_store *st)
{
    int rc;

    if (st->outer) {
        pt_store_seterr(st, "a transaction is already open");
        return PT_EINVAL;
    }
    rc = pt_store_begin(st);
    if (rc == 0) {
        st->outer = 1;
        st->depth = 0;
    }
    return rc;
}

int
pt_store_tx_finish(pt_store *st, int rc)
{
    if (!st->outer)
        return rc != 0 ? rc : PT_EINVAL;
    while (st->depth > 0)
        nested_finish(st, PT_EINVAL); /* a savepoint left open: its change is not kept */
    st->outer = 0;
    return pt_store_finish(st, rc);
}

/* On PostgreSQL, the part of a change the other nodes see (store_nodes.h): the store's change
 * version moves and a notification goes out, both inside the transaction, so that they are
 * delivered with the change on COMMIT and never without it. */
static const char pg_announce_sql[] =
    "UPDATE store_changes SET version = version + 1 WHERE id = 1;"
    "SELECT pg_notify('" PT_STORE_CHANGES_CHANNEL "', coalesce(current_schema(), ''))";

/* Commits and bumps the change counter. A failed bump is logged, not returned: the change is
 * committed, and reporting failure would invite a retry that duplicates it. */
static int
commit(pt_store *st)
{
    int rc = 0;

    if (strcmp(pt_db_engine(st->db), "postgres") == 0) {
        rc = pt_db_exec(st->db, pg_announce_sql);
        if (rc != 0)
            return pt_store_fail(st, rc, "announce the change to the other nodes");
    }
    rc = pt_db_commit(st->db);
    if (rc != 0)
        return pt_store_fail(st, rc, "commit");
    rc = pt_changes_bump_dir(st->datadir);
    if (rc != 0)
        pt_log_warn("store: cannot bump the change counter in %s/run: %s (running servers "
                    "will not see this change until restarted)",
                    st->datadir, pt_strerror(rc));
    return 0;
}

int
pt_store_finish(pt_store *st, int rc)
{
    if (st->outer && st->depth > 0)
        return nested_finish(st, rc);
    if (rc == 0)
        rc = commit(st);
    if (rc != 0)
        pt_db_rollback(st->db);
    return rc;
}

int
pt_store_finish_quiet(pt_store *st, int rc)
{
    if (st->outer && st->depth > 0)
        return nested_finish(st, rc);
    if (rc == 0) {
        rc = pt_db_commit(st->db);
        if (rc != 0)
            pt_store_fail(st, rc, "commit");
    }
    if (rc != 0)
        pt_db_rollback(st->db);
    return rc;
}

/* ---- statements -------------------------------------------------------------------------- */

int
pt_store_prepare(pt_store *st, const char *sql, pt_db_stmt **out)
{
    int rc = pt_db_prepare(st->db, sql, out);

    return rc != 0 ? pt_store_fail(st, rc, "prepare") : 0;
}

int
pt_store_run_stmt(pt_store *st, pt_db_stmt *s, const char *what)
{
    int rc = pt_db_run(s);

    if (rc != 0)
        rc = pt_store_fail(st, rc, what);
    pt_db_finalize(s);
    return rc;
}

int
pt_store_bind_ab(pt_db_stmt *s, const char *a, int64_t b)
{
    int rc = 0;

    if (a != NULL)
        rc = pt_db_bind_text(s, 1, a, (size_t)-1);
    if (rc == 0 && pt_db_param_count(s) >= 2)
        rc = pt_db_bind_int64(s, 2, b);
    return rc;
}

int
pt_store_run_sql(pt_store *st, const char *sql, const char *a, int64_t b, const char *what)
{
    pt_db_stmt *s = NULL;
    int rc = pt_store_prepare(st, sql, &s);

    if (rc != 0)
        return rc;
    rc = pt_store_bind_ab(s, a, b);
    if (rc != 0) {
        pt_db_finalize(s);
        return pt_store_fail(st, rc, what);
    }
    return pt_store_run_stmt(st, s, what);
}

int
pt_store_query_int(pt_store *st, const char *sql, const char *a, int64_t b, int64_t *v)
{
    pt_db_stmt *s = NULL;
    int rc = pt_store_prepare(st, sql, &s);

    if (rc != 0)
        return rc;
    rc = pt_store_bind_ab(s, a, b);
    if (rc == 0)
        rc = pt_db_step(s);
    if (rc == PT_DB_ROW)
        *v = pt_db_column_int64(s, 0);
    else if (rc < 0)
        rc = pt_store_fail(st, rc, "query");
    pt_db_finalize(s);
    return rc;
}

int
pt_store_mutate_one(pt_store *st, const char *sql, const char *a, int64_t b, const char *what,
                    const char *missing, ...)
{
    va_list ap;
    int rc = pt_store_begin(st);

    if (rc != 0)
        return rc;
    rc = pt_store_run_sql(st, sql, a, b, what);
    if (rc == 0 && pt_db_changes(st->db) == 0) {
        va_start(ap, missing);
        vsnprintf(st->err, sizeof st->err, missing, ap);
        va_end(ap);
        rc = PT_ENOTFOUND;
    }
    return pt_store_finish(st, rc);
}

int
pt_store_changed_one(pt_store *st, const char *missing)
{
    if (pt_db_changes(st->db) != 0)
        return 0;
    pt_store_seterr(st, "%s", missing);
    return PT_ENOTFOUND;
}

/* ---- rows -------------------------------------------------------------------------------- */

void *
pt_store_rows_add(void **list, size_t len, size_t *cap, size_t size)
{
    void *elem;

    if (len == *cap) {
        size_t ncap = *cap != 0 ? *cap * 2 : 8;
        void *grown = realloc(*list, ncap * size);

        if (grown == NULL)
            return NULL;
        *list = grown;
        *cap = ncap;
    }
    elem = (char *)*list + len * size;
    memset(elem, 0, size);
    return elem;
}

void
pt_store_free_rows(void *list, size_t n, const pt_store_kind *kind)
{
    if (list == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        kind->clear((char *)list + i * kind->size);
    free(list);
}

int
pt_store_collect(pt_store *st, pt_db_stmt *s, const pt_store_kind *kind, void **out, size_t *n)
{
    void *list = NULL;
    size_t len = 0, cap = 0;
    int rc;

    *out = NULL;
    *n = 0;
    while ((rc = pt_db_step(s)) == PT_DB_ROW) {
        void *elem = pt_store_rows_add(&list, len, &cap, kind->size);

        if (elem == NULL) {
            rc = PT_ENOMEM;
            break;
        }
        len++; /* counted before it is read, so that a half-read element is cleared too */
        rc = kind->read(st, s, elem);
        if (rc != 0)
            break;
        rc = PT_DB_ROW;
    }
    if (rc == PT_ENOMEM)
        pt_store_seterr(st, "out of memory");
    else if (rc < 0)
        rc = pt_store_fail(st, rc, kind->what);
    pt_db_finalize(s);
    if (rc != 0) {
        pt_store_free_rows(list, len, kind);
        return rc;
    }
    *out = list;
    *n = len;
    return 0;
}

int
pt_store_list(pt_store *st, const char *sql, const char *a, int64_t b, const pt_store_kind *kind,
              void **out, size_t *n)
{
    pt_db_stmt *s = NULL;
    int rc;

    *out = NULL;
    *n = 0;
    rc = pt_store_prepare(st, sql, &s);
    if (rc != 0)
        return rc;
    rc = pt_store_bind_ab(s, a, b);
    if (rc != 0) {
        pt_db_finalize(s);
        return pt_store_fail(st, rc, kind->what);
    }
    return pt_store_collect(st, s, kind, out, n);
}

int
pt_store_get_row(pt_store *st, const char *sql, const char *a, const pt_store_kind *kind,
                 void *elem, const char *what)
{
    pt_db_stmt *s = NULL;
    int rc;

    memset(elem, 0, kind->size);
    rc = pt_store_prepare(st, sql, &s);
    if (rc != 0)
        return rc;
    rc = pt_db_bind_text(s, 1, a, (size_t)-1);
    if (rc == 0)
        rc = pt_db_step(s);
    if (rc == PT_DB_ROW) {
        rc = kind->read(st, s, elem);
        if (rc != 0) {
            kind->clear(elem);
            memset(elem, 0, kind->size);
            if (rc == PT_ENOMEM)
                pt_store_seterr(st, "out of memory");
        }
    } else if (rc == PT_DB_DONE) {
        rc = PT_ENOTFOUND;
    } else {
        rc = pt_store_fail(st, rc, what);
    }
    pt_db_finalize(s);
    return rc;
}

char *
pt_store_coldup(pt_db_stmt *s, int i)
{
    return strdup(pt_db_column_text(s, i, NULL));
}

char *
pt_store_colnull(pt_db_stmt *s, int i, int *oom)
{
    char *d;

    if (pt_db_column_is_null(s, i))
        return NULL;
    d = pt_store_coldup(s, i);
    if (d == NULL)
        *oom = 1;
    return d;
}

/* ---- validation -------------------------------------------------------------------------- */

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

int
pt_store_check_name(pt_store *st, const char *what, const char *name)
{
    if (pt_store_name_valid(name))
        return 0;
    pt_store_seterr(st,
                    "invalid %s name '%s' (letters, digits, '_', '.', '-'; at most 64; "
                    "not starting with '.' or '-')",
                    what, name != NULL ? name : "");
    return PT_EINVAL;
}

int
pt_store_text_name_valid(const char *name)
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
