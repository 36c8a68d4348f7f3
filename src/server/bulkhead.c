/* bulkhead.c - the shared per-endpoint admission table (see bulkhead.h). */
#include "server/bulkhead.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>

#include "core/json.h"
#include "server/breaker.h" /* PT_BREAKER_NAME_MAX: endpoint names fit */

/* A row: `ready` goes to 1 once name is written (under the mutex); readers scan ready rows
 * only, so a row's name never changes under them. */
typedef struct row {
    atomic_int ready;
    char name[PT_BREAKER_NAME_MAX];
    atomic_llong running;
} row;

struct pt_bulkhead {
    pthread_mutex_t mu; /* process-shared, robust: claiming rows */
    int nprocs;
    row rows[PT_BULKHEAD_ROWS];
    atomic_int held[]; /* [row * nprocs + proc]: places each process slot holds */
};

pt_bulkhead *
pt_bulkhead_create(int nprocs)
{
    size_t size = sizeof(pt_bulkhead) + (size_t)PT_BULKHEAD_ROWS * (size_t)nprocs * sizeof(int);
    pthread_mutexattr_t attr;
    pt_bulkhead *b = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (b == MAP_FAILED)
        return NULL;
    b->nprocs = nprocs; /* zeroed memory is a valid initial state for the rest */
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    int rc = pthread_mutex_init(&b->mu, &attr);
    pthread_mutexattr_destroy(&attr);
    if (rc != 0) {
        munmap(b, size);
        errno = rc;
        return NULL;
    }
    return b;
}

/* The ready row named `name`, or -1. */
static int
find(const pt_bulkhead *b, const char *name)
{
    for (int i = 0; i < PT_BULKHEAD_ROWS; i++) {
        const row *r = &b->rows[i];
        if (!atomic_load_explicit(&r->ready, memory_order_acquire))
            return -1; /* rows are claimed in order: none after the first free one */
        if (strcmp(r->name, name) == 0)
            return i;
    }
    return -1;
}

int
pt_bulkhead_row(pt_bulkhead *b, const char *name)
{
    if (b == NULL || strlen(name) >= PT_BREAKER_NAME_MAX)
        return -1;
    int i = find(b, name);
    if (i >= 0)
        return i;
    int rc = pthread_mutex_lock(&b->mu);
    if (rc == EOWNERDEAD) /* a process died while claiming: rows it left half-made are unready */
        pthread_mutex_consistent(&b->mu);
    else if (rc != 0)
        return -1;
    i = find(b, name);
    for (int j = 0; i < 0 && j < PT_BULKHEAD_ROWS; j++) {
        row *r = &b->rows[j];
        if (!atomic_load(&r->ready)) {
            memcpy(r->name, name, strlen(name) + 1);
            atomic_store_explicit(&r->ready, 1, memory_order_release);
            i = j;
        }
    }
    pthread_mutex_unlock(&b->mu);
    return i;
}

int
pt_bulkhead_enter(pt_bulkhead *b, int row_, int proc, int64_t max)
{
    if (b == NULL || row_ < 0 || proc < 0 || proc >= b->nprocs)
        return 1; /* no table: no bulkhead */
    row *r = &b->rows[row_];
    long long cur = atomic_load(&r->running);
    do {
        if (cur >= max)
            return 0;
    } while (!atomic_compare_exchange_weak(&r->running, &cur, cur + 1));
    atomic_fetch_add(&b->held[row_ * b->nprocs + proc], 1);
    return 1;
}

void
pt_bulkhead_leave(pt_bulkhead *b, int row_, int proc)
{
    if (b == NULL || row_ < 0 || proc < 0 || proc >= b->nprocs)
        return;
    atomic_fetch_sub(&b->held[row_ * b->nprocs + proc], 1);
    atomic_fetch_sub(&b->rows[row_].running, 1);
}

int64_t
pt_bulkhead_running(const pt_bulkhead *b, int row_)
{
    if (b == NULL || row_ < 0 || row_ >= PT_BULKHEAD_ROWS)
        return 0;
    return (int64_t)atomic_load(&b->rows[row_].running);
}

void
pt_bulkhead_forget(pt_bulkhead *b, int proc)
{
    if (b == NULL || proc < 0 || proc >= b->nprocs)
        return;
    for (int i = 0; i < PT_BULKHEAD_ROWS; i++) {
        int n = atomic_exchange(&b->held[i * b->nprocs + proc], 0);
        if (n != 0)
            atomic_fetch_sub(&b->rows[i].running, n);
    }
}

int
pt_bulkhead_render(const pt_bulkhead *b, pt_buf *out)
{
    if (b == NULL)
        return 0;
    int rc = pt_buf_puts(out, "# HELP portico_endpoint_bulkhead_running Requests of the endpoint "
                              "holding a place under its --max-concurrency now, across the "
                              "workers.\n"
                              "# TYPE portico_endpoint_bulkhead_running gauge\n");
    for (int i = 0; rc == 0 && i < PT_BULKHEAD_ROWS; i++) {
        const row *r = &b->rows[i];
        if (!atomic_load(&r->ready))
            break;
        rc = pt_buf_puts(out, "portico_endpoint_bulkhead_running{endpoint=");
        rc = rc != 0 ? rc : pt_json_string(out, r->name, strlen(r->name));
        rc = rc != 0 ? rc : pt_buf_printf(out, "} %lld\n", (long long)atomic_load(&r->running));
    }
    return rc;
}
