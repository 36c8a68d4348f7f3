/* keys_store.c - the install's JWT and API-key keys kept in a shared store, sealed under the
 * master key, so that every node of a PostgreSQL-backed install signs and checks with the
 * same keys (keys.h, pt_keys_store_sync). */
#include "auth/keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/err.h"

/* The settings row of each key, and the associated data its box is sealed with. */
static const struct {
    enum pt_key_kind kind;
    const char *setting;
    const char *what;
} shared[] = {
    {PT_KEY_JWT, "install_key_jwt", "JWT signing key"},
    {PT_KEY_APIKEY, "install_key_apikey", "API-key hashing key"},
};

#define BOX_BYTES                                                                                  \
    (crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + PT_KEY_BYTES +                                 \
     crypto_aead_xchacha20poly1305_ietf_ABYTES)
/* "v1:" KEYID ":" base64(nonce || ciphertext || tag) */
#define SEALED_MAX (3 + PT_KEY_ID_LEN + 1 + sodium_base64_ENCODED_LEN(BOX_BYTES, 1) + 1)

/* Seals key under master into out (SEALED_MAX bytes), bound to the setting's name. */
static void
seal(const unsigned char *master, const char *setting, const unsigned char *key, char *out)
{
    unsigned char box[BOX_BYTES];
    char id[PT_KEY_ID_LEN + 1];

    randombytes_buf(box, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
    crypto_aead_xchacha20poly1305_ietf_encrypt(
        box + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, NULL, key, PT_KEY_BYTES,
        (const unsigned char *)setting, strlen(setting), NULL, box, master);
    pt_keys_id(master, id);
    snprintf(out, SEALED_MAX, "v1:%s:", id);
    sodium_bin2base64(out + strlen(out), SEALED_MAX - strlen(out), box, sizeof box,
                      sodium_base64_VARIANT_ORIGINAL);
}

/* Opens a sealed key into a new sodium_malloc'd key. PT_EINVAL when it is malformed, PT_EIO
 * when master does not open it; *sealed_by gets the fingerprint it names. */
static int
unseal(const unsigned char *master, const char *setting, const char *text, unsigned char **key,
       char *sealed_by)
{
    unsigned char box[BOX_BYTES];
    unsigned char *k;
    size_t got = 0;
    const char *end = NULL;

    *key = NULL;
    sealed_by[0] = '\0';
    if (strncmp(text, "v1:", 3) != 0 || strlen(text) < 3 + PT_KEY_ID_LEN + 1 ||
        text[3 + PT_KEY_ID_LEN] != ':')
        return PT_EINVAL;
    memcpy(sealed_by, text + 3, PT_KEY_ID_LEN);
    sealed_by[PT_KEY_ID_LEN] = '\0';
    text += 3 + PT_KEY_ID_LEN + 1;
    if (sodium_base642bin(box, sizeof box, text, strlen(text), NULL, &got, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        got != sizeof box)
        return PT_EINVAL;
    k = sodium_malloc(PT_KEY_BYTES);
    if (k == NULL)
        return PT_ENOMEM;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(
            k, NULL, NULL, box + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
            sizeof box - crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
            (const unsigned char *)setting, strlen(setting), box, master) != 0) {
        sodium_free(k);
        return PT_EIO;
    }
    sodium_mprotect_readonly(k);
    *key = k;
    return 0;
}

int
pt_keys_store_installed(pt_store *st)
{
    char *v = NULL;
    int rc = pt_store_setting_get(st, shared[0].setting, &v);

    free(v);
    return rc == 0 ? 1 : rc == PT_ENOTFOUND ? 0 : rc;
}

/* Makes one key the same in the store and in the data dir. */
static int
sync_one(const char *datadir, pt_store *st, const unsigned char *master, int i, int replace_local,
         char *err, size_t errsz)
{
    char path[4096], *text = NULL, sealed[SEALED_MAX], by[PT_KEY_ID_LEN + 1],
                     mine[PT_KEY_ID_LEN + 1];
    unsigned char *key = NULL, *local = NULL;
    int rc;

    if (pt_keys_path(datadir, shared[i].kind, path, sizeof path) != 0) {
        snprintf(err, errsz, "data dir path too long");
        return PT_EINVAL;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        rc = pt_store_setting_get(st, shared[i].setting, &text);
        if (rc != PT_ENOTFOUND)
            break;
        /* The first node: its key goes into the store (another node may win the race). */
        rc = pt_keys_load_file(path, &local, err, errsz);
        if (rc != 0)
            return rc;
        seal(master, shared[i].setting, local, sealed);
        pt_keys_free(local);
        local = NULL;
        rc = pt_store_setting_add(st, shared[i].setting, sealed);
        sodium_memzero(sealed, sizeof sealed);
        if (rc == 0)
            return 0;
        if (rc != PT_EEXIST) {
            snprintf(err, errsz, "%s", pt_store_errmsg(st));
            return rc;
        }
    }
    if (rc != 0) {
        snprintf(err, errsz, "%s", pt_store_errmsg(st));
        return rc;
    }
    rc = unseal(master, shared[i].setting, text, &key, by);
    free(text);
    if (rc == PT_EIO) {
        pt_keys_id(master, mine);
        snprintf(err, errsz,
                 "the master key (id %s) does not open this install's keys (sealed under master "
                 "key id %s): give this node the install's master key (PORTICO_MASTER_KEY or a "
                 "copy of its keys/master.key)",
                 mine, by);
        return PT_EINVAL;
    }
    if (rc != 0) {
        snprintf(err, errsz, "the store's %s is malformed", shared[i].what);
        return rc;
    }
    rc = pt_keys_load_file(path, &local, err, errsz);
    if (rc == 0 && sodium_memcmp(local, key, PT_KEY_BYTES) == 0)
        goto done; /* already the install's */
    if (rc == 0 && !replace_local) {
        snprintf(err, errsz,
                 "%s is not this install's %s (the store holds another): remove it and run "
                 "`portico init --store` again to take the install's",
                 path, shared[i].what);
        rc = PT_EEXIST;
        goto done;
    }
    if (rc != 0 && rc != PT_ENOTFOUND)
        goto done;
    rc = pt_keys_write(path, key, 1, err, errsz);
done:
    pt_keys_free(local);
    pt_keys_free(key);
    return rc;
}

int
pt_keys_store_sync(const char *datadir, pt_store *st, int replace_local, char *err, size_t errsz)
{
    unsigned char *master = NULL;
    int rc;

    if (pt_keys_sodium_init() != 0) {
        snprintf(err, errsz, "cannot initialise libsodium");
        return PT_EIO;
    }
    rc = pt_keys_load(datadir, PT_KEY_MASTER, &master, err, errsz);
    for (size_t i = 0; rc == 0 && i < sizeof shared / sizeof shared[0]; i++)
        rc = sync_one(datadir, st, master, (int)i, replace_local, err, errsz);
    pt_keys_free(master);
    return rc;
}

int
pt_keys_store_reseal(pt_store *st, const unsigned char *const *from, size_t nfrom,
                     const unsigned char *to, char *err, size_t errsz)
{
    char sealed[SEALED_MAX], by[PT_KEY_ID_LEN + 1];
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < sizeof shared / sizeof shared[0]; i++) {
        unsigned char *key = NULL;
        char *text = NULL;

        rc = pt_store_setting_get(st, shared[i].setting, &text);
        if (rc == PT_ENOTFOUND) {
            rc = 0; /* an embedded store keeps no copy */
            continue;
        }
        if (rc != 0) {
            snprintf(err, errsz, "%s", pt_store_errmsg(st));
            break;
        }
        /* Under the old key, or under the new one when an interrupted rotation runs again. */
        rc = PT_EIO;
        for (size_t k = 0; rc == PT_EIO && k <= nfrom; k++) {
            const unsigned char *m = k < nfrom ? from[k] : to;
            if (m != NULL)
                rc = unseal(m, shared[i].setting, text, &key, by);
        }
        free(text);
        if (rc == PT_EIO)
            snprintf(err, errsz,
                     "the store's %s is sealed under master key %s, which is not loaded: "
                     "nothing was changed",
                     shared[i].what, by);
        else if (rc != 0)
            snprintf(err, errsz, "the store's %s is malformed", shared[i].what);
        if (rc != 0)
            break;
        seal(to, shared[i].setting, key, sealed);
        pt_keys_free(key);
        rc = pt_store_setting_set(st, shared[i].setting, sealed);
        sodium_memzero(sealed, sizeof sealed);
        if (rc != 0)
            snprintf(err, errsz, "%s", pt_store_errmsg(st));
    }
    return rc;
}
