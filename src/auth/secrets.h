/* secrets.h - the encrypted secret store: values sealed with XChaCha20-Poly1305 (libsodium)
 * under the master key (keys.h), kept in the metadata store (pt_store_secret_*), opened by
 * `pq.get_secret(name)` and the `portico secret` commands.
 *
 * Sealed form ("box"): a random 24-byte nonce followed by the ciphertext and its 16-byte tag.
 * The secret's name is the associated data, so a box moved to another name does not open.
 * Each row also records the fingerprint of the master key that sealed it, so a wrong key
 * ($PORTICO_MASTER_KEY from another install) is reported as such instead of as corruption.
 *
 * Rotation (`portico secret rotate-master`) with the key in a file:
 *   1. write the new key to DATA/keys/master.key.new (0600, fsynced);
 *   2. re-encrypt every secret under it in one transaction;
 *   3. rename master.key.new over master.key.
 * A crash between steps leaves both files; pt_secrets_open loads both and each row names its
 * key, so every secret stays readable, and the next rotation first finishes the old one. With
 * $PORTICO_MASTER_KEY, the new key comes from $PORTICO_NEW_MASTER_KEY (or is generated and
 * handed back to print once) and the operator replaces the variable. */
#ifndef PT_SECRETS_H
#define PT_SECRETS_H

#include <stddef.h>

#include "auth/keys.h"
#include "store/store.h"

#define PT_SECRET_MAX (64 * 1024) /* bytes of one value */

typedef struct pt_secrets pt_secrets;

/* Loads the master key of datadir ($PORTICO_MASTER_KEY, else DATA/keys/master.key, plus
 * master.key.new when an interrupted rotation left one). Returns 0 and *out (caller frees
 * with pt_secrets_close), or a pt_err with a one-line reason in err (PT_ENOTFOUND: no master
 * key at all). */
int pt_secrets_open(const char *datadir, pt_secrets **out, char *err, size_t errsz);
void pt_secrets_close(pt_secrets *s); /* NULL is a no-op; wipes the keys */
/* Fingerprint of the key new secrets are sealed with (borrowed). */
const char *pt_secrets_key_id(const pt_secrets *s);

/* Seals value[0..len) and stores it as secret `name` (created or replaced). Returns 0 or a
 * pt_err with the reason in err; never puts the value in err. */
int pt_secrets_set(pt_secrets *s, pt_store *st, const char *name, const char *value, size_t len,
                   char *err, size_t errsz);

/* Opens secret `name`. Returns 0 with *value (NUL-terminated, in sodium_malloc'd memory; free
 * with pt_secrets_value_free, which wipes it) and *len; PT_ENOTFOUND when there is no such
 * secret; PT_EINVAL when it is sealed under a master key that is not loaded or does not open
 * (err says which); another pt_err for a store failure. */
int pt_secrets_get(pt_secrets *s, pt_store *st, const char *name, char **value, size_t *len,
                   char *err, size_t errsz);
void pt_secrets_value_free(char *value); /* NULL is a no-op */

/* Re-encrypts every secret under a new master key (see the top of this file). `new_key_out`
 * (at least 2 * PT_KEY_BYTES + 1 bytes) receives the new key in hex when the operator must
 * store it ($PORTICO_MASTER_KEY in use and no $PORTICO_NEW_MASTER_KEY), else "". *count
 * receives the number of secrets re-encrypted. Returns 0 or a pt_err with the reason in err.
 * After success s uses the new key. */
int pt_secrets_rotate(pt_secrets *s, pt_store *st, char *new_key_out, size_t *count, char *err,
                      size_t errsz);

#endif
