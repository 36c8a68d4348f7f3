/* test_log.c - unit tests for core/log: record format, levels, escaping, long messages. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "test.h"

/* Redirects stderr to a temporary file for the duration of one capture. */
typedef struct capture {
    FILE *f;
    int saved;
} capture;

static int
capture_start(capture *c)
{
    fflush(stderr);
    c->f = tmpfile();
    if (c->f == NULL)
        return -1;
    c->saved = dup(STDERR_FILENO);
    dup2(fileno(c->f), STDERR_FILENO);
    return 0;
}

/* Restores stderr and returns what was written (caller frees with free()). */
static char *
capture_end(capture *c, size_t *len)
{
    dup2(c->saved, STDERR_FILENO);
    close(c->saved);
    off_t n = lseek(fileno(c->f), 0, SEEK_END);
    if (n < 0)
        n = 0;
    char *out = calloc(1, (size_t)n + 1);
    if (out && n > 0 && pread(fileno(c->f), out, (size_t)n, 0) != n)
        n = 0;
    fclose(c->f);
    *len = out ? (size_t)n : 0;
    return out;
}

static int
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Checks "YYYY-MM-DDTHH:MM:SS.mmmZ" at the start of s. */
static int
timestamp_ok(const char *s)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
    for (size_t i = 0; i < sizeof(shape) - 1; i++) {
        if (shape[i] == 'd' ? !is_digit(s[i]) : s[i] != shape[i])
            return 0;
    }
    return 1;
}

TEST(log_record_format)
{
    capture c;
    size_t n;
    ASSERT_EQ(capture_start(&c), 0);
    pt_log_init("worker 3");
    pt_log_set_level(PT_LOG_INFO);
    pt_log_info("hello %s %d", "world", 42);
    pt_log_error("boom");
    char *out = capture_end(&c, &n);
    ASSERT_TRUE(out != NULL);
    ASSERT_TRUE(timestamp_ok(out));
    ASSERT_TRUE(strncmp(out + 24, " INFO [worker 3] hello world 42\n", 32) == 0);
    char *second = strchr(out, '\n') + 1;
    ASSERT_TRUE(timestamp_ok(second));
    ASSERT_STREQ(second + 24, " ERROR [worker 3] boom\n");
    free(out);
    pt_log_init("portico");
}

TEST(log_levels_filter)
{
    capture c;
    size_t n;
    ASSERT_EQ(capture_start(&c), 0);
    pt_log_set_level(PT_LOG_INFO);
    pt_log_debug("hidden");
    pt_log_set_level(PT_LOG_DEBUG);
    pt_log_debug("shown");
    pt_log_set_level(PT_LOG_ERROR);
    pt_log_warn("hidden too");
    pt_log_error("last");
    pt_log_set_level(PT_LOG_INFO);
    char *out = capture_end(&c, &n);
    ASSERT_TRUE(out != NULL);
    ASSERT_TRUE(strstr(out, "hidden") == NULL);
    ASSERT_TRUE(strstr(out, " DEBUG [portico] shown\n") != NULL);
    ASSERT_TRUE(strstr(out, " ERROR [portico] last\n") != NULL);
    free(out);
}

TEST(log_multiline_and_control_characters)
{
    capture c;
    size_t n;
    ASSERT_EQ(capture_start(&c), 0);
    pt_log_set_level(PT_LOG_INFO);
    pt_log_info("Traceback:\n  File \"x\"\nValueError: bad\x1b[31m\r\n\n");
    char *out = capture_end(&c, &n);
    ASSERT_TRUE(out != NULL);
    ASSERT_STREQ(out + 24, " INFO [portico] Traceback:\n    File \"x\"\n  ValueError: "
                           "bad\\x1b[31m\n");
    free(out);
}

TEST(log_long_message_is_one_record)
{
    capture c;
    size_t n;
    size_t big = 200 * 1024;
    char *msg = malloc(big + 1);
    ASSERT_TRUE(msg != NULL);
    memset(msg, 'x', big);
    msg[big] = '\0';
    ASSERT_EQ(capture_start(&c), 0);
    pt_log_set_level(PT_LOG_INFO);
    pt_log_info("%s", msg);
    pt_log_info("%.5000s", msg);
    char *out = capture_end(&c, &n);
    free(msg);
    ASSERT_TRUE(out != NULL);
    char *nl = strchr(out, '\n');
    ASSERT_TRUE(nl != NULL);
    ASSERT_TRUE(nl - out < 70 * 1024);
    ASSERT_TRUE(strncmp(nl - 12, " [truncated]", 12) == 0);
    ASSERT_EQ(strlen(nl + 1), 24 + strlen(" INFO [portico] ") + 5000 + 1);
    free(out);
}

TEST(log_preserves_errno)
{
    capture c;
    size_t n;
    ASSERT_EQ(capture_start(&c), 0);
    errno = EACCES;
    pt_log_error("x");
    int e = errno;
    char *out = capture_end(&c, &n);
    free(out);
    ASSERT_EQ(e, EACCES);
}

static void *
log_thread(void *arg)
{
    char tag[16];
    snprintf(tag, sizeof(tag), "t%d", (int)(long)arg);
    for (int i = 0; i < 300; i++) {
        if (i % 100 == 0)
            pt_log_init(tag); /* re-tagging while others log must be safe too */
        pt_log_info("thread %ld line %d %s", (long)arg, i, "abcdefghijklmnopqrstuvwxyz");
    }
    return NULL;
}

TEST(log_threads_never_interleave)
{
    capture c;
    size_t n;
    pthread_t th[4];
    ASSERT_EQ(capture_start(&c), 0);
    pt_log_set_level(PT_LOG_INFO);
    for (long i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, log_thread, (void *)i);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    pt_log_init("portico");
    char *out = capture_end(&c, &n);
    ASSERT_TRUE(out != NULL);
    int lines = 0;
    for (char *p = out, *nl; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
        *nl = '\0';
        ASSERT_TRUE(timestamp_ok(p));
        ASSERT_TRUE(strstr(p, " INFO [") == p + 24);
        ASSERT_TRUE(strstr(p, " abcdefghijklmnopqrstuvwxyz") == nl - 27);
        lines++;
    }
    ASSERT_EQ(lines, 1200);
    free(out);
}
