/* admin_apply.c - POST /apply: makes the install's scripts, endpoints and webhook sources match
 * a desired state (what `portico export` wrote), in one store transaction, through the other
 * admin routes' own handlers, so that every field they accept flows through. */

/*
 * The body: {"scripts": {NAME: SOURCE}, "endpoints": {NAME: {...}}, "webhook_sources":
 * {NAME: {...}}, "prune": bool, "dry_run": bool}. An endpoint or source object holds the
 * fields GET /endpoints/NAME and GET /webhooks/sources give (read-only ones such as "created"
 * are ignored). The answer: {"plan": [{"action": "create"|"update"|"delete", "kind":
 * "script"|"endpoint"|"webhook_source", "name": NAME, "changes": [FIELD...]}], "applied":
 * bool}. Without prune nothing is deleted. The changes run in this order: scripts created or
 * updated, endpoints and sources deleted, sources updated, endpoints created or updated,
 * sources created, scripts deleted; each through its route (audited with action "apply"), all
 * inside one transaction: a refusal rolls everything back and names the item ("field":
 * "endpoint:NAME"). A changed source is updated in place (PATCH: the fields the file leaves
 * out are cleared), so its events keep their source. An endpoint's methods are a set: their
 * order and case in the file are not a change.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "admin/admin_int.h"
#include "core/err.h"
#include "core/http.h"

/* Fields of an endpoint or source that the routes give but never take. */
static const char *const read_only[] = {"name", "created", "id", "updated", "webhook", NULL};

static int
is_read_only(const char *key)
{
    for (size_t i = 0; read_only[i] != NULL; i++)
        if (strcmp(read_only[i], key) == 0)
            return 1;
    return 0;
}

/* Runs another route as the caller (admin_local.c); a change is audited with action "apply"
 * when audit is set. body borrowed; *out filled (caller frees). Returns 0 or -status. */
static int
sub_call(pt_admin_call *c, const char *method, const char *path, json_t *body, int audit,
         pt_admin_reply *out)
{
    memset(out, 0, sizeof *out);
    return pt_admin_call_as(c, method, path, NULL, body, "apply", audit, out);
}

/* prefix "/" name suffix into out, name percent-encoded (all but letters, digits and "-._~"):
 * a route path. Returns 0, or -1 when out is too small (names are short: never here). */
static int
route_path(char *out, size_t outsz, const char *prefix, const char *name, const char *suffix)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = (size_t)snprintf(out, outsz, "%s/", prefix);

    for (const unsigned char *p = (const unsigned char *)name; *p != '\0' && o + 4 < outsz; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("-._~", *p) != NULL) {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    if (o + strlen(suffix) + 1 > outsz)
        return -1;
    memcpy(out + o, suffix, strlen(suffix) + 1);
    return 0;
}

static void
reply_clear(pt_admin_reply *r)
{
    json_decref(r->body);
    free(r->raw);
    free(r->set_cookie);
    memset(r, 0, sizeof *r);
}

/* Moves a sub-call's refusal into r, its message prefixed with the item it is about. */
static int
refuse_item(pt_admin_reply *r, pt_admin_reply *sub, const char *kind, const char *name)
{
    json_t *err = sub->body != NULL ? json_object_get(sub->body, "error") : NULL;
    const char *msg = err != NULL ? json_string_value(json_object_get(err, "message")) : NULL;
    const char *code = err != NULL ? json_string_value(json_object_get(err, "code")) : NULL;
    char field[160];
    int status = sub->status >= 400 ? sub->status : 500;

    snprintf(field, sizeof field, "%s:%s", kind, name);
    pt_admin_fail(r, status, code != NULL ? code : "internal", field, "%s '%s': %s", kind, name,
                  msg != NULL ? msg : "refused");
    reply_clear(sub);
    return -status;
}

