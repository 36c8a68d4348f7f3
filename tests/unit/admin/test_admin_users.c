/* test_admin_users.c - the admin plane's secrets (auth/users.c) and its tables in the store
 * (store/store_users.c, store/store_audit.c). */
#include <stdlib.h>
#include <string.h>

#include "auth/users.h"
#include "core/err.h"
#include "store/store_audit.h"
#include "store/store_users.h"
#include "store/store_test.h"
#include "test.h"

TEST(users_lockout_schedule)
{
    ASSERT_EQ(pt_users_lockout_user(4), 0);
    ASSERT_EQ(pt_users_lockout_user(5), 60);
    ASSERT_EQ(pt_users_lockout_user(6), 120);
    ASSERT_EQ(pt_users_lockout_user(50), 3600);
    ASSERT_EQ(pt_users_lockout_addr(19), 0);
    ASSERT_EQ(pt_users_lockout_addr(20), 60);
}

TEST(users_tokens_are_well_formed_and_distinct)
{
    char t1[PT_USERS_TOKEN_LEN + 1], t2[PT_USERS_TOKEN_LEN + 1], id1[12], id2[12];
    ASSERT_EQ(pt_users_token_new(t1, id1), 0);
    ASSERT_EQ(pt_users_token_new(t2, id2), 0);
    ASSERT_EQ(strlen(t1), PT_USERS_TOKEN_LEN);
    ASSERT_TRUE(pt_users_token_well_formed(t1, strlen(t1)));
    ASSERT_TRUE(strcmp(t1, t2) != 0);
    ASSERT_EQ(memcmp(t1 + 4, id1 + 3, 8), 0); /* the id is the token's public part */
    t1[20] = '!';
    ASSERT_FALSE(pt_users_token_well_formed(t1, strlen(t1)));
    ASSERT_FALSE(pt_users_token_well_formed("pat_", 4));
}

TEST(users_password_hash_verifies)
{
    char hash[PT_USERS_HASH_MAX];
    ASSERT_EQ(pt_users_hash_password("s3cret pw", 9, hash), 0);
    ASSERT_TRUE(strncmp(hash, "$argon2id$", 10) == 0);
    ASSERT_TRUE(pt_users_verify_password(hash, "s3cret pw", 9));
    ASSERT_FALSE(pt_users_verify_password(hash, "s3cret pX", 9));
    ASSERT_FALSE(pt_users_verify_password(NULL, "s3cret pw", 9));
    ASSERT_FALSE(pt_users_verify_password("", "", 0));
}

TEST(users_equal_is_exact)
{
    ASSERT_TRUE(pt_users_equal("abc", "abc"));
    ASSERT_FALSE(pt_users_equal("abc", "abd"));
    ASSERT_FALSE(pt_users_equal("abc", "abcd"));
}

/* A fresh data dir with an open store. */
static pt_store *
open_store(char *dir)
{
    char err[256];
    pt_store *st = NULL;
    if (pt_test_store_dir(mkdtemp(dir)) == NULL || pt_store_create(dir, &st, err, sizeof err) != 0)
        return NULL;
    return st;
}

