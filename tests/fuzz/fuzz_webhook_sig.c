/* fuzz_webhook_sig.c - libFuzzer target for the webhook signature headers (auth/webhook_sig.c):
 * GitHub's X-Hub-Signature-256, Stripe-Signature with its timestamp, and the generic HMAC.
 *
 * Input: a scheme byte, eight bytes of `now` (any int64, the clock extremes included), the
 * header up to '\n', the body after it. Properties besides ASan and UBSan: every refusal names a
 * reason; an accepted header is refused under another secret (acceptance is bound to the
 * secret); and a header this target signs itself for the body is always accepted. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "auth/webhook_sig.h"
#include "core/err.h"
#include "fuzz.h"

static const unsigned char secret[] = "whsec_portico_fuzz";
static const unsigned char other[] = "whsec_portico_fuzY";

static int
check(enum pt_hooksig_scheme scheme, const unsigned char *key, size_t keylen, const char *h,
      size_t hn, const char *body, size_t blen, int64_t now)
{
    char why[128] = "";
    int rc = pt_hooksig_verify(scheme, key, keylen, h, hn, body, blen, now, why, sizeof why);
    if (rc != 0 && (rc != PT_EINVAL || why[0] == '\0'))
        abort();
    return rc;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    pt_fuzz_in in = {data, size};
    unsigned mode = pt_fuzz_byte(&in);
    enum pt_hooksig_scheme scheme = (enum pt_hooksig_scheme)(PT_HOOKSIG_GITHUB + mode % 3);
    uint64_t u = 0;
    size_t hn;

    if (!ready) {
        if (sodium_init() < 0)
            abort();
        ready = 1;
    }
    for (int i = 0; i < 8; i++)
        u = u << 8 | pt_fuzz_byte(&in);
    int64_t now = (int64_t)u;
    const char *h = pt_fuzz_field(&in, &hn);
    const char *body = (const char *)in.p;
    size_t blen = in.n;

    /* The header and body as received; copies so that a read past either is an ASan report. */
    char *hc = malloc(hn ? hn : 1), *bc = malloc(blen ? blen : 1);
    if (hc == NULL || bc == NULL)
        abort();
    memcpy(hc, h, hn);
    memcpy(bc, body, blen);
    if (check(scheme, secret, sizeof secret - 1, hc, hn, bc, blen, now) == 0 &&
        check(scheme, other, sizeof other - 1, hc, hn, bc, blen, now) == 0)
        abort();

    /* The same body signed properly must pass (Stripe: when now is a valid timestamp). */
    if (mode & 0x80) {
        unsigned char mac[crypto_auth_hmacsha256_BYTES];
        char hex[2 * sizeof mac + 1], hdr[128];
        crypto_auth_hmacsha256_state st;
        char ts[24] = "";
        int ok = 1;
        if (scheme == PT_HOOKSIG_STRIPE) {
            if (now < 0 || now > 999999999999999)
                ok = 0;
            snprintf(ts, sizeof ts, "%" PRId64 ".", now);
        }
        crypto_auth_hmacsha256_init(&st, secret, sizeof secret - 1);
        crypto_auth_hmacsha256_update(&st, (const unsigned char *)ts, strlen(ts));
        crypto_auth_hmacsha256_update(&st, (const unsigned char *)bc, blen);
        crypto_auth_hmacsha256_final(&st, mac);
        sodium_bin2hex(hex, sizeof hex, mac, sizeof mac);
        if (scheme == PT_HOOKSIG_STRIPE)
            snprintf(hdr, sizeof hdr, "t=%" PRId64 ",v1=%s", now, hex);
        else
            snprintf(hdr, sizeof hdr, "sha256=%s", hex);
        if (ok && check(scheme, secret, sizeof secret - 1, hdr, strlen(hdr), bc, blen, now) != 0)
            abort();
    }
    free(hc);
    free(bc);
    return 0;
}
