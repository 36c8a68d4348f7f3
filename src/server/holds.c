/* holds.c - custody of slow requests' connections between a worker and the master. */
#include "server/holds.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server/crash.h"

enum {
    MSG_LEND = 1,
    MSG_TAKE_BACK = 2,
    MSG_READY = 3,
    MSG_FAILED = 4,
    MSG_PROMOTE = 5,
    MSG_STOPPING = 6,
    MSG_PID = 7,
};

/* Every message has this size; `text` is the request id (lend) or the failure reason. */
typedef struct hold_msg {
    int32_t type;
    int32_t fdnum; /* the connection's fd number in the worker; the index of a promotion */
    char id[PT_REQID_SIZE];
    char reason[PT_HOLDS_REASON_MAX];
} hold_msg;

typedef struct held {
    int fdnum;
    int fd; /* the master's duplicate */
    char id[PT_REQID_SIZE];
} held;

struct pt_holds {
    held *items;
    size_t n, cap;
};

int
pt_holds_sendmsg(int sock, const void *msg, size_t n, int fd)
{
    struct iovec iov = {(void *)msg, n};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr mh;
    memset(&mh, 0, sizeof(mh));
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    if (fd >= 0) {
        memset(&u, 0, sizeof(u));
        mh.msg_control = u.buf;
        mh.msg_controllen = sizeof(u.buf);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
    }
    ssize_t rc;
    do
        rc = sendmsg(sock, &mh, MSG_NOSIGNAL);
    while (rc < 0 && errno == EINTR);
    return rc == (ssize_t)n ? 0 : -1;
}

