/* cli_apikey.c - `portico apikey create|list|revoke`: built-in API keys for `--auth apikey`
 * endpoints. A key is printed once at creation; the store keeps only its keyed hash. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "auth/apikey.h"
#include "auth/keys.h"
#include "auth/ratelimit.h"
#include "cli/cli.h"
#include "core/err.h"
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
    char *pos[1], scope[MAX_SCOPE * 66], rate_text[32] = "", err[512];
    char key[PT_APIKEY_LEN + 1], hint[PT_APIKEY_HINT_LEN + 1];
    unsigned char *hash_key = NULL;
    pt_store *st = NULL;
    pt_apikey k = {0};
    pt_rate r;
    int npos = 0, rc;

    rc = pt_cli_parse(argc, argv, opts, pos, 1, 1, &npos, usage);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (!pt_store_name_valid(pos[0]))
        return pt_cli_error("invalid API key name '%s' (letters, digits, '_', '.', '-'; at most "
                            "64; not starting with '.' or '-')",
                            pos[0]);
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
    if (pt_keys_load(datadir, PT_KEY_APIKEY, &hash_key, err, sizeof err) != 0) {
        rc = pt_cli_error("cannot load the API key hashing key: %s", err);
        goto done;
    }
    if (pt_apikey_generate(key) != 0) {
        rc = pt_cli_error("cannot generate a key: libsodium is not available");
        goto done;
    }
    pt_apikey_hash(hash_key, key, PT_APIKEY_LEN, k.hash);
    memcpy(hint, key, PT_APIKEY_HINT_LEN);
    hint[PT_APIKEY_HINT_LEN] = '\0';
    k.name = pos[0];
    k.hint = hint;
    k.scope = scope;
    k.rate = rate_text[0] != '\0' ? rate_text : NULL;
    if (pt_store_apikey_add(st, &k) != 0) {
        rc = pt_cli_error("%s", pt_store_errmsg(st));
        goto done;
    }
    /* The key alone on stdout; it exists nowhere else from now on. */
    puts(key);
    fprintf(stderr,
            "API key %s created (id %lld); it is shown only now: store it safely (send it as "
            "X-Api-Key or Authorization: Bearer)\n",
            pos[0], (long long)k.id);
    rc = 0;
done:
    sodium_memzero(key, sizeof key);
    pt_keys_free(hash_key);
    pt_store_close(st);
    return rc;
}

static int
apikey_rows(pt_store *st, pt_cli_table *t)
{
    pt_apikey *list = NULL;
    size_t n = 0, i;
    char scope[1100], id[24], hint[64];
    int bad = 0;

    if (pt_store_apikey_list(st, &list, &n) != 0)
        return pt_cli_error("%s", pt_store_errmsg(st));
    for (i = 0; i < n; i++) {
        pt_cli_scope_display(list[i].scope, scope, sizeof scope);
        snprintf(id, sizeof id, "%lld", (long long)list[i].id);
        snprintf(hint, sizeof hint, "%s...", list[i].hint);
        bad |= pt_cli_table_adds(t, list[i].name) | pt_cli_table_adds(t, id) |
               pt_cli_table_adds(t, hint) | pt_cli_table_add_time(t, list[i].created, "-") |
               pt_cli_table_adds(t, scope) |
               pt_cli_table_adds(t, list[i].rate != NULL ? list[i].rate : "-") |
               pt_cli_table_add_time(t, list[i].revoked, "no") |
               pt_cli_table_add_time(t, list[i].last_used, "never");
    }
    pt_store_apikeys_free(list, n);
    return bad ? pt_cli_error("out of memory") : 0;
}

static int
apikey_list(const char *datadir, int argc, char **argv)
{
    static const char *const head[] = {"NAME",  "ID",   "KEY",     "CREATED",
                                       "SCOPE", "RATE", "REVOKED", "LAST USED"};

    return pt_cli_store_list_cmd(datadir, argc, argv, "apikey list", head, 8, apikey_rows);
}

static int
apikey_revoke(const char *datadir, int argc, char **argv)
{
    return pt_cli_store_name_cmd(datadir, argc, argv, "apikey revoke NAME", pt_store_apikey_revoke,
                                 "API key ", " revoked");
}

static const pt_cli_sub apikey_subs[] = {{"create", NULL, apikey_create},
                                         {"list", "ls", apikey_list},
                                         {"revoke", NULL, apikey_revoke},
                                         {NULL, NULL, NULL}};

int
pt_cli_apikey(const char *datadir, int argc, char **argv)
{
    return pt_cli_dispatch("apikey", apikey_usage, apikey_subs, datadir, argc, argv);
}
