/* test_cli_api.c - the remote CLI's pieces: path segments percent-encoded, and the HTTP/1.1
 * client against a one-shot server on a thread (Content-Length, chunked, errors). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli/cli_api.h"
#include "test.h"

TEST(cli_api_path_encodes_each_segment)
{
    char out[64];
    ASSERT_EQ(pt_cli_api_path(out, sizeof out, "scripts", "Load - DWH", "versions", "2", NULL), 0);
    ASSERT_STREQ(out, "/scripts/Load%20-%20DWH/versions/2");
    ASSERT_EQ(pt_cli_api_path(out, sizeof out, "users", "a/b?c#d%", NULL), 0);
    ASSERT_STREQ(out, "/users/a%2Fb%3Fc%23d%25");
    ASSERT_EQ(pt_cli_api_path(out, sizeof out, "scripts", "caf\xc3\xa9", NULL), 0);
    ASSERT_STREQ(out, "/scripts/caf%C3%A9");
    ASSERT_EQ(pt_cli_api_path(out, sizeof out, NULL), 0);
    ASSERT_STREQ(out, "");
}

TEST(cli_api_path_too_long)
{
    char out[12];
    ASSERT_EQ(pt_cli_api_path(out, sizeof out, "scripts", "toolong", NULL), -1);
    ASSERT_EQ(pt_cli_api_path(out, 8, "a", "  ", NULL), -1);
}

/* A server that answers one connection with `answer` after reading the request head. */
typedef struct one_shot {
    int fd;
    const char *answer;
    char request[4096];
} one_shot;

static void *
serve_once(void *arg)
{
    one_shot *s = arg;
    int c = accept(s->fd, NULL, NULL);
    size_t n = 0;
    if (c < 0)
        return NULL;
    while (n + 1 < sizeof s->request) {
        ssize_t r = read(c, s->request + n, sizeof s->request - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        s->request[n] = '\0';
        if (strstr(s->request, "\r\n\r\n") != NULL)
            break;
    }
    if (write(c, s->answer, strlen(s->answer)) < 0)
        perror("write");
    close(c);
    return NULL;
}

/* Starts s on a free loopback port; writes the base URL into url. 0 or -1. */
static int
start(one_shot *s, pthread_t *t, char *url, size_t urlsz)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof a;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(s->fd, 1) != 0 ||
        getsockname(s->fd, (struct sockaddr *)&a, &len) != 0)
        return -1;
    snprintf(url, urlsz, "http://127.0.0.1:%d", ntohs(a.sin_port));
    return pthread_create(t, NULL, serve_once, s);
}

TEST(cli_http_content_length)
{
    one_shot s = {.answer = "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
                            "Content-Length: 13\r\n\r\n{\"version\":2}trailing"};
    pthread_t t;
    char base[64], url[128], err[256], *resp = NULL;
    size_t n = 0;
    int status = 0, is_json = 0;
    ASSERT_EQ(start(&s, &t, base, sizeof base), 0);
    snprintf(url, sizeof url, "%s/_portico/admin/v1/scripts/a%%20b/versions", base);
    int rc = pt_cli_http(url, "pat_x", "POST", "{\"source\":\"\"}", 13, &status, &resp, &n,
                         &is_json, err, sizeof err);
    pthread_join(t, NULL);
    close(s.fd);
    ASSERT_EQ(rc, 0);
    ASSERT_EQ(status, 201);
    ASSERT_TRUE(is_json);
    ASSERT_MEMSTR(resp, n, "{\"version\":2}");
    free(resp);
    static const char line[] = "POST /_portico/admin/v1/scripts/a%20b/versions HTTP/1.1\r\n";
    ASSERT_TRUE(strncmp(s.request, line, strlen(line)) == 0);
    ASSERT_TRUE(strstr(s.request, "\r\nAuthorization: Bearer pat_x\r\n") != NULL);
    ASSERT_TRUE(strstr(s.request, "\r\nContent-Length: 13\r\n") != NULL);
}

TEST(cli_http_chunked_and_not_json)
{
    one_shot s = {.answer = "HTTP/1.1 200 OK\r\nContent-Type: text/x-diff\r\n"
                            "Transfer-Encoding: chunked\r\n\r\n4\r\n--- \r\n3\r\na v\r\n0\r\n\r\n"};
    pthread_t t;
    char url[64], err[256], *resp = NULL;
    size_t n = 0;
    int status = 0, is_json = 1;
    ASSERT_EQ(start(&s, &t, url, sizeof url), 0);
    int rc = pt_cli_http(url, NULL, "GET", NULL, 0, &status, &resp, &n, &is_json, err, sizeof err);
    pthread_join(t, NULL);
    close(s.fd);
    ASSERT_EQ(rc, 0);
    ASSERT_EQ(status, 200);
    ASSERT_FALSE(is_json);
    ASSERT_MEMSTR(resp, n, "--- a v");
    free(resp);
    ASSERT_TRUE(strstr(s.request, "Authorization") == NULL);
}

TEST(cli_http_not_http_and_cut_short)
{
    one_shot s = {.answer = "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort"};
    pthread_t t;
    char url[64], err[256], *resp = NULL;
    size_t n = 0;
    int status = 0, is_json = 0;
    ASSERT_EQ(start(&s, &t, url, sizeof url), 0);
    int rc = pt_cli_http(url, NULL, "GET", NULL, 0, &status, &resp, &n, &is_json, err, sizeof err);
    pthread_join(t, NULL);
    close(s.fd);
    ASSERT_EQ(rc, -1);
    ASSERT_TRUE(strstr(err, "cut short") != NULL);

    one_shot junk = {.answer = "SSH-2.0-OpenSSH\r\n\r\n"};
    ASSERT_EQ(start(&junk, &t, url, sizeof url), 0);
    rc = pt_cli_http(url, NULL, "GET", NULL, 0, &status, &resp, &n, &is_json, err, sizeof err);
    pthread_join(t, NULL);
    close(junk.fd);
    ASSERT_EQ(rc, -1);
    ASSERT_TRUE(strstr(err, "did not answer HTTP") != NULL);
}

TEST(cli_http_bad_urls)
{
    char err[256], *resp = NULL;
    size_t n = 0;
    int status = 0, is_json = 0;
    static const char *const bad[] = {"https://127.0.0.1:1/x", "ftp://h/x",     "http://:80/x",
                                      "http://h:8x/x",         "http://[::1/x", "http://h:/x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        ASSERT_EQ(pt_cli_http(bad[i], NULL, "GET", NULL, 0, &status, &resp, &n, &is_json, err,
                              sizeof err),
                  -1);
        ASSERT_TRUE(err[0] != '\0');
        ASSERT_TRUE(resp == NULL);
    }
}
