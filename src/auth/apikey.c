/* apikey.c - API key generation, shape check and keyed hash (apikey.h). */
#include "auth/apikey.h"

#include <string.h>

#include <sodium.h>

#include "auth/keys.h"
#include "core/err.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

int
pt_apikey_generate(char *out)
{
    if (pt_keys_sodium_init() != 0)
        return PT_EIO;
    memcpy(out, PT_APIKEY_PREFIX, PT_APIKEY_PREFIX_LEN);
    /* randombytes_uniform is unbiased (rejection sampling). */
    for (size_t i = PT_APIKEY_PREFIX_LEN; i < PT_APIKEY_LEN; i++)
        out[i] = alphabet[randombytes_uniform(sizeof alphabet - 1)];
    out[PT_APIKEY_LEN] = '\0';
    return 0;
}

int
pt_apikey_well_formed(const char *s, size_t n)
{
    if (n != PT_APIKEY_LEN || memcmp(s, PT_APIKEY_PREFIX, PT_APIKEY_PREFIX_LEN) != 0)
        return 0;
    for (size_t i = PT_APIKEY_PREFIX_LEN; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
            return 0;
    }
    return 1;
}

void
pt_apikey_hash(const unsigned char *hash_key, const char *s, size_t n, unsigned char *out)
{
    crypto_generichash(out, PT_APIKEY_HASH_BYTES, (const unsigned char *)s, n, hash_key,
                       PT_KEY_BYTES);
}
