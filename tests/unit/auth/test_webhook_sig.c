/* test_webhook_sig.c - unit tests for auth/webhook_sig: GitHub, Stripe and generic HMAC-SHA256
 * signatures against vectors computed independently (GitHub's is the one its docs publish). */
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "auth/webhook_sig.h"
#include "core/err.h"
#include "test.h"

/* GitHub's documented example ("Validating webhook deliveries"). */
#define GH_SECRET "It's a Secret to Everybody"
#define GH_BODY "Hello, World!"
#define GH_SIG "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

/* HMAC-SHA256 of "1700000000." + ST_BODY under ST_SECRET. */
#define ST_SECRET "whsec_test_secret"
#define ST_BODY "{\"id\":\"evt_1\",\"type\":\"charge.succeeded\"}"
#define ST_T 1700000000
#define ST_V1 "c0475716eb2200f1fe97fcf35a3c05d1fd4f8ba9a07a596730c8d18bb87c0672"

/* HMAC-SHA256 of HM_BODY under HM_SECRET, as hex, base64 and unpadded URL-safe base64. */
#define HM_SECRET "shared-secret"
#define HM_BODY "{\"event\":\"ping\",\"n\":1}"
#define HM_HEX "0e6f40a17bbfed0442c62fa0ad4b23ca049e2fa5d210693abf7870e137e1f7c6"
#define HM_B64 "Dm9AoXu/7QRCxi+grUsjygSeL6XSEGk6v3hw4Tfh98Y="
#define HM_B64URL "Dm9AoXu_7QRCxi-grUsjygSeL6XSEGk6v3hw4Tfh98Y"

/* Runs pt_hooksig_verify over C strings (header NULL when absent); why gets the reason. */
static int
verify(enum pt_hooksig_scheme scheme, const char *secret, const char *header, const char *body,
       long long now, char *why, size_t whysz)
{
    if (sodium_init() < 0)
        return PT_ENOMEM;
    why[0] = '\0';
    return pt_hooksig_verify(scheme, (const unsigned char *)secret, strlen(secret), header,
                             header != NULL ? strlen(header) : 0, body, strlen(body), now, why,
                             whysz);
}

TEST(hooksig_scheme_names_and_headers)
{
    ASSERT_EQ(pt_hooksig_scheme_of(NULL), PT_HOOKSIG_NONE);
    ASSERT_EQ(pt_hooksig_scheme_of("none"), PT_HOOKSIG_NONE);
    ASSERT_EQ(pt_hooksig_scheme_of("github"), PT_HOOKSIG_GITHUB);
    ASSERT_EQ(pt_hooksig_scheme_of("stripe"), PT_HOOKSIG_STRIPE);
    ASSERT_EQ(pt_hooksig_scheme_of("hmac-sha256"), PT_HOOKSIG_HMAC);
    ASSERT_EQ(pt_hooksig_scheme_of("GitHub"), -1);
    ASSERT_EQ(pt_hooksig_scheme_of("hmac"), -1);
    ASSERT_EQ(pt_hooksig_scheme_of(""), -1);
    ASSERT_STREQ(pt_hooksig_default_header(PT_HOOKSIG_GITHUB), "x-hub-signature-256");
    ASSERT_STREQ(pt_hooksig_default_header(PT_HOOKSIG_STRIPE), "stripe-signature");
    ASSERT_STREQ(pt_hooksig_default_header(PT_HOOKSIG_HMAC), "x-signature");
    ASSERT_TRUE(pt_hooksig_default_header(PT_HOOKSIG_NONE) == NULL);
}

TEST(hooksig_none_accepts_anything)
{
    char why[128];

    ASSERT_EQ(verify(PT_HOOKSIG_NONE, "s", NULL, "body", 0, why, sizeof why), 0);
    ASSERT_EQ(verify(PT_HOOKSIG_NONE, "s", "garbage", "body", 0, why, sizeof why), 0);
}

TEST(hooksig_github_valid)
{
    char why[128];

    ASSERT_EQ(verify(PT_HOOKSIG_GITHUB, GH_SECRET, GH_SIG, GH_BODY, 0, why, sizeof why), 0);
    /* Leading blanks of the header value and the prefix's case do not matter. */
    ASSERT_EQ(verify(PT_HOOKSIG_GITHUB, GH_SECRET, " \t" GH_SIG, GH_BODY, 0, why, sizeof why), 0);
    ASSERT_EQ(verify(PT_HOOKSIG_GITHUB, GH_SECRET,
                     "SHA256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
                     GH_BODY, 0, why, sizeof why),
              0);
    /* Upper-case hex digits too. */
    ASSERT_EQ(verify(PT_HOOKSIG_GITHUB, GH_SECRET,
                     "sha256=757107EA0EB2509FC211221CCE984B8A37570B6D7586C22C46F4379C8B043E17",
                     GH_BODY, 0, why, sizeof why),
              0);
}

