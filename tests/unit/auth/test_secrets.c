/* test_secrets.c - unit tests for auth/secrets: sealing, the no-plaintext-at-rest property,
 * binding to the name, wrong master keys, and master key rotation (also interrupted). */
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/keys.h"
#include "auth/secrets.h"
#include "core/err.h"
#include "store/store.h"
#include "test.h"

static const char value[] = "correct horse battery staple \xe2\x9c\x93";

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void
rm_tree(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Does any file under dir contain needle? */
static const char *found_in;
static const char *needle;
static int
scan_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    static char buf[1 << 20];
    (void)ftw;
    if (flag != FTW_F || sb->st_size > (off_t)sizeof buf)
        return 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    if (n > 0 && memmem(buf, (size_t)n, needle, strlen(needle)) != NULL) {
        found_in = path;
        return 1;
    }
    return 0;
}

static int
tree_contains(const char *dir, const char *text)
{
    found_in = NULL;
    needle = text;
    nftw(dir, scan_entry, 16, FTW_PHYS);
    return found_in != NULL;
}

/* A data dir with keys and a store. */
static int
setup(char *dir, pt_store **st, pt_secrets **sec)
{
    char err[512];

    unsetenv("PORTICO_MASTER_KEY");
    unsetenv("PORTICO_NEW_MASTER_KEY");
    if (mkdtemp(dir) == NULL || pt_keys_init(dir, NULL, err, sizeof err) != 0 ||
        pt_store_open(dir, st, err, sizeof err) != 0 ||
        pt_secrets_open(dir, sec, err, sizeof err) != 0)
        return -1;
    return 0;
}

/* Gets a secret and compares it with want (NULL: expects PT_ENOTFOUND). */
static void
expect(pt_secrets *sec, pt_store *st, const char *name, const char *want)
{
    char *v = NULL, err[512];
    size_t len = 0;
    int rc = pt_secrets_get(sec, st, name, &v, &len, err, sizeof err);

    if (want == NULL) {
        if (rc != PT_ENOTFOUND)
            pt_test_fail(__FILE__, __LINE__, "%s: expected not found, got %d", name, rc);
    } else if (rc != 0 || len != strlen(want) || memcmp(v, want, len) != 0) {
        pt_test_fail(__FILE__, __LINE__, "%s: rc %d (%s)", name, rc, rc ? err : "wrong value");
    }
    pt_secrets_value_free(v);
}

TEST(secrets_round_trip_without_plaintext_at_rest)
{
    char dir[] = "/tmp/pt-test-secrets-XXXXXX", err[512];
    pt_store *st = NULL;
    pt_secrets *sec = NULL;
    pt_secret row;

    ASSERT_EQ(setup(dir, &st, &sec), 0);
    ASSERT_EQ(pt_secrets_set(sec, st, "partner-a", value, strlen(value), err, sizeof err), 0);
    ASSERT_EQ(pt_secrets_set(sec, st, "API encryption key", "k2", 2, err, sizeof err), 0);
    expect(sec, st, "partner-a", value);
    expect(sec, st, "API encryption key", "k2");
    expect(sec, st, "nobody", NULL);
    ASSERT_EQ(pt_store_secret_get(st, "partner-a", &row), 0);
    ASSERT_STREQ(row.key_id, pt_secrets_key_id(sec));
    ASSERT_EQ(row.box_len, 24 + strlen(value) + 16);
    pt_secret_clear(&row);
    /* Replace. */
    ASSERT_EQ(pt_secrets_set(sec, st, "partner-a", "v2", 2, err, sizeof err), 0);
    expect(sec, st, "partner-a", "v2");
    ASSERT_EQ(pt_secrets_set(sec, st, "partner-a", value, strlen(value), err, sizeof err), 0);
    pt_store_close(st);
    st = NULL;
    /* Nothing under the data dir (database, WAL, keys) holds the value. */
    ASSERT_FALSE(tree_contains(dir, "correct horse"));
    ASSERT_FALSE(tree_contains(dir, "battery staple"));
    ASSERT_TRUE(tree_contains(dir, "partner-a")); /* names are not secret, and the scan works */
    pt_secrets_close(sec);
    rm_tree(dir);
}

