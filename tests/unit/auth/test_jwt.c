/* test_jwt.c - unit tests for auth/jwt: strict decoding, HS256 signing and verification, with
 * a token made by an independent implementation (PyJWT) as the reference. */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "auth/jwt.h"
#include "core/err.h"
#include "test.h"

/* jwt.encode({"jti": "abc", "sub": "partner", "iat": 1700000000, "exp": 4102444800,
 *             "scope": "a b"}, bytes(range(32)), algorithm="HS256") with PyJWT 2.6. */
static const char pyjwt_hs256[] =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJqdGkiOiJhYmMiLCJzdWIiOiJwYXJ0bmVyIiwiaWF0IjoxNzAwMDAwMDAwLCJleHAiOjQxMDI0NDQ4MDAsInNjb3Bl"
    "IjoiYSBiIn0.U7Bv1v9vrXENHHNstFIa6UqJBvWltmK2h-EUjTxtCjc";

static void
test_key(unsigned char *key)
{
    for (int i = 0; i < 32; i++)
        key[i] = (unsigned char)i;
}

/* base64url of s, into out. */
static void
b64(const char *s, char *out, size_t outsz)
{
    sodium_bin2base64(out, outsz, (const unsigned char *)s, strlen(s),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

/* header.payload.sig from JSON texts, with an HS256 signature under key. */
static void
make_token(const char *header, const char *payload, const unsigned char *key, char *out,
           size_t outsz)
{
    char h[1024], p[4096];
    unsigned char mac[32];
    char sig[64];

    b64(header, h, sizeof h);
    b64(payload, p, sizeof p);
    size_t hn = strlen(h), pn = strlen(p);
    if (hn + pn + 2 + sizeof sig > outsz) {
        out[0] = '\0';
        return;
    }
    memcpy(out, h, hn);
    out[hn] = '.';
    memcpy(out + hn + 1, p, pn + 1);
    crypto_auth_hmacsha256(mac, (const unsigned char *)out, hn + 1 + pn, key);
    sodium_bin2base64(sig, sizeof sig, mac, sizeof mac, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    out[hn + 1 + pn] = '.';
    memcpy(out + hn + 2 + pn, sig, strlen(sig) + 1);
}

static pt_jwt t; /* 9 KiB: not on the stack of every test */

TEST(jwt_decodes_and_verifies_a_pyjwt_token)
{
    unsigned char key[32];
    const char *why = NULL;

    ASSERT_TRUE(sodium_init() >= 0);
    test_key(key);
    ASSERT_EQ(pt_jwt_decode(pyjwt_hs256, strlen(pyjwt_hs256), &t, &why), 0);
    ASSERT_EQ(t.alg, PT_JWT_HS256);
    ASSERT_STREQ(t.jti, "abc");
    ASSERT_STREQ(t.sub, "partner");
    ASSERT_TRUE(t.iss == NULL);
    ASSERT_EQ(t.iat, 1700000000);
    ASSERT_EQ(t.exp, 4102444800LL);
    ASSERT_TRUE(t.has & PT_JWT_HAS_EXP);
    ASSERT_FALSE(t.has & PT_JWT_HAS_NBF);
    ASSERT_EQ(t.nscope, 2);
    ASSERT_STREQ(t.scope[0], "a");
    ASSERT_STREQ(t.scope[1], "b");
    ASSERT_EQ(pt_jwt_verify_hs256(&t, pyjwt_hs256, key), 0);
    key[0] ^= 1;
    ASSERT_EQ(pt_jwt_verify_hs256(&t, pyjwt_hs256, key), PT_EINVAL);
}

TEST(jwt_sign_round_trip)
{
    unsigned char key[32];
    char token[2048];
    const char *scope[] = {"accounts", "orders"};
    pt_jwt_claims c = {"0123456789abcdef", "partner-a", 1700000000, 1700003600, scope, 2};
    const char *why;

    test_key(key);
    ASSERT_EQ(pt_jwt_sign_hs256(&c, key, token, sizeof token), 0);
    ASSERT_EQ(pt_jwt_decode(token, strlen(token), &t, &why), 0);
    ASSERT_EQ(pt_jwt_verify_hs256(&t, token, key), 0);
    ASSERT_STREQ(t.jti, "0123456789abcdef");
    ASSERT_STREQ(t.sub, "partner-a");
    ASSERT_EQ(t.exp, 1700003600);
    ASSERT_EQ(t.nscope, 2);
    ASSERT_STREQ(t.scope[1], "orders");
    /* No expiry and no scope: neither claim is written. */
    pt_jwt_claims c2 = {"x", "y", 1, 0, NULL, 0};
    ASSERT_EQ(pt_jwt_sign_hs256(&c2, key, token, sizeof token), 0);
    ASSERT_EQ(pt_jwt_decode(token, strlen(token), &t, &why), 0);
    ASSERT_FALSE(t.has & (PT_JWT_HAS_EXP | PT_JWT_HAS_SCOPE));
    /* Too small an output buffer fails cleanly. */
    ASSERT_EQ(pt_jwt_sign_hs256(&c, key, token, 40), PT_ETOOBIG);
}

TEST(jwt_tampering_breaks_the_signature)
{
    unsigned char key[32];
    char token[2048], forged[2048];
    pt_jwt_claims c = {"id1", "alice", 1, 0, NULL, 0};
    const char *why;

    test_key(key);
    ASSERT_EQ(pt_jwt_sign_hs256(&c, key, token, sizeof token), 0);
    /* Same header and signature, payload naming someone else. */
    char *dot1 = strchr(token, '.'), *dot2 = strrchr(token, '.');
    char payload[256];
    b64("{\"jti\":\"id1\",\"sub\":\"admin\",\"iat\":1}", payload, sizeof payload);
    snprintf(forged, sizeof forged, "%.*s.%s%s", (int)(dot1 - token), token, payload, dot2);
    ASSERT_EQ(pt_jwt_decode(forged, strlen(forged), &t, &why), 0);
    ASSERT_EQ(pt_jwt_verify_hs256(&t, forged, key), PT_EINVAL);
    /* A truncated signature. */
    snprintf(forged, sizeof forged, "%.*s", (int)strlen(token) - 2, token);
    if (pt_jwt_decode(forged, strlen(forged), &t, &why) == 0)
        ASSERT_EQ(pt_jwt_verify_hs256(&t, forged, key), PT_EINVAL);
}

TEST(jwt_algorithms_are_named_not_trusted)
{
    unsigned char key[32];
    char token[2048];
    const char *why;

    test_key(key);
    make_token("{\"alg\":\"none\"}", "{\"jti\":\"a\"}", key, token, sizeof token);
    ASSERT_EQ(pt_jwt_decode(token, strlen(token), &t, &why), 0);
    ASSERT_EQ(t.alg, PT_JWT_ALG_NONE);
    ASSERT_EQ(pt_jwt_verify_hs256(&t, token, key), PT_EINVAL); /* right MAC, wrong alg */
    make_token("{\"alg\":\"NONE\"}", "{}", key, token, sizeof token);
    ASSERT_EQ(pt_jwt_decode(token, strlen(token), &t, &why), 0);
    ASSERT_EQ(t.alg, PT_JWT_ALG_NONE);
    make_token("{\"alg\":\"HS512\"}", "{}", key, token, sizeof token);
    ASSERT_EQ(pt_jwt_decode(token, strlen(token), &t, &why), 0);
    ASSERT_EQ(t.alg, PT_JWT_ALG_OTHER);
    ASSERT_EQ(pt_jwt_verify_hs256(&t, token, key), PT_EINVAL);
    make_token("{\"alg\":\"RS256\"}", "{}", key, token, sizeof token);
    ASSERT_EQ(pt_jwt_decode(token, strlen(token), &t, &why), 0);
    ASSERT_EQ(t.alg, PT_JWT_RS256);
    ASSERT_EQ(pt_jwt_verify_hs256(&t, token, key), PT_EINVAL);
}

/* Expects token (header and payload JSON) to be refused by the decoder. */
static void
refuse(const char *header, const char *payload)
{
    unsigned char key[32];
    char token[4096];
    const char *why = NULL;

    test_key(key);
    make_token(header, payload, key, token, sizeof token);
    if (pt_jwt_decode(token, strlen(token), &t, &why) != PT_EINVAL)
        pt_test_fail(__FILE__, __LINE__, "accepted header %s payload %s", header, payload);
    else if (why == NULL)
        pt_test_fail(__FILE__, __LINE__, "no reason for header %s", header);
}

TEST(jwt_decoder_is_strict)
{
    const char *hs = "{\"alg\":\"HS256\"}";

    refuse("{}", "{}");                                   /* no alg */
    refuse("{\"alg\":256}", "{}");                        /* alg not a string */
    refuse("{\"alg\":\"HS256\",\"alg\":\"none\"}", "{}"); /* duplicate names */
    refuse("{\"alg\":\"HS256\",\"crit\":[\"x\"]}", "{}"); /* critical extension */
    refuse("{\"alg\":\"HS256\",\"kid\":5}", "{}");        /* kid not a string */
    refuse("[\"alg\"]", "{}");                            /* not an object */
    refuse(hs, "[]");
    refuse(hs, "{\"sub\":1}");
    refuse(hs, "{\"jti\":null}");
    refuse(hs, "{\"exp\":\"tomorrow\"}");
    refuse(hs, "{\"exp\":true}");
    refuse(hs, "{\"nbf\":{}}");
    refuse(hs, "{\"aud\":[1]}");
    refuse(hs, "{\"scope\":5}");
    refuse(hs, "{\"sub\":\"a\"} x"); /* trailing garbage */
    refuse(hs, "{\"sub\":\"a\",\"sub\":\"b\"}");
    refuse(hs, "{\"exp\":1e400}");
}

TEST(jwt_decoder_refuses_bad_framing)
{
    const char *why;
    char buf[PT_JWT_MAX + 16];
    const char *bad[] = {
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "a.b.c.d.e",
        "eyJhbGciOiJIUzI1NiJ9=.e30.AA", /* padding */
        "eyJhbGciOiJIUzI1NiJ9.e30=.AA",
        "eyJhbGciOiJIUzI1NiJ9.e30.A",  /* impossible length */
        "eyJhbGciOiJIUzI1NiJ9.e31.AA", /* non-canonical trailing bits */
        "eyJhbGciOiJIUzI1NiJ9.e3+.AA", /* not the URL alphabet */
        ".e30.AA",
        "eyJhbGciOiJIUzI1NiJ9..AA",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (pt_jwt_decode(bad[i], strlen(bad[i]), &t, &why) == 0)
            pt_test_fail(__FILE__, __LINE__, "accepted '%s'", bad[i]);
    }
    /* The well-formed version of the above decodes (empty signature: verification fails). */
    ASSERT_EQ(pt_jwt_decode("eyJhbGciOiJIUzI1NiJ9.e30.", 25, &t, &why), 0);
    ASSERT_EQ(t.sig_len, 0);
    memset(buf, 'a', sizeof buf);
    ASSERT_EQ(pt_jwt_decode(buf, PT_JWT_MAX + 1, &t, &why), PT_EINVAL);
    ASSERT_STREQ(why, "token too long");
}

TEST(jwt_aud_and_dates)
{
    unsigned char key[32];
    char token[2048];
    const char *why;

    test_key(key);
    make_token("{\"alg\":\"RS256\",\"kid\":\"k\"}",
               "{\"aud\":[\"x\",\"y\"],\"nbf\":12.9,\"exp\":20,\"iss\":\"i\"}", key, token,
               sizeof token);
    ASSERT_EQ(pt_jwt_decode(token, strlen(token), &t, &why), 0);
    ASSERT_STREQ(t.kid, "k");
    ASSERT_EQ(t.naud, 2);
    ASSERT_STREQ(t.aud[1], "y");
    ASSERT_EQ(t.nbf, 12);
    ASSERT_EQ(t.exp, 20);
    ASSERT_STREQ(t.iss, "i");
    make_token("{\"alg\":\"RS256\"}", "{\"aud\":\"only\"}", key, token, sizeof token);
    ASSERT_EQ(pt_jwt_decode(token, strlen(token), &t, &why), 0);
    ASSERT_EQ(t.naud, 1);
    ASSERT_STREQ(t.aud[0], "only");
}