TEST(hooksig_github_wrong_secret_and_tampered_body)
{
    char why[128];

    ASSERT_EQ(verify(PT_HOOKSIG_GITHUB, "It's a secret to everybody", GH_SIG, GH_BODY, 0, why,
                     sizeof why),
              PT_EINVAL);
    ASSERT_STREQ(why, "signature does not match");
    ASSERT_EQ(verify(PT_HOOKSIG_GITHUB, GH_SECRET, GH_SIG, "Hello, World?", 0, why, sizeof why),
              PT_EINVAL);
    ASSERT_STREQ(why, "signature does not match");
    ASSERT_EQ(verify(PT_HOOKSIG_GITHUB, GH_SECRET, GH_SIG, "", 0, why, sizeof why), PT_EINVAL);
    ASSERT_STREQ(why, "signature does not match");
}

TEST(hooksig_github_malformed_header)
{
    char why[128];

    ASSERT_EQ(verify(PT_HOOKSIG_GITHUB, GH_SECRET, NULL, GH_BODY, 0, why, sizeof why), PT_EINVAL);
    ASSERT_STREQ(why, "missing signature header");
    /* The bare hex, without "sha256=", is refused: GitHub always sends the prefix. */
    ASSERT_EQ(verify(PT_HOOKSIG_GITHUB, GH_SECRET,
                     "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17", GH_BODY, 0,
                     why, sizeof why),
              PT_EINVAL);
    ASSERT_STREQ(why, "X-Hub-Signature-256 must start with sha256=");
    /* The SHA-1 header's format. */
    ASSERT_EQ(verify(PT_HOOKSIG_GITHUB, GH_SECRET, "sha1=0123456789abcdef0123456789abcdef01234567",
                     GH_BODY, 0, why, sizeof why),
              PT_EINVAL);
    ASSERT_STREQ(why, "X-Hub-Signature-256 must start with sha256=");
    /* "sha256=" with nothing after it is no prefix either. */
    ASSERT_EQ(verify(PT_HOOKSIG_GITHUB, GH_SECRET, "sha256=", GH_BODY, 0, why, sizeof why),
              PT_EINVAL);
    ASSERT_STREQ(why, "X-Hub-Signature-256 must start with sha256=");
    const char *bad[] = {
        /* one digit short, one too many, a non-hex digit */
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1",
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e170",
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1g",
        /* base64 is not accepted from GitHub */
        "sha256=dXEH6g6yUJ/CESIczphLijdXC211hsIsRvQ3nIsEPhc=",
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17 ",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = verify(PT_HOOKSIG_GITHUB, GH_SECRET, bad[i], GH_BODY, 0, why, sizeof why);
        if (rc != PT_EINVAL || strcmp(why, "malformed signature") != 0)
            pt_test_fail(__FILE__, __LINE__, "'%s': rc %d, why '%s'", bad[i], rc, why);
    }
}

TEST(hooksig_reason_never_holds_the_expected_signature)
{
    char why[256];

    ASSERT_EQ(verify(PT_HOOKSIG_GITHUB, GH_SECRET, GH_SIG, "tampered", 0, why, sizeof why),
              PT_EINVAL);
    ASSERT_TRUE(strstr(why, GH_SECRET) == NULL);
    ASSERT_TRUE(strstr(why, "757107") == NULL);
    /* A small buffer gets a truncated, terminated reason. */
    char tiny[8];
    ASSERT_EQ(verify(PT_HOOKSIG_GITHUB, GH_SECRET, NULL, GH_BODY, 0, tiny, sizeof tiny), PT_EINVAL);
    ASSERT_STREQ(tiny, "missing");
}

