/* master.c - `portico serve`: binds the listening socket, starts the workers and keeps spares
 * warm, hands a dead worker's place to a spare at once, counts handler crashes against their
 * endpoint (breaker.h), gives up when workers cannot start, stops everything gracefully on
 * SIGTERM or SIGINT, and reloads the TLS certificate on SIGHUP (tls.h). */
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
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"
#include "core/log.h"
#include "server/breaker.h"
#include "server/holds.h"
#include "server/inbox.h"
#include "server/template.h"
#include "server/worker.h"

#define MAX_WORKERS 256
#define SPARES PT_BREAKER_DEATHS /* warm workers beyond --workers (docs/ARCHITECTURE.md) */
#define MAX_PROCS (MAX_WORKERS + SPARES)
#define STOP_GRACE_EXTRA 5.0 /* seconds past the handler timeout before SIGKILL */
#define FORK_WAIT 2.0        /* seconds a fork through the template may take to report a pid */
#define TEMPLATE_WAIT 5.0    /* seconds spares wait for a starting template (then start alone) */

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
    cfg->cache_size = PT_CACHE_SIZE_DEFAULT;
    cfg->max_header = (size_t)16 << 10;
    cfg->webhook_attempts = 5;
    cfg->webhook_backoff = 1.0;
    snprintf(cfg->admin_host, sizeof(cfg->admin_host), "127.0.0.1");
    cfg->admin_port = 8081;
    cfg->session_idle = 1800;
    cfg->admin_fd = -1;
    snprintf(cfg->tls_host, sizeof(cfg->tls_host), "127.0.0.1");
    cfg->tls_port = -1;
    cfg->tls_fd = -1;
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

/* One process slot: an active worker (index >= 1) or a warm spare (index 0). Slots never
 * move: a worker's slot number is its row in the breaker's blame table (breaker.h). */
typedef struct worker_proc {
    pid_t pid;       /* 0 while no process runs in this slot; -1 while the template forks it and its
                      * pid has not arrived (template.h) */
    int index;       /* the worker number it serves as (1..--workers), 0 for a spare */
    int served;      /* the worker number it served as last (log lines), 0: never */
    int retiring;    /* it is going away and a spare took its place: never promoted */
    int ready;       /* it said it is ready (holds.h) */
    double started;  /* on the mono() clock */
    double next_try; /* when to start this slot's worker again (pid 0), on the mono() clock */
    double backoff;  /* seconds before the next try after a failed start; 0 after a start */
    int ctl;         /* our end of the custody socket (holds.h), -1 when none */
    pt_holds *holds; /* connections the worker lent us */
    pt_holds_status status; /* what it told us: ready, or why it could not start */
} worker_proc;

static worker_proc procs[MAX_PROCS];
static int nprocs;          /* --workers + SPARES */
static int master_sfd = -1; /* the master's signalfd (workers close their copy) */

/* The template process (template.h): NULL while none runs. */
static pt_template *tpl;
static double tpl_started, tpl_next_try, tpl_backoff; /* on the mono() clock; seconds */

static double
mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* "worker 3" or "a spare worker", for log lines. Returns buf. */
static const char *
name_of(const worker_proc *p, char *buf, size_t n)
{
    if (p->index > 0 || p->served > 0)
        snprintf(buf, n, "worker %d", p->index > 0 ? p->index : p->served);
    else
        snprintf(buf, n, "a spare worker");
    return buf;
}

/* In a child of the master (a worker it forks, the template): closes what is the master's
 * alone. The other workers' custody sockets are not this process's business, nor their
 * clients' connections the master holds: a copy kept open here would keep those connections
 * open after the master closes its own. */
static void
close_inherited(void)
{
    for (int k = 0; k < nprocs; k++) {
        if (procs[k].ctl >= 0)
            close(procs[k].ctl);
        pt_holds_free(procs[k].holds);
    }
    if (master_sfd >= 0)
        close(master_sfd);
    if (tpl != NULL)
        close(pt_template_fd(tpl));
}

