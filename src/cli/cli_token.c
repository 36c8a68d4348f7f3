/* cli_token.c - `portico token create|list|revoke`: the JWTs that `--auth jwt` endpoints
 * accept, signed with HS256 under the install's DATA/keys/jwt.key. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "auth/jwt.h"
#include "auth/keys.h"
#include "auth/ratelimit.h"
#include "cli/cli.h"
#include "core/config.h"
#include "core/err.h"
#include "store/store.h"

#define MAX_SCOPE 16

static const char token_usage[] =
    "token create [--name NAME] [--expires DURATION|never] [--endpoint NAME]... "
    "[--rate N/PERIOD] | list | revoke ID";

static int
token_create(const char *datadir, int argc, char **argv)
{
    const char *usage = "token create [--name NAME] [--expires DURATION|never] "
                        "[--endpoint NAME]... [--rate N/PERIOD]";
    const char *name = NULL, *expires = NULL, *rate = NULL, *endpoints[MAX_SCOPE];
    int nendpoints = 0;
    pt_cli_opt opts[] = {{"--name", 1, &name},
                         {"--expires", 1, &expires},
                         {"--endpoint", PT_CLI_LIST, NULL, endpoints, &nendpoints, MAX_SCOPE},
                         {"--rate", 1, &rate},
                         {NULL, 0, NULL}};
    char *pos[1], id[17], scope[MAX_SCOPE * 66], split[sizeof scope], rate_text[32] = "";
    char err[512], when[64];
    char token[PT_JWT_MAX];
    const char *scope_list[MAX_SCOPE];
    unsigned char raw[8], *key = NULL;
    int64_t now = (int64_t)time(NULL), secs = -1;
    pt_store *st = NULL;
    pt_token t = {0};
    pt_rate r;
    int npos = 0, rc;
    size_t nscope = 0;

    rc = pt_cli_parse(argc, argv, opts, pos, 0, 0, &npos, usage);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (name != NULL && !pt_store_name_valid(name))
        return pt_cli_error("invalid token name '%s' (letters, digits, '_', '.', '-'; at most "
                            "64; not starting with '.' or '-')",
                            name);
    if (expires != NULL && (pt_config_parse_duration(expires, &secs) != 0 || secs == 0))
        return pt_cli_error("invalid --expires '%s' (a duration such as 90s, 15m, 12h, 30d, or "
                            "never)",
                            expires);
    if (rate != NULL) {
        if (pt_ratelimit_parse(rate, &r) != 0)
            return pt_cli_error("invalid --rate '%s' (N/s, N/min, N/h or N/day, for example "
                                "100/min)",
                                rate);
        pt_ratelimit_format(&r, rate_text, sizeof rate_text);
    }
    if (pt_cli_scope(endpoints, nendpoints, scope, sizeof scope) != 0)
        return PT_CLI_ERROR;
    rc = pt_cli_open_store(datadir, &st);
    if (rc != 0)
        return rc;
    if (pt_keys_load(datadir, PT_KEY_JWT, &key, err, sizeof err) != 0) {
        rc = pt_cli_error("cannot load the token signing key: %s", err);
        goto done;
    }
    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(id, sizeof id, raw, sizeof raw);
    /* The scope claim lists the same endpoints as the store. */
    memcpy(split, scope, sizeof split);
    for (char *p = split; *p != '\0' && nscope < MAX_SCOPE;) {
        scope_list[nscope++] = p;
        p = strchr(p, ' ');
        if (p == NULL)
            break;
        *p++ = '\0';
    }
    pt_jwt_claims c = {id,    name != NULL ? name : id, now, secs > 0 ? now + secs : 0, scope_list,
                       nscope};
    rc = pt_jwt_sign_hs256(&c, key, token, sizeof token);
    if (rc != 0) {
        rc = pt_cli_error("cannot sign the token: %s", pt_strerror(rc));
        goto done;
    }
    t.id = id;
    t.name = (char *)c.sub;
    t.created = now;
    t.expires = c.exp;
    t.scope = scope;
    t.rate = rate_text[0] != '\0' ? rate_text : NULL;
    if (pt_store_token_add(st, &t) != 0) {
        rc = pt_cli_error("%s", pt_store_errmsg(st));
        goto done;
    }
    /* The token alone on stdout, so that TOKEN=$(portico token create) works. */
    puts(token);
    if (c.exp != 0)
        pt_cli_format_time(c.exp, when, sizeof when);
    fprintf(stderr, "token %s (name %s) created; expires %s\n", id, c.sub,
            c.exp != 0 ? when : "never");
    rc = 0;
done:
    sodium_memzero(token, sizeof token);
    pt_keys_free(key);
    pt_store_close(st);
    return rc;
}

static int
token_rows(pt_store *st, pt_cli_table *t)
{
    pt_token *list = NULL;
    size_t n = 0, i;
    char scope[1100];
    int bad = 0;

    if (pt_store_token_list(st, &list, &n) != 0)
        return pt_cli_error("%s", pt_store_errmsg(st));
    for (i = 0; i < n; i++) {
        pt_cli_scope_display(list[i].scope, scope, sizeof scope);
        bad |= pt_cli_table_adds(t, list[i].id) | pt_cli_table_adds(t, list[i].name) |
               pt_cli_table_add_time(t, list[i].created, "-") |
               pt_cli_table_add_time(t, list[i].expires, "never") | pt_cli_table_adds(t, scope) |
               pt_cli_table_adds(t, list[i].rate != NULL ? list[i].rate : "-") |
               pt_cli_table_add_time(t, list[i].revoked, "no") |
               pt_cli_table_add_time(t, list[i].last_used, "never");
    }
    pt_store_tokens_free(list, n);
    return bad ? pt_cli_error("out of memory") : 0;
}

static int
token_list(const char *datadir, int argc, char **argv)
{
    static const char *const head[] = {"ID",    "NAME", "CREATED", "EXPIRES",
                                       "SCOPE", "RATE", "REVOKED", "LAST USED"};

    return pt_cli_store_list_cmd(datadir, argc, argv, "token list", head, 8, token_rows);
}

/* Committing the revocation bumps the change counter: running workers refuse the token from
 * their next request on. */
static int
token_revoke(const char *datadir, int argc, char **argv)
{
    return pt_cli_store_name_cmd(datadir, argc, argv, "token revoke ID", pt_store_token_revoke,
                                 "token ", " revoked");
}

static const pt_cli_sub token_subs[] = {{"create", NULL, token_create},
                                        {"list", "ls", token_list},
                                        {"revoke", NULL, token_revoke},
                                        {NULL, NULL, NULL}};

int
pt_cli_token(const char *datadir, int argc, char **argv)
{
    return pt_cli_dispatch("token", token_usage, token_subs, datadir, argc, argv);
}
