/* breaker.c - the crash breaker's shared table (see breaker.h for the rules and numbers). */
#include "server/breaker.h"

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define MAX_ENTRIES 32 /* endpoints tracked at once; the oldest quiet one makes room */

/* A process slot's blame: `set` goes to 1 once name is complete. */
typedef struct blame {
    atomic_int set;
    char name[PT_BREAKER_NAME_MAX];
} blame;

/* One endpoint's history. Written by the master only; `until` and the name are read by
 * workers: an entry is published by storing `until` last, and a name is only replaced while
 * its entry is closed (workers then never match it). */
typedef struct entry {
    char name[PT_BREAKER_NAME_MAX];
    _Atomic double until; /* open until (monotonic seconds); 0: closed */
    double deaths[PT_BREAKER_DEATHS];
    int ndeaths;
    atomic_int recent; /* ndeaths, for workers: deaths within the window as of the last look */
    _Atomic double probation; /* after a cool-down: a death before this re-opens at once */
    double cooldown;          /* the last cool-down given */
    double last;              /* the last death */
} entry;

struct pt_breaker {
    int nprocs;
    /* Open entries plus blames not taken yet: workers skip the table while 0. */
    atomic_int hot;
    atomic_uint_fast64_t trips, rejected;
    entry entries[MAX_ENTRIES];
    blame blames[];
};

pt_breaker *
pt_breaker_create(int nprocs)
{
    size_t size = sizeof(pt_breaker) + (size_t)nprocs * sizeof(blame);
    pt_breaker *b = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (b == MAP_FAILED)
        return NULL;
    b->nprocs = nprocs; /* zeroed memory is a valid initial state for the rest */
    return b;
}

void
pt_breaker_blame(pt_breaker *b, int proc, const char *name)
{
    if (b == NULL || name == NULL || proc < 0 || proc >= b->nprocs)
        return;
    blame *e = &b->blames[proc];
    size_t i = 0;
    for (; name[i] != '\0' && i + 1 < sizeof(e->name); i++)
        e->name[i] = name[i];
    e->name[i] = '\0';
    if (atomic_exchange(&e->set, 1) == 0)
        atomic_fetch_add(&b->hot, 1);
}

int
pt_breaker_take_blame(pt_breaker *b, int proc, char *name)
{
    if (b == NULL || proc < 0 || proc >= b->nprocs || !atomic_load(&b->blames[proc].set))
        return 0;
    memcpy(name, b->blames[proc].name, PT_BREAKER_NAME_MAX);
    atomic_store(&b->blames[proc].set, 0);
    atomic_fetch_sub(&b->hot, 1);
    return 1;
}

/* The entry named `name`, or NULL. */
static entry *
find(pt_breaker *b, const char *name)
{
    for (int i = 0; i < MAX_ENTRIES; i++)
        if (b->entries[i].name[0] != '\0' && strcmp(b->entries[i].name, name) == 0)
            return &b->entries[i];
    return NULL;
}

int
pt_breaker_check(pt_breaker *b, const char *name, int *retry_after)
{
    if (b == NULL || atomic_load_explicit(&b->hot, memory_order_acquire) == 0)
        return 0;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double now = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    /* Deaths the master has not reaped yet count at once: a client retrying the endpoint
     * right after its 502 must not kill another worker before the master catches up. */
    int pending = 0;
    for (int i = 0; i < b->nprocs; i++)
        pending += atomic_load(&b->blames[i].set) && strcmp(b->blames[i].name, name) == 0;
    entry *e = find(b, name);
    int deaths = pending;
    if (e != NULL) {
        double until = atomic_load_explicit(&e->until, memory_order_acquire);
        if (until > now) {
            *retry_after = (int)(until - now) + 1;
            atomic_fetch_add_explicit(&b->rejected, 1, memory_order_relaxed);
            return 1;
        }
        deaths += atomic_load(&e->recent);
        if (pending > 0 && now < atomic_load(&e->probation))
            deaths = PT_BREAKER_DEATHS; /* on probation: one death re-opens it */
    }
    if (deaths < PT_BREAKER_DEATHS)
        return 0;
    *retry_after = (int)PT_BREAKER_COOLDOWN;
    atomic_fetch_add_explicit(&b->rejected, 1, memory_order_relaxed);
    return 1;
}

