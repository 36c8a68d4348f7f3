/* cli_user.c - `portico user add|list|rm|passwd|role` and `portico user token
 * create|list|revoke`: the people and the automation that may use the admin API. Every change
 * is written to the audit log with the actor "cli:<login name>". */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "auth/users.h"
#include "cli/cli.h"
#include "core/config.h"
#include "core/err.h"
#include "store/store_audit.h"
#include "store/store_users.h"

#define PASSWORD_MAX 1024

static const char user_usage[] =
    "user add NAME --role admin|editor|viewer | list | rm NAME | passwd NAME | "
    "role NAME admin|editor|viewer | token create NAME [--name LABEL] [--expires DURATION] | "
    "token list [NAME] | token revoke ID";

/* "cli:<login name>", the actor of CLI changes in the audit log, into out. */
static void
cli_actor(char *out, size_t outsz)
{
    struct passwd *pw = getpwuid(getuid());
    snprintf(out, outsz, "cli:%s", pw != NULL && pw->pw_name != NULL ? pw->pw_name : "unknown");
}

/* Writes an audit entry for a CLI change; a failure is printed as a warning, not returned
 * (the change is made). detail is JSON text. */
static void
audit(pt_store *st, const char *action, const char *object, const char *detail)
{
    char actor[128];
    cli_actor(actor, sizeof actor);
    if (pt_store_audit_add(st, actor, action, object, detail) != 0)
        fprintf(stderr, "warning: cannot write the audit log: %s\n", pt_store_errmsg(st));
}

/* Reads one line (without its newline) into buf (sodium memory, PASSWORD_MAX bytes), echo
 * off when fd 0 is a terminal (then prompt goes to stderr). Returns its length or -1. */
static ssize_t
read_line(const char *prompt, char *buf)
{
    struct termios old, quiet;
    int tty = isatty(0);
    size_t n = 0;
    if (tty) {
        fputs(prompt, stderr);
        fflush(stderr);
        if (tcgetattr(0, &old) == 0) {
            quiet = old;
            quiet.c_lflag &= ~(tcflag_t)ECHO;
            tcsetattr(0, TCSAFLUSH, &quiet);
        } else {
            tty = 0;
        }
    }
    int c;
    while ((c = getchar()) != EOF && c != '\n') {
        if (n + 1 >= PASSWORD_MAX) {
            n = PASSWORD_MAX; /* too long: reported below */
            continue;
        }
        buf[n++] = (char)c;
    }
    if (tty) {
        tcsetattr(0, TCSAFLUSH, &old);
        fputc('\n', stderr);
    }
    if (n >= PASSWORD_MAX || (c == EOF && n == 0))
        return -1;
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    buf[n] = '\0';
    return (ssize_t)n;
}

/* Reads a new password (twice on a terminal) and hashes it into hash. Returns 0 or
 * PT_CLI_ERROR (printed). */
static int
read_password(char *hash)
{
    char *a = NULL, *b = NULL;
    int rc = PT_CLI_ERROR;
    ssize_t n;
    if (sodium_init() < 0 || (a = sodium_malloc(PASSWORD_MAX)) == NULL ||
        (b = sodium_malloc(PASSWORD_MAX)) == NULL) {
        rc = pt_cli_error("out of memory");
        goto done;
    }
    if ((n = read_line("password: ", a)) < 0) {
        rc = pt_cli_error("no password given (type it, or give it on stdin; at most %d bytes)",
                          PASSWORD_MAX - 1);
        goto done;
    }
    if (isatty(0) && (read_line("again: ", b) < 0 || strcmp(a, b) != 0)) {
        rc = pt_cli_error("the passwords differ");
        goto done;
    }
    if ((size_t)n < PT_USERS_PASSWORD_MIN) {
        rc = pt_cli_error("the password must have at least %d characters", PT_USERS_PASSWORD_MIN);
        goto done;
    }
    if (pt_users_hash_password(a, (size_t)n, hash) != 0) {
        rc = pt_cli_error("out of memory hashing the password");
        goto done;
    }
    rc = 0;
done:
    sodium_free(a);
    sodium_free(b);
    return rc;
}

