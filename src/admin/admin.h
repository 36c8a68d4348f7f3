/* admin.h - the admin API (/_portico/admin/v1/...): the route contract every resource file
 * implements, and the one entry point the server calls on a pool thread (pt_admin_handle).
 *
 * admin/ sits above store/, auth/ and py/ (through py.h only) and below server/: it never
 * includes a server/ header; what it needs from the running server comes in pt_admin_env. */
#ifndef PT_ADMIN_H
#define PT_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/request.h"
#include "store/store.h"

/* Everything under this prefix is the admin API (on the admin listener only). */
#define PT_ADMIN_PREFIX "/_portico/admin/v1"
/* A request body larger than this is refused with 413 too_large before it is parsed. */
#define PT_ADMIN_BODY_MAX (2u << 20)
/* A script's source larger than this is refused with 413 too_large. */
#define PT_ADMIN_SCRIPT_MAX (1u << 20)
/* The content type of a reply that asks the server to start a live tail (GET /logs/stream):
 * the reply's body is the validated query; server/ answers with the event stream instead. */
#define PT_ADMIN_EVENT_STREAM "text/event-stream"
/* The session cookie's name. */
#define PT_ADMIN_COOKIE "portico_session"

typedef enum pt_role {
    PT_ROLE_NONE = 0,
    PT_ROLE_VIEWER = 1,
    PT_ROLE_EDITOR = 2,
    PT_ROLE_ADMIN = 3
} pt_role;

/* "admin" -> PT_ROLE_ADMIN, ...; PT_ROLE_NONE for anything else. */
pt_role pt_admin_role_of(const char *name);
/* The role's name ("viewer", ...; "none"). Static. */
const char *pt_admin_role_name(pt_role role);

/* Request counters of the whole server, for GET /health. */
typedef struct pt_admin_traffic {
    uint64_t requests;
    uint64_t by_class[6]; /* [1]..[5]: 1xx..5xx, [0]: anything else */
    uint64_t bytes;       /* response body bytes */
    double seconds;       /* total time spent answering */
} pt_admin_traffic;

/* What the running server tells the admin API (borrowed for the server's life). */
typedef struct pt_admin_env {
    const char *datadir;
    const char *version;
    int64_t started; /* unix seconds the server started */
    int workers;
    int64_t session_idle; /* seconds a session lives without a request */
    int secure;           /* the admin listener is TLS: cookies get Secure */
    /* Fills the server-wide counters; may be NULL (no traffic in /health). Any thread. */
    void (*traffic)(pt_admin_traffic *out);
} pt_admin_env;

typedef struct pt_admin_call {
    pt_store *store;       /* borrowed: this thread's store handle */
    const char *datadir;   /* borrowed */
    const char *actor;     /* "alice" (user) or "token:ci-deploy"; for the audit log */
    pt_role role;          /* the caller's role; the dispatcher already checked min_role */
    const char *method;    /* "GET", "POST", ... */
    const char *path;      /* the request path, not decoded */
    const char *params[4]; /* path parameters in pattern order, percent-decoded */
    int nparams;
    json_t *query; /* object: query parameters, str -> str (last wins) */
    json_t *body;  /* parsed JSON body (any JSON value), or NULL when none */
    json_t *audit; /* a state-changing handler sets this (new reference) to an object
                      describing the change, e.g. {"script": "x", "version": 3}; the
                      dispatcher writes it to the audit log with actor, time, route */
    /* Beyond the shared contract, for the dispatcher's own routes (login, me, health): */
    const pt_admin_env *env;  /* borrowed */
    const char *user;         /* the caller's user name; NULL when not authenticated */
    const char *remote_addr;  /* the client's address, "" when unknown */
    const char *session_hash; /* digest of the session cookie, NULL for a token or none */
    const char *csrf;         /* the session's CSRF token, NULL without a session */
} pt_admin_call;

typedef struct pt_admin_reply {
    int status;   /* 200 unless set */
    json_t *body; /* the JSON answer (new reference), or NULL with `raw` set */
    char *raw;    /* or a non-JSON body (malloc'd, freed by the dispatcher) */
    size_t raw_len;
    const char *content_type; /* for raw; static string */
    /* Beyond the shared contract: */
    char *set_cookie;    /* a Set-Cookie value (malloc'd, freed by the dispatcher) */
    int64_t retry_after; /* > 0: sent as Retry-After (seconds) */
} pt_admin_reply;

