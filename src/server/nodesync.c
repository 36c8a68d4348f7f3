/* nodesync.c - the store sync process (nodesync.h): changes made through other nodes, the
 * heartbeat, and the store's reachability for /_portico/health. */

/*
 * Design notes
 *
 * One small process, the master's child, so that the master's own loop never waits on the
 * database. Each pass it
 *   1. opens what is missing: the store (pt_store_open, which reconnects by itself later) and,
 *      on PostgreSQL, a listening connection (store_listen.c) on the store's change channel;
 *   2. reads the store's change version when a notification came or a second passed since the
 *      last read, and bumps the node's change counter (changes.h) when the version moved: the
 *      workers then reload on their next request, as they do for a change made on this node;
 *   3. writes the node's heartbeat every PT_NODE_BEAT_S seconds;
 *   4. polls the listening socket until the next read is due.
 * The version read doubles as the reachability probe: its outcome goes to the shared status
 * (health, a MAP_SHARED page the master mapped before forking anything), and a change of
 * state is logged once. A node that was cut off reads a newer version as soon as the store
 * answers again, and so catches up without a notification.
 *
 * On SQLite the counter file is shared by every process of the one node already, so there is
 * no channel and the version never moves; the process only probes and writes the heartbeat.
 *
 * Why a process and not a thread of the master: the master forks workers, and a fork copies
 * only the forking thread. A thread inside SQLite or libpq at that moment holds their locks
 * (SQLite's allocator mutex, seen in a test) in the child forever: the new worker hangs on its
 * first sqlite3 call. The master stays single-threaded; this process is forked from it, closes
 * every descriptor it inherited (the listening sockets among them), dies with the master
 * (PR_SET_PDEATHSIG) and is started again by the master 1 s after it died otherwise.
 */
#include "server/nodesync.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"
#include "core/log.h"
#include "core/version.h"
#include "store/changes.h"
#include "store/store.h"
#include "store/store_nodes.h"

/* One anonymous MAP_SHARED page: the status every process reads, and the master's record of
 * the sync process. */
struct pt_nodesync {
    atomic_int checked;
    atomic_int reachable;
    _Atomic int64_t last_ok;
    _Atomic int64_t last_error;
    /* The master's only, below. */
    pid_t pid;         /* the sync process, 0 when none runs */
    double next_start; /* when to start it again (mono) after it died */
    int wanted;        /* pt_nodesync_start was called and pt_nodesync_stop was not */
    const char *datadir;
    char addresses[1024];
    int64_t started;
};

pt_nodesync *
pt_nodesync_create(void)
{
    void *p =
        mmap(NULL, sizeof(pt_nodesync), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    pt_nodesync *ns = p;
    memset(ns, 0, sizeof *ns);
    return ns;
}

void
pt_nodesync_status_get(const pt_nodesync *ns, pt_nodesync_status *out)
{
    memset(out, 0, sizeof *out);
    if (ns == NULL)
        return;
    out->checked = atomic_load(&ns->checked);
    out->reachable = atomic_load(&ns->reachable);
    out->last_ok = atomic_load(&ns->last_ok);
    out->last_error = atomic_load(&ns->last_error);
}

int
pt_nodesync_node_id(const char *datadir, char *id, size_t idsz)
{
    char path[4096], tmp[4200];
    unsigned char raw[8];
    int fd, rc = 0;

    if (idsz < 33 || snprintf(path, sizeof path, "%s/node.id", datadir) >= (int)sizeof path)
        return PT_EINVAL;
    FILE *f = fopen(path, "r");
    if (f != NULL) {
        int ok = fgets(id, (int)idsz, f) != NULL;
        fclose(f);
        id[strcspn(id, "\r\n")] = '\0';
        if (ok && id[0] != '\0')
            return 0;
    }
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw)
        return PT_EIO;
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(id + 2 * i, 3, "%02x", raw[i]);
    /* Written aside and renamed: two starts at once keep one of the two ids, whole. */
    snprintf(tmp, sizeof tmp, "%s.%d", path, (int)getpid());
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, id, strlen(id)) != (ssize_t)strlen(id) || write(fd, "\n", 1) != 1)
        rc = PT_EIO;
    if (fd >= 0)
        close(fd);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = PT_EIO;
    if (rc != 0)
        unlink(tmp);
    return rc;
}

