/* log.c - one-line log records on stderr, each emitted with a single write(2).
 *
 * Records from many processes (master, workers) and threads share one stderr. A write(2) of
 * up to PIPE_BUF bytes to a pipe, or any size to an O_APPEND file, is not interleaved with
 * other writes, so each record is assembled completely in memory first and written at once.
 * Continuation lines of a multi-line message (a Python traceback) are indented by two spaces
 * and other control characters are escaped, so no message can forge a record of its own. */
#include "core/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* Messages longer than this are cut (with a marker) rather than allocating without bound. */
#define LOG_MAX_MESSAGE (64 * 1024)
#define LOG_TAG_MAX 64

static atomic_int log_level = PT_LOG_INFO;
static pthread_once_t log_once = PTHREAD_ONCE_INIT;
/* The tag is only ever copied out under tag_lock; pthread_atfork keeps the lock usable in a
 * child forked while another thread held it. */
static pthread_mutex_t tag_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_tag[LOG_TAG_MAX] = "portico";

/* Lets the compiler check that fmt really is a format, as it does for pt_log's callers. */
void pt_logv(enum pt_log_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

static void
tag_lock_acquire(void)
{
    pthread_mutex_lock(&tag_lock);
}

static void
tag_lock_release(void)
{
    pthread_mutex_unlock(&tag_lock);
}

static void
log_setup(void)
{
    const char *env = getenv("PORTICO_LOG");

    pthread_atfork(tag_lock_acquire, tag_lock_release, tag_lock_release);
    if (env == NULL)
        return;
    for (int i = PT_LOG_DEBUG; i <= PT_LOG_ERROR; i++) {
        if (strcasecmp(env, level_names[i]) == 0 ||
            (i == PT_LOG_WARN && !strcasecmp(env, "warning")))
            atomic_store(&log_level, i);
    }
}

void
pt_log_init(const char *tag)
{
    pthread_once(&log_once, log_setup);
    tag_lock_acquire();
    snprintf(log_tag, sizeof(log_tag), "%s", tag ? tag : "portico");
    tag_lock_release();
}

void
pt_log_set_level(enum pt_log_level level)
{
    pthread_once(&log_once, log_setup);
    atomic_store(&log_level, (int)level);
}

/* Writes "YYYY-MM-DDTHH:MM:SS.mmmZ" (24 bytes, no NUL) into out. The seconds part is cached
 * per thread: gmtime_r is not free and most records share their second with the previous. */
static void
format_time(char *out)
{
    static _Thread_local time_t cached_sec = (time_t)-1;
    static _Thread_local char cached[20];
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != cached_sec) {
        struct tm tm;
        char tmp[32];
        gmtime_r(&ts.tv_sec, &tm);
        strftime(tmp, sizeof(tmp), "%Y-%m-%dT%H:%M:%S", &tm);
        memcpy(cached, tmp, 19);
        cached_sec = ts.tv_sec;
    }
    memcpy(out, cached, 19);
    int ms = (int)(ts.tv_nsec / 1000000);
    out[19] = '.';
    out[20] = (char)('0' + ms / 100);
    out[21] = (char)('0' + ms / 10 % 10);
    out[22] = (char)('0' + ms % 10);
    out[23] = 'Z';
}

/* Trailing line ends are dropped: the record supplies its own. */
static size_t
trim_newlines(const char *msg, size_t n)
{
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        n--;
    return n;
}

/* The length sanitize() will produce for msg[0..n) (n already trimmed). */
static size_t
sanitized_len(const char *msg, size_t n)
{
    size_t len = n;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)msg[i];
        if (c == '\n')
            len += 2;
        else if ((c < 0x20 && c != '\t') || c == 0x7f)
            len += 3;
    }
    return len;
}

/* Copies msg[0..n) (n already trimmed) into out, indenting continuation lines and escaping
 * control characters; out must hold sanitized_len(msg, n) bytes. Returns the bytes written. */
static size_t
sanitize(char *out, const char *msg, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    char *o = out;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)msg[i];
        if (c == '\n') {
            memcpy(o, "\n  ", 3);
            o += 3;
        } else if ((c < 0x20 && c != '\t') || c == 0x7f) {
            o[0] = '\\';
            o[1] = 'x';
            o[2] = hex[c >> 4];
            o[3] = hex[c & 15];
            o += 4;
        } else {
            *o++ = (char)c;
        }
    }
    return (size_t)(o - out);
}

static void
write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

void
pt_logv(enum pt_log_level level, const char *fmt, va_list ap)
{
    static const char cut[] = " [truncated]";
    char msg_stack[2048], line_stack[4096];
    char *msg = msg_stack, *line = line_stack;
    char tag[LOG_TAG_MAX];
    int saved_errno = errno;

    pthread_once(&log_once, log_setup);
    if ((int)level < atomic_load(&log_level) || (int)level < PT_LOG_DEBUG || level > PT_LOG_ERROR)
        return;

    va_list ap2;
    va_copy(ap2, ap);
    int len = vsnprintf(msg_stack, sizeof(msg_stack), fmt, ap2);
    va_end(ap2);
    if (len < 0) {
        len = snprintf(msg_stack, sizeof(msg_stack), "(bad log format: %s)", fmt);
        if (len < 0)
            len = 0;
    }
    size_t mlen = (size_t)len, truncated = 0;
    if (mlen >= sizeof(msg_stack)) {
        if (mlen > LOG_MAX_MESSAGE) {
            mlen = LOG_MAX_MESSAGE;
            truncated = 1;
        }
        msg = malloc(mlen + 1);
        if (msg == NULL) {
            msg = msg_stack;
            mlen = sizeof(msg_stack) - 1;
            truncated = 1;
        } else {
            vsnprintf(msg, mlen + 1, fmt, ap);
        }
    }

    tag_lock_acquire();
    size_t tlen = strlen(log_tag);
    memcpy(tag, log_tag, tlen + 1);
    tag_lock_release();

    /* timestamp, " LEVEL [", tag, "] ", escaped message, marker, newline */
    mlen = trim_newlines(msg, mlen);
    size_t fixed = 24 + 8 + tlen + 2 + sizeof(cut);
    size_t need = fixed + sanitized_len(msg, mlen);
    if (need > sizeof(line_stack)) {
        line = malloc(need);
        if (line == NULL) {
            /* Escaping at most quadruples a byte: this much of the message surely fits. */
            line = line_stack;
            mlen = (sizeof(line_stack) - fixed) / 4;
            truncated = 1;
        }
    }
    char *o = line;
    format_time(o);
    o += 24;
    o += sprintf(o, " %s [", level_names[level]);
    memcpy(o, tag, tlen);
    o += tlen;
    *o++ = ']';
    *o++ = ' ';
    o += sanitize(o, msg, mlen);
    if (truncated) {
        memcpy(o, cut, sizeof(cut) - 1);
        o += sizeof(cut) - 1;
    }
    *o++ = '\n';
    write_all(line, (size_t)(o - line));

    if (line != line_stack)
        free(line);
    if (msg != msg_stack)
        free(msg);
    errno = saved_errno;
}

void
pt_log(enum pt_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pt_logv(level, fmt, ap);
    va_end(ap);
}
