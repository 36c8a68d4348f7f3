/* cli_endpoint.c - `portico endpoint add|set|list|show|rm`: publishing scripts at HTTP paths,
 * through the admin API (cli_api.h: in-process on the data dir, or --server). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "admin/admin_tests.h"
#include "cli/cli.h"
#include "cli/cli_api.h"
#include "cli/cli_epset.h"
#include "core/err.h"
#include "core/log.h"
#include "core/request.h"
#include "py/py.h"
#include "server/server.h"
#include "server/router.h"
#include "store/store.h"

static const char endpoint_usage[] =
    "endpoint add NAME --path PATH --script SCRIPT --auth public|jwt|apikey [--method GET,POST] "
    "[SETTINGS] | set NAME [--path PATH] [--script SCRIPT] [--auth AUTH] [--method M,...] "
    "[SETTINGS] | list | "
    "show NAME | rm NAME | test NAME [--method M] [--path P] [--query a=1]... "
    "[--header 'K: V']... [--data @FILE|TEXT] [--json]\n"
    "SETTINGS: " PT_CLI_EPSET_USAGE;

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

/* The methods of an endpoint's JSON (["GET", "POST"]) as a mask. */
static unsigned
methods_of(json_t *ep)
{
    unsigned mask = 0, bit;
    size_t i;
    json_t *m;

    json_array_foreach(json_object_get(ep, "methods"), i, m)
    {
        if (json_is_string(m) && pt_http_parse_methods(json_string_value(m), &bit) == 0)
            mask |= bit;
    }
    return mask;
}

/* String member `key` of o, or "". Borrowed from o. */
static const char *
str_of(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s != NULL ? s : "";
}

/* Builds the body of `endpoint add` and `set` from the options given (NULL: not given);
 * checks them first as the CLI always did. Returns 0 with *body (new reference), or the exit
 * status with the error printed. */
static int
endpoint_body(const char *path, const char *script, const char *auth, const char *method,
              json_t **body)
{
    unsigned mask = 0;
    char methods[128];

    if (auth != NULL && strcmp(auth, "public") != 0 && strcmp(auth, "jwt") != 0 &&
        strcmp(auth, "apikey") != 0)
        return pt_cli_error("unknown --auth '%s' (public, jwt or apikey)", auth);
    if (method != NULL && pt_http_parse_methods(method, &mask) != 0)
        return pt_cli_error("invalid --method '%s' (a list of GET, POST, PUT, PATCH, DELETE, "
                            "HEAD, OPTIONS)",
                            method);
    *body = json_object();
    if (path != NULL)
        json_object_set_new(*body, "path", json_string(path));
    if (script != NULL)
        json_object_set_new(*body, "script", json_string(script));
    if (auth != NULL)
        json_object_set_new(*body, "auth", json_string(auth));
    if (method != NULL) {
        json_t *arr = json_array();
        pt_http_format_methods(mask, methods, sizeof methods);
        for (char *tok = strtok(methods, ", "); tok != NULL; tok = strtok(NULL, ", "))
            json_array_append_new(arr, json_string(tok));
        json_object_set_new(*body, "methods", arr);
    }
    return 0;
}

/* Prints "endpoint NAME: GET http://.../path (script S, auth A)" from an endpoint's JSON. */
static void
print_published(json_t *ep)
{
    char url[512], methods[128];

    base_url(url, sizeof url);
    pt_http_format_methods(methods_of(ep), methods, sizeof methods);
    printf("endpoint %s: %s %s%s (script %s, auth %s)\n", str_of(ep, "name"), methods, url,
           str_of(ep, "path"), str_of(ep, "script"), str_of(ep, "auth"));
}

static int
endpoint_add(const char *datadir, int argc, char **argv)
{
    const char *usage = "endpoint add NAME --path PATH --script SCRIPT --auth public|jwt|apikey "
                        "[--method GET,POST] " PT_CLI_EPSET_USAGE;
    const char *path = NULL, *script = NULL, *auth = NULL, *method = NULL;
    pt_cli_epset es = {0};
    pt_cli_opt opts[6 + PT_CLI_EPSET_NOPTS] = {{"--path", 1, &path},      {"--script", 1, &script},
                                               {"--auth", 1, &auth},      {"--method", 1, &method},
                                               {"--methods", 1, &method}, {NULL, 0, NULL}};
    pt_cli_reply rep;
    json_t *body = NULL;
    char *pos[1];
    int npos = 0, rc;

    pt_cli_epset_opts(&es, &opts[5]);
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
    if ((rc = endpoint_body(path, script, auth, method, &body)) != 0)
        return rc;
    if ((rc = pt_cli_epset_body(&es, body)) != 0) {
        json_decref(body);
        return rc;
    }
    json_object_set_new(body, "name", json_string(pos[0]));
    if ((rc = pt_cli_api(datadir, "POST", "/endpoints", NULL, body, &rep)) != 0)
        return rc;
    print_published(rep.body);
    pt_cli_reply_clear(&rep);
    return 0;
}