/* Starts the process of slot `i` (as its index says: active or spare): forked by the template
 * when it is ready, by the master otherwise. Returns 0, or
 * PT_ENOMEM / PT_EIO (logged) with the slot left empty: the caller tries again later
 * (start_due). */
static int
spawn(const pt_server_config *cfg, int fd, int i, int background)
{
    worker_proc *p = &procs[i];
    int sv[2];
    char who[32];
    pt_holds *holds = pt_holds_new();
    if (holds == NULL) {
        pt_log_error("cannot start %s: out of memory", name_of(p, who, sizeof(who)));
        return PT_ENOMEM;
    }
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
        pt_log_error("cannot start %s: socketpair: %s", name_of(p, who, sizeof(who)),
                     strerror(errno));
        pt_holds_free(holds);
        return PT_EIO;
    }
    unsigned flags = background ? PT_WORKER_BACKGROUND : 0;
    /* A spare comes from the template when it is ready: its pid arrives on the custody socket
     * (heard). Active workers are the master's own children: one that the template forked
     * would not notice the master giving up on it (a spare does: no promotion can come). */
    pid_t pid = -1;
    if (p->index > 0 || pt_template_fork(tpl, sv[1], i, p->index, flags) != 0) {
        fflush(NULL); /* or buffered output would be written twice */
        pid = fork();
        if (pid == 0) {
            pt_holds_free(holds);
            close(sv[0]);
            close_inherited();
            pt_worker_main(cfg, fd, sv[1], i, p->index, flags);
        }
        if (pid < 0)
            pid = 0; /* fork failed: below */
    }
    close(sv[1]);
    if (pid == 0) {
        pt_log_error("cannot start %s: fork: %s", name_of(p, who, sizeof(who)), strerror(errno));
        close(sv[0]);
        pt_holds_free(holds);
        return PT_EIO;
    }
    p->pid = pid;
    p->ready = 0;
    p->retiring = 0;
    p->served = p->index;
    memset(&p->status, 0, sizeof(p->status));
    p->started = mono();
    p->ctl = sv[0];
    p->holds = holds;
    return 0;
}

/* Starts the process of every empty slot whose time has come. A start that fails (fork,
 * memory: a passing shortage, usually; or the worker itself could not start) is tried again
 * after a back-off that doubles from 0.1 s up to 5 s, so that no slot is lost for good. */
static void
start_due(const pt_server_config *cfg, int fd, int background)
{
    double now = mono();
    /* Spares start one at a time: each costs its opens and threads (and an interpreter start
     * without the template), which compete for the CPU with the workers serving right after a
     * crash. While the template is starting, spares wait for it (a fork is far cheaper). */
    int spare_starting =
        tpl != NULL && pt_template_poll(tpl) == 0 && now < tpl_started + TEMPLATE_WAIT;
    for (int i = 0; i < nprocs; i++)
        spare_starting |= procs[i].pid != 0 && procs[i].index == 0 && !procs[i].ready;
    for (int i = 0; i < nprocs; i++) {
        worker_proc *p = &procs[i];
        if (p->pid != 0 || now < p->next_try || (p->index == 0 && spare_starting))
            continue;
        if (spawn(cfg, fd, i, background && p->index == 0) == 0) {
            spare_starting |= p->index == 0;
            continue;
        }
        p->backoff = p->backoff == 0 ? 0.1 : p->backoff * 2 > 5 ? 5 : p->backoff * 2;
        p->next_try = now + p->backoff;
        pt_log_warn("slot %d: trying again in %g s", i + 1, p->backoff);
    }
}

