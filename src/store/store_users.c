/* store_users.c - users, login sessions, admin API tokens and failed-login counters in the
 * SQLite store (tables created by schema version 5, store_schema.c). Every
 * write here commits without bumping the change counter (store_users.h). */
#include "store/store_users.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "store/store_sqlite_int.h"

int
pt_store_role_valid(const char *role)
{
    return role != NULL && (strcmp(role, "admin") == 0 || strcmp(role, "editor") == 0 ||
                            strcmp(role, "viewer") == 0);
}

static int
prepare(pt_store *st, const char *sql, sqlite3_stmt **stmt, const char *what)
{
    if (sqlite3_prepare_v2(pt_store_sqlite_db(st), sql, -1, stmt, NULL) != SQLITE_OK) {
        *stmt = NULL;
        return pt_store_sqlite_fail(st, what);
    }
    return 0;
}

/* strdup of a text column, "" for NULL; NULL only when out of memory. */
static char *
coldup(sqlite3_stmt *stmt, int i)
{
    const unsigned char *s = sqlite3_column_text(stmt, i);
    return strdup(s != NULL ? (const char *)s : "");
}

/* Runs a query with text ?1 (and ?2 when given) that returns one integer: 1 and *v when a row
 * came, 0 when none, or a pt_err. */
static int
query_int(pt_store *st, const char *sql, const char *a, const char *b, int64_t *v)
{
    sqlite3_stmt *stmt = NULL;
    int rc = prepare(st, sql, &stmt, "query");
    if (rc != 0)
        return rc;
    sqlite3_bind_text(stmt, 1, a, -1, SQLITE_STATIC);
    if (b != NULL)
        sqlite3_bind_text(stmt, 2, b, -1, SQLITE_STATIC);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        *v = sqlite3_column_int64(stmt, 0);
        rc = 1;
    } else if (rc == SQLITE_DONE) {
        rc = 0;
    } else {
        rc = pt_store_sqlite_fail(st, "query");
    }
    sqlite3_finalize(stmt);
    return rc;
}

/* 0 when user `name` exists, else PT_ENOTFOUND with a message (or a pt_err). */
static int
need_user(pt_store *st, const char *name)
{
    int64_t one;
    int rc = query_int(st, "SELECT 1 FROM users WHERE name = ?1", name, NULL, &one);
    if (rc == 0) {
        char msg[128];
        snprintf(msg, sizeof msg, "no user '%s'", name);
        pt_store_sqlite_seterr(st, msg);
        return PT_ENOTFOUND;
    }
    return rc < 0 ? rc : 0;
}

/* PT_EEXIST (with a message) when removing or demoting `name` would leave no admin. */
static int
keeps_an_admin(pt_store *st, const char *name)
{
    int64_t others = 0;
    int rc = query_int(st, "SELECT count(*) FROM users WHERE role = 'admin' AND name <> ?1", name,
                       NULL, &others);
    if (rc < 0)
        return rc;
    if (others == 0) {
        char msg[160];
        snprintf(msg, sizeof msg, "user '%s' is the last admin", name);
        pt_store_sqlite_seterr(st, msg);
        return PT_EEXIST;
    }
    return 0;
}

int
pt_store_user_add(pt_store *st, const char *name, const char *role, const char *hash)
{
    sqlite3_stmt *stmt = NULL;
    int64_t one;
    int rc;

    if (!pt_store_name_valid(name)) {
        pt_store_sqlite_seterr(st, "invalid user name (letters, digits, _ . -; at most 64)");
        return PT_EINVAL;
    }
    if (!pt_store_role_valid(role)) {
        pt_store_sqlite_seterr(st, "invalid role (admin, editor or viewer)");
        return PT_EINVAL;
    }
    rc = pt_store_sqlite_begin(st);
    if (rc != 0)
        return rc;
    rc = query_int(st, "SELECT 1 FROM users WHERE name = ?1", name, NULL, &one);
    if (rc == 1) {
        char msg[128];
        snprintf(msg, sizeof msg, "user '%s' already exists", name);
        pt_store_sqlite_seterr(st, msg);
        rc = PT_EEXIST;
    }
    if (rc == 0)
        rc = prepare(st,
                     "INSERT INTO users(name, role, hash, created) "
                     "VALUES (?1, ?2, ?3, strftime('%s', 'now'))",
                     &stmt, "add user");
    if (rc == 0) {
        sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 2, role, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 3, hash, -1, SQLITE_STATIC);
        rc = pt_store_sqlite_run(st, stmt, "add user");
    }
    return pt_store_sqlite_finish_quiet(st, rc);
}