static int
endpoint_set(const char *datadir, int argc, char **argv)
{
    const char *usage = "endpoint set NAME [--path PATH] [--script SCRIPT] "
                        "[--auth public|jwt|apikey] [--method GET,POST] " PT_CLI_EPSET_USAGE;
    const char *path = NULL, *script = NULL, *auth = NULL, *method = NULL;
    pt_cli_epset es = {0};
    pt_cli_opt opts[6 + PT_CLI_EPSET_NOPTS] = {{"--path", 1, &path},      {"--script", 1, &script},
                                               {"--auth", 1, &auth},      {"--method", 1, &method},
                                               {"--methods", 1, &method}, {NULL, 0, NULL}};
    pt_cli_reply rep;
    json_t *body = NULL;
    char *pos[1], apath[512];
    int npos = 0, rc;

    pt_cli_epset_opts(&es, &opts[5]);
    rc = pt_cli_parse(argc, argv, opts, pos, 1, 1, &npos, usage);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (path == NULL && script == NULL && auth == NULL && method == NULL &&
        !pt_cli_epset_given(&es))
        return pt_cli_error("nothing to change: give --path, --script, --auth, --method or a "
                            "setting (--timeout, --max-concurrency, --queue-wait, --cache, "
                            "--max-body, --cors)");
    if (pt_cli_api_path(apath, sizeof apath, "endpoints", pos[0], NULL) != 0)
        return pt_cli_error("the endpoint name is too long");
    if ((rc = endpoint_body(path, script, auth, method, &body)) != 0)
        return rc;
    if ((rc = pt_cli_epset_body(&es, body)) != 0) {
        json_decref(body);
        return rc;
    }
    if ((rc = pt_cli_api(datadir, "PATCH", apath, NULL, body, &rep)) != 0)
        return rc;
    print_published(rep.body);
    pt_cli_reply_clear(&rep);
    return 0;
}

static int
endpoint_list(const char *datadir, int argc, char **argv)
{
    static const pt_cli_col cols[] = {
        {"NAME", "name", PT_CLI_COL_TEXT, NULL, NULL},
        {"METHODS", "methods", PT_CLI_COL_LIST, NULL, NULL},
        {"PATH", "path", PT_CLI_COL_TEXT, NULL, NULL},
        {"SCRIPT", "script", PT_CLI_COL_TEXT, NULL, NULL},
        {"AUTH", "auth", PT_CLI_COL_TEXT, NULL, NULL},
        {"SETTINGS", NULL, PT_CLI_COL_FN, NULL, NULL, pt_cli_epset_summary},
    };

    return pt_cli_api_list_cmd(datadir, argc, argv, "endpoint list", "/endpoints", "endpoints",
                               cols, 6);
}

static int
endpoint_show(const char *datadir, int argc, char **argv)
{
    const char *usage = "endpoint show NAME";
    pt_cli_reply rep, srep = {0};
    char *pos[1], path[512], url[512], methods[128], when[64];
    int npos = 0, rc;

    rc = pt_cli_parse(argc, argv, NULL, pos, 1, 1, &npos, usage);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (pt_cli_api_path(path, sizeof path, "endpoints", pos[0], NULL) != 0)
        return pt_cli_error("the endpoint name is too long");
    if ((rc = pt_cli_api(datadir, "GET", path, NULL, NULL, &rep)) != 0)
        return rc;
    json_t *ep = rep.body;
    const char *script = str_of(ep, "script");
    base_url(url, sizeof url);
    pt_http_format_methods(methods_of(ep), methods, sizeof methods);
    pt_cli_format_time(json_integer_value(json_object_get(ep, "created")), when, sizeof when);
    printf("name:     %s\n", str_of(ep, "name"));
    printf("path:     %s\n", str_of(ep, "path"));
    printf("methods:  %s\n", methods);
    /* The script's current version, when it can be read. */
    if (pt_cli_api_path(path, sizeof path, "scripts", script, NULL) == 0 &&
        pt_cli_api_raw(datadir, "GET", path, NULL, NULL, &srep) == 0 && srep.status == 200)
        printf("script:   %s (version %d)\n", script,
               (int)json_integer_value(json_object_get(srep.body, "current")));
    else
        printf("script:   %s\n", script);
    pt_cli_reply_clear(&srep);
    printf("auth:     %s\n", str_of(ep, "auth"));
    pt_cli_epset_print(ep);
    printf("created:  %s\n", when);
    printf("url:      %s%s\n", url, str_of(ep, "path"));
    pt_cli_reply_clear(&rep);
    return 0;
}

