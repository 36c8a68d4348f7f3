/* store_endpoints.c - endpoints in the metadata store (table endpoints; invariant 2 of
 * store.c). */
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "core/http.h"
#include "store/store_int.h"

void
pt_endpoint_clear(pt_endpoint *ep)
{
    if (ep == NULL)
        return;
    free(ep->name);
    free(ep->path);
    free(ep->script);
    free(ep->auth);
    pt_epset_clear(&ep->settings);
    memset(ep, 0, sizeof *ep);
}

static void
endpoint_clear(void *elem)
{
    pt_endpoint_clear(elem);
}

/* The router's view of a path: every {param} and `*` segment becomes `*`. Caller frees. */
static char *
path_shape(const char *path)
{
    char *out = malloc(strlen(path) + 1);
    const char *p = path;
    char *o = out;

    if (out == NULL)
        return NULL;
    while (*p != '\0') {
        if (*p == '/') {
            *o++ = *p++;
            continue;
        }
        const char *end = strchr(p, '/');
        size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
        if (p[0] == '{' || (n == 1 && p[0] == '*')) {
            *o++ = '*';
        } else {
            memcpy(o, p, n);
            o += n;
        }
        p += n;
    }
    *o = '\0';
    return out;
}

/* Fills elem (a zeroed pt_endpoint) from a row of endpoint_cols. Returns 0 or PT_ENOMEM,
 * leaving what it copied for endpoint_clear. */
static int
endpoint_read(pt_store *st, pt_db_stmt *stmt, void *elem)
{
    pt_endpoint *ep = elem;

    (void)st;
    ep->name = pt_store_coldup(stmt, 0);
    ep->path = pt_store_coldup(stmt, 1);
    ep->methods = (unsigned)(int)pt_db_column_int64(stmt, 2);
    ep->script = pt_store_coldup(stmt, 3);
    ep->auth = pt_store_coldup(stmt, 4);
    ep->created = pt_db_column_int64(stmt, 5);
    ep->settings.timeout_ms = pt_db_column_int64(stmt, 6);
    ep->settings.max_concurrency = pt_db_column_int64(stmt, 7);
    ep->settings.queue_wait_ms = pt_db_column_int64(stmt, 8);
    ep->settings.cache_ms = pt_db_column_int64(stmt, 9);
    ep->settings.max_body = pt_db_column_int64(stmt, 10);
    if (!pt_db_column_is_null(stmt, 11) && (ep->settings.cors = pt_store_coldup(stmt, 11)) == NULL)
        return PT_ENOMEM;
    if (ep->name == NULL || ep->path == NULL || ep->script == NULL || ep->auth == NULL)
        return PT_ENOMEM;
    return 0;
}

static const pt_store_kind endpoint_kind = {.size = sizeof(pt_endpoint),
                                            .read = endpoint_read,
                                            .clear = endpoint_clear,
                                            .what = "list endpoints"};

void
pt_store_endpoints_free(pt_endpoint *list, size_t n)
{
    pt_store_free_rows(list, n, &endpoint_kind);
}

/* Endpoints with their settings (no settings row: every setting 0, no CORS). */
static const char endpoint_cols[] =
    "SELECT e.name, e.path, e.methods, e.script, e.auth, e.created, "
    "COALESCE(s.timeout_ms, 0), COALESCE(s.max_conc, 0), COALESCE(s.queue_wait_ms, 0), "
    "COALESCE(s.cache_ms, 0), COALESCE(s.max_body, 0), s.cors "
    "FROM endpoints e LEFT JOIN endpoint_settings s ON s.name = e.name";

/* Writes ep's settings row (none when every setting is unset), inside the caller's
 * transaction. Returns 0 or a store error. */
