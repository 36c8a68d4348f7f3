/* cli_user.c - `portico user add|list|rm|passwd|role` and `portico user token
 * create|list|revoke`: the people and the automation that may use the admin API, managed
 * through that API (cli_api.h). On the data dir every change is audited with the actor
 * "cli:<login name>" and the command's name as the action ("user.add"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <sodium.h>

#include "auth/users.h"
#include "cli/cli.h"
#include "cli/cli_api.h"
#include "core/config.h"
#include "core/err.h"
#include "store/store_users.h"

#define PASSWORD_MAX 1024

static const char user_usage[] =
    "user add NAME --role admin|editor|viewer | list | rm NAME | passwd NAME | "
    "role NAME admin|editor|viewer | token create NAME [--name LABEL] [--expires DURATION] | "
    "token list [NAME] | token revoke ID";

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

/* Reads a new password (twice on a terminal) into *out: sodium memory of PASSWORD_MAX bytes
 * that the caller frees with sodium_free. Returns 0 or PT_CLI_ERROR (printed). The server
 * hashes it (Argon2id) on its side of the call. */
static int
read_password(char **out)
{
    char *a = NULL, *b = NULL;
    int rc = PT_CLI_ERROR;
    ssize_t n;
    *out = NULL;
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
    *out = a;
    a = NULL;
    rc = 0;
done:
    sodium_free(a);
    sodium_free(b);
    return rc;
}

/* Zeroes the "password" of a request body (jansson frees without clearing) and releases
 * the caller's reference to body (NULL is a no-op). */
static void
forget_password(json_t *body)
{
    json_t *p = json_object_get(body, "password");
    if (json_is_string(p))
        sodium_memzero((char *)json_string_value(p), json_string_length(p));
    json_decref(body);
}

/* GET /users/NAME: 0 when the user exists; else the error printed and the exit status. */
static int
need_user(const char *datadir, const char *name)
{
    pt_cli_reply rep;
    char path[512];
    if (pt_cli_api_path(path, sizeof path, "users", name, NULL) != 0)
        return pt_cli_error("invalid user name '%s'", name);
    int rc = pt_cli_api(datadir, "GET", path, NULL, NULL, &rep);
    pt_cli_reply_clear(&rep);
    return rc;
}

/* String member `key` of o, or "". Borrowed from o. */
static const char *
str_of(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s != NULL ? s : "";
}

/* Integer member `key` of o, or 0. */
static int64_t
int_of(json_t *o, const char *key)
{
    return (int64_t)json_integer_value(json_object_get(o, key));
}

static int
user_add(const char *datadir, int argc, char **argv)
{
    const char *usage = "user add NAME --role admin|editor|viewer";
    const char *role = NULL;
    pt_cli_opt opts[] = {{"--role", 1, &role}, {NULL, 0, NULL}};
    char *pos[1], *password = NULL, path[512];
    pt_cli_reply rep;
    int npos = 0, rc;

    rc = pt_cli_parse(argc, argv, opts, pos, 1, 1, &npos, usage);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (!pt_store_name_valid(pos[0]))
        return pt_cli_error("invalid user name '%s' (letters, digits, '_', '.', '-'; at most 64)",
                            pos[0]);
    if (role == NULL || !pt_store_role_valid(role))
        return pt_cli_error("--role is required: admin, editor or viewer");
    /* Refuse a taken name before asking for a password. */
    if (pt_cli_api_path(path, sizeof path, "users", pos[0], NULL) != 0 ||
        (rc = pt_cli_api_raw(datadir, "GET", path, NULL, NULL, &rep)) != 0)
        return rc != 0 ? rc : pt_cli_error("invalid user name '%s'", pos[0]);
    if (rep.status == 200)
        rc = pt_cli_error("user '%s' already exists", pos[0]);
    else if (rep.status != 404)
        rc = pt_cli_api_error(&rep);
    pt_cli_reply_clear(&rep);
    if (rc != 0 || (rc = read_password(&password)) != 0)
        return rc;
    json_t *body = json_pack("{s:s, s:s, s:s}", "name", pos[0], "role", role, "password", password);
    sodium_free(password);
    rc = pt_cli_api(datadir, "POST", "/users", NULL, json_incref(body), &rep);
    forget_password(body);
    if (rc != 0)
        return rc;
    printf("user %s added (%s)\n", str_of(rep.body, "name"), str_of(rep.body, "role"));
    pt_cli_reply_clear(&rep);
    return 0;
}