TEST(secrets_are_bound_to_their_name)
{
    char dir[] = "/tmp/pt-test-secrets-XXXXXX", err[512], *v = NULL;
    pt_store *st = NULL;
    pt_secrets *sec = NULL;
    pt_secret a, b;
    size_t len;

    ASSERT_EQ(setup(dir, &st, &sec), 0);
    ASSERT_EQ(pt_secrets_set(sec, st, "a", "value-a", 7, err, sizeof err), 0);
    ASSERT_EQ(pt_secrets_set(sec, st, "b", "value-b", 7, err, sizeof err), 0);
    /* Someone with write access to the store moves a's box under b. */
    ASSERT_EQ(pt_store_secret_get(st, "a", &a), 0);
    ASSERT_EQ(pt_store_secret_get(st, "b", &b), 0);
    free(b.box);
    b.box = a.box;
    b.box_len = a.box_len;
    a.box = NULL;
    ASSERT_EQ(pt_store_secret_put(st, &b), 0);
    ASSERT_EQ(pt_secrets_get(sec, st, "b", &v, &len, err, sizeof err), PT_EINVAL);
    ASSERT_TRUE(strstr(err, "does not decrypt") != NULL);
    ASSERT_TRUE(strstr(err, "value-") == NULL);
    pt_secret_clear(&a);
    pt_secret_clear(&b);
    pt_secrets_close(sec);
    pt_store_close(st);
    rm_tree(dir);
}

TEST(secrets_name_the_master_key_they_need)
{
    char dir[] = "/tmp/pt-test-secrets-XXXXXX", err[512], *v = NULL;
    pt_store *st = NULL;
    pt_secrets *sec = NULL, *other = NULL;
    size_t len;

    ASSERT_EQ(setup(dir, &st, &sec), 0);
    ASSERT_EQ(pt_secrets_set(sec, st, "s", "v", 1, err, sizeof err), 0);
    setenv("PORTICO_MASTER_KEY", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
           1);
    ASSERT_EQ(pt_secrets_open(dir, &other, err, sizeof err), 0);
    unsetenv("PORTICO_MASTER_KEY");
    ASSERT_EQ(pt_secrets_get(other, st, "s", &v, &len, err, sizeof err), PT_EINVAL);
    ASSERT_TRUE(strstr(err, pt_secrets_key_id(sec)) != NULL);
    ASSERT_TRUE(strstr(err, "PORTICO_MASTER_KEY") != NULL);
    pt_secrets_close(other);
    pt_secrets_close(sec);
    pt_store_close(st);
    rm_tree(dir);
}