static int
read_user(pt_store *st, sqlite3_stmt *stmt, void *elem)
{
    pt_user *u = elem;
    (void)st;
    u->name = coldup(stmt, 0);
    u->role = coldup(stmt, 1);
    u->hash = coldup(stmt, 2);
    u->created = sqlite3_column_int64(stmt, 3);
    return u->name && u->role && u->hash ? 0 : PT_ENOMEM;
}

static void
clear_user(void *elem)
{
    pt_user_clear(elem);
}

static const pt_store_rowkind user_kind = {sizeof(pt_user), read_user, clear_user, "list users"};

int
pt_store_user_get(pt_store *st, const char *name, pt_user *out)
{
    sqlite3_stmt *stmt = NULL;
    pt_user *list = NULL;
    size_t n = 0;
    int rc = prepare(st, "SELECT name, role, hash, created FROM users WHERE name = ?1", &stmt,
                     "read user");
    memset(out, 0, sizeof *out);
    if (rc != 0)
        return rc;
    sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
    rc = pt_store_sqlite_rows(st, stmt, &user_kind, (void **)&list, &n);
    if (rc != 0)
        return rc;
    if (n == 0) {
        char msg[128];
        snprintf(msg, sizeof msg, "no user '%s'", name);
        pt_store_sqlite_seterr(st, msg);
        return PT_ENOTFOUND;
    }
    *out = list[0];
    free(list);
    return 0;
}

int
pt_store_user_list(pt_store *st, pt_user **out, size_t *n)
{
    sqlite3_stmt *stmt = NULL;
    int rc =
        prepare(st, "SELECT name, role, '', created FROM users ORDER BY name", &stmt, "list users");
    *out = NULL;
    *n = 0;
    if (rc != 0)
        return rc;
    return pt_store_sqlite_rows(st, stmt, &user_kind, (void **)out, n);
}

/* Runs sql with text ?1 = a and ?2 = b (b may be NULL: not bound). */
static int
run2(pt_store *st, const char *sql, const char *a, const char *b, const char *what)
{
    sqlite3_stmt *stmt = NULL;
    int rc = prepare(st, sql, &stmt, what);
    if (rc != 0)
        return rc;
    sqlite3_bind_text(stmt, 1, a, -1, SQLITE_STATIC);
    if (b != NULL)
        sqlite3_bind_text(stmt, 2, b, -1, SQLITE_STATIC);
    return pt_store_sqlite_run(st, stmt, what);
}

int
pt_store_user_set(pt_store *st, const char *name, const char *role, const char *hash)
{
    int rc;

    if (role != NULL && !pt_store_role_valid(role)) {
        pt_store_sqlite_seterr(st, "invalid role (admin, editor or viewer)");
        return PT_EINVAL;
    }
    rc = pt_store_sqlite_begin(st);
    if (rc != 0)
        return rc;
    rc = need_user(st, name);
    if (rc == 0 && role != NULL && strcmp(role, "admin") != 0)
        rc = keeps_an_admin(st, name);
    if (rc == 0 && role != NULL)
        rc = run2(st, "UPDATE users SET role = ?2 WHERE name = ?1", name, role, "set role");
    if (rc == 0 && hash != NULL)
        rc = run2(st, "UPDATE users SET hash = ?2 WHERE name = ?1", name, hash, "set password");
    if (rc == 0 && hash != NULL)
        rc = run2(st, "DELETE FROM sessions WHERE username = ?1", name, NULL, "end sessions");
    return pt_store_sqlite_finish_quiet(st, rc);
}

int
pt_store_user_rm(pt_store *st, const char *name)
{
    int rc = pt_store_sqlite_begin(st);
    if (rc != 0)
        return rc;
    rc = need_user(st, name);
    if (rc == 0)
        rc = keeps_an_admin(st, name);
    /* Explicit deletes: the cascade needs foreign_keys, which a connection may not have on. */
    if (rc == 0)
        rc = run2(st, "DELETE FROM sessions WHERE username = ?1", name, NULL, "end sessions");
    if (rc == 0)
        rc = run2(st, "DELETE FROM admin_tokens WHERE username = ?1", name, NULL, "remove tokens");
    if (rc == 0)
        rc = run2(st, "DELETE FROM users WHERE name = ?1", name, NULL, "remove user");
    return pt_store_sqlite_finish_quiet(st, rc);
}

