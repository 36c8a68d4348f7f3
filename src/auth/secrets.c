/* secrets.c - the encrypted secret store (secrets.h): sealing, opening and master key
 * rotation. Plain values only ever live in sodium_malloc'd memory here. */
#include "auth/secrets.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <sodium.h>

#include "core/err.h"

#define NONCE_BYTES crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_BYTES crypto_aead_xchacha20poly1305_ietf_ABYTES
#define AD_PREFIX "portico secret v1"
#define SET_ATTEMPTS 3 /* pt_secrets_set: seal again this often when rotations win the race */

struct pt_secrets {
    char *datadir;
    int from_env;       /* the master key came from $PORTICO_MASTER_KEY */
    unsigned char *key; /* the master key; sodium_malloc'd */
    char kid[PT_KEY_ID_LEN + 1];
    /* The key being rotated to, or NULL: master.key.new of an interrupted rotation, or
     * $PORTICO_NEW_MASTER_KEY. Opens rows sealed under it, and seals once the store records
     * it as current. */
    unsigned char *pending;
    char pending_kid[PT_KEY_ID_LEN + 1];
};

static int
pending_path(const char *datadir, char *out, size_t outsz)
{
    char path[4096];

    if (pt_keys_path(datadir, PT_KEY_MASTER, path, sizeof path) != 0)
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
    rc = pt_keys_load(datadir, PT_KEY_MASTER, &s->key, err, errsz);
    if (rc == PT_ENOTFOUND)
        snprintf(err, errsz,
                 "the secret store has no master key: %s/keys/master.key is missing and "
                 "PORTICO_MASTER_KEY is not set (run 'portico init')",
                 datadir);
    if (rc != 0)
        goto fail;
    pt_keys_id(s->key, s->kid);
    if (s->from_env) {
        const char *next = getenv("PORTICO_NEW_MASTER_KEY");
        if (next != NULL && next[0] != '\0') {
            s->pending = sodium_malloc(PT_KEY_BYTES);
            if (s->pending == NULL) {
                snprintf(err, errsz, "out of memory");
                rc = PT_ENOMEM;
                goto fail;
            }
            if (pt_keys_parse(next, strlen(next), s->pending) != 0) {
                snprintf(err, errsz,
                         "PORTICO_NEW_MASTER_KEY is malformed (expected 64 hex digits or 44 "
                         "characters of base64)");
                rc = PT_EINVAL;
                goto fail;
            }
            sodium_mprotect_readonly(s->pending);
            pt_keys_id(s->pending, s->pending_kid);
        }
    } else {
        rc = pending_path(datadir, path, sizeof path);
        if (rc == 0)
            rc = pt_keys_load_file(path, &s->pending, err, errsz);
        if (rc == PT_ENOTFOUND)
            rc = 0;
        if (rc != 0)
            goto fail;
        if (s->pending != NULL)
            pt_keys_id(s->pending, s->pending_kid);
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
    pt_keys_free(s->key);
    pt_keys_free(s->pending);
    free(s->datadir);
    free(s);
}

const char *
pt_secrets_key_id(const pt_secrets *s)
{
    return s->kid;
}

/* Loads the keys of s->datadir again (another process may have rotated them). On failure s
 * keeps its keys. */
static int
reload(pt_secrets *s, char *err, size_t errsz)
{
    pt_secrets *fresh = NULL, old;
    int rc = pt_secrets_open(s->datadir, &fresh, err, errsz);

    if (rc != 0)
        return rc;
    old = *s;
    *s = *fresh;
    /* fresh now owns what s held, and frees it. */
    fresh->datadir = old.datadir;
    fresh->key = old.key;
    fresh->pending = old.pending;
    pt_secrets_close(fresh);
    return 0;
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

/* The key a new secret is sealed with (invariant 2): the one the store records as current, or
 * the master key while none is recorded. PT_EUNAVAIL (err set) when the recorded one is not
 * loaded. */
static int
sealing_key(const pt_secrets *s, pt_store *st, const unsigned char **key, const char **kid,
            char *err, size_t errsz)
{
    char current[PT_KEY_ID_LEN + 8];
    int rc = pt_store_secret_key_id(st, current, sizeof current);

    if (rc == PT_ENOTFOUND) {
        *key = s->key;
        *kid = s->kid;
        return 0;
    }
    if (rc != 0) {
        snprintf(err, errsz, "%s", pt_store_errmsg(st));
        return rc;
    }
    if (strcmp(current, s->kid) == 0) {
        *key = s->key;
        *kid = s->kid;
        return 0;
    }
    if (s->pending != NULL && strcmp(current, s->pending_kid) == 0) {
        *key = s->pending; /* a rotation committed and has not renamed its file yet */
        *kid = s->pending_kid;
        return 0;
    }
    snprintf(err, errsz,
             "the secrets are encrypted under master key %s since the last 'secret "
             "rotate-master', but the master key in use is %s (%s; if that key is lost, remove "
             "the secrets with 'portico secret rm' and run 'portico secret rotate-master')",
             current, s->kid,
             s->from_env ? "set PORTICO_MASTER_KEY to the key that rotation was given in "
                           "PORTICO_NEW_MASTER_KEY"
                         : "is keys/master.key the right one?");
    return PT_EUNAVAIL;
}

/* pt_secrets_set (create 0) and pt_secrets_create (create 1). */
static int
secrets_store(pt_secrets *s, pt_store *st, const char *name, const char *value, size_t len,
              int create, char *err, size_t errsz)
{
    pt_secret row = {0};
    int rc = 0, raced = 0;

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
    for (int attempt = 0; attempt < SET_ATTEMPTS; attempt++) {
        const unsigned char *key = NULL;
        const char *kid = NULL;
        /* A rotation may have committed since the keys were loaded: load them again. */
        if (attempt > 0) {
            rc = reload(s, err, errsz);
            if (rc != 0)
                return rc;
        }
        raced = 0;
        rc = sealing_key(s, st, &key, &kid, err, errsz);
        if (rc == PT_EUNAVAIL)
            continue;
        if (rc != 0)
            return rc;
        row.key_id = (char *)kid;
        rc = seal(key, name, value, len, &row.box, &row.box_len);
        if (rc != 0) {
            snprintf(err, errsz, "out of memory");
            return rc;
        }
        /* Refused (PT_EUNAVAIL) when a rotation recorded another key after sealing_key. */
        rc = create ? pt_store_secret_create(st, &row) : pt_store_secret_put(st, &row);
        free(row.box);
        row.box = NULL;
        if (rc == 0)
            return 0;
        snprintf(err, errsz, "%s", pt_store_errmsg(st));
        if (rc != PT_EUNAVAIL)
            return rc;
        raced = 1;
    }
    if (raced)
        snprintf(err, errsz,
                 "the master key was rotated while secret '%s' was being stored; nothing was "
                 "stored, run the command again",
                 name);
    return rc;
}

int
pt_secrets_set(pt_secrets *s, pt_store *st, const char *name, const char *value, size_t len,
               char *err, size_t errsz)
{
    return secrets_store(s, st, name, value, len, 0, err, errsz);
}

int
pt_secrets_create(pt_secrets *s, pt_store *st, const char *name, const char *value, size_t len,
                  char *err, size_t errsz)
{
    return secrets_store(s, st, name, value, len, 1, err, errsz);
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
    int failed; /* reseal itself failed: the transaction was rolled back before COMMIT */
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
    if (rc != 0) {
        c->failed = 1;
        return rc;
    }
    rc = seal(c->to, row->name, value, len, &box, &box_len);
    pt_secrets_value_free(value);
    kid = strdup(c->to_kid);
    if (rc != 0 || kid == NULL) {
        free(box);
        free(kid);
        snprintf(c->err, c->errsz, "out of memory");
        c->failed = 1;
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

/* Re-encrypts every secret under `to` (kid to_kid), records to_kid as the current key and
 * seals the store's copies of the install keys under `to` (pt_keys_store_reseal), in one
 * transaction. *rolled_back (may be NULL) is set when the failure certainly left the store
 * as it was; a failed COMMIT is not such a failure (it may have reached the disk). */
static int
reseal_all(pt_secrets *s, pt_store *st, const unsigned char *to, const char *to_kid, size_t *count,
           int *rolled_back, char *err, size_t errsz)
{
    reseal_ctx c = {s, to, to_kid, 0, 0, err, errsz};
    const unsigned char *from[2] = {s->key, s->pending};
    int rc;

    err[0] = '\0';
    /* The store's copies of the install keys (a PostgreSQL store) in the same transaction: a
     * node joining with the new master key opens them, one with the old key is refused. */
    rc = pt_store_tx_begin(st);
    if (rc == 0) {
        rc = pt_store_secret_rewrite(st, to_kid, reseal, &c);
        if (rc == 0) {
            rc = pt_keys_store_reseal(st, from, 2, to, err, errsz);
            c.failed = rc != 0;
        }
        rc = pt_store_tx_finish(st, rc);
    }
    if (rc != 0 && err[0] == '\0')
        snprintf(err, errsz, "%s", pt_store_errmsg(st));
    if (count != NULL)
        *count = c.count;
    if (rolled_back != NULL)
        *rolled_back = c.failed;
    return rc;
}

/* Renames master.key.new over master.key. */
static int
promote_pending(pt_secrets *s, char *err, size_t errsz)
{
    char from[4200], to[4096];

    if (pending_path(s->datadir, from, sizeof from) != 0 ||
        pt_keys_path(s->datadir, PT_KEY_MASTER, to, sizeof to) != 0) {
        snprintf(err, errsz, "data dir path too long");
        return PT_EINVAL;
    }
    if (rename(from, to) != 0) {
        snprintf(err, errsz, "cannot rename %s to %s: %s", from, to, strerror(errno));
        return PT_EIO;
    }
    pt_keys_free(s->key);
    s->key = s->pending;
    memcpy(s->kid, s->pending_kid, sizeof s->kid);
    s->pending = NULL;
    s->pending_kid[0] = '\0';
    return 0;
}

/* Takes the rotation lock (invariant 3), waiting while another rotation holds it. Returns the
 * descriptor to close to release it, or PT_ETOOBIG (path too long) or PT_EIO with the reason in
 * err. */
static int
lock_rotation(const pt_secrets *s, char *err, size_t errsz)
{
    char key[4096], path[4200];
    int fd;

    if (pt_keys_path(s->datadir, PT_KEY_MASTER, key, sizeof key) != 0 ||
        snprintf(path, sizeof path, "%s.lock", key) >= (int)sizeof path) {
        snprintf(err, errsz, "data dir path too long");
        return PT_ETOOBIG;
    }
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errsz, "cannot open %s: %s", path, strerror(errno));
        return PT_EIO;
    }
    while (flock(fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            snprintf(err, errsz, "cannot lock %s: %s", path, strerror(errno));
            close(fd);
            return PT_EIO;
        }
    }
    return fd;
}

/* Rotation with $PORTICO_MASTER_KEY: to $PORTICO_NEW_MASTER_KEY, which the operator holds. */
static int
rotate_env(pt_secrets *s, pt_store *st, size_t *count, char *err, size_t errsz)
{
    int rc;

    if (s->pending == NULL) {
        snprintf(err, errsz,
                 "PORTICO_MASTER_KEY is in use, so the new master key must come from you: "
                 "generate one (e.g. 'openssl rand -hex 32'), store it where you keep "
                 "PORTICO_MASTER_KEY, and run this again with PORTICO_NEW_MASTER_KEY set to it "
                 "(nothing was changed)");
        return PT_EINVAL;
    }
    if (strcmp(s->pending_kid, s->kid) == 0) {
        snprintf(err, errsz, "PORTICO_NEW_MASTER_KEY is the current master key");
        return PT_EINVAL;
    }
    rc = reseal_all(s, st, s->pending, s->pending_kid, count, NULL, err, errsz);
    if (rc != 0)
        return rc;
    pt_keys_free(s->key);
    s->key = s->pending;
    memcpy(s->kid, s->pending_kid, sizeof s->kid);
    s->pending = NULL;
    s->pending_kid[0] = '\0';
    return 0;
}

/* Rotation with keys/master.key: steps 1 to 3 of the top of secrets.h. */
static int
rotate_file(pt_secrets *s, pt_store *st, size_t *count, char *err, size_t errsz)
{
    char path[4200], kid[PT_KEY_ID_LEN + 1];
    unsigned char *next = NULL;
    int rc, rolled_back = 0;

    /* An interrupted rotation first: everything under its key, then that key becomes the
     * master key. */
    if (s->pending != NULL) {
        rc = reseal_all(s, st, s->pending, s->pending_kid, NULL, NULL, err, errsz);
        if (rc == 0)
            rc = promote_pending(s, err, errsz);
        if (rc != 0)
            return rc;
    }
    if (pending_path(s->datadir, path, sizeof path) != 0) {
        snprintf(err, errsz, "data dir path too long");
        return PT_EINVAL;
    }
    next = pt_keys_new();
    if (next == NULL) {
        snprintf(err, errsz, "out of memory");
        return PT_ENOMEM;
    }
    pt_keys_id(next, kid);
    /* Step 1: the new key is durable before any secret depends on it (invariant 1). */
    rc = pt_keys_write(path, next, 0, err, errsz);
    if (rc != 0)
        goto done;
    /* Step 2: one transaction. */
    rc = reseal_all(s, st, next, kid, count, &rolled_back, err, errsz);
    if (rc != 0) {
        /* Only a key no secret can depend on is removed; otherwise the next rotation (or
         * pt_secrets_open) uses the file like that of an interrupted rotation. */
        if (rolled_back)
            unlink(path);
        goto done;
    }
    /* Step 3. */
    s->pending = next;
    memcpy(s->pending_kid, kid, sizeof kid);
    next = NULL;
    rc = promote_pending(s, err, errsz);
done:
    pt_keys_free(next);
    return rc;
}

int
pt_secrets_rotate(pt_secrets *s, pt_store *st, size_t *count, char *err, size_t errsz)
{
    int lock, rc;

    if (count != NULL)
        *count = 0;
    lock = lock_rotation(s, err, errsz);
    if (lock < 0)
        return lock;
    /* Another rotation may have run since s was loaded, or while this one waited. */
    rc = reload(s, err, errsz);
    if (rc == 0)
        rc = s->from_env ? rotate_env(s, st, count, err, errsz)
                         : rotate_file(s, st, count, err, errsz);
    close(lock);
    return rc;
}
