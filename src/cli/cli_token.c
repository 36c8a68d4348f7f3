/* cli_token.c - `portico token create|list|revoke`: the JWTs that `--auth jwt` endpoints
 * accept, signed with HS256 under the install's DATA/keys/jwt.key, through the admin API
 * (cli_api.h: in-process on the data dir, or --server). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/ratelimit.h"
#include "cli/cli.h"
#include "cli/cli_api.h"
#include "core/config.h"
#include "store/store.h"

#define MAX_SCOPE 16

static const char token_usage[] =
    "token create [--name NAME] [--expires DURATION|never] [--endpoint NAME]... "
    "[--rate N/PERIOD] | list | revoke ID";

int
pt_cli_limits_body(json_t *body, const char *const *endpoints, int nendpoints, const char *rate)
{
    char scope[MAX_SCOPE * 66];
    pt_rate r;

    if (rate != NULL && pt_ratelimit_parse(rate, &r) != 0)
        return pt_cli_error("invalid --rate '%s' (N/s, N/min, N/h or N/day, for example "
                            "100/min)",
                            rate);
    if (pt_cli_scope(endpoints, nendpoints, scope, sizeof scope) != 0)
        return PT_CLI_ERROR;
    json_t *arr = json_array();
    for (char *tok = strtok(scope, " "); arr != NULL && tok != NULL; tok = strtok(NULL, " "))
        json_array_append_new(arr, json_string(tok));
    json_object_set_new(body, "endpoints", arr);
    if (rate != NULL)
        json_object_set_new(body, "rate", json_string(rate));
    return 0;
}

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
    char *pos[1], when[64];
    int64_t secs = -1;
    pt_cli_reply rep;
    int npos = 0, rc;

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
    json_t *body = json_object();
    if ((rc = pt_cli_limits_body(body, endpoints, nendpoints, rate)) != 0) {
        json_decref(body);
        return rc;
    }
    if (name != NULL)
        json_object_set_new(body, "name", json_string(name));
    if (expires != NULL)
        json_object_set_new(body, "expires", json_string(expires));
    if ((rc = pt_cli_api(datadir, "POST", "/tokens", NULL, body, &rep)) != 0)
        return rc;
    json_int_t exp = json_integer_value(json_object_get(rep.body, "expires"));
    /* The token alone on stdout, so that TOKEN=$(portico token create) works. */
    puts(json_string_value(json_object_get(rep.body, "token")));
    if (exp != 0)
        pt_cli_format_time(exp, when, sizeof when);
    fprintf(stderr, "token %s (name %s) created; expires %s\n",
            json_string_value(json_object_get(rep.body, "id")),
            json_string_value(json_object_get(rep.body, "name")), exp != 0 ? when : "never");
    pt_cli_reply_clear(&rep);
    return 0;
}

static int
token_list(const char *datadir, int argc, char **argv)
{
    static const pt_cli_col cols[] = {
        {"ID", "id", PT_CLI_COL_TEXT, NULL, NULL},
        {"NAME", "name", PT_CLI_COL_TEXT, NULL, NULL},
        {"CREATED", "created", PT_CLI_COL_TIME, "-", NULL},
        {"EXPIRES", "expires", PT_CLI_COL_TIME, "never", NULL},
        {"SCOPE", "endpoints", PT_CLI_COL_LIST, "all", NULL},
        {"RATE", "rate", PT_CLI_COL_TEXT, "-", NULL},
        {"REVOKED", "revoked", PT_CLI_COL_TIME, "no", NULL},
        {"LAST USED", "last_used", PT_CLI_COL_TIME, "never", NULL},
    };

    return pt_cli_api_list_cmd(datadir, argc, argv, "token list", "/tokens", "tokens", cols, 8);
}

/* Committing the revocation bumps the change counter: running workers refuse the token from
 * their next request on. */
static int
token_revoke(const char *datadir, int argc, char **argv)
{
    return pt_cli_api_name_cmd(datadir, argc, argv, "token revoke ID", "DELETE", "tokens", "token ",
                               " revoked");
}

static const pt_cli_sub token_subs[] = {{"create", NULL, token_create, PT_CLI_REMOTE},
                                        {"list", "ls", token_list, PT_CLI_REMOTE},
                                        {"revoke", NULL, token_revoke, PT_CLI_REMOTE},
                                        {NULL, NULL, NULL, 0}};

int
pt_cli_token(const char *datadir, int argc, char **argv)
{
    return pt_cli_dispatch("token", token_usage, token_subs, datadir, argc, argv);
}
