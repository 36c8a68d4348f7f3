/* store_webhooks.c - webhook metadata in the SQLite store: the inbox token (table settings)
 * and the named sources (table webhook_sources). Tables are created on first use. */
#include "store/store_webhooks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "core/err.h"
#include "store/store_sqlite_int.h"

static const char tables_sql[] = "CREATE TABLE IF NOT EXISTS settings("
                                 "  key TEXT PRIMARY KEY,"
                                 "  value TEXT NOT NULL);"
                                 "CREATE TABLE IF NOT EXISTS webhook_sources("
                                 "  name TEXT PRIMARY KEY,"
                                 "  verify TEXT NOT NULL,"
                                 "  secret TEXT,"
                                 "  header TEXT,"
                                 "  dedup_header TEXT,"
                                 "  script TEXT,"
                                 "  created INTEGER NOT NULL);";

static int
ensure_tables(pt_store *st)
{
    if (sqlite3_exec(pt_store_sqlite_db(st), tables_sql, NULL, NULL, NULL) != SQLITE_OK)
        return pt_store_sqlite_fail(st, "create webhook tables");
    return 0;
}

/* 32 random bytes as unpadded base64url (43 characters) into out[44]. */
static int
random_token(char out[44])
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char raw[33];
    if (getrandom(raw, 32, 0) != 32)
        return PT_EIO;
    raw[32] = 0;
    size_t o = 0;
    for (size_t i = 0; i < 33 && o < 43; i += 3) {
        uint32_t v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 | raw[i + 2];
        for (int k = 3; k >= 0 && o < 43; k--)
            out[o++] = alphabet[(v >> (6 * k)) & 63];
    }
    out[43] = '\0';
    return 0;
}

static int
get_setting(pt_store *st, const char *key, char **value)
{
    sqlite3_stmt *stmt = NULL;
    int rc;
    if (sqlite3_prepare_v2(pt_store_sqlite_db(st), "SELECT value FROM settings WHERE key = ?1", -1,
                           &stmt, NULL) != SQLITE_OK)
        return pt_store_sqlite_fail(st, "read setting");
    sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC);
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        *value = strdup((const char *)sqlite3_column_text(stmt, 0));
        rc = *value != NULL ? 0 : PT_ENOMEM;
    } else if (rc == SQLITE_DONE) {
        rc = PT_ENOTFOUND;
    } else {
        rc = pt_store_sqlite_fail(st, "read setting");
    }
    sqlite3_finalize(stmt);
    return rc;
}

