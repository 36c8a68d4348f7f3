/* test_inbox.c - unit tests for server/inbox: the webhook writer thread, without a server. Events
 * go in through pt_inbox_submit and are read back from DATA/warehouse/dw/webhooks.db. */
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/err.h"
#include "server/inbox.h"
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

/* Opens datadir's events database for reading; NULL on failure. Caller closes. */
static sqlite3 *
events_db(const char *datadir)
{
    char path[512];
    sqlite3 *db = NULL;

    snprintf(path, sizeof path, "%s/warehouse/dw/webhooks.db", datadir);
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

/* The first column of the first row of sql as text into out ("" for none, "NULL" for NULL). */
static void
query_text(sqlite3 *db, const char *sql, char *out, size_t outsz)
{
    sqlite3_stmt *st = NULL;

    snprintf(out, outsz, "%s", "");
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        snprintf(out, outsz, "%s",
                 sqlite3_column_type(st, 0) == SQLITE_NULL
                     ? "NULL"
                     : (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
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
    sqlite3 *db = NULL;

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

    db = events_db(dir);
    ASSERT_TRUE(db != NULL);
    query_text(db,
               "SELECT source||'|'||method||'|'||path||'|'||query_string||'|'||content_type||'|'"
               "||remote_addr||'|'||status||'|'||attempts||'|'||body_base64 FROM events",
               got, sizeof got);
    ASSERT_STREQ(got, "gh|POST|/hooks/gh|x=1|application/json|192.0.2.7|received|0|0");
    query_text(db, "SELECT body FROM events", got, sizeof got);
    ASSERT_STREQ(got, body);
    /* Names as handlers see them, repeated headers joined in their order. */
    query_text(db, "SELECT headers FROM events", got, sizeof got);
    ASSERT_STREQ(got, "{\"X-Github-Event\": \"push, again\", \"Accept\": \"a/b\"}");
    query_text(db, "SELECT coalesce(dedup_key, 'NULL') FROM events", got, sizeof got);
    ASSERT_STREQ(got, "NULL");
    query_text(db, "SELECT received_at LIKE '____-__-__T__:__:__.______Z' FROM events", got,
               sizeof got);
    ASSERT_STREQ(got, "1");
    sqlite3_close(db);
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
    sqlite3 *db = NULL;

    reset_done();
    ASSERT_TRUE(make_datadir(dir) != NULL);
    ASSERT_EQ(pt_inbox_open(dir, on_done, &ib, err, sizeof err), 0);
    pt_inbox_submit(ib, &ev);
    ASSERT_EQ(wait_done(1), 1);
    ASSERT_EQ(ev.rc, 0);
    pt_inbox_close(ib);

    db = events_db(dir);
    ASSERT_TRUE(db != NULL);
    query_text(db, "SELECT body||'|'||body_base64||'|'||status||'|'||headers FROM events", got,
               sizeof got);
    ASSERT_STREQ(got, "/wABIG5vdCBVVEYtOA==|1|pending|{}");
    /* No Content-Type header: NULL, not "". */
    query_text(db, "SELECT coalesce(content_type, 'NULL') FROM events", got, sizeof got);
    ASSERT_STREQ(got, "NULL");
    sqlite3_close(db);
    pt_test_rm_tree(dir);
}

TEST(inbox_dedup_key_is_per_source)
{
    char dir[] = "/tmp/pt-test-inbox-XXXXXX", err[256], got[64];
    pt_request req = request("{}", 2, NULL, 0);
    pt_inbox_event a = {.req = &req, .source = "gh", .dedup_key = "delivery-1"};
    pt_inbox_event again = {.req = &req, .source = "gh", .dedup_key = "delivery-1"};
    pt_inbox_event other = {.req = &req, .source = "stripe", .dedup_key = "delivery-1"};
    pt_inbox_event nokey1 = {.req = &req, .source = "gh"};
    pt_inbox_event nokey2 = {.req = &req, .source = "gh"};
    pt_inbox *ib = NULL;
    sqlite3 *db = NULL;

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

    db = events_db(dir);
    ASSERT_TRUE(db != NULL);
    query_text(db, "SELECT count(*) FROM events", got, sizeof got);
    ASSERT_STREQ(got, "4");
    query_text(db, "SELECT count(*) FROM events WHERE dedup_key = 'delivery-1'", got, sizeof got);
    ASSERT_STREQ(got, "2");
    sqlite3_close(db);
    ASSERT_FALSE(done_twice);
    pt_test_rm_tree(dir);
}

TEST(inbox_close_writes_what_is_queued)
{
    enum { N = 200 };
    char dir[] = "/tmp/pt-test-inbox-XXXXXX", err[256], got[64];
    pt_request req = request("{\"n\":1}", 7, NULL, 0);
    pt_inbox_event *evs = calloc(N, sizeof *evs);
    pt_inbox *ib = NULL;
    sqlite3 *db = NULL;

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
    free(evs);
    ASSERT_FALSE(done_twice);

    db = events_db(dir);
    ASSERT_TRUE(db != NULL);
    query_text(db, "SELECT count(*) FROM events WHERE source = 'bulk'", got, sizeof got);
    ASSERT_STREQ(got, "200");
    sqlite3_close(db);
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
    char dir[] = "/tmp/pt-test-inbox-XXXXXX", err[256], got[64];
    sqlite3 *db = NULL;

    ASSERT_TRUE(make_datadir(dir) != NULL);
    ASSERT_EQ(pt_inbox_prepare(dir, err, sizeof err), 0);
    ASSERT_EQ(pt_inbox_prepare(dir, err, sizeof err), 0); /* again: IF NOT EXISTS */
    db = events_db(dir);
    ASSERT_TRUE(db != NULL);
    query_text(db, "SELECT count(*) FROM events", got, sizeof got);
    ASSERT_STREQ(got, "0");
    query_text(db, "PRAGMA journal_mode", got, sizeof got);
    ASSERT_STREQ(got, "wal");
    sqlite3_close(db);
    pt_test_rm_tree(dir);
}
