/* test_inbox.c - unit tests for server/inbox: the webhook writer thread, without a server. Events
 * go in through pt_inbox_submit and are read back through the event log (store_events.h), and
 * the processor's claim, finish and expiry on that log. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/err.h"
#include "server/inbox.h"
#include "store/store_events.h"
#include "test.h"

/* Events handed back by the writer thread, counted under mu. */
static pthread_mutex_t done_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cv = PTHREAD_COND_INITIALIZER;
static int done_count;
static int done_twice; /* an event was handed back more than once */

static void
on_done(pt_inbox_event *ev)
{
    pthread_mutex_lock(&done_mu);
    if (ev->owner != NULL)
        done_twice = 1;
    ev->owner = &done_count; /* marks the event as handed back */
    done_count++;
    pthread_cond_broadcast(&done_cv);
    pthread_mutex_unlock(&done_mu);
}

static void
reset_done(void)
{
    pthread_mutex_lock(&done_mu);
    done_count = 0;
    done_twice = 0;
    pthread_mutex_unlock(&done_mu);
}

/* Waits until n events have been handed back (at most 10 s, so a lost event fails the test
 * instead of hanging it). Returns the count reached. */
static int
wait_done(int n)
{
    struct timespec until;
    int got;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    pthread_mutex_lock(&done_mu);
    while (done_count < n && pthread_cond_timedwait(&done_cv, &done_mu, &until) == 0)
        ;
    got = done_count;
    pthread_mutex_unlock(&done_mu);
    return got;
}

/* Makes a data dir from the template in dir, with the warehouse/ folder an initialised data dir
 * has. Returns dir, or NULL on failure. */
static char *
make_datadir(char *dir)
{
    char path[512];

    if (mkdtemp(dir) == NULL)
        return NULL;
    snprintf(path, sizeof path, "%s/warehouse", dir);
    return mkdir(path, 0700) == 0 ? dir : NULL;
}

static pt_str
S(const char *s)
{
    pt_str r = {s, strlen(s)};
    return r;
}

/* A POST of body (n bytes) to /hooks/gh?x=1 with the given headers (borrowed). */
static pt_request
request(const char *body, size_t n, pt_header *headers, size_t nheaders)
{
    pt_request r;

    memset(&r, 0, sizeof r);
    r.method = S("POST");
    r.path = S("/hooks/gh");
    r.query = S("x=1");
    r.body.p = body;
    r.body.n = n;
    r.remote_addr = S("192.0.2.7");
    r.headers = headers;
    r.nheaders = nheaders;
    return r;
}

/* Reads event id of datadir's log into e (caller clears); returns 0 or a pt_err. */
static int
read_event(const char *datadir, int64_t id, pt_event *e)
{
    char err[256];
    pt_events *log = NULL;
    int rc = pt_events_open(datadir, &log, err, sizeof err);

    memset(e, 0, sizeof *e);
    if (rc == 0)
        rc = pt_events_get(log, id, e);
    pt_events_close(log);
    return rc;
}

