/* keys.h - the install's key files: 256-bit keys in DATA/keys/, created once by `portico init`
 * and loaded into locked, guarded memory (sodium_malloc) that is wiped when freed.
 *
 *   DATA/keys/jwt.key     HS256 signing key of the tokens `portico token create` issues
 *   DATA/keys/apikey.key  key of the keyed hash (BLAKE2b) that API keys are stored as
 *   DATA/keys/master.key  master key of the secret store (secrets.h), unless
 *                         $PORTICO_MASTER_KEY holds it
 *
 * A key file holds the key as 64 hex digits and a newline, mode 0600 in a 0700 directory.
 * $PORTICO_MASTER_KEY takes the same 64 hex digits or 44 characters of standard base64. */
#ifndef PT_KEYS_H
#define PT_KEYS_H

#include <stddef.h>

#include "store/store.h"

#define PT_KEY_BYTES 32
#define PT_KEY_ID_LEN 16 /* hex digits of a key fingerprint, without the NUL */

enum pt_key_kind { PT_KEY_JWT, PT_KEY_APIKEY, PT_KEY_MASTER };

/* Creates DATA/keys and every key file that is missing; never overwrites one. The master key
 * file is not created while $PORTICO_MASTER_KEY is set (the operator keeps it elsewhere).
 * *created (may be NULL) receives the number of files written. Returns 0, or a pt_err with a
 * one-line reason in err. */
int pt_keys_init(const char *datadir, int *created, char *err, size_t errsz);

/* Path of a key file into out ("DATA/keys/jwt.key"). Returns 0 or PT_EINVAL (too long). */
int pt_keys_path(const char *datadir, enum pt_key_kind kind, char *out, size_t outsz);

/* Loads a key: the master key from $PORTICO_MASTER_KEY when set, else from its file. A file
 * that other users can read is refused, as ssh refuses such keys. Returns 0 and *key (caller
 * frees with pt_keys_free), PT_ENOTFOUND when there is no such key, or PT_EINVAL / PT_EIO with a
 * one-line reason in err. */
int pt_keys_load(const char *datadir, enum pt_key_kind kind, unsigned char **key, char *err,
                 size_t errsz);
/* Loads the key stored in file `path` (same rules). */
int pt_keys_load_file(const char *path, unsigned char **key, char *err, size_t errsz);

/* A new random key in sodium_malloc'd memory; NULL when out of memory. Free with
 * pt_keys_free. */
unsigned char *pt_keys_new(void);
/* Wipes and frees a key from pt_keys_load or pt_keys_new. NULL is a no-op. */
void pt_keys_free(unsigned char *key);

/* Parses a key written as 64 hex digits or 44 characters of base64 (surrounding white space
 * ignored) into out (PT_KEY_BYTES). Returns 0 or PT_EINVAL. */
int pt_keys_parse(const char *text, size_t n, unsigned char *out);

/* Writes key to path (0600) through a temporary file: with replace == 0 an existing file is
 * kept and PT_EEXIST returned; with replace == 1 it is replaced atomically. The file and its
 * directory are fsynced. Returns 0 or a pt_err with the reason in err. */
int pt_keys_write(const char *path, const unsigned char *key, int replace, char *err, size_t errsz);

/* The key's public fingerprint: 16 hex digits of an unkeyed BLAKE2b hash of it, NUL-terminated in
 * out (at least PT_KEY_ID_LEN + 1 bytes). Reveals nothing about the key. */
void pt_keys_id(const unsigned char *key, char *out);

/* A store several nodes share (PostgreSQL) keeps the install's JWT signing key and API-key
 * hashing key too, sealed under the master key (XChaCha20-Poly1305, settings rows
 * install_key_jwt / install_key_apikey), so that a token made on one node verifies on all:
 *   - a key the store lacks is sealed from DATA/keys into it (the first node);
 *   - a key the store has is opened with this node's master key and written to DATA/keys
 *     when missing there (a joining node), or, with replace_local, when different (keys that
 *     this run of init has just made); a different key otherwise is refused;
 *   - a master key that does not open them is refused, naming both fingerprints.
 * The master key itself never enters the store. Returns 0 or a pt_err with a one-line reason
 * in err. */
int pt_keys_store_sync(const char *datadir, pt_store *st, int replace_local, char *err,
                       size_t errsz);
/* A master key rotation (secrets.c) seals the store's copies of those keys under the new
 * master key `to`, in the caller's transaction, so that a node joining with the new key opens
 * them: each copy is opened with the first of from[0..nfrom) (entries may be NULL) or `to`
 * that opens it, and sealed again under `to`. A store without copies (embedded SQLite) is left
 * alone. Keys are borrowed. Returns 0 or a pt_err with a one-line reason in err. */
int pt_keys_store_reseal(pt_store *st, const unsigned char *const *from, size_t nfrom,
                         const unsigned char *to, char *err, size_t errsz);
/* Does the store hold an install's sealed keys? 1, 0, or a pt_err. */
int pt_keys_store_installed(pt_store *st);

/* Calls sodium_init() once; returns 0 or PT_EIO. Every function above calls it. */
int pt_keys_sodium_init(void);

#endif
