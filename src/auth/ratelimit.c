/* ratelimit.c - GCRA rate limits in a shared-memory table (ratelimit.h). */
#include "auth/ratelimit.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>

#include "core/err.h"
#include "core/log.h"

#define PROBE_MAX 64 /* slots looked at before the table counts as full for a key */

#define MS 1000000ULL
#define LEASE_LATE (2000 * MS)  /* a lease in flight this long: the node's own limit alone */
#define LEASE_STALE (5000 * MS) /* a claim this old is a dead worker's: another may lease */
#define DOWN_HOLD (1000 * MS)   /* after a failed lease: the node's own limit alone this long */
#define SLICE_FAST (250 * MS)   /* leases sooner apart than this double the slice */
#define SLICE_SLOW (2000 * MS)  /* leases further apart than this halve it */
#define QUEUE_MAX 256           /* leases queued per process (one per slot at most) */

/* One cache line per caller. The cluster fields (ratelimit.h, cluster mode) stay 0 on a
 * single node. All fields are read and written with atomics: every worker maps them. */
typedef struct slot {
    uint64_t key;           /* 0: free; set once with a CAS, never cleared */
    uint64_t tat;           /* theoretical arrival time, ns of CLOCK_MONOTONIC */
    int64_t tokens;         /* leased requests on hand; below 0: admitted on credit */
    uint64_t lease_at;      /* when the lease in flight was queued; 0: none (invariant 1) */
    uint64_t blocked_until; /* the store's budget is spent until then (invariant 3) */
    uint64_t down_until;    /* the store failed: the node's own limit alone until then */
    uint64_t granted_at;    /* when the last lease came back (invariant 5) */
    uint32_t slice;         /* requests asked per lease; 0: not sized yet */
    uint32_t pad;
} slot;

_Static_assert(sizeof(slot) == 64, "one cache line per slot");

struct pt_ratelimit {
    size_t nslots;
    size_t map_len;
    int warned; /* per process: the table-full warning was logged */
    slot *slots;
    /* Cluster mode, per process (pt_ratelimit_cluster); wake is NULL on a single node. */
    void (*wake)(void *ctx);
    void *wake_ctx;
    pthread_mutex_t mu; /* guards the queue */
    pt_ratelimit_lease queue[QUEUE_MAX];
    size_t qhead, qlen;
};

int
pt_ratelimit_parse(const char *s, pt_rate *out)
{
    static const struct {
        const char *unit;
        uint32_t secs;
    } units[] = {{"s", 1},       {"sec", 1},  {"second", 1},  {"m", 60},    {"min", 60},
                 {"minute", 60}, {"h", 3600}, {"hour", 3600}, {"d", 86400}, {"day", 86400}};
    const char *slash;
    char *end;
    unsigned long n;

    if (s == NULL || s[0] < '0' || s[0] > '9')
        return PT_EINVAL;
    n = strtoul(s, &end, 10);
    slash = end;
    if (*slash != '/' || n == 0 || n > 1000000000UL)
        return PT_EINVAL;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcasecmp(slash + 1, units[i].unit) == 0) {
            out->count = (uint32_t)n;
            out->period = units[i].secs;
            return 0;
        }
    }
    return PT_EINVAL;
}

void
pt_ratelimit_format(const pt_rate *r, char *out, size_t outsz)
{
    const char *unit = r->period == 1      ? "s"
                       : r->period == 60   ? "min"
                       : r->period == 3600 ? "h"
                                           : "day";

    if (r->count == 0)
        snprintf(out, outsz, "%s", "");
    else
        snprintf(out, outsz, "%u/%s", r->count, unit);
}

pt_ratelimit *
pt_ratelimit_new(size_t nslots)
{
    pt_ratelimit *rl = calloc(1, sizeof *rl);
    void *map;

    if (rl == NULL || nslots == 0)
        goto fail;
    pthread_mutex_init(&rl->mu, NULL);
    rl->nslots = nslots;
    rl->map_len = nslots * sizeof(slot);
    /* Anonymous shared memory is zero-filled: every slot starts free. */
    map = mmap(NULL, rl->map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED)
        goto fail;
    rl->slots = map;
    return rl;
fail:
    free(rl);
    return NULL;
}

void
pt_ratelimit_free(pt_ratelimit *rl)
{
    if (rl == NULL)
        return;
    munmap(rl->slots, rl->map_len);
    pthread_mutex_destroy(&rl->mu);
    free(rl);
}

