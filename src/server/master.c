/* master.c - `portico serve`: binds the listening socket, starts the workers, replaces any
 * that die, and stops them all gracefully on SIGTERM or SIGINT. */
#include "server/server.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"
#include "core/log.h"
#include "server/holds.h"
#include "server/inbox.h"
#include "server/worker.h"

#define MAX_WORKERS 256
#define STOP_GRACE_EXTRA 5.0 /* seconds past the handler timeout before SIGKILL */

void
pt_server_config_init(pt_server_config *cfg, const char *datadir)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    memset(cfg, 0, sizeof(*cfg));
    cfg->datadir = datadir;
    snprintf(cfg->host, sizeof(cfg->host), "127.0.0.1");
    cfg->port = 8080;
    cfg->workers = cores > 0 ? (int)cores : 1;
    cfg->threads = 4;
    cfg->timeout = 30.0;
    cfg->worker_memory = (size_t)512 << 20;
    cfg->max_body = (size_t)10 << 20;
    cfg->max_header = (size_t)16 << 10;
    cfg->webhook_attempts = 5;
    cfg->webhook_backoff = 1.0;
    snprintf(cfg->admin_host, sizeof(cfg->admin_host), "127.0.0.1");
    cfg->admin_port = 8081;
    cfg->session_idle = 1800;
    cfg->admin_fd = -1;
}

/* Binds and listens; returns the fd or -1 (logged). Fills *port when it was 0. */
static int
open_listener(const char *host, int *port)
{
    struct addrinfo hints, *res = NULL;
    char portstr[16];
    int fd = -1, one = 1;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(portstr, sizeof(portstr), "%d", *port);
    int rc = getaddrinfo(host, portstr, &hints, &res);
    if (rc != 0) {
        pt_log_error("cannot resolve listen address %s: %s", host, gai_strerror(rc));
        return -1;
    }
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 4096) != 0) {
        pt_log_error("cannot listen on %s:%d: %s", host, *port, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        *port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                               : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

typedef struct worker_proc {
    pid_t pid; /* 0 while no process runs in this slot */
    double started;
    int crashes;     /* consecutive quick deaths, for back-off */
    double next_try; /* when to start this slot's worker again (pid 0), on the mono() clock */
    double backoff;  /* seconds before the next try after a failed start; 0 after a start */
    int ctl;         /* our end of the custody socket (holds.h), -1 when none */
    pt_holds *holds; /* connections the worker lent us */
} worker_proc;

static worker_proc procs[MAX_WORKERS];
static int nprocs;
static int master_sfd = -1; /* the master's signalfd (workers close their copy) */

static double
mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Starts worker `index` (1-based) into procs[index - 1]. Returns 0, or PT_ENOMEM / PT_EIO
 * (logged) with the slot left empty: the caller tries again later (start_due). */
static int
spawn(const pt_server_config *cfg, int fd, int index)
{
    worker_proc *p = &procs[index - 1];
    int sv[2];
    pt_holds *holds = pt_holds_new();
    if (holds == NULL) {
        pt_log_error("cannot start worker %d: out of memory", index);
        return PT_ENOMEM;
    }
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
        pt_log_error("cannot start worker %d: socketpair: %s", index, strerror(errno));
        pt_holds_free(holds);
        return PT_EIO;
    }
    fflush(NULL); /* or buffered output would be written twice */
    pid_t pid = fork();
    if (pid == 0) {
        /* The other workers' custody sockets are not this worker's business. */
        for (int i = 0; i < nprocs; i++) {
            if (procs[i].ctl >= 0)
                close(procs[i].ctl);
            /* Nor their clients' connections the master holds: a copy kept open here would
             * keep those connections open after the master closes its own. */
            pt_holds_free(procs[i].holds);
        }
        pt_holds_free(holds);
        if (master_sfd >= 0)
            close(master_sfd);
        close(sv[0]);
        pt_worker_main(cfg, fd, sv[1], index);
    }
    close(sv[1]);
    if (pid < 0) {
        pt_log_error("cannot start worker %d: fork: %s", index, strerror(errno));
        close(sv[0]);
        pt_holds_free(holds);
        return PT_EIO;
    }
    p->pid = pid;
    p->started = mono();
    p->ctl = sv[0];
    p->holds = holds;
    return 0;
}

/* Starts the worker of every empty slot whose time has come. A start that fails (fork, memory:
 * a passing shortage, usually) is tried again after a back-off that doubles from 0.1 s up to
 * 5 s, so that no slot is lost for good. */
static void
start_due(const pt_server_config *cfg, int fd)
{
    double now = mono();
    for (int i = 0; i < nprocs; i++) {
        worker_proc *p = &procs[i];
        if (p->pid != 0 || now < p->next_try)
            continue;
        if (spawn(cfg, fd, i + 1) == 0) {
            p->backoff = 0;
            continue;
        }
        p->backoff = p->backoff == 0 ? 0.1 : p->backoff * 2 > 5 ? 5 : p->backoff * 2;
        p->next_try = now + p->backoff;
        pt_log_warn("worker %d: trying again in %g s", i + 1, p->backoff);
    }
}

/* Answers the requests a dead worker lent us, and forgets its custody socket. */
static void
answer_lent(worker_proc *p, const char *why)
{
    if (p->ctl < 0)
        return;
    pt_holds_receive(p->holds, p->ctl);
    size_t n = pt_holds_answer_all(p->holds, why);
    if (n > 0)
        pt_log_warn("answered %zu in-flight request%s of the dead worker with 502", n,
                    n == 1 ? "" : "s");
    pt_holds_free(p->holds);
    p->holds = NULL;
    close(p->ctl);
    p->ctl = -1;
}

/* Logs why a worker went away, in words. */
static void
log_exit(int index, pid_t pid, int status)
{
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        pt_log_error("worker %d (pid %d) killed by signal %d (%s)%s; replacing it", index, (int)pid,
                     sig, strsignal(sig), WCOREDUMP(status) ? ", core dumped" : "");
        return;
    }
    int code = WEXITSTATUS(status);
    switch (code) {
    case PT_WORKER_EXIT_MEMORY:
        pt_log_error("worker %d (pid %d) exceeded its memory limit; replacing it", index, (int)pid);
        break;
    case PT_WORKER_EXIT_STUCK:
        pt_log_error("worker %d (pid %d) had every thread stuck in a handler; replacing it", index,
                     (int)pid);
        break;
    case PT_WORKER_EXIT_PYEXIT:
        pt_log_error("worker %d (pid %d) exited because a handler called os._exit(); "
                     "replacing it",
                     index, (int)pid);
        break;
    default:
        pt_log_error("worker %d (pid %d) exited with status %d; replacing it", index, (int)pid,
                     code);
    }
}

