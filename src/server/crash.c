/* crash.c - answers written when a worker can no longer answer normally: the raw HTTP error
 * reply (shared with the master's custody of slow requests, holds.c), and the worker's paths
 * out: a fatal signal, os._exit() in a handler, every thread stuck past the timeout.
 *
 * Everything here may run inside a signal handler, or while other threads are in any state:
 * no allocation, no stdio, no locks but the one pt_crash_exit_stuck never releases. The
 * worker's state is read through slot fields only (worker_int.h, invariant 5). */
#include "server/crash.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"
#include "py/py.h"
#include "server/breaker.h"
#include "server/holds.h"
#include "core/request.h"
#include "server/worker_int.h"

#define WHY_MAX 320 /* bytes of escaped reason in the body */
#define ID_MAX 64   /* bytes of request id, escaped in the body and printable in the header */

/* A fixed buffer being filled; `full` once something did not fit (nothing more is added). */
typedef struct out {
    char *p;
    size_t n, cap;
    int full;
} out;

static void
put_mem(out *o, const char *s, size_t n)
{
    if (o->full || n > o->cap - o->n) {
        o->full = 1;
        return;
    }
    memcpy(o->p + o->n, s, n);
    o->n += n;
}

static void
put_str(out *o, const char *s)
{
    put_mem(o, s, strlen(s));
}

static void
put_uint(out *o, unsigned long v)
{
    char tmp[24];
    size_t n = sizeof(tmp);
    do {
        tmp[--n] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    put_mem(o, tmp + n, sizeof(tmp) - n);
}

/* Appends s as the inside of a JSON string, at most `room` bytes, never half an escape. */
static void
put_json(out *o, const char *s, size_t room)
{
    static const char hex[] = "0123456789abcdef";
    size_t used = 0;
    for (; s != NULL && *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[6];
        size_t n = 0;
        if (c == '"' || c == '\\') {
            esc[n++] = '\\';
            esc[n++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        } else {
            /* Non-ASCII bytes could be half a UTF-8 sequence once cut: never let them through. */
            esc[n++] = c < 0x80 ? (char)c : '?';
        }
        if (used + n > room)
            return;
        put_mem(o, esc, n);
        used += n;
    }
}

size_t
pt_crash_format(char *buf, size_t bufsz, int status, const char *why, const char *id)
{
    char body[WHY_MAX + ID_MAX * 6 + 64];
    out b = {body, 0, sizeof(body), 0};
    out o = {buf, 0, bufsz, 0};

    if (status < 100 || status > 999)
        status = 500;
    put_str(&b, "{\"error\": \"");
    put_json(&b, why, WHY_MAX);
    put_str(&b, "\", \"request_id\": \"");
    put_json(&b, id, ID_MAX);
    put_str(&b, "\"}");

    put_str(&o, "HTTP/1.1 ");
    put_uint(&o, (unsigned long)status);
    put_str(&o, " ");
    put_str(&o, pt_http_reason(status));
    put_str(&o, "\r\ncontent-type: application/json\r\nconnection: close\r\nx-request-id: ");
    for (size_t i = 0; id != NULL && id[i] != '\0' && i < ID_MAX; i++) {
        unsigned char c = (unsigned char)id[i];
        if (c > 0x20 && c < 0x7f)
            put_mem(&o, &id[i], 1);
    }
    put_str(&o, "\r\ncontent-length: ");
    put_uint(&o, b.n);
    put_str(&o, "\r\n\r\n");
    put_mem(&o, body, b.n);
    return o.full || b.full ? 0 : o.n;
}

int
pt_crash_reply(int fd, int status, const char *why, const char *id)
{
    char msg[PT_CRASH_REPLY_MAX];
    int saved = errno;
    size_t n = pt_crash_format(msg, sizeof(msg), status, why, id);
    size_t off = 0;
    while (off < n) {
        ssize_t rc = write(fd, msg + off, n - off);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0)
            break;
        off += (size_t)rc;
    }
    errno = saved;
    return n > 0 && off == n ? 0 : PT_EIO;
}

/* ---- The worker's paths out ----------------------------------------------------------- */

/* Closes both directions of every TCP connection of this process except listening sockets:
 * the clients of the dying worker's keep-alive connections see the end at once and come back
 * on another worker, instead of waiting for the kernel to tear this process down. Queued
 * answers (the 502s just written) still go out first. Async-signal-safe: raw syscalls on
 * /proc/self/fd. */
static void
shutdown_connections(void)
{
    int dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0)
        return;
    char buf[4096] __attribute__((aligned(8)));
    long n;
    while ((n = syscall(SYS_getdents64, dir, buf, sizeof(buf))) > 0) {
        for (long off = 0; off < n;) {
            /* struct linux_dirent64: ino (8), off (8), reclen (2), type (1), name */
            unsigned short reclen;
            memcpy(&reclen, buf + off + 16, sizeof(reclen));
            const char *name = buf + off + 19;
            off += reclen;
            int fd = 0, digits = 0;
            for (; *name >= '0' && *name <= '9'; name++, digits++)
                fd = fd * 10 + (*name - '0');
            if (digits == 0 || *name != '\0' || fd == dir)
                continue;
            int v = 0, dom = 0;
            socklen_t l = sizeof(v), dl = sizeof(dom);
            if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &l) != 0 || v != 0 ||
                getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &dl) != 0 ||
                (dom != AF_INET && dom != AF_INET6))
                continue;
            shutdown(fd, SHUT_RDWR);
        }
    }
    close(dir);
}