static int
endpoint_rm(const char *datadir, int argc, char **argv)
{
    pt_cli_reply rep;
    char *pos[1], path[512];
    int npos = 0, rc;

    rc = pt_cli_parse(argc, argv, NULL, pos, 1, 1, &npos, "endpoint rm NAME");
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (pt_cli_api_path(path, sizeof path, "endpoints", pos[0], NULL) != 0)
        return pt_cli_error("the endpoint name is too long");
    if ((rc = pt_cli_api(datadir, "DELETE", path, NULL, NULL, &rep)) != 0)
        return rc;
    printf("endpoint %s removed\n", pos[0]);
    pt_cli_reply_clear(&rep);
    return 0;
}

/* ---- endpoint test (issue 9: test runs) ------------------------------------------------ */

#define TEST_MAX 64 /* --query and --header options */

/* Prints the answer of a test run (its JSON, admin_tests.h: pt_admin_test_result) as JSON, or
 * as text: status, headers, body, printed lines, traceback, duration. Returns the exit status:
 * 0 for a 2xx or 3xx answer, else PT_CLI_ERROR. */
static int
print_test_result(json_t *o, int as_json)
{
    int status = (int)json_integer_value(json_object_get(o, "status"));
    const char *k;
    json_t *v;
    size_t i;

    if (as_json) {
        char *text = json_dumps(o, JSON_INDENT(2));
        if (text == NULL)
            return pt_cli_error("out of memory");
        puts(text);
        free(text);
        return status >= 200 && status < 400 ? PT_CLI_OK : PT_CLI_ERROR;
    }
    printf("HTTP %d %s\n", status, pt_http_reason(status));
    json_object_foreach(json_object_get(o, "headers"), k, v)
    {
        printf("%s: %s\n", k, json_string_value(v) != NULL ? json_string_value(v) : "");
    }
    printf("\n");
    json_t *b = json_object_get(o, "body");
    const char *body = json_string_value(b) != NULL ? json_string_value(b) : "";
    size_t n = json_string_length(b);
    unsigned char *raw = NULL;
    if (json_is_true(json_object_get(o, "body_base64")) && (raw = malloc(n + 1)) != NULL &&
        sodium_base642bin(raw, n, body, n, NULL, &n, NULL, sodium_base64_VARIANT_ORIGINAL) == 0)
        body = (const char *)raw;
    fwrite(body, 1, n, stdout);
    if (n > 0 && body[n - 1] != '\n')
        printf("\n");
    free(raw);
    if (json_array_size(json_object_get(o, "printed")) > 0)
        printf("\n--- printed\n");
    json_array_foreach(json_object_get(o, "printed"), i, v)
    {
        printf("%s\n", json_string_value(v));
    }
    const char *tb = json_string_value(json_object_get(o, "traceback"));
    if (tb != NULL && tb[0] != '\0')
        printf("\n--- traceback\n%s\n", tb);
    printf("\n--- %.3f ms\n", json_number_value(json_object_get(o, "duration_ms")));
    return status >= 200 && status < 400 ? PT_CLI_OK : PT_CLI_ERROR;
}

/* `endpoint test` through --server: POST /endpoints/{name}/test with the request's parts (a
 * body that is not UTF-8 goes as base64). Returns the exit status. */