/* The current objects of a list route ({"KEY": [{name, ...}]}) as {name: object}. */
static int
current_map(pt_admin_call *c, pt_admin_reply *r, const char *path, const char *key, json_t **out)
{
    pt_admin_reply sub;
    json_t *v;
    size_t i;
    int rc = sub_call(c, "GET", path, NULL, 0, &sub);

    *out = NULL;
    if (rc != 0)
        return refuse_item(r, &sub, "list", path);
    *out = json_object();
    json_array_foreach(json_object_get(sub.body, key), i, v)
    {
        const char *name = json_string_value(json_object_get(v, "name"));
        if (name != NULL && *out != NULL)
            json_object_set(*out, name, v);
    }
    reply_clear(&sub);
    return *out != NULL ? 0 : pt_admin_fail(r, 500, "internal", NULL, "out of memory");
}

/* The method bits of a "methods" value (a list of names, or one "GET,POST" string), or 0
 * when it is neither: then it is compared as JSON and the route refuses it. */
static unsigned
method_bits(json_t *v)
{
    unsigned mask = 0, bit;
    json_t *m;
    size_t i;

    if (json_is_string(v))
        return pt_http_parse_methods(json_string_value(v), &mask) == 0 ? mask : 0;
    if (!json_is_array(v))
        return 0;
    json_array_foreach(v, i, m)
    {
        if (!json_is_string(m) || pt_http_parse_methods(json_string_value(m), &bit) != 0)
            return 0;
        mask |= bit;
    }
    return mask;
}

/* Whether field key holds the same in want (w) and the install (c). */
static int
same_field(const char *key, json_t *w, json_t *c)
{
    if (strcmp(key, "methods") == 0 && method_bits(w) != 0)
        return method_bits(w) == method_bits(c);
    return json_equal(w, c);
}

/* The fields of want that cur lacks or holds differently (read-only ones left out); with
 * both_ways, also the fields cur has that want lacks. A new array. */
static json_t *
changed_fields(json_t *want, json_t *cur, int both_ways)
{
    json_t *out = json_array(), *v;
    const char *key;

    json_object_foreach(want, key, v)
    {
        if (!is_read_only(key) && !same_field(key, v, json_object_get(cur, key)))
            json_array_append_new(out, json_string(key));
    }
    if (both_ways)
        json_object_foreach(cur, key, v)
        {
            if (!is_read_only(key) && json_object_get(want, key) == NULL && !json_is_null(v))
                json_array_append_new(out, json_string(key));
        }
    return out;
}

static int
plan_add(json_t *plan, const char *action, const char *kind, const char *name, json_t *changes)
{
    json_t *item = json_pack("{s:s, s:s, s:s}", "action", action, "kind", kind, "name", name);
    if (item == NULL) {
        json_decref(changes);
        return PT_ENOMEM;
    }
    if (changes != NULL)
        json_object_set_new(item, "changes", changes);
    return json_array_append_new(plan, item) == 0 ? 0 : PT_ENOMEM;
}

/* Checks that the body's member `key` is an object of valid names to objects (strings for
 * scripts); a missing member is an empty object. Returns it (borrowed) or NULL (refused). */
static json_t *
desired(pt_admin_call *c, pt_admin_reply *r, const char *key, const char *kind, int strings)
{
    json_t *m = json_object_get(c->body, key), *v;
    const char *name;
    char field[160];

    if (m == NULL)
        return NULL; /* none wanted; r->status stays 0 */
    if (!json_is_object(m)) {
        pt_admin_fail(r, 400, "bad_request", key, "%s must be an object of names", key);
        return NULL;
    }
    json_object_foreach(m, name, v)
    {
        snprintf(field, sizeof field, "%s:%s", kind, name);
        if (strings ? !pt_store_script_name_valid(name) : !pt_store_name_valid(name)) {
            pt_admin_fail(r, 400, "bad_request", field, "invalid %s name '%s'", kind, name);
            return NULL;
        }
        if (strings ? !json_is_string(v) : !json_is_object(v)) {
            pt_admin_fail(r, 400, "bad_request", field, "%s '%s' must be %s", kind, name,
                          strings ? "its source text" : "a JSON object");
            return NULL;
        }
        json_t *n = strings ? NULL : json_object_get(v, "name");
        if (n != NULL && (!json_is_string(n) || strcmp(json_string_value(n), name) != 0)) {
            pt_admin_fail(r, 400, "bad_request", field, "%s '%s' has a different \"name\"", kind,
                          name);
            return NULL;
        }
    }
    return m;
}

