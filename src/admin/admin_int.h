/* admin_int.h - the dispatcher's pieces shared inside src/admin/: route lookup and the audit
 * entry of a change, used by the HTTP dispatcher (admin.c) and the in-process one
 * (admin_local.c). */
#ifndef PT_ADMIN_INT_H
#define PT_ADMIN_INT_H

#include <stddef.h>

#include "admin/admin.h"

/* Finds the route of method and path (below PT_ADMIN_PREFIX, n bytes, not decoded). Returns
 * it (static) with c->params filled (percent-decoded, malloc'd: the caller frees each of
 * c->params[0..c->nparams)), or NULL with the refusal (404, 405, 500) set in r. */
const pt_admin_route *pt_admin_find_route(const char *method, const char *path, size_t n,
                                          pt_admin_call *c, pt_admin_reply *r);

/* Writes the audit entry of c's successful change by c->actor: action is cmd when not NULL
 * (a CLI command, "user.add"), else "METHOD PATTERN" of route. A failure is logged, not
 * returned. Everything borrowed. */
void pt_admin_write_audit(pt_store *st, const pt_admin_call *c, const pt_admin_route *route,
                          const char *cmd);

/* Runs the route of method and path as the caller `as` (its store, actor, role and env; the
 * route's minimum role is checked: 403), with query (NULL: none) and body, both borrowed. With
 * audit, a successful change is written to the audit log (action cmd, NULL: the route). Fills
 * r (the caller frees r->body and r->raw); returns 0 or -status (admin_local.c). */
int pt_admin_call_as(const pt_admin_call *as, const char *method, const char *path, json_t *query,
                     json_t *body, const char *cmd, int audit, pt_admin_reply *r);

#endif
