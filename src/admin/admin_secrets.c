/* admin_secrets.c - /secrets: the encrypted secrets handlers read with pq.get_secret (admin
 * role only). Names and metadata go out; a value comes in, is sealed, and is never returned,
 * logged or put in an error or the audit log. */
#include <stdio.h>
#include <string.h>

#include "admin/admin.h"
#include "auth/secrets.h"
#include "core/err.h"

static json_t *
secret_json(const void *item)
{
    const pt_secret *s = item;
    return json_pack("{s:s, s:s, s:I, s:I}", "name", s->name, "key_id", s->key_id, "created",
                     (json_int_t)s->created, "updated", (json_int_t)s->updated);
}

static int
list(pt_admin_call *c, pt_admin_reply *r)
{
    pt_secret *list = NULL;
    size_t n = 0;
    int rc = pt_store_secret_list(c->store, &list, &n);
    rc = pt_admin_list_reply(c, r, rc, "secrets", list, n, sizeof *list, secret_json);
    pt_store_secrets_free(list, n);
    return rc;
}

/* Is secret `name` stored? 1, 0, or a refusal (negative) in r. */
static int
exists(pt_admin_call *c, pt_admin_reply *r, const char *name)
{
    pt_secret s = {0};
    int rc = pt_store_secret_get(c->store, name, &s);
    pt_secret_clear(&s);
    if (rc == PT_ENOTFOUND)
        return 0;
    return rc == 0 ? 1 : pt_admin_fail_store(r, c->store, rc, NULL);
}

/* Seals the body's "value" as secret `name` and answers its metadata: 201 for a new secret
 * (create: refused with 409 when the name is taken, atomically), 200 for a replaced one. */
static int
store_value(pt_admin_call *c, pt_admin_reply *r, const char *name, int create)
{
    char err[512];
    json_t *v = json_object_get(c->body, "value");
    if (v == NULL || json_is_null(v))
        return pt_admin_fail(r, 400, "bad_request", "value", "'value' is required");
    if (!json_is_string(v))
        return pt_admin_fail(r, 400, "bad_request", "value", "'value' must be a string");
    size_t len = json_string_length(v);
    const char *value = json_string_value(v);
    if (len == 0)
        return pt_admin_fail(r, 400, "bad_request", "value", "the value must not be empty");
    if (len > PT_SECRET_MAX)
        return pt_admin_fail(r, 413, "too_large", "value", "the value is over %d bytes",
                             PT_SECRET_MAX);
    if (memchr(value, '\0', len) != NULL)
        return pt_admin_fail(r, 400, "bad_request", "value", "the value holds a NUL character");
    pt_secrets *sec = NULL;
    if (pt_secrets_open(c->datadir, &sec, err, sizeof err) != 0)
        return pt_admin_fail(r, 503, "unavailable", NULL, "%s", err);
    int rc = create ? pt_secrets_create(sec, c->store, name, value, len, err, sizeof err)
                    : pt_secrets_set(sec, c->store, name, value, len, err, sizeof err);
    pt_secrets_close(sec);
    if (rc == PT_EEXIST)
        return pt_admin_fail(r, 409, "conflict", "name",
                             "secret '%s' exists (PUT /secrets/{name} replaces it)", name);
    if (rc != 0)
        return pt_admin_fail(r, rc == PT_EINVAL ? 400 : 503,
                             rc == PT_EINVAL ? "bad_request" : "unavailable",
                             rc == PT_EINVAL ? "name" : NULL, "%s", err);
    pt_secret s = {0};
    if (pt_store_secret_get(c->store, name, &s) == 0)
        r->body = secret_json(&s);
    else
        r->body = json_pack("{s:s}", "name", name);
    pt_secret_clear(&s);
    r->status = create ? 201 : 200;
    c->audit = json_pack("{s:s, s:I}", "name", name, "bytes", (json_int_t)len);
    return 0;
}

/* POST /secrets {name, value}: a new secret; 409 when the name is taken (PUT replaces). */
static int
add(pt_admin_call *c, pt_admin_reply *r)
{
    const char *name = pt_admin_body_str(c, r, "name", 1);
    if (name == NULL)
        return -r->status;
    if (!pt_store_secret_name_valid(name))
        return pt_admin_fail(r, 400, "bad_request", "name",
                             "invalid secret name (1 to 128 bytes of UTF-8, no control "
                             "characters)");
    /* No look first: the insert itself refuses a taken name (two concurrent creates: one
     * 201, one 409, never a lost value). */
    return store_value(c, r, name, 1);
}

/* PUT /secrets/{name} {value}: replaces an existing secret's value. */
static int
replace(pt_admin_call *c, pt_admin_reply *r)
{
    if (!json_is_object(c->body))
        return pt_admin_fail(r, 400, "bad_request", NULL, "the body must be a JSON object");
    int rc = exists(c, r, c->params[0]);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return pt_admin_fail(r, 404, "not_found", NULL, "no secret named '%.128s'", c->params[0]);
    return store_value(c, r, c->params[0], 0);
}

static int
rm(pt_admin_call *c, pt_admin_reply *r)
{
    int rc = pt_store_secret_rm(c->store, c->params[0]);
    if (rc != 0)
        return pt_admin_fail_store(r, c->store, rc, NULL);
    r->body = json_pack("{s:s}", "removed", c->params[0]);
    c->audit = json_pack("{s:s}", "name", c->params[0]);
    return 0;
}

const pt_admin_route pt_admin_secrets_routes[] = {
    {"GET", "/secrets", PT_ROLE_ADMIN, list, "Secret names and times (never a value)"},
    {"POST", "/secrets", PT_ROLE_ADMIN, add, "Store a new secret {name, value}"},
    {"PUT", "/secrets/{name}", PT_ROLE_ADMIN, replace, "Replace a secret's value {value}"},
    {"DELETE", "/secrets/{name}", PT_ROLE_ADMIN, rm, "Remove a secret"},
    {NULL, NULL, PT_ROLE_NONE, NULL, NULL},
};
