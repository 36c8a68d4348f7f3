/* template.c - the template process that forks workers with their interpreter already up (see
 * template.h for its invariants). */
#include "server/template.h"

#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"
#include "core/log.h"
#include "py/py.h"
#include "server/holds.h"
#include "server/worker.h"

#define REPARENT_WAIT_S 1.0 /* how long a forked worker waits to become the master's child */

struct pt_template {
    int pid;
    int fd;    /* the master's end of the template's socket */
    int ready; /* it said it is ready */
};

/* What travels on the template's socket: from the template, READY; from the master, FORK with
 * the worker's custody socket attached. */
enum { TPL_READY = 1, TPL_FORK = 2 };

typedef struct tpl_msg {
    int32_t type;
    int32_t proc;
    int32_t index;
    uint32_t flags;
} tpl_msg;

/* Sends m with the descriptor fd (-1: none). 0 or -1. */
static int
send_tpl(int sock, const tpl_msg *m, int fd)
{
    return pt_holds_sendmsg(sock, m, sizeof(*m), fd);
}

/* Reads one whole message into *m and its descriptor into *fd (-1: none); `flags` as
 * recvmsg's. Returns 1, 0 when none is pending (MSG_DONTWAIT), -1 once the other end is
 * closed. */
static int
recv_tpl(int sock, tpl_msg *m, int *fd, int flags)
{
    for (;;) {
        ssize_t rc = pt_holds_recvmsg(sock, m, sizeof(*m), fd, flags);
        if (rc <= 0)
            return (int)rc;
        if (rc == (ssize_t)sizeof(*m))
            return 1;
        if (*fd >= 0)
            close(*fd);
    }
}

static double
mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* In the forked worker: waits (at most REPARENT_WAIT_S) until the intermediate process `mid`
 * has exited and made this process the master's child (invariant 3), then asks for SIGTERM
 * when the master dies. Exits when the master is already gone. */
static void
become_masters_child(pid_t mid, pid_t master)
{
    double until = mono() + REPARENT_WAIT_S;
    struct timespec pause = {0, 20000};
    while (getppid() == mid && mono() < until)
        nanosleep(&pause, NULL);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != master)
        _exit(PT_WORKER_EXIT_FAILED);
}

/* Forks the worker m asks for on custody socket ctl (invariant 2). Template side: returns once
 * the intermediate process has exited. */
static void
fork_worker(const pt_server_config *cfg, int listen_fd, int sock, const tpl_msg *m, int ctl)
{
    pid_t master = getppid();
    fflush(NULL); /* or buffered output would be written twice */
    pt_py_fork_prepare();
    pid_t mid = fork();
    if (mid == 0) {
        pid_t self = getpid();
        pid_t pid = fork();
        if (pid == 0) {
            close(sock);
            pt_py_fork_child();
            become_masters_child(self, master);
            pt_worker_main(cfg, listen_fd, ctl, m->proc, m->index, m->flags | PT_WORKER_FORKED);
        }
        if (pid < 0) {
            char why[128];
            snprintf(why, sizeof(why), "cannot fork a worker from the template: %s",
                     strerror(errno));
            pt_holds_failed(ctl, why);
        } else {
            pt_holds_pid(ctl, (int)pid);
        }
        _exit(0);
    }
    pt_py_fork_parent();
    if (mid < 0) {
        char why[128];
        snprintf(why, sizeof(why), "cannot fork a worker from the template: %s", strerror(errno));
        pt_holds_failed(ctl, why);
        return;
    }
    while (waitpid(mid, NULL, 0) < 0 && errno == EINTR)
        ;
}

/* The template process: starts the interpreter, says it is ready, then forks a worker for each
 * request until the master closes the socket. */
static void __attribute__((noreturn))
template_main(const pt_server_config *cfg, int listen_fd, int sock)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* it holds nothing that could be lost */
    pt_log_init("template");
    signal(SIGPIPE, SIG_IGN);
    mallopt(M_ARENA_MAX, 2);
    if (pt_py_init_template(cfg->datadir) != 0) {
        pt_log_error("the template process cannot start the interpreter");
        _exit(PT_WORKER_EXIT_FAILED);
    }
    tpl_msg ready = {.type = TPL_READY};
    if (send_tpl(sock, &ready, -1) != 0)
        _exit(0);
    for (;;) {
        tpl_msg m;
        int fd = -1;
        if (recv_tpl(sock, &m, &fd, 0) < 0)
            _exit(0); /* the master is gone or replaced us */
        if (fd < 0)
            continue;
        if (m.type == TPL_FORK)
            fork_worker(cfg, listen_fd, sock, &m, fd);
        close(fd);
    }
}

int
pt_template_start(const pt_server_config *cfg, int listen_fd, void (*close_inherited)(void),
                  pt_template **out)
{
    int sv[2];
    pt_template *t = calloc(1, sizeof(*t));
    *out = NULL;
    if (t == NULL) {
        pt_log_error("cannot start the template process: out of memory");
        return PT_ENOMEM;
    }
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
        pt_log_error("cannot start the template process: socketpair: %s", strerror(errno));
        free(t);
        return PT_EIO;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        close_inherited();
        template_main(cfg, listen_fd, sv[1]);
    }
    close(sv[1]);
    if (pid < 0) {
        pt_log_error("cannot start the template process: fork: %s", strerror(errno));
        close(sv[0]);
        free(t);
        return PT_EIO;
    }
    t->pid = (int)pid;
    t->fd = sv[0];
    *out = t;
    return 0;
}

int
pt_template_pid(const pt_template *t)
{
    return t != NULL ? t->pid : 0;
}

int
pt_template_fd(const pt_template *t)
{
    return t != NULL ? t->fd : -1;
}

int
pt_template_poll(pt_template *t)
{
    for (;;) {
        tpl_msg m;
        int fd = -1;
        if (recv_tpl(t->fd, &m, &fd, MSG_DONTWAIT) <= 0)
            return t->ready;
        if (fd >= 0)
            close(fd);
        if (m.type == TPL_READY)
            t->ready = 1;
    }
}

int
pt_template_fork(pt_template *t, int ctl, int proc, int index, unsigned flags)
{
    tpl_msg m = {.type = TPL_FORK, .proc = proc, .index = index, .flags = flags};
    return t != NULL && t->ready ? send_tpl(t->fd, &m, ctl) : -1;
}

void
pt_template_free(pt_template *t)
{
    if (t == NULL)
        return;
    close(t->fd);
    free(t);
}
