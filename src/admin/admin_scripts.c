/* admin_scripts.c - /scripts: handler scripts and their versions. A new version is compiled
 * first (py.h, on this pool thread) and refused with the line and message of its SyntaxError,
 * so a script that cannot run never becomes current. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "admin/admin_diff.h"
#include "core/err.h"
#include "py/py.h"

static json_t *
script_json(const pt_script *s, int with_source)
{
    json_t *o = json_pack("{s:I, s:s, s:i, s:s, s:I}", "id", (json_int_t)s->id, "name", s->name,
                          "current", s->current, "run_mode", s->run_mode ? s->run_mode : "API",
                          "created", (json_int_t)s->created);
    if (o != NULL && with_source)
        json_object_set_new(o, "source", json_stringn(s->source, s->source_len));
    return o;
}

/* The body's "source": a string within the size cap that compiles. Returns it, or NULL with
 * the refusal in r. */
static const char *
checked_source(pt_admin_call *c, pt_admin_reply *r, const char *name)
{
    const char *src = pt_admin_body_str(c, r, "source", 1);
    char err[1024] = "";
    if (src == NULL)
        return NULL;
    size_t len = json_string_length(json_object_get(c->body, "source"));
    if (len > PT_ADMIN_SCRIPT_MAX) {
        pt_admin_fail(r, 413, "too_large", "source", "the script is larger than %u bytes",
                      PT_ADMIN_SCRIPT_MAX);
        return NULL;
    }
    int rc = pt_py_check_syntax(src, len, name, err, sizeof err);
    if (rc == 0)
        return src;
    if (rc != PT_ESYNTAX) {
        pt_admin_fail(r, 503, "unavailable", NULL, "cannot check the script: %s", err);
        return NULL;
    }
    long line = 0;
    const char *msg = err;
    if (sscanf(err, "line %ld:", &line) == 1 && strchr(err, ':') != NULL)
        msg = strchr(err, ':') + 2;
    pt_admin_fail(r, 400, "bad_request", "source", "SyntaxError: %s", err);
    json_t *e = json_object_get(r->body, "error");
    if (line > 0)
        json_object_set_new(e, "line", json_integer(line));
    json_object_set_new(e, "syntax_error", json_string(msg));
    return NULL;
}

static int
list(pt_admin_call *c, pt_admin_reply *r)
{
    pt_script *scripts = NULL;
    size_t n = 0;
    int rc = pt_store_script_list(c->store, &scripts, &n);
    if (rc != 0)
        return pt_admin_fail_store(r, c->store, rc, NULL);
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < n; i++) {
        /* With the number of versions and when the newest was stored (`script list`). */
        pt_script *versions = NULL;
        size_t nv = 0;
        int64_t updated = scripts[i].created;
        if (pt_store_script_versions(c->store, scripts[i].name, &versions, &nv) == 0)
            for (size_t j = 0; j < nv; j++)
                if (versions[j].created > updated)
                    updated = versions[j].created;
        pt_store_scripts_free(versions, nv);
        json_t *o = script_json(&scripts[i], 0);
        json_object_set_new(o, "versions", json_integer((json_int_t)nv));
        json_object_set_new(o, "updated", json_integer(updated));
        json_array_append_new(arr, o);
    }
    pt_store_scripts_free(scripts, n);
    r->body = json_pack("{s:o*}", "scripts", arr);
    return 0;
}

/* Stores a checked source as a new version of `name` (creating it when create is set, and
 * then refusing a taken name). */
static int
put_version(pt_admin_call *c, pt_admin_reply *r, const char *name, int create)
{
    const char *src;
    int version = 1, rc;

    if (!pt_store_script_name_valid(name))
        return pt_admin_fail(r, 400, "bad_request", "name",
                             "invalid script name (1 to 128 bytes of UTF-8, no control "
                             "characters, no leading or trailing space)");
    if ((src = checked_source(c, r, name)) == NULL)
        return -r->status;
    size_t len = json_string_length(json_object_get(c->body, "source"));
    if (create)
        rc = pt_store_script_create(c->store, name, src, len, "API", NULL);
    else
        rc = pt_store_script_put(c->store, name, src, len, &version);
    if (rc != 0)
        return pt_admin_fail_store(r, c->store, rc, "name");
    r->status = 201;
    r->body = json_pack("{s:s, s:i}", "name", name, "version", version);
    c->audit = json_pack("{s:s, s:i}", "script", name, "version", version);
    return 0;
}