TEST(hooksig_stripe_valid)
{
    char why[128];

    ASSERT_EQ(verify(PT_HOOKSIG_STRIPE, ST_SECRET, "t=1700000000,v1=" ST_V1, ST_BODY, ST_T, why,
                     sizeof why),
              0);
    /* Any order of the elements; other schemes (v0) and extra v1 signatures are allowed, and
     * one matching v1 is enough (Stripe sends two while a secret is being rolled). */
    ASSERT_EQ(verify(PT_HOOKSIG_STRIPE, ST_SECRET,
                     "v0=deadbeef,v1=" HM_HEX ",v1=" ST_V1 ",t=1700000000", ST_BODY, ST_T, why,
                     sizeof why),
              0);
    /* The tolerance is inclusive, both ways (clocks drift). */
    ASSERT_EQ(verify(PT_HOOKSIG_STRIPE, ST_SECRET, "t=1700000000,v1=" ST_V1, ST_BODY,
                     ST_T + PT_STRIPE_TOLERANCE, why, sizeof why),
              0);
    ASSERT_EQ(verify(PT_HOOKSIG_STRIPE, ST_SECRET, "t=1700000000,v1=" ST_V1, ST_BODY,
                     ST_T - PT_STRIPE_TOLERANCE, why, sizeof why),
              0);
}

TEST(hooksig_stripe_wrong_secret_and_tampered_body)
{
    char why[128];

    ASSERT_EQ(verify(PT_HOOKSIG_STRIPE, "whsec_other", "t=1700000000,v1=" ST_V1, ST_BODY, ST_T, why,
                     sizeof why),
              PT_EINVAL);
    ASSERT_STREQ(why, "signature does not match");
    ASSERT_EQ(verify(PT_HOOKSIG_STRIPE, ST_SECRET, "t=1700000000,v1=" ST_V1,
                     "{\"id\":\"evt_1\",\"type\":\"charge.refunded\"}", ST_T, why, sizeof why),
              PT_EINVAL);
    ASSERT_STREQ(why, "signature does not match");
    /* The timestamp is signed: changing it (within the tolerance) breaks the signature. */
    ASSERT_EQ(verify(PT_HOOKSIG_STRIPE, ST_SECRET, "t=1700000001,v1=" ST_V1, ST_BODY, ST_T, why,
                     sizeof why),
              PT_EINVAL);
    ASSERT_STREQ(why, "signature does not match");
}

TEST(hooksig_stripe_stale_timestamp)
{
    char why[128];

    ASSERT_EQ(verify(PT_HOOKSIG_STRIPE, ST_SECRET, "t=1700000000,v1=" ST_V1, ST_BODY,
                     ST_T + PT_STRIPE_TOLERANCE + 1, why, sizeof why),
              PT_EINVAL);
    ASSERT_STREQ(why, "Stripe-Signature timestamp outside the 5-minute tolerance");
    /* A replay a day later. */
    ASSERT_EQ(verify(PT_HOOKSIG_STRIPE, ST_SECRET, "t=1700000000,v1=" ST_V1, ST_BODY, ST_T + 86400,
                     why, sizeof why),
              PT_EINVAL);
    ASSERT_STREQ(why, "Stripe-Signature timestamp outside the 5-minute tolerance");
    /* From the future. */
    ASSERT_EQ(verify(PT_HOOKSIG_STRIPE, ST_SECRET, "t=1700000000,v1=" ST_V1, ST_BODY,
                     ST_T - PT_STRIPE_TOLERANCE - 1, why, sizeof why),
              PT_EINVAL);
    ASSERT_STREQ(why, "Stripe-Signature timestamp outside the 5-minute tolerance");
    /* The largest timestamp accepted, against clocks at both ends of int64: no overflow. */
    ASSERT_EQ(verify(PT_HOOKSIG_STRIPE, ST_SECRET, "t=999999999999999,v1=" ST_V1, ST_BODY,
                     INT64_MIN, why, sizeof why),
              PT_EINVAL);
    ASSERT_STREQ(why, "Stripe-Signature timestamp outside the 5-minute tolerance");
    ASSERT_EQ(
        verify(PT_HOOKSIG_STRIPE, ST_SECRET, "t=0,v1=" ST_V1, ST_BODY, INT64_MAX, why, sizeof why),
        PT_EINVAL);
    ASSERT_STREQ(why, "Stripe-Signature timestamp outside the 5-minute tolerance");
}