/* Starts the template process when none runs and its time has come (template.h). */
static void
template_due(const pt_server_config *cfg, int fd)
{
    double now = mono();
    if (tpl != NULL || now < tpl_next_try)
        return;
    if (pt_template_start(cfg, fd, close_inherited, &tpl) != 0) {
        tpl_backoff = tpl_backoff == 0 ? 1 : tpl_backoff * 2 > 60 ? 60 : tpl_backoff * 2;
        tpl_next_try = now + tpl_backoff;
        return;
    }
    tpl_started = now;
}

/* Slot p was being forked by the template and its pid did not arrive (the fork failed, or
 * the template died): the slot starts again after its back-off. A spare forked meanwhile stops
 * by itself once its custody socket closes (nobody can promote it). */
static void
forget_pending(worker_proc *p, const char *why)
{
    char who[32];
    pt_log_warn("%s: %s; starting it again", name_of(p, who, sizeof(who)), why);
    pt_holds_free(p->holds);
    p->holds = NULL;
    close(p->ctl);
    p->ctl = -1;
    p->pid = 0;
    p->backoff = p->backoff == 0 ? 0.1 : p->backoff * 2 > 5 ? 5 : p->backoff * 2;
    p->next_try = mono() + p->backoff;
}

/* Reads what slot i's process said (holds.h), and takes the pid of a process the template
 * forked from it. */
static void
heard(int i, int stopping)
{
    worker_proc *p = &procs[i];
    if (p->ctl < 0)
        return;
    pt_holds_receive(p->holds, p->ctl, &p->status);
    if (p->pid != -1)
        return;
    if (p->status.pid > 0) {
        p->pid = p->status.pid;
        if (stopping)
            kill(p->pid, SIGKILL); /* a spare: it holds nothing */
    } else if (p->status.failed) {
        forget_pending(p, p->status.reason);
    } else if (mono() > p->started + FORK_WAIT) {
        forget_pending(p, "the template did not fork it in time");
    }
}

/* The template process went away (reaped): workers start the old way until a new one is
 * ready, which starts at once if this one had served, else after a back-off. */
static void
on_template_death(int status, int stopping)
{
    int served = pt_template_poll(tpl);
    if (!stopping && WIFSIGNALED(status))
        pt_log_warn("the template process (pid %d) was killed by signal %d (%s); spares start "
                    "without it until a new one is up",
                    pt_template_pid(tpl), WTERMSIG(status), strsignal(WTERMSIG(status)));
    else if (!stopping)
        pt_log_warn("the template process (pid %d) exited with status %d; spares start without "
                    "it until a new one is up",
                    pt_template_pid(tpl), WEXITSTATUS(status));
    pt_template_free(tpl);
    tpl = NULL;
    tpl_backoff = served ? 0 : tpl_backoff == 0 ? 1 : tpl_backoff * 2 > 60 ? 60 : tpl_backoff * 2;
    tpl_next_try = mono() + tpl_backoff;
    for (int i = 0; i < nprocs; i++)
        if (procs[i].pid == -1) {
            heard(i, stopping);
            if (procs[i].pid == -1)
                forget_pending(&procs[i], "the template process went away while forking it");
        }
}

/* Answers the requests a dead worker lent us, and forgets its custody socket. */
static void
answer_lent(worker_proc *p, const char *why)
{
    if (p->ctl < 0)
        return;
    pt_holds_receive(p->holds, p->ctl, &p->status);
    size_t n = pt_holds_answer_all(p->holds, why);
    if (n > 0)
        pt_log_warn("answered %zu in-flight request%s of the dead worker with 502", n,
                    n == 1 ? "" : "s");
    pt_holds_free(p->holds);
    p->holds = NULL;
    close(p->ctl);
    p->ctl = -1;
}

/* Logs why a worker went away, in words; `blamed` names the endpoint whose handler it was
 * running, or is "". */
