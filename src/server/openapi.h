/* openapi.h - the OpenAPI 3.1 document of the published endpoints (/_portico/openapi.json):
 * paths with their parameters and methods, the script's docstring as each operation's
 * description, and the security scheme each endpoint requires. */
#ifndef PT_OPENAPI_H
#define PT_OPENAPI_H

#include <stddef.h>

#include "core/buf.h"
#include "store/store.h"

/* Appends the document for endpoints eps[0..n) served at server_url ("http://host:port");
 * scripts (NULL, or n pointers, each NULL or the script endpoint i runs; all borrowed) give
 * the descriptions. Returns 0 or a pt_buf error. */
int pt_openapi_render(const pt_endpoint *eps, const pt_script *const *scripts, size_t n,
                      const char *server_url, pt_buf *out);
/* Appends the docstring of the Python module in src[0..n) (its first statement, when a string
 * literal), cleaned as inspect.cleandoc does, to out. Returns 1 when there was one, 0 when
 * not, or PT_ENOMEM. */
int pt_openapi_docstring(const char *src, size_t n, pt_buf *out);

#endif
