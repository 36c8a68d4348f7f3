/* tls.c - certificate and key loading and the server's SSL_CTX (TLS 1.2/1.3, ALPN h2). */
#include "server/tls.h"

#include <h2o.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/file.h"

/* Mozilla's "intermediate" TLS 1.2 ciphers (TLS 1.3 keeps OpenSSL's three suites, which are
 * the same list's). Every one has forward secrecy and an AEAD, as HTTP/2 requires. */
#define TLS12_CIPHERS                                                                              \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"     \
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"       \
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"
#define TLS_GROUPS "X25519:prime256v1:secp384r1"
/* A PEM chain or key larger than this is not one. */
#define PEM_MAX (1 << 20)

struct pt_tls {
    char *cert_path, *key_path;
    char *cert; /* PEM chain, malloc */
    size_t cert_len;
    char *key; /* PEM private key, sodium_malloc (wiped when freed) */
    size_t key_len;
};

/* OpenSSL's reason for the last error, or `fallback`; clears the error queue. */
static const char *
ssl_reason(const char *fallback)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;
    ERR_clear_error();
    return r != NULL ? r : fallback;
}

/* A passphrase callback that refuses: an encrypted key must not make OpenSSL ask the tty. */
static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return -1;
}

/* Puts the chain (leaf first) and the key into ctx and checks they match. paths name the files
 * in err. */
static int
use_pair(SSL_CTX *ctx, const char *cert, size_t cert_len, const char *key, size_t key_len,
         const char *cert_path, const char *key_path, char *err, size_t errsz)
{
    int rc = PT_EINVAL;
    EVP_PKEY *pkey = NULL;
    X509 *x = NULL;
    BIO *bio = BIO_new_mem_buf(cert, (int)cert_len);
    if (bio == NULL) {
        snprintf(err, errsz, "out of memory reading --tls-cert %s", cert_path);
        rc = PT_ENOMEM;
        goto done;
    }
    x = PEM_read_bio_X509_AUX(bio, NULL, no_passphrase, NULL);
    if (x == NULL || SSL_CTX_use_certificate(ctx, x) != 1) {
        snprintf(err, errsz, "--tls-cert %s: no usable PEM certificate in it (%s)", cert_path,
                 ssl_reason("no certificate"));
        goto done;
    }
    for (;;) {
        X509 *ca = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL);
        if (ca == NULL)
            break;
        if (SSL_CTX_add0_chain_cert(ctx, ca) != 1) { /* takes ca only on success */
            X509_free(ca);
            snprintf(err, errsz, "--tls-cert %s: bad chain certificate (%s)", cert_path,
                     ssl_reason("rejected"));
            goto done;
        }
    }
    /* The loop ends on "no start line" at the end of the file; anything else is damage. */
    unsigned long e = ERR_peek_last_error();
    if (e != 0 && !(ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)) {
        snprintf(err, errsz, "--tls-cert %s: bad chain certificate (%s)", cert_path,
                 ssl_reason("unreadable"));
        goto done;
    }
    ERR_clear_error();
    BIO_free(bio);
    bio = BIO_new_mem_buf(key, (int)key_len);
    if (bio == NULL) {
        snprintf(err, errsz, "out of memory reading --tls-key %s", key_path);
        rc = PT_ENOMEM;
        goto done;
    }
    pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    if (pkey == NULL) {
        snprintf(err, errsz,
                 "--tls-key %s: no usable PEM private key in it (%s; an encrypted key is not "
                 "supported)",
                 key_path, ssl_reason("no key"));
        goto done;
    }
    /* Setting the key checks it against the certificate, as the explicit check does. */
    if (SSL_CTX_use_PrivateKey(ctx, pkey) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        ERR_clear_error();
        snprintf(err, errsz, "--tls-key %s does not match the certificate in --tls-cert %s",
                 key_path, cert_path);
        goto done;
    }
    rc = 0;
done:
    EVP_PKEY_free(pkey);
    X509_free(x);
    BIO_free(bio);
    return rc;
}

