/* test_secrets.c - unit tests for auth/secrets: sealing, the no-plaintext-at-rest property,
 * binding to the name, wrong master keys, master key rotation (also interrupted, and with the
 * key in the environment), and `secret set` racing a rotation. */
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "auth/keys.h"
#include "auth/secrets.h"
#include "core/err.h"
#include "store/store.h"
#include "store/store_test.h"
#include "test.h"

static const char value[] = "correct horse battery staple \xe2\x9c\x93";

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
    if (pt_test_store_dir(mkdtemp(dir)) == NULL || pt_keys_init(dir, NULL, err, sizeof err) != 0 ||
        pt_store_create(dir, st, err, sizeof err) != 0 ||
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
    /* names are not secret, and the scan works (on SQLite, whose file is in the data dir) */
    ASSERT_TRUE(pt_test_pg_dsn() != NULL || tree_contains(dir, "partner-a"));
    pt_secrets_close(sec);
    pt_test_rm_tree(dir);
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
    pt_test_rm_tree(dir);
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
    pt_test_rm_tree(dir);
}

TEST(secrets_rotate_master)
{
    char dir[] = "/tmp/pt-test-secrets-XXXXXX", err[512], path[4200];
    char old_kid[PT_KEY_ID_LEN + 1], text[80];
    pt_store *st = NULL;
    pt_secrets *sec = NULL, *reopened = NULL;
    pt_secret row;
    size_t count = 0;

    ASSERT_EQ(setup(dir, &st, &sec), 0);
    ASSERT_EQ(pt_secrets_set(sec, st, "one", "1", 1, err, sizeof err), 0);
    ASSERT_EQ(pt_secrets_set(sec, st, "two", "22", 2, err, sizeof err), 0);
    snprintf(old_kid, sizeof old_kid, "%s", pt_secrets_key_id(sec));
    ASSERT_EQ(pt_secrets_rotate(sec, st, &count, err, sizeof err), 0);
    ASSERT_EQ(count, 2);
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
    unsigned char *stale = pt_keys_new();
    ASSERT_EQ(pt_keys_write(path, stale, 0, err, sizeof err), 0);
    pt_keys_free(stale);
    ASSERT_EQ(pt_secrets_open(dir, &reopened, err, sizeof err), 0);
    expect(reopened, st, "two", "22");
    /* A secret set now is sealed under the key the rows use (master.key.new), not under the
     * master.key the rotation is about to replace. */
    ASSERT_EQ(pt_secrets_set(reopened, st, "three", "333", 3, err, sizeof err), 0);
    ASSERT_EQ(pt_store_secret_get(st, "three", &row), 0);
    ASSERT_STREQ(row.key_id, pt_secrets_key_id(sec));
    pt_secret_clear(&row);
    ASSERT_EQ(pt_secrets_rotate(reopened, st, &count, err, sizeof err), 0);
    ASSERT_EQ(count, 3);
    ASSERT_TRUE(access(newpath, F_OK) != 0);
    expect(reopened, st, "one", "1");
    expect(reopened, st, "two", "22");
    expect(reopened, st, "three", "333");
    pt_secrets_close(reopened);
    pt_secrets_close(sec);
    pt_store_close(st);
    pt_test_rm_tree(dir);
}

/* A store holding sealed copies of the install keys (as a PostgreSQL store does; the settings
 * rows are the same on SQLite): a rotation re-seals them in its transaction, so the node's new
 * master key opens them and the old one no longer does. A copy no loaded key opens stops the
 * rotation with nothing changed. */