static void
log_exit(const worker_proc *p, pid_t pid, int status, const char *blamed)
{
    char who[32], in[PT_BREAKER_NAME_MAX + 32] = "";
    name_of(p, who, sizeof(who));
    if (blamed[0] != '\0')
        snprintf(in, sizeof(in), " in endpoint %s", blamed);
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        pt_log_error("%s (pid %d) killed by signal %d (%s)%s%s; replacing it", who, (int)pid, sig,
                     strsignal(sig), WCOREDUMP(status) ? ", core dumped" : "", in);
        return;
    }
    int code = WEXITSTATUS(status);
    switch (code) {
    case PT_WORKER_EXIT_MEMORY:
        pt_log_error("%s (pid %d) exceeded its memory limit%s; replacing it", who, (int)pid, in);
        break;
    case PT_WORKER_EXIT_STUCK:
        pt_log_error("%s (pid %d) had every thread stuck in a handler; replacing it", who,
                     (int)pid);
        break;
    case PT_WORKER_EXIT_PYEXIT:
        pt_log_error("%s (pid %d) exited because a handler called os._exit()%s; replacing it", who,
                     (int)pid, in);
        break;
    case PT_WORKER_EXIT_FAILED:
        pt_log_error("%s (pid %d) could not start: %s", who, (int)pid,
                     p->status.failed ? p->status.reason : "(no reason given)");
        break;
    default:
        pt_log_error("%s (pid %d) exited with status %d; replacing it", who, (int)pid, code);
    }
}

/* Why a worker exited, for the metrics. */
static pt_metrics_restart_cause
restart_cause(int status)
{
    if (WIFSIGNALED(status))
        return PT_RESTART_CRASH;
    switch (WEXITSTATUS(status)) {
    case PT_WORKER_EXIT_MEMORY:
        return PT_RESTART_MEMORY;
    case PT_WORKER_EXIT_STUCK:
        return PT_RESTART_STUCK;
    case PT_WORKER_EXIT_PYEXIT:
        return PT_RESTART_OSEXIT;
    default:
        return PT_RESTART_EXIT;
    }
}

/* The master's loop state. */
typedef struct master {
    const pt_server_config *cfg; /* with the shared tables mapped */
    int listen_fd;               /* closed (-1) once stopping */
    int sfd;                     /* signalfd: SIGTERM, SIGINT, SIGCHLD, SIGHUP */
    int starting;                /* until every active worker said it is ready */
    int stopping;
    int failed;      /* a worker could not start while starting: the server gives up */
    double deadline; /* when stopping: workers still alive after this are killed */
    int killed;      /* the deadline passed and SIGKILL went out */
    int termed;      /* when stopping: the workers were sent SIGTERM */
} master;

/* A copy of cfg with the tables the workers share (rate limits count requests of all workers
 * together: auth/ratelimit.h; metrics; the crash breaker; bulkheads and the response cache)
 * mapped before they are forked.
 * Without a table that feature is off (logged). Returns NULL when out of memory; lives as long
 * as the master. */
