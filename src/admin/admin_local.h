/* admin_local.h - one admin API call run in-process, without HTTP or credentials: how the
 * CLI works on a data dir (it is the server's local administrator). */
#ifndef PT_ADMIN_LOCAL_H
#define PT_ADMIN_LOCAL_H

#include <jansson.h>

#include "admin/admin.h"
#include "store/store.h"

/* Runs the route of method and path (below PT_ADMIN_PREFIX, path parameters percent-encoded)
 * against st as a caller with the admin role named actor, with query (an object of strings,
 * or NULL) and body (any JSON value, or NULL), both borrowed. A successful change is written
 * to the audit log with actor and action cmd (NULL: the route, "POST /users"). Fills r as the
 * HTTP dispatcher does (status 0 means 200; the caller frees r->body and r->raw); returns 0,
 * or -status when the call was refused. st, datadir, actor and cmd are borrowed. */
int pt_admin_local_call(pt_store *st, const char *datadir, const char *actor, const char *cmd,
                        const char *method, const char *path, json_t *query, json_t *body,
                        pt_admin_reply *r);

#endif
