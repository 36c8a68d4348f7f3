/* users.c - password hashing (Argon2id through libsodium), random session and token values,
 * their stored digests, and the failed-login lock-out schedule. */
#include "auth/users.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include <sodium.h>

#include "core/err.h"

int
pt_users_hash_password(const char *password, size_t len, char *out)
{
    if (sodium_init() < 0)
        return PT_ENOMEM;
    if (crypto_pwhash_str(out, password, len, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
        return PT_ENOMEM; /* libsodium fails here only when it cannot get the memory */
    return 0;
}

int
pt_users_verify_password(const char *hash, const char *password, size_t len)
{
    /* Hashed once per process, so that an unknown user costs a verification too. */
    static char dummy[crypto_pwhash_STRBYTES];
    static int have_dummy;
    if (sodium_init() < 0)
        return 0;
    if (hash == NULL || hash[0] == '\0') {
        if (!have_dummy &&
            crypto_pwhash_str(dummy, "portico", 7, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                              crypto_pwhash_MEMLIMIT_INTERACTIVE) == 0)
            have_dummy = 1;
        if (have_dummy && crypto_pwhash_str_verify(dummy, password, len) == 0)
            return 0; /* the work is what matters here, never the answer */
        return 0;
    }
    return crypto_pwhash_str_verify(hash, password, len) == 0;
}

int
pt_users_random(char *out)
{
    unsigned char raw[32];
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw)
        return PT_EIO;
    sodium_bin2base64(out, PT_USERS_RANDOM_LEN, raw, sizeof raw,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
    return 0;
}

void
pt_users_digest(const char *s, size_t n, char *out)
{
    unsigned char d[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(d, (const unsigned char *)s, n);
    sodium_bin2hex(out, PT_USERS_DIGEST_LEN, d, sizeof d);
}

int
pt_users_token_new(char *token, char *id)
{
    unsigned char raw[4];
    char hex[9], secret[PT_USERS_RANDOM_LEN];
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw || pt_users_random(secret) != 0)
        return PT_EIO;
    sodium_bin2hex(hex, sizeof hex, raw, sizeof raw);
    snprintf(id, 12, "at_%s", hex);
    snprintf(token, PT_USERS_TOKEN_LEN + 1, "pat_%s_%s", hex, secret);
    sodium_memzero(secret, sizeof secret);
    return 0;
}

int
pt_users_token_well_formed(const char *s, size_t n)
{
    if (n != PT_USERS_TOKEN_LEN || memcmp(s, "pat_", 4) != 0 || s[12] != '_')
        return 0;
    for (size_t i = 4; i < 12; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    for (size_t i = 13; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

/* 0 below `from` failures, then 60 s doubling per failure, at most an hour. */
static int64_t
lockout(int failures, int from)
{
    if (failures < from)
        return 0;
    int64_t secs = 60;
    for (int i = from; i < failures && secs < 3600; i++)
        secs *= 2;
    return secs < 3600 ? secs : 3600;
}

int64_t
pt_users_lockout_user(int failures)
{
    return lockout(failures, 5);
}

int64_t
pt_users_lockout_addr(int failures)
{
    return lockout(failures, 20);
}

int
pt_users_equal(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    if (na != nb)
        return 0;
    return sodium_memcmp(a, b, na) == 0;
}