static int
settings_write(pt_store *st, const pt_endpoint *ep)
{
    const pt_ep_settings *s = &ep->settings;
    pt_db_stmt *stmt = NULL;
    int rc;

    rc = pt_store_prepare(st, "DELETE FROM endpoint_settings WHERE name = ?1", &stmt);
    if (rc != 0)
        return rc;
    pt_db_bind_text(stmt, 1, ep->name, (size_t)-1);
    rc = pt_store_run_stmt(st, stmt, "change endpoint settings");
    if (rc != 0 || (s->timeout_ms == 0 && s->max_concurrency == 0 && s->queue_wait_ms == 0 &&
                    s->cache_ms == 0 && s->max_body == 0 && s->cors == NULL))
        return rc;
    rc = pt_store_prepare(st,
                          "INSERT INTO endpoint_settings(name, timeout_ms, max_conc, "
                          "queue_wait_ms, cache_ms, max_body, cors) "
                          "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                          &stmt);
    if (rc != 0)
        return rc;
    pt_db_bind_text(stmt, 1, ep->name, (size_t)-1);
    pt_db_bind_int64(stmt, 2, s->timeout_ms);
    pt_db_bind_int64(stmt, 3, s->max_concurrency);
    pt_db_bind_int64(stmt, 4, s->queue_wait_ms);
    pt_db_bind_int64(stmt, 5, s->cache_ms);
    pt_db_bind_int64(stmt, 6, s->max_body);
    if (s->cors != NULL)
        pt_db_bind_text(stmt, 7, s->cors, (size_t)-1);
    else
        pt_db_bind_null(stmt, 7);
    return pt_store_run_stmt(st, stmt, "change endpoint settings");
}

/* Adds ep (replace 0) or replaces the endpoint named ep->name (replace 1, keeping its created
 * time), in one transaction: pt_store_endpoint_add and pt_store_endpoint_set. */
static int
endpoint_write(pt_store *st, const pt_endpoint *ep, int replace)
{
    pt_db_stmt *stmt = NULL;
    char reason[512] = "";
    char *shape = NULL;
    int64_t one = 0;
    pt_ep_settings set;
    int rc;

    rc = pt_store_check_name(st, "endpoint", ep->name);
    if (rc != 0)
        return rc;
    /* Checked on a copy: the list of origins is normalised, and ep is the caller's. */
    if (pt_epset_copy(&set, &ep->settings) != 0) {
        pt_store_seterr(st, "out of memory");
        return PT_ENOMEM;
    }
    rc = pt_epset_check(&set, ep->auth, reason, sizeof reason);
    if (rc != 0) {
        pt_store_seterr(st, "%s", reason);
        pt_epset_clear(&set);
        return rc;
    }
    if (ep->path == NULL || pt_http_check_path(ep->path, reason, sizeof reason) != 0) {
        pt_store_seterr(st, "invalid path '%s': %s", ep->path != NULL ? ep->path : "",
                        reason[0] != '\0' ? reason : "not a valid endpoint path");
        rc = PT_EINVAL;
    } else if (ep->methods == 0 || (ep->methods & ~0x7fu) != 0) {
        pt_store_seterr(st, "invalid methods for endpoint '%s'", ep->name);
        rc = PT_EINVAL;
    } else if (ep->auth == NULL ||
               (strcmp(ep->auth, "public") != 0 && strcmp(ep->auth, "jwt") != 0 &&
                strcmp(ep->auth, "apikey") != 0)) {
        pt_store_seterr(st, "invalid auth '%s' (public, jwt or apikey)",
                        ep->auth != NULL ? ep->auth : "");
        rc = PT_EINVAL;
    } else if (ep->script == NULL) {
        pt_store_seterr(st, "endpoint '%s' needs a script", ep->name);
        rc = PT_EINVAL;
    } else if ((shape = path_shape(ep->path)) == NULL) {
        pt_store_seterr(st, "out of memory");
        rc = PT_ENOMEM;
    }
    if (rc != 0) {
        pt_epset_clear(&set);
        return rc;
    }

    rc = pt_store_begin(st);
    if (rc != 0) {
        free(shape);
        pt_epset_clear(&set);
        return rc;
    }
    rc = pt_store_query_int(st, "SELECT 1 FROM endpoints WHERE name = ?1", ep->name, 0, &one);
    if (rc < 0)
        goto done;
    if (rc == 1 && !replace) {
        pt_store_seterr(st, "endpoint '%s' already exists", ep->name);
        rc = PT_EEXIST;
        goto done;
    }
    if (rc == 0 && replace) {
        pt_store_seterr(st, "no endpoint named '%s'", ep->name);
        rc = PT_ENOTFOUND;
        goto done;
    }
    rc = pt_store_query_int(st, "SELECT 1 FROM scripts WHERE name = ?1", ep->script, 0, &one);
    if (rc < 0)
        goto done;
    if (rc == 0) {
        pt_store_seterr(st, "no script named '%s'", ep->script);
        rc = PT_ENOTFOUND;
        goto done;
    }
    rc = pt_store_prepare(st,
                          "SELECT name, path FROM endpoints WHERE (path = ?1 OR shape = ?2) "
                          "AND name <> ?3 LIMIT 1",
                          &stmt);
    if (rc != 0)
        goto done;
    pt_db_bind_text(stmt, 1, ep->path, (size_t)-1);
    pt_db_bind_text(stmt, 2, shape, (size_t)-1);
    pt_db_bind_text(stmt, 3, ep->name, (size_t)-1);
    rc = pt_db_step(stmt);
    if (rc == PT_DB_ROW) {
        pt_store_seterr(st, "endpoint '%s' already uses path %s", pt_db_column_text(stmt, 0, NULL),
                        pt_db_column_text(stmt, 1, NULL));
        rc = PT_EEXIST;
    } else if (rc != PT_DB_DONE) {
        rc = pt_store_fail(st, rc, "check path");
    } else {
        rc = 0;
    }
    pt_db_finalize(stmt);
    if (rc != 0)
        goto done;

    if (replace)
        rc = pt_store_prepare(st,
                              "UPDATE endpoints SET path = ?2, shape = ?3, methods = ?4, "
                              "script = ?5, auth = ?6 WHERE name = ?1",
                              &stmt);
    else
        rc = pt_store_prepare(
            st,
            "INSERT INTO endpoints(name, path, shape, methods, script, auth, created) "
            "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            &stmt);
    if (rc != 0)
        goto done;
    pt_db_bind_text(stmt, 1, ep->name, (size_t)-1);
    pt_db_bind_text(stmt, 2, ep->path, (size_t)-1);
    pt_db_bind_text(stmt, 3, shape, (size_t)-1);
    pt_db_bind_int64(stmt, 4, (int)ep->methods);
    pt_db_bind_text(stmt, 5, ep->script, (size_t)-1);
    pt_db_bind_text(stmt, 6, ep->auth, (size_t)-1);
    if (!replace)
        pt_db_bind_int64(stmt, 7, ep->created != 0 ? ep->created : (int64_t)time(NULL));
    rc = pt_store_run_stmt(st, stmt, replace ? "change endpoint" : "add endpoint");
    if (rc == 0) {
        pt_endpoint with = *ep;
        with.settings = set;
        rc = settings_write(st, &with);
    }
done:
    rc = pt_store_finish(st, rc);
    free(shape);
    pt_epset_clear(&set);
    return rc;
}

int
pt_store_endpoint_add(pt_store *st, const pt_endpoint *ep)
{
    return endpoint_write(st, ep, 0);
}

int
pt_store_endpoint_set(pt_store *st, const pt_endpoint *ep)
{
    return endpoint_write(st, ep, 1);
}

int
pt_store_endpoint_get(pt_store *st, const char *name, pt_endpoint *out)
{
    char sql[512];
    int rc;

    snprintf(sql, sizeof sql, "%s WHERE e.name = ?1", endpoint_cols);
    rc = pt_store_get_row(st, sql, name, &endpoint_kind, out, "get endpoint");
    if (rc == PT_ENOTFOUND)
        pt_store_seterr(st, "no endpoint named '%s'", name);
    return rc;
}

int
pt_store_endpoint_rm(pt_store *st, const char *name)
{
    return pt_store_mutate_one(st, "DELETE FROM endpoints WHERE name = ?1", name, 0,
                               "remove endpoint", "no endpoint named '%s'", name);
}

int
pt_store_endpoint_list(pt_store *st, pt_endpoint **out, size_t *n)
{
    void *list = NULL;
    char sql[512];
    int rc;

    snprintf(sql, sizeof sql, "%s ORDER BY e.name", endpoint_cols);
    rc = pt_store_list(st, sql, NULL, 0, &endpoint_kind, &list, n);
    *out = list;
    return rc;
}