/* How long the thread that crashed waits for the rescue (worker_rescue.c) to get its answers
 * written through the loop before it finishes the raw way anyway (milliseconds). */
#define RESCUE_WAIT_MS 1000

/* Answers with `status` every request whose handler is running and has a cleartext HTTP/1
 * connection, and every timed-out one whose 504 is still owed on one; `shut`: then shuts
 * that connection down, so that what h2o may still write on it goes nowhere. Only slot fields
 * are read, never a job (it may be freed concurrently). Async-signal-safe. */
static void
answer_slots(worker *w, int status, const char *why, int shut)
{
    int nslots = atomic_load(&w->nslots);
    for (int i = 0; i < nslots; i++) {
        slot *s = &w->slots[i];
        int fd = atomic_exchange(&s->fd, -1);
        if (fd >= 0 && atomic_load(&s->job) != NULL) {
            if (atomic_exchange(&s->lent, 0))
                pt_holds_take_back(w->ctl, fd);
            pt_crash_reply(fd, status, why, s->id);
            if (shut)
                shutdown(fd, SHUT_RDWR);
        }
        int owed = atomic_exchange(&s->owed_fd, -1);
        if (owed >= 0) {
            pt_crash_reply(owed, 504, "handler timed out", s->id);
            if (shut)
                shutdown(owed, SHUT_RDWR);
        }
    }
}

/* Answers, before this process goes away, every request whose handler is running (with
 * `status`) and every timed-out one whose 504 is still owed, on cleartext HTTP/1 connections;
 * then shuts every connection down. `listening`: the listening sockets are still open (no
 * rescue closed them through the loop). Async-signal-safe. */
static void
answer_inflight(int status, const char *why, int listening)
{
    worker *w = &pt_worker_self;
    /* First stop taking connections: other threads may still lead the loop for a moment while
     * this process dies, and whatever they accepted now would be reset. */
    if (listening && w->listen_fd >= 0)
        close(w->listen_fd);
    if (listening && w->cfg != NULL && w->cfg->tls_fd >= 0)
        close(w->cfg->tls_fd);
    pt_holds_stopping(w->ctl); /* the master hands our place to a spare at once */
    answer_slots(w, status, why, 0);
    shutdown_connections();
}

