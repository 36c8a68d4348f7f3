/* openapi.h - the OpenAPI 3.0 document of the published endpoints (/_portico/openapi.json):
 * paths with their parameters and methods, and the security scheme each endpoint requires. */
#ifndef PT_OPENAPI_H
#define PT_OPENAPI_H

#include <stddef.h>

#include "core/buf.h"
#include "store/store.h"

/* Appends the document for endpoints eps[0..n) served at server_url ("http://host:port").
 * Returns 0 or a pt_buf error. */
int pt_openapi_render(const pt_endpoint *eps, size_t n, const char *server_url, pt_buf *out);

#endif
