/* http_framing.c - strict HTTP/1 request heads: picohttpparser's entry point, interposed in
 * front of h2o's copy (see http_framing.h for why and how). Loop side: only the thread leading
 * a worker's event loop parses. */
#include "server/http_framing.h"

#include <dlfcn.h>
#include <string.h>
#include <strings.h>

#include "core/err.h"
#include "core/log.h"

#include <h2o/cache_digests.h>

/* picohttpparser's header, as libh2o 2.2 was built with it (no public header ships). */
struct phr_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

typedef int (*phr_parse_request_fn)(const char *buf, size_t len, const char **method,
                                    size_t *method_len, const char **path, size_t *path_len,
                                    int *minor_version, struct phr_header *headers,
                                    size_t *num_headers, size_t last_len);

int phr_parse_request(const char *buf, size_t len, const char **method, size_t *method_len,
                      const char **path, size_t *path_len, int *minor_version,
                      struct phr_header *headers, size_t *num_headers, size_t last_len);

/* h2o's HTTP/2 header-block decoder (h2o/http2_internal.h, which needs headers Debian does not
 * ship); the table stays opaque here. */
struct st_h2o_hpack_header_table_t;
int h2o_hpack_parse_headers(h2o_req_t *req, struct st_h2o_hpack_header_table_t *header_table,
                            const uint8_t *src, size_t len, int *pseudo_header_exists_map,
                            size_t *content_length, h2o_cache_digests_t **digests,
                            const char **err_desc);
typedef int (*hpack_parse_fn)(h2o_req_t *req, struct st_h2o_hpack_header_table_t *header_table,
                              const uint8_t *src, size_t len, int *pseudo_header_exists_map,
                              size_t *content_length, h2o_cache_digests_t **digests,
                              const char **err_desc);

static phr_parse_request_fn real_parse;
static hpack_parse_fn real_hpack_parse;
static size_t max_head = 16384;

/* The refused heads: each marker's path is a distinct static string, so on_req recognises a
 * marker by the address alone; no client can send one. The path is what the access log shows
 * (no spaces: one field of the line). */
enum reason {
    R_TOO_LARGE,
    R_CONTENT_LENGTHS,
    R_LENGTH_AND_CHUNKED,
    R_ENCODINGS,
    R_OBS_FOLD,
    R_NO_HOST,
    R_HOSTS,
    R_TARGET,
    R_COUNT
};

static const struct {
    const char *path;
    int status;
    const char *message;
} reasons[R_COUNT] = {
    [R_TOO_LARGE] = {"/(request-head-too-large)", 431, "request headers too large"},
    [R_CONTENT_LENGTHS] = {"/(conflicting-content-length)", 400,
                           "conflicting Content-Length headers"},
    [R_LENGTH_AND_CHUNKED] = {"/(content-length-with-transfer-encoding)", 400,
                              "Content-Length together with Transfer-Encoding"},
    [R_ENCODINGS] = {"/(several-transfer-encoding)", 400, "more than one Transfer-Encoding"},
    [R_OBS_FOLD] = {"/(obs-fold)", 400, "folded header line (obs-fold)"},
    [R_NO_HOST] = {"/(no-host)", 400, "HTTP/1.1 request without Host"},
    [R_HOSTS] = {"/(several-host)", 400, "more than one Host header"},
    [R_TARGET] = {"/(bad-absolute-form-target)", 400, "malformed absolute-form request target"},
};

int
pt_framing_init(size_t limit)
{
    max_head = limit;
    if (real_parse == NULL)
        real_parse = (phr_parse_request_fn)dlsym(RTLD_NEXT, "phr_parse_request");
    if (real_parse == NULL) {
        pt_log_error("cannot find h2o's HTTP/1 parser (phr_parse_request)");
        return PT_EIO;
    }
    if (real_hpack_parse == NULL)
        real_hpack_parse = (hpack_parse_fn)dlsym(RTLD_NEXT, "h2o_hpack_parse_headers");
    if (real_hpack_parse == NULL) {
        pt_log_error("cannot find h2o's HTTP/2 header decoder (h2o_hpack_parse_headers)");
        return PT_EIO;
    }
    return 0;
}

int
pt_framing_rejected(const h2o_req_t *req, const char **message)
{
    for (int i = 0; i < R_COUNT; i++) {
        if (req->path.base == reasons[i].path) {
            *message = reasons[i].message;
            return reasons[i].status;
        }
    }
    return 0;
}

/* Turns the parse into the marker of reason r: a complete HTTP/1.0 GET without headers that
 * consumed `consumed` bytes. */
static int
reject(enum reason r, size_t consumed, const char **method, size_t *method_len, const char **path,
       size_t *path_len, int *minor_version, size_t *num_headers)
{
    *method = "GET";
    *method_len = 3;
    *path = reasons[r].path;
    *path_len = strlen(reasons[r].path);
    *minor_version = 0;
    *num_headers = 0;
    return (int)consumed;
}

