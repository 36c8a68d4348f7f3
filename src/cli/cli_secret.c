/* cli_secret.c - `portico secret set|list|rm|rotate-master`: the encrypted secret store that
 * handlers read with pq.get_secret(name). Values are never printed, logged or stored in
 * plain text; in this process they live in sodium_malloc'd memory, wiped after use. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <sodium.h>

#include "auth/secrets.h"
#include "cli/cli.h"
#include "cli/cli_api.h"
#include "core/err.h"
#include "store/store.h"

static const char secret_usage[] =
    "secret set NAME [--value VALUE] | list | rm NAME | rotate-master";

/* Is p[0..n) well-formed UTF-8 without NUL bytes (a value pq.get_secret can return as str)? */
static int
utf8_valid(const unsigned char *p, size_t n)
{
    size_t i = 0;

    while (i < n) {
        size_t extra;
        uint32_t cp;
        if (p[i] == 0)
            return 0;
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        if (p[i] >= 0xc2 && p[i] <= 0xdf) {
            extra = 1;
            cp = p[i] & 0x1f;
        } else if (p[i] >= 0xe0 && p[i] <= 0xef) {
            extra = 2;
            cp = p[i] & 0x0f;
        } else if (p[i] >= 0xf0 && p[i] <= 0xf4) {
            extra = 3;
            cp = p[i] & 0x07;
        } else {
            return 0;
        }
        if (extra > n - i - 1)
            return 0;
        for (size_t k = 1; k <= extra; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        if ((extra == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (extra == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return 0;
        i += extra + 1;
    }
    return 1;
}

/* Reads the value from stdin into sodium memory (one trailing newline removed). On a
 * terminal it prompts on stderr and turns echo off. Returns 0 or PT_CLI_ERROR (printed). */
static int
read_value(const char *name, char **out, size_t *len)
{
    struct termios old, quiet;
    int tty = isatty(0), echo_off = 0;
    size_t cap = PT_SECRET_MAX + 2, n = 0;
    char *buf = sodium_malloc(cap);

    if (buf == NULL)
        return pt_cli_error("out of memory");
    if (tty) {
        fprintf(stderr, "value of secret %s (not echoed): ", name);
        fflush(stderr);
        if (tcgetattr(0, &old) == 0) {
            quiet = old;
            quiet.c_lflag &= ~(tcflag_t)ECHO;
            echo_off = tcsetattr(0, TCSAFLUSH, &quiet) == 0;
        }
    }
    for (;;) {
        ssize_t got = read(0, buf + n, cap - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            int e = errno;
            if (echo_off)
                tcsetattr(0, TCSAFLUSH, &old);
            sodium_free(buf);
            return pt_cli_error("cannot read the value from stdin: %s", strerror(e));
        }
        n += (size_t)got;
        /* On a terminal the value ends at the first newline. */
        if (got == 0 || n == cap || (tty && memchr(buf, '\n', n) != NULL))
            break;
    }
    if (echo_off) {
        tcsetattr(0, TCSAFLUSH, &old);
        fputc('\n', stderr);
    }
    if (tty && memchr(buf, '\n', n) != NULL)
        n = (size_t)((char *)memchr(buf, '\n', n) - buf) + 1;
    if (n > 0 && buf[n - 1] == '\n')
        n--;
    if (n > PT_SECRET_MAX) {
        sodium_free(buf);
        return pt_cli_error("secret value too long (at most %d bytes)", PT_SECRET_MAX);
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

/* `secret set` through the admin API: replaces the secret (PUT), or creates it (POST) when
 * there is none; a create that loses a race to another one replaces it after all. Prints as
 * on the data dir. Returns the exit status. */
static int
remote_set(const char *datadir, const char *name, const char *value, size_t len)
{
    pt_cli_reply rep = {0};
    char path[1024];
    int rc = PT_CLI_ERROR;

    if (pt_cli_api_path(path, sizeof path, "secrets", name, NULL) != 0)
        return pt_cli_error("the secret name is too long");
    for (int attempt = 0; attempt < 3; attempt++) {
        json_t *body = json_pack("{s:s%}", "value", value, len);
        if (attempt % 2 == 1)
            json_object_set_new(body, "name", json_string(name));
        rc = pt_cli_api_raw(datadir, attempt % 2 == 1 ? "POST" : "PUT",
                            attempt % 2 == 1 ? "/secrets" : path, NULL, body, &rep);
        if (rc != 0)
            return rc;
        if (rep.status != (attempt % 2 == 1 ? 409 : 404))
            break;
        pt_cli_reply_clear(&rep);
    }
    if (rep.status >= 300) {
        rc = pt_cli_api_error(&rep);
    } else {
        printf("secret %s stored (%zu bytes, encrypted under master key %s)\n", name, len,
               json_string_value(json_object_get(rep.body, "key_id")));
        rc = 0;
    }
    pt_cli_reply_clear(&rep);
    return rc;
}

static int
secret_set(const char *datadir, int argc, char **argv)
{
    const char *usage = "secret set NAME [--value VALUE]   (the value is read from stdin "
                        "without --value)";
    const char *value_opt = NULL;
    pt_cli_opt opts[] = {{"--value", 1, &value_opt}, {NULL, 0, NULL}};
    char *pos[1], *value = NULL, err[512];
    pt_secrets *sec = NULL;
    pt_store *st = NULL;
    pt_secret row = {0};
    size_t len = 0;
    int npos = 0, rc;

    rc = pt_cli_parse(argc, argv, opts, pos, 1, 1, &npos, usage);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (!pt_store_secret_name_valid(pos[0]))
        return pt_cli_error("invalid secret name (1 to 128 bytes of UTF-8, no control "
                            "characters)");
    if (sodium_init() < 0)
        return pt_cli_error("libsodium cannot start");
    /* On the data dir the value stays in this process's sodium memory; remotely it goes to
     * the server's PUT (or POST) /secrets in the request body. */
    if (pt_cli_api_server() == NULL) {
        rc = pt_cli_open_store(datadir, &st);
        if (rc != 0)
            return rc;
        if (pt_secrets_open(datadir, &sec, err, sizeof err) != 0) {
            rc = pt_cli_error("%s", err);
            goto done;
        }
    }
    if (value_opt != NULL) {
        len = strlen(value_opt);
        if (len > PT_SECRET_MAX) {
            rc = pt_cli_error("secret value too long (at most %d bytes)", PT_SECRET_MAX);
            goto done;
        }
        value = sodium_malloc(len + 1);
        if (value == NULL) {
            rc = pt_cli_error("out of memory");
            goto done;
        }
        memcpy(value, value_opt, len + 1);
    } else if (read_value(pos[0], &value, &len) != 0) {
        rc = PT_CLI_ERROR;
        goto done;
    }
    if (len == 0) {
        rc = pt_cli_error("the value of secret %s is empty (nothing on stdin?)", pos[0]);
        goto done;
    }
    if (!utf8_valid((const unsigned char *)value, len)) {
        rc = pt_cli_error("the value of secret %s is not UTF-8 text (or holds a NUL byte)", pos[0]);
        goto done;
    }
    if (st == NULL) {
        rc = remote_set(datadir, pos[0], value, len);
        goto done;
    }
    if (pt_secrets_set(sec, st, pos[0], value, len, err, sizeof err) != 0) {
        rc = pt_cli_error("%s", err);
        goto done;
    }
    /* Name the key the row is on file under: after a rotation that has not renamed its key
     * file yet, that is the new key rather than master.key. */
    if (pt_store_secret_get(st, pos[0], &row) == 0)
        printf("secret %s stored (%zu bytes, encrypted under master key %s)\n", pos[0], len,
               row.key_id);
    else
        printf("secret %s stored (%zu bytes)\n", pos[0], len);
    pt_secret_clear(&row);
done:
    pt_secrets_value_free(value);
    pt_secrets_close(sec);
    pt_store_close(st);
    return rc;
}

/* Names and times only: a value is never shown. */
static int
secret_list(const char *datadir, int argc, char **argv)
{
    static const pt_cli_col cols[] = {
        {"NAME", "name", PT_CLI_COL_TEXT, NULL, NULL},
        {"CREATED", "created", PT_CLI_COL_TIME, "-", NULL},
        {"UPDATED", "updated", PT_CLI_COL_TIME, "-", NULL},
    };

    return pt_cli_api_list_cmd(datadir, argc, argv, "secret list", "/secrets", "secrets", cols, 3);
}

static int
secret_rm(const char *datadir, int argc, char **argv)
{
    return pt_cli_api_name_cmd(datadir, argc, argv, "secret rm NAME", "DELETE", "secrets",
                               "secret ", " removed");
}

/* Prints no key: the new one is already durable (keys/master.key, or PORTICO_NEW_MASTER_KEY,
 * which the operator holds), so nothing is lost when stdout is closed or the terminal gone. */
static int
secret_rotate(const char *datadir, int argc, char **argv)
{
    const char *usage = "secret rotate-master   (with PORTICO_MASTER_KEY set, the new key "
                        "comes from PORTICO_NEW_MASTER_KEY)";
    const char *env = getenv("PORTICO_MASTER_KEY");
    char *pos[1], err[1024];
    pt_secrets *sec = NULL;
    pt_store *st = NULL;
    size_t count = 0;
    int npos = 0, rc;

    rc = pt_cli_parse(argc, argv, NULL, pos, 0, 0, &npos, usage);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    rc = pt_cli_open_store(datadir, &st);
    if (rc != 0)
        return rc;
    if (pt_secrets_open(datadir, &sec, err, sizeof err) != 0) {
        rc = pt_cli_error("%s", err);
        goto done;
    }
    if (pt_secrets_rotate(sec, st, &count, err, sizeof err) != 0) {
        rc = pt_cli_error("cannot rotate the master key: %s", err);
        goto done;
    }
    printf("re-encrypted %zu secret%s under master key %s\n", count, count == 1 ? "" : "s",
           pt_secrets_key_id(sec));
    if (strcmp(pt_store_engine(st), "postgres") == 0)
        printf("the install's JWT and API-key keys in the PostgreSQL store are sealed under it "
               "too: give every node the new master key before it restarts or joins\n");
    if (env != NULL && env[0] != '\0')
        printf("set PORTICO_MASTER_KEY to the key in PORTICO_NEW_MASTER_KEY for every portico "
               "command and restart the server (until then, it reads secrets only if it was "
               "started with both variables)\n");
done:
    pt_secrets_close(sec);
    pt_store_close(st);
    return rc;
}

/* rotate-master stays a host operation (docs/ADMIN.md, "Remote CLI"): the new key goes to the
 * key file or PORTICO_NEW_MASTER_KEY of the server's host, never over the network. */
static const pt_cli_sub secret_subs[] = {{"set", NULL, secret_set, PT_CLI_REMOTE},
                                         {"list", "ls", secret_list, PT_CLI_REMOTE},
                                         {"rm", NULL, secret_rm, PT_CLI_REMOTE},
                                         {"rotate-master", NULL, secret_rotate, 0},
                                         {NULL, NULL, NULL, 0}};

int
pt_cli_secret(const char *datadir, int argc, char **argv)
{
    return pt_cli_dispatch("secret", secret_usage, secret_subs, datadir, argc, argv);
}