TEST(hooksig_stripe_malformed_header)
{
    char why[128];

    ASSERT_EQ(verify(PT_HOOKSIG_STRIPE, ST_SECRET, NULL, ST_BODY, ST_T, why, sizeof why),
              PT_EINVAL);
    ASSERT_STREQ(why, "missing signature header");
    const char *no_ts[] = {
        "v1=" ST_V1,
        "",
        "t=,v1=" ST_V1,
        "t=17000x0000,v1=" ST_V1,
        "t=1700000000 ,v1=" ST_V1,
        "T=1700000000,v1=" ST_V1,
        /* Out of range or signed: refused before any arithmetic (this one was undefined
         * behaviour: strtoll saturated and now - t overflowed). */
        "t=-99999999999999999999,v1=" ST_V1,
        "t=99999999999999999999,v1=" ST_V1,
        "t=1234567890123456,v1=" ST_V1,
        "t=-1700000000,v1=" ST_V1,
        "t=+1700000000,v1=" ST_V1,
        "t=1700000000,t=,v1=" ST_V1,
    };
    for (size_t i = 0; i < sizeof no_ts / sizeof no_ts[0]; i++) {
        int rc = verify(PT_HOOKSIG_STRIPE, ST_SECRET, no_ts[i], ST_BODY, ST_T, why, sizeof why);
        if (rc != PT_EINVAL || strcmp(why, "Stripe-Signature has no timestamp") != 0)
            pt_test_fail(__FILE__, __LINE__, "'%s': rc %d, why '%s'", no_ts[i], rc, why);
    }
    ASSERT_EQ(verify(PT_HOOKSIG_STRIPE, ST_SECRET, "t=1700000000", ST_BODY, ST_T, why, sizeof why),
              PT_EINVAL);
    ASSERT_STREQ(why, "Stripe-Signature has no v1 signature");
    ASSERT_EQ(verify(PT_HOOKSIG_STRIPE, ST_SECRET, "t=1700000000,v0=" ST_V1, ST_BODY, ST_T, why,
                     sizeof why),
              PT_EINVAL);
    ASSERT_STREQ(why, "Stripe-Signature has no v1 signature");
    /* A v1 that is not 64 hex digits never matches. */
    ASSERT_EQ(verify(PT_HOOKSIG_STRIPE, ST_SECRET, "t=1700000000,v1=c0475716", ST_BODY, ST_T, why,
                     sizeof why),
              PT_EINVAL);
    ASSERT_STREQ(why, "signature does not match");
}

TEST(hooksig_hmac_valid_hex_and_base64)
{
    char why[128];
    const char *good[] = {
        HM_HEX, "sha256=" HM_HEX, "  " HM_HEX, HM_B64, HM_B64URL, "sha256=" HM_B64,
    };

    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int rc = verify(PT_HOOKSIG_HMAC, HM_SECRET, good[i], HM_BODY, 0, why, sizeof why);
        if (rc != 0)
            pt_test_fail(__FILE__, __LINE__, "'%s': rc %d, why '%s'", good[i], rc, why);
    }
}

TEST(hooksig_hmac_wrong_secret_and_tampered_body)
{
    char why[128];

    ASSERT_EQ(verify(PT_HOOKSIG_HMAC, "shared-secreT", HM_HEX, HM_BODY, 0, why, sizeof why),
              PT_EINVAL);
    ASSERT_STREQ(why, "signature does not match");
    ASSERT_EQ(verify(PT_HOOKSIG_HMAC, HM_SECRET, HM_B64, "{\"event\":\"ping\",\"n\":2}", 0, why,
                     sizeof why),
              PT_EINVAL);
    ASSERT_STREQ(why, "signature does not match");
    /* A body with an embedded NUL is signed over all its bytes. */
    static const char body_nul[] = "{\"event\":\"ping\",\"n\":1}\0x";
    ASSERT_EQ(pt_hooksig_verify(PT_HOOKSIG_HMAC, (const unsigned char *)HM_SECRET,
                                strlen(HM_SECRET), HM_HEX, strlen(HM_HEX), body_nul,
                                sizeof body_nul - 1, 0, why, sizeof why),
              PT_EINVAL);
}

TEST(hooksig_hmac_malformed_header)
{
    char why[128];
    const char *bad[] = {
        "",
        "sha256=",
        /* 63 hex digits; base64 of 31 bytes; base64 with a bad character */
        "0e6f40a17bbfed0442c62fa0ad4b23ca049e2fa5d210693abf7870e137e1f7c",
        "Dm9AoXu/7QRCxi+grUsjygSeL6XSEGk6v3hw4Tfh9w==",
        "Dm9AoXu/7QRCxi+grUsjygSeL6XSEGk6v3hw4Tfh9*Y=",
        "not a signature",
    };

    ASSERT_EQ(verify(PT_HOOKSIG_HMAC, HM_SECRET, NULL, HM_BODY, 0, why, sizeof why), PT_EINVAL);
    ASSERT_STREQ(why, "missing signature header");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = verify(PT_HOOKSIG_HMAC, HM_SECRET, bad[i], HM_BODY, 0, why, sizeof why);
        if (rc != PT_EINVAL || strcmp(why, "malformed signature") != 0)
            pt_test_fail(__FILE__, __LINE__, "'%s': rc %d, why '%s'", bad[i], rc, why);
    }
}
