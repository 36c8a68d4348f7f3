/* test_framing.c - unit tests for the strict HTTP/1 head checks (http_framing.c), through the
 * interposed phr_parse_request exactly as h2o calls it, over libh2o's real parser. */
#include <string.h>

#include "server/http_framing.h"
#include "test.h"

struct phr_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

int phr_parse_request(const char *buf, size_t len, const char **method, size_t *method_len,
                      const char **path, size_t *path_len, int *minor_version,
                      struct phr_header *headers, size_t *num_headers, size_t last_len);

typedef struct parsed {
    int rc;
    const char *path;
    size_t path_len;
    int minor;
    struct phr_header h[16];
    size_t nh;
    char copy[1024]; /* writable, as h2o's input buffer is */
} parsed;

static void
parse(parsed *p, const char *head)
{
    const char *method;
    size_t mlen;
    size_t n = strlen(head);
    memcpy(p->copy, head, n);
    p->nh = 16;
    p->rc = phr_parse_request(p->copy, n, &method, &mlen, &p->path, &p->path_len, &p->minor, p->h,
                              &p->nh, 0);
}

/* The status a marker request would get (0: accepted as it is). */
static int
refused(const parsed *p)
{
    h2o_req_t req;
    const char *msg = NULL;
    memset(&req, 0, sizeof(req));
    req.path = h2o_iovec_init(p->path, p->path_len);
    return pt_framing_rejected(&req, &msg);
}

TEST(framing_accepts_plain_heads)
{
    parsed p;
    ASSERT_EQ(pt_framing_init(256), 0);
    parse(&p, "GET /a?b=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n");
    ASSERT_GT(p.rc, 0);
    ASSERT_EQ(refused(&p), 0);
    ASSERT_MEMSTR(p.path, p.path_len, "/a?b=1");
    parse(&p, "GET / HTTP/1.0\r\n\r\n"); /* HTTP/1.0 needs no Host */
    ASSERT_EQ(refused(&p), 0);
    parse(&p, "GET / HTTP/1.1\r\nHost: h\r\nX-A: b"); /* incomplete, under the limit */
    ASSERT_EQ(p.rc, -2);
}

TEST(framing_refuses_ambiguous_heads)
{
    static const char *bad[] = {
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\ntransfer-encoding: x\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nX-A: one\r\n two\r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nHOST: b\r\n\r\n",
        "GET http:///x HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET http://h?x HTTP/1.1\r\nHost: h\r\n\r\n",
    };
    ASSERT_EQ(pt_framing_init(256), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        parsed p;
        parse(&p, bad[i]);
        ASSERT_EQ(p.rc, (int)strlen(bad[i])); /* the whole head, consumed */
        ASSERT_EQ(refused(&p), 400);
        ASSERT_EQ(p.minor, 0); /* HTTP/1.0: h2o closes the connection after the answer */
        ASSERT_EQ(p.nh, 0);
    }
}

TEST(framing_limits_the_head_while_reading)
{
    char head[512];
    parsed p;
    ASSERT_EQ(pt_framing_init(256), 0);
    memset(head, 'a', sizeof(head) - 1);
    head[sizeof(head) - 1] = '\0';
    memcpy(head, "GET / HTTP/1.1\r\nX: ", 19);
    parse(&p, head); /* no end of head yet, past the limit */
    ASSERT_EQ(refused(&p), 431);
    parse(&p, "GARBAGE\r\n\r\n"); /* the parser's own errors pass through to h2o */
    ASSERT_EQ(p.rc, -1);
}

TEST(framing_absolute_form_routes_by_path)
{
    parsed p;
    ASSERT_EQ(pt_framing_init(256), 0);
    parse(&p, "GET HTTP://api.example.com:8080/x/y?q=1 HTTP/1.1\r\nHost: other\r\n\r\n");
    ASSERT_EQ(refused(&p), 0);
    ASSERT_MEMSTR(p.path, p.path_len, "/x/y?q=1");
    ASSERT_MEMSTR(p.h[0].value, p.h[0].value_len, "api.example.com:8080");
    parse(&p, "GET https://api.example.com HTTP/1.1\r\nHost: other\r\n\r\n");
    ASSERT_MEMSTR(p.path, p.path_len, "/");
    parse(&p, "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"); /* not absolute-form: left alone */
    ASSERT_MEMSTR(p.path, p.path_len, "*");
}