/* Milliseconds on the monotonic clock. Async-signal-safe. */
static long long
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The calling thread crashed with `sig` (PT_RESCUE_PYEXIT: os._exit()) while running a
 * handler: answers the cleartext HTTP/1 requests raw first, then has a healthy thread answer
 * the rest through the loop (worker_rescue.c) and waits for it, at most RESCUE_WAIT_MS,
 * never returning into the interpreter meanwhile. Returns 1 when a rescue was started (done
 * or not: the caller then finishes the raw way with the listening sockets closed by it), 0
 * when none could be (no job running on this thread, so it may be inside h2o; another
 * crash's rescue under way; no eventfds). Async-signal-safe. */
static int
rescue(int sig, const char *why)
{
    worker *w = &pt_worker_self;
    slot *s = pt_pool_current;
    int expect = 0;
    if (w->crash_wake_fd < 0 || s == NULL || atomic_load(&s->job) == NULL ||
        !atomic_compare_exchange_strong(&w->crashed, &expect, sig))
        return 0;
    atomic_store(&w->crash_slot, s);
    pt_holds_stopping(w->ctl); /* the master hands our place to a spare at once */
    answer_slots(w, 502, why, 1);
    uint64_t one = 1;
    ssize_t rc = write(w->crash_wake_fd, &one, sizeof(one));
    (void)rc;
    long long until = now_ms() + RESCUE_WAIT_MS;
    struct pollfd pfd = {.fd = w->crash_done_fd, .events = POLLIN};
    for (long long left = RESCUE_WAIT_MS; left > 0; left = until - now_ms())
        if (poll(&pfd, 1, (int)left) != -1 || errno != EINTR)
            break;
    return 1;
}

/* Names, for the master's crash breaker, the endpoint whose handler this thread runs (the
 * thread taking the process down). Async-signal-safe. */
static void
blame_current(void)
{
    slot *s = pt_pool_current;
    if (s != NULL && atomic_load(&s->job) != NULL)
        pt_breaker_blame(pt_worker_self.cfg->breaker, pt_worker_self.proc, s->endpoint);
}

/* Is this the worker process itself, rather than a child a handler forked? */
static int
in_worker(void)
{
    return getpid() == pt_worker_self.pid;
}

/* A fatal signal in the worker (a C extension's segfault, abort()): answer 502 on what is
 * running, then die of the same signal so that the master logs it. */
static void
on_fatal_signal(int sig)
{
    if (in_worker()) {
        blame_current();
        int rescued = rescue(sig, "worker crashed");
        answer_inflight(502, "worker crashed", !rescued);
        /* No stdio or time formatting here: neither is async-signal-safe. */
        char line[128];
        out o = {line, 0, sizeof(line), 0};
        put_str(&o, "FATAL [worker ");
        put_uint(&o, (unsigned long)pt_worker_self.index);
        put_str(&o, "] crashed on signal ");
        put_uint(&o, (unsigned long)sig);
        put_str(&o, "\n");
        ssize_t rc = write(2, line, o.n);
        (void)rc;
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

/* os._exit() from a handler: answer in-flight requests first. Returns 1 when this is the
 * worker (its exit status then tells the master why), 0 in a child a handler forked. */
static int
on_python_exit(int status)
{
    (void)status;
    if (!in_worker())
        return 0;
    blame_current();
    int rescued = rescue(PT_RESCUE_PYEXIT, "worker exited");
    answer_inflight(502, "worker exited", !rescued);
    return 1;
}

void
pt_crash_install(void)
{
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_fatal_signal;
    sa.sa_flags = SA_ONSTACK | SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        sigaction(sigs[i], &sa, NULL);
    pt_py_on_exit_hook = on_python_exit;
}

void
pt_crash_exit_stuck(worker *w)
{
    answer_inflight(504, "handler timed out", 1);
    /* Requests still queued for a thread: nobody will run them here; say so. The lock keeps
     * the leader (if any is left) from taking them meanwhile; it is never released. */
    pthread_mutex_lock(&w->ready_mu);
    for (job *j = w->ready_head; j != NULL; j = j->next)
        if (j->fd >= 0)
            pt_crash_reply(j->fd, 503, "worker restarting; retry", j->req.id);
    pthread_mutex_lock(&w->run_mu);
    for (job *j = w->run_head; j != NULL; j = j->next)
        if (j->fd >= 0)
            pt_crash_reply(j->fd, 503, "worker restarting; retry", j->req.id);
    _exit(PT_WORKER_EXIT_STUCK);
}