TEST(inbox_stores_an_event_with_its_request)
{
    char dir[] = "/tmp/pt-test-inbox-XXXXXX", err[256], got[1024];
    pt_header h[] = {
        {S("x-github-event"), S("push")},
        {S("accept"), S("a/b")},
        {S("x-github-event"), S("again")},
    };
    const char *body = "{\"ref\":\"main\",\"name\":\"caf\xc3\xa9\"}";
    pt_request req = request(body, strlen(body), h, 3);
    pt_inbox_event ev = {.req = &req, .source = "gh", .dedup_key = NULL, .status = NULL};
    pt_inbox *ib = NULL;
    pt_event e;

    reset_done();
    req.content_type = S("application/json");
    ASSERT_TRUE(make_datadir(dir) != NULL);
    ASSERT_EQ(pt_inbox_open(dir, on_done, &ib, err, sizeof err), 0);
    pt_inbox_submit(ib, &ev);
    ASSERT_EQ(wait_done(1), 1);
    ASSERT_EQ(ev.rc, 0);
    ASSERT_EQ(ev.duplicate, 0);
    ASSERT_GT(ev.id, 0);
    pt_inbox_close(ib);

    ASSERT_EQ(read_event(dir, ev.id, &e), 0);
    snprintf(got, sizeof got, "%s|%s|%s|%s|%s|%s|%s|%d|%d", e.source, e.method, e.path,
             e.query_string, e.content_type, e.remote_addr, e.status, e.attempts, e.body_base64);
    ASSERT_STREQ(got, "gh|POST|/hooks/gh|x=1|application/json|192.0.2.7|received|0|0");
    ASSERT_STREQ(e.body, body);
    /* Names as handlers see them, repeated headers joined in their order. */
    ASSERT_STREQ(e.headers_json, "{\"X-Github-Event\": \"push, again\", \"Accept\": \"a/b\"}");
    ASSERT_TRUE(e.dedup_key == NULL);
    /* 2026-12-04T12:00:00.000000Z */
    ASSERT_EQ(strlen(e.received_at), 27);
    ASSERT_TRUE(e.received_at[10] == 'T' && e.received_at[26] == 'Z');
    pt_event_clear(&e);
    ASSERT_FALSE(done_twice);
    pt_test_rm_tree(dir);
}

TEST(inbox_stores_a_binary_body_as_base64)
{
    char dir[] = "/tmp/pt-test-inbox-XXXXXX", err[256], got[256];
    static const char body[] = "\xff\x00\x01 not UTF-8";
    pt_request req = request(body, sizeof body - 1, NULL, 0);
    pt_inbox_event ev = {.req = &req, .source = "", .status = "pending"};
    pt_inbox *ib = NULL;
    pt_event e;

    reset_done();
    ASSERT_TRUE(make_datadir(dir) != NULL);
    ASSERT_EQ(pt_inbox_open(dir, on_done, &ib, err, sizeof err), 0);
    pt_inbox_submit(ib, &ev);
    ASSERT_EQ(wait_done(1), 1);
    ASSERT_EQ(ev.rc, 0);
    pt_inbox_close(ib);

    ASSERT_EQ(read_event(dir, ev.id, &e), 0);
    snprintf(got, sizeof got, "%s|%d|%s|%s", e.body, e.body_base64, e.status, e.headers_json);
    ASSERT_STREQ(got, "/wABIG5vdCBVVEYtOA==|1|pending|{}");
    /* No Content-Type header: NULL, not "". */
    ASSERT_TRUE(e.content_type == NULL);
    pt_event_clear(&e);
    pt_test_rm_tree(dir);
}