static int
name_is(const struct phr_header *h, const char *name, size_t n)
{
    return h->name_len == n && strncasecmp(h->name, name, n) == 0;
}

/* "http://authority/path?query" (any case): points *path at "/path?query" (a static "/" when
 * the path is empty) and *authority at the authority. Returns 0, 1 when the target is not in
 * absolute form, or -1 when malformed. */
static int
absolute_form(const char **path, size_t *path_len, const char **authority, size_t *authority_len)
{
    const char *p = *path;
    size_t n = *path_len, skip;
    if (n >= 7 && strncasecmp(p, "http://", 7) == 0)
        skip = 7;
    else if (n >= 8 && strncasecmp(p, "https://", 8) == 0)
        skip = 8;
    else
        return 1;
    size_t end = skip;
    while (end < n && p[end] != '/' && p[end] != '?' && p[end] != '#')
        end++;
    if (end == skip || (end < n && p[end] != '/'))
        return -1; /* no authority, or a query without a path */
    *authority = p + skip;
    *authority_len = end - skip;
    if (end == n) {
        *path = "/";
        *path_len = 1;
    } else {
        *path = p + end;
        *path_len = n - end;
    }
    return 0;
}

/* The checks on a complete head; returns R_COUNT when it is acceptable. */
static enum reason
check_head(int minor_version, struct phr_header *headers, size_t num_headers, const char **path,
           size_t *path_len)
{
    ssize_t host = -1, length = -1;
    size_t nhost = 0, nencoding = 0;
    for (size_t i = 0; i < num_headers; i++) {
        const struct phr_header *h = &headers[i];
        if (h->name == NULL || h->name_len == 0)
            return R_OBS_FOLD;
        if (name_is(h, "host", 4)) {
            host = (ssize_t)i;
            nhost++;
        } else if (name_is(h, "content-length", 14)) {
            if (length >= 0 && (headers[length].value_len != h->value_len ||
                                memcmp(headers[length].value, h->value, h->value_len) != 0))
                return R_CONTENT_LENGTHS;
            length = (ssize_t)i;
        } else if (name_is(h, "transfer-encoding", 17)) {
            nencoding++;
        }
    }
    if (nencoding > 1)
        return R_ENCODINGS;
    if (nencoding > 0 && length >= 0)
        return R_LENGTH_AND_CHUNKED;
    if (nhost > 1)
        return R_HOSTS;
    if (nhost == 0 && minor_version >= 1)
        return R_NO_HOST;

    const char *authority;
    size_t authority_len;
    int rc = absolute_form(path, path_len, &authority, &authority_len);
    if (rc < 0)
        return R_TARGET;
    if (rc == 0 && host >= 0) {
        /* RFC 9112 3.2.2: the target's authority replaces Host. */
        headers[host].value = authority;
        headers[host].value_len = authority_len;
    }
    return R_COUNT;
}

int
phr_parse_request(const char *buf, size_t len, const char **method, size_t *method_len,
                  const char **path, size_t *path_len, int *minor_version,
                  struct phr_header *headers, size_t *num_headers, size_t last_len)
{
    int n = real_parse(buf, len, method, method_len, path, path_len, minor_version, headers,
                       num_headers, last_len);
    if (n == -2 && len > max_head)
        return reject(R_TOO_LARGE, len, method, method_len, path, path_len, minor_version,
                      num_headers);
    if (n < 0)
        return n;
    enum reason r = (size_t)n > max_head
                        ? R_TOO_LARGE
                        : check_head(*minor_version, headers, *num_headers, path, path_len);
    if (r != R_COUNT)
        return reject(r, (size_t)n, method, method_len, path, path_len, minor_version, num_headers);
    return n;
}

/* HTTP/2: h2o hands each complete header block (HEADERS and its CONTINUATION frames, at most
 * H2O_MAX_REQLEN bytes, which h2o enforces while collecting them) to this decoder. A block
 * over the limit is refused before it is decoded, so decoding never allocates for it: HPACK
 * can expand a block many times over (each one-byte reference to a table entry of up to 4 KiB
 * becomes a header), and the limit bounds what it can expand from. Refusing to decode a block
 * leaves the connection's HPACK table out of step with the client's, so the refusal is a
 * connection error (RFC 9113 4.3): h2o sends GOAWAY with ENHANCE_YOUR_CALM and closes it. A
 * block under the limit that decodes to more than it still gets 431 from on_req. */
int
h2o_hpack_parse_headers(h2o_req_t *req, struct st_h2o_hpack_header_table_t *header_table,
                        const uint8_t *src, size_t len, int *pseudo_header_exists_map,
                        size_t *content_length, h2o_cache_digests_t **digests,
                        const char **err_desc)
{
    if (len > max_head) {
        *err_desc = "request headers too large";
        return H2O_HTTP2_ERROR_ENHANCE_YOUR_CALM;
    }
    return real_hpack_parse(req, header_table, src, len, pseudo_header_exists_map, content_length,
                            digests, err_desc);
}