ssize_t
pt_holds_recvmsg(int sock, void *msg, size_t n, int *fd, int flags)
{
    for (;;) {
        struct iovec iov = {msg, n};
        union {
            char buf[CMSG_SPACE(sizeof(int))];
            struct cmsghdr align;
        } u;
        struct msghdr mh;
        memset(&mh, 0, sizeof(mh));
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        mh.msg_control = u.buf;
        mh.msg_controllen = sizeof(u.buf);
        ssize_t rc = recvmsg(sock, &mh, flags | MSG_CMSG_CLOEXEC);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (rc <= 0)
            return -1;
        *fd = -1;
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        if (c != NULL && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
            memcpy(fd, CMSG_DATA(c), sizeof(int));
        return rc;
    }
}

static int
send_msg(int ctl, const hold_msg *m, int fd)
{
    return pt_holds_sendmsg(ctl, m, sizeof(*m), fd);
}

/* Sends a message of `type` with `num` in fdnum, `text` (borrowed, may be NULL) copied into
 * the id (field 0) or the reason (field 1), and the descriptor fd (-1: none).
 * Async-signal-safe. */
static int
send_simple(int ctl, int type, int num, int fd, const char *text, size_t field)
{
    hold_msg m;
    memset(&m, 0, sizeof(m));
    m.type = type;
    m.fdnum = num;
    char *dst = field == 0 ? m.id : m.reason;
    size_t cap = field == 0 ? sizeof(m.id) : sizeof(m.reason);
    for (size_t i = 0; text != NULL && i + 1 < cap && text[i] != '\0'; i++)
        dst[i] = text[i];
    return send_msg(ctl, &m, fd);
}

int
pt_holds_lend(int ctl, int fd, const char *id)
{
    return send_simple(ctl, MSG_LEND, fd, fd, id, 0);
}

int
pt_holds_take_back(int ctl, int fd)
{
    return send_simple(ctl, MSG_TAKE_BACK, fd, -1, NULL, 0);
}

int
pt_holds_ready(int ctl)
{
    return send_simple(ctl, MSG_READY, 0, -1, NULL, 0);
}

int
pt_holds_stopping(int ctl)
{
    return send_simple(ctl, MSG_STOPPING, 0, -1, NULL, 0);
}

int
pt_holds_failed(int ctl, const char *reason)
{
    return send_simple(ctl, MSG_FAILED, 0, -1, reason, 1);
}

int
pt_holds_pid(int ctl, int pid)
{
    return send_simple(ctl, MSG_PID, pid, -1, NULL, 0);
}

int
pt_holds_promote(int ctl, int index)
{
    return send_simple(ctl, MSG_PROMOTE, index, -1, NULL, 0);
}

/* Reads one message (non-blocking) into *m, a descriptor that came with it into *fd (-1:
 * none). Returns its size (> 0), 0 when none is pending, -1 once the other end is closed. */
static ssize_t
recv_one(int ctl, hold_msg *m, int *fd)
{
    return pt_holds_recvmsg(ctl, m, sizeof(*m), fd, MSG_DONTWAIT);
}

int
pt_holds_read_promote(int ctl)
{
    for (;;) {
        hold_msg m;
        int fd;
        ssize_t rc = recv_one(ctl, &m, &fd);
        if (rc <= 0)
            return (int)rc;
        if (fd >= 0)
            close(fd);
        if (rc == (ssize_t)sizeof(m) && m.type == MSG_PROMOTE && m.fdnum >= 1)
            return m.fdnum;
    }
}

pt_holds *
pt_holds_new(void)
{
    return calloc(1, sizeof(pt_holds));
}

void
pt_holds_free(pt_holds *h)
{
    if (h == NULL)
        return;
    for (size_t i = 0; i < h->n; i++)
        close(h->items[i].fd);
    free(h->items);
    free(h);
}

static void
drop(pt_holds *h, size_t i)
{
    close(h->items[i].fd);
    h->items[i] = h->items[--h->n];
}

int
pt_holds_receive(pt_holds *h, int ctl, pt_holds_status *st)
{
    for (;;) {
        hold_msg m;
        int fd;
        ssize_t rc = recv_one(ctl, &m, &fd);
        if (rc <= 0)
            return (int)rc;
        if (rc != (ssize_t)sizeof(m) || m.type == MSG_READY || m.type == MSG_FAILED ||
            m.type == MSG_STOPPING || m.type == MSG_PID) {
            if (fd >= 0)
                close(fd);
            if (rc == (ssize_t)sizeof(m) && st != NULL && m.type == MSG_READY)
                st->ready = 1;
            if (rc == (ssize_t)sizeof(m) && st != NULL && m.type == MSG_STOPPING)
                st->stopping = 1;
            if (rc == (ssize_t)sizeof(m) && st != NULL && m.type == MSG_PID && m.fdnum > 0)
                st->pid = m.fdnum;
            if (rc == (ssize_t)sizeof(m) && st != NULL && m.type == MSG_FAILED) {
                st->failed = 1;
                memcpy(st->reason, m.reason, sizeof(st->reason));
                st->reason[sizeof(st->reason) - 1] = '\0';
            }
            continue;
        }
        /* A connection number is held at most once: a new lend replaces an old one. */
        for (size_t i = 0; i < h->n; i++) {
            if (h->items[i].fdnum == m.fdnum) {
                drop(h, i);
                break;
            }
        }
        if (m.type != MSG_LEND || fd < 0) {
            if (fd >= 0)
                close(fd);
            continue;
        }
        if (h->n == h->cap) {
            size_t cap = h->cap ? h->cap * 2 : 16;
            held *items = realloc(h->items, cap * sizeof(*items));
            if (items == NULL) {
                close(fd);
                continue;
            }
            h->items = items;
            h->cap = cap;
        }
        held *e = &h->items[h->n++];
        e->fdnum = m.fdnum;
        e->fd = fd;
        memcpy(e->id, m.id, sizeof(e->id));
        e->id[sizeof(e->id) - 1] = '\0';
    }
}

size_t
pt_holds_answer_all(pt_holds *h, const char *why)
{
    size_t answered = 0;
    while (h->n > 0) {
        held *e = &h->items[h->n - 1];
        if (pt_crash_reply(e->fd, 502, why, e->id) == 0)
            answered++;
        shutdown(e->fd, SHUT_RDWR);
        drop(h, h->n - 1);
    }
    return answered;
}
