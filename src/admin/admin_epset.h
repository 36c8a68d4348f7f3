/* admin_epset.h - an endpoint's settings (core/epset.h) in the admin API's JSON: the
 * "settings" object of an endpoint, as shown and as given to POST and PATCH /endpoints. */
#ifndef PT_ADMIN_EPSET_H
#define PT_ADMIN_EPSET_H

#include <jansson.h>

#include "admin/admin.h"
#include "core/epset.h"

/* {"timeout_ms": 5000, "max_concurrency": 2, "queue_wait_ms": 200, "cache_ms": 30000,
 * "max_body": 1048576, "cors": ["https://a.example"]}, null for each setting not set. New
 * reference (NULL on allocation failure). */
json_t *pt_admin_epset_json(const pt_ep_settings *s);
/* Applies the body's "settings" object (absent: nothing changes) over s: a member given
 * replaces that setting, null clears it; durations are milliseconds or strings such as "5s",
 * max_body bytes or a string such as "1MiB", cors a list of origins or a comma-separated
 * string. Then checks the whole against auth (pt_epset_check). s->cors is owned by s (freed
 * with pt_epset_clear). Returns 0, or a refusal in r (400, field "settings"). */
int pt_admin_epset_read(pt_admin_call *c, pt_admin_reply *r, pt_ep_settings *s, const char *auth);

#endif