uint64_t
pt_ratelimit_key(const char *kind, const char *id)
{
    /* FNV-1a: ids are not attacker-chosen (they come from the store), so a fast hash is
     * enough; a collision would only make two callers share one limit. */
    uint64_t h = 14695981039346656037ULL;

    for (const char *p = kind; *p != '\0'; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    h = (h ^ 0xff) * 1099511628211ULL;
    for (const char *p = id; *p != '\0'; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return h != 0 ? h : 1;
}

/* The caller's slot, claimed on first use; NULL when PROBE_MAX slots are taken by others. */
static slot *
find_slot(pt_ratelimit *rl, uint64_t key)
{
    size_t i = (size_t)(key % rl->nslots);

    for (int probe = 0; probe < PROBE_MAX; probe++, i = (i + 1) % rl->nslots) {
        slot *s = &rl->slots[i];
        uint64_t k = __atomic_load_n(&s->key, __ATOMIC_ACQUIRE);
        if (k == key)
            return s;
        if (k != 0)
            continue;
        uint64_t expect = 0;
        if (__atomic_compare_exchange_n(&s->key, &expect, key, 0, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE) ||
            expect == key)
            return s;
    }
    return NULL;
}

/* ---- cluster mode ------------------------------------------------------------------------ */

#define LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

int64_t
pt_ratelimit_credit(uint32_t count)
{
    return count / 50 > 1 ? (int64_t)(count / 50) : 1;
}

uint32_t
pt_ratelimit_slice_next(uint32_t slice, uint32_t count, uint64_t since_ns)
{
    uint32_t most = count / 10 > 1 ? count / 10 : 1;

    if (slice == 0)
        slice = count / 100 > 1 ? count / 100 : 1;
    else if (since_ns != 0 && since_ns < SLICE_FAST)
        slice = slice > most / 2 ? most : slice * 2;
    else if (since_ns > SLICE_SLOW)
        slice /= 2;
    return slice < 1 ? 1 : slice > most ? most : slice;
}

/* Claims s's lease (invariant 1) and queues it for this process's lease thread. */
static void
want_lease(pt_ratelimit *rl, slot *s, uint64_t key, const pt_rate *r, uint64_t now)
{
    uint64_t at = LOAD(&s->lease_at), stamp = now | 1; /* never 0: 0 means none */
    int queued = 0;

    /* Another process may have stamped a clock reading a little later than ours. */
    if (at != 0 && (now < at || now - at < LEASE_STALE))
        return;
    if (!__atomic_compare_exchange_n(&s->lease_at, &at, stamp, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE))
        return; /* another worker claimed it first */
    pthread_mutex_lock(&rl->mu);
    if (rl->qlen < QUEUE_MAX) {
        pt_ratelimit_lease *l = &rl->queue[(rl->qhead + rl->qlen++) % QUEUE_MAX];
        *l = (pt_ratelimit_lease){key, *r, 0, (size_t)(s - rl->slots)};
        queued = 1;
    }
    pthread_mutex_unlock(&rl->mu);
    if (queued)
        rl->wake(rl->wake_ctx);
    else
        STORE(&s->lease_at, 0); /* the next request asks again */
}

enum { TAKEN, LOCAL, REFUSED };

/* Spends one of the cluster's requests from s: TAKEN (leased or on credit), LOCAL (the node's
 * own limit alone decides: invariant 4) or REFUSED with *retry_ns. */
static int
cluster_take(pt_ratelimit *rl, slot *s, uint64_t key, const pt_rate *r, uint64_t now,
             uint64_t *retry_ns)
{
    uint64_t at = LOAD(&s->lease_at), down = LOAD(&s->down_until);
    int64_t t, credit = pt_ratelimit_credit(r->count);
    uint32_t slice;

    if (now < down || (at != 0 && now > at && now - at > LEASE_LATE))
        return LOCAL;
    t = LOAD(&s->tokens);
    do {
        if (t <= 0) {
            uint64_t blocked = LOAD(&s->blocked_until);
            if (now < blocked) {
                *retry_ns = blocked - now;
                return REFUSED;
            }
            if (-t >= credit) { /* credit used up: the lease in flight repays it */
                want_lease(rl, s, key, r, now);
                if (down != 0) /* the last lease failed: the node's own limit until one works */
                    return LOCAL;
                *retry_ns = 1000 * MS;
                return REFUSED;
            }
        }
    } while (
        !__atomic_compare_exchange_n(&s->tokens, &t, t - 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE));
    slice = LOAD(&s->slice);
    if (slice == 0)
        slice = pt_ratelimit_slice_next(0, r->count, 0);
    if (t - 1 <= (int64_t)slice / 2)
        want_lease(rl, s, key, r, now);
    return TAKEN;
}

int
pt_ratelimit_cluster(pt_ratelimit *rl, void (*wake)(void *ctx), void *ctx)
{
    if (rl == NULL || wake == NULL)
        return PT_EINVAL;
    rl->wake_ctx = ctx;
    rl->wake = wake;
    return 0;
}

int
pt_ratelimit_lease_next(pt_ratelimit *rl, pt_ratelimit_lease *out)
{
    int got = 0;

    pthread_mutex_lock(&rl->mu);
    if (rl->qlen > 0) {
        *out = rl->queue[rl->qhead];
        rl->qhead = (rl->qhead + 1) % QUEUE_MAX;
        rl->qlen--;
        got = 1;
    }
    pthread_mutex_unlock(&rl->mu);
    if (got) {
        /* Ask for a whole slice on top of what is owed (invariant 2). */
        slot *s = &rl->slots[out->slot];
        uint32_t slice = LOAD(&s->slice);
        int64_t t = LOAD(&s->tokens);
        if (slice == 0)
            slice = pt_ratelimit_slice_next(0, out->rate.count, 0);
        out->want = (int64_t)slice - t > 0 ? (int64_t)slice - t : 1;
    }
    return got;
}

void
pt_ratelimit_lease_done(pt_ratelimit *rl, const pt_ratelimit_lease *l, int rc, int64_t granted,
                        uint64_t wait_ns, uint64_t now_ns)
{
    slot *s = &rl->slots[l->slot];

    if (LOAD(&s->key) != l->key)
        return;
    if (rc != 0) {
        STORE(&s->down_until, now_ns + DOWN_HOLD);
    } else {
        uint64_t last = LOAD(&s->granted_at);
        uint32_t slice = LOAD(&s->slice);
        __atomic_add_fetch(&s->tokens, granted, __ATOMIC_ACQ_REL);
        if (granted < l->want) {
            STORE(&s->blocked_until, now_ns + (wait_ns > MS ? wait_ns : MS));
        } else {
            STORE(&s->blocked_until, 0);
            slice = pt_ratelimit_slice_next(slice, l->rate.count, last != 0 ? now_ns - last : 0);
        }
        if (LOAD(&s->slice) == 0)
            slice = slice != 0 ? slice : pt_ratelimit_slice_next(0, l->rate.count, 0);
        STORE(&s->slice, slice);
        STORE(&s->granted_at, now_ns);
        STORE(&s->down_until, 0);
    }
    STORE(&s->lease_at, 0);
}

int
pt_ratelimit_hit(pt_ratelimit *rl, uint64_t key, const pt_rate *r, uint64_t now_ns,
                 uint64_t *retry_ns)
{
    uint64_t period, interval, tat, base, next;
    int taken = LOCAL;
    slot *s;

    if (r->count == 0)
        return 0;
    s = find_slot(rl, key);
    if (s == NULL) {
        if (!rl->warned) {
            rl->warned = 1;
            pt_log_warn("rate limit table full (%zu slots): some callers are not limited",
                        rl->nslots);
        }
        return 0;
    }
    /* Cluster mode: the store's budget first, then the node's own (ratelimit.h). */
    if (rl->wake != NULL) {
        taken = cluster_take(rl, s, key, r, now_ns, retry_ns);
        if (taken == REFUSED)
            return 1;
    }
    period = (uint64_t)r->period * 1000000000ULL;
    interval = period / r->count;
    if (interval == 0)
        interval = 1;
    tat = __atomic_load_n(&s->tat, __ATOMIC_ACQUIRE);
    for (;;) {
        base = tat > now_ns ? tat : now_ns;
        next = base + interval;
        /* Admitting would put the caller more than a whole period ahead: over the limit. */
        if (next - now_ns > interval * r->count) {
            *retry_ns = next - now_ns - interval * r->count;
            if (taken == TAKEN) /* refused requests do not count: give it back */
                __atomic_add_fetch(&s->tokens, 1, __ATOMIC_ACQ_REL);
            return 1;
        }
        if (__atomic_compare_exchange_n(&s->tat, &tat, next, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            return 0;
        /* Another process moved it first: tat now holds its value; try again. */
    }
}
