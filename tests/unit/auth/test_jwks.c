/* test_jwks.c - unit tests for auth/jwks: JWKS parsing and RS256 / ES256 verification, with
 * keys made by `cryptography` and tokens signed by PyJWT. */
#include <stdio.h>
#include <string.h>

#include "auth/jwks.h"
#include "auth/jwt.h"
#include "core/err.h"
#include "test.h"

static const char jwks[] =
    "{\"keys\": [{\"kty\": \"RSA\", \"key_ops\": [\"verify\"], \"n\": "
    "\"5AEruKWnd99kf2zGvOxHIi4GwBbSbL_xcLg2P8nSZnfTLBim5DEdo3l6aeIDFmWfcbwoUiq19acKiSjybGaQxnYKFuu"
    "FD1QZ3KW168UaSUp0ThODXAsX2mfvrzrGp5mwQT5QhDYQDl7gSHyF1e8ZezmjTaaJqLkqzAdcQPOGa6ZwiFWqj0DUb02Q"
    "1AFR2Lk04yKDe2rVH02QaJcrzAuRQgOqiy-NtzjToMM2Y8AYJy8MrMvV96dMlqXQbB9cjm4gsCVziLZabnI6eR1dTKBCS"
    "LeLH9YTUwIlyMPJkvQ1N5P7CP2CuiisJQkyMMjEdb_IHw_gW5n6bcQVYgrAOFtMow\", \"e\": \"AQAB\", "
    "\"kid\": \"r1\"}, {\"kty\": \"EC\", \"crv\": \"P-256\", \"x\": "
    "\"FC4ury6MkY0HPcrglcuntPLiXKh757-A7F7462LpMxc\", \"y\": "
    "\"siiopT201AqKoOhHDpM-CN1KtlLpSgaWVtYyo5yFGI8\", \"kid\": \"e1\"}, {\"kty\": \"oct\", \"k\": "
    "\"AAAA\", \"kid\": \"o1\"}]}";

static const char rs256[] =
    "eyJhbGciOiJSUzI1NiIsImtpZCI6InIxIiwidHlwIjoiSldUIn0."
    "eyJpc3MiOiJodHRwczovL2lkcCIsInN1YiI6ImFsaWNlIn0."
    "AUFc4BcIcnCq_WTbYdYlX2igOC_DdB9fNY767lwGmBhWXLL3FK9Wfs7E1ijv8e5H0h3UbaFFmI2ILM1oU4LwwuqIjE3EUw"
    "vVZLuRj10YFYLvDGN6vX-5xOuc7FgoxpthG7MiUaVoFt5gQyFnuWGYAJNX505YJG0zYIFts5I7HXYLDhESc1nbyOL1U8"
    "GyLF3UPNKPvpq67TI_ndENRE-c4FhHC2aFPt8micPWUZx-rZPd6NHxMARsrfKTmw9dRIetsWjJYSc-kuZSt_35ahFXQGJ"
    "oTlkeNnLOcj9bKpjFRsiBVoRs0J9Ydh5S9Fcy5jm2TZfFuQFkWna7u7Bq6Y4dCA";

static const char es256[] =
    "eyJhbGciOiJFUzI1NiIsImtpZCI6ImUxIiwidHlwIjoiSldUIn0."
    "eyJpc3MiOiJodHRwczovL2lkcCIsInN1YiI6ImJvYiJ9."
    "smc7ZUNt3P1T3mvQ2FkyB9c57J6rGa39nSHCJupQ4jzov5abMu_hIupDW5uppE1cpOLMAnG-NCYbsnPuMOu69Q";

static const char es256_nokid[] =
    "eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJpc3MiOiJodHRwczovL2lkcCIsInN1YiI6ImJvYiJ9."
    "XxWFbN0e5MfZ93t1EzOFhPSsgbdaHmMUjkXPzDWLZ9r1skPGUaeUbQhbkmVtaUoPNnfqQA_fEWIDAyuW38otyQ";

static pt_jwt t;

static int
verify(const pt_jwks *set, const char *token)
{
    const char *why;

    if (pt_jwt_decode(token, strlen(token), &t, &why) != 0)
        return 99;
    return pt_jwks_verify(set, &t, token);
}

TEST(jwks_parses_rsa_and_ec_and_skips_oct)
{
    pt_jwks *set = NULL;
    size_t skipped = 9;
    char err[256], desc[128];

    ASSERT_EQ(pt_jwks_parse(jwks, strlen(jwks), &set, &skipped, err, sizeof err), 0);
    ASSERT_EQ(pt_jwks_count(set), 2);
    ASSERT_EQ(skipped, 1); /* the "oct" key: never an HMAC secret */
    pt_jwks_describe(set, 0, desc, sizeof desc);
    ASSERT_STREQ(desc, "RSA 2048 kid=r1");
    pt_jwks_describe(set, 1, desc, sizeof desc);
    ASSERT_STREQ(desc, "EC P-256 256 kid=e1");
    pt_jwks_free(set);
}

