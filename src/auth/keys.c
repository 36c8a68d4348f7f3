/* keys.c - the install's key files (keys.h): creation, loading into sodium memory, parsing. */
#include "auth/keys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "core/err.h"

static const char *const key_files[] = {"jwt.key", "apikey.key", "master.key"};

int
pt_keys_sodium_init(void)
{
    /* sodium_init() is idempotent and thread-safe; it returns 1 when already done. */
    return sodium_init() < 0 ? PT_EIO : 0;
}

int
pt_keys_path(const char *datadir, enum pt_key_kind kind, char *out, size_t outsz)
{
    int n = snprintf(out, outsz, "%s/keys/%s", datadir, key_files[kind]);

    return n < 0 || (size_t)n >= outsz ? PT_EINVAL : 0;
}

unsigned char *
pt_keys_new(void)
{
    unsigned char *key;

    if (pt_keys_sodium_init() != 0)
        return NULL;
    key = sodium_malloc(PT_KEY_BYTES);
    if (key == NULL)
        return NULL;
    randombytes_buf(key, PT_KEY_BYTES);
    sodium_mprotect_readonly(key);
    return key;
}

void
pt_keys_free(unsigned char *key)
{
    if (key != NULL)
        sodium_free(key); /* wipes the memory before releasing it */
}

int
pt_keys_parse(const char *text, size_t n, unsigned char *out)
{
    unsigned char tmp[PT_KEY_BYTES];
    size_t got = 0;
    const char *end = NULL;
    int rc = PT_EINVAL;

    while (n > 0 && (text[0] == ' ' || text[0] == '\t' || text[0] == '\n' || text[0] == '\r')) {
        text++;
        n--;
    }
    while (n > 0 && (text[n - 1] == ' ' || text[n - 1] == '\t' || text[n - 1] == '\n' ||
                     text[n - 1] == '\r'))
        n--;
    if (n == 2 * PT_KEY_BYTES) {
        if (sodium_hex2bin(tmp, sizeof tmp, text, n, NULL, &got, &end) == 0 &&
            got == PT_KEY_BYTES && end == text + n)
            rc = 0;
    } else if (n == 44) {
        if (sodium_base642bin(tmp, sizeof tmp, text, n, NULL, &got, &end,
                              sodium_base64_VARIANT_ORIGINAL) == 0 &&
            got == PT_KEY_BYTES && end == text + n)
            rc = 0;
    }
    if (rc == 0)
        memcpy(out, tmp, PT_KEY_BYTES);
    sodium_memzero(tmp, sizeof tmp);
    return rc;
}

/* Parses text into a new sodium_malloc'd key. */
static int
key_from_text(const char *text, size_t n, unsigned char **key)
{
    unsigned char *k = sodium_malloc(PT_KEY_BYTES);

    if (k == NULL)
        return PT_ENOMEM;
    if (pt_keys_parse(text, n, k) != 0) {
        sodium_free(k);
        return PT_EINVAL;
    }
    sodium_mprotect_readonly(k);
    *key = k;
    return 0;
}

int
pt_keys_load_file(const char *path, unsigned char **key, char *err, size_t errsz)
{
    char text[256];
    struct stat sb;
    ssize_t n = 0;
    int fd, rc;

    *key = NULL;
    if (pt_keys_sodium_init() != 0) {
        snprintf(err, errsz, "cannot initialise libsodium");
        return PT_EIO;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        snprintf(err, errsz, "cannot read %s: %s", path, strerror(errno));
        return errno == ENOENT ? PT_ENOTFOUND : PT_EIO;
    }
    if (fstat(fd, &sb) != 0) {
        snprintf(err, errsz, "cannot read %s: %s", path, strerror(errno));
        rc = PT_EIO;
        goto done;
    }
    if ((sb.st_mode & 077) != 0) {
        snprintf(err, errsz,
                 "key file %s is accessible to other users (mode %04o); run 'chmod 600 %s'", path,
                 (unsigned)(sb.st_mode & 07777), path);
        rc = PT_EINVAL;
        goto done;
    }
    do {
        n = read(fd, text, sizeof text);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        snprintf(err, errsz, "cannot read %s: %s", path, strerror(errno));
        rc = PT_EIO;
        goto done;
    }
    rc = key_from_text(text, (size_t)n, key);
    if (rc == PT_EINVAL)
        snprintf(err, errsz, "key file %s is malformed (expected 64 hex digits)", path);
    else if (rc != 0)
        snprintf(err, errsz, "out of memory");
done:
    sodium_memzero(text, sizeof text);
    close(fd);
    return rc;
}