static int
test_remote(const char *name, const char *method, const char *path, const char *query,
            const char *const *hnames, const char *const *hvalues, int nh, const char *body,
            size_t body_len, int as_json)
{
    pt_cli_reply rep;
    char apath[512];
    int rc;

    if (pt_cli_api_path(apath, sizeof apath, "endpoints", name, NULL) != 0)
        return pt_cli_error("the endpoint name is too long");
    if ((rc = pt_cli_api(NULL, "GET", apath, NULL, NULL, &rep)) != 0)
        return rc;
    const char *pattern = str_of(rep.body, "path");
    if (path == NULL && strchr(pattern, '{') != NULL)
        rc = pt_cli_error("endpoint %s has path parameters (%s): give --path", name, pattern);
    pt_cli_reply_clear(&rep);
    if (rc != 0)
        return rc;
    pt_cli_api_path(apath, sizeof apath, "endpoints", name, "test", NULL);
    json_t *req = json_pack("{s:s*, s:s*, s:s*, s:o}", "method", method, "path", path, "query",
                            query, "headers", json_object());
    for (int i = 0; i < nh; i++)
        json_object_set_new(json_object_get(req, "headers"), hnames[i], json_string(hvalues[i]));
    if (body != NULL) {
        json_t *text = json_stringn(body, body_len);
        if (text == NULL) { /* not UTF-8 */
            size_t cap = sodium_base64_ENCODED_LEN(body_len, sodium_base64_VARIANT_ORIGINAL);
            char *enc = malloc(cap);
            if (enc != NULL)
                sodium_bin2base64(enc, cap, (const unsigned char *)body, body_len,
                                  sodium_base64_VARIANT_ORIGINAL);
            text = enc != NULL ? json_string(enc) : NULL;
            free(enc);
            json_object_set_new(req, "body_base64", json_true());
        }
        json_object_set_new(req, "body", text != NULL ? text : json_string(""));
    }
    if ((rc = pt_cli_api(NULL, "POST", apath, NULL, req, &rep)) != 0)
        return rc;
    rc = print_test_result(rep.body, as_json);
    pt_cli_reply_clear(&rep);
    return rc;
}