static pt_server_config *
shared_config(const pt_server_config *cfg)
{
    pt_server_config *run = malloc(sizeof(*run));
    if (run == NULL)
        return NULL;
    *run = *cfg;
    if ((run->ratelimit = pt_ratelimit_new(PT_RATELIMIT_SLOTS)) == NULL)
        pt_log_warn("cannot map the rate limit table: %s; rate limits are off", strerror(errno));
    if ((run->metrics = pt_metrics_create(cfg->workers, cfg->workers + SPARES)) == NULL)
        pt_log_warn("cannot map the metrics table: %s; /_portico/metrics is off", strerror(errno));
    if ((run->breaker = pt_breaker_create(cfg->workers + SPARES)) == NULL)
        pt_log_warn("cannot map the crash breaker table: %s; the breaker is off", strerror(errno));
    if ((run->bulkhead = pt_bulkhead_create(cfg->workers + SPARES)) == NULL)
        pt_log_warn("cannot map the bulkhead table: %s; --max-concurrency is off", strerror(errno));
    if ((run->cache = pt_cache_create(cfg->cache_size)) == NULL)
        pt_log_warn("cannot map the response cache: %s; --cache is off", strerror(errno));
    if ((run->nodesync = pt_nodesync_create()) == NULL)
        pt_log_warn("cannot map the store status: %s; changes made through other nodes are not "
                    "seen and /_portico/health does not report the store",
                    strerror(errno));
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

/* Stops taking connections and asks every worker to finish; workers that serve nothing yet
 * (spares, workers still starting) and the template are killed at once: nothing of theirs can
 * be lost. The workers are told to stop (term_workers) only once those are gone: each of
 * them holds a copy of the listening sockets, and a socket takes connections into its queue
 * until its last copy closes, which resets them. The last worker to stop accepts what is
 * queued before it closes the last copy (pt_worker_begin_stop), so no connection the kernel
 * completed is reset. */
static void
begin_stop(master *m, double grace)
{
    if (m->stopping)
        return;
    m->stopping = 1;
    m->deadline = mono() + grace;
    if (m->listen_fd >= 0)
        close(m->listen_fd);
    m->listen_fd = -1;
    if (m->cfg->tls_fd >= 0)
        close(m->cfg->tls_fd);
    if (m->cfg->admin_fd >= 0)
        close(m->cfg->admin_fd);
    for (int i = 0; i < nprocs; i++)
        if (procs[i].pid > 0 && !(procs[i].index > 0 && procs[i].ready))
            kill(procs[i].pid, SIGKILL);
    if (tpl != NULL)
        kill(pt_template_pid(tpl), SIGKILL);
}

/* While stopping: sends SIGTERM to the serving workers once every other process holding the
 * listening sockets is gone (begin_stop). */
static void
term_workers(master *m)
{
    if (m->termed || tpl != NULL)
        return;
    for (int i = 0; i < nprocs; i++)
        if (procs[i].pid != 0 && !(procs[i].pid > 0 && procs[i].index > 0 && procs[i].ready))
            return;
    m->termed = 1;
    for (int i = 0; i < nprocs; i++)
        if (procs[i].pid > 0)
            kill(procs[i].pid, SIGTERM);
}

/* SIGHUP: reads the certificate and key again; when they are good, every worker builds its
 * TLS context anew (new handshakes get the new certificate, connections made stay as they
 * are), else the previous pair stays in use (logged). */
static void
reload_tls(master *m)
{
    char err[512];
    if (m->cfg->tls == NULL || m->stopping)
        return;
    if (pt_tls_reload(m->cfg->tls, err, sizeof(err)) != 0) {
        pt_log_error("SIGHUP: keeping the previous TLS certificate: %s", err);
        return;
    }
    pt_log_info("SIGHUP: TLS certificate reloaded from %s", pt_tls_cert_path(m->cfg->tls));
    for (int i = 0; i < nprocs; i++)
        if (procs[i].pid > 0)
            kill(procs[i].pid, SIGHUP);
}

/* SIGTERM or SIGINT: stop, letting in-flight requests finish. SIGHUP: reload_tls. */
static void
on_signals(master *m)
{
    struct signalfd_siginfo si;
    while (read(m->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGHUP)
            reload_tls(m);
        if ((si.ssi_signo != SIGTERM && si.ssi_signo != SIGINT) || m->stopping)
            continue;
        pt_log_info("stopping: finishing in-flight requests");
        begin_stop(m, m->cfg->timeout + STOP_GRACE_EXTRA);
    }
}

/* A spare to take over worker number `index`: a ready one if any, else one still starting
 * (it serves once ready). Returns its slot or -1. */
static int
promote_spare(int index)
{
    int best = -1;
    for (int i = 0; i < nprocs; i++) {
        worker_proc *p = &procs[i];
        if (p->pid != 0 && p->index == 0 && !p->retiring && !p->status.failed &&
            (best < 0 || p->ready))
            best = i;
    }
    if (best < 0 || pt_holds_promote(procs[best].ctl, index) != 0)
        return -1;
    procs[best].index = index;
    procs[best].served = index;
    return best;
}

/* Gives the place of active worker p to a spare, if one is there: p's slot then starts a new
 * spare (once its process is gone). */
static void
hand_over(worker_proc *p)
{
    if (p->index == 0)
        return;
    int k = promote_spare(p->index);
    if (k < 0)
        return;
    pt_log_info("a spare worker (pid %d) took over as worker %d", (int)procs[k].pid, p->index);
    p->index = 0;
}

/* Workers that said they are going away (MemoryError, a crash in progress) hand their place
 * over now: the spare takes connections while they finish or die. */
static void
check_stopping(master *m)
{
    for (int i = 0; i < nprocs && !m->stopping && !m->starting; i++) {
        worker_proc *p = &procs[i];
        if (p->pid > 0 && p->index > 0 && p->status.stopping) {
            hand_over(p);
            p->retiring = p->index == 0;
        }
    }
}

/* A worker whose handler killed it: count the death against that endpoint (breaker.h). */
static void
blame(master *m, int i, char *blamed)
{
    blamed[0] = '\0';
    if (!pt_breaker_take_blame(m->cfg->breaker, i, blamed))
        return;
    double cooldown = pt_breaker_record(m->cfg->breaker, blamed, mono());
    if (cooldown > 0)
        pt_log_error("crash breaker: endpoint %s killed workers %d times within %g s; answering "
                     "it 503 for %g s",
                     blamed, PT_BREAKER_DEATHS, PT_BREAKER_WINDOW, cooldown);
}

/* Slot i's process went away: answer what it lent us and, unless stopping, log why, hand its
 * work to a spare and schedule a new process for the slot (start_due). */
static void
on_death(master *m, int i, pid_t pid, int status)
{
    worker_proc *p = &procs[i];
    char blamed[PT_BREAKER_NAME_MAX];
    p->pid = 0;
    pt_bulkhead_forget(m->cfg->bulkhead, i); /* the places its requests held */
    answer_lent(p, m->stopping ? "server stopped before the handler finished" : "worker died");
    if (m->stopping)
        return;
    blame(m, i, blamed);
    int never_ready = !p->ready;
    p->ready = 0;
    if (never_ready && WIFEXITED(status) && WEXITSTATUS(status) == PT_WORKER_EXIT_FAILED &&
        m->starting) {
        /* The server cannot start: say why once, and stop. */
        pt_log_error("cannot start: %s",
                     p->status.failed ? p->status.reason : "a worker exited at start");
        m->failed = 1;
        begin_stop(m, 2);
        return;
    }
    log_exit(p, pid, status, blamed);
    /* The process took its requests with it: its row of in-flight gauges starts again. */
    pt_metrics_endpoint_reset_in_flight(m->cfg->metrics, i);
    if (p->served > 0 && (p->index > 0 || p->retiring))
        pt_metrics_restart(m->cfg->metrics, p->served, restart_cause(status));
    p->retiring = 0;
    hand_over(p);
    /* A process that dies before it is ready is retried with a back-off (start_due); one that
     * served is replaced at once. */
    if (never_ready) {
        p->backoff = p->backoff == 0 ? 0.1 : p->backoff * 2 > 5 ? 5 : p->backoff * 2;
        p->next_try = mono() + p->backoff;
    } else {
        p->backoff = 0;
        p->next_try = 0;
    }
}

/* Reaps every process that went away. */
static void
reap(master *m)
{
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0)
            return;
        if (pid == pt_template_pid(tpl)) {
            on_template_death(status, m->stopping);
            continue;
        }
        if (pt_nodesync_reaped(m->cfg->nodesync, pid, status))
            continue;
        int found = -1;
        for (int i = 0; i < nprocs && found < 0; i++)
            if (procs[i].pid == pid)
                found = i;
        /* A worker the template forked: its pid was sent before it could die (template.h,
         * invariant 2), so it is on its custody socket if not heard yet. */
        for (int i = 0; i < nprocs && found < 0; i++)
            if (procs[i].pid == -1) {
                heard(i, m->stopping);
                if (procs[i].pid == pid)
                    found = i;
            }
        /* Otherwise an orphan of a handler's child, re-parented to us (a subreaper). */
        if (found >= 0)
            on_death(m, found, pid, status);
    }
}