static int
user_list(const char *datadir, int argc, char **argv)
{
    static const pt_cli_col cols[] = {
        {"NAME", "name", PT_CLI_COL_TEXT, NULL, NULL},
        {"ROLE", "role", PT_CLI_COL_TEXT, NULL, NULL},
        {"CREATED", "created", PT_CLI_COL_TIME, "-", NULL},
    };

    return pt_cli_api_list_cmd(datadir, argc, argv, "user list", "/users", "users", cols, 3);
}

/* One change of a user (rm, passwd, role): parses NAME (and VALUE when want_value) and makes
 * the call. */
static int
user_change(const char *datadir, int argc, char **argv, const char *usage, const char *action)
{
    char *pos[2], *password = NULL, path[512];
    int want_value = strcmp(action, "user.role") == 0;
    pt_cli_reply rep;
    json_t *body = NULL;
    int npos = 0, rc;

    rc = pt_cli_parse(argc, argv, NULL, pos, 1 + want_value, 1 + want_value, &npos, usage);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (want_value && !pt_store_role_valid(pos[1]))
        return pt_cli_error("invalid role '%s' (admin, editor or viewer)", pos[1]);
    if ((rc = need_user(datadir, pos[0])) != 0)
        return rc;
    pt_cli_api_path(path, sizeof path, "users", pos[0], NULL);
    if (strcmp(action, "user.passwd") == 0) {
        if ((rc = read_password(&password)) != 0)
            return rc;
        body = json_pack("{s:s}", "password", password);
        sodium_free(password);
    } else if (want_value) {
        body = json_pack("{s:s}", "role", pos[1]);
    }
    rc =
        pt_cli_api(datadir, body != NULL ? "PATCH" : "DELETE", path, NULL, json_incref(body), &rep);
    forget_password(body);
    if (rc != 0)
        return rc;
    pt_cli_reply_clear(&rep);
    if (strcmp(action, "user.rm") == 0)
        printf("user %s removed\n", pos[0]);
    else if (want_value)
        printf("user %s is now %s\n", pos[0], pos[1]);
    else
        printf("password of %s changed; its sessions are ended\n", pos[0]);
    return 0;
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
    char *pos[1], path[512], when[64];
    int64_t secs = -1;
    pt_cli_reply rep;
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
    if (pt_cli_api_path(path, sizeof path, "users", pos[0], "tokens", NULL) != 0)
        return pt_cli_error("invalid user name '%s'", pos[0]);
    json_t *body = json_object();
    if (label != NULL)
        json_object_set_new(body, "name", json_string(label));
    if (expires != NULL)
        json_object_set_new(body, "expires", json_string(expires));
    if ((rc = pt_cli_api(datadir, "POST", path, NULL, body, &rep)) != 0)
        return rc;
    printf("%s\n", str_of(rep.body, "token"));
    int64_t exp = int_of(rep.body, "expires");
    pt_cli_format_time(exp, when, sizeof when);
    fprintf(stderr, "admin API token %s for %s (shown once%s%s)\n", str_of(rep.body, "id"), pos[0],
            exp ? "; expires " : "", exp ? when : "");
    json_t *tok = json_object_get(rep.body, "token");
    if (json_is_string(tok))
        sodium_memzero((char *)json_string_value(tok), json_string_length(tok));
    pt_cli_reply_clear(&rep);
    return 0;
}

/* The tokens of user `name` (every user's when NULL, in the order of creation) into a new
 * array *out. 0 or the exit status (printed). */
static int
tokens_of(const char *datadir, const char *name, json_t **out)
{
    pt_cli_reply rep;
    char path[512];
    size_t i;
    json_t *u;
    int rc;

    *out = json_array();
    if (name != NULL) {
        if (pt_cli_api_path(path, sizeof path, "users", name, "tokens", NULL) != 0)
            return pt_cli_error("invalid user name '%s'", name);
        if ((rc = pt_cli_api(datadir, "GET", path, NULL, NULL, &rep)) != 0)
            return rc;
        json_array_extend(*out, json_object_get(rep.body, "tokens"));
        pt_cli_reply_clear(&rep);
        return 0;
    }
    if ((rc = pt_cli_api(datadir, "GET", "/users", NULL, NULL, &rep)) != 0)
        return rc;
    json_array_foreach(json_object_get(rep.body, "users"), i, u)
    {
        json_t *some = NULL;
        if ((rc = tokens_of(datadir, str_of(u, "name"), &some)) == 0)
            json_array_extend(*out, some);
        json_decref(some);
        if (rc != 0)
            break;
    }
    pt_cli_reply_clear(&rep);
    return rc;
}