/* A server SSL_CTX with the pair; *out NULL on failure. */
static int
ctx_build(const char *cert, size_t cert_len, const char *key, size_t key_len, const char *cert_path,
          const char *key_path, SSL_CTX **out, char *err, size_t errsz)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    int rc;
    *out = NULL;
    if (ctx == NULL) {
        snprintf(err, errsz, "cannot create the TLS context: %s", ssl_reason("out of memory"));
        return PT_ENOMEM;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_NO_SESSION_RESUMPTION_ON_RENEGOTIATION);
    SSL_CTX_set_dh_auto(ctx, 1);
    if (SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1 ||
        SSL_CTX_set1_groups_list(ctx, TLS_GROUPS) != 1) {
        snprintf(err, errsz, "cannot set the TLS ciphers: %s", ssl_reason("unsupported"));
        SSL_CTX_free(ctx);
        return PT_EINVAL;
    }
    rc = use_pair(ctx, cert, cert_len, key, key_len, cert_path, key_path, err, errsz);
    if (rc != 0) {
        SSL_CTX_free(ctx);
        return rc;
    }
    h2o_ssl_register_alpn_protocols(ctx, h2o_alpn_protocols); /* h2, then http/1.1 */
    *out = ctx;
    return 0;
}

/* Reads both files into *cert (malloc) and *key (sodium_malloc) and checks the pair. */
static int
read_pair(const char *cert_path, const char *key_path, char **cert, size_t *cert_len, char **key,
          size_t *key_len, char *err, size_t errsz)
{
    char why[256] = "";
    char *raw = NULL;
    size_t n = 0;
    SSL_CTX *ctx = NULL;
    int rc;
    *cert = *key = NULL;
    if (sodium_init() < 0) {
        snprintf(err, errsz, "cannot initialise libsodium");
        return PT_EIO;
    }
    rc = pt_file_read(cert_path, PEM_MAX, cert, cert_len, why, sizeof(why));
    if (rc != 0) {
        snprintf(err, errsz, "cannot read --tls-cert %s: %s", cert_path, why);
        return rc;
    }
    rc = pt_file_read(key_path, PEM_MAX, &raw, &n, why, sizeof(why));
    if (rc != 0) {
        snprintf(err, errsz, "cannot read --tls-key %s: %s", key_path, why);
        goto fail;
    }
    *key = sodium_malloc(n + 1);
    if (*key == NULL) {
        snprintf(err, errsz, "out of memory reading --tls-key %s", key_path);
        rc = PT_ENOMEM;
        goto fail;
    }
    memcpy(*key, raw, n + 1);
    *key_len = n;
    rc = ctx_build(*cert, *cert_len, *key, *key_len, cert_path, key_path, &ctx, err, errsz);
    if (rc != 0)
        goto fail;
    SSL_CTX_free(ctx);
    sodium_memzero(raw, n);
    free(raw);
    return 0;
fail:
    if (raw != NULL)
        sodium_memzero(raw, n);
    free(raw);
    free(*cert);
    sodium_free(*key);
    *cert = *key = NULL;
    return rc;
}

int
pt_tls_load(const char *cert_path, const char *key_path, pt_tls **out, char *err, size_t errsz)
{
    pt_tls *t = calloc(1, sizeof(*t));
    int rc = PT_ENOMEM;
    *out = NULL;
    if (t == NULL || (t->cert_path = strdup(cert_path)) == NULL ||
        (t->key_path = strdup(key_path)) == NULL) {
        snprintf(err, errsz, "out of memory");
        goto fail;
    }
    rc = read_pair(cert_path, key_path, &t->cert, &t->cert_len, &t->key, &t->key_len, err, errsz);
    if (rc != 0)
        goto fail;
    *out = t;
    return 0;
fail:
    pt_tls_free(t);
    return rc;
}

void
pt_tls_free(pt_tls *t)
{
    if (t == NULL)
        return;
    free(t->cert_path);
    free(t->key_path);
    free(t->cert);
    sodium_free(t->key); /* wipes */
    free(t);
}

int
pt_tls_reload(pt_tls *t, char *err, size_t errsz)
{
    char *cert, *key;
    size_t cert_len, key_len;
    int rc = read_pair(t->cert_path, t->key_path, &cert, &cert_len, &key, &key_len, err, errsz);
    if (rc != 0)
        return rc;
    free(t->cert);
    sodium_free(t->key);
    t->cert = cert;
    t->cert_len = cert_len;
    t->key = key;
    t->key_len = key_len;
    return 0;
}

SSL_CTX *
pt_tls_ctx_new(const pt_tls *t, char *err, size_t errsz)
{
    SSL_CTX *ctx = NULL;
    ctx_build(t->cert, t->cert_len, t->key, t->key_len, t->cert_path, t->key_path, &ctx, err,
              errsz);
    return ctx;
}

const char *
pt_tls_cert_path(const pt_tls *t)
{
    return t->cert_path;
}