/* While stopping: returns 1 once every worker is gone; kills those left at the deadline and,
 * should even that not end them, gives up on them 2 s later. */
static int
all_stopped(master *m)
{
    int alive = 0;
    for (int i = 0; i < nprocs; i++) {
        if (procs[i].pid == -1)
            heard(i, 1);
        alive += procs[i].pid != 0;
    }
    if (alive == 0)
        return 1;
    if (mono() <= m->deadline)
        return 0;
    if (m->killed) {
        pt_log_error("%d workers did not die after SIGKILL; exiting without them", alive);
        return 1;
    }
    if (!m->failed)
        pt_log_warn("%d workers did not stop in time; killing them", alive);
    for (int i = 0; i < nprocs; i++)
        if (procs[i].pid > 0)
            kill(procs[i].pid, SIGKILL);
    m->killed = 1;
    m->deadline = mono() + 2;
    return 0;
}

/* Notes the workers that said they are ready; once every active one is, the server is up. */
static void
check_ready(master *m)
{
    int up = 0;
    for (int i = 0; i < nprocs; i++) {
        worker_proc *p = &procs[i];
        if (p->pid != 0 && p->status.ready && !p->ready) {
            p->ready = 1;
            p->backoff = 0;
        }
        up += p->index > 0 && p->pid != 0 && p->ready;
    }
    if (m->starting && up == m->cfg->workers)
        m->starting = 0;
}

