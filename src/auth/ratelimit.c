/* ratelimit.c - GCRA rate limits in a shared-memory table (ratelimit.h). */
#include "auth/ratelimit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>

#include "core/err.h"
#include "core/log.h"

#define PROBE_MAX 64 /* slots looked at before the table counts as full for a key */

typedef struct slot {
    uint64_t key; /* 0: free; set once with a CAS, never cleared */
    uint64_t tat; /* theoretical arrival time, ns of CLOCK_MONOTONIC */
} slot;

struct pt_ratelimit {
    size_t nslots;
    size_t map_len;
    int warned; /* per process: the table-full warning was logged */
    slot *slots;
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

int
pt_ratelimit_hit(pt_ratelimit *rl, uint64_t key, const pt_rate *r, uint64_t now_ns,
                 uint64_t *retry_ns)
{
    uint64_t period, interval, tat, base, next;
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
            return 1;
        }
        if (__atomic_compare_exchange_n(&s->tat, &tat, next, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            return 0;
        /* Another process moved it first: tat now holds its value; try again. */
    }
}