/* The master's loop state. */
typedef struct master {
    const pt_server_config *cfg; /* with the shared tables mapped */
    int listen_fd;               /* closed (-1) once stopping */
    int sfd;                     /* signalfd: SIGTERM, SIGINT, SIGCHLD, SIGHUP */
    int stopping;
    double deadline; /* when stopping: workers still alive after this are killed */
} master;

/* A copy of cfg with the tables the workers share (rate limits count requests of all workers
 * together: auth/ratelimit.h; metrics) mapped before they are forked. Without a table that
 * feature is off (logged). Returns NULL when out of memory; lives as long as the master. */
static pt_server_config *
shared_config(const pt_server_config *cfg)
{
    pt_server_config *run = malloc(sizeof(*run));
    if (run == NULL)
        return NULL;
    *run = *cfg;
    if ((run->ratelimit = pt_ratelimit_new(PT_RATELIMIT_SLOTS)) == NULL)
        pt_log_warn("cannot map the rate limit table: %s; rate limits are off", strerror(errno));
    if ((run->metrics = pt_metrics_create(cfg->workers)) == NULL)
        pt_log_warn("cannot map the metrics table: %s; /_portico/metrics is off", strerror(errno));
    return run;
}

/* Blocks the signals the master handles and returns a signalfd for them, or -1 (logged). */
static int
signals_open(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    int sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sfd < 0)
        pt_log_error("signalfd: %s", strerror(errno));
    return sfd;
}

/* SIGTERM or SIGINT: stop taking connections and ask every worker to finish. */
static void
on_signals(master *m)
{
    struct signalfd_siginfo si;
    while (read(m->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if ((si.ssi_signo != SIGTERM && si.ssi_signo != SIGINT) || m->stopping)
            continue;
        pt_log_info("stopping: finishing in-flight requests");
        m->stopping = 1;
        m->deadline = mono() + m->cfg->timeout + STOP_GRACE_EXTRA;
        close(m->listen_fd);
        m->listen_fd = -1;
        if (m->cfg->admin_fd >= 0)
            close(m->cfg->admin_fd);
        for (int i = 0; i < nprocs; i++)
            if (procs[i].pid > 0)
                kill(procs[i].pid, SIGTERM);
    }
}

/* Reaps every worker that went away: answers what it lent us and, unless stopping, logs why
 * and schedules its replacement (start_due). */
static void
reap(master *m)
{
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0)
            return;
        for (int i = 0; i < nprocs; i++) {
            worker_proc *p = &procs[i];
            if (p->pid != pid)
                continue;
            p->pid = 0;
            if (!m->stopping) {
                log_exit(i + 1, pid, status);
                pt_metrics_restart(m->cfg->metrics, i + 1);
            }
            answer_lent(p,
                        m->stopping ? "server stopped before the handler finished" : "worker died");
            if (m->stopping)
                break;
            double lived = mono() - p->started;
            p->crashes = lived < 1.0 ? p->crashes + 1 : 0;
            /* Crash loop: wait a little before the next try (the loop goes on meanwhile,
             * other workers' custody included). */
            p->next_try = p->crashes > 5 ? mono() + 0.5 : 0;
        }
    }
}