TEST(secrets_rotate_master_reseals_the_install_keys)
{
    char dir[] = "/tmp/pt-test-secrets-XXXXXX", err[512], old_kid[PT_KEY_ID_LEN + 1];
    char *jwt_before = NULL, *jwt_after = NULL;
    pt_store *st = NULL;
    pt_secrets *sec = NULL;
    pt_secret row;
    size_t count = 0;

    ASSERT_EQ(setup(dir, &st, &sec), 0);
    ASSERT_EQ(pt_secrets_set(sec, st, "one", "1", 1, err, sizeof err), 0);
    ASSERT_EQ(pt_keys_store_sync(dir, st, 0, err, sizeof err), 0);
    ASSERT_EQ(pt_store_setting_get(st, "install_key_jwt", &jwt_before), 0);
    snprintf(old_kid, sizeof old_kid, "%s", pt_secrets_key_id(sec));
    ASSERT_EQ(pt_secrets_rotate(sec, st, &count, err, sizeof err), 0);
    ASSERT_EQ(pt_store_setting_get(st, "install_key_jwt", &jwt_after), 0);
    ASSERT_TRUE(strcmp(jwt_before, jwt_after) != 0);
    ASSERT_TRUE(strstr(jwt_after, pt_secrets_key_id(sec)) != NULL);
    /* The node's master key is the new one now (master.key renamed), and it opens them. */
    ASSERT_EQ(pt_keys_store_sync(dir, st, 0, err, sizeof err), 0);

    /* A copy sealed under a key nobody holds: the rotation refuses, secrets stay as they were. */
    ASSERT_EQ(pt_store_setting_set(st, "install_key_apikey", jwt_before), 0);
    snprintf(old_kid, sizeof old_kid, "%s", pt_secrets_key_id(sec));
    ASSERT_EQ(pt_secrets_rotate(sec, st, &count, err, sizeof err), PT_EIO);
    ASSERT_TRUE(strstr(err, "API-key hashing key") != NULL);
    ASSERT_EQ(pt_store_secret_get(st, "one", &row), 0);
    ASSERT_STREQ(row.key_id, old_kid);
    pt_secret_clear(&row);
    expect(sec, st, "one", "1");
    free(jwt_before);
    free(jwt_after);
    pt_secrets_close(sec);
    pt_store_close(st);
    pt_test_rm_tree(dir);
}

static const char key0[] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
static const char key1[] = "f0e1d2c3b4a5968778695a4b3c2d1e0f00112233445566778899aabbccddeeff";

/* The fingerprint of a key given in hex. */
static void
kid_of(const char *hex, char kid[PT_KEY_ID_LEN + 1])
{
    unsigned char k[PT_KEY_BYTES];

    kid[0] = '\0';
    if (pt_keys_parse(hex, strlen(hex), k) == 0)
        pt_keys_id(k, kid);
}

