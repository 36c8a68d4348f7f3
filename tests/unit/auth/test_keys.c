/* test_keys.c - unit tests for auth/keys (install key files) and auth/apikey. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "auth/apikey.h"
#include "auth/keys.h"
#include "core/err.h"
#include "test.h"

/* Reads a whole small file into buf; returns its length or -1. */
static ssize_t
slurp(const char *path, char *buf, size_t n)
{
    int fd = open(path, O_RDONLY);
    ssize_t got;

    if (fd < 0)
        return -1;
    got = read(fd, buf, n);
    close(fd);
    return got;
}

TEST(keys_init_creates_private_keys_once)
{
    char dir[] = "/tmp/pt-test-keys-XXXXXX", path[4200], before[3][80], after[80], err[256];
    const char *names[] = {"jwt.key", "apikey.key", "master.key"};
    struct stat sb;
    int created = -1;

    unsetenv("PORTICO_MASTER_KEY");
    ASSERT_TRUE(mkdtemp(dir) != NULL);
    ASSERT_EQ(pt_keys_init(dir, &created, err, sizeof err), 0);
    ASSERT_EQ(created, 3);
    snprintf(path, sizeof path, "%s/keys", dir);
    ASSERT_EQ(stat(path, &sb), 0);
    ASSERT_EQ(sb.st_mode & 0777, 0700);
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/keys/%s", dir, names[i]);
        ASSERT_EQ(stat(path, &sb), 0);
        ASSERT_EQ(sb.st_mode & 0777, 0600);
        memset(before[i], 0, sizeof before[i]);
        ASSERT_EQ(slurp(path, before[i], sizeof before[i]), 65);
    }
    ASSERT_TRUE(memcmp(before[0], before[1], 64) != 0);
    /* Again: nothing created, nothing changed. */
    ASSERT_EQ(pt_keys_init(dir, &created, err, sizeof err), 0);
    ASSERT_EQ(created, 0);
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/keys/%s", dir, names[i]);
        memset(after, 0, sizeof after);
        ASSERT_EQ(slurp(path, after, sizeof after), 65);
        ASSERT_MEMEQ(after, 65, before[i], 65);
    }
    /* A lost key is recreated; the others stay. */
    snprintf(path, sizeof path, "%s/keys/jwt.key", dir);
    ASSERT_EQ(unlink(path), 0);
    ASSERT_EQ(pt_keys_init(dir, &created, err, sizeof err), 0);
    ASSERT_EQ(created, 1);
    pt_test_rm_tree(dir);
}

TEST(keys_load_checks_mode_and_format)
{
    char dir[] = "/tmp/pt-test-keys-XXXXXX", path[4200], err[256];
    unsigned char *k1 = NULL, *k2 = NULL;
    char id1[PT_KEY_ID_LEN + 1], id2[PT_KEY_ID_LEN + 1];

    unsetenv("PORTICO_MASTER_KEY");
    ASSERT_TRUE(mkdtemp(dir) != NULL);
    ASSERT_EQ(pt_keys_load(dir, PT_KEY_JWT, &k1, err, sizeof err), PT_ENOTFOUND);
    ASSERT_EQ(pt_keys_init(dir, NULL, err, sizeof err), 0);
    ASSERT_EQ(pt_keys_load(dir, PT_KEY_JWT, &k1, err, sizeof err), 0);
    ASSERT_EQ(pt_keys_load(dir, PT_KEY_JWT, &k2, err, sizeof err), 0);
    ASSERT_MEMEQ(k1, PT_KEY_BYTES, k2, PT_KEY_BYTES);
    pt_keys_id(k1, id1);
    ASSERT_EQ(strlen(id1), PT_KEY_ID_LEN);
    pt_keys_free(k2);
    k2 = NULL;
    /* Readable by others: refused, like ssh refuses such keys. */
    snprintf(path, sizeof path, "%s/keys/jwt.key", dir);
    ASSERT_EQ(chmod(path, 0644), 0);
    ASSERT_EQ(pt_keys_load(dir, PT_KEY_JWT, &k2, err, sizeof err), PT_EINVAL);
    ASSERT_TRUE(strstr(err, "chmod 600") != NULL);
    /* The master key from the environment wins over the file, hex or base64. */
    setenv("PORTICO_MASTER_KEY", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
           1);
    ASSERT_EQ(pt_keys_load(dir, PT_KEY_MASTER, &k2, err, sizeof err), 0);
    ASSERT_EQ(k2[31], 31);
    pt_keys_id(k2, id2);
    ASSERT_TRUE(strcmp(id1, id2) != 0);
    pt_keys_free(k2);
    k2 = NULL;
    setenv("PORTICO_MASTER_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", 1);
    ASSERT_EQ(pt_keys_load(dir, PT_KEY_MASTER, &k2, err, sizeof err), 0);
    ASSERT_EQ(k2[31], 31);
    pt_keys_free(k2);
    k2 = NULL;
    setenv("PORTICO_MASTER_KEY", "too short", 1);
    ASSERT_EQ(pt_keys_load(dir, PT_KEY_MASTER, &k2, err, sizeof err), PT_EINVAL);
    ASSERT_TRUE(strstr(err, "too short") == NULL); /* the value is never echoed */
    unsetenv("PORTICO_MASTER_KEY");
    pt_keys_free(k1);
    pt_test_rm_tree(dir);
}

TEST(keys_parse)
{
    unsigned char k[PT_KEY_BYTES];
    const char *hex = "  000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";

    ASSERT_EQ(pt_keys_parse(hex, strlen(hex), k), 0);
    ASSERT_EQ(k[1], 1);
    ASSERT_EQ(pt_keys_parse("00", 2, k), PT_EINVAL);
    ASSERT_EQ(
        pt_keys_parse("zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", 64, k),
        PT_EINVAL);
}

TEST(apikey_shape_and_keyed_hash)
{
    char a[PT_APIKEY_LEN + 1], b[PT_APIKEY_LEN + 1];
    unsigned char k1[PT_KEY_BYTES] = {1}, k2[PT_KEY_BYTES] = {2};
    unsigned char h1[32], h2[32], h3[32];

    ASSERT_EQ(pt_apikey_generate(a), 0);
    ASSERT_EQ(pt_apikey_generate(b), 0);
    ASSERT_EQ(strlen(a), PT_APIKEY_LEN);
    ASSERT_EQ(strncmp(a, "pt_live_", 8), 0);
    ASSERT_TRUE(strcmp(a, b) != 0);
    ASSERT_TRUE(pt_apikey_well_formed(a, strlen(a)));
    ASSERT_FALSE(pt_apikey_well_formed(a, strlen(a) - 1));
    b[10] = '-';
    ASSERT_FALSE(pt_apikey_well_formed(b, strlen(b)));
    ASSERT_FALSE(pt_apikey_well_formed("pt_test_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 48));
    pt_apikey_hash(k1, a, strlen(a), h1);
    pt_apikey_hash(k1, a, strlen(a), h2);
    pt_apikey_hash(k2, a, strlen(a), h3);
    ASSERT_MEMEQ(h1, 32, h2, 32);
    ASSERT_TRUE(memcmp(h1, h3, 32) != 0); /* keyed: another install's hash differs */
}
