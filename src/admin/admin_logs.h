/* admin_logs.h - the request log over the admin API (issue 9, section 5): GET /logs with the
 * filters of `portico logs`, GET /logs/{request_id}. The live tail, GET /logs/stream, is a
 * long-lived response and lives in server/ (reqlog_sse.h). */
#ifndef PT_ADMIN_LOGS_H
#define PT_ADMIN_LOGS_H

#include "admin/admin.h"
#include "store/store_reqlog.h"

/* The routes (ended by a zeroed entry); min role viewer. */
extern const pt_admin_route pt_admin_logs_routes[];

/* Reads the filters of GET /logs from query (an object of strings: endpoint, status,
 * since, request_id, limit, before_id, after_id) into f, whose strings borrow from query.
 * Returns 0, or fills r with a 400 naming the field and returns its pt_admin_fail result. */
int pt_admin_logs_filter(json_t *query, pt_reqlog_filter *f, pt_admin_reply *r);

#endif