void
pt_user_clear(pt_user *u)
{
    if (u == NULL)
        return;
    free(u->name);
    free(u->role);
    free(u->hash);
    memset(u, 0, sizeof *u);
}

void
pt_store_users_free(pt_user *list, size_t n)
{
    pt_store_sqlite_free_rows(list, n, &user_kind);
}

/* ---- Sessions ---------------------------------------------------------------------------- */

/* Runs sql with integer ?1 = a. */
static int
run_int(pt_store *st, const char *sql, int64_t a, const char *what)
{
    sqlite3_stmt *stmt = NULL;
    int rc = prepare(st, sql, &stmt, what);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(stmt, 1, a);
    return pt_store_sqlite_run(st, stmt, what);
}

int
pt_store_session_add(pt_store *st, const char *id_hash, const char *user, const char *csrf,
                     int64_t now, int64_t idle)
{
    sqlite3_stmt *stmt = NULL;
    int rc = pt_store_sqlite_begin(st);
    if (rc != 0)
        return rc;
    rc = run_int(st, "DELETE FROM sessions WHERE last_seen < ?1", now - idle, "prune sessions");
    if (rc == 0)
        rc = need_user(st, user);
    if (rc == 0)
        rc = prepare(st,
                     "INSERT INTO sessions(id_hash, username, csrf, created, last_seen) "
                     "VALUES (?1, ?2, ?3, ?4, ?4)",
                     &stmt, "add session");
    if (rc == 0) {
        sqlite3_bind_text(stmt, 1, id_hash, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 2, user, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 3, csrf, -1, SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 4, now);
        rc = pt_store_sqlite_run(st, stmt, "add session");
    }
    return pt_store_sqlite_finish_quiet(st, rc);
}

int
pt_store_session_touch(pt_store *st, const char *id_hash, int64_t now, int64_t idle,
                       pt_session *out)
{
    sqlite3_stmt *stmt = NULL;
    int rc;

    memset(out, 0, sizeof *out);
    rc = pt_store_sqlite_begin(st);
    if (rc != 0)
        return rc;
    rc = prepare(st,
                 "SELECT s.username, u.role, s.csrf, s.created, s.last_seen FROM sessions s "
                 "JOIN users u ON u.name = s.username WHERE s.id_hash = ?1",
                 &stmt, "read session");
    if (rc == 0) {
        sqlite3_bind_text(stmt, 1, id_hash, -1, SQLITE_STATIC);
        int step = sqlite3_step(stmt);
        if (step == SQLITE_ROW) {
            out->user = coldup(stmt, 0);
            out->role = coldup(stmt, 1);
            out->csrf = coldup(stmt, 2);
            out->created = sqlite3_column_int64(stmt, 3);
            out->last_seen = sqlite3_column_int64(stmt, 4);
            rc = out->user && out->role && out->csrf ? 0 : PT_ENOMEM;
        } else if (step == SQLITE_DONE) {
            pt_store_sqlite_seterr(st, "no such session");
            rc = PT_ENOTFOUND;
        } else {
            rc = pt_store_sqlite_fail(st, "read session");
        }
        sqlite3_finalize(stmt);
    }
    if (rc == 0 && out->last_seen + idle < now) {
        rc = run2(st, "DELETE FROM sessions WHERE id_hash = ?1", id_hash, NULL, "end session");
        if (rc == 0) {
            pt_store_sqlite_seterr(st, "session expired");
            rc = PT_ENOTFOUND;
        }
        /* The removal must be kept: commit it, then report the expiry. */
        int crc = pt_store_sqlite_finish_quiet(st, rc == PT_ENOTFOUND ? 0 : rc);
        pt_session_clear(out);
        return crc != 0 ? crc : rc;
    }
    if (rc == 0) {
        rc = prepare(st, "UPDATE sessions SET last_seen = ?2 WHERE id_hash = ?1", &stmt,
                     "touch session");
        if (rc == 0) {
            sqlite3_bind_text(stmt, 1, id_hash, -1, SQLITE_STATIC);
            sqlite3_bind_int64(stmt, 2, now);
            rc = pt_store_sqlite_run(st, stmt, "touch session");
        }
    }
    rc = pt_store_sqlite_finish_quiet(st, rc);
    if (rc != 0)
        pt_session_clear(out);
    return rc;
}

int
pt_store_session_rm(pt_store *st, const char *id_hash)
{
    int rc = pt_store_sqlite_begin(st);
    if (rc != 0)
        return rc;
    rc = run2(st, "DELETE FROM sessions WHERE id_hash = ?1", id_hash, NULL, "end session");
    return pt_store_sqlite_finish_quiet(st, rc);
}