static int
user_add(const char *datadir, int argc, char **argv)
{
    const char *usage = "user add NAME --role admin|editor|viewer";
    const char *role = NULL;
    pt_cli_opt opts[] = {{"--role", 1, &role}, {NULL, 0, NULL}};
    char *pos[1], hash[PT_USERS_HASH_MAX], detail[256];
    pt_store *st = NULL;
    int npos = 0, rc;

    rc = pt_cli_parse(argc, argv, opts, pos, 1, 1, &npos, usage);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (!pt_store_name_valid(pos[0]))
        return pt_cli_error("invalid user name '%s' (letters, digits, '_', '.', '-'; at most 64)",
                            pos[0]);
    if (role == NULL || !pt_store_role_valid(role))
        return pt_cli_error("--role is required: admin, editor or viewer");
    if ((rc = pt_cli_open_store(datadir, &st)) != 0)
        return rc;
    /* Refuse a taken name before asking for a password. */
    pt_user u;
    if (pt_store_user_get(st, pos[0], &u) == 0) {
        pt_user_clear(&u);
        rc = pt_cli_error("user '%s' already exists", pos[0]);
        goto done;
    }
    if ((rc = read_password(hash)) != 0)
        goto done;
    if (pt_store_user_add(st, pos[0], role, hash) != 0) {
        rc = pt_cli_error("%s", pt_store_errmsg(st));
        goto done;
    }
    snprintf(detail, sizeof detail, "{\"role\":\"%s\",\"user\":\"%s\"}", role, pos[0]);
    audit(st, "user.add", pos[0], detail);
    printf("user %s added (%s)\n", pos[0], role);
done:
    pt_store_close(st);
    return rc;
}

static int
user_rows(pt_store *st, pt_cli_table *t)
{
    pt_user *list = NULL;
    size_t n = 0;
    if (pt_store_user_list(st, &list, &n) != 0)
        return pt_cli_error("%s", pt_store_errmsg(st));
    for (size_t i = 0; i < n; i++) {
        pt_cli_table_adds(t, list[i].name);
        pt_cli_table_adds(t, list[i].role);
        pt_cli_table_add_time(t, list[i].created, "-");
    }
    pt_store_users_free(list, n);
    return 0;
}

static int
user_list(const char *datadir, int argc, char **argv)
{
    static const char *const head[] = {"NAME", "ROLE", "CREATED"};
    return pt_cli_store_list_cmd(datadir, argc, argv, "user list", head, 3, user_rows);
}

/* One change of a user (rm, passwd, role): parses NAME (and VALUE when want_value), runs it
 * and writes the audit entry. */
static int
user_change(const char *datadir, int argc, char **argv, const char *usage, const char *action)
{
    char *pos[2], hash[PT_USERS_HASH_MAX], detail[256];
    int want_value = strcmp(action, "user.role") == 0;
    pt_store *st = NULL;
    int npos = 0, rc;

    rc = pt_cli_parse(argc, argv, NULL, pos, 1 + want_value, 1 + want_value, &npos, usage);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (want_value && !pt_store_role_valid(pos[1]))
        return pt_cli_error("invalid role '%s' (admin, editor or viewer)", pos[1]);
    if ((rc = pt_cli_open_store(datadir, &st)) != 0)
        return rc;
    pt_user u;
    if (pt_store_user_get(st, pos[0], &u) != 0) {
        rc = pt_cli_error("%s", pt_store_errmsg(st));
        goto done;
    }
    pt_user_clear(&u);
    if (strcmp(action, "user.passwd") == 0) {
        if ((rc = read_password(hash)) != 0)
            goto done;
        rc = pt_store_user_set(st, pos[0], NULL, hash);
        snprintf(detail, sizeof detail, "{\"password\":\"changed\",\"user\":\"%s\"}", pos[0]);
    } else if (want_value) {
        rc = pt_store_user_set(st, pos[0], pos[1], NULL);
        snprintf(detail, sizeof detail, "{\"role\":\"%s\",\"user\":\"%s\"}", pos[1], pos[0]);
    } else {
        rc = pt_store_user_rm(st, pos[0]);
        snprintf(detail, sizeof detail, "{\"user\":\"%s\"}", pos[0]);
    }
    if (rc != 0) {
        rc = pt_cli_error("%s", pt_store_errmsg(st));
        goto done;
    }
    audit(st, action, pos[0], detail);
    if (strcmp(action, "user.rm") == 0)
        printf("user %s removed\n", pos[0]);
    else if (want_value)
        printf("user %s is now %s\n", pos[0], pos[1]);
    else
        printf("password of %s changed; its sessions are ended\n", pos[0]);
done:
    pt_store_close(st);
    return rc;
}

static int
user_rm(const char *datadir, int argc, char **argv)
{
    return user_change(datadir, argc, argv, "user rm NAME", "user.rm");
}

static int
user_passwd(const char *datadir, int argc, char **argv)
{
    return user_change(datadir, argc, argv, "user passwd NAME", "user.passwd");
}

static int
user_role(const char *datadir, int argc, char **argv)
{
    return user_change(datadir, argc, argv, "user role NAME admin|editor|viewer", "user.role");
}

/* ---- Tokens ------------------------------------------------------------------------------ */

