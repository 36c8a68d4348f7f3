/* cli_epset.c - the per-endpoint settings flags of `endpoint add|set`, and their display. */
#include "cli/cli_epset.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/epset.h"

void
pt_cli_epset_opts(pt_cli_epset *e, pt_cli_opt *opts)
{
    const pt_cli_opt o[PT_CLI_EPSET_NOPTS] = {
        {"--timeout", 1, &e->timeout},       {"--max-concurrency", 1, &e->max_concurrency},
        {"--queue-wait", 1, &e->queue_wait}, {"--cache", 1, &e->cache},
        {"--max-body", 1, &e->max_body},     {"--cors", 1, &e->cors},
        {"--no-cache", 0, &e->no_cache},     {"--no-cors", 0, &e->no_cors},
    };
    memcpy(opts, o, sizeof o);
}

int
pt_cli_epset_given(const pt_cli_epset *e)
{
    return e->timeout != NULL || e->max_concurrency != NULL || e->queue_wait != NULL ||
           e->cache != NULL || e->max_body != NULL || e->cors != NULL || e->no_cache != NULL ||
           e->no_cors != NULL;
}

/* Does v ask for the server-wide value (or none)? */
static int
is_default(const char *v)
{
    return strcmp(v, "default") == 0 || strcmp(v, "off") == 0 || strcmp(v, "none") == 0;
}

/* Sets settings[key] from a duration flag's value v (NULL: not given). */
static int
put_ms(json_t *set, const char *key, const char *flag, const char *v, int zero_ok)
{
    int64_t ms;
    if (v == NULL)
        return 0;
    if (is_default(v)) {
        json_object_set_new(set, key, json_null());
        return 0;
    }
    if (pt_epset_parse_ms(v, &ms) != 0 || (ms == 0 && !zero_ok))
        return pt_cli_error("invalid %s '%s' (a duration such as 200ms, 5s or 2m%s; or default)",
                            flag, v, zero_ok ? "" : ", more than 0");
    json_object_set_new(set, key, json_integer(ms));
    return 0;
}

int
pt_cli_epset_body(const pt_cli_epset *e, json_t *body)
{
    json_t *set;
    int rc = 0;

    if (!pt_cli_epset_given(e))
        return 0;
    if (e->cache != NULL && e->no_cache != NULL)
        return pt_cli_error("give --cache or --no-cache, not both");
    if (e->cors != NULL && e->no_cors != NULL)
        return pt_cli_error("give --cors or --no-cors, not both");
    set = json_object();
    if (set == NULL)
        return pt_cli_error("out of memory");
    if ((rc = put_ms(set, "timeout_ms", "--timeout", e->timeout, 0)) != 0 ||
        (rc = put_ms(set, "queue_wait_ms", "--queue-wait", e->queue_wait, 1)) != 0 ||
        (rc = put_ms(set, "cache_ms", "--cache", e->no_cache != NULL ? "off" : e->cache, 0)) != 0)
        goto done;
    if (e->max_concurrency != NULL) {
        long n;
        if (is_default(e->max_concurrency) || strcmp(e->max_concurrency, "unlimited") == 0) {
            json_object_set_new(set, "max_concurrency", json_null());
        } else if (pt_cli_parse_long(e->max_concurrency, 1, PT_EPSET_CONCURRENCY_MAX, &n) != 0) {
            rc = pt_cli_error("invalid --max-concurrency '%s' (1 to %d, or default: unlimited)",
                              e->max_concurrency, PT_EPSET_CONCURRENCY_MAX);
            goto done;
        } else {
            json_object_set_new(set, "max_concurrency", json_integer(n));
        }
    }
    if (e->max_body != NULL) {
        size_t bytes;
        if (is_default(e->max_body)) {
            json_object_set_new(set, "max_body", json_null());
        } else if (pt_config_parse_size(e->max_body, &bytes) != 0 || bytes == 0 ||
                   bytes > (size_t)PT_EPSET_BODY_MAX) {
            rc = pt_cli_error("invalid --max-body '%s' (a size such as 512KiB or 1MiB, at most "
                              "1GiB; or default)",
                              e->max_body);
            goto done;
        } else {
            json_object_set_new(set, "max_body", json_integer((json_int_t)bytes));
        }
    }
    if (e->no_cors != NULL || (e->cors != NULL && is_default(e->cors))) {
        json_object_set_new(set, "cors", json_null());
    } else if (e->cors != NULL) {
        char err[384], *copy = strdup(e->cors);
        if (copy == NULL || pt_epset_check_cors(copy, err, sizeof err) != 0) {
            rc = pt_cli_error("invalid --cors: %s", copy != NULL ? err : "out of memory");
            free(copy);
            goto done;
        }
        json_object_set_new(set, "cors", json_string(copy));
        free(copy);
    }
    json_object_set(body, "settings", set);
done:
    json_decref(set);
    return rc;
}