TEST(secrets_rotate_with_the_key_in_the_environment)
{
    char dir[] = "/tmp/pt-test-secrets-XXXXXX", err[512], path[4200];
    char kid0[PT_KEY_ID_LEN + 1], kid1[PT_KEY_ID_LEN + 1];
    pt_store *st = NULL;
    pt_secrets *sec = NULL, *both = NULL, *old = NULL;
    pt_secret row;
    size_t count = 0;

    kid_of(key0, kid0);
    kid_of(key1, kid1);
    ASSERT_TRUE(mkdtemp(dir) != NULL);
    unsetenv("PORTICO_NEW_MASTER_KEY");
    setenv("PORTICO_MASTER_KEY", key0, 1);
    ASSERT_EQ(pt_keys_init(dir, NULL, err, sizeof err), 0);
    snprintf(path, sizeof path, "%s/keys/master.key", dir);
    ASSERT_TRUE(access(path, F_OK) != 0); /* not written while the variable holds it */
    ASSERT_EQ(pt_store_create(dir, &st, err, sizeof err), 0);
    ASSERT_EQ(pt_secrets_open(dir, &sec, err, sizeof err), 0);
    ASSERT_EQ(pt_secrets_set(sec, st, "s", "v", 1, err, sizeof err), 0);

    /* No new key given: refused before anything changes. A key generated here would exist
     * only in this process until printed, and every secret with it. */
    ASSERT_EQ(pt_secrets_rotate(sec, st, &count, err, sizeof err), PT_EINVAL);
    ASSERT_TRUE(strstr(err, "PORTICO_NEW_MASTER_KEY") != NULL);
    ASSERT_EQ(count, 0);
    ASSERT_STREQ(pt_secrets_key_id(sec), kid0);
    ASSERT_EQ(pt_store_secret_get(st, "s", &row), 0);
    ASSERT_STREQ(row.key_id, kid0);
    pt_secret_clear(&row);
    ASSERT_EQ(pt_store_secret_key_id(st, path, sizeof path), PT_ENOTFOUND);
    expect(sec, st, "s", "v");
    pt_secrets_close(sec);
    sec = NULL;

    /* A malformed new key is refused when the keys are loaded. */
    setenv("PORTICO_NEW_MASTER_KEY", "not a key", 1);
    ASSERT_EQ(pt_secrets_open(dir, &sec, err, sizeof err), PT_EINVAL);
    ASSERT_TRUE(strstr(err, "PORTICO_NEW_MASTER_KEY is malformed") != NULL);
    ASSERT_TRUE(sec == NULL);

    /* With the new key in PORTICO_NEW_MASTER_KEY. */
    setenv("PORTICO_NEW_MASTER_KEY", key1, 1);
    ASSERT_EQ(pt_secrets_open(dir, &sec, err, sizeof err), 0);
    ASSERT_EQ(pt_secrets_open(dir, &both, err, sizeof err), 0); /* a server started with both */
    ASSERT_EQ(pt_secrets_rotate(sec, st, &count, err, sizeof err), 0);
    ASSERT_EQ(count, 1);
    ASSERT_STREQ(pt_secrets_key_id(sec), kid1);
    ASSERT_EQ(pt_store_secret_key_id(st, path, sizeof path), 0);
    ASSERT_STREQ(path, kid1);
    ASSERT_EQ(pt_store_secret_get(st, "s", &row), 0);
    ASSERT_STREQ(row.key_id, kid1);
    pt_secret_clear(&row);
    /* Loaded before the rotation with both variables: reads on, and seals under the new key. */
    expect(both, st, "s", "v");
    ASSERT_EQ(pt_secrets_set(both, st, "t", "w", 1, err, sizeof err), 0);
    ASSERT_EQ(pt_store_secret_get(st, "t", &row), 0);
    ASSERT_STREQ(row.key_id, kid1);
    pt_secret_clear(&row);
    /* Running it again with the same variables (did it finish?) is harmless. */
    ASSERT_EQ(pt_secrets_rotate(both, st, &count, err, sizeof err), 0);
    ASSERT_EQ(count, 2);
    pt_secrets_close(both);
    both = NULL;
    pt_secrets_close(sec);
    sec = NULL;

    /* The operator moves the new key into PORTICO_MASTER_KEY. */
    unsetenv("PORTICO_NEW_MASTER_KEY");
    setenv("PORTICO_MASTER_KEY", key1, 1);
    ASSERT_EQ(pt_secrets_open(dir, &sec, err, sizeof err), 0);
    expect(sec, st, "s", "v");
    expect(sec, st, "t", "w");

    /* Still the old key somewhere: reads say which key is needed, and a set is refused
     * instead of sealing under the retired key. */
    setenv("PORTICO_MASTER_KEY", key0, 1);
    ASSERT_EQ(pt_secrets_open(dir, &old, err, sizeof err), 0);
    ASSERT_EQ(pt_secrets_set(old, st, "u", "x", 1, err, sizeof err), PT_EUNAVAIL);
    ASSERT_TRUE(strstr(err, kid1) != NULL);
    ASSERT_TRUE(strstr(err, "PORTICO_MASTER_KEY") != NULL);
    ASSERT_EQ(pt_store_secret_get(st, "u", &row), PT_ENOTFOUND);
    unsetenv("PORTICO_MASTER_KEY");

    /* No key is written to the data dir. */
    pt_store_close(st);
    st = NULL;
    ASSERT_FALSE(tree_contains(dir, key0));
    ASSERT_FALSE(tree_contains(dir, key1));
    pt_secrets_close(old);
    pt_secrets_close(sec);
    pt_test_rm_tree(dir);
}

/* master.key is lost after a rotation recorded it, and `portico init` writes a new one: sets
 * are refused (the store names another key) until the lost secrets are removed and a rotation
 * records the new key. */