TEST(jwks_verifies_pyjwt_tokens)
{
    pt_jwks *set = NULL;
    char err[256], bad[2048];

    ASSERT_EQ(pt_jwks_parse(jwks, strlen(jwks), &set, NULL, err, sizeof err), 0);
    ASSERT_EQ(verify(set, rs256), 0);
    ASSERT_STREQ(t.sub, "alice");
    ASSERT_EQ(verify(set, es256), 0);
    ASSERT_STREQ(t.sub, "bob");
    ASSERT_EQ(verify(set, es256_nokid), 0); /* no kid: every P-256 key is tried */
    /* One flipped signature bit. */
    snprintf(bad, sizeof bad, "%s", rs256);
    bad[strlen(bad) - 5] = bad[strlen(bad) - 5] == 'A' ? 'B' : 'A';
    ASSERT_EQ(verify(set, bad), PT_EINVAL);
    snprintf(bad, sizeof bad, "%s", es256);
    bad[strlen(bad) - 5] = bad[strlen(bad) - 5] == 'A' ? 'B' : 'A';
    ASSERT_EQ(verify(set, bad), PT_EINVAL);
    pt_jwks_free(set);
}

/* A P-256 key whose x coordinate starts with a zero byte, as PyJWT 2.6 writes it: 31 bytes,
 * the leading zero dropped (one key in about 128). The same number: accepted. */
static const char jwks_short_x[] =
    "{\"keys\": [{\"kty\": \"EC\", \"crv\": \"P-256\", "
    "\"x\": \"5T5z2k4L3ZhGnBESotJbYYehgAbvUWyBeiWuDPDdag\", "
    "\"y\": \"XKNNj3T1HoOof2yga-tuwjNHy0VpjM3fr4sdkBLMen8\", \"kid\": \"short-x\"}]}";
static const char es256_short_x[] =
    "eyJhbGciOiJFUzI1NiIsImtpZCI6InNob3J0LXgiLCJ0eXAiOiJKV1QifQ."
    "eyJpc3MiOiJpZHAiLCJzdWIiOiJ1IiwiZXhwIjo0MTAyNDQ0ODAwfQ."
    "gCUAfWfLHR5p5SBfJlJDpRE7G8wEkwKt1jN5zZq4_YkSKOQK4e1BsdTA70J_G7e9bFg5k7XOSTpJ-KkTm3z40g";

TEST(jwks_accepts_ec_coordinates_without_leading_zeros)
{
    pt_jwks *set = NULL;
    char err[256];

    ASSERT_EQ(pt_jwks_parse(jwks_short_x, strlen(jwks_short_x), &set, NULL, err, sizeof err), 0);
    ASSERT_EQ(pt_jwks_count(set), 1);
    ASSERT_EQ(verify(set, es256_short_x), 0);
    ASSERT_STREQ(t.sub, "u");
    pt_jwks_free(set);
}

TEST(jwks_key_must_fit_the_algorithm)
{
    pt_jwks *set = NULL;
    char err[256], swapped[2048];

    ASSERT_EQ(pt_jwks_parse(jwks, strlen(jwks), &set, NULL, err, sizeof err), 0);
    /* The RS256 token claiming the EC key's kid: no RSA key has it. */
    const char *p = strchr(rs256, '.');
    snprintf(swapped, sizeof swapped, "%s%s", "eyJhbGciOiJSUzI1NiIsImtpZCI6ImUxIiwidHlwIjoiSldUIn0",
             p);
    ASSERT_EQ(verify(set, swapped), PT_ENOTFOUND);
    /* HS256 and none never reach a JWKS key. */
    ASSERT_EQ(verify(set, "eyJhbGciOiJIUzI1NiJ9.e30.AAAA"), PT_ENOTFOUND);
    ASSERT_EQ(verify(set, "eyJhbGciOiJub25lIn0.e30."), PT_ENOTFOUND);
    pt_jwks_free(set);
}

TEST(jwks_refuses_unusable_documents)
{
    pt_jwks *set = NULL;
    char err[256];
    const char *bad[] = {
        "",
        "[]",
        "{\"keys\": {}}",
        "{\"keys\": []}",
        "{\"keys\": [{\"kty\": \"oct\", \"k\": \"AAAA\"}]}",
        /* RSA of 512 bits */
        "{\"keys\": [{\"kty\": \"RSA\", \"e\": \"AQAB\", \"n\": "
        "\"wRNLhwKqKdaxyvAz-QeX1UAGXTp7FBMsh6gSxSvNcYQIrhIB0e4vUA5iVcIgJMXIz8RLJYg-"
        "jH0S0qL09bfpuw\"}]}",
        /* EC point not on the curve */
        "{\"keys\": [{\"kty\": \"EC\", \"crv\": \"P-256\", \"x\": "
        "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\", \"y\": "
        "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE\"}]}",
        /* P-384 */
        "{\"keys\": [{\"kty\": \"EC\", \"crv\": \"P-384\", \"x\": \"AA\", \"y\": \"AA\"}]}",
        /* an encryption key */
        "{\"keys\": [{\"kty\": \"EC\", \"use\": \"enc\", \"crv\": \"P-256\", \"x\": "
        "\"FC4ury6MkY0HPcrglcuntPLiXKh757-A7F7462LpMxc\", \"y\": "
        "\"siiopT201AqKoOhHDpM-CN1KtlLpSgaWVtYyo5yFGI8\"}]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        if (pt_jwks_parse(bad[i], strlen(bad[i]), &set, NULL, err, sizeof err) == 0) {
            pt_test_fail(__FILE__, __LINE__, "accepted document %zu", i);
            pt_jwks_free(set);
        } else if (err[0] == '\0') {
            pt_test_fail(__FILE__, __LINE__, "no reason for document %zu", i);
        }
    }
}
