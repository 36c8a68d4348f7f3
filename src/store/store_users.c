/* store_users.c - users, login sessions, admin API tokens and failed-login counters in the
 * metadata store, over the SQL driver (tables created by schema version 5, store_schema.c). Every
 * write here commits without bumping the change counter (store_users.h). */
#include "store/store_users.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "store/store_int.h"

int
pt_store_role_valid(const char *role)
{
    return role != NULL && (strcmp(role, "admin") == 0 || strcmp(role, "editor") == 0 ||
                            strcmp(role, "viewer") == 0);
}

/* Runs a query with text ?1 that returns one integer: 1 and *v when a row came, 0 when none,
 * or a pt_err. */
static int
query_int(pt_store *st, const char *sql, const char *a, int64_t *v)
{
    return pt_store_query_int(st, sql, a, 0, v);
}

/* 0 when user `name` exists, else PT_ENOTFOUND with a message (or a pt_err). */
static int
need_user(pt_store *st, const char *name)
{
    int64_t one;
    int rc = query_int(st, "SELECT 1 FROM users WHERE name = ?1", name, &one);
    if (rc == 0) {
        char msg[128];
        snprintf(msg, sizeof msg, "no user '%s'", name);
        pt_store_seterr(st, "%s", msg);
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
                       &others);
    if (rc < 0)
        return rc;
    if (others == 0) {
        char msg[160];
        snprintf(msg, sizeof msg, "user '%s' is the last admin", name);
        pt_store_seterr(st, "%s", msg);
        return PT_EEXIST;
    }
    return 0;
}

int
pt_store_user_add(pt_store *st, const char *name, const char *role, const char *hash)
{
    pt_db_stmt *stmt = NULL;
    int64_t one;
    int rc;

    if (!pt_store_name_valid(name)) {
        pt_store_seterr(st, "invalid user name (letters, digits, _ . -; at most 64)");
        return PT_EINVAL;
    }
    if (!pt_store_role_valid(role)) {
        pt_store_seterr(st, "invalid role (admin, editor or viewer)");
        return PT_EINVAL;
    }
    rc = pt_store_begin(st);
    if (rc != 0)
        return rc;
    rc = query_int(st, "SELECT 1 FROM users WHERE name = ?1", name, &one);
    if (rc == 1) {
        char msg[128];
        snprintf(msg, sizeof msg, "user '%s' already exists", name);
        pt_store_seterr(st, "%s", msg);
        rc = PT_EEXIST;
    }
    if (rc == 0)
        rc = pt_store_prepare(st,
                              "INSERT INTO users(name, role, hash, created) "
                              "VALUES (?1, ?2, ?3, ?4)",
                              &stmt);
    if (rc == 0) {
        pt_db_bind_text(stmt, 1, name, (size_t)-1);
        pt_db_bind_text(stmt, 2, role, (size_t)-1);
        pt_db_bind_text(stmt, 3, hash, (size_t)-1);
        pt_db_bind_int64(stmt, 4, (int64_t)time(NULL));
        rc = pt_store_run_stmt(st, stmt, "add user");
    }
    return pt_store_finish_quiet(st, rc);
}

static int
read_user(pt_store *st, pt_db_stmt *stmt, void *elem)
{
    pt_user *u = elem;
    (void)st;
    u->name = pt_store_coldup(stmt, 0);
    u->role = pt_store_coldup(stmt, 1);
    u->hash = pt_store_coldup(stmt, 2);
    u->created = pt_db_column_int64(stmt, 3);
    return u->name && u->role && u->hash ? 0 : PT_ENOMEM;
}

static void
clear_user(void *elem)
{
    pt_user_clear(elem);
}

static const pt_store_kind user_kind = {sizeof(pt_user), read_user, clear_user, "list users"};

int
pt_store_user_get(pt_store *st, const char *name, pt_user *out)
{
    pt_db_stmt *stmt = NULL;
    pt_user *list = NULL;
    size_t n = 0;
    int rc =
        pt_store_prepare(st, "SELECT name, role, hash, created FROM users WHERE name = ?1", &stmt);
    memset(out, 0, sizeof *out);
    if (rc != 0)
        return rc;
    pt_db_bind_text(stmt, 1, name, (size_t)-1);
    rc = pt_store_collect(st, stmt, &user_kind, (void **)&list, &n);
    if (rc != 0)
        return rc;
    if (n == 0) {
        char msg[128];
        snprintf(msg, sizeof msg, "no user '%s'", name);
        pt_store_seterr(st, "%s", msg);
        return PT_ENOTFOUND;
    }
    *out = list[0];
    free(list);
    return 0;
}