/* Writes a fresh token, replacing any (inside the caller's transaction). */
static int
put_token(pt_store *st, char **token)
{
    char t[44];
    sqlite3_stmt *stmt = NULL;
    int rc = random_token(t);
    if (rc != 0) {
        pt_store_sqlite_seterr(st, "cannot read random bytes for the webhook token");
        return rc;
    }
    if (sqlite3_prepare_v2(pt_store_sqlite_db(st),
                           "INSERT INTO settings(key, value) VALUES ('webhook_token', ?1)"
                           " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                           -1, &stmt, NULL) != SQLITE_OK)
        return pt_store_sqlite_fail(st, "write webhook token");
    sqlite3_bind_text(stmt, 1, t, -1, SQLITE_STATIC);
    rc = pt_store_sqlite_run(st, stmt, "write webhook token");
    if (rc == 0 && (*token = strdup(t)) == NULL)
        rc = PT_ENOMEM;
    return rc;
}

int
pt_store_webhook_token(pt_store *st, int create, char **token)
{
    int rc = ensure_tables(st);
    if (rc != 0)
        return rc;
    rc = get_setting(st, "webhook_token", token);
    if (rc != PT_ENOTFOUND || !create)
        return rc;
    if ((rc = pt_store_sqlite_begin(st)) != 0)
        return rc;
    /* Another process may have made one meanwhile: keep theirs. */
    rc = get_setting(st, "webhook_token", token);
    if (rc == PT_ENOTFOUND)
        rc = put_token(st, token);
    return pt_store_sqlite_finish(st, rc);
}

int
pt_store_webhook_rotate(pt_store *st, char **token)
{
    int rc = ensure_tables(st);
    if (rc == 0)
        rc = pt_store_sqlite_begin(st);
    if (rc != 0)
        return rc;
    return pt_store_sqlite_finish(st, put_token(st, token));
}

int
pt_store_webhook_source_add(pt_store *st, const pt_webhook_source *s)
{
    char msg[256];
    sqlite3_stmt *stmt = NULL;
    int rc;

    if (!pt_store_name_valid(s->name)) {
        snprintf(msg, sizeof(msg), "invalid source name '%s' (letters, digits, '_', '.', '-')",
                 s->name);
        pt_store_sqlite_seterr(st, msg);
        return PT_EINVAL;
    }
    const char *v = s->verify != NULL ? s->verify : "none";
    if (strcmp(v, "none") != 0 && strcmp(v, "github") != 0 && strcmp(v, "stripe") != 0 &&
        strcmp(v, "hmac-sha256") != 0) {
        snprintf(msg, sizeof(msg), "unknown --verify '%s' (github, stripe or hmac-sha256)", v);
        pt_store_sqlite_seterr(st, msg);
        return PT_EINVAL;
    }
    if (strcmp(v, "none") != 0 && (s->secret == NULL || s->secret[0] == '\0')) {
        snprintf(msg, sizeof(msg), "--verify %s needs --secret SECRET_NAME", v);
        pt_store_sqlite_seterr(st, msg);
        return PT_EINVAL;
    }
    if ((rc = ensure_tables(st)) != 0 || (rc = pt_store_sqlite_begin(st)) != 0)
        return rc;
    if (s->script != NULL) {
        pt_script *sc = NULL;
        rc = pt_store_script_get(st, s->script, 0, &sc);
        pt_script_free(sc);
        if (rc != 0) {
            snprintf(msg, sizeof(msg), "no script named '%s'", s->script);
            pt_store_sqlite_seterr(st, msg);
            rc = PT_ENOTFOUND;
            goto done;
        }
    }
    if (sqlite3_prepare_v2(pt_store_sqlite_db(st),
                           "INSERT INTO webhook_sources(name, verify, secret, header,"
                           " dedup_header, script, created) VALUES (?1,?2,?3,?4,?5,?6,?7)",
                           -1, &stmt, NULL) != SQLITE_OK) {
        rc = pt_store_sqlite_fail(st, "add webhook source");
        goto done;
    }
    sqlite3_bind_text(stmt, 1, s->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(stmt, 2, v, -1, SQLITE_STATIC);
    pt_store_sqlite_bind_opt_text(stmt, 3, s->secret);
    pt_store_sqlite_bind_opt_text(stmt, 4, s->header);
    pt_store_sqlite_bind_opt_text(stmt, 5, s->dedup_header);
    pt_store_sqlite_bind_opt_text(stmt, 6, s->script);
    sqlite3_bind_int64(stmt, 7, (int64_t)time(NULL));
    rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    if (rc == SQLITE_CONSTRAINT) {
        snprintf(msg, sizeof(msg), "a webhook source named '%s' already exists", s->name);
        pt_store_sqlite_seterr(st, msg);
        rc = PT_EEXIST;
    } else if (rc != SQLITE_DONE) {
        rc = pt_store_sqlite_fail(st, "add webhook source");
    } else {
        rc = 0;
    }
done:
    return pt_store_sqlite_finish(st, rc);
}

int
pt_store_webhook_source_rm(pt_store *st, const char *name)
{
    char msg[256];
    sqlite3_stmt *stmt = NULL;
    int rc;
    if ((rc = ensure_tables(st)) != 0 || (rc = pt_store_sqlite_begin(st)) != 0)
        return rc;
    if (sqlite3_prepare_v2(pt_store_sqlite_db(st), "DELETE FROM webhook_sources WHERE name = ?1",
                           -1, &stmt, NULL) != SQLITE_OK)
        return pt_store_sqlite_finish(st, pt_store_sqlite_fail(st, "remove webhook source"));
    sqlite3_bind_text(stmt, 1, name, -1, SQLITE_STATIC);
    rc = pt_store_sqlite_run(st, stmt, "remove webhook source");
    if (rc == 0) {
        snprintf(msg, sizeof(msg), "no webhook source named '%s'", name);
        rc = pt_store_sqlite_changed_one(st, msg);
    }
    return pt_store_sqlite_finish(st, rc);
}

static char *
col(sqlite3_stmt *stmt, int i)
{
    const unsigned char *s = sqlite3_column_text(stmt, i);
    return s != NULL ? strdup((const char *)s) : NULL;
}

static void
source_clear(void *elem)
{
    pt_webhook_source *s = elem;
    free(s->name);
    free(s->verify);
    free(s->secret);
    free(s->header);
    free(s->dedup_header);
    free(s->script);
}

/* Fills elem (a zeroed pt_webhook_source) from a row of webhook_sources; PT_ENOMEM when the
 * name or the scheme could not be copied (what was copied is left for source_clear). */
static int
source_read(pt_store *st, sqlite3_stmt *stmt, void *elem)
{
    pt_webhook_source *s = elem;
    (void)st;
    s->name = col(stmt, 0);
    s->verify = col(stmt, 1);
    s->secret = col(stmt, 2);
    s->header = col(stmt, 3);
    s->dedup_header = col(stmt, 4);
    s->script = col(stmt, 5);
    s->created = sqlite3_column_int64(stmt, 6);
    return s->name == NULL || s->verify == NULL ? PT_ENOMEM : 0;
}

static const pt_store_rowkind source_kind = {.size = sizeof(pt_webhook_source),
                                             .read = source_read,
                                             .clear = source_clear,
                                             .what = "list webhook sources"};

void
pt_store_webhook_sources_free(pt_webhook_source *list, size_t n)
{
    pt_store_sqlite_free_rows(list, n, &source_kind);
}

int
pt_store_webhook_source_list(pt_store *st, pt_webhook_source **out, size_t *n)
{
    sqlite3_stmt *stmt = NULL;
    void *list = NULL;
    int rc = ensure_tables(st);
    if (rc != 0)
        return rc;
    if (sqlite3_prepare_v2(pt_store_sqlite_db(st),
                           "SELECT name, verify, secret, header, dedup_header, script, created"
                           " FROM webhook_sources ORDER BY name",
                           -1, &stmt, NULL) != SQLITE_OK)
        return pt_store_sqlite_fail(st, "list webhook sources");
    rc = pt_store_sqlite_rows(st, stmt, &source_kind, &list, n);
    *out = list;
    return rc;
}
