/* admin_audit.c - GET /audit: the audit log, newest first, filtered by time and actor. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin/admin.h"
#include "core/config.h"
#include "core/err.h"
#include "store/store_audit.h"

/* One entry as JSON (detail parsed back into an object). New reference or NULL. */
static json_t *
entry_json(const pt_audit_entry *e)
{
    json_t *detail = json_loads(e->detail, JSON_DECODE_ANY, NULL);
    return json_pack("{s:I, s:I, s:s, s:s, s:s, s:o}", "id", (json_int_t)e->id, "time",
                     (json_int_t)e->time, "actor", e->actor, "action", e->action, "object",
                     e->object, "detail", detail != NULL ? detail : json_object());
}

static int
list(pt_admin_call *c, pt_admin_reply *r)
{
    const char *since = pt_admin_query_str(c, "since");
    const char *actor = pt_admin_query_str(c, "actor");
    const char *limit = pt_admin_query_str(c, "limit");
    int64_t secs = 0, from = 0, max = 100;
    pt_audit_entry *list = NULL;
    size_t n = 0;

    if (since != NULL) {
        if (pt_config_parse_duration(since, &secs) != 0 || secs < 0)
            return pt_admin_fail(r, 400, "bad_request", "since",
                                 "since is a duration such as 15m, 1h or 7d");
        from = ((int64_t)time(NULL) - secs) * 1000;
    }
    if (limit != NULL) {
        char *end;
        long long v = strtoll(limit, &end, 10);
        if (*end != '\0' || end == limit || v < 1 || v > 100000)
            return pt_admin_fail(r, 400, "bad_request", "limit", "limit is 1 to 100000");
        max = v;
    }
    int rc = pt_store_audit_list(c->store, from, actor, max, &list, &n);
    if (rc != 0)
        return pt_admin_fail_store(r, c->store, rc, NULL);
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < n; i++)
        json_array_append_new(arr, entry_json(&list[i]));
    pt_store_audit_free(list, n);
    r->body = json_pack("{s:o*}", "entries", arr);
    return 0;
}

const pt_admin_route pt_admin_audit_routes[] = {
    {"GET", "/audit", PT_ROLE_VIEWER, list,
     "The audit log, newest first (?since=1h&actor=NAME&limit=100)"},
    {NULL, NULL, PT_ROLE_NONE, NULL, NULL},
};