/* A copy of o without its read-only fields, with "name" set (for a POST). */
static json_t *
post_body(json_t *o, const char *name)
{
    json_t *b = json_object(), *v;
    const char *key;

    json_object_foreach(o, key, v)
    {
        if (!is_read_only(key))
            json_object_set(b, key, v);
    }
    json_object_set_new(b, "name", json_string(name));
    return b;
}

/* Runs one change; 0 or -status with the refusal in r. body stolen. */
static int
run_change(pt_admin_call *c, pt_admin_reply *r, const char *method, const char *path, json_t *body,
           const char *kind, const char *name)
{
    pt_admin_reply sub;
    int rc = sub_call(c, method, path, body, 1, &sub);

    json_decref(body);
    if (rc != 0)
        return refuse_item(r, &sub, kind, name);
    reply_clear(&sub);
    return 0;
}

/* The order changes run in (the notes at the top). */
static const char *const phases[][2] = {
    {"script", "create"},         {"script", "update"},         {"endpoint", "delete"},
    {"webhook_source", "delete"}, {"webhook_source", "update"}, {"endpoint", "create"},
    {"endpoint", "update"},       {"webhook_source", "create"}, {"script", "delete"}};

/* A source's fields a PATCH sets: those the file leaves out are cleared (verify: "none"). */
static const char *const source_fields[] = {"verify",       "secret", "header",
                                            "dedup_header", "script", NULL};
#define NPHASES (sizeof phases / sizeof phases[0])

/* The plan in the order it runs in: a new array (NULL when out of memory). */
static json_t *
in_order(json_t *plan)
{
    json_t *out = json_array(), *item;
    size_t i, p;

    for (p = 0; out != NULL && p < NPHASES; p++)
        json_array_foreach(plan, i, item)
        {
            if (strcmp(json_string_value(json_object_get(item, "kind")), phases[p][0]) == 0 &&
                strcmp(json_string_value(json_object_get(item, "action")), phases[p][1]) == 0)
                json_array_append(out, item);
        }
    return out;
}

/* Carries out the plan (already in_order). */
static int
execute(pt_admin_call *c, pt_admin_reply *r, json_t *plan, json_t *want_s, json_t *want_e,
        json_t *want_w)
{
    char path[600];
    json_t *item;
    size_t i;
    int rc = 0;

    json_array_foreach(plan, i, item)
    {
        const char *name = json_string_value(json_object_get(item, "name"));
        const char *kind = json_string_value(json_object_get(item, "kind"));
        const char *action = json_string_value(json_object_get(item, "action"));
        if (rc != 0)
            break;
        if (strcmp(kind, "script") == 0) {
            json_t *src = json_object_get(want_s, name);
            if (strcmp(action, "create") == 0) {
                rc = run_change(c, r, "POST", "/scripts",
                                json_pack("{s:s, s:O}", "name", name, "source", src), kind, name);
            } else if (strcmp(action, "update") == 0) {
                route_path(path, sizeof path, "/scripts", name, "/versions");
                rc = run_change(c, r, "POST", path, json_pack("{s:O}", "source", src), kind, name);
            } else {
                route_path(path, sizeof path, "/scripts", name, "");
                rc = run_change(c, r, "DELETE", path, NULL, kind, name);
            }
        } else if (strcmp(kind, "endpoint") == 0) {
            json_t *o = json_object_get(want_e, name);
            route_path(path, sizeof path, "/endpoints", name, "");
            if (strcmp(action, "create") == 0) {
                rc = run_change(c, r, "POST", "/endpoints", post_body(o, name), kind, name);
            } else if (strcmp(action, "update") == 0) {
                json_t *b = post_body(o, name);
                json_object_del(b, "name");
                rc = run_change(c, r, "PATCH", path, b, kind, name);
            } else {
                rc = run_change(c, r, "DELETE", path, NULL, kind, name);
            }
        } else {
            json_t *o = json_object_get(want_w, name);
            route_path(path, sizeof path, "/webhooks/sources", name, "");
            if (strcmp(action, "create") == 0) {
                rc = run_change(c, r, "POST", "/webhooks/sources", post_body(o, name), kind, name);
            } else if (strcmp(action, "update") == 0) {
                json_t *b = post_body(o, name);
                json_object_del(b, "name");
                for (size_t f = 0; source_fields[f] != NULL; f++)
                    if (json_object_get(b, source_fields[f]) == NULL)
                        json_object_set_new(b, source_fields[f], json_null());
                rc = run_change(c, r, "PATCH", path, b, kind, name);
            } else {
                rc = run_change(c, r, "DELETE", path, NULL, kind, name);
            }
        }
    }
    return rc;
}