TEST(store_users_roles_sessions_tokens)
{
    char dir[] = "/tmp/pt-test-users-XXXXXX";
    pt_store *st = open_store(dir);
    pt_user u;
    pt_session s;
    pt_admin_token t;
    ASSERT_TRUE(st != NULL);
    ASSERT_EQ(pt_store_user_add(st, "ann", "admin", "h1"), 0);
    ASSERT_EQ(pt_store_user_add(st, "ann", "viewer", "h2"), PT_EEXIST);
    ASSERT_EQ(pt_store_user_add(st, "bob", "owner", "h2"), PT_EINVAL);
    ASSERT_EQ(pt_store_user_add(st, "bob", "editor", "h2"), 0);
    ASSERT_EQ(pt_store_user_set(st, "ann", "viewer", NULL), PT_EEXIST); /* last admin */
    ASSERT_EQ(pt_store_user_rm(st, "ann"), PT_EEXIST);
    ASSERT_EQ(pt_store_user_get(st, "ann", &u), 0);
    ASSERT_STREQ(u.role, "admin");
    ASSERT_STREQ(u.hash, "h1");
    pt_user_clear(&u);

    ASSERT_EQ(pt_store_session_add(st, "d1", "bob", "c1", 1000, 600), 0);
    ASSERT_EQ(pt_store_session_touch(st, "d1", 1500, 600, &s), 0);
    ASSERT_STREQ(s.user, "bob");
    ASSERT_STREQ(s.role, "editor");
    pt_session_clear(&s);
    ASSERT_EQ(pt_store_session_touch(st, "d1", 2101, 600, &s), PT_ENOTFOUND); /* idle */
    ASSERT_EQ(pt_store_session_touch(st, "d1", 2102, 600, &s), PT_ENOTFOUND); /* removed */
    ASSERT_EQ(pt_store_session_add(st, "d3", "bob", "c3", 2900, 600), 0);
    ASSERT_EQ(pt_store_session_add(st, "d2", "bob", "c2", 3000, 50), 0); /* prunes d3 */
    ASSERT_EQ(pt_store_session_touch(st, "d3", 3000, 600, &s), PT_ENOTFOUND);
    ASSERT_EQ(pt_store_user_set(st, "bob", NULL, "h3"), 0); /* a new password ends sessions */
    ASSERT_EQ(pt_store_session_touch(st, "d2", 3001, 600, &s), PT_ENOTFOUND);

    pt_admin_token nt = {
        .id = "at_00000001", .user = "bob", .name = "ci", .created = 10, .expires = 100};
    ASSERT_EQ(pt_store_admin_token_add(st, &nt, "th"), 0);
    ASSERT_EQ(pt_store_admin_token_find(st, "th", 50, &t), 0);
    ASSERT_STREQ(t.role, "editor");
    ASSERT_STREQ(t.name, "ci");
    pt_admin_token_clear(&t);
    ASSERT_EQ(pt_store_admin_token_find(st, "th", 100, &t), PT_ENOTFOUND); /* expired */
    ASSERT_EQ(pt_store_admin_token_revoke(st, "at_00000001"), 0);
    ASSERT_EQ(pt_store_admin_token_find(st, "th", 50, &t), PT_ENOTFOUND);
    ASSERT_EQ(pt_store_admin_token_revoke(st, "at_nope"), PT_ENOTFOUND);
    ASSERT_EQ(pt_store_user_rm(st, "bob"), 0);
    pt_admin_token *list = NULL;
    size_t n = 9;
    ASSERT_EQ(pt_store_admin_token_list(st, NULL, &list, &n), 0);
    ASSERT_EQ(n, 0); /* its tokens went with it */
    pt_store_admin_tokens_free(list, n);
    pt_store_close(st);
    pt_test_rm_tree(dir);
}

TEST(store_login_failures_lock_and_reset)
{
    char dir[] = "/tmp/pt-test-logins-XXXXXX";
    pt_store *st = open_store(dir);
    int64_t retry;
    int failures;
    ASSERT_TRUE(st != NULL);
    for (int i = 1; i <= 4; i++) {
        ASSERT_EQ(pt_store_login_failed(st, "user:x", 1000, pt_users_lockout_user, &failures), 0);
        ASSERT_EQ(failures, i);
    }
    ASSERT_EQ(pt_store_login_blocked(st, "user:x", 1000, &retry), 0);
    ASSERT_EQ(retry, 0);
    ASSERT_EQ(pt_store_login_failed(st, "user:x", 1000, pt_users_lockout_user, &failures), 0);
    ASSERT_EQ(pt_store_login_blocked(st, "user:x", 1010, &retry), 0);
    ASSERT_EQ(retry, 50);
    ASSERT_EQ(pt_store_login_blocked(st, "user:y", 1010, &retry), 0);
    ASSERT_EQ(retry, 0);
    /* An hour without failures forgets them. */
    ASSERT_EQ(pt_store_login_failed(st, "user:x", 1000 + 3601, pt_users_lockout_user, &failures),
              0);
    ASSERT_EQ(failures, 1);
    ASSERT_EQ(pt_store_login_reset(st, "user:x"), 0);
    ASSERT_EQ(pt_store_login_failed(st, "user:x", 5000, pt_users_lockout_user, &failures), 0);
    ASSERT_EQ(failures, 1);
    pt_store_close(st);
    pt_test_rm_tree(dir);
}

TEST(store_audit_lists_newest_first_with_filters)
{
    char dir[] = "/tmp/pt-test-audit-XXXXXX";
    pt_store *st = open_store(dir);
    pt_audit_entry *list = NULL;
    size_t n = 0;
    ASSERT_TRUE(st != NULL);
    ASSERT_EQ(pt_store_audit_add(st, "ann", "user.add", "bob", "{\"role\":\"editor\"}"), 0);
    ASSERT_EQ(pt_store_audit_add(st, "bob", "POST /scripts", "s", NULL), 0);
    ASSERT_EQ(pt_store_audit_list(st, 0, NULL, 0, &list, &n), 0);
    ASSERT_EQ(n, 2);
    ASSERT_STREQ(list[0].actor, "bob");
    ASSERT_STREQ(list[0].detail, "{}");
    ASSERT_STREQ(list[1].detail, "{\"role\":\"editor\"}");
    pt_store_audit_free(list, n);
    ASSERT_EQ(pt_store_audit_list(st, 0, "ann", 10, &list, &n), 0);
    ASSERT_EQ(n, 1);
    ASSERT_STREQ(list[0].object, "bob");
    pt_store_audit_free(list, n);
    ASSERT_EQ(pt_store_audit_list(st, 0, NULL, 1, &list, &n), 0);
    ASSERT_EQ(n, 1);
    pt_store_audit_free(list, n);
    pt_store_close(st);
    pt_test_rm_tree(dir);
}
