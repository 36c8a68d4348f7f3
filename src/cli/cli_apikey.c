/* cli_apikey.c - `portico apikey create|list|revoke`: built-in API keys for `--auth apikey`
 * endpoints, through the admin API (cli_api.h). A key is printed once at creation; the store
 * keeps only its keyed hash. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_api.h"
#include "store/store.h"

#define MAX_SCOPE 16

static const char apikey_usage[] =
    "apikey create NAME [--endpoint NAME]... [--rate N/PERIOD] | list | revoke NAME";

static int
apikey_create(const char *datadir, int argc, char **argv)
{
    const char *usage = "apikey create NAME [--endpoint NAME]... [--rate N/PERIOD]";
    const char *rate = NULL, *endpoints[MAX_SCOPE];
    int nendpoints = 0;
    pt_cli_opt opts[] = {{"--endpoint", PT_CLI_LIST, NULL, endpoints, &nendpoints, MAX_SCOPE},
                         {"--rate", 1, &rate},
                         {NULL, 0, NULL}};
    pt_cli_reply rep;
    char *pos[1];
    int npos = 0, rc;

    rc = pt_cli_parse(argc, argv, opts, pos, 1, 1, &npos, usage);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (!pt_store_name_valid(pos[0]))
        return pt_cli_error("invalid API key name '%s' (letters, digits, '_', '.', '-'; at most "
                            "64; not starting with '.' or '-')",
                            pos[0]);
    json_t *body = json_pack("{s:s}", "name", pos[0]);
    if ((rc = pt_cli_limits_body(body, endpoints, nendpoints, rate)) != 0) {
        json_decref(body);
        return rc;
    }
    if ((rc = pt_cli_api(datadir, "POST", "/apikeys", NULL, body, &rep)) != 0)
        return rc;
    /* The key alone on stdout; it exists nowhere else from now on. */
    puts(json_string_value(json_object_get(rep.body, "key")));
    fprintf(stderr,
            "API key %s created (id %lld); it is shown only now: store it safely (send it as "
            "X-Api-Key or Authorization: Bearer)\n",
            pos[0], (long long)json_integer_value(json_object_get(rep.body, "id")));
    pt_cli_reply_clear(&rep);
    return 0;
}

static int
apikey_list(const char *datadir, int argc, char **argv)
{
    static const pt_cli_col cols[] = {
        {"NAME", "name", PT_CLI_COL_TEXT, NULL, NULL},
        {"ID", "id", PT_CLI_COL_TEXT, NULL, NULL},
        {"KEY", "hint", PT_CLI_COL_TEXT, NULL, "..."},
        {"CREATED", "created", PT_CLI_COL_TIME, "-", NULL},
        {"SCOPE", "endpoints", PT_CLI_COL_LIST, "all", NULL},
        {"RATE", "rate", PT_CLI_COL_TEXT, "-", NULL},
        {"REVOKED", "revoked", PT_CLI_COL_TIME, "no", NULL},
        {"LAST USED", "last_used", PT_CLI_COL_TIME, "never", NULL},
    };

    return pt_cli_api_list_cmd(datadir, argc, argv, "apikey list", "/apikeys", "apikeys", cols, 8);
}

static int
apikey_revoke(const char *datadir, int argc, char **argv)
{
    return pt_cli_api_name_cmd(datadir, argc, argv, "apikey revoke NAME", "DELETE", "apikeys",
                               "API key ", " revoked");
}

static const pt_cli_sub apikey_subs[] = {{"create", NULL, apikey_create, PT_CLI_REMOTE},
                                         {"list", "ls", apikey_list, PT_CLI_REMOTE},
                                         {"revoke", NULL, apikey_revoke, PT_CLI_REMOTE},
                                         {NULL, NULL, NULL, 0}};

int
pt_cli_apikey(const char *datadir, int argc, char **argv)
{
    return pt_cli_dispatch("apikey", apikey_usage, apikey_subs, datadir, argc, argv);
}
