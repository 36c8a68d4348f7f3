/* secrets.c - the encrypted secret store (secrets.h): sealing, opening and master key
 * rotation. Plain values only ever live in sodium_malloc'd memory here. */
#include "auth/secrets.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "core/err.h"

#define NONCE_BYTES crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_BYTES crypto_aead_xchacha20poly1305_ietf_ABYTES
#define AD_PREFIX "portico secret v1"

struct pt_secrets {
    char *datadir;
    int from_env;       /* the master key came from $PORTICO_MASTER_KEY */
    unsigned char *key; /* seals new secrets; sodium_malloc'd */
    char kid[PT_KEY_ID_LEN + 1];
    unsigned char *pending; /* master.key.new of an interrupted rotation, or NULL */
    char pending_kid[PT_KEY_ID_LEN + 1];
};

static int
pending_path(const char *datadir, char *out, size_t outsz)
{
    char path[4096];

    if (pt_key_path(datadir, PT_KEY_MASTER, path, sizeof path) != 0)
        return PT_EINVAL;
    return snprintf(out, outsz, "%s.new", path) >= (int)outsz ? PT_EINVAL : 0;
}

int
pt_secrets_open(const char *datadir, pt_secrets **out, char *err, size_t errsz)
{
    const char *env = getenv("PORTICO_MASTER_KEY");
    char path[4200];
    pt_secrets *s = NULL;
    int rc;

    *out = NULL;
    s = calloc(1, sizeof *s);
    if (s == NULL || (s->datadir = strdup(datadir)) == NULL) {
        snprintf(err, errsz, "out of memory");
        rc = PT_ENOMEM;
        goto fail;
    }
    s->from_env = env != NULL && env[0] != '\0';
    rc = pt_key_load(datadir, PT_KEY_MASTER, &s->key, err, errsz);
    if (rc == PT_ENOTFOUND)
        snprintf(err, errsz,
                 "the secret store has no master key: %s/keys/master.key is missing and "
                 "PORTICO_MASTER_KEY is not set (run 'portico init')",
                 datadir);
    if (rc != 0)
        goto fail;
    pt_key_id(s->key, s->kid);
    if (!s->from_env) {
        rc = pending_path(datadir, path, sizeof path);
        if (rc == 0)
            rc = pt_key_load_file(path, &s->pending, err, errsz);
        if (rc == PT_ENOTFOUND)
            rc = 0;
        if (rc != 0)
            goto fail;
        if (s->pending != NULL)
            pt_key_id(s->pending, s->pending_kid);
    }
    *out = s;
    return 0;
fail:
    pt_secrets_close(s);
    return rc;
}

void
pt_secrets_close(pt_secrets *s)
{
    if (s == NULL)
        return;
    pt_key_free(s->key);
    pt_key_free(s->pending);
    free(s->datadir);
    free(s);
}

const char *
pt_secrets_key_id(const pt_secrets *s)
{
    return s->kid;
}

/* The associated data of a secret: a version tag and its name. Returns the length. */
static size_t
make_ad(const char *name, unsigned char *ad, size_t cap)
{
    size_t p = sizeof AD_PREFIX, n = strlen(name);

    if (p + n > cap)
        n = cap - p;          /* names are at most 128 bytes; cap is larger */
    memcpy(ad, AD_PREFIX, p); /* with its NUL, which separates it from the name */
    memcpy(ad + p, name, n);
    return p + n;
}

/* Seals value under key into a new malloc'd box. Returns 0 or PT_ENOMEM. */
static int
seal(const unsigned char *key, const char *name, const char *value, size_t len, unsigned char **box,
     size_t *box_len)
{
    unsigned char ad[sizeof AD_PREFIX + 256];
    size_t adlen = make_ad(name, ad, sizeof ad);
    unsigned long long clen = 0;
    unsigned char *b = malloc(NONCE_BYTES + len + TAG_BYTES);

    if (b == NULL)
        return PT_ENOMEM;
    randombytes_buf(b, NONCE_BYTES);
    crypto_aead_xchacha20poly1305_ietf_encrypt(b + NONCE_BYTES, &clen, (const unsigned char *)value,
                                               len, ad, adlen, NULL, b, key);
    *box = b;
    *box_len = NONCE_BYTES + (size_t)clen;
    return 0;
}

/* Opens a box into new sodium_malloc'd memory. Returns 0, PT_EINVAL (does not authenticate)
 * or PT_ENOMEM. */