TEST(inbox_dedup_key_is_per_source)
{
    char dir[] = "/tmp/pt-test-inbox-XXXXXX", err[256];
    pt_request req = request("{}", 2, NULL, 0);
    pt_inbox_event a = {.req = &req, .source = "gh", .dedup_key = "delivery-1"};
    pt_inbox_event again = {.req = &req, .source = "gh", .dedup_key = "delivery-1"};
    pt_inbox_event other = {.req = &req, .source = "stripe", .dedup_key = "delivery-1"};
    pt_inbox_event nokey1 = {.req = &req, .source = "gh"};
    pt_inbox_event nokey2 = {.req = &req, .source = "gh"};
    pt_inbox *ib = NULL;
    pt_event e;

    reset_done();
    ASSERT_TRUE(make_datadir(dir) != NULL);
    ASSERT_EQ(pt_inbox_open(dir, on_done, &ib, err, sizeof err), 0);
    pt_inbox_submit(ib, &a);
    ASSERT_EQ(wait_done(1), 1);
    /* The same delivery in a later batch, and in the same batch as others. */
    pt_inbox_submit(ib, &again);
    pt_inbox_submit(ib, &other);
    pt_inbox_submit(ib, &nokey1);
    pt_inbox_submit(ib, &nokey2);
    ASSERT_EQ(wait_done(5), 5);
    pt_inbox_close(ib);

    ASSERT_EQ(a.rc, 0);
    ASSERT_EQ(a.duplicate, 0);
    ASSERT_EQ(again.rc, 0);
    ASSERT_EQ(again.duplicate, 1);
    ASSERT_EQ(again.id, a.id);
    ASSERT_EQ(other.duplicate, 0);
    ASSERT_NE(other.id, a.id);
    ASSERT_EQ(nokey1.duplicate, 0);
    ASSERT_EQ(nokey2.duplicate, 0);
    ASSERT_NE(nokey1.id, nokey2.id);

    /* Four rows: the first delivery, the other source's, and the two without a key. */
    ASSERT_EQ(read_event(dir, a.id, &e), 0);
    ASSERT_STREQ(e.dedup_key, "delivery-1");
    pt_event_clear(&e);
    ASSERT_EQ(read_event(dir, other.id, &e), 0);
    ASSERT_STREQ(e.source, "stripe");
    ASSERT_STREQ(e.dedup_key, "delivery-1");
    pt_event_clear(&e);
    ASSERT_EQ(read_event(dir, nokey2.id, &e), 0);
    ASSERT_TRUE(e.dedup_key == NULL);
    pt_event_clear(&e);
    ASSERT_EQ(read_event(dir, nokey2.id + 1, &e), PT_ENOTFOUND);
    ASSERT_FALSE(done_twice);
    pt_test_rm_tree(dir);
}

TEST(inbox_close_writes_what_is_queued)
{
    enum { N = 200 };
    char dir[] = "/tmp/pt-test-inbox-XXXXXX", err[256];
    pt_request req = request("{\"n\":1}", 7, NULL, 0);
    pt_inbox_event *evs = calloc(N, sizeof *evs);
    pt_inbox *ib = NULL;
    pt_event e;

    reset_done();
    ASSERT_TRUE(evs != NULL);
    ASSERT_TRUE(make_datadir(dir) != NULL);
    ASSERT_EQ(pt_inbox_open(dir, on_done, &ib, err, sizeof err), 0);
    for (int i = 0; i < N; i++) {
        evs[i].req = &req;
        evs[i].source = "bulk";
        pt_inbox_submit(ib, &evs[i]);
    }
    /* No wait: closing must still write, and hand back, every queued event. */
    pt_inbox_close(ib);
    ASSERT_EQ(wait_done(N), N);
    for (int i = 0; i < N; i++) {
        if (evs[i].rc != 0 || evs[i].id <= 0 || (i > 0 && evs[i].id <= evs[i - 1].id))
            pt_test_fail(__FILE__, __LINE__, "event %d: rc %d, id %lld", i, evs[i].rc,
                         (long long)evs[i].id);
    }
    ASSERT_FALSE(done_twice);
    /* Ids are given in order: the 200 events are the ids from the first to the last. */
    ASSERT_EQ(evs[N - 1].id - evs[0].id, N - 1);

    ASSERT_EQ(read_event(dir, evs[N - 1].id, &e), 0);
    ASSERT_STREQ(e.source, "bulk");
    pt_event_clear(&e);
    ASSERT_EQ(read_event(dir, evs[N - 1].id + 1, &e), PT_ENOTFOUND);
    free(evs);
    pt_test_rm_tree(dir);
}

TEST(inbox_open_fails_cleanly)
{
    char err[256] = "";
    pt_inbox *ib = NULL;

    /* A data dir under a regular file cannot hold the database. */
    ASSERT_EQ(pt_inbox_open("/dev/null/nowhere", on_done, &ib, err, sizeof err), PT_EDB);
    ASSERT_TRUE(ib == NULL);
    ASSERT_TRUE(strstr(err, "webhook inbox") != NULL);
    ASSERT_EQ(pt_inbox_prepare("/dev/null/nowhere", err, sizeof err), PT_EDB);
    pt_inbox_close(NULL);
}