static int
token_create(const char *datadir, int argc, char **argv)
{
    const char *usage = "user token create NAME [--name LABEL] [--expires DURATION]";
    const char *label = NULL, *expires = NULL;
    pt_cli_opt opts[] = {{"--name", 1, &label}, {"--expires", 1, &expires}, {NULL, 0, NULL}};
    char *pos[1], token[PT_USERS_TOKEN_LEN + 1], id[12], digest[PT_USERS_DIGEST_LEN];
    char detail[256], when[64];
    int64_t secs = -1;
    pt_store *st = NULL;
    int npos = 0, rc;

    rc = pt_cli_parse(argc, argv, opts, pos, 1, 1, &npos, usage);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (label != NULL && !pt_store_name_valid(label))
        return pt_cli_error("invalid --name '%s' (letters, digits, '_', '.', '-'; at most 64)",
                            label);
    if (expires != NULL && (pt_config_parse_duration(expires, &secs) != 0 || secs == 0))
        return pt_cli_error("invalid --expires '%s' (a duration such as 12h, 30d, or never)",
                            expires);
    if ((rc = pt_cli_open_store(datadir, &st)) != 0)
        return rc;
    if (pt_users_token_new(token, id) != 0) {
        rc = pt_cli_error("no randomness");
        goto done;
    }
    pt_admin_token t = {.id = id,
                        .user = pos[0],
                        .name = (char *)(label != NULL ? label : pos[0]),
                        .created = (int64_t)time(NULL)};
    t.expires = secs > 0 ? t.created + secs : 0;
    pt_users_digest(token, strlen(token), digest);
    if (pt_store_admin_token_add(st, &t, digest) != 0) {
        rc = pt_cli_error("%s", pt_store_errmsg(st));
        goto done;
    }
    snprintf(detail, sizeof detail, "{\"name\":\"%s\",\"token\":\"%s\",\"user\":\"%s\"}", t.name,
             id, pos[0]);
    audit(st, "user.token.create", pos[0], detail);
    printf("%s\n", token);
    pt_cli_format_time(t.expires, when, sizeof when);
    fprintf(stderr, "admin API token %s for %s (shown once%s%s)\n", id, pos[0],
            t.expires ? "; expires " : "", t.expires ? when : "");
done:
    sodium_memzero(token, sizeof token);
    pt_store_close(st);
    return rc;
}

static int
token_list(const char *datadir, int argc, char **argv)
{
    static const char *const head[] = {"ID",      "USER",      "NAME",   "CREATED",
                                       "EXPIRES", "LAST USED", "REVOKED"};
    char *pos[1];
    pt_store *st = NULL;
    pt_admin_token *list = NULL;
    size_t n = 0;
    int npos = 0, rc;

    rc = pt_cli_parse(argc, argv, NULL, pos, 0, 1, &npos, "user token list [NAME]");
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if ((rc = pt_cli_open_store(datadir, &st)) != 0)
        return rc;
    if (pt_store_admin_token_list(st, npos > 0 ? pos[0] : NULL, &list, &n) != 0) {
        rc = pt_cli_error("%s", pt_store_errmsg(st));
        pt_store_close(st);
        return rc;
    }
    pt_cli_table *t = pt_cli_table_new_header(7, head);
    for (size_t i = 0; t != NULL && i < n; i++) {
        pt_cli_table_adds(t, list[i].id);
        pt_cli_table_adds(t, list[i].user);
        pt_cli_table_adds(t, list[i].name);
        pt_cli_table_add_time(t, list[i].created, "-");
        pt_cli_table_add_time(t, list[i].expires, "never");
        pt_cli_table_add_time(t, list[i].last_used, "never");
        pt_cli_table_add_time(t, list[i].revoked, "-");
    }
    if (t != NULL)
        pt_cli_table_print(t, stdout, 0);
    pt_cli_table_free(t);
    pt_store_admin_tokens_free(list, n);
    pt_store_close(st);
    return t != NULL ? 0 : pt_cli_error("out of memory");
}

static int
revoke_token(pt_store *st, const char *id)
{
    char detail[128];
    int rc = pt_store_admin_token_revoke(st, id);
    if (rc == 0) {
        snprintf(detail, sizeof detail, "{\"token\":\"%s\"}", id);
        audit(st, "user.token.revoke", id, detail);
    }
    return rc;
}

static int
token_revoke(const char *datadir, int argc, char **argv)
{
    return pt_cli_store_name_cmd(datadir, argc, argv, "user token revoke ID", revoke_token,
                                 "admin API token ", " revoked");
}

static const pt_cli_sub token_subs[] = {{"create", NULL, token_create},
                                        {"list", "ls", token_list},
                                        {"revoke", NULL, token_revoke},
                                        {NULL, NULL, NULL}};

static int
user_token(const char *datadir, int argc, char **argv)
{
    return pt_cli_dispatch("user token", user_usage, token_subs, datadir, argc, argv);
}

static const pt_cli_sub user_subs[] = {{"add", NULL, user_add},   {"list", "ls", user_list},
                                       {"rm", NULL, user_rm},     {"passwd", NULL, user_passwd},
                                       {"role", NULL, user_role}, {"token", NULL, user_token},
                                       {NULL, NULL, NULL}};

int
pt_cli_user(const char *datadir, int argc, char **argv)
{
    return pt_cli_dispatch("user", user_usage, user_subs, datadir, argc, argv);
}