/* Writes "http://host:port" (IPv6 hosts in brackets) into out. */
static void
format_url(char *out, size_t outsz, int tls, const char *host, int port)
{
    const char *open = strchr(host, ':') != NULL ? "[" : "", *close = open[0] ? "]" : "";
    snprintf(out, outsz, "%s://%s%s%s:%d", tls ? "https" : "http", open, host, close, port);
}

/* Prints the address the server listens on (stdout: scripts and tests read it). */
static void
print_listening(const char *what, int tls, const char *host, int port)
{
    char url[320];
    format_url(url, sizeof(url), tls, host, port);
    printf("%slistening on %s\n", what, url);
    fflush(stdout);
}

/* Starts the store sync process (nodesync.h) with what this node listens on: the public listener,
 * the TLS one and the admin API ("admin=" before its URL). Failure costs the sync only. */
static void
start_nodesync(const pt_server_config *cfg, int port, int tls_port, int admin_port)
{
    char addrs[1024] = "", url[320];
    size_t n = 0;
    if (port >= 0) {
        format_url(url, sizeof(url), 0, cfg->host, port);
        n += (size_t)snprintf(addrs + n, sizeof(addrs) - n, "%s", url);
    }
    if (tls_port >= 0 && n < sizeof(addrs)) {
        format_url(url, sizeof(url), 1, cfg->tls_host, tls_port);
        n += (size_t)snprintf(addrs + n, sizeof(addrs) - n, "%s%s", n ? " " : "", url);
    }
    if (admin_port >= 0 && n < sizeof(addrs)) {
        format_url(url, sizeof(url), cfg->admin_tls, cfg->admin_host, admin_port);
        snprintf(addrs + n, sizeof(addrs) - n, "%sadmin=%s", n ? " " : "", url);
    }
    if (cfg->nodesync != NULL)
        pt_nodesync_start(cfg->nodesync, cfg->datadir, addrs, cfg->started);
}