static int
endpoint_test(const char *datadir, int argc, char **argv)
{
    const char *usage = "endpoint test NAME [--method M] [--path P] [--query a=1]... "
                        "[--header 'K: V']... [--data @FILE|TEXT] [--timeout SECONDS] [--json]";
    const char *method = NULL, *path = NULL, *data = NULL, *json = NULL, *timeout = NULL;
    const char *queries[TEST_MAX], *headers[TEST_MAX];
    const char *hnames[TEST_MAX], *hvalues[TEST_MAX];
    char hbuf[TEST_MAX][256];
    int nq = 0, nh = 0, npos = 0, rc;
    pt_cli_opt opts[] = {{"--method", 1, &method},
                         {"--path", 1, &path},
                         {"--query", PT_CLI_LIST, NULL, queries, &nq, TEST_MAX},
                         {"--header", PT_CLI_LIST, NULL, headers, &nh, TEST_MAX},
                         {"--data", 1, &data},
                         {"--timeout", 1, &timeout},
                         {"--json", 0, &json},
                         {NULL, 0, NULL}};
    pt_endpoint ep = {0};
    pt_store *st = NULL;
    pt_script *s = NULL;
    pt_request req = {0};
    pt_response resp;
    pt_server_config cfg;
    pt_buf query;
    char *pos[1], *body = NULL, err[256];
    size_t body_len = 0;

    rc = pt_cli_parse(argc, argv, opts, pos, 1, 1, &npos, usage);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    pt_server_config_init(&cfg, datadir);
    if (timeout != NULL) {
        char *end;
        cfg.timeout = strtod(timeout, &end);
        if (*end != '\0' || end == timeout || !(cfg.timeout > 0 && cfg.timeout <= 86400))
            return pt_cli_error("invalid --timeout '%s' (seconds, more than 0)", timeout);
    }
    for (int i = 0; i < nh; i++) {
        const char *colon = strchr(headers[i], ':');
        size_t n = colon != NULL ? (size_t)(colon - headers[i]) : 0;
        if (n == 0 || n >= sizeof(hbuf[i]) || strcspn(headers[i], " \t") < n)
            return pt_cli_error("invalid --header '%s' (NAME: VALUE)", headers[i]);
        memcpy(hbuf[i], headers[i], n);
        hbuf[i][n] = '\0';
        hnames[i] = hbuf[i];
        hvalues[i] = colon + 1 + strspn(colon + 1, " \t");
    }
    if (data != NULL && data[0] == '@') {
        if (pt_cli_read_file(data + 1, 64u << 20, &body, &body_len) != 0)
            return PT_CLI_ERROR;
    } else if (data != NULL && (body = strdup(data)) != NULL) {
        body_len = strlen(body);
    }
    pt_buf_init(&query, 0);
    for (int i = 0; i < nq; i++)
        pt_buf_printf(&query, "%s%s", i > 0 ? "&" : "", queries[i]);
    pt_response_init(&resp, 0);
    if (pt_cli_api_server() != NULL) {
        /* The server's runtime, with its --timeout. */
        rc = timeout != NULL
                 ? pt_cli_error("--timeout is the server's (serve --timeout) with "
                                "--server")
                 : test_remote(pos[0], method, path, query.len > 0 ? pt_buf_cstr(&query) : NULL,
                               hnames, hvalues, nh, body, body_len, json != NULL);
        goto done;
    }
    if ((rc = pt_cli_open_store(datadir, &st)) != 0)
        goto done;
    if (pt_store_endpoint_get(st, pos[0], &ep) != 0) {
        rc = pt_cli_error("%s", pt_store_errmsg(st));
        goto done;
    }
    if (pt_store_script_get(st, ep.script, 0, &s) != 0) {
        rc = pt_cli_error("%s", pt_store_errmsg(st));
        goto done;
    }
    if (path == NULL && strchr(ep.path, '{') != NULL) {
        rc = pt_cli_error("endpoint %s has path parameters (%s): give --path", ep.name, ep.path);
        goto done;
    }
    char first[16] = "GET";
    if (!(ep.methods & PT_M_GET))
        for (unsigned bit = 1; bit <= PT_M_OPTIONS; bit <<= 1)
            if (ep.methods & bit) {
                pt_http_format_methods(bit, first, sizeof(first));
                break;
            }
    pt_request_parts parts = {
        .method = method != NULL ? method : first,
        .path = path != NULL ? path : ep.path,
        .query = query.len > 0 ? pt_buf_cstr(&query) : NULL,
        .header_names = hnames,
        .header_values = hvalues,
        .nheaders = (size_t)nh,
        .body = body,
        .body_len = body_len,
        .pattern = ep.path,
    };
    if (pt_request_from_parts(&req, &parts, err, sizeof(err)) != 0) {
        rc = pt_cli_error("%s", err);
        goto done;
    }
    /* In this process, as `portico run` runs scripts: the worker's runtime and limits. The
     * log's lines would repeat what is printed below. */
    pt_log_set_level((enum pt_log_level)(PT_LOG_ERROR + 1));
    if (pt_py_init_worker(datadir) != 0) {
        rc = pt_cli_error("cannot start the Python runtime");
        goto done;
    }
    pt_py_set_memory_budget(cfg.worker_memory);
    pt_script_ref ref = {s->name, s->version, s->source, s->source_len, s->id};
    double ms = pt_py_test_run(&ref, 0, &req, cfg.timeout, &resp);
    json_t *o = pt_admin_test_result(&resp, ms);
    rc = o != NULL ? print_test_result(o, json != NULL) : pt_cli_error("out of memory");
    json_decref(o);
done:
    pt_response_free(&resp);
    pt_request_clear(&req);
    pt_buf_free(&query);
    free(body);
    pt_script_free(s);
    pt_endpoint_clear(&ep);
    pt_store_close(st);
    return rc;
}

/* ---- end of endpoint test ------------------------------------------------------------- */

static const pt_cli_sub endpoint_subs[] = {{"add", NULL, endpoint_add, PT_CLI_REMOTE},
                                           {"set", NULL, endpoint_set, PT_CLI_REMOTE},
                                           {"list", "ls", endpoint_list, PT_CLI_REMOTE},
                                           {"show", NULL, endpoint_show, PT_CLI_REMOTE},
                                           {"rm", NULL, endpoint_rm, PT_CLI_REMOTE},
                                           {"test", NULL, endpoint_test, PT_CLI_REMOTE},
                                           {NULL, NULL, NULL, 0}};

int
pt_cli_endpoint(const char *datadir, int argc, char **argv)
{
    return pt_cli_dispatch("endpoint", endpoint_usage, endpoint_subs, datadir, argc, argv);
}