/* ---- the sync process ------------------------------------------------------------------- */

typedef struct sync_state {
    pt_nodesync *ns;
    pt_store *st;
    pt_store_listener *listener;
    pt_changes *changes;
    char *dsn;    /* NULL on SQLite */
    int64_t seen; /* the change version last read, -1 before the first */
    int missed;   /* a read failed since the last good one: the next good one bumps */
    double next_check, next_beat, next_listen;
    pid_t master; /* the parent it was forked from */
    pt_node node;
    char id[40], host[256];
} sync_state;

static double
mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Records the outcome of a probe; logs a change of state once. */
static void
note(sync_state *s, int ok, const char *why)
{
    pt_nodesync *ns = s->ns;
    int was = atomic_load(&ns->reachable), first = !atomic_load(&ns->checked);

    atomic_store(ok ? &ns->last_ok : &ns->last_error, (int64_t)time(NULL));
    atomic_store(&ns->reachable, ok);
    atomic_store(&ns->checked, 1);
    if (!ok && (was || first))
        pt_log_error("metadata store unreachable: %.*s (serving the endpoints loaded; admin "
                     "changes are refused until it returns)",
                     (int)strcspn(why, "\n"), why);
    else if (ok && !was && !first)
        pt_log_info("metadata store reachable again");
}

/* Reads the change version; bumps the counter when it moved (or after a gap). */
static void
check(sync_state *s)
{
    char err[512];
    int64_t v = 0;
    int rc;

    if (s->st == NULL) {
        rc = pt_store_open(s->ns->datadir, &s->st, err, sizeof err);
        if (rc != 0) {
            s->missed = 1;
            note(s, 0, err);
            return;
        }
    }
    rc = pt_store_change_version(s->st, &v);
    if (rc != 0) {
        s->missed = 1;
        note(s, 0, pt_store_errmsg(s->st));
        return;
    }
    if ((s->seen >= 0 && v != s->seen) || s->missed)
        pt_changes_bump(s->changes);
    s->seen = v;
    s->missed = 0;
    note(s, 1, NULL);
}

static void
beat(sync_state *s)
{
    if (s->st == NULL || !atomic_load(&s->ns->reachable))
        return;
    s->node.last_seen = (int64_t)time(NULL);
    if (pt_store_node_beat(s->st, &s->node) != 0)
        pt_log_warn("cannot write this node's heartbeat: %s", pt_store_errmsg(s->st));
}

/* Opens the listening connection when due; its loss is logged, not fatal: the version check
 * still runs every second. */
static void
listen_due(sync_state *s, double now)
{
    char err[512];

    if (s->dsn == NULL || s->listener != NULL || now < s->next_listen)
        return;
    s->next_listen = now + PT_NODESYNC_CHECK_S;
    if (pt_store_listen(s->dsn, &s->listener, err, sizeof err) != 0)
        return;          /* the version check says the store is unreachable, if it is */
    s->next_check = now; /* a change may have been missed while not listening */
}

/* The sync process's loop; never returns (SIGTERM, or the master's death, ends it). */
static void
run(sync_state *s)
{
    char err[512];

    for (;;) {
        double now = mono();
        listen_due(s, now);
        if (now >= s->next_check) {
            s->next_check = now + PT_NODESYNC_CHECK_S;
            check(s);
        }
        if (now >= s->next_beat) {
            s->next_beat = now + PT_NODE_BEAT_S;
            beat(s);
        }
        struct pollfd pfd = {.fd = s->listener != NULL ? pt_store_listener_fd(s->listener) : -1,
                             .events = POLLIN};
        double wait = s->next_check - mono();
        int ms = wait > 0 ? (int)(wait * 1000) + 1 : 0;
        if (poll(&pfd, 1, ms) < 0 && errno != EINTR)
            _exit(1);
        if (getppid() != s->master)
            _exit(0); /* the master is gone (it died before PR_SET_PDEATHSIG was set) */
        if (s->listener != NULL && (pfd.revents & (POLLIN | POLLHUP | POLLERR))) {
            int n = pt_store_listener_drain(s->listener, err, sizeof err);
            if (n < 0) {
                pt_log_warn("lost the store's change notifications (%.*s); checking every %d s "
                            "until they are back",
                            (int)strcspn(err, "\n"), err, PT_NODESYNC_CHECK_S);
                pt_store_listener_close(s->listener);
                s->listener = NULL;
            }
            if (n != 0)
                s->next_check = 0; /* read the version now */
        }
    }
}