static int
unseal(const unsigned char *key, const char *name, const unsigned char *box, size_t box_len,
       char **value, size_t *len)
{
    unsigned char ad[sizeof AD_PREFIX + 256];
    size_t adlen = make_ad(name, ad, sizeof ad);
    unsigned long long mlen = 0;
    char *v;

    if (box_len < NONCE_BYTES + TAG_BYTES)
        return PT_EINVAL;
    v = sodium_malloc(box_len - NONCE_BYTES - TAG_BYTES + 1);
    if (v == NULL)
        return PT_ENOMEM;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt((unsigned char *)v, &mlen, NULL,
                                                   box + NONCE_BYTES, box_len - NONCE_BYTES, ad,
                                                   adlen, box, key) != 0) {
        sodium_free(v);
        return PT_EINVAL;
    }
    v[mlen] = '\0';
    *value = v;
    *len = (size_t)mlen;
    return 0;
}

/* The loaded key a row was sealed with, or NULL. */
static const unsigned char *
key_for(const pt_secrets *s, const char *kid)
{
    if (strcmp(kid, s->kid) == 0)
        return s->key;
    if (s->pending != NULL && strcmp(kid, s->pending_kid) == 0)
        return s->pending;
    return NULL;
}

/* Opens one stored row. */
static int
open_row(const pt_secrets *s, const pt_secret *row, char **value, size_t *len, char *err,
         size_t errsz)
{
    const unsigned char *key = key_for(s, row->key_id);
    int rc;

    if (key == NULL) {
        snprintf(err, errsz,
                 "secret '%s' is encrypted under master key %s, but the master key in use is "
                 "%s (is PORTICO_MASTER_KEY or keys/master.key the right one?)",
                 row->name, row->key_id, s->kid);
        return PT_EINVAL;
    }
    rc = unseal(key, row->name, row->box, row->box_len, value, len);
    if (rc == PT_EINVAL)
        snprintf(err, errsz, "secret '%s' does not decrypt: its record is damaged", row->name);
    else if (rc != 0)
        snprintf(err, errsz, "out of memory");
    return rc;
}

int
pt_secrets_set(pt_secrets *s, pt_store *st, const char *name, const char *value, size_t len,
               char *err, size_t errsz)
{
    pt_secret row = {0};
    int rc;

    if (len > PT_SECRET_MAX) {
        snprintf(err, errsz, "secret value too long (%zu bytes, at most %d)", len, PT_SECRET_MAX);
        return PT_ETOOBIG;
    }
    if (!pt_store_secret_name_valid(name)) {
        snprintf(err, errsz,
                 "invalid secret name (1 to 128 bytes of UTF-8, no control "
                 "characters)");
        return PT_EINVAL;
    }
    row.name = (char *)name;
    row.key_id = s->kid;
    rc = seal(s->key, name, value, len, &row.box, &row.box_len);
    if (rc != 0) {
        snprintf(err, errsz, "out of memory");
        return rc;
    }
    rc = pt_store_secret_put(st, &row);
    if (rc != 0)
        snprintf(err, errsz, "%s", pt_store_errmsg(st));
    free(row.box);
    return rc;
}

int
pt_secrets_get(pt_secrets *s, pt_store *st, const char *name, char **value, size_t *len, char *err,
               size_t errsz)
{
    pt_secret row;
    int rc;

    *value = NULL;
    *len = 0;
    rc = pt_store_secret_get(st, name, &row);
    if (rc != 0) {
        snprintf(err, errsz, "%s", pt_store_errmsg(st));
        return rc;
    }
    rc = open_row(s, &row, value, len, err, errsz);
    pt_secret_clear(&row);
    return rc;
}

void
pt_secrets_value_free(char *value)
{
    if (value != NULL)
        sodium_free(value);
}

typedef struct reseal_ctx {
    const pt_secrets *s;
    const unsigned char *to; /* the key to seal under */
    const char *to_kid;
    size_t count;
    char *err;
    size_t errsz;
} reseal_ctx;

/* pt_store_secret_rewrite callback: opens a row with whichever loaded key sealed it and
 * seals it again under ctx->to. */
static int
reseal(void *p, pt_secret *row)
{
    reseal_ctx *c = p;
    unsigned char *box = NULL;
    size_t box_len = 0, len = 0;
    char *value = NULL, *kid;
    int rc;

    rc = open_row(c->s, row, &value, &len, c->err, c->errsz);
    if (rc != 0)
        return rc;
    rc = seal(c->to, row->name, value, len, &box, &box_len);
    pt_secrets_value_free(value);
    kid = strdup(c->to_kid);
    if (rc != 0 || kid == NULL) {
        free(box);
        free(kid);
        snprintf(c->err, c->errsz, "out of memory");
        return PT_ENOMEM;
    }
    free(row->box);
    free(row->key_id);
    row->box = box;
    row->box_len = box_len;
    row->key_id = kid;
    c->count++;
    return 0;
}

