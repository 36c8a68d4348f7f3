/* store_users.h - the admin plane's people in the metadata store: users and their roles,
 * login sessions, admin API tokens, and the failed-login counters that throttle guessing.
 *
 * Nothing here bumps the change counter: no worker serves a public endpoint differently
 * because of a user, a session or a token. Passwords are stored only as Argon2id strings,
 * sessions and tokens only as hashes of their secret part (auth/users.h makes both). */
#ifndef PT_STORE_USERS_H
#define PT_STORE_USERS_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* Is role one of "admin", "editor", "viewer"? */
int pt_store_role_valid(const char *role);

typedef struct pt_user {
    char *name;
    char *role;      /* "admin", "editor" or "viewer" */
    char *hash;      /* crypto_pwhash_str string; "" in lists */
    int64_t created; /* unix seconds */
} pt_user;

/* Adds a user (name as pt_store_name_valid, role as pt_store_role_valid, hash borrowed).
 * PT_EEXIST when the name is taken, PT_EINVAL for a bad name or role. */
int pt_store_user_add(pt_store *st, const char *name, const char *role, const char *hash);
/* One user with its hash. PT_ENOTFOUND. Caller frees the fields with pt_user_clear. */
int pt_store_user_get(pt_store *st, const char *name, pt_user *out);
/* Every user by name, without hashes. Caller frees with pt_store_users_free. */
int pt_store_user_list(pt_store *st, pt_user **out, size_t *n);
/* Changes a user's role and/or password hash (NULL keeps it; both borrowed). A new password
 * ends the user's sessions. PT_ENOTFOUND, PT_EINVAL (bad role), PT_EEXIST when the change
 * would leave no admin. */
int pt_store_user_set(pt_store *st, const char *name, const char *role, const char *hash);
/* Removes a user with its sessions and tokens. PT_ENOTFOUND, PT_EEXIST when it is the last
 * admin. */
int pt_store_user_rm(pt_store *st, const char *name);
void pt_user_clear(pt_user *u); /* frees the fields; NULL is a no-op */
void pt_store_users_free(pt_user *list, size_t n);

/* ---- Sessions ---------------------------------------------------------------------------- */

typedef struct pt_session {
    char *user;
    char *role;
    char *csrf;                 /* the session's CSRF token */
    int64_t created, last_seen; /* unix seconds */
} pt_session;

/* Records a session: id_hash is the hash of the cookie's value (hex), csrf its CSRF token,
 * both borrowed. Sessions of anyone idle for more than `idle` seconds are removed on the way.
 * PT_ENOTFOUND for an unknown user. */
int pt_store_session_add(pt_store *st, const char *id_hash, const char *user, const char *csrf,
                         int64_t now, int64_t idle);
/* Looks a session up and, when it was seen within `idle` seconds of now, marks it seen now
 * and fills out (caller frees with pt_session_clear). An idle session is removed.
 * PT_ENOTFOUND (unknown or expired: the message says which). */
int pt_store_session_touch(pt_store *st, const char *id_hash, int64_t now, int64_t idle,
                           pt_session *out);
/* Ends a session; an unknown one is not an error. */
int pt_store_session_rm(pt_store *st, const char *id_hash);
void pt_session_clear(pt_session *s); /* NULL is a no-op */

/* ---- Admin API tokens -------------------------------------------------------------------- */

typedef struct pt_admin_token {
    char *id;   /* public id, e.g. "at_1f2e3d4c" */
    char *user; /* whose rights it carries */
    char *name; /* a label for the audit log ("ci-deploy"); the user's name by default */
    char *role; /* the user's role (filled by find and list) */
    int64_t created;
    int64_t expires;   /* 0: never */
    int64_t revoked;   /* 0: valid */
    int64_t last_used; /* 0: never */
} pt_admin_token;

/* Records token t (id, user, name, created, expires read from t) with the hash of its secret
 * (hex, borrowed). PT_ENOTFOUND for an unknown user, PT_EEXIST when the id is taken. */
int pt_store_admin_token_add(pt_store *st, const pt_admin_token *t, const char *hash);
/* The valid (not revoked, not expired at now) token with this hash; marks it used. PT_ENOTFOUND
 * otherwise. Caller frees with pt_admin_token_clear. */
int pt_store_admin_token_find(pt_store *st, const char *hash, int64_t now, pt_admin_token *out);
/* Tokens of user (NULL: everyone), oldest first. Caller frees with pt_store_admin_tokens_free. */
int pt_store_admin_token_list(pt_store *st, const char *user, pt_admin_token **out, size_t *n);
/* Revokes a token by id (a second revoke keeps the first time). PT_ENOTFOUND. */
int pt_store_admin_token_revoke(pt_store *st, const char *id);
void pt_admin_token_clear(pt_admin_token *t); /* NULL is a no-op */
void pt_store_admin_tokens_free(pt_admin_token *list, size_t n);

/* ---- Failed logins ----------------------------------------------------------------------- */

/* 0 and *retry_after 0 when key ("user:NAME", "addr:IP") may try to log in at now, else
 * *retry_after is the seconds left of its lock-out. */
int pt_store_login_blocked(pt_store *st, const char *key, int64_t now, int64_t *retry_after);
/* Counts a failed login of key at now (failures older than an hour are forgotten first, this
 * key's and any other's no longer locked out) and locks it out for lock_for(failures) seconds
 * (0: not locked). *failures gets the count. */
int pt_store_login_failed(pt_store *st, const char *key, int64_t now,
                          int64_t (*lock_for)(int failures), int *failures);
/* Forgets key's failures (after a successful login). */
int pt_store_login_reset(pt_store *st, const char *key);

#endif