TEST(secrets_recover_from_a_lost_master_key)
{
    char dir[] = "/tmp/pt-test-secrets-XXXXXX", err[512], path[4200];
    pt_store *st = NULL;
    pt_secrets *sec = NULL, *fresh = NULL;
    size_t count = 0;

    ASSERT_EQ(setup(dir, &st, &sec), 0);
    ASSERT_EQ(pt_secrets_set(sec, st, "gone", "1", 1, err, sizeof err), 0);
    ASSERT_EQ(pt_secrets_rotate(sec, st, &count, err, sizeof err), 0);
    snprintf(path, sizeof path, "%s/keys/master.key", dir);
    ASSERT_EQ(unlink(path), 0);
    ASSERT_EQ(pt_keys_init(dir, NULL, err, sizeof err), 0);
    ASSERT_EQ(pt_secrets_open(dir, &fresh, err, sizeof err), 0);
    ASSERT_EQ(pt_secrets_set(fresh, st, "new", "2", 1, err, sizeof err), PT_EUNAVAIL);
    ASSERT_TRUE(strstr(err, "rotate-master") != NULL);
    /* A rotation cannot open the lost secret ... */
    ASSERT_EQ(pt_secrets_rotate(fresh, st, &count, err, sizeof err), PT_EINVAL);
    ASSERT_TRUE(strstr(err, "gone") != NULL);
    snprintf(path, sizeof path, "%s/keys/master.key.new", dir);
    ASSERT_TRUE(access(path, F_OK) != 0); /* rolled back: the unused key file is removed */
    /* ... so it is removed first. */
    ASSERT_EQ(pt_store_secret_rm(st, "gone"), 0);
    ASSERT_EQ(pt_secrets_rotate(fresh, st, &count, err, sizeof err), 0);
    ASSERT_EQ(count, 0);
    ASSERT_EQ(pt_secrets_set(fresh, st, "new", "2", 1, err, sizeof err), 0);
    expect(fresh, st, "new", "2");
    pt_secrets_close(fresh);
    pt_secrets_close(sec);
    pt_store_close(st);
    pt_test_rm_tree(dir);
}

/* pt_store_secret_rewrite callback that leaves a row as it is. */
static int
keep_row(void *ctx, pt_secret *row)
{
    (void)ctx;
    (void)row;
    return 0;
}

TEST(secrets_set_after_a_rotation_never_seals_under_the_retired_key)
{
    char dir[] = "/tmp/pt-test-secrets-XXXXXX", err[512], old_kid[PT_KEY_ID_LEN + 1];
    unsigned char box[64] = {0};
    pt_store *st = NULL;
    pt_secrets *sec = NULL, *rot = NULL, *fresh = NULL;
    pt_secret row;
    size_t count = 0;

    ASSERT_EQ(setup(dir, &st, &sec), 0); /* sec: `secret set`, keys loaded before the rotation */
    snprintf(old_kid, sizeof old_kid, "%s", pt_secrets_key_id(sec));
    ASSERT_EQ(pt_secrets_open(dir, &rot, err, sizeof err), 0);
    ASSERT_EQ(pt_secrets_set(rot, st, "a", "1", 1, err, sizeof err), 0);
    ASSERT_EQ(pt_secrets_rotate(rot, st, &count, err, sizeof err), 0);
    ASSERT_TRUE(strcmp(old_kid, pt_secrets_key_id(rot)) != 0);

    /* The store refuses a row sealed under the key the rotation retired. */
    row = (pt_secret){.name = "raw", .key_id = old_kid, .box = box, .box_len = sizeof box};
    ASSERT_EQ(pt_store_secret_put(st, &row), PT_EUNAVAIL);
    ASSERT_EQ(pt_store_secret_get(st, "raw", &row), PT_ENOTFOUND);
    /* A rewrite must bring every row under the key it records, or it records nothing. */
    ASSERT_EQ(pt_store_secret_rewrite(st, "0123456789abcdef", keep_row, NULL), PT_EINVAL);
    ASSERT_EQ(pt_store_secret_key_id(st, err, sizeof err), 0);
    ASSERT_STREQ(err, pt_secrets_key_id(rot));

    /* pt_secrets_set loads the keys again and seals under the new one. */
    ASSERT_EQ(pt_secrets_set(sec, st, "late", "2", 1, err, sizeof err), 0);
    ASSERT_STREQ(pt_secrets_key_id(sec), pt_secrets_key_id(rot));
    ASSERT_EQ(pt_store_secret_get(st, "late", &row), 0);
    ASSERT_STREQ(row.key_id, pt_secrets_key_id(rot));
    pt_secret_clear(&row);
    ASSERT_EQ(pt_secrets_open(dir, &fresh, err, sizeof err), 0);
    expect(fresh, st, "a", "1");
    expect(fresh, st, "late", "2");
    pt_secrets_close(fresh);
    pt_secrets_close(rot);
    pt_secrets_close(sec);
    pt_store_close(st);
    pt_test_rm_tree(dir);
}