/* While stopping: returns 1 once every worker is gone; kills those left at the deadline. */
static int
all_stopped(master *m)
{
    int alive = 0;
    for (int i = 0; i < nprocs; i++)
        alive += procs[i].pid > 0;
    if (alive == 0)
        return 1;
    if (mono() > m->deadline) {
        pt_log_warn("%d workers did not stop in time; killing them", alive);
        for (int i = 0; i < nprocs; i++)
            if (procs[i].pid > 0)
                kill(procs[i].pid, SIGKILL);
        m->deadline = mono() + 5;
    }
    return 0;
}

/* Prints the address the server listens on (stdout: scripts and tests read it). */
static void
print_listening(const char *what, const char *host, int port)
{
    char hostbuf[300];
    if (strchr(host, ':') != NULL)
        snprintf(hostbuf, sizeof(hostbuf), "[%s]", host);
    else
        snprintf(hostbuf, sizeof(hostbuf), "%s", host);
    printf("%slistening on http://%s:%d\n", what, hostbuf, port);
    fflush(stdout);
}

int
pt_server_run(const pt_server_config *cfg)
{
    master m = {.listen_fd = -1, .sfd = -1};
    int port = cfg->port;

    pt_log_init("master");
    nprocs = cfg->workers;
    if (nprocs < 1 || nprocs > MAX_WORKERS) {
        pt_log_error("--workers must be between 1 and %d", MAX_WORKERS);
        return 2;
    }
    if ((m.listen_fd = open_listener(cfg->host, &port)) < 0)
        return 1;
    /* The admin API's own socket (docs/ADMIN.md); the same workers accept on it. */
    int admin_fd = -1, admin_port = cfg->admin_port;
    if (admin_port >= 0 && (admin_fd = open_listener(cfg->admin_host, &admin_port)) < 0)
        return 1;
    char err[512];
    if (pt_inbox_prepare(cfg->datadir, err, sizeof(err)) != 0)
        pt_log_error("webhooks will be unavailable: %s", err);
    /* Static: it lives as long as the master (and stays reachable for leak checkers). */
    static pt_server_config *run;
    if ((run = shared_config(cfg)) == NULL) {
        pt_log_error("out of memory");
        return 1;
    }
    run->admin_fd = admin_fd;
    run->started = (int64_t)time(NULL);
    m.cfg = run;
    if ((m.sfd = master_sfd = signals_open()) < 0)
        return 1;

    memset(procs, 0, sizeof(procs));
    for (int i = 0; i < nprocs; i++)
        procs[i].ctl = -1;
    start_due(m.cfg, m.listen_fd);
    print_listening("", cfg->host, port);
    if (admin_fd >= 0)
        print_listening("admin API ", cfg->admin_host, admin_port);
    pt_log_info("%d workers, %d threads each, timeout %gs, worker memory %zu MiB", nprocs,
                cfg->threads, cfg->timeout, cfg->worker_memory >> 20);

    struct pollfd pfds[MAX_WORKERS + 1];
    for (;;) {
        int np = 0;
        pfds[np++] = (struct pollfd){.fd = m.sfd, .events = POLLIN};
        for (int i = 0; i < nprocs; i++)
            pfds[np++] = (struct pollfd){.fd = procs[i].ctl, .events = POLLIN};
        if (poll(pfds, (nfds_t)np, 100) < 0 && errno != EINTR) {
            pt_log_error("poll: %s", strerror(errno));
            return 1;
        }
        for (int i = 0; i < nprocs; i++)
            if (procs[i].ctl >= 0 && (pfds[i + 1].revents & POLLIN))
                pt_holds_receive(procs[i].holds, procs[i].ctl);
        on_signals(&m);
        reap(&m);
        if (!m.stopping)
            start_due(m.cfg, m.listen_fd);
        else if (all_stopped(&m)) {
            pt_log_info("stopped");
            return 0;
        }
    }
}
