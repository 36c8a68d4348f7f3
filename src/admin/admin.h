/* admin.h - the admin API's route contract (issue 9, DESIGN.md section 9): what a route
 * handler is given and fills. Provisional copy of /work/notes/admin-contract.md in the reqlog
 * branch; the "admin" branch owns this file and its version wins at the merge. */
#ifndef PT_ADMIN_H
#define PT_ADMIN_H

#include <jansson.h>

#include "store/store.h"

typedef enum pt_role {
    PT_ROLE_NONE = 0,
    PT_ROLE_VIEWER = 1,
    PT_ROLE_EDITOR = 2,
    PT_ROLE_ADMIN = 3
} pt_role;

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
} pt_admin_call;

typedef struct pt_admin_reply {
    int status;   /* 200 unless set */
    json_t *body; /* the JSON answer (new reference), or NULL with `raw` set */
    char *raw;    /* or a non-JSON body (malloc'd, freed by the dispatcher) */
    size_t raw_len;
    const char *content_type; /* for raw; static string */
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

#endif