/* Re-encrypts every secret under `to` (kid to_kid). */
static int
reseal_all(pt_secrets *s, pt_store *st, const unsigned char *to, const char *to_kid, size_t *count,
           char *err, size_t errsz)
{
    reseal_ctx c = {s, to, to_kid, 0, err, errsz};
    int rc;

    err[0] = '\0';
    rc = pt_store_secret_rewrite(st, reseal, &c);
    if (rc != 0 && err[0] == '\0')
        snprintf(err, errsz, "%s", pt_store_errmsg(st));
    if (count != NULL)
        *count = c.count;
    return rc;
}

/* Renames master.key.new over master.key. */
static int
promote_pending(pt_secrets *s, char *err, size_t errsz)
{
    char from[4200], to[4096];

    if (pending_path(s->datadir, from, sizeof from) != 0 ||
        pt_key_path(s->datadir, PT_KEY_MASTER, to, sizeof to) != 0) {
        snprintf(err, errsz, "data dir path too long");
        return PT_EINVAL;
    }
    if (rename(from, to) != 0) {
        snprintf(err, errsz, "cannot rename %s to %s: %s", from, to, strerror(errno));
        return PT_EIO;
    }
    pt_key_free(s->key);
    s->key = s->pending;
    memcpy(s->kid, s->pending_kid, sizeof s->kid);
    s->pending = NULL;
    s->pending_kid[0] = '\0';
    return 0;
}

int
pt_secrets_rotate(pt_secrets *s, pt_store *st, char *new_key_out, size_t *count, char *err,
                  size_t errsz)
{
    char path[4200], kid[PT_KEY_ID_LEN + 1];
    unsigned char *next = NULL;
    int rc;

    new_key_out[0] = '\0';
    if (count != NULL)
        *count = 0;
    /* An interrupted rotation first: everything under its key, then that key becomes the
     * master key. */
    if (s->pending != NULL) {
        rc = reseal_all(s, st, s->pending, s->pending_kid, NULL, err, errsz);
        if (rc == 0)
            rc = promote_pending(s, err, errsz);
        if (rc != 0)
            return rc;
    }
    if (s->from_env) {
        const char *given = getenv("PORTICO_NEW_MASTER_KEY");
        if (given != NULL && given[0] != '\0') {
            next = sodium_malloc(PT_KEY_BYTES);
            if (next == NULL) {
                snprintf(err, errsz, "out of memory");
                return PT_ENOMEM;
            }
            if (pt_key_parse(given, strlen(given), next) != 0) {
                sodium_free(next);
                snprintf(err, errsz,
                         "PORTICO_NEW_MASTER_KEY is malformed (expected 64 hex "
                         "digits or 44 characters of base64)");
                return PT_EINVAL;
            }
        } else if ((next = pt_key_new()) == NULL) {
            snprintf(err, errsz, "out of memory");
            return PT_ENOMEM;
        }
    } else {
        next = pt_key_new();
        if (next == NULL) {
            snprintf(err, errsz, "out of memory");
            return PT_ENOMEM;
        }
        /* Step 1: the new key is durable before any secret depends on it. */
        if (pending_path(s->datadir, path, sizeof path) != 0) {
            snprintf(err, errsz, "data dir path too long");
            rc = PT_EINVAL;
            goto done;
        }
        rc = pt_key_write(path, next, 0, err, errsz);
        if (rc != 0)
            goto done;
    }
    pt_key_id(next, kid);
    if (strcmp(kid, s->kid) == 0) {
        snprintf(err, errsz, "the new master key is the current one");
        rc = PT_EINVAL;
        goto done;
    }
    /* Step 2: one transaction; a failure leaves every secret under the old key. */
    rc = reseal_all(s, st, next, kid, count, err, errsz);
    if (rc != 0) {
        if (!s->from_env)
            unlink(path);
        goto done;
    }
    if (s->from_env) {
        if (getenv("PORTICO_NEW_MASTER_KEY") == NULL || getenv("PORTICO_NEW_MASTER_KEY")[0] == '\0')
            sodium_bin2hex(new_key_out, 2 * PT_KEY_BYTES + 1, next, PT_KEY_BYTES);
        pt_key_free(s->key);
        s->key = next;
        memcpy(s->kid, kid, sizeof kid);
        next = NULL;
    } else {
        /* Step 3. */
        s->pending = next;
        memcpy(s->pending_kid, kid, sizeof kid);
        next = NULL;
        rc = promote_pending(s, err, errsz);
    }
done:
    if (next != NULL)
        sodium_free(next);
    return rc;
}
