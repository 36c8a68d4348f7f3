/* store_ratelimit.c - leases of a rate-limited caller's cluster-wide budget
 * (store_ratelimit.h). */
#include "store/store_ratelimit.h"

#include <string.h>

#include "core/err.h"
#include "store/db.h"
#include "store/store_int.h"

/* One atomic UPDATE is the whole lease: the row lock PostgreSQL takes for it orders the nodes,
 * and nothing else is read or written. With base = max(tat, now), the budget left is
 * now + period - base (GCRA: at most a whole period ahead); the grant is what fits of `want`,
 * whole intervals only, and tat moves on by what was granted. PostgreSQL-only SQL (greatest,
 * least, clock_timestamp): SQLite stores never lease (one node). ?1 key, ?2 want, ?3 the
 * interval in ns, ?4 the period in ns. */
static const char lease_sql[] =
    "UPDATE rate_budget SET"
    "  granted = greatest(0, least(CAST(?2 AS BIGINT),"
    "    (c.now + CAST(?4 AS BIGINT) - greatest(rate_budget.tat, c.now)) / CAST(?3 AS BIGINT))),"
    "  tat = greatest(rate_budget.tat, c.now) + CAST(?3 AS BIGINT) *"
    "    greatest(0, least(CAST(?2 AS BIGINT),"
    "    (c.now + CAST(?4 AS BIGINT) - greatest(rate_budget.tat, c.now)) / CAST(?3 AS BIGINT)))"
    " FROM (SELECT CAST(extract(epoch FROM clock_timestamp()) * 1000000000 AS BIGINT) AS now) c"
    " WHERE rate_budget.key = CAST(?1 AS BIGINT)"
    " RETURNING rate_budget.granted, rate_budget.tat, c.now";

/* A caller's first lease on this store makes its row: a budget that has never been used. */
static const char row_sql[] =
    "INSERT INTO rate_budget(key, tat, granted) VALUES(?1, 0, 0) ON CONFLICT(key) DO NOTHING";

/* Runs lease_sql once: 1 with the results, 0 when the caller has no row yet, or a pt_err. */
static int
lease_once(pt_store *st, int64_t key, int64_t want, int64_t interval, int64_t period,
           int64_t *granted, int64_t *tat, int64_t *now)
{
    pt_db_stmt *s = NULL;
    int rc = pt_store_prepare(st, lease_sql, &s);

    if (rc == 0)
        rc = pt_db_bind_int64(s, 1, key);
    if (rc == 0)
        rc = pt_db_bind_int64(s, 2, want);
    if (rc == 0)
        rc = pt_db_bind_int64(s, 3, interval);
    if (rc == 0)
        rc = pt_db_bind_int64(s, 4, period);
    if (rc == 0)
        rc = pt_db_step(s);
    if (rc == PT_DB_ROW) {
        *granted = pt_db_column_int64(s, 0);
        *tat = pt_db_column_int64(s, 1);
        *now = pt_db_column_int64(s, 2);
        rc = 1;
    } else if (rc < 0) {
        pt_store_fail(st, rc, "lease a rate limit slice");
    }
    pt_db_finalize(s);
    return rc;
}

/* Makes key's row (row_sql). Returns 0 or a pt_err. */
static int
add_row(pt_store *st, int64_t key)
{
    pt_db_stmt *s = NULL;
    int rc = pt_store_prepare(st, row_sql, &s);

    if (rc != 0)
        return rc;
    rc = pt_db_bind_int64(s, 1, key);
    if (rc != 0) {
        pt_db_finalize(s);
        return pt_store_fail(st, rc, "add a rate limit budget");
    }
    return pt_store_run_stmt(st, s, "add a rate limit budget");
}

int
pt_store_rate_lease(pt_store *st, uint64_t key, uint32_t count, uint32_t period_s, int64_t want,
                    int64_t *granted, uint64_t *wait_ns)
{
    int64_t period = (int64_t)period_s * 1000000000LL;
    int64_t interval, tat = 0, now = 0, k, next;
    int rc;

    *granted = 0;
    *wait_ns = 0;
    if (strcmp(pt_store_engine(st), "postgres") != 0 || count == 0 || want < 1) {
        pt_store_seterr(st, "rate limit leases need a PostgreSQL store and a limit");
        return PT_EINVAL;
    }
    interval = period / count > 0 ? period / count : 1;
    memcpy(&k, &key, sizeof k); /* the 64-bit key as the column's signed BIGINT */
    rc = lease_once(st, k, want, interval, period, granted, &tat, &now);
    if (rc == 0) { /* the caller's first lease on this store: make its row, then lease */
        rc = add_row(st, k);
        if (rc == 0)
            rc = lease_once(st, k, want, interval, period, granted, &tat, &now);
        if (rc == 0) {
            pt_store_seterr(st, "metadata store: the rate limit budget row disappeared");
            return PT_EDB;
        }
    }
    if (rc < 0)
        return rc;
    /* The next interval's worth fits once now' + period >= tat + interval. */
    next = tat + interval - period;
    if (*granted < want && next > now)
        *wait_ns = (uint64_t)(next - now);
    return 0;
}
