/* request.c - response helpers shared by the worker and the Python runtime. */
#include "server/request.h"

#include <string.h>

#include "core/json.h"

void
pt_response_init(pt_response *r, size_t max_body)
{
    r->status = 200;
    r->content_type = NULL;
    r->fatal = 0;
    r->stream = NULL;
    pt_buf_init(&r->body, max_body);
    pt_buf_init(&r->headers, 64 * 1024);
}

void
pt_response_free(pt_response *r)
{
    pt_buf_free(&r->body);
    pt_buf_free(&r->headers);
    if (r->stream != NULL) {
        r->stream->free(r->stream);
        r->stream = NULL;
    }
}

void
pt_response_error(pt_response *r, int status, const char *message, const char *request_id)
{
    r->status = status;
    r->content_type = "application/json";
    if (r->stream != NULL) {
        r->stream->free(r->stream);
        r->stream = NULL;
    }
    pt_buf_reset(&r->body);
    pt_buf_reset(&r->headers);
    /* Error bodies are tiny; lift the cap so that an error always fits. */
    r->body.max = 0;
    pt_buf_puts(&r->body, "{\"error\": ");
    pt_json_string(&r->body, message, strlen(message));
    pt_buf_puts(&r->body, ", \"request_id\": ");
    pt_json_string(&r->body, request_id, strlen(request_id));
    pt_buf_putc(&r->body, '}');
}

int
pt_response_add_header(pt_response *r, const char *name, size_t nlen, const char *value,
                       size_t vlen)
{
    size_t mark = r->headers.len;
    int rc;

    if ((rc = pt_buf_append(&r->headers, name, nlen)) != 0 ||
        (rc = pt_buf_putc(&r->headers, '\0')) != 0 ||
        (rc = pt_buf_append(&r->headers, value, vlen)) != 0 ||
        (rc = pt_buf_putc(&r->headers, '\0')) != 0) {
        r->headers.len = mark;
        return rc;
    }
    return 0;
}

const char *
pt_http_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 406:
        return "Not Acceptable";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 411:
        return "Length Required";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Entity";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Unknown";
    }
}
