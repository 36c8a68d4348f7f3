/* cli_auth.c - `portico auth trust|list|untrust`: outside identity providers whose RS256 or
 * ES256 tokens `--auth jwt` endpoints accept, with the public keys of their JWKS, through the
 * admin API (cli_api.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/jwks.h"
#include "cli/cli.h"
#include "cli/cli_api.h"

#define JWKS_MAX (1u << 20) /* bytes of a JWKS file */

static const char auth_usage[] =
    "auth trust --issuer ISS --jwks FILE [--audience AUD] | list | untrust ISS";

static int
auth_trust(const char *datadir, int argc, char **argv)
{
    const char *usage = "auth trust --issuer ISS --jwks FILE [--audience AUD]";
    const char *iss = NULL, *file = NULL, *aud = NULL;
    pt_cli_opt opts[] = {
        {"--issuer", 1, &iss}, {"--jwks", 1, &file}, {"--audience", 1, &aud}, {NULL, 0, NULL}};
    pt_jwks *set = NULL;
    pt_cli_reply rep = {0};
    char *pos[1], *text = NULL, err[512];
    size_t len = 0, skipped = 0, i;
    int npos = 0, rc;
    json_t *key;

    rc = pt_cli_parse(argc, argv, opts, pos, 0, 0, &npos, usage);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (iss == NULL || iss[0] == '\0')
        return pt_cli_error("--issuer is required (the `iss` of the provider's tokens)");
    if (file == NULL)
        return pt_cli_error("--jwks is required (a file with the provider's JWKS document)");
    if (aud != NULL && aud[0] == '\0')
        return pt_cli_error("--audience must not be empty");
    if (pt_cli_api_server() == NULL && pt_cli_need_datadir(datadir) != 0)
        return PT_CLI_ERROR;
    if (pt_cli_read_file(file, JWKS_MAX, &text, &len) != 0)
        return PT_CLI_ERROR;
    /* Checked here too, so that the error names the file. */
    if (pt_jwks_parse(text, len, &set, &skipped, err, sizeof err) != 0) {
        rc = pt_cli_error("%s: %s", file, err);
        goto done;
    }
    json_t *body = json_pack("{s:s, s:s}", "issuer", iss, "jwks", text);
    if (aud != NULL)
        json_object_set_new(body, "audience", json_string(aud));
    if ((rc = pt_cli_api(datadir, "POST", "/issuers", NULL, body, &rep)) != 0)
        goto done;
    json_t *keys = json_object_get(rep.body, "keys");
    skipped = (size_t)json_integer_value(json_object_get(rep.body, "skipped"));
    printf("trusting tokens from %s%s%s with %zu key%s:\n", iss,
           aud != NULL ? " for audience " : "", aud != NULL ? aud : "", json_array_size(keys),
           json_array_size(keys) == 1 ? "" : "s");
    json_array_foreach(keys, i, key) { printf("  %s\n", json_string_value(key)); }
    if (skipped > 0)
        printf("(%zu key%s skipped: only RS256 RSA keys of 2048 bits or more and ES256 P-256 "
               "keys are used)\n",
               skipped, skipped == 1 ? "" : "s");
done:
    pt_cli_reply_clear(&rep);
    pt_jwks_free(set);
    free(text);
    return rc;
}

/* One row per trusted issuer; KEYS counts the usable keys of its stored JWKS. */
static int
auth_list(const char *datadir, int argc, char **argv)
{
    static const pt_cli_col cols[] = {
        {"ISSUER", "issuer", PT_CLI_COL_TEXT, NULL, NULL},
        {"AUDIENCE", "audience", PT_CLI_COL_TEXT, "any", NULL},
        {"KEYS", "keys", PT_CLI_COL_TEXT, NULL, NULL},
        {"TRUSTED SINCE", "created", PT_CLI_COL_TIME, "-", NULL},
    };

    return pt_cli_api_list_cmd(datadir, argc, argv, "auth list", "/issuers", "issuers", cols, 4);
}

static int
auth_untrust(const char *datadir, int argc, char **argv)
{
    return pt_cli_api_name_cmd(datadir, argc, argv, "auth untrust ISS", "DELETE", "issuers",
                               "tokens from ", " are no longer accepted");
}

static const pt_cli_sub auth_subs[] = {{"trust", NULL, auth_trust, PT_CLI_REMOTE},
                                       {"list", "ls", auth_list, PT_CLI_REMOTE},
                                       {"untrust", NULL, auth_untrust, PT_CLI_REMOTE},
                                       {NULL, NULL, NULL, 0}};

int
pt_cli_auth(const char *datadir, int argc, char **argv)
{
    return pt_cli_dispatch("auth", auth_usage, auth_subs, datadir, argc, argv);
}