void
pt_session_clear(pt_session *s)
{
    if (s == NULL)
        return;
    free(s->user);
    free(s->role);
    free(s->csrf);
    memset(s, 0, sizeof *s);
}

/* ---- Admin API tokens -------------------------------------------------------------------- */

int
pt_store_admin_token_add(pt_store *st, const pt_admin_token *t, const char *hash)
{
    sqlite3_stmt *stmt = NULL;
    int64_t one;
    int rc = pt_store_sqlite_begin(st);
    if (rc != 0)
        return rc;
    rc = need_user(st, t->user);
    if (rc == 0 &&
        (rc = query_int(st, "SELECT 1 FROM admin_tokens WHERE id = ?1", t->id, NULL, &one)) == 1) {
        pt_store_sqlite_seterr(st, "token id already taken");
        rc = PT_EEXIST;
    }
    if (rc == 0)
        rc = prepare(st,
                     "INSERT INTO admin_tokens(id, hash, username, name, created, expires) "
                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                     &stmt, "add token");
    if (rc == 0) {
        sqlite3_bind_text(stmt, 1, t->id, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 2, hash, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 3, t->user, -1, SQLITE_STATIC);
        sqlite3_bind_text(stmt, 4, t->name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 5, t->created);
        if (t->expires != 0)
            sqlite3_bind_int64(stmt, 6, t->expires);
        else
            sqlite3_bind_null(stmt, 6);
        rc = pt_store_sqlite_run(st, stmt, "add token");
    }
    return pt_store_sqlite_finish_quiet(st, rc);
}

static int
read_token(pt_store *st, sqlite3_stmt *stmt, void *elem)
{
    pt_admin_token *t = elem;
    (void)st;
    t->id = coldup(stmt, 0);
    t->user = coldup(stmt, 1);
    t->name = coldup(stmt, 2);
    t->role = coldup(stmt, 3);
    t->created = sqlite3_column_int64(stmt, 4);
    t->expires = sqlite3_column_int64(stmt, 5);
    t->revoked = sqlite3_column_int64(stmt, 6);
    t->last_used = sqlite3_column_int64(stmt, 7);
    return t->id && t->user && t->name && t->role ? 0 : PT_ENOMEM;
}

static void
clear_token(void *elem)
{
    pt_admin_token_clear(elem);
}

static const pt_store_rowkind token_kind = {sizeof(pt_admin_token), read_token, clear_token,
                                            "list tokens"};

#define TOKEN_COLUMNS                                                                              \
    "SELECT t.id, t.username, t.name, u.role, t.created, coalesce(t.expires, 0), "                 \
    "coalesce(t.revoked, 0), coalesce(t.last_used, 0) FROM admin_tokens t "                        \
    "JOIN users u ON u.name = t.username "

int
pt_store_admin_token_find(pt_store *st, const char *hash, int64_t now, pt_admin_token *out)
{
    sqlite3_stmt *stmt = NULL;
    pt_admin_token *list = NULL;
    size_t n = 0;
    int rc;

    memset(out, 0, sizeof *out);
    rc = prepare(st,
                 TOKEN_COLUMNS "WHERE t.hash = ?1 AND t.revoked IS NULL "
                               "AND (t.expires IS NULL OR t.expires > ?2)",
                 &stmt, "find token");
    if (rc != 0)
        return rc;
    sqlite3_bind_text(stmt, 1, hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, now);
    rc = pt_store_sqlite_rows(st, stmt, &token_kind, (void **)&list, &n);
    if (rc != 0)
        return rc;
    if (n == 0) {
        pt_store_sqlite_seterr(st, "unknown, expired or revoked token");
        return PT_ENOTFOUND;
    }
    *out = list[0];
    free(list);
    /* Last-used times are advice: a busy writer is not waited for beyond busy_timeout, and a
     * failure is not the caller's. */
    if (pt_store_sqlite_begin(st) == 0) {
        rc = prepare(st, "UPDATE admin_tokens SET last_used = ?2 WHERE id = ?1", &stmt,
                     "mark token used");
        if (rc == 0) {
            sqlite3_bind_text(stmt, 1, out->id, -1, SQLITE_STATIC);
            sqlite3_bind_int64(stmt, 2, now);
            rc = pt_store_sqlite_run(st, stmt, "mark token used");
        }
        pt_store_sqlite_finish_quiet(st, rc);
    }
    return 0;
}