int
pt_store_user_list(pt_store *st, pt_user **out, size_t *n)
{
    pt_db_stmt *stmt = NULL;
    int rc = pt_store_prepare(st, "SELECT name, role, '', created FROM users ORDER BY name", &stmt);
    *out = NULL;
    *n = 0;
    if (rc != 0)
        return rc;
    return pt_store_collect(st, stmt, &user_kind, (void **)out, n);
}

/* Runs sql with text ?1 = a and ?2 = b (b may be NULL: not bound). */
static int
run2(pt_store *st, const char *sql, const char *a, const char *b, const char *what)
{
    pt_db_stmt *stmt = NULL;
    int rc = pt_store_prepare(st, sql, &stmt);
    if (rc != 0)
        return rc;
    pt_db_bind_text(stmt, 1, a, (size_t)-1);
    if (b != NULL)
        pt_db_bind_text(stmt, 2, b, (size_t)-1);
    return pt_store_run_stmt(st, stmt, what);
}

int
pt_store_user_set(pt_store *st, const char *name, const char *role, const char *hash)
{
    int rc;

    if (role != NULL && !pt_store_role_valid(role)) {
        pt_store_seterr(st, "invalid role (admin, editor or viewer)");
        return PT_EINVAL;
    }
    rc = pt_store_begin(st);
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
    return pt_store_finish_quiet(st, rc);
}

int
pt_store_user_rm(pt_store *st, const char *name)
{
    int rc = pt_store_begin(st);
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
    return pt_store_finish_quiet(st, rc);
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
    pt_store_free_rows(list, n, &user_kind);
}

/* ---- Sessions ---------------------------------------------------------------------------- */

/* Runs sql with integer ?1 = a. */
static int
run_int(pt_store *st, const char *sql, int64_t a, const char *what)
{
    pt_db_stmt *stmt = NULL;
    int rc = pt_store_prepare(st, sql, &stmt);
    if (rc != 0)
        return rc;
    pt_db_bind_int64(stmt, 1, a);
    return pt_store_run_stmt(st, stmt, what);
}

int
pt_store_session_add(pt_store *st, const char *id_hash, const char *user, const char *csrf,
                     int64_t now, int64_t idle)
{
    pt_db_stmt *stmt = NULL;
    int rc = pt_store_begin(st);
    if (rc != 0)
        return rc;
    rc = run_int(st, "DELETE FROM sessions WHERE last_seen < ?1", now - idle, "prune sessions");
    if (rc == 0)
        rc = need_user(st, user);
    if (rc == 0)
        rc = pt_store_prepare(st,
                              "INSERT INTO sessions(id_hash, username, csrf, created, last_seen) "
                              "VALUES (?1, ?2, ?3, ?4, ?4)",
                              &stmt);
    if (rc == 0) {
        pt_db_bind_text(stmt, 1, id_hash, (size_t)-1);
        pt_db_bind_text(stmt, 2, user, (size_t)-1);
        pt_db_bind_text(stmt, 3, csrf, (size_t)-1);
        pt_db_bind_int64(stmt, 4, now);
        rc = pt_store_run_stmt(st, stmt, "add session");
    }
    return pt_store_finish_quiet(st, rc);
}

int
pt_store_session_touch(pt_store *st, const char *id_hash, int64_t now, int64_t idle,
                       pt_session *out)
{
    pt_db_stmt *stmt = NULL;
    int rc;

    memset(out, 0, sizeof *out);
    rc = pt_store_begin(st);
    if (rc != 0)
        return rc;
    rc = pt_store_prepare(
        st,
        "SELECT s.username, u.role, s.csrf, s.created, s.last_seen FROM sessions s "
        "JOIN users u ON u.name = s.username WHERE s.id_hash = ?1",
        &stmt);
    if (rc == 0) {
        pt_db_bind_text(stmt, 1, id_hash, (size_t)-1);
        int step = pt_db_step(stmt);
        if (step == PT_DB_ROW) {
            out->user = pt_store_coldup(stmt, 0);
            out->role = pt_store_coldup(stmt, 1);
            out->csrf = pt_store_coldup(stmt, 2);
            out->created = pt_db_column_int64(stmt, 3);
            out->last_seen = pt_db_column_int64(stmt, 4);
            rc = out->user && out->role && out->csrf ? 0 : PT_ENOMEM;
        } else if (step == PT_DB_DONE) {
            pt_store_seterr(st, "no such session");
            rc = PT_ENOTFOUND;
        } else {
            rc = pt_store_fail(st, step, "read session");
        }
        pt_db_finalize(stmt);
    }
    if (rc == 0 && out->last_seen + idle < now) {
        rc = run2(st, "DELETE FROM sessions WHERE id_hash = ?1", id_hash, NULL, "end session");
        if (rc == 0) {
            pt_store_seterr(st, "session expired");
            rc = PT_ENOTFOUND;
        }
        /* The removal must be kept: commit it, then report the expiry. */
        int crc = pt_store_finish_quiet(st, rc == PT_ENOTFOUND ? 0 : rc);
        pt_session_clear(out);
        return crc != 0 ? crc : rc;
    }
    if (rc == 0) {
        rc = pt_store_prepare(st, "UPDATE sessions SET last_seen = ?2 WHERE id_hash = ?1", &stmt);
        if (rc == 0) {
            pt_db_bind_text(stmt, 1, id_hash, (size_t)-1);
            pt_db_bind_int64(stmt, 2, now);
            rc = pt_store_run_stmt(st, stmt, "touch session");
        }
    }
    rc = pt_store_finish_quiet(st, rc);
    if (rc != 0)
        pt_session_clear(out);
    return rc;
}