/* The current source of script name into *src (new reference). */
static int
script_source(pt_admin_call *c, pt_admin_reply *r, const char *name, json_t **src)
{
    pt_admin_reply sub;
    char path[600];
    int rc;

    route_path(path, sizeof path, "/scripts", name, "");
    rc = sub_call(c, "GET", path, NULL, 0, &sub);
    if (rc != 0)
        return refuse_item(r, &sub, "script", name);
    *src = json_incref(json_object_get(sub.body, "source"));
    reply_clear(&sub);
    return 0;
}

/* An endpoint file names only the settings it sets (an export leaves the others out): give
 * want's "settings" (borrowed, changed in place) an explicit null for every setting cur has,
 * so that the comparison sees a setting removed from the file, and the PATCH clears it. */
static int
complete_settings(json_t *want, json_t *cur)
{
    json_t *have = json_object_get(cur, "settings"), *ws = json_object_get(want, "settings"), *v;
    const char *key;

    if (!json_is_object(have))
        return 0;
    if (ws == NULL) {
        ws = json_object();
        if (ws == NULL || json_object_set_new(want, "settings", ws) != 0)
            return PT_ENOMEM;
    }
    if (!json_is_object(ws))
        return 0; /* the settings route refuses it, naming the field */
    json_object_foreach(have, key, v)
    {
        if (json_object_get(ws, key) == NULL && json_object_set_new(ws, key, json_null()) != 0)
            return PT_ENOMEM;
    }
    return 0;
}

/* Adds the plan of one kind: creates and updates for want, deletes (with prune) for what only
 * cur has. */
static int
plan_kind(pt_admin_call *c, pt_admin_reply *r, json_t *plan, const char *kind, json_t *want,
          json_t *cur, int prune)
{
    const char *name;
    json_t *v;
    int rc = 0;

    json_object_foreach(want, name, v)
    {
        json_t *have = json_object_get(cur, name);
        if (have == NULL) {
            rc = plan_add(plan, "create", kind, name, NULL);
        } else if (strcmp(kind, "script") == 0) {
            json_t *src = NULL;
            if ((rc = script_source(c, r, name, &src)) != 0)
                return rc;
            if (!json_equal(src, v))
                rc = plan_add(plan, "update", kind, name, json_pack("[s]", "source"));
            json_decref(src);
        } else {
            if (strcmp(kind, "endpoint") == 0 && complete_settings(v, have) != 0)
                return pt_admin_fail(r, 500, "internal", NULL, "out of memory");
            json_t *w = json_deep_copy(v);
            if (w != NULL && strcmp(kind, "webhook_source") == 0 &&
                json_object_get(w, "verify") == NULL)
                json_object_set_new(w, "verify", json_string("none"));
            json_t *ch = changed_fields(w, have, strcmp(kind, "webhook_source") == 0);
            json_decref(w);
            if (ch != NULL && json_array_size(ch) > 0)
                rc = plan_add(plan, "update", kind, name, ch);
            else
                json_decref(ch);
        }
        if (rc != 0)
            return pt_admin_fail(r, 500, "internal", NULL, "out of memory");
    }
    json_object_foreach(cur, name, v)
    {
        if (prune && json_object_get(want, name) == NULL &&
            plan_add(plan, "delete", kind, name, NULL) != 0)
            return pt_admin_fail(r, 500, "internal", NULL, "out of memory");
    }
    return 0;
}

