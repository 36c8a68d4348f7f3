/* http_framing.h - strict HTTP/1 request heads, checked while h2o reads them: the head-size
 * limit, one Content-Length, no Content-Length with Transfer-Encoding, no obs-fold, exactly
 * one Host (HTTP/1.1), and absolute-form targets routed by their path.
 *
 * h2o 2.2 parses HTTP/1 heads with picohttpparser's phr_parse_request, which it calls through
 * the dynamic linker (libh2o exports it and its own calls go through the PLT). http_framing.c
 * defines phr_parse_request, so h2o's calls land there: it runs the real parser, then refuses
 * what is ambiguous. A refused head becomes a marker request (HTTP/1.0, no headers, a path
 * that only this file hands out) that on_req answers with a JSON error; the connection then
 * closes, since HTTP/1.0 without keep-alive is not persistent. A head still incomplete past
 * the limit is refused at once, so a worker never buffers more than one read past it. */
#ifndef PT_HTTP_FRAMING_H
#define PT_HTTP_FRAMING_H

#include <h2o.h>
#include <stddef.h>

/* Finds h2o's own parser and sets the head-size limit (request line and header lines, in
 * bytes). Call once per process before the loop runs. Returns 0, or PT_EIO when the real
 * parser cannot be found (then every HTTP/1 request would fail: the worker must not serve). */
int pt_framing_init(size_t max_head);

/* When req (borrowed) is the marker of a refused head: its status (400 or 431) and, in
 * *message, a static text saying why. Else 0. */
int pt_framing_rejected(const h2o_req_t *req, const char **message);

#endif
