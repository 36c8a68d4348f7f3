/* crash.h - the answers a process gives when it can no longer answer normally: raw HTTP error
 * replies written straight on a connection, safe inside a signal handler. */
#ifndef PT_CRASH_H
#define PT_CRASH_H

#include <stddef.h>

/* The largest reply pt_crash_reply writes (status line, headers and body). */
#define PT_CRASH_REPLY_MAX 768

/* Formats a complete HTTP/1.1 error answer into buf (bufsz bytes): status line with the reason
 * phrase of `status`, `content-type: application/json`, `connection: close`, `x-request-id: <id>`,
 * and the body
 * {"error": "<why>", "request_id": "<id>"}. why and id are JSON-escaped (quotes, backslashes
 * and control characters; bytes outside ASCII become '?'), cut at a character boundary when too
 * long; the header's id keeps only printable ASCII, so neither string can end the header
 * block. Both may be NULL (empty). Returns the length written, or 0 when the answer does not
 * fit in bufsz (PT_CRASH_REPLY_MAX always suffices). Async-signal-safe: no allocation, no stdio, no
 * locale. Borrows everything. */
size_t pt_crash_format(char *buf, size_t bufsz, int status, const char *why, const char *id);

/* Writes pt_crash_format's answer on fd (retrying short writes and EINTR; a full non-blocking
 * socket is not waited for). Returns 0 when all of it was written, PT_EIO otherwise.
 * Async-signal-safe; errno is preserved. */
int pt_crash_reply(int fd, int status, const char *why, const char *id);

#endif