int
pt_keys_load(const char *datadir, enum pt_key_kind kind, unsigned char **key, char *err,
             size_t errsz)
{
    char path[4096];
    const char *env;
    int rc;

    *key = NULL;
    if (pt_keys_sodium_init() != 0) {
        snprintf(err, errsz, "cannot initialise libsodium");
        return PT_EIO;
    }
    env = kind == PT_KEY_MASTER ? getenv("PORTICO_MASTER_KEY") : NULL;
    if (env != NULL && env[0] != '\0') {
        rc = key_from_text(env, strlen(env), key);
        if (rc == PT_EINVAL)
            snprintf(err, errsz,
                     "PORTICO_MASTER_KEY is malformed (expected 64 hex digits or 44 "
                     "characters of base64)");
        else if (rc != 0)
            snprintf(err, errsz, "out of memory");
        return rc;
    }
    if (pt_keys_path(datadir, kind, path, sizeof path) != 0) {
        snprintf(err, errsz, "data dir path too long");
        return PT_EINVAL;
    }
    return pt_keys_load_file(path, key, err, errsz);
}

/* fsyncs the directory holding path, so that a rename or link in it is durable. */
static void
sync_parent(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    size_t n = slash != NULL ? (size_t)(slash - path) : 1;
    int fd;

    if (n >= sizeof dir)
        return;
    memcpy(dir, slash != NULL ? path : ".", n);
    dir[n] = '\0';
    if (n == 0)
        snprintf(dir, sizeof dir, "/");
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

int
pt_keys_write(const char *path, const unsigned char *key, int replace, char *err, size_t errsz)
{
    char tmp[4200], text[2 * PT_KEY_BYTES + 2];
    size_t len = 2 * PT_KEY_BYTES + 1;
    int fd = -1, rc = 0;

    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp) {
        snprintf(err, errsz, "path too long");
        return PT_EINVAL;
    }
    sodium_bin2hex(text, sizeof text, key, PT_KEY_BYTES);
    text[2 * PT_KEY_BYTES] = '\n';
    unlink(tmp); /* a leftover of a crashed run of this pid */
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 || write(fd, text, len) != (ssize_t)len || fsync(fd) != 0) {
        snprintf(err, errsz, "cannot write %s: %s", tmp, strerror(errno));
        rc = PT_EIO;
        goto done;
    }
    close(fd);
    fd = -1;
    if (replace) {
        if (rename(tmp, path) != 0) {
            snprintf(err, errsz, "cannot replace %s: %s", path, strerror(errno));
            rc = PT_EIO;
            goto done;
        }
    } else if (link(tmp, path) != 0) {
        /* link() never replaces: two concurrent `init`s cannot both write the key. */
        rc = errno == EEXIST ? PT_EEXIST : PT_EIO;
        if (rc == PT_EIO)
            snprintf(err, errsz, "cannot create %s: %s", path, strerror(errno));
        else
            snprintf(err, errsz, "%s already exists", path);
        goto done;
    }
    sync_parent(path);
done:
    sodium_memzero(text, sizeof text);
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    return rc;
}

int
pt_keys_init(const char *datadir, int *created, char *err, size_t errsz)
{
    char dir[4096], path[4096];
    const char *env = getenv("PORTICO_MASTER_KEY");
    unsigned char *key = NULL;
    struct stat sb;
    int n = 0, rc = 0;

    if (created != NULL)
        *created = 0;
    if (pt_keys_sodium_init() != 0) {
        snprintf(err, errsz, "cannot initialise libsodium");
        return PT_EIO;
    }
    if (snprintf(dir, sizeof dir, "%s/keys", datadir) >= (int)sizeof dir) {
        snprintf(err, errsz, "data dir path too long");
        return PT_EINVAL;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errsz, "cannot create %s: %s", dir, strerror(errno));
        return PT_EIO;
    }
    for (int kind = PT_KEY_JWT; kind <= PT_KEY_MASTER; kind++) {
        if (kind == PT_KEY_MASTER && env != NULL && env[0] != '\0')
            continue;
        if (pt_keys_path(datadir, (enum pt_key_kind)kind, path, sizeof path) != 0) {
            snprintf(err, errsz, "data dir path too long");
            return PT_EINVAL;
        }
        if (lstat(path, &sb) == 0)
            continue; /* never overwrite a key: data encrypted or signed with it depends on it */
        key = pt_keys_new();
        if (key == NULL) {
            snprintf(err, errsz, "out of memory");
            return PT_ENOMEM;
        }
        rc = pt_keys_write(path, key, 0, err, errsz);
        pt_keys_free(key);
        if (rc == PT_EEXIST)
            continue; /* another init won the race */
        if (rc != 0)
            return rc;
        n++;
    }
    if (created != NULL)
        *created = n;
    return 0;
}

void
pt_keys_id(const unsigned char *key, char *out)
{
    static const unsigned char ctx[] = "portico key id v1";
    unsigned char h[PT_KEY_ID_LEN / 2];
    crypto_generichash_state st;

    crypto_generichash_init(&st, NULL, 0, sizeof h);
    crypto_generichash_update(&st, ctx, sizeof ctx);
    crypto_generichash_update(&st, key, PT_KEY_BYTES);
    crypto_generichash_final(&st, h, sizeof h);
    sodium_bin2hex(out, PT_KEY_ID_LEN + 1, h, sizeof h);
}
