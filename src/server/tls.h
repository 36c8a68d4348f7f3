/* tls.h - the TLS side of `serve`: the certificate chain and private key (PEM files), checked
 * as a pair, and the server's SSL_CTX built from them: TLS 1.2 and 1.3 only, Mozilla's
 * "intermediate" ciphers, ALPN offering h2 then http/1.1 (libh2o speaks both).
 *
 * The master loads the files once before it listens (a bad file stops `serve` with one line)
 * and again on SIGHUP; the PEM bytes of the last good load are what a worker forked later
 * builds its SSL_CTX from, so a bad file on disk never stops a replacement worker. */
#ifndef PT_TLS_H
#define PT_TLS_H

#include <openssl/ssl.h>
#include <stddef.h>

typedef struct pt_tls pt_tls;

/* Reads the certificate chain at cert_path and the private key at key_path (both borrowed;
 * copied) and checks that they make a usable pair. Returns 0 with *out set (caller frees with
 * pt_tls_free), or PT_EIO (a file cannot be read), PT_EINVAL (no certificate or key in it, an
 * encrypted key, a key that does not match the certificate) or PT_ENOMEM; then err (errsz
 * bytes) holds one line naming the file and the cause, and *out is NULL. */
int pt_tls_load(const char *cert_path, const char *key_path, pt_tls **out, char *err, size_t errsz);

/* Frees t (the key bytes are wiped). pt_tls_free(NULL) is a no-op. */
void pt_tls_free(pt_tls *t);

/* Reads t's two files again. When they make a usable pair they replace what t holds and 0 is
 * returned; otherwise t keeps the previous pair and the error is returned as pt_tls_load's. */
int pt_tls_reload(pt_tls *t, char *err, size_t errsz);

/* A new server SSL_CTX with t's current pair. Returns NULL (err says why) on failure; caller
 * frees with SSL_CTX_free (connections made with it hold their own reference). */
SSL_CTX *pt_tls_ctx_new(const pt_tls *t, char *err, size_t errsz);

/* The certificate file's path, for log lines. Borrowed, valid while t lives. */
const char *pt_tls_cert_path(const pt_tls *t);

#endif
