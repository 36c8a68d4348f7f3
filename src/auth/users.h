/* users.h - the secrets of the admin plane: Argon2id password hashes, the random values of
 * session cookies, CSRF tokens and admin API tokens, the hashes those are stored as, and the
 * lock-out schedule of failed logins. No store access here (store/store_users.h keeps them). */
#ifndef PT_USERS_H
#define PT_USERS_H

#include <stddef.h>
#include <stdint.h>

/* crypto_pwhash_str output, NUL included. */
#define PT_USERS_HASH_MAX 128
/* A random value as unpadded base64url: 32 bytes -> 43 characters and a NUL. */
#define PT_USERS_RANDOM_LEN 44
/* A SHA-256 (hex) of a session id or token secret, NUL included. */
#define PT_USERS_DIGEST_LEN 65
/* Passwords shorter than this are refused. */
#define PT_USERS_PASSWORD_MIN 8
/* Admin API tokens: "pat_" + 8 hex id + "_" + 43 base64url secret. */
#define PT_USERS_TOKEN_LEN 56

/* Hashes password (len bytes) with Argon2id at libsodium's interactive limits into out
 * (PT_USERS_HASH_MAX bytes). Slow on purpose (tens of ms, 64 MiB): never on an event loop.
 * Returns 0, or PT_ENOMEM. */
int pt_users_hash_password(const char *password, size_t len, char *out);
/* Checks password against a stored hash; 1 when it matches, 0 otherwise. hash may be NULL or
 * "" (an unknown user): the same work is done against a fixed hash, so timing does not tell
 * a missing user from a wrong password. */
int pt_users_verify_password(const char *hash, const char *password, size_t len);
/* 32 random bytes as base64url into out (PT_USERS_RANDOM_LEN). Returns 0 or PT_EIO. */
int pt_users_random(char *out);
/* SHA-256 of s (n bytes) as lowercase hex into out (PT_USERS_DIGEST_LEN). */
void pt_users_digest(const char *s, size_t n, char *out);
/* A new admin API token into token (PT_USERS_TOKEN_LEN + 1) and its public id "at_XXXXXXXX"
 * into id (at least 12 bytes). Returns 0 or PT_EIO. */
int pt_users_token_new(char *token, char *id);
/* Is s (n bytes) shaped like a token of pt_users_token_new? */
int pt_users_token_well_formed(const char *s, size_t n);
/* Seconds a user name is locked out for after its n-th failed login in a row: 0 below 5, then
 * 60, doubling with each further failure, at most an hour. */
int64_t pt_users_lockout_user(int failures);
/* The same for a client address, from its 20th failure: several people may share one
 * address (a NAT, a proxy), and one of them guessing must not lock the others out early. */
int64_t pt_users_lockout_addr(int failures);
/* Constant-time equality of two NUL-terminated strings (lengths may differ). */
int pt_users_equal(const char *a, const char *b);

#endif
