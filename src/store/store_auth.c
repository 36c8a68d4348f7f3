/* store_auth.c - what authorization keeps in the metadata store: tokens, API keys and their
 * last-used times, encrypted secrets, trusted issuers (invariants 4 to 6 of store.c). */
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "store/store_int.h"

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
            pt_store_seterr(st, "invalid endpoint name in scope");
            return PT_EINVAL;
        }
        memcpy(name, p, n);
        name[n] = '\0';
        rc = pt_store_query_int(st, "SELECT 1 FROM endpoints WHERE name = ?1", name, 0, &one);
        if (rc < 0)
            return rc;
        if (rc == 0) {
            pt_store_seterr(st, "no endpoint named '%s'", name);
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
token_read(pt_store *st, pt_db_stmt *stmt, void *elem)
{
    pt_token *t = elem;
    int oom = 0;

    (void)st;
    t->id = pt_store_colnull(stmt, 0, &oom);
    t->name = pt_store_colnull(stmt, 1, &oom);
    t->created = pt_db_column_int64(stmt, 2);
    t->expires = pt_db_column_int64(stmt, 3);
    t->scope = pt_store_colnull(stmt, 4, &oom);
    t->rate = pt_store_colnull(stmt, 5, &oom);
    t->revoked = pt_db_column_int64(stmt, 6);
    t->last_used = pt_db_column_int64(stmt, 7);
    return oom ? PT_ENOMEM : 0;
}

static const pt_store_kind token_kind = {
    .size = sizeof(pt_token), .read = token_read, .clear = token_clear, .what = "list tokens"};

void
pt_store_tokens_free(pt_token *list, size_t n)
{
    pt_store_free_rows(list, n, &token_kind);
}

int
pt_store_token_add(pt_store *st, const pt_token *t)
{
    pt_db_stmt *stmt = NULL;
    int64_t one = 0;
    int rc;

    if (t->id == NULL || t->id[0] == '\0' || strlen(t->id) > 64) {
        pt_store_seterr(st, "invalid token id");
        return PT_EINVAL;
    }
    rc = pt_store_check_name(st, "token", t->name);
    if (rc != 0)
        return rc;
    rc = pt_store_begin(st);
    if (rc != 0)
        return rc;
    rc = check_scope(st, t->scope);
    if (rc != 0)
        goto done;
    rc = pt_store_query_int(st, "SELECT 1 FROM tokens WHERE id = ?1", t->id, 0, &one);
    if (rc == 1) {
        pt_store_seterr(st, "token id '%s' already exists", t->id);
        rc = PT_EEXIST;
    }
    if (rc != 0)
        goto done;
    rc = pt_store_prepare(st,
                          "INSERT INTO tokens(id, name, created, expires, scope, rate) "
                          "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                          &stmt);
    if (rc != 0)
        goto done;
    pt_db_bind_text(stmt, 1, t->id, (size_t)-1);
    pt_db_bind_text(stmt, 2, t->name, (size_t)-1);
    pt_db_bind_int64(stmt, 3, t->created != 0 ? t->created : (int64_t)time(NULL));
    pt_db_bind_opt_int64(stmt, 4, t->expires);
    pt_db_bind_opt_text(stmt, 5, t->scope);
    pt_db_bind_opt_text(stmt, 6, t->rate);
    rc = pt_store_run_stmt(st, stmt, "add token");
done:
    return pt_store_finish(st, rc);
}

int
pt_store_token_revoke(pt_store *st, const char *id)
{
    return pt_store_mutate_one(st,
                               "UPDATE tokens SET revoked = coalesce(revoked, ?2) WHERE id = ?1",
                               id, (int64_t)time(NULL), "update", "no token with id '%.64s'", id);
}

int
pt_store_token_list(pt_store *st, pt_token **out, size_t *n)
{
    void *list = NULL;
    int rc = pt_store_list(st,
                           "SELECT id, name, created, expires, scope, rate, revoked, last_used "
                           "FROM tokens ORDER BY created, {rowid}",
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
apikey_read(pt_store *st, pt_db_stmt *stmt, void *elem)
{
    pt_apikey *k = elem;
    const void *hash;
    size_t hash_len = 0;
    int oom = 0;

    (void)st;
    k->id = pt_db_column_int64(stmt, 0);
    k->name = pt_store_colnull(stmt, 1, &oom);
    hash = pt_db_column_blob(stmt, 2, &hash_len);
    if (hash_len == PT_STORE_HASH_BYTES)
        memcpy(k->hash, hash, PT_STORE_HASH_BYTES);
    k->hint = pt_store_colnull(stmt, 3, &oom);
    k->created = pt_db_column_int64(stmt, 4);
    k->scope = pt_store_colnull(stmt, 5, &oom);
    k->rate = pt_store_colnull(stmt, 6, &oom);
    k->revoked = pt_db_column_int64(stmt, 7);
    k->last_used = pt_db_column_int64(stmt, 8);
    return oom ? PT_ENOMEM : 0;
}

static const pt_store_kind apikey_kind = {
    .size = sizeof(pt_apikey), .read = apikey_read, .clear = apikey_clear, .what = "list API keys"};

void
pt_store_apikeys_free(pt_apikey *list, size_t n)
{
    pt_store_free_rows(list, n, &apikey_kind);
}

int
pt_store_apikey_add(pt_store *st, pt_apikey *k)
{
    pt_db_stmt *stmt = NULL;
    int64_t one = 0;
    int rc;

    rc = pt_store_check_name(st, "API key", k->name);
    if (rc != 0)
        return rc;
    rc = pt_store_begin(st);
    if (rc != 0)
        return rc;
    rc = check_scope(st, k->scope);
    if (rc != 0)
        goto done;
    rc = pt_store_query_int(st, "SELECT 1 FROM apikeys WHERE name = ?1 AND revoked IS NULL",
                            k->name, 0, &one);
    if (rc == 1) {
        pt_store_seterr(st, "an API key named '%s' already exists (revoke it first)", k->name);
        rc = PT_EEXIST;
    }
    if (rc != 0)
        goto done;
    rc = pt_store_prepare(st,
                          "INSERT INTO apikeys(name, hash, hint, created, scope, rate) "
                          "VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
                          &stmt);
    if (rc != 0)
        goto done;
    pt_db_bind_text(stmt, 1, k->name, (size_t)-1);
    pt_db_bind_blob(stmt, 2, k->hash, PT_STORE_HASH_BYTES);
    pt_db_bind_text(stmt, 3, k->hint != NULL ? k->hint : "", (size_t)-1);
    pt_db_bind_int64(stmt, 4, k->created != 0 ? k->created : (int64_t)time(NULL));
    pt_db_bind_opt_text(stmt, 5, k->scope);
    pt_db_bind_opt_text(stmt, 6, k->rate);
    rc = pt_db_step(stmt);
    if (rc == PT_DB_ROW) {
        k->id = pt_db_column_int64(stmt, 0);
        rc = pt_db_run(stmt);
    }
    if (rc == PT_EEXIST) {
        pt_store_seterr(st, "API key already exists");
    } else if (rc != 0) {
        rc = pt_store_fail(st, rc, "add API key");
    }
    pt_db_finalize(stmt);
done:
    return pt_store_finish(st, rc);
}

int
pt_store_apikey_revoke(pt_store *st, const char *name)
{
    return pt_store_mutate_one(
        st, "UPDATE apikeys SET revoked = ?2 WHERE name = ?1 AND revoked IS NULL", name,
        (int64_t)time(NULL), "update", "no API key named '%.64s' (or it is already revoked)", name);
}

int
pt_store_apikey_list(pt_store *st, pt_apikey **out, size_t *n)
{
    void *list = NULL;
    int rc = pt_store_list(st,
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
    pt_db_stmt *stmt = NULL;
    int rc;

    if (n == 0)
        return 0;
    rc = pt_store_prepare(st, sql, &stmt);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (int_ids)
            pt_db_bind_int64(stmt, 1, strtoll(uses[i].id, NULL, 10));
        else
            pt_db_bind_text(stmt, 1, uses[i].id, (size_t)-1);
        pt_db_bind_int64(stmt, 2, uses[i].when);
        rc = pt_db_run(stmt);
        if (rc != 0)
            pt_store_fail(st, rc, "mark used");
        pt_db_reset(stmt);
    }
    pt_db_finalize(stmt);
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
    pt_db_set_busy_timeout(st->db, 0);
    pt_db_set_durable(st->db, 0);
    rc = pt_store_begin(st); /* PT_EUNAVAIL when another writer holds the lock */
    if (rc != 0)
        goto done;
    rc = mark_rows(st,
                   "UPDATE tokens SET last_used = ?2 WHERE id = ?1 AND "
                   "(last_used IS NULL OR last_used < ?2)",
                   tokens, ntokens, 0);
    if (rc == 0)
        rc = mark_rows(st,
                       "UPDATE apikeys SET last_used = ?2 WHERE id = ?1 AND "
                       "(last_used IS NULL OR last_used < ?2)",
                       keys, nkeys, 1);
    rc = pt_store_finish_quiet(st, rc); /* no bump: see store.h */
done:
    pt_db_set_durable(st->db, 1);
    pt_db_set_busy_timeout(st->db, PT_STORE_BUSY_TIMEOUT_MS);
    return rc;
}

/* ---- secrets ------------------------------------------------------------------------------ */

int
pt_store_secret_name_valid(const char *name)
{
    return pt_store_text_name_valid(name);
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
secret_read(pt_store *st, pt_db_stmt *stmt, void *elem)
{
    pt_secret *s = elem;
    size_t n = 0;
    const void *box = pt_db_column_blob(stmt, 2, &n);

    (void)st;
    s->name = pt_store_coldup(stmt, 0);
    s->key_id = pt_store_coldup(stmt, 1);
    s->box = malloc(n > 0 ? n : 1);
    s->box_len = n;
    s->created = pt_db_column_int64(stmt, 3);
    s->updated = pt_db_column_int64(stmt, 4);
    if (s->name == NULL || s->key_id == NULL || s->box == NULL)
        return PT_ENOMEM;
    if (n > 0)
        memcpy(s->box, box, n);
    return 0;
}

static const pt_store_kind secret_kind = {
    .size = sizeof(pt_secret), .read = secret_read, .clear = secret_clear, .what = "list secrets"};

void
pt_store_secrets_free(pt_secret *list, size_t n)
{
    pt_store_free_rows(list, n, &secret_kind);
}

static int
secret_check_name(pt_store *st, const char *name)
{
    if (pt_store_secret_name_valid(name))
        return 0;
    pt_store_seterr(st, "invalid secret name (1 to 128 bytes of UTF-8, no control characters)");
    return PT_EINVAL;
}

/* The settings row where a rotation records its master key (invariant 6). */
#define SECRET_KEY_SETTING "secrets_master_key_id"

/* Reads the recorded master key fingerprint into out (inside or outside a transaction).
 * Returns 0, PT_ENOTFOUND when none is recorded, or a pt_err. */
static int
secret_key_read(pt_store *st, char *out, size_t outsz)
{
    pt_db_stmt *stmt = NULL;
    int rc;

    rc = pt_store_prepare(st, "SELECT value FROM settings WHERE key = '" SECRET_KEY_SETTING "'",
                          &stmt);
    if (rc != 0)
        return rc;
    rc = pt_db_step(stmt);
    if (rc == PT_DB_ROW) {
        const char *v = pt_db_column_text(stmt, 0, NULL);
        if (snprintf(out, outsz, "%s", v) >= (int)outsz) {
            pt_store_seterr(st, "metadata store: malformed %s setting", SECRET_KEY_SETTING);
            rc = PT_EINVAL;
        } else {
            rc = 0;
        }
    } else if (rc == PT_DB_DONE) {
        rc = PT_ENOTFOUND;
    } else {
        rc = pt_store_fail(st, rc, "read the master key id");
    }
    pt_db_finalize(stmt);
    return rc;
}

int
pt_store_secret_key_id(pt_store *st, char *out, size_t outsz)
{
    return secret_key_read(st, out, outsz);
}

/* pt_store_secret_put and pt_store_secret_create: stores s with sql (?1 name, ?2 key_id, ?3
 * box, ?4 time), in the transaction that checks the current master key. */
static int
secret_write(pt_store *st, const pt_secret *s, const char *sql)
{
    pt_db_stmt *stmt = NULL;
    char current[64];
    int rc;

    rc = secret_check_name(st, s->name);
    if (rc != 0)
        return rc;
    if (s->key_id == NULL || s->box == NULL || s->box_len == 0 || s->box_len > INT32_MAX) {
        pt_store_seterr(st, "invalid secret record");
        return PT_EINVAL;
    }
    rc = pt_store_begin(st);
    if (rc != 0)
        return rc;
    /* Invariant 6, under the write lock: no rotation can commit between this check and ours. */
    rc = secret_key_read(st, current, sizeof current);
    if (rc == 0 && strcmp(current, s->key_id) != 0) {
        pt_store_seterr(
            st,
            "the master key was rotated (secrets are now under master key %s, this value "
            "was sealed under %.16s)",
            current, s->key_id);
        rc = PT_EUNAVAIL;
    }
    if (rc != 0 && rc != PT_ENOTFOUND)
        goto done;
    rc = pt_store_prepare(st, sql, &stmt);
    if (rc != 0)
        goto done;
    pt_db_bind_text(stmt, 1, s->name, (size_t)-1);
    pt_db_bind_text(stmt, 2, s->key_id, (size_t)-1);
    pt_db_bind_blob(stmt, 3, s->box, s->box_len);
    pt_db_bind_int64(stmt, 4, s->updated != 0 ? s->updated : (int64_t)time(NULL));
    rc = pt_store_run_stmt(st, stmt, "store secret");
    if (rc == PT_EEXIST)
        pt_store_seterr(st, "secret '%s' exists", s->name);
done:
    return pt_store_finish(st, rc);
}

int
pt_store_secret_put(pt_store *st, const pt_secret *s)
{
    return secret_write(st, s,
                        "INSERT INTO secrets(name, key_id, box, created, updated) "
                        "VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT(name) DO UPDATE SET "
                        "key_id = excluded.key_id, box = excluded.box, updated = excluded.updated");
}

int
pt_store_secret_create(pt_store *st, const pt_secret *s)
{
    return secret_write(st, s,
                        "INSERT INTO secrets(name, key_id, box, created, updated) "
                        "VALUES (?1, ?2, ?3, ?4, ?4)");
}

int
pt_store_secret_get(pt_store *st, const char *name, pt_secret *out)
{
    int rc = pt_store_get_row(
        st, "SELECT name, key_id, box, created, updated FROM secrets WHERE name = ?1", name,
        &secret_kind, out, "get secret");

    if (rc == PT_ENOTFOUND)
        pt_store_seterr(st, "no secret named '%.128s'", name);
    return rc;
}

int
pt_store_secret_rm(pt_store *st, const char *name)
{
    return pt_store_mutate_one(st, "DELETE FROM secrets WHERE name = ?1", name, 0, "update",
                               "no secret named '%.128s'", name);
}

/* Collects every secret row (inside or outside a transaction). Caller frees *out with
 * pt_store_secrets_free. */
static int
secret_rows(pt_store *st, pt_secret **out, size_t *n)
{
    void *list = NULL;
    int rc =
        pt_store_list(st, "SELECT name, key_id, box, created, updated FROM secrets ORDER BY name",
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
    pt_db_stmt *stmt = NULL;
    pt_secret *list = NULL;
    size_t n = 0;
    int rc;

    if (key_id == NULL || key_id[0] == '\0' || strlen(key_id) > 63) {
        pt_store_seterr(st, "invalid master key id");
        return PT_EINVAL;
    }
    rc = pt_store_begin(st);
    if (rc != 0)
        return rc;
    rc = secret_rows(st, &list, &n);
    if (rc != 0)
        goto done;
    rc = pt_store_prepare(st, "UPDATE secrets SET key_id = ?2, box = ?3 WHERE name = ?1", &stmt);
    if (rc != 0)
        goto done;
    for (size_t i = 0; i < n; i++) {
        rc = fn(ctx, &list[i]);
        if (rc != 0)
            goto done;
        if (list[i].key_id == NULL || strcmp(list[i].key_id, key_id) != 0) {
            pt_store_seterr(st, "secret '%.128s' was not re-encrypted under master key %s",
                            list[i].name, key_id);
            rc = PT_EINVAL;
            goto done;
        }
        pt_db_bind_text(stmt, 1, list[i].name, (size_t)-1);
        pt_db_bind_text(stmt, 2, list[i].key_id, (size_t)-1);
        pt_db_bind_blob(stmt, 3, list[i].box, list[i].box_len);
        rc = pt_db_run(stmt);
        if (rc != 0)
            pt_store_fail(st, rc, "rewrite secret");
        pt_db_reset(stmt);
        if (rc != 0)
            goto done;
    }
    pt_db_finalize(stmt);
    stmt = NULL;
    /* Record the key in the same transaction (invariant 6). */
    rc = pt_store_run_sql(st,
                          "INSERT INTO settings(key, value) VALUES ('" SECRET_KEY_SETTING "', ?1) "
                          "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                          key_id, 0, "record the master key id");
done:
    pt_db_finalize(stmt);
    rc = pt_store_finish(st, rc);
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
issuer_read(pt_store *st, pt_db_stmt *stmt, void *elem)
{
    pt_issuer *i = elem;
    int oom = 0;

    (void)st;
    i->issuer = pt_store_colnull(stmt, 0, &oom);
    i->audience = pt_store_colnull(stmt, 1, &oom);
    i->jwks = pt_store_colnull(stmt, 2, &oom);
    i->created = pt_db_column_int64(stmt, 3);
    return oom || i->issuer == NULL || i->jwks == NULL ? PT_ENOMEM : 0;
}

static const pt_store_kind issuer_kind = {
    .size = sizeof(pt_issuer), .read = issuer_read, .clear = issuer_clear, .what = "list issuers"};

void
pt_store_issuers_free(pt_issuer *list, size_t n)
{
    pt_store_free_rows(list, n, &issuer_kind);
}

int
pt_store_issuer_put(pt_store *st, const pt_issuer *i)
{
    pt_db_stmt *stmt = NULL;
    int rc;

    if (i->issuer == NULL || i->issuer[0] == '\0' || strlen(i->issuer) > 1024 || i->jwks == NULL) {
        pt_store_seterr(st, "an issuer needs a name (at most 1024 bytes) and a JWKS document");
        return PT_EINVAL;
    }
    rc = pt_store_begin(st);
    if (rc != 0)
        return rc;
    rc = pt_store_prepare(
        st,
        "INSERT INTO issuers(issuer, audience, jwks, created) VALUES (?1, ?2, ?3, ?4) "
        "ON CONFLICT(issuer) DO UPDATE SET audience = excluded.audience, "
        "jwks = excluded.jwks, created = excluded.created",
        &stmt);
    if (rc == 0) {
        pt_db_bind_text(stmt, 1, i->issuer, (size_t)-1);
        pt_db_bind_opt_text(stmt, 2, i->audience);
        pt_db_bind_text(stmt, 3, i->jwks, (size_t)-1);
        pt_db_bind_int64(stmt, 4, i->created != 0 ? i->created : (int64_t)time(NULL));
        rc = pt_store_run_stmt(st, stmt, "trust issuer");
    }
    return pt_store_finish(st, rc);
}

int
pt_store_issuer_rm(pt_store *st, const char *issuer)
{
    return pt_store_mutate_one(st, "DELETE FROM issuers WHERE issuer = ?1", issuer, 0, "update",
                               "issuer '%.1024s' is not trusted", issuer);
}

int
pt_store_issuer_list(pt_store *st, pt_issuer **out, size_t *n)
{
    void *list = NULL;
    int rc =
        pt_store_list(st, "SELECT issuer, audience, jwks, created FROM issuers ORDER BY issuer",
                      NULL, 0, &issuer_kind, &list, n);

    *out = list;
    return rc;
}
