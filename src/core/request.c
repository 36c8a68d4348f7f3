/* request.c - the pt_response helpers (core/request.h) shared by the worker and the Python
 * runtime, and HTTP reason phrases. */
#include "core/request.h"

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

/* RFC 9110 and the registered extensions, sorted by code. */
static const struct {
    int code;
    const char *reason;
} reasons[] = {
    {100, "Continue"},
    {101, "Switching Protocols"},
    {102, "Processing"},
    {103, "Early Hints"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {203, "Non-Authoritative Information"},
    {204, "No Content"},
    {205, "Reset Content"},
    {206, "Partial Content"},
    {207, "Multi-Status"},
    {208, "Already Reported"},
    {226, "IM Used"},
    {300, "Multiple Choices"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {303, "See Other"},
    {304, "Not Modified"},
    {305, "Use Proxy"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {402, "Payment Required"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {406, "Not Acceptable"},
    {407, "Proxy Authentication Required"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {411, "Length Required"},
    {412, "Precondition Failed"},
    {413, "Payload Too Large"},
    {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {416, "Range Not Satisfiable"},
    {417, "Expectation Failed"},
    {418, "I'm a teapot"},
    {421, "Misdirected Request"},
    {422, "Unprocessable Entity"},
    {423, "Locked"},
    {424, "Failed Dependency"},
    {425, "Too Early"},
    {426, "Upgrade Required"},
    {428, "Precondition Required"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {451, "Unavailable For Legal Reasons"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
    {506, "Variant Also Negotiates"},
    {507, "Insufficient Storage"},
    {508, "Loop Detected"},
    {510, "Not Extended"},
    {511, "Network Authentication Required"},
};

const char *
pt_http_reason(int status)
{
    size_t lo = 0, hi = sizeof(reasons) / sizeof(reasons[0]);
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (reasons[mid].code == status)
            return reasons[mid].reason;
        if (reasons[mid].code < status)
            lo = mid + 1;
        else
            hi = mid;
    }
    return "Unknown";
}