int
pt_store_session_rm(pt_store *st, const char *id_hash)
{
    int rc = pt_store_begin(st);
    if (rc != 0)
        return rc;
    rc = run2(st, "DELETE FROM sessions WHERE id_hash = ?1", id_hash, NULL, "end session");
    return pt_store_finish_quiet(st, rc);
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
    pt_db_stmt *stmt = NULL;
    int64_t one;
    int rc = pt_store_begin(st);
    if (rc != 0)
        return rc;
    rc = need_user(st, t->user);
    if (rc == 0 &&
        (rc = query_int(st, "SELECT 1 FROM admin_tokens WHERE id = ?1", t->id, &one)) == 1) {
        pt_store_seterr(st, "token id already taken");
        rc = PT_EEXIST;
    }
    if (rc == 0)
        rc =
            pt_store_prepare(st,
                             "INSERT INTO admin_tokens(id, hash, username, name, created, expires) "
                             "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                             &stmt);
    if (rc == 0) {
        pt_db_bind_text(stmt, 1, t->id, (size_t)-1);
        pt_db_bind_text(stmt, 2, hash, (size_t)-1);
        pt_db_bind_text(stmt, 3, t->user, (size_t)-1);
        pt_db_bind_text(stmt, 4, t->name, (size_t)-1);
        pt_db_bind_int64(stmt, 5, t->created);
        if (t->expires != 0)
            pt_db_bind_int64(stmt, 6, t->expires);
        else
            pt_db_bind_null(stmt, 6);
        rc = pt_store_run_stmt(st, stmt, "add token");
    }
    return pt_store_finish_quiet(st, rc);
}

static int
read_token(pt_store *st, pt_db_stmt *stmt, void *elem)
{
    pt_admin_token *t = elem;
    (void)st;
    t->id = pt_store_coldup(stmt, 0);
    t->user = pt_store_coldup(stmt, 1);
    t->name = pt_store_coldup(stmt, 2);
    t->role = pt_store_coldup(stmt, 3);
    t->created = pt_db_column_int64(stmt, 4);
    t->expires = pt_db_column_int64(stmt, 5);
    t->revoked = pt_db_column_int64(stmt, 6);
    t->last_used = pt_db_column_int64(stmt, 7);
    return t->id && t->user && t->name && t->role ? 0 : PT_ENOMEM;
}

static void
clear_token(void *elem)
{
    pt_admin_token_clear(elem);
}

static const pt_store_kind token_kind = {sizeof(pt_admin_token), read_token, clear_token,
                                         "list tokens"};

#define TOKEN_COLUMNS                                                                              \
    "SELECT t.id, t.username, t.name, u.role, t.created, coalesce(t.expires, 0), "                 \
    "coalesce(t.revoked, 0), coalesce(t.last_used, 0) FROM admin_tokens t "                        \
    "JOIN users u ON u.name = t.username "

int
pt_store_admin_token_find(pt_store *st, const char *hash, int64_t now, pt_admin_token *out)
{
    pt_db_stmt *stmt = NULL;
    pt_admin_token *list = NULL;
    size_t n = 0;
    int rc;

    memset(out, 0, sizeof *out);
    rc = pt_store_prepare(st,
                          TOKEN_COLUMNS "WHERE t.hash = ?1 AND t.revoked IS NULL "
                                        "AND (t.expires IS NULL OR t.expires > ?2)",
                          &stmt);
    if (rc != 0)
        return rc;
    pt_db_bind_text(stmt, 1, hash, (size_t)-1);
    pt_db_bind_int64(stmt, 2, now);
    rc = pt_store_collect(st, stmt, &token_kind, (void **)&list, &n);
    if (rc != 0)
        return rc;
    if (n == 0) {
        pt_store_seterr(st, "unknown, expired or revoked token");
        return PT_ENOTFOUND;
    }
    *out = list[0];
    free(list);
    /* Last-used times are advice: a busy writer is not waited for beyond busy_timeout, and a
     * failure is not the caller's. */
    if (pt_store_begin(st) == 0) {
        rc = pt_store_prepare(st, "UPDATE admin_tokens SET last_used = ?2 WHERE id = ?1", &stmt);
        if (rc == 0) {
            pt_db_bind_text(stmt, 1, out->id, (size_t)-1);
            pt_db_bind_int64(stmt, 2, now);
            rc = pt_store_run_stmt(st, stmt, "mark token used");
        }
        pt_store_finish_quiet(st, rc);
    }
    return 0;
}

int
pt_store_admin_token_list(pt_store *st, const char *user, pt_admin_token **out, size_t *n)
{
    pt_db_stmt *stmt = NULL;
    int rc = pt_store_prepare(
        st, TOKEN_COLUMNS "WHERE ?1 = '' OR t.username = ?1 ORDER BY t.created, t.id", &stmt);
    *out = NULL;
    *n = 0;
    if (rc != 0)
        return rc;
    pt_db_bind_text(stmt, 1, user != NULL ? user : "", (size_t)-1); /* "": every user */
    return pt_store_collect(st, stmt, &token_kind, (void **)out, n);
}

int
pt_store_admin_token_revoke(pt_store *st, const char *id)
{
    char msg[128];
    pt_db_stmt *stmt = NULL;
    int rc = pt_store_begin(st);
    if (rc != 0)
        return rc;
    rc = pt_store_prepare(
        st, "UPDATE admin_tokens SET revoked = coalesce(revoked, ?2) WHERE id = ?1", &stmt);
    if (rc == 0) {
        pt_db_bind_text(stmt, 1, id, (size_t)-1);
        pt_db_bind_int64(stmt, 2, (int64_t)time(NULL));
        rc = pt_store_run_stmt(st, stmt, "revoke token");
    }
    if (rc == 0) {
        snprintf(msg, sizeof msg, "no admin token '%s'", id);
        rc = pt_store_changed_one(st, msg);
    }
    return pt_store_finish_quiet(st, rc);
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
    pt_store_free_rows(list, n, &token_kind);
}

/* ---- Failed logins ----------------------------------------------------------------------- */

#define FAILURE_MEMORY 3600 /* seconds after which a key's failures are forgotten */
#define PRUNE_AFTER "3600"  /* FAILURE_MEMORY, for the SQL that forgets them */

int
pt_store_login_blocked(pt_store *st, const char *key, int64_t now, int64_t *retry_after)
{
    int64_t until = 0;
    int rc = query_int(st, "SELECT locked_until FROM login_failures WHERE key = ?1", key, &until);
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
    pt_db_stmt *stmt = NULL;
    int64_t count = 0, last = 0;
    int rc = pt_store_begin(st);
    if (rc != 0)
        return rc;
    rc = run_int(st,
                 "DELETE FROM login_failures WHERE last_failure < ?1 - " PRUNE_AFTER
                 " AND locked_until < ?1",
                 now, "prune failed logins");
    if (rc == 0)
        rc = query_int(st, "SELECT last_failure FROM login_failures WHERE key = ?1", key, &last);
    if (rc == 1)
        rc = query_int(st, "SELECT failures FROM login_failures WHERE key = ?1", key, &count);
    if (rc >= 0) {
        if (rc == 0 || last + FAILURE_MEMORY < now)
            count = 0;
        count++;
        rc = pt_store_prepare(
            st,
            "INSERT INTO login_failures(key, failures, last_failure, locked_until) "
            "VALUES (?1, ?2, ?3, ?4) ON CONFLICT(key) DO UPDATE SET "
            "failures = excluded.failures, last_failure = excluded.last_failure, "
            "locked_until = excluded.locked_until",
            &stmt);
    }
    if (rc == 0) {
        int64_t lock = lock_for((int)count);
        pt_db_bind_text(stmt, 1, key, (size_t)-1);
        pt_db_bind_int64(stmt, 2, count);
        pt_db_bind_int64(stmt, 3, now);
        pt_db_bind_int64(stmt, 4, lock > 0 ? now + lock : 0);
        rc = pt_store_run_stmt(st, stmt, "count failed login");
    }
    *failures = (int)count;
    return pt_store_finish_quiet(st, rc);
}

int
pt_store_login_reset(pt_store *st, const char *key)
{
    int rc = pt_store_begin(st);
    if (rc != 0)
        return rc;
    rc = run2(st, "DELETE FROM login_failures WHERE key = ?1", key, NULL, "reset failed logins");
    return pt_store_finish_quiet(st, rc);
}
