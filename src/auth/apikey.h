/* apikey.h - Portico's built-in API keys: generation, their recognisable shape, and the keyed
 * hash they are stored and looked up as.
 *
 * A key is "pt_live_" followed by 40 characters of [A-Za-z0-9] (238 random bits). The store
 * never sees a key, only BLAKE2b-256 of it keyed with the install's apikey.key (keys.h): a
 * stolen metadata store cannot be used to authenticate, nor searched offline without that
 * key. Lookup hashes the presented key and compares hashes in constant time (auth.c). */
#ifndef PT_APIKEY_H
#define PT_APIKEY_H

#include <stddef.h>

#define PT_APIKEY_PREFIX "pt_live_"
#define PT_APIKEY_PREFIX_LEN 8
#define PT_APIKEY_LEN (PT_APIKEY_PREFIX_LEN + 40)
#define PT_APIKEY_HASH_BYTES 32
#define PT_APIKEY_HINT_LEN (PT_APIKEY_PREFIX_LEN + 4) /* shown by `apikey list` */

/* Writes a new random key, NUL-terminated, into out (at least PT_APIKEY_LEN + 1 bytes).
 * Returns 0 or PT_EIO when libsodium cannot start. */
int pt_apikey_generate(char *out);

/* Does s[0..n) have the shape of a key (prefix, length, alphabet)? Depends only on public
 * facts, so an early "no" leaks nothing. */
int pt_apikey_well_formed(const char *s, size_t n);

/* out = BLAKE2b-256(key = hash_key (PT_KEY_BYTES), message = s[0..n)). */
void pt_apikey_hash(const unsigned char *hash_key, const char *s, size_t n, unsigned char *out);

#endif