/* Orders tokens as the store lists them: by creation time, then id. */
static int
token_cmp(const void *a, const void *b)
{
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    int64_t cx = int_of(x, "created"), cy = int_of(y, "created");
    if (cx != cy)
        return cx < cy ? -1 : 1;
    return strcmp(str_of(x, "id"), str_of(y, "id"));
}

static int
token_list(const char *datadir, int argc, char **argv)
{
    static const char *const head[] = {"ID",      "USER",      "NAME",   "CREATED",
                                       "EXPIRES", "LAST USED", "REVOKED"};
    char *pos[1];
    json_t *list = NULL;
    int npos = 0, rc;

    rc = pt_cli_parse(argc, argv, NULL, pos, 0, 1, &npos, "user token list [NAME]");
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if ((rc = tokens_of(datadir, npos > 0 ? pos[0] : NULL, &list)) != 0) {
        json_decref(list);
        return rc;
    }
    size_t n = json_array_size(list);
    json_t **sorted = calloc(n + 1, sizeof *sorted);
    pt_cli_table *t = sorted != NULL ? pt_cli_table_new_header(7, head) : NULL;
    for (size_t i = 0; i < n && sorted != NULL; i++)
        sorted[i] = json_array_get(list, i);
    if (sorted != NULL)
        qsort(sorted, n, sizeof *sorted, token_cmp);
    for (size_t i = 0; t != NULL && i < n; i++) {
        json_t *k = sorted[i];
        pt_cli_table_adds(t, str_of(k, "id"));
        pt_cli_table_adds(t, str_of(k, "user"));
        pt_cli_table_adds(t, str_of(k, "name"));
        pt_cli_table_add_time(t, int_of(k, "created"), "-");
        pt_cli_table_add_time(t, int_of(k, "expires"), "never");
        pt_cli_table_add_time(t, int_of(k, "last_used"), "never");
        pt_cli_table_add_time(t, int_of(k, "revoked"), "-");
    }
    if (t != NULL)
        pt_cli_table_print(t, stdout, 0);
    pt_cli_table_free(t);
    free(sorted);
    json_decref(list);
    return t != NULL ? 0 : pt_cli_error("out of memory");
}

static int
token_revoke(const char *datadir, int argc, char **argv)
{
    char *pos[1], path[512];
    json_t *list = NULL, *k;
    const char *user = NULL;
    pt_cli_reply rep;
    int npos = 0, rc;
    size_t i;

    rc = pt_cli_parse(argc, argv, NULL, pos, 1, 1, &npos, "user token revoke ID");
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    /* The route is per user: find whose token it is. */
    if ((rc = tokens_of(datadir, NULL, &list)) != 0) {
        json_decref(list);
        return rc;
    }
    json_array_foreach(list, i, k)
    {
        if (strcmp(str_of(k, "id"), pos[0]) == 0)
            user = str_of(k, "user");
    }
    if (user == NULL)
        rc = pt_cli_error("no admin token '%s'", pos[0]);
    else if (pt_cli_api_path(path, sizeof path, "users", user, "tokens", pos[0], NULL) != 0)
        rc = pt_cli_error("invalid token id '%s'", pos[0]);
    else if ((rc = pt_cli_api(datadir, "DELETE", path, NULL, NULL, &rep)) == 0)
        pt_cli_reply_clear(&rep);
    json_decref(list);
    if (rc == 0)
        printf("admin API token %s revoked\n", pos[0]);
    return rc;
}

static const pt_cli_sub token_subs[] = {{"create", NULL, token_create, PT_CLI_REMOTE},
                                        {"list", "ls", token_list, PT_CLI_REMOTE},
                                        {"revoke", NULL, token_revoke, PT_CLI_REMOTE},
                                        {NULL, NULL, NULL, 0}};

static int
user_token(const char *datadir, int argc, char **argv)
{
    return pt_cli_dispatch("user token", user_usage, token_subs, datadir, argc, argv);
}

static const pt_cli_sub user_subs[] = {{"add", NULL, user_add, PT_CLI_REMOTE},
                                       {"list", "ls", user_list, PT_CLI_REMOTE},
                                       {"rm", NULL, user_rm, PT_CLI_REMOTE},
                                       {"passwd", NULL, user_passwd, PT_CLI_REMOTE},
                                       {"role", NULL, user_role, PT_CLI_REMOTE},
                                       {"token", NULL, user_token, PT_CLI_REMOTE},
                                       {NULL, NULL, NULL, 0}};

int
pt_cli_user(const char *datadir, int argc, char **argv)
{
    return pt_cli_dispatch("user", user_usage, user_subs, datadir, argc, argv);
}
