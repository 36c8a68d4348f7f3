/* test_tls.c - unit tests for certificate and key loading and reload (server/tls.c). */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "server/tls.h"
#include "test.h"

/* A self-signed P-256 certificate for cn: *key and the certificate (caller frees both). */
static X509 *
make_cert(const char *cn, EVP_PKEY **key)
{
    X509 *x = X509_new();
    *key = EVP_EC_gen("P-256");
    if (x == NULL || *key == NULL)
        return NULL;
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, *key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509_sign(x, *key, EVP_sha256());
    return x;
}

/* Writes the certificates (in order) to cert_path and the key to key_path. */
static int
write_pem(const char *cert_path, X509 *const *certs, int n, const char *key_path, EVP_PKEY *key)
{
    FILE *f = fopen(cert_path, "w");
    int ok = f != NULL;
    for (int i = 0; ok && i < n; i++)
        ok = PEM_write_X509(f, certs[i]) == 1;
    if (f != NULL)
        fclose(f);
    if (!ok || key_path == NULL)
        return ok;
    f = fopen(key_path, "w");
    ok = f != NULL && PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1;
    if (f != NULL)
        fclose(f);
    return ok;
}

/* The CN of the certificate ctx serves. */
static void
served_cn(SSL_CTX *ctx, char *out, size_t n)
{
    out[0] = '\0';
    X509_NAME_get_text_by_NID(X509_get_subject_name(SSL_CTX_get0_certificate(ctx)), NID_commonName,
                              out, (int)n);
}

TEST(tls_load_checks_the_pair_and_reload_keeps_the_last_good_one)
{
    char dir[] = "/tmp/pt-test-tls-XXXXXX", cert[64], key[64], other_key[64], missing[64];
    char err[512] = "", cn[64];
    EVP_PKEY *k1 = NULL, *k2 = NULL;
    pt_tls *t = NULL;
    SSL_CTX *ctx = NULL;

    ASSERT_TRUE(mkdtemp(dir) != NULL);
    snprintf(cert, sizeof cert, "%s/c.pem", dir);
    snprintf(key, sizeof key, "%s/k.pem", dir);
    snprintf(other_key, sizeof other_key, "%s/k2.pem", dir);
    snprintf(missing, sizeof missing, "%s/missing.pem", dir);
    X509 *first = make_cert("first", &k1), *second = make_cert("second", &k2);
    ASSERT_TRUE(first != NULL && second != NULL);

    /* A leaf and one chain certificate. */
    X509 *chain[] = {first, second};
    ASSERT_TRUE(write_pem(cert, chain, 2, key, k1));
    ASSERT_EQ(pt_tls_load(cert, key, &t, err, sizeof err), 0);
    ASSERT_STREQ(pt_tls_cert_path(t), cert);
    ctx = pt_tls_ctx_new(t, err, sizeof err);
    ASSERT_TRUE(ctx != NULL);
    ASSERT_EQ(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
    STACK_OF(X509) *extra = NULL;
    ASSERT_EQ(SSL_CTX_get0_chain_certs(ctx, &extra), 1);
    ASSERT_EQ(sk_X509_num(extra), 1);
    served_cn(ctx, cn, sizeof cn);
    ASSERT_STREQ(cn, "first");
    SSL_CTX_free(ctx);

    /* Bad files fail with one line naming them; the loaded pair stays for reloads. */
    pt_tls *bad = (pt_tls *)1;
    ASSERT_EQ(pt_tls_load(missing, key, &bad, err, sizeof err), PT_EIO);
    ASSERT_TRUE(bad == NULL);
    ASSERT_TRUE(strstr(err, missing) != NULL && strchr(err, '\n') == NULL);
    ASSERT_TRUE(write_pem(other_key, NULL, 0, NULL, NULL)); /* an empty file */
    ASSERT_EQ(pt_tls_load(cert, other_key, &bad, err, sizeof err), PT_EINVAL);
    ASSERT_TRUE(strstr(err, "no usable PEM private key") != NULL);
    FILE *f = fopen(other_key, "w");
    ASSERT_TRUE(f != NULL && PEM_write_PrivateKey(f, k2, NULL, NULL, 0, NULL, NULL) == 1);
    fclose(f);
    ASSERT_EQ(pt_tls_load(cert, other_key, &bad, err, sizeof err), PT_EINVAL);
    ASSERT_TRUE(strstr(err, "does not match the certificate") != NULL);

    f = fopen(cert, "w");
    ASSERT_TRUE(f != NULL);
    fputs("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", f);
    fclose(f);
    ASSERT_EQ(pt_tls_reload(t, err, sizeof err), PT_EINVAL);
    ASSERT_TRUE(strstr(err, cert) != NULL);
    ctx = pt_tls_ctx_new(t, err, sizeof err);
    ASSERT_TRUE(ctx != NULL);
    served_cn(ctx, cn, sizeof cn);
    ASSERT_STREQ(cn, "first");
    SSL_CTX_free(ctx);

    /* A good new pair replaces it. */
    ASSERT_TRUE(write_pem(cert, &second, 1, key, k2));
    ASSERT_EQ(pt_tls_reload(t, err, sizeof err), 0);
    ctx = pt_tls_ctx_new(t, err, sizeof err);
    ASSERT_TRUE(ctx != NULL);
    served_cn(ctx, cn, sizeof cn);
    ASSERT_STREQ(cn, "second");
    SSL_CTX_free(ctx);

    pt_tls_free(t);
    pt_tls_free(NULL);
    X509_free(first);
    X509_free(second);
    EVP_PKEY_free(k1);
    EVP_PKEY_free(k2);
    unlink(cert);
    unlink(key);
    unlink(other_key);
    rmdir(dir);
}