int
pt_store_admin_token_list(pt_store *st, const char *user, pt_admin_token **out, size_t *n)
{
    sqlite3_stmt *stmt = NULL;
    int rc =
        prepare(st, TOKEN_COLUMNS "WHERE ?1 IS NULL OR t.username = ?1 ORDER BY t.created, t.id",
                &stmt, "list tokens");
    *out = NULL;
    *n = 0;
    if (rc != 0)
        return rc;
    pt_store_sqlite_bind_opt_text(stmt, 1, user);
    return pt_store_sqlite_rows(st, stmt, &token_kind, (void **)out, n);
}

int
pt_store_admin_token_revoke(pt_store *st, const char *id)
{
    int rc = pt_store_sqlite_begin(st);
    if (rc != 0)
        return rc;
    rc = run2(st,
              "UPDATE admin_tokens SET revoked = coalesce(revoked, strftime('%s', 'now')) "
              "WHERE id = ?1",
              id, NULL, "revoke token");
    if (rc == 0) {
        char msg[128];
        snprintf(msg, sizeof msg, "no admin token '%s'", id);
        rc = pt_store_sqlite_changed_one(st, msg);
    }
    return pt_store_sqlite_finish_quiet(st, rc);
}

void
pt_admin_token_clear(pt_admin_token *t)
{
    if (t == NULL)
        return;
    free(t->id);
    free(t->user);
    free(t->name);
    free(t->role);
    memset(t, 0, sizeof *t);
}

void
pt_store_admin_tokens_free(pt_admin_token *list, size_t n)
{
    pt_store_sqlite_free_rows(list, n, &token_kind);
}

/* ---- Failed logins ----------------------------------------------------------------------- */

#define FAILURE_MEMORY 3600 /* seconds after which a key's failures are forgotten */
#define PRUNE_AFTER "3600"  /* FAILURE_MEMORY, for the SQL that forgets them */

int
pt_store_login_blocked(pt_store *st, const char *key, int64_t now, int64_t *retry_after)
{
    int64_t until = 0;
    int rc =
        query_int(st, "SELECT locked_until FROM login_failures WHERE key = ?1", key, NULL, &until);
    *retry_after = 0;
    if (rc < 0)
        return rc;
    if (rc == 1 && until > now)
        *retry_after = until - now;
    return 0;
}

int
pt_store_login_failed(pt_store *st, const char *key, int64_t now, int64_t (*lock_for)(int failures),
                      int *failures)
{
    sqlite3_stmt *stmt = NULL;
    int64_t count = 0, last = 0;
    int rc = pt_store_sqlite_begin(st);
    if (rc != 0)
        return rc;
    rc = run_int(st,
                 "DELETE FROM login_failures WHERE last_failure < ?1 - " PRUNE_AFTER
                 " AND locked_until < ?1",
                 now, "prune failed logins");
    if (rc == 0)
        rc = query_int(st, "SELECT last_failure FROM login_failures WHERE key = ?1", key, NULL,
                       &last);
    if (rc == 1)
        rc = query_int(st, "SELECT failures FROM login_failures WHERE key = ?1", key, NULL, &count);
    if (rc >= 0) {
        if (rc == 0 || last + FAILURE_MEMORY < now)
            count = 0;
        count++;
        rc = prepare(st,
                     "INSERT INTO login_failures(key, failures, last_failure, locked_until) "
                     "VALUES (?1, ?2, ?3, ?4) ON CONFLICT(key) DO UPDATE SET "
                     "failures = excluded.failures, last_failure = excluded.last_failure, "
                     "locked_until = excluded.locked_until",
                     &stmt, "count failed login");
    }
    if (rc == 0) {
        int64_t lock = lock_for((int)count);
        sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_int64(stmt, 2, count);
        sqlite3_bind_int64(stmt, 3, now);
        sqlite3_bind_int64(stmt, 4, lock > 0 ? now + lock : 0);
        rc = pt_store_sqlite_run(st, stmt, "count failed login");
    }
    *failures = (int)count;
    return pt_store_sqlite_finish_quiet(st, rc);
}

int
pt_store_login_reset(pt_store *st, const char *key)
{
    int rc = pt_store_sqlite_begin(st);
    if (rc != 0)
        return rc;
    rc = run2(st, "DELETE FROM login_failures WHERE key = ?1", key, NULL, "reset failed logins");
    return pt_store_sqlite_finish_quiet(st, rc);
}