/* A route handler: fills `r`; returns 0. For a refused call it uses pt_admin_fail and
 * returns its result; a refused call must change nothing. */
typedef int (*pt_admin_fn)(pt_admin_call *c, pt_admin_reply *r);

typedef struct pt_admin_route {
    const char *method;  /* "GET", "POST", "PUT", "PATCH", "DELETE" */
    const char *pattern; /* below /_portico/admin/v1, e.g. "/scripts/{name}/versions/{n}" */
    pt_role min_role;
    pt_admin_fn fn;
    const char *summary; /* one line, for the OpenAPI document */
} pt_admin_route;

/* Sets a JSON error reply {"error": {"code": code, "message": ..., "field": field}} (field
 * omitted when NULL) with `status`; returns -status so a handler can `return pt_admin_fail(...)`.
 */
int pt_admin_fail(pt_admin_reply *r, int status, const char *code, const char *field,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* pt_admin_fail for a store error rc (message from pt_store_errmsg): PT_ENOTFOUND 404
 * not_found, PT_EEXIST 409 conflict, PT_EINVAL 400 bad_request (field given), PT_ETOOBIG 413
 * too_large, PT_EUNAVAIL 503 unavailable, anything else 500 internal. */
int pt_admin_fail_store(pt_admin_reply *r, pt_store *st, int rc, const char *field);

/* The answer of a list route: r->body = {member: [to_json(item), ...]} for the n items of
 * `size` bytes at items (borrowed; the caller frees them after). rc is the result of the store
 * call that read them: when not 0, the refusal is set instead (pt_admin_fail_store). Returns
 * the handler's result. */
int pt_admin_list_reply(pt_admin_call *c, pt_admin_reply *r, int rc, const char *member,
                        const void *items, size_t n, size_t size,
                        json_t *(*to_json)(const void *item));

/* Helpers for handlers reading the body. Each returns the member, or NULL after setting a
 * 400 bad_request naming the field (when required, or present with the wrong type). */
const char *pt_admin_body_str(pt_admin_call *c, pt_admin_reply *r, const char *field, int required);
/* A string query parameter, or NULL when absent. Borrowed from c->query. */
const char *pt_admin_query_str(const pt_admin_call *c, const char *name);
/* A whole number in [min, max] from query[name] into *out (left as it is when absent).
 * Returns 0, or the refusal (400 naming the parameter) set in r and -400. */
int pt_admin_query_long(json_t *query, const char *name, long long min, long long max,
                        long long *out, pt_admin_reply *r);

/* The route tables, each ended by a zeroed entry (admin_routes.c lists them). */
extern const pt_admin_route pt_admin_session_routes[];
extern const pt_admin_route pt_admin_users_routes[];
extern const pt_admin_route pt_admin_tokens_routes[];
extern const pt_admin_route pt_admin_audit_routes[];
extern const pt_admin_route pt_admin_health_routes[];
extern const pt_admin_route pt_admin_scripts_routes[];
extern const pt_admin_route pt_admin_endpoints_routes[];
extern const pt_admin_route pt_admin_auth_routes[]; /* tokens, API keys, issuers */
extern const pt_admin_route pt_admin_secrets_routes[];
extern const pt_admin_route pt_admin_webhooks_routes[];
extern const pt_admin_route pt_admin_connections_routes[];
extern const pt_admin_route pt_admin_apply_routes[];
extern const pt_admin_route pt_admin_runs_routes[];
extern const pt_admin_route pt_admin_nodes_routes[];
/* Every table, ended by NULL. */
extern const pt_admin_route *const pt_admin_tables[];

/* Answers one admin API request: req's path starts with PT_ADMIN_PREFIX (anything else is a
 * 404). Authenticates (Bearer token, or session cookie and X-CSRF-Token on every non-GET),
 * checks the role, parses the body, runs the route and writes the audit entry of a change.
 * Fills resp (status, JSON body, headers). Runs on a pool thread, without the GIL; opens the
 * thread's own store handle on first use and keeps it (one data dir per process).
 * Everything borrowed. */
void pt_admin_handle(const pt_admin_env *env, const pt_request *req, pt_response *resp);

/* Closes the calling thread's store handle (pt_admin_handle opens it again when needed). For
 * tests; pool threads keep theirs for the process's life. */
void pt_admin_thread_close(void);

/* The OpenAPI 3 document of the admin API, built from the route tables. Returns a new
 * reference, or NULL when out of memory. */
json_t *pt_admin_openapi(const char *version);

#endif