/* `secret set` in one process while another rotates again and again: every set that succeeds
 * is readable afterwards with the keys on file, and none that fails leaves a row behind. */
TEST(secrets_set_racing_rotations_never_loses_a_secret)
{
    enum { ROTATIONS = 12, MAX_SETS = 20000 };
    char dir[] = "/tmp/pt-test-secrets-XXXXXX", err[512], name[32], want[32];
    char current[PT_KEY_ID_LEN + 1];
    static unsigned char ok[MAX_SETS];
    pt_store *st = NULL;
    pt_secrets *sec = NULL, *fresh = NULL;
    int go[2], status = 0, stored = 0, sets = 0, done = 0;
    pid_t pid;

    ASSERT_EQ(setup(dir, &st, &sec), 0);
    ASSERT_EQ(pt_secrets_set(sec, st, "seed", "0", 1, err, sizeof err), 0);
    ASSERT_EQ(pipe(go), 0);
    pid = fork();
    ASSERT_TRUE(pid >= 0);
    if (pid == 0) {
        /* The rotating process: its own store connection and keys, loaded before the sets
         * start. */
        pt_store *cst = NULL;
        pt_secrets *csec = NULL;
        char byte;
        int bad = pt_store_create(dir, &cst, err, sizeof err) != 0 ||
                  pt_secrets_open(dir, &csec, err, sizeof err) != 0 || read(go[0], &byte, 1) != 1;
        for (int i = 0; !bad && i < ROTATIONS; i++)
            bad = pt_secrets_rotate(csec, cst, NULL, err, sizeof err) != 0;
        if (bad)
            fprintf(stderr, "rotation failed: %s\n", err);
        pt_secrets_close(csec);
        pt_store_close(cst);
        _exit(bad);
    }
    close(go[0]);
    /* Sets with the keys loaded before the first rotation, until the rotations are over. */
    while (sets < MAX_SETS && !done) {
        snprintf(name, sizeof name, "race-%d", sets);
        snprintf(want, sizeof want, "value-%d", sets);
        ok[sets] = pt_secrets_set(sec, st, name, want, strlen(want), err, sizeof err) == 0;
        if (!ok[sets] && strstr(err, "run the command again") == NULL)
            pt_test_fail(__FILE__, __LINE__, "set %s: %s", name, err);
        stored += ok[sets];
        if (sets++ == 0)
            ASSERT_EQ(write(go[1], "g", 1), 1);
        done = waitpid(pid, &status, WNOHANG) == pid;
    }
    close(go[1]);
    if (!done)
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ASSERT_GT(stored, 1);

    /* A new process, with only the key files as they are now. */
    ASSERT_EQ(pt_secrets_open(dir, &fresh, err, sizeof err), 0);
    ASSERT_EQ(pt_store_secret_key_id(st, current, sizeof current), 0);
    ASSERT_STREQ(current, pt_secrets_key_id(fresh));
    expect(fresh, st, "seed", "0");
    for (int i = 0; i < sets; i++) {
        snprintf(name, sizeof name, "race-%d", i);
        snprintf(want, sizeof want, "value-%d", i);
        expect(fresh, st, name, ok[i] ? want : NULL);
    }
    pt_secrets_close(fresh);
    pt_secrets_close(sec);
    pt_store_close(st);
    pt_test_rm_tree(dir);
}
