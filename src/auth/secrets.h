/* secrets.h - the encrypted secret store: values sealed with XChaCha20-Poly1305 (libsodium)
 * under the master key (keys.h), kept in the metadata store (pt_store_secret_*), opened by
 * `pq.get_secret(name)` and the `portico secret` commands.
 *
 * Sealed form ("box"): a random 24-byte nonce followed by the ciphertext and its 16-byte tag.
 * The secret's name is the associated data, so a box moved to another name does not open.
 * Each row also records the fingerprint of the master key that sealed it, so a wrong key
 * ($PORTICO_MASTER_KEY from another install) is reported as such instead of as corruption.
 *
 * Design notes. Invariants:
 *   1. No secret is ever sealed under a key that exists only in memory: a new master key is
 *      durable (the master.key.new file, fsynced; or $PORTICO_NEW_MASTER_KEY, which the
 *      operator holds) before the first secret is sealed under it. No master key is printed.
 *   2. A secret is only sealed under the key the store records as current
 *      (pt_store_secret_key_id; every rotation records its key in the transaction that
 *      re-encrypts), or under the master key while none is recorded. The store
 *      checks it in the transaction that writes (pt_store_secret_put), so a `secret set` that
 *      loaded its keys before a rotation committed reloads them and seals again.
 *   3. Rotations run one at a time (an exclusive lock on DATA/keys/master.key.lock) and load the
 *      keys again once they hold it.
 *
 * Rotation (`portico secret rotate-master`) with the key in a file:
 *   1. write the new key to DATA/keys/master.key.new (0600, fsynced);
 *   2. re-encrypt every secret under it in one transaction, recording its fingerprint; on a
 *      PostgreSQL store the same transaction seals the store's copies of the JWT and API-key
 *      keys under it (pt_keys_store_reseal), so a node joining afterwards needs the new key;
 *   3. rename master.key.new over master.key.
 * A crash between steps leaves both files; pt_secrets_open loads both and each row names its
 * key, so every secret stays readable, and the next rotation first finishes the old one.
 *
 * With $PORTICO_MASTER_KEY the new key must be given in $PORTICO_NEW_MASTER_KEY (it is never
 * generated here: a key that only this process knew, handed over on stdout, could be lost
 * with every secret); step 2 only, then the operator replaces PORTICO_MASTER_KEY with it.
 * While both variables are set pt_secrets_open loads both keys, so a server started with both
 * reads every secret before, during and after the rotation, and a rotation that stopped can be
 * run again with the same variables. */
#ifndef PT_SECRETS_H
#define PT_SECRETS_H

#include <stddef.h>

#include "auth/keys.h"
#include "store/store.h"

#define PT_SECRET_MAX (64 * 1024) /* bytes of one value */

typedef struct pt_secrets pt_secrets;

/* Loads the master key of datadir: $PORTICO_MASTER_KEY (plus $PORTICO_NEW_MASTER_KEY when
 * set), else DATA/keys/master.key (plus master.key.new when an interrupted rotation left one).
 * Returns 0 and *out (caller frees with pt_secrets_close), or a pt_err with a one-line reason
 * in err (PT_ENOTFOUND: no master key at all; PT_EINVAL: a malformed variable). */
int pt_secrets_open(const char *datadir, pt_secrets **out, char *err, size_t errsz);
void pt_secrets_close(pt_secrets *s); /* NULL is a no-op; wipes the keys */
/* Fingerprint of the master key loaded (borrowed, valid until pt_secrets_close or the next
 * pt_secrets_set or pt_secrets_rotate, which may load the keys again). */
const char *pt_secrets_key_id(const pt_secrets *s);

/* Seals value[0..len) and stores it as secret `name` (created or replaced), under the key the
 * store records as current (invariant 2). When a rotation commits meanwhile it loads the keys
 * again and retries; PT_EUNAVAIL when the current key still cannot be loaded or rotations kept
 * winning (err says to run it again, or that PORTICO_MASTER_KEY is not the current key). Returns
 * 0 or a pt_err with the reason in err; never puts the value in err. */
int pt_secrets_set(pt_secrets *s, pt_store *st, const char *name, const char *value, size_t len,
                   char *err, size_t errsz);
/* pt_secrets_set for a new name only: PT_EEXIST (err says so) when the name is taken, also
 * when a concurrent create won the race; the loser stores nothing. */
int pt_secrets_create(pt_secrets *s, pt_store *st, const char *name, const char *value, size_t len,
                      char *err, size_t errsz);

/* Opens secret `name`. Returns 0 with *value (NUL-terminated, in sodium_malloc'd memory; free
 * with pt_secrets_value_free, which wipes it) and *len; PT_ENOTFOUND when there is no such
 * secret; PT_EINVAL when it is sealed under a master key that is not loaded or does not open
 * (err says which); another pt_err for a store failure. */
int pt_secrets_get(pt_secrets *s, pt_store *st, const char *name, char **value, size_t *len,
                   char *err, size_t errsz);
void pt_secrets_value_free(char *value); /* NULL is a no-op */

/* Re-encrypts every secret under a new master key (see the top of this file): a new
 * DATA/keys/master.key.new, or $PORTICO_NEW_MASTER_KEY when the master key comes from
 * $PORTICO_MASTER_KEY (PT_EINVAL when it is not set: nothing is changed). *count (may be NULL)
 * receives the number of secrets re-encrypted. Returns 0 or a pt_err with the reason in err.
 * After success s uses the new key. */
int pt_secrets_rotate(pt_secrets *s, pt_store *st, size_t *count, char *err, size_t errsz);

#endif