static int
create(pt_admin_call *c, pt_admin_reply *r)
{
    const char *name = pt_admin_body_str(c, r, "name", 1);
    return name != NULL ? put_version(c, r, name, 1) : -r->status;
}

static int
add_version(pt_admin_call *c, pt_admin_reply *r)
{
    return put_version(c, r, c->params[0], 0);
}

static int
show(pt_admin_call *c, pt_admin_reply *r)
{
    pt_script *s = NULL, *versions = NULL;
    size_t n = 0;
    int rc = pt_store_script_get(c->store, c->params[0], 0, &s);
    if (rc == 0)
        rc = pt_store_script_versions(c->store, c->params[0], &versions, &n);
    if (rc != 0) {
        pt_script_free(s);
        return pt_admin_fail_store(r, c->store, rc, NULL);
    }
    r->body = script_json(s, 1);
    json_object_set_new(r->body, "version", json_integer(s->version));
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < n; i++)
        json_array_append_new(arr, json_pack("{s:i, s:I}", "version", versions[i].version,
                                             "created", (json_int_t)versions[i].created));
    json_object_set_new(r->body, "versions", arr);
    pt_store_scripts_free(versions, n);
    pt_script_free(s);
    return 0;
}

/* Parses a version number (1 .. INT_MAX); 0 when it is not one. */
static int
version_of(const char *s)
{
    char *end;
    long v = s != NULL ? strtol(s, &end, 10) : 0;
    return s != NULL && *end == '\0' && end != s && v >= 1 && v <= 1000000000 ? (int)v : 0;
}

static int
show_version(pt_admin_call *c, pt_admin_reply *r)
{
    pt_script *s = NULL;
    int v = version_of(c->params[1]);
    if (v == 0)
        return pt_admin_fail(r, 400, "bad_request", "version", "a version is a number from 1");
    int rc = pt_store_script_get(c->store, c->params[0], v, &s);
    if (rc != 0)
        return pt_admin_fail_store(r, c->store, rc, NULL);
    r->body = script_json(s, 1);
    json_object_set_new(r->body, "version", json_integer(s->version));
    pt_script_free(s);
    return 0;
}

static int
diff(pt_admin_call *c, pt_admin_reply *r)
{
    const char *from_s = pt_admin_query_str(c, "from"), *to_s = pt_admin_query_str(c, "to");
    pt_script *cur = NULL, *a = NULL, *b = NULL;
    char la[200], lb[200];
    pt_buf out;
    int rc = pt_store_script_get(c->store, c->params[0], 0, &cur);
    if (rc != 0)
        return pt_admin_fail_store(r, c->store, rc, NULL);
    int to = to_s != NULL ? version_of(to_s) : cur->current;
    int from = from_s != NULL ? version_of(from_s) : to - 1;
    pt_script_free(cur);
    if (to == 0)
        return pt_admin_fail(r, 400, "bad_request", "to", "a version is a number from 1");
    if (from == 0)
        return pt_admin_fail(r, 400, "bad_request", "from",
                             from_s != NULL ? "a version is a number from 1"
                                            : "version 1 has no previous version: give ?from=");
    rc = pt_store_script_get(c->store, c->params[0], from, &a);
    if (rc != 0)
        return pt_admin_fail_store(r, c->store, rc, "from");
    rc = pt_store_script_get(c->store, c->params[0], to, &b);
    if (rc != 0) {
        pt_script_free(a);
        return pt_admin_fail_store(r, c->store, rc, "to");
    }
    snprintf(la, sizeof la, "%s v%d", c->params[0], from);
    snprintf(lb, sizeof lb, "%s v%d", c->params[0], to);
    pt_buf_init(&out, 0);
    rc = pt_admin_diff(a->source, a->source_len, b->source, b->source_len, la, lb, &out);
    pt_script_free(a);
    pt_script_free(b);
    if (rc != 0) {
        pt_buf_free(&out);
        return rc == PT_ETOOBIG
                   ? pt_admin_fail(r, 413, "too_large", NULL, "the versions are too large to diff")
                   : pt_admin_fail(r, 500, "internal", NULL, "out of memory");
    }
    r->raw = pt_buf_steal(&out, &r->raw_len);
    if (r->raw == NULL)
        r->raw = strdup("");
    r->content_type = "text/x-diff; charset=utf-8";
    return 0;
}

