/* store_webhooks.c - webhook metadata in the metadata store: the inbox token (table settings)
 * and the named sources (table webhook_sources), both created by schema version 4. */
#include "store/store_webhooks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "core/err.h"
#include "store/store_int.h"

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
    pt_db_stmt *stmt = NULL;
    int rc;
    rc = pt_store_prepare(st, "SELECT value FROM settings WHERE key = ?1", &stmt);
    if (rc != 0)
        return rc;
    pt_db_bind_text(stmt, 1, key, (size_t)-1);
    rc = pt_db_step(stmt);
    if (rc == PT_DB_ROW) {
        *value = strdup(pt_db_column_text(stmt, 0, NULL));
        rc = *value != NULL ? 0 : PT_ENOMEM;
    } else if (rc == PT_DB_DONE) {
        rc = PT_ENOTFOUND;
    } else {
        rc = pt_store_fail(st, rc, "read setting");
    }
    pt_db_finalize(stmt);
    return rc;
}

/* Writes a fresh token, replacing any (inside the caller's transaction). */
static int
put_token(pt_store *st, char **token)
{
    char t[44];
    pt_db_stmt *stmt = NULL;
    int rc = random_token(t);
    if (rc != 0) {
        pt_store_seterr(st, "cannot read random bytes for the webhook token");
        return rc;
    }
    rc = pt_store_prepare(st,
                          "INSERT INTO settings(key, value) VALUES ('webhook_token', ?1)"
                          " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                          &stmt);
    if (rc != 0)
        return rc;
    pt_db_bind_text(stmt, 1, t, (size_t)-1);
    rc = pt_store_run_stmt(st, stmt, "write webhook token");
    if (rc == 0 && (*token = strdup(t)) == NULL)
        rc = PT_ENOMEM;
    return rc;
}

int
pt_store_webhook_token(pt_store *st, int create, char **token)
{
    int rc = get_setting(st, "webhook_token", token);
    if (rc != PT_ENOTFOUND || !create)
        return rc;
    if ((rc = pt_store_begin(st)) != 0)
        return rc;
    /* Another process may have made one meanwhile: keep theirs. */
    rc = get_setting(st, "webhook_token", token);
    if (rc == PT_ENOTFOUND)
        rc = put_token(st, token);
    return pt_store_finish(st, rc);
}

int
pt_store_webhook_rotate(pt_store *st, char **token)
{
    int rc = pt_store_begin(st);
    if (rc != 0)
        return rc;
    return pt_store_finish(st, put_token(st, token));
}

/* Checks s's name, scheme and secret, and (inside the caller's transaction) that its script
 * exists. 0, or PT_EINVAL / PT_ENOTFOUND (unknown script) with the reason in the store's
 * message. */
static int
source_check(pt_store *st, const pt_webhook_source *s)
{
    const char *v = s->verify != NULL ? s->verify : "none";

    if (!pt_store_name_valid(s->name)) {
        pt_store_seterr(st, "invalid source name '%s' (letters, digits, '_', '.', '-')", s->name);
        return PT_EINVAL;
    }
    if (strcmp(v, "none") != 0 && strcmp(v, "github") != 0 && strcmp(v, "stripe") != 0 &&
        strcmp(v, "hmac-sha256") != 0) {
        pt_store_seterr(st, "unknown --verify '%s' (github, stripe or hmac-sha256)", v);
        return PT_EINVAL;
    }
    if (strcmp(v, "none") != 0 && (s->secret == NULL || s->secret[0] == '\0')) {
        pt_store_seterr(st, "--verify %s needs --secret SECRET_NAME", v);
        return PT_EINVAL;
    }
    if (s->script != NULL) {
        pt_script *sc = NULL;
        int rc = pt_store_script_get(st, s->script, 0, &sc);
        pt_script_free(sc);
        if (rc != 0) {
            pt_store_seterr(st, "no script named '%s'", s->script);
            return PT_ENOTFOUND;
        }
    }
    return 0;
}

/* Adds source s (update 0) or replaces the fields of the source named s->name (update 1), in
 * one transaction with its checks. */
static int
source_write(pt_store *st, const pt_webhook_source *s, int update)
{
    char msg[256];
    pt_db_stmt *stmt = NULL;
    int rc;

    if ((rc = pt_store_begin(st)) != 0)
        return rc;
    if ((rc = source_check(st, s)) != 0)
        goto done;
    rc = pt_store_prepare(st,
                          update ? "UPDATE webhook_sources SET verify = ?2, secret = ?3,"
                                   " header = ?4, dedup_header = ?5, script = ?6 WHERE name = ?1"
                                 : "INSERT INTO webhook_sources(name, verify, secret, header,"
                                   " dedup_header, script, created) VALUES (?1,?2,?3,?4,?5,?6,?7)",
                          &stmt);
    if (rc != 0)
        goto done;
    pt_db_bind_text(stmt, 1, s->name, (size_t)-1);
    pt_db_bind_text(stmt, 2, s->verify != NULL ? s->verify : "none", (size_t)-1);
    pt_db_bind_opt_text(stmt, 3, s->secret);
    pt_db_bind_opt_text(stmt, 4, s->header);
    pt_db_bind_opt_text(stmt, 5, s->dedup_header);
    pt_db_bind_opt_text(stmt, 6, s->script);
    if (update) {
        rc = pt_store_run_stmt(st, stmt, "change webhook source");
        snprintf(msg, sizeof(msg), "no webhook source named '%s'", s->name);
        rc = rc != 0 ? rc : pt_store_changed_one(st, msg);
        goto done;
    }
    pt_db_bind_int64(stmt, 7, (int64_t)time(NULL));
    rc = pt_db_run(stmt);
    pt_db_finalize(stmt);
    if (rc == PT_EEXIST) {
        pt_store_seterr(st, "a webhook source named '%s' already exists", s->name);
        rc = PT_EEXIST;
    } else if (rc != 0) {
        rc = pt_store_fail(st, rc, "add webhook source");
    }
done:
    return pt_store_finish(st, rc);
}

int
pt_store_webhook_source_add(pt_store *st, const pt_webhook_source *s)
{
    return source_write(st, s, 0);
}

int
pt_store_webhook_source_update(pt_store *st, const pt_webhook_source *s)
{
    return source_write(st, s, 1);
}

int
pt_store_webhook_source_rm(pt_store *st, const char *name)
{
    char msg[256];
    pt_db_stmt *stmt = NULL;
    int rc;
    if ((rc = pt_store_begin(st)) != 0)
        return rc;
    rc = pt_store_prepare(st, "DELETE FROM webhook_sources WHERE name = ?1", &stmt);
    if (rc != 0)
        return pt_store_finish(st, rc);
    pt_db_bind_text(stmt, 1, name, (size_t)-1);
    rc = pt_store_run_stmt(st, stmt, "remove webhook source");
    if (rc == 0) {
        snprintf(msg, sizeof(msg), "no webhook source named '%s'", name);
        rc = pt_store_changed_one(st, msg);
    }
    return pt_store_finish(st, rc);
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
source_read(pt_store *st, pt_db_stmt *stmt, void *elem)
{
    pt_webhook_source *s = elem;
    int oom = 0;
    (void)st;
    s->name = pt_store_colnull(stmt, 0, &oom);
    s->verify = pt_store_colnull(stmt, 1, &oom);
    s->secret = pt_store_colnull(stmt, 2, &oom);
    s->header = pt_store_colnull(stmt, 3, &oom);
    s->dedup_header = pt_store_colnull(stmt, 4, &oom);
    s->script = pt_store_colnull(stmt, 5, &oom);
    s->created = pt_db_column_int64(stmt, 6);
    return oom || s->name == NULL || s->verify == NULL ? PT_ENOMEM : 0;
}

static const pt_store_kind source_kind = {.size = sizeof(pt_webhook_source),
                                          .read = source_read,
                                          .clear = source_clear,
                                          .what = "list webhook sources"};

void
pt_store_webhook_sources_free(pt_webhook_source *list, size_t n)
{
    pt_store_free_rows(list, n, &source_kind);
}

int
pt_store_webhook_source_list(pt_store *st, pt_webhook_source **out, size_t *n)
{
    pt_db_stmt *stmt = NULL;
    void *list = NULL;
    int rc = pt_store_prepare(st,
                              "SELECT name, verify, secret, header, dedup_header, script, created"
                              " FROM webhook_sources ORDER BY name",
                              &stmt);
    if (rc != 0)
        return rc;
    rc = pt_store_collect(st, stmt, &source_kind, &list, n);
    *out = list;
    return rc;
}