TEST(secrets_rotate_master)
{
    char dir[] = "/tmp/pt-test-secrets-XXXXXX", err[512], newkey[65], path[4200];
    char old_kid[PT_KEY_ID_LEN + 1], text[80];
    pt_store *st = NULL;
    pt_secrets *sec = NULL, *reopened = NULL;
    pt_secret row;
    size_t count = 0;

    ASSERT_EQ(setup(dir, &st, &sec), 0);
    ASSERT_EQ(pt_secrets_set(sec, st, "one", "1", 1, err, sizeof err), 0);
    ASSERT_EQ(pt_secrets_set(sec, st, "two", "22", 2, err, sizeof err), 0);
    snprintf(old_kid, sizeof old_kid, "%s", pt_secrets_key_id(sec));
    ASSERT_EQ(pt_secrets_rotate(sec, st, newkey, &count, err, sizeof err), 0);
    ASSERT_EQ(count, 2);
    ASSERT_STREQ(newkey, ""); /* the key file holds it */
    ASSERT_TRUE(strcmp(old_kid, pt_secrets_key_id(sec)) != 0);
    expect(sec, st, "one", "1");
    expect(sec, st, "two", "22");
    ASSERT_EQ(pt_store_secret_get(st, "two", &row), 0);
    ASSERT_STREQ(row.key_id, pt_secrets_key_id(sec));
    pt_secret_clear(&row);
    snprintf(path, sizeof path, "%s/keys/master.key.new", dir);
    ASSERT_TRUE(access(path, F_OK) != 0);
    /* A fresh process sees the new key in master.key. */
    ASSERT_EQ(pt_secrets_open(dir, &reopened, err, sizeof err), 0);
    ASSERT_STREQ(pt_secrets_key_id(reopened), pt_secrets_key_id(sec));
    expect(reopened, st, "one", "1");
    pt_secrets_close(reopened);
    reopened = NULL;

    /* A rotation that stopped after re-encrypting, before the rename: master.key is the old
     * key, master.key.new the one the rows use. Everything stays readable, and the next
     * rotation finishes it. */
    snprintf(path, sizeof path, "%s/keys/master.key", dir);
    int fd = open(path, O_RDONLY);
    ASSERT_TRUE(fd >= 0);
    ASSERT_EQ(read(fd, text, sizeof text), 65);
    close(fd);
    char newpath[4200];
    snprintf(newpath, sizeof newpath, "%s/keys/master.key.new", dir);
    ASSERT_EQ(rename(path, newpath), 0);
    unsigned char *stale = pt_key_new();
    ASSERT_EQ(pt_key_write(path, stale, 0, err, sizeof err), 0);
    pt_key_free(stale);
    ASSERT_EQ(pt_secrets_open(dir, &reopened, err, sizeof err), 0);
    expect(reopened, st, "two", "22");
    ASSERT_EQ(pt_secrets_rotate(reopened, st, newkey, &count, err, sizeof err), 0);
    ASSERT_EQ(count, 2);
    ASSERT_TRUE(access(newpath, F_OK) != 0);
    expect(reopened, st, "one", "1");
    expect(reopened, st, "two", "22");
    pt_secrets_close(reopened);
    pt_secrets_close(sec);
    pt_store_close(st);
    rm_tree(dir);
}

TEST(secrets_rotate_with_the_key_in_the_environment)
{
    char dir[] = "/tmp/pt-test-secrets-XXXXXX", err[512], newkey[65];
    pt_store *st = NULL;
    pt_secrets *sec = NULL;
    size_t count = 0;

    ASSERT_TRUE(mkdtemp(dir) != NULL);
    setenv("PORTICO_MASTER_KEY", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
           1);
    ASSERT_EQ(pt_keys_init(dir, NULL, err, sizeof err), 0);
    char path[4200];
    snprintf(path, sizeof path, "%s/keys/master.key", dir);
    ASSERT_TRUE(access(path, F_OK) != 0); /* not written while the variable holds it */
    ASSERT_EQ(pt_store_open(dir, &st, err, sizeof err), 0);
    ASSERT_EQ(pt_secrets_open(dir, &sec, err, sizeof err), 0);
    ASSERT_EQ(pt_secrets_set(sec, st, "s", "v", 1, err, sizeof err), 0);
    ASSERT_EQ(pt_secrets_rotate(sec, st, newkey, &count, err, sizeof err), 0);
    ASSERT_EQ(strlen(newkey), 64);
    pt_secrets_close(sec);
    sec = NULL;
    setenv("PORTICO_MASTER_KEY", newkey, 1);
    ASSERT_EQ(pt_secrets_open(dir, &sec, err, sizeof err), 0);
    expect(sec, st, "s", "v");
    unsetenv("PORTICO_MASTER_KEY");
    pt_secrets_close(sec);
    pt_store_close(st);
    rm_tree(dir);
}