TEST(inbox_prepare_creates_the_table)
{
    char dir[] = "/tmp/pt-test-inbox-XXXXXX", err[256];
    pt_event e;

    ASSERT_TRUE(make_datadir(dir) != NULL);
    ASSERT_EQ(pt_inbox_prepare(dir, err, sizeof err), 0);
    ASSERT_EQ(pt_inbox_prepare(dir, err, sizeof err), 0); /* again: IF NOT EXISTS */
    ASSERT_EQ(read_event(dir, 1, &e), PT_ENOTFOUND);
    pt_test_rm_tree(dir);
}

/* Stores one event with status "pending" (to be processed) from source gh; returns its id. */
static int64_t
store_pending(const char *dir)
{
    char err[256];
    pt_request req = request("{}", 2, NULL, 0);
    pt_inbox_event ev = {.req = &req, .source = "gh", .status = "pending"};
    pt_inbox *ib = NULL;

    reset_done();
    if (pt_inbox_open(dir, on_done, &ib, err, sizeof err) != 0)
        return 0;
    pt_inbox_submit(ib, &ev);
    wait_done(1);
    pt_inbox_close(ib);
    return ev.rc == 0 ? ev.id : 0;
}

TEST(events_claim_finish_retry_and_expire)
{
    char dir[] = "/tmp/pt-test-inbox-XXXXXX", err[256];
    pt_events *log = NULL;
    pt_event e;
    int64_t id;
    int changed = -1;

    ASSERT_TRUE(make_datadir(dir) != NULL);
    id = store_pending(dir);
    ASSERT_GT(id, 0);
    ASSERT_EQ(pt_events_open(dir, &log, err, sizeof err), 0);

    /* Claimed once: attempt 1, leased until 2000; nobody else can claim it meanwhile. */
    ASSERT_EQ(pt_events_claim(log, 1000, 2000, 3, &e), 1);
    ASSERT_EQ(e.id, id);
    ASSERT_EQ(e.attempts, 1);
    ASSERT_STREQ(e.status, "processing");
    ASSERT_STREQ(e.body, "{}");
    pt_event_clear(&e);
    ASSERT_EQ(pt_events_claim(log, 1500, 2500, 3, &e), 0);

    /* It failed: retry at 3000. Not due before. */
    ASSERT_EQ(pt_events_finish(log, id, 1, "pending", "boom", 3000, &changed), 0);
    ASSERT_EQ(changed, 1);
    ASSERT_EQ(pt_events_claim(log, 2999, 4000, 3, &e), 0);
    ASSERT_EQ(pt_events_claim(log, 3000, 4000, 3, &e), 1);
    ASSERT_EQ(e.attempts, 2);
    ASSERT_STREQ(e.last_error, "boom");
    pt_event_clear(&e);
    /* The lease ran out and someone else claimed it: the old attempt's outcome is ignored. */
    ASSERT_EQ(pt_events_claim(log, 4000, 5000, 3, &e), 1);
    ASSERT_EQ(e.attempts, 3);
    pt_event_clear(&e);
    ASSERT_EQ(pt_events_finish(log, id, 2, "done", NULL, 0, &changed), 0);
    ASSERT_EQ(changed, 0);

    /* Attempt 3's worker died: past its lease, with no attempts left, the event fails. */
    ASSERT_EQ(pt_events_expire(log, 4999, 3), 0);
    ASSERT_EQ(pt_events_get(log, id, &e), 0);
    ASSERT_STREQ(e.status, "processing");
    pt_event_clear(&e);
    ASSERT_EQ(pt_events_expire(log, 5000, 3), 0);
    ASSERT_EQ(pt_events_get(log, id, &e), 0);
    ASSERT_STREQ(e.status, "failed");
    ASSERT_TRUE(strstr(e.last_error, "stopped before it finished") != NULL);
    pt_event_clear(&e);
    ASSERT_EQ(pt_events_claim(log, 9000, 10000, 3, &e), 0);
    pt_events_close(log);
    pt_test_rm_tree(dir);
}