static int
rollback(pt_admin_call *c, pt_admin_reply *r)
{
    json_t *v = json_is_object(c->body) ? json_object_get(c->body, "version") : NULL;
    int now = 0;
    if (c->body != NULL && !json_is_object(c->body))
        return pt_admin_fail(r, 400, "bad_request", NULL, "the body must be a JSON object");
    if (v != NULL &&
        (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 1000000000))
        return pt_admin_fail(r, 400, "bad_request", "version", "a version is a number from 1");
    int rc = pt_store_script_rollback(c->store, c->params[0],
                                      v != NULL ? (int)json_integer_value(v) : 0, &now);
    if (rc != 0)
        return pt_admin_fail_store(r, c->store, rc, "version");
    r->body = json_pack("{s:s, s:i}", "name", c->params[0], "current", now);
    c->audit = json_pack("{s:s, s:i}", "script", c->params[0], "current", now);
    return 0;
}

/* PATCH /scripts/{name} {"name": NEW}: renames the script; its id, versions, state, runs,
 * endpoints and webhook sources follow it (pt_store_script_rename). */
static int
rename_script(pt_admin_call *c, pt_admin_reply *r)
{
    const char *key;
    json_t *v;

    if (!json_is_object(c->body))
        return pt_admin_fail(r, 400, "bad_request", NULL, "the body must be a JSON object");
    json_object_foreach(c->body, key, v)
    {
        if (strcmp(key, "name") != 0)
            return pt_admin_fail(r, 400, "bad_request", key,
                                 "unknown member '%s' (a script's name is all that changes)", key);
    }
    const char *to = pt_admin_body_str(c, r, "name", 1);
    if (to == NULL)
        return -r->status;
    /* The store checks the new name (400 naming it), the old one (404) and a taken one (409). */
    int rc = pt_store_script_rename(c->store, c->params[0], to);
    if (rc != 0)
        return pt_admin_fail_store(r, c->store, rc, "name");
    r->body = json_pack("{s:s, s:s}", "name", to, "renamed_from", c->params[0]);
    c->audit = json_pack("{s:s, s:s}", "script", c->params[0], "name", to);
    return 0;
}

static int
rm(pt_admin_call *c, pt_admin_reply *r)
{
    int rc = pt_store_script_rm(c->store, c->params[0]);
    if (rc != 0)
        return pt_admin_fail_store(r, c->store, rc, NULL);
    r->body = json_pack("{s:s}", "removed", c->params[0]);
    c->audit = json_pack("{s:s}", "script", c->params[0]);
    return 0;
}

const pt_admin_route pt_admin_scripts_routes[] = {
    {"GET", "/scripts", PT_ROLE_VIEWER, list, "List scripts (current version, no source)"},
    {"POST", "/scripts", PT_ROLE_EDITOR, create,
     "Create a script {name, source} (syntax-checked; 409 when the name is taken)"},
    {"GET", "/scripts/{name}", PT_ROLE_VIEWER, show,
     "Show a script: current source and its versions"},
    {"PATCH", "/scripts/{name}", PT_ROLE_EDITOR, rename_script,
     "Rename a script {name} (404 unknown, 409 taken or used before, 400 invalid)"},
    {"DELETE", "/scripts/{name}", PT_ROLE_EDITOR, rm,
     "Remove a script and its versions (409 while an endpoint uses it)"},
    {"POST", "/scripts/{name}/versions", PT_ROLE_EDITOR, add_version,
     "Add a version {source} (syntax-checked) and make it current"},
    {"GET", "/scripts/{name}/versions/{version}", PT_ROLE_VIEWER, show_version, "Show one version"},
    {"GET", "/scripts/{name}/diff", PT_ROLE_VIEWER, diff,
     "Unified diff of two versions (?from=N&to=M; default: the current one and its previous)"},
    {"POST", "/scripts/{name}/rollback", PT_ROLE_EDITOR, rollback,
     "Make an earlier version current {version} (default: the one before)"},
    {NULL, NULL, PT_ROLE_NONE, NULL, NULL},
};
