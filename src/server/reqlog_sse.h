/* reqlog_sse.h - GET /_portico/admin/v1/logs/stream: the live tail of the request log as
 * Server-Sent Events, for the console. A long-lived response, so it is not an admin route run
 * on a pool thread: an h2o generator on the worker's loop, fed by a loop timer that polls the
 * log file (DATA/logs/requests.db, which every worker writes) for rows after the last one sent. */
#ifndef PT_REQLOG_SSE_H
#define PT_REQLOG_SSE_H

#include <h2o.h>

#include "store/store_reqlog.h"

/* How often the tail looks for new rows, and how long it may stay silent (a comment line then
 * keeps proxies from closing the connection). */
#define PT_SSE_POLL_MS 250
#define PT_SSE_KEEPALIVE_MS 15000

/* Answers req (the admin dispatcher has checked the caller: viewer or above) with 200
 * text/event-stream and then, for each new row of the log that f selects (endpoint, status,
 * request_id; its limit, before_id and since are ignored), an event "id: <row id>" and
 * "data: <the row as GET /logs gives it>". It starts after the row named by the Last-Event-ID
 * header, else after the newest row at the time of the call. f's strings are copied; datadir is
 * borrowed and must outlive the worker. Returns 0, or PT_ENOMEM / PT_EINVAL (bad
 * Last-Event-ID) without answering. Loop side. */
int pt_reqlog_sse_start(h2o_req_t *req, const char *datadir, const pt_reqlog_filter *f);

#endif
