/* console.h - the web console (docs/CONSOLE.md): its static assets, embedded in the binary at
 * build time (scripts/embed-console.py), served by the admin listener on the worker's loop. */
#ifndef PT_CONSOLE_H
#define PT_CONSOLE_H

#include <h2o.h>

/* Where the console lives on the admin listener; "/" redirects here. */
#define PT_CONSOLE_PREFIX "/_portico/console/"

/* Answers req when its path is the console's ("/", PT_CONSOLE_PREFIX and below): the asset
 * with its security headers (CSP, nosniff, no-referrer, frame denial), ETag and cache policy,
 * a redirect, 304, 404 or 405. public_url (borrowed, may be "") is what the console shows as
 * the base of endpoint URLs. Returns 1 when answered, 0 for any other path (the admin API).
 * req is borrowed. Loop side. */
int pt_console_serve(h2o_req_t *req, const char *public_url);

#endif
