/* admin_epset.c - an endpoint's settings in the admin API's JSON (admin_epset.h). */
#include "admin/admin_epset.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"

/* A setting as JSON: the integer, or null when 0 (not set). New reference. */
static json_t *
int_or_null(int64_t v)
{
    return v != 0 ? json_integer((json_int_t)v) : json_null();
}

json_t *
pt_admin_epset_json(const pt_ep_settings *s)
{
    json_t *cors = json_null();
    if (s->cors != NULL) {
        cors = json_array();
        const char *p = s->cors;
        while (cors != NULL && *p != '\0') {
            const char *end = strchr(p, ',');
            size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
            json_array_append_new(cors, json_stringn(p, n));
            p += n + (end != NULL);
        }
    }
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o*}", "timeout_ms", int_or_null(s->timeout_ms),
                     "max_concurrency", int_or_null(s->max_concurrency), "queue_wait_ms",
                     int_or_null(s->queue_wait_ms), "cache_ms", int_or_null(s->cache_ms),
                     "max_body", int_or_null(s->max_body), "cors", cors);
}

/* Reads member `key` of o into *v: an integer, null (0), or a string parsed as a duration
 * (is_size 0) or a size (is_size 1). Absent: *v unchanged. Returns 0 or -1 (message in err). */
static int
read_number(json_t *o, const char *key, int is_size, int64_t *v, char *err, size_t errsz)
{
    json_t *m = json_object_get(o, key);
    if (m == NULL)
        return 0;
    if (json_is_null(m)) {
        *v = 0;
        return 0;
    }
    if (json_is_integer(m) && json_integer_value(m) >= 0) {
        *v = (int64_t)json_integer_value(m);
        return 0;
    }
    if (json_is_string(m)) {
        size_t bytes;
        if (!is_size && pt_epset_parse_ms(json_string_value(m), v) == 0)
            return 0;
        if (is_size && pt_config_parse_size(json_string_value(m), &bytes) == 0 &&
            bytes <= (size_t)PT_EPSET_BODY_MAX) {
            *v = (int64_t)bytes;
            return 0;
        }
    }
    snprintf(err, errsz, "settings.%s must be %s, or null to clear it", key,
             is_size ? "a number of bytes or a size such as \"1MiB\""
                     : "a whole number (milliseconds, or requests) or a duration such as \"5s\"");
    return -1;
}

int
pt_admin_epset_read(pt_admin_call *c, pt_admin_reply *r, pt_ep_settings *s, const char *auth)
{
    static const char *const keys[] = {"timeout_ms", "max_concurrency", "queue_wait_ms", "cache_ms",
                                       "max_body"};
    int64_t *fields[] = {&s->timeout_ms, &s->max_concurrency, &s->queue_wait_ms, &s->cache_ms,
                         &s->max_body};
    char err[512] = "";
    json_t *o = json_object_get(c->body, "settings");
    const char *key;
    json_t *v;

    if (o != NULL && !json_is_object(o))
        return pt_admin_fail(r, 400, "bad_request", "settings",
                             "settings is an object such as {\"timeout_ms\": 5000}");
    json_object_foreach(o, key, v)
    {
        int known = strcmp(key, "cors") == 0;
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
            known |= strcmp(key, keys[i]) == 0;
        if (!known)
            return pt_admin_fail(r, 400, "bad_request", "settings",
                                 "unknown setting '%s' (timeout_ms, max_concurrency, "
                                 "queue_wait_ms, cache_ms, max_body, cors)",
                                 key);
    }
    for (size_t i = 0; o != NULL && i < sizeof keys / sizeof keys[0]; i++)
        if (read_number(o, keys[i], i == 4, fields[i], err, sizeof err) != 0)
            return pt_admin_fail(r, 400, "bad_request", "settings", "%s", err);
    json_t *cors = json_object_get(o, "cors");
    if (cors != NULL) {
        pt_buf list;
        size_t i;
        json_t *e;
        int bad = 0;
        pt_buf_init(&list, PT_EPSET_CORS_MAX + 1);
        if (json_is_string(cors)) {
            bad = pt_buf_puts(&list, json_string_value(cors)) != 0;
        } else if (json_is_array(cors)) {
            json_array_foreach(cors, i, e)
            {
                bad |= !json_is_string(e) ||
                       pt_buf_printf(&list, "%s%s", i > 0 ? "," : "", json_string_value(e)) != 0;
            }
        } else if (!json_is_null(cors)) {
            bad = 1;
        }
        if (bad) {
            pt_buf_free(&list);
            return pt_admin_fail(r, 400, "bad_request", "settings",
                                 "settings.cors is a list of origins such as "
                                 "[\"https://app.example.com\"], [\"*\"], or null");
        }
        free(s->cors);
        s->cors = NULL;
        if (json_is_string(cors) || json_array_size(cors) > 0) {
            s->cors = strdup(pt_buf_cstr(&list));
            if (s->cors == NULL) {
                pt_buf_free(&list);
                return pt_admin_fail(r, 503, "unavailable", NULL, "out of memory");
            }
        }
        pt_buf_free(&list);
    }
    if (pt_epset_check(s, auth, err, sizeof err) != 0)
        return pt_admin_fail(r, 400, "bad_request", "settings", "%s", err);
    return 0;
}
