/* fuzz_jwt.c - libFuzzer target for the token decoder (auth/jwt.c), the first code to see an
 * attacker's bytes on a `--auth jwt` endpoint.
 *
 * Properties checked on every input, besides what ASan and UBSan catch: the decoder either
 * succeeds or names a reason; what it decodes stays inside the input and its own buffers; and
 * HS256 verification accepts only a signature that really is the HMAC of the signed part.
 * `make fuzz` runs it for FUZZ_SECONDS (also part of `make check`). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "auth/jwt.h"
#include "fuzz.h"

/* The string s, if set, must lie inside t->text and be NUL-terminated there. */
static void
check_string(const pt_jwt *t, const char *s)
{
    if (s == NULL)
        return;
    if (s < t->text || s >= t->text + t->text_used ||
        memchr(s, '\0', (size_t)(t->text + t->text_used - s)) == NULL)
        abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const unsigned char key[32] = "portico fuzz key, 32 bytes long";
    static pt_jwt t;
    static int ready;
    const char *why = NULL;
    unsigned char mac[crypto_auth_hmacsha256_BYTES];

    if (!ready) {
        if (sodium_init() < 0)
            abort();
        ready = 1;
    }
    /* The input as is, not NUL-terminated: any read past it is an ASan report. */
    if (pt_jwt_decode((const char *)data, size, &t, &why) != 0) {
        if (why == NULL)
            abort();
        return 0;
    }
    if (t.signed_len >= size || t.sig_len > sizeof t.sig || t.text_used > sizeof t.text ||
        t.naud > PT_JWT_MAX_LIST || t.nscope > PT_JWT_MAX_LIST)
        abort();
    check_string(&t, t.kid);
    check_string(&t, t.jti);
    check_string(&t, t.sub);
    check_string(&t, t.iss);
    for (size_t i = 0; i < t.naud; i++)
        check_string(&t, t.aud[i]);
    for (size_t i = 0; i < t.nscope; i++)
        check_string(&t, t.scope[i]);
    if (pt_jwt_verify_hs256(&t, (const char *)data, key) == 0) {
        crypto_auth_hmacsha256(mac, data, t.signed_len, key);
        if (t.alg != PT_JWT_HS256 || t.sig_len != sizeof mac || memcmp(mac, t.sig, sizeof mac))
            abort();
    }
    return 0;
}