TEST(events_store_one_batch_with_repeated_deliveries)
{
    char dir[] = "/tmp/pt-test-inbox-XXXXXX", err[256];
    pt_events *log = NULL;
    pt_event_rec recs[5];
    int64_t ids[5], first[5];
    int dups[5];
    pt_event e;

    ASSERT_TRUE(make_datadir(dir) != NULL);
    ASSERT_EQ(pt_events_open(dir, &log, err, sizeof err), 0);
    ASSERT_EQ(pt_events_strict_text(log), 0);
    for (int i = 0; i < 5; i++)
        recs[i] = (pt_event_rec){.source = "gh", .method = S("POST"), .body = S("{}")};
    recs[0].dedup_key = "a";
    recs[1].dedup_key = NULL;
    recs[2].dedup_key = "a"; /* the same delivery again, in the same batch */
    recs[3].dedup_key = "b";
    recs[4].source = "other"; /* another source's "a" is another delivery */
    recs[4].dedup_key = "a";
    ASSERT_EQ(pt_events_store(log, recs, 5, "2026-12-04T12:00:00.000000Z", first, dups), 0);
    ASSERT_EQ(dups[0] + dups[1] + dups[3] + dups[4], 0);
    ASSERT_EQ(dups[2], 1);
    ASSERT_EQ(first[2], first[0]);
    ASSERT_TRUE(first[0] < first[1] && first[1] < first[3] && first[3] < first[4]);

    /* A later batch: "b" and "a" were stored before, the new one is written. */
    recs[0].dedup_key = "b";
    recs[1].dedup_key = "c";
    ASSERT_EQ(pt_events_store(log, recs, 3, "2026-12-04T12:00:01.000000Z", ids, dups), 0);
    ASSERT_EQ(dups[0], 1);
    ASSERT_EQ(ids[0], first[3]);
    ASSERT_EQ(dups[1], 0);
    ASSERT_GT(ids[1], first[4]);
    ASSERT_EQ(dups[2], 1);
    ASSERT_EQ(ids[2], first[0]);
    ASSERT_EQ(pt_events_get(log, ids[1], &e), 0);
    ASSERT_STREQ(e.dedup_key, "c");
    ASSERT_STREQ(e.received_at, "2026-12-04T12:00:01.000000Z");
    pt_event_clear(&e);

    /* Batches are 1 to PT_EVENTS_BATCH_MAX events. */
    ASSERT_EQ(pt_events_store(log, recs, 0, "x", ids, dups), PT_EINVAL);
    ASSERT_EQ(pt_events_store(log, recs, PT_EVENTS_BATCH_MAX + 1, "x", ids, dups), PT_EINVAL);
    pt_events_close(log);
    pt_test_rm_tree(dir);
}

TEST(events_schema_of_a_postgresql_store)
{
    char out[PT_EVENTS_SCHEMA_MAX + 1], longname[80];

    ASSERT_EQ(pt_events_schema_of("public", out, sizeof out), 0);
    ASSERT_STREQ(out, "webhooks");
    ASSERT_EQ(pt_events_schema_of("s_12_3", out, sizeof out), 0);
    ASSERT_STREQ(out, "s_12_3_webhooks");
    memset(longname, 'x', 60);
    longname[60] = '\0';
    ASSERT_EQ(pt_events_schema_of(longname, out, sizeof out), PT_EINVAL);
    ASSERT_EQ(pt_events_schema_of("a\"b", out, sizeof out), PT_EINVAL);
    ASSERT_EQ(pt_events_schema_of("", out, sizeof out), PT_EINVAL);
}