int
pt_server_run(const pt_server_config *cfg)
{
    master m = {.listen_fd = -1, .sfd = -1, .starting = 1};
    int port = cfg->port;

    pt_log_init("master");
    if (cfg->workers < 1 || cfg->workers > MAX_WORKERS) {
        pt_log_error("--workers must be between 1 and %d", MAX_WORKERS);
        return 2;
    }
    nprocs = cfg->workers + SPARES;
    if (port >= 0 && (m.listen_fd = open_listener(cfg->host, &port)) < 0)
        return 1;
    /* The TLS listener (--listen-tls): the same workers accept on it too (worker_tls.c). */
    int tls_fd = -1, tls_port = cfg->tls_port;
    if (tls_port >= 0 && (tls_fd = open_listener(cfg->tls_host, &tls_port)) < 0)
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
    run->tls_fd = tls_fd;
    run->started = (int64_t)time(NULL);
    m.cfg = run;
    if ((m.sfd = master_sfd = signals_open()) < 0)
        return 1;
    /* Workers the template forks are re-parented to the master (template.h, invariant 2). */
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
        pt_log_warn("cannot become a child subreaper: %s", strerror(errno));

    memset(procs, 0, sizeof(procs));
    for (int i = 0; i < nprocs; i++) {
        procs[i].ctl = -1;
        procs[i].index = i < cfg->workers ? i + 1 : 0;
    }
    template_due(m.cfg, m.listen_fd);
    start_due(m.cfg, m.listen_fd, 0);

    struct pollfd pfds[MAX_PROCS + 2];
    for (;;) {
        int np = 0;
        pfds[np++] = (struct pollfd){.fd = m.sfd, .events = POLLIN};
        for (int i = 0; i < nprocs; i++)
            pfds[np++] = (struct pollfd){.fd = procs[i].ctl, .events = POLLIN};
        pfds[np++] = (struct pollfd){.fd = pt_template_fd(tpl), .events = POLLIN};
        /* Wake up for the next scheduled start, at most 100 ms from now. */
        if (poll(pfds, (nfds_t)np, 100) < 0 && errno != EINTR) {
            pt_log_error("poll: %s", strerror(errno));
            return 1;
        }
        for (int i = 0; i < nprocs; i++)
            if (procs[i].pid == -1 ||
                (procs[i].ctl >= 0 && (pfds[i + 1].revents & (POLLIN | POLLHUP))))
                heard(i, m.stopping);
        if (tpl != NULL && (pfds[nprocs + 1].revents & (POLLIN | POLLHUP)))
            pt_template_poll(tpl);
        int was_starting = m.starting;
        check_ready(&m);
        if (was_starting && !m.starting && !m.stopping) {
            if (m.listen_fd >= 0)
                print_listening("", 0, cfg->host, port);
            if (tls_fd >= 0)
                print_listening("", 1, cfg->tls_host, tls_port);
            if (admin_fd >= 0)
                print_listening("admin API ", cfg->admin_tls, cfg->admin_host, admin_port);
            pt_log_info("%d workers (and %d spares), %d threads each, timeout %gs, worker memory "
                        "%zu MiB",
                        cfg->workers, SPARES, cfg->threads, cfg->timeout, cfg->worker_memory >> 20);
            /* Once serving: a server that cannot start says so in one line, and only a
             * node that serves announces itself. */
            start_nodesync(m.cfg, port, tls_port, admin_port);
        }
        on_signals(&m);
        check_stopping(&m);
        reap(&m);
        pt_breaker_tick(m.cfg->breaker, mono());
        if (!m.stopping) {
            pt_nodesync_tick(m.cfg->nodesync);
            template_due(m.cfg, m.listen_fd);
            start_due(m.cfg, m.listen_fd, !m.starting);
        } else {
            term_workers(&m);
            if (all_stopped(&m)) {
                pt_nodesync_stop(m.cfg->nodesync);
                if (m.failed)
                    return 1;
                pt_log_info("stopped");
                return 0;
            }
        }
    }
}
