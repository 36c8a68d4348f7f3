/* cli_auth.c - `portico auth trust|list|untrust`: outside identity providers whose RS256 or
 * ES256 tokens `--auth jwt` endpoints accept, with the public keys of their JWKS. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/jwks.h"
#include "cli/cli.h"
#include "core/err.h"
#include "store/store.h"

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
    pt_issuer is = {0};
    pt_jwks *set = NULL;
    pt_store *st = NULL;
    char *pos[1], *text = NULL, err[512], desc[160];
    size_t len = 0, skipped = 0;
    int npos = 0, rc;

    rc = pt_cli_parse(argc, argv, opts, pos, 0, 0, &npos, usage);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (iss == NULL || iss[0] == '\0')
        return pt_cli_error("--issuer is required (the `iss` of the provider's tokens)");
    if (file == NULL)
        return pt_cli_error("--jwks is required (a file with the provider's JWKS document)");
    if (aud != NULL && aud[0] == '\0')
        return pt_cli_error("--audience must not be empty");
    if (pt_cli_need_datadir(datadir) != 0)
        return PT_CLI_ERROR;
    if (pt_cli_read_file(file, JWKS_MAX, &text, &len) != 0)
        return PT_CLI_ERROR;
    if (pt_jwks_parse(text, len, &set, &skipped, err, sizeof err) != 0) {
        rc = pt_cli_error("%s: %s", file, err);
        goto done;
    }
    rc = pt_cli_open_store(datadir, &st);
    if (rc != 0)
        goto done;
    is.issuer = (char *)iss;
    is.audience = (char *)aud;
    is.jwks = text;
    if (pt_store_issuer_put(st, &is) != 0) {
        rc = pt_cli_error("%s", pt_store_errmsg(st));
        goto done;
    }
    printf("trusting tokens from %s%s%s with %zu key%s:\n", iss,
           aud != NULL ? " for audience " : "", aud != NULL ? aud : "", pt_jwks_count(set),
           pt_jwks_count(set) == 1 ? "" : "s");
    for (size_t i = 0; i < pt_jwks_count(set); i++) {
        pt_jwks_describe(set, i, desc, sizeof desc);
        printf("  %s\n", desc);
    }
    if (skipped > 0)
        printf("(%zu key%s skipped: only RS256 RSA keys of 2048 bits or more and ES256 P-256 "
               "keys are used)\n",
               skipped, skipped == 1 ? "" : "s");
done:
    pt_jwks_free(set);
    free(text);
    pt_store_close(st);
    return rc;
}

/* One row per trusted issuer; KEYS counts the usable keys of its stored JWKS. */
static int
auth_rows(pt_store *st, pt_cli_table *t)
{
    pt_issuer *list = NULL;
    size_t n = 0, i;
    char keys[32], err[256];
    int bad = 0;

    if (pt_store_issuer_list(st, &list, &n) != 0)
        return pt_cli_error("%s", pt_store_errmsg(st));
    for (i = 0; !bad && i < n; i++) {
        pt_jwks *set = NULL;
        if (pt_jwks_parse(list[i].jwks, strlen(list[i].jwks), &set, NULL, err, sizeof err) == 0)
            snprintf(keys, sizeof keys, "%zu", pt_jwks_count(set));
        else
            snprintf(keys, sizeof keys, "unusable");
        pt_jwks_free(set);
        bad |= pt_cli_table_adds(t, list[i].issuer) |
               pt_cli_table_adds(t, list[i].audience != NULL ? list[i].audience : "any") |
               pt_cli_table_adds(t, keys) | pt_cli_table_add_time(t, list[i].created, "-");
    }
    pt_store_issuers_free(list, n);
    return bad ? pt_cli_error("out of memory") : 0;
}

static int
auth_list(const char *datadir, int argc, char **argv)
{
    static const char *const head[] = {"ISSUER", "AUDIENCE", "KEYS", "TRUSTED SINCE"};

    return pt_cli_store_list_cmd(datadir, argc, argv, "auth list", head, 4, auth_rows);
}

static int
auth_untrust(const char *datadir, int argc, char **argv)
{
    return pt_cli_store_name_cmd(datadir, argc, argv, "auth untrust ISS", pt_store_issuer_rm,
                                 "tokens from ", " are no longer accepted");
}

static const pt_cli_sub auth_subs[] = {{"trust", NULL, auth_trust},
                                       {"list", "ls", auth_list},
                                       {"untrust", NULL, auth_untrust},
                                       {NULL, NULL, NULL}};

int
pt_cli_auth(const char *datadir, int argc, char **argv)
{
    return pt_cli_dispatch("auth", auth_usage, auth_subs, datadir, argc, argv);
}