/* In the forked child: a clean slate, then the loop. Never returns. */
static void
child_main(pt_nodesync *ns, pid_t master)
{
    static sync_state state; /* lives as long as the process */
    sync_state *s = &state;
    sigset_t none;
    char err[512];
    int rc;

    close_range(3, ~0U, 0); /* the listening sockets, the signalfd, custody sockets */
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_IGN); /* a terminal's ^C goes to the master, which stops us */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    prctl(PR_SET_NAME, "portico-sync");
    pt_log_init("store sync");
    s->ns = ns;
    s->seen = -1;
    s->master = master;
    if (getppid() != master)
        _exit(0);
    if ((rc = pt_store_dsn_load(ns->datadir, &s->dsn, err, sizeof err)) != 0) {
        pt_log_error("%s", err);
        _exit(1);
    }
    if ((rc = pt_changes_open(ns->datadir, &s->changes)) != 0) {
        pt_log_error("cannot open the change counter in %s/run: %s", ns->datadir, pt_strerror(rc));
        _exit(1);
    }
    if ((rc = pt_nodesync_node_id(ns->datadir, s->id, sizeof s->id)) != 0) {
        pt_log_error("cannot read or write %s/node.id: %s", ns->datadir, pt_strerror(rc));
        _exit(1);
    }
    if (gethostname(s->host, sizeof s->host) != 0)
        snprintf(s->host, sizeof s->host, "unknown");
    s->host[sizeof s->host - 1] = '\0';
    s->node = (pt_node){.id = s->id,
                        .host = s->host,
                        .addresses = ns->addresses,
                        .version = PT_VERSION,
                        .pid = (int64_t)master,
                        .started = ns->started};
    run(s);
}

/* Forks the sync process. Returns 0 or a pt_err (logged). Master only. */
static int
spawn(pt_nodesync *ns)
{
    pid_t master = getpid(), pid = fork();

    if (pid < 0) {
        pt_log_error("cannot start the store sync process: %s", strerror(errno));
        ns->next_start = mono() + 1;
        return PT_EIO;
    }
    if (pid == 0)
        child_main(ns, master);
    ns->pid = pid;
    return 0;
}

int
pt_nodesync_start(pt_nodesync *ns, const char *datadir, const char *addresses, int64_t started)
{
    if (ns == NULL)
        return PT_EINVAL;
    ns->datadir = datadir;
    ns->started = started;
    snprintf(ns->addresses, sizeof ns->addresses, "%s", addresses);
    ns->wanted = 1;
    return spawn(ns);
}

int
pt_nodesync_reaped(pt_nodesync *ns, pid_t pid, int status)
{
    if (ns == NULL || pid <= 0 || pid != ns->pid)
        return 0;
    ns->pid = 0;
    if (ns->wanted) {
        if (WIFSIGNALED(status))
            pt_log_error("the store sync process (pid %d) died of signal %d; starting it again "
                         "in 1 s",
                         (int)pid, WTERMSIG(status));
        else
            pt_log_error("the store sync process (pid %d) exited with status %d; starting it "
                         "again in 1 s",
                         (int)pid, WEXITSTATUS(status));
        ns->next_start = mono() + 1;
    }
    return 1;
}

void
pt_nodesync_tick(pt_nodesync *ns)
{
    if (ns != NULL && ns->wanted && ns->pid == 0 && mono() >= ns->next_start)
        spawn(ns);
}

void
pt_nodesync_stop(pt_nodesync *ns)
{
    if (ns == NULL)
        return;
    ns->wanted = 0;
    if (ns->pid > 0) {
        kill(ns->pid, SIGTERM);
        waitpid(ns->pid, NULL, 0);
        ns->pid = 0;
    }
}
