/* cli_endpoint.c - `portico endpoint add|list|show|rm`: publishing scripts at HTTP paths. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/err.h"
#include "server/router.h"
#include "store/store.h"

static const char endpoint_usage[] =
    "endpoint add NAME --path PATH --script SCRIPT --auth public|jwt|apikey [--method GET,POST] "
    "| list | show NAME | rm NAME";

/* The server's base URL for display: $PORTICO_URL, else the default listen address. */
static void
base_url(char *out, size_t outsz)
{
    const char *env = getenv("PORTICO_URL");
    size_t n;

    snprintf(out, outsz, "%s", env != NULL && env[0] != '\0' ? env : "http://127.0.0.1:8080");
    n = strlen(out);
    while (n > 0 && out[n - 1] == '/')
        out[--n] = '\0';
}

/* "GET, POST" -> "GET,POST" (for tables, where spaces would read as column breaks). */
static void
methods_compact(unsigned mask, char *out, size_t outsz)
{
    char tmp[128];
    const char *s;
    size_t o = 0;

    pt_http_format_methods(mask, tmp, sizeof tmp);
    for (s = tmp; *s != '\0' && o + 1 < outsz; s++)
        if (*s != ' ')
            out[o++] = *s;
    out[o] = '\0';
}

static int
endpoint_add(const char *datadir, int argc, char **argv)
{
    const char *usage = "endpoint add NAME --path PATH --script SCRIPT --auth public|jwt|apikey "
                        "[--method GET,POST]";
    const char *path = NULL, *script = NULL, *auth = NULL, *method = NULL;
    pt_cli_opt opts[] = {{"--path", 1, &path},     {"--script", 1, &script},  {"--auth", 1, &auth},
                         {"--method", 1, &method}, {"--methods", 1, &method}, {NULL, 0, NULL}};
    pt_endpoint ep = {0};
    pt_store *st = NULL;
    char *pos[1], url[512], methods[128];
    unsigned mask = PT_M_GET;
    int npos = 0, rc;

    rc = pt_cli_parse(argc, argv, opts, pos, 1, 1, &npos, usage);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (path == NULL)
        return pt_cli_error("--path is required (for example --path /accounts)");
    if (script == NULL)
        return pt_cli_error("--script is required (the name of a script added with "
                            "'portico script add')");
    if (auth == NULL)
        return pt_cli_error("--auth is required, so that publishing is a deliberate choice: "
                            "use --auth public, jwt or apikey");
    if (strcmp(auth, "public") != 0 && strcmp(auth, "jwt") != 0 && strcmp(auth, "apikey") != 0)
        return pt_cli_error("unknown --auth '%s' (public, jwt or apikey)", auth);
    if (method != NULL && pt_http_parse_methods(method, &mask) != 0)
        return pt_cli_error("invalid --method '%s' (a list of GET, POST, PUT, PATCH, DELETE, "
                            "HEAD, OPTIONS)",
                            method);
    rc = pt_cli_open_store(datadir, &st);
    if (rc != 0)
        return rc;
    ep.name = pos[0];
    ep.path = (char *)path;
    ep.script = (char *)script;
    ep.auth = (char *)auth;
    ep.methods = mask;
    if (pt_store_endpoint_add(st, &ep) != 0) {
        rc = pt_cli_error("%s", pt_store_errmsg(st));
        goto done;
    }
    base_url(url, sizeof url);
    pt_http_format_methods(mask, methods, sizeof methods);
    printf("endpoint %s: %s %s%s (script %s, auth %s)\n", pos[0], methods, url, path, script, auth);
done:
    pt_store_close(st);
    return rc;
}

static int
endpoint_rows(pt_store *st, pt_cli_table *t)
{
    pt_endpoint *list = NULL;
    size_t n = 0, i;
    char methods[128];
    int bad = 0;

    if (pt_store_endpoint_list(st, &list, &n) != 0)
        return pt_cli_error("%s", pt_store_errmsg(st));
    for (i = 0; !bad && i < n; i++) {
        methods_compact(list[i].methods, methods, sizeof methods);
        bad = pt_cli_table_adds(t, list[i].name) || pt_cli_table_adds(t, methods) ||
              pt_cli_table_adds(t, list[i].path) || pt_cli_table_adds(t, list[i].script) ||
              pt_cli_table_adds(t, list[i].auth);
    }
    pt_store_endpoints_free(list, n);
    return bad ? pt_cli_error("out of memory") : 0;
}

static int
endpoint_list(const char *datadir, int argc, char **argv)
{
    static const char *const head[] = {"NAME", "METHODS", "PATH", "SCRIPT", "AUTH"};

    return pt_cli_store_list_cmd(datadir, argc, argv, "endpoint list", head, 5, endpoint_rows);
}

static int
endpoint_show(const char *datadir, int argc, char **argv)
{
    const char *usage = "endpoint show NAME";
    pt_endpoint ep = {0};
    pt_store *st = NULL;
    pt_script *s = NULL;
    char *pos[1], url[512], methods[128], when[64];
    int npos = 0, rc;

    rc = pt_cli_parse(argc, argv, NULL, pos, 1, 1, &npos, usage);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    rc = pt_cli_open_store(datadir, &st);
    if (rc != 0)
        return rc;
    if (pt_store_endpoint_get(st, pos[0], &ep) != 0) {
        rc = pt_cli_error("%s", pt_store_errmsg(st));
        goto done;
    }
    base_url(url, sizeof url);
    pt_http_format_methods(ep.methods, methods, sizeof methods);
    pt_cli_format_time(ep.created, when, sizeof when);
    printf("name:     %s\n", ep.name);
    printf("path:     %s\n", ep.path);
    printf("methods:  %s\n", methods);
    if (pt_store_script_get(st, ep.script, 0, &s) == 0)
        printf("script:   %s (version %d)\n", ep.script, s->version);
    else
        printf("script:   %s\n", ep.script);
    printf("auth:     %s\n", ep.auth);
    printf("created:  %s\n", when);
    printf("url:      %s%s\n", url, ep.path);
done:
    pt_script_free(s);
    pt_endpoint_clear(&ep);
    pt_store_close(st);
    return rc;
}

static int
endpoint_rm(const char *datadir, int argc, char **argv)
{
    return pt_cli_store_name_cmd(datadir, argc, argv, "endpoint rm NAME", pt_store_endpoint_rm,
                                 "endpoint ", " removed");
}

static const pt_cli_sub endpoint_subs[] = {{"add", NULL, endpoint_add},
                                           {"list", "ls", endpoint_list},
                                           {"show", NULL, endpoint_show},
                                           {"rm", NULL, endpoint_rm},
                                           {NULL, NULL, NULL}};

int
pt_cli_endpoint(const char *datadir, int argc, char **argv)
{
    return pt_cli_dispatch("endpoint", endpoint_usage, endpoint_subs, datadir, argc, argv);
}