/* The entry of `name`, or a fresh one (the least recently hit closed entry replaced). */
static entry *
entry_of(pt_breaker *b, const char *name)
{
    entry *victim = find(b, name);
    if (victim != NULL)
        return victim;
    for (int i = 0; i < MAX_ENTRIES; i++) {
        entry *e = &b->entries[i];
        if (atomic_load(&e->until) == 0 && (victim == NULL || e->last < victim->last))
            victim = e;
    }
    if (victim == NULL)
        return NULL; /* every entry open: this death is not counted */
    memset(victim->name, 0, sizeof(victim->name));
    strncpy(victim->name, name, sizeof(victim->name) - 1);
    victim->ndeaths = 0;
    atomic_store(&victim->recent, 0);
    atomic_store(&victim->probation, 0);
    victim->cooldown = 0;
    return victim;
}

/* Forgets e's deaths older than the window. */
static void
forget_old(entry *e, double now)
{
    int n = 0;
    for (int i = 0; i < e->ndeaths; i++)
        if (now - e->deaths[i] < PT_BREAKER_WINDOW)
            e->deaths[n++] = e->deaths[i];
    e->ndeaths = n;
    atomic_store(&e->recent, n);
}

int
pt_breaker_tick(pt_breaker *b, double now)
{
    int closed = 0;
    for (int i = 0; b != NULL && i < MAX_ENTRIES; i++) {
        entry *e = &b->entries[i];
        double until = atomic_load(&e->until);
        if (until != 0 && until <= now) {
            atomic_store(&e->probation, until + PT_BREAKER_WINDOW);
            atomic_store(&e->until, 0);
            atomic_fetch_sub(&b->hot, 1);
            closed++;
        }
        forget_old(e, now);
    }
    return closed;
}

double
pt_breaker_record(pt_breaker *b, const char *name, double now)
{
    if (b == NULL || name[0] == '\0')
        return 0;
    pt_breaker_tick(b, now);
    entry *e = entry_of(b, name);
    if (e == NULL || atomic_load(&e->until) != 0)
        return 0; /* already open: a death that raced the breaker's opening */
    e->last = now;
    double cooldown = 0;
    if (now < atomic_load(&e->probation)) {
        cooldown =
            e->cooldown * 2 > PT_BREAKER_COOLDOWN_MAX ? PT_BREAKER_COOLDOWN_MAX : e->cooldown * 2;
    } else if (e->ndeaths + 1 >= PT_BREAKER_DEATHS) {
        cooldown = PT_BREAKER_COOLDOWN;
    } else {
        e->deaths[e->ndeaths++] = now;
        atomic_store(&e->recent, e->ndeaths);
        return 0;
    }
    e->ndeaths = 0;
    atomic_store(&e->recent, 0);
    e->cooldown = cooldown;
    atomic_fetch_add(&b->hot, 1);
    atomic_store_explicit(&e->until, now + cooldown, memory_order_release);
    atomic_fetch_add(&b->trips, 1);
    return cooldown;
}

int
pt_breaker_render(const pt_breaker *b, pt_buf *out)
{
    return pt_buf_printf(out,
                         "# HELP portico_breaker_trips_total Times an endpoint was answered 503 "
                         "for a cool-down after its handler killed workers.\n"
                         "# TYPE portico_breaker_trips_total counter\n"
                         "portico_breaker_trips_total %llu\n"
                         "# HELP portico_breaker_rejected_total Requests the crash breaker "
                         "answered 503.\n"
                         "# TYPE portico_breaker_rejected_total counter\n"
                         "portico_breaker_rejected_total %llu\n",
                         (unsigned long long)atomic_load(&b->trips),
                         (unsigned long long)atomic_load(&b->rejected));
}
