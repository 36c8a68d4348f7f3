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

static const char endpoint_cols[] = "SELECT name, path, methods, script, auth, created "
                                    "FROM endpoints";

/* Adds ep (replace 0) or replaces the endpoint named ep->name (replace 1, keeping its created
 * time), in one transaction: pt_store_endpoint_add and pt_store_endpoint_set. */
static int
endpoint_write(pt_store *st, const pt_endpoint *ep, int replace)
{
    pt_db_stmt *stmt = NULL;
    char reason[256] = "";
    char *shape = NULL;
    int64_t one = 0;
    int rc;

    rc = pt_store_check_name(st, "endpoint", ep->name);
    if (rc != 0)
        return rc;
    if (ep->path == NULL || pt_http_check_path(ep->path, reason, sizeof reason) != 0) {
        pt_store_seterr(st, "invalid path '%s': %s", ep->path != NULL ? ep->path : "",
                        reason[0] != '\0' ? reason : "not a valid endpoint path");
        return PT_EINVAL;
    }
    if (ep->methods == 0 || (ep->methods & ~0x7fu) != 0) {
        pt_store_seterr(st, "invalid methods for endpoint '%s'", ep->name);
        return PT_EINVAL;
    }
    if (ep->auth == NULL || (strcmp(ep->auth, "public") != 0 && strcmp(ep->auth, "jwt") != 0 &&
                             strcmp(ep->auth, "apikey") != 0)) {
        pt_store_seterr(st, "invalid auth '%s' (public, jwt or apikey)",
                        ep->auth != NULL ? ep->auth : "");
        return PT_EINVAL;
    }
    if (ep->script == NULL) {
        pt_store_seterr(st, "endpoint '%s' needs a script", ep->name);
        return PT_EINVAL;
    }
    shape = path_shape(ep->path);
    if (shape == NULL) {
        pt_store_seterr(st, "out of memory");
        return PT_ENOMEM;
    }

    rc = pt_store_begin(st);
    if (rc != 0) {
        free(shape);
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
done:
    rc = pt_store_finish(st, rc);
    free(shape);
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
    char sql[128];
    int rc;

    snprintf(sql, sizeof sql, "%s WHERE name = ?1", endpoint_cols);
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
    char sql[128];
    int rc;

    snprintf(sql, sizeof sql, "%s ORDER BY name", endpoint_cols);
    rc = pt_store_list(st, sql, NULL, 0, &endpoint_kind, &list, n);
    *out = list;
    return rc;
}