/* Integer member `key` of the settings of ep, 0 when null or absent. */
static long long
setting(json_t *ep, const char *key)
{
    return (long long)json_integer_value(json_object_get(json_object_get(ep, "settings"), key));
}

/* The CORS origins of ep joined with ',', "" when none, into out. */
static void
cors_of(json_t *ep, char *out, size_t outsz)
{
    json_t *o;
    size_t i, n = 0;
    out[0] = '\0';
    json_array_foreach(json_object_get(json_object_get(ep, "settings"), "cors"), i, o)
    {
        int w = snprintf(out + n, outsz - n, "%s%s", i > 0 ? "," : "", json_string_value(o));
        if (w < 0 || (size_t)w >= outsz - n)
            break;
        n += (size_t)w;
    }
}

void
pt_cli_epset_summary(json_t *ep, char *out, size_t outsz)
{
    char v[64], cors[PT_EPSET_CORS_MAX + 1];
    size_t n = 0;
    long long x;

    out[0] = '\0';
#define ADD(...)                                                                                   \
    do {                                                                                           \
        int w_ = snprintf(out + n, outsz - n, "%s", n > 0 ? " " : "");                             \
        if (w_ > 0 && (size_t)w_ < outsz - n)                                                      \
            n += (size_t)w_;                                                                       \
        w_ = snprintf(out + n, outsz - n, __VA_ARGS__);                                            \
        if (w_ > 0 && (size_t)w_ < outsz - n)                                                      \
            n += (size_t)w_;                                                                       \
    } while (0)
    if ((x = setting(ep, "timeout_ms")) != 0) {
        pt_epset_format_ms(x, v, sizeof v);
        ADD("timeout=%s", v);
    }
    if ((x = setting(ep, "max_concurrency")) != 0)
        ADD("max-concurrency=%lld", x);
    if ((x = setting(ep, "queue_wait_ms")) != 0) {
        pt_epset_format_ms(x, v, sizeof v);
        ADD("queue-wait=%s", v);
    }
    if ((x = setting(ep, "cache_ms")) != 0) {
        pt_epset_format_ms(x, v, sizeof v);
        ADD("cache=%s", v);
    }
    if ((x = setting(ep, "max_body")) != 0) {
        pt_epset_format_size(x, v, sizeof v);
        ADD("max-body=%s", v);
    }
    cors_of(ep, cors, sizeof cors);
    if (cors[0] != '\0')
        ADD("cors=%s", cors);
#undef ADD
    if (n == 0)
        snprintf(out, outsz, "-");
}

void
pt_cli_epset_print(json_t *ep)
{
    char v[64], cors[PT_EPSET_CORS_MAX + 1];
    long long x;

    x = setting(ep, "timeout_ms");
    pt_epset_format_ms(x, v, sizeof v);
    printf("timeout:  %s\n", x != 0 ? v : "default (serve --timeout)");
    x = setting(ep, "max_concurrency");
    if (x != 0) {
        long long q = setting(ep, "queue_wait_ms");
        pt_epset_format_ms(q, v, sizeof v);
        printf("max concurrency: %lld (queue wait %s)\n", x, v);
    } else {
        printf("max concurrency: unlimited\n");
    }
    x = setting(ep, "cache_ms");
    pt_epset_format_ms(x, v, sizeof v);
    printf("cache:    %s\n", x != 0 ? v : "off");
    x = setting(ep, "max_body");
    pt_epset_format_size(x, v, sizeof v);
    printf("max body: %s\n", x != 0 ? v : "default (serve --max-body)");
    cors_of(ep, cors, sizeof cors);
    printf("cors:     %s\n", cors[0] != '\0' ? cors : "off");
}