static int
apply(pt_admin_call *c, pt_admin_reply *r)
{
    json_t *want_s, *want_e, *want_w, *cur_s = NULL, *cur_e = NULL, *cur_w = NULL;
    json_t *plan = json_array(), *pr, *dr;
    int prune, dry_run, rc;

    if (!json_is_object(c->body))
        return pt_admin_fail(r, 400, "bad_request", NULL, "the body must be a JSON object");
    pr = json_object_get(c->body, "prune");
    dr = json_object_get(c->body, "dry_run");
    if ((pr != NULL && !json_is_boolean(pr)) || (dr != NULL && !json_is_boolean(dr)))
        return pt_admin_fail(r, 400, "bad_request",
                             pr != NULL && !json_is_boolean(pr) ? "prune" : "dry_run",
                             "prune and dry_run are true or false");
    prune = json_is_true(pr);
    dry_run = json_is_true(dr);
    want_s = desired(c, r, "scripts", "script", 1);
    if (r->status != 0)
        return -r->status;
    want_e = desired(c, r, "endpoints", "endpoint", 0);
    if (r->status != 0)
        return -r->status;
    want_w = desired(c, r, "webhook_sources", "webhook_source", 0);
    if (r->status != 0)
        return -r->status;
    if (plan == NULL)
        return pt_admin_fail(r, 500, "internal", NULL, "out of memory");

    /* Read and planned inside the transaction, so that nothing changes between the two. */
    if (!dry_run && (rc = pt_store_tx_begin(c->store)) != 0) {
        json_decref(plan);
        return pt_admin_fail_store(r, c->store, rc, NULL);
    }
    rc = current_map(c, r, "/scripts", "scripts", &cur_s);
    if (rc == 0)
        rc = current_map(c, r, "/endpoints", "endpoints", &cur_e);
    if (rc == 0)
        rc = current_map(c, r, "/webhooks/sources", "sources", &cur_w);
    if (rc == 0)
        rc = plan_kind(c, r, plan, "script", want_s, cur_s, prune);
    if (rc == 0)
        rc = plan_kind(c, r, plan, "endpoint", want_e, cur_e, prune);
    if (rc == 0)
        rc = plan_kind(c, r, plan, "webhook_source", want_w, cur_w, prune);
    if (rc == 0) {
        json_t *ordered = in_order(plan);
        json_decref(plan);
        plan = ordered;
        if (plan == NULL)
            rc = pt_admin_fail(r, 500, "internal", NULL, "out of memory");
    }
    if (rc == 0 && !dry_run)
        rc = execute(c, r, plan, want_s, want_e, want_w);
    if (!dry_run) {
        int frc = pt_store_tx_finish(c->store, rc != 0 ? PT_EINVAL : 0);
        if (rc == 0 && frc != 0)
            rc = pt_admin_fail_store(r, c->store, frc, NULL);
    }
    if (rc == 0) {
        r->body = json_pack("{s:O, s:b}", "plan", plan, "applied", !dry_run);
        if (!dry_run && json_array_size(plan) > 0)
            c->audit = json_pack("{s:I}", "changes", (json_int_t)json_array_size(plan));
    }
    json_decref(plan);
    json_decref(cur_s);
    json_decref(cur_e);
    json_decref(cur_w);
    return rc;
}

const pt_admin_route pt_admin_apply_routes[] = {
    {"POST", "/apply", PT_ROLE_EDITOR, apply,
     "Make scripts, endpoints and webhook sources match the body, in one transaction "
     "(dry_run: only the plan; prune: delete what the body lacks)"},
    {NULL, NULL, 0, NULL, NULL},
};
