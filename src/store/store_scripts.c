/* store_scripts.c - scripts in the metadata store: their versions, stable ids, run modes and
 * state (tables scripts, script_versions, script_seq, script_meta; invariants 1, 3 and 7 of
 * store.c). */
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "store/store_int.h"

int
pt_store_script_name_valid(const char *name)
{
    size_t n;

    if (!pt_store_text_name_valid(name))
        return 0;
    n = strlen(name);
    return name[0] != ' ' && name[n - 1] != ' ';
}

int
pt_store_run_mode_valid(const char *mode)
{
    return mode != NULL && (strcmp(mode, "API") == 0 || strcmp(mode, "STREAMLIT") == 0 ||
                            strcmp(mode, "SHELL") == 0);
}

static int
script_check_name(pt_store *st, const char *name)
{
    if (pt_store_script_name_valid(name))
        return 0;
    pt_store_seterr(
        st,
        "invalid script name '%.128s' (1 to 128 bytes of UTF-8, no control characters, no "
        "leading or trailing space)",
        name != NULL ? name : "");
    return PT_EINVAL;
}

static int
script_check_mode(pt_store *st, const char *mode)
{
    if (pt_store_run_mode_valid(mode))
        return 0;
    pt_store_seterr(st, "invalid run_mode '%.32s' (one of 'API', 'STREAMLIT', 'SHELL')",
                    mode != NULL ? mode : "");
    return PT_EINVAL;
}

static void
script_clear(void *elem)
{
    pt_script *s = elem;

    free(s->name);
    free(s->source);
    free(s->run_mode);
}

/* The columns script_read reads, from scripts s, script_versions v and script_meta m. */
#define SCRIPT_COLS "SELECT s.name, v.version, s.current, v.source, v.created, m.id, m.run_mode "
#define SCRIPT_FROM                                                                                \
    "FROM scripts s JOIN script_versions v ON v.name = s.name "                                    \
    "LEFT JOIN script_meta m ON m.name = s.name "

/* Fills elem (a zeroed pt_script) from a row (SCRIPT_COLS). Returns 0 or PT_ENOMEM, leaving
 * what it copied for script_clear. */
static int
script_read(pt_store *st, pt_db_stmt *stmt, void *elem)
{
    pt_script *s = elem;
    size_t len = 0;
    const char *src = pt_db_column_text(stmt, 3, &len);

    (void)st;
    s->name = pt_store_coldup(stmt, 0);
    s->version = (int)pt_db_column_int64(stmt, 1);
    s->current = (int)pt_db_column_int64(stmt, 2);
    s->source = malloc(len + 1);
    s->source_len = len;
    s->created = pt_db_column_int64(stmt, 4);
    s->id = pt_db_column_int64(stmt, 5);
    s->run_mode = strdup(
        pt_db_column_is_null(stmt, 6) ? "API" : (const char *)pt_db_column_text(stmt, 6, NULL));
    if (s->name == NULL || s->source == NULL || s->run_mode == NULL)
        return PT_ENOMEM;
    if (len > 0)
        memcpy(s->source, src, len);
    s->source[len] = '\0';
    return 0;
}

static const pt_store_kind script_kind = {
    .size = sizeof(pt_script), .read = script_read, .clear = script_clear, .what = "list scripts"};

void
pt_script_free(pt_script *s)
{
    if (s == NULL)
        return;
    script_clear(s);
    free(s);
}

void
pt_store_scripts_free(pt_script *list, size_t n)
{
    pt_store_free_rows(list, n, &script_kind);
}

/* Runs a query whose rows are SCRIPT_COLS, with a and b bound as bind_ab says, and collects
 * them. Caller frees *out with pt_store_scripts_free. */
static int
script_rows(pt_store *st, const char *sql, const char *a, int64_t b, pt_script **out, size_t *n)
{
    void *list = NULL;
    int rc = pt_store_list(st, sql, a, b, &script_kind, &list, n);

    *out = list;
    return rc;
}

/* Stores a new version of script `name`; with `create`, the script must not exist yet and gets
 * run mode `mode`, else it is created with mode "API" when new. Sets *version and *id. */
static int
script_store(pt_store *st, const char *name, const char *source, size_t len, int create,
             const char *mode, int *version, int64_t *id)
{
    pt_db_stmt *stmt = NULL;
    int64_t last = 0, now = (int64_t)time(NULL), sid = 0;
    int v = 0;
    int rc;

    rc = script_check_name(st, name);
    if (rc == 0 && create)
        rc = script_check_mode(st, mode);
    if (rc != 0)
        return rc;
    if (memchr(source, '\0', len) != NULL) {
        pt_store_seterr(st, "script '%s' contains a NUL byte", name);
        return PT_EINVAL;
    }
    if (len > INT32_MAX) {
        pt_store_seterr(st, "script '%s' is too big", name);
        return PT_ETOOBIG;
    }
    rc = pt_store_begin(st);
    if (rc != 0)
        return rc;
    if (create) {
        rc = pt_store_query_int(st, "SELECT 1 FROM scripts WHERE name = ?1", name, 0, &last);
        if (rc < 0)
            goto done;
        if (rc == 1) {
            pt_store_seterr(st, "a script named '%s' already exists", name);
            rc = PT_EEXIST;
            goto done;
        }
    }
    rc = pt_store_query_int(st,
                            "SELECT coalesce(max(v), 0) FROM (SELECT last AS v FROM script_seq "
                            "WHERE name = ?1 UNION ALL SELECT max(version) FROM script_versions "
                            "WHERE name = ?1) AS known",
                            name, 0, &last);
    if (rc < 0)
        goto done;
    v = (int)last + 1;

    rc = pt_store_prepare(st,
                          "INSERT INTO scripts(name, current, created) VALUES (?1, ?2, ?3) "
                          "ON CONFLICT(name) DO UPDATE SET current = excluded.current",
                          &stmt);
    if (rc != 0)
        goto done;
    pt_db_bind_text(stmt, 1, name, (size_t)-1);
    pt_db_bind_int64(stmt, 2, v);
    pt_db_bind_int64(stmt, 3, now);
    rc = pt_store_run_stmt(st, stmt, "store script");
    if (rc != 0)
        goto done;

    rc = pt_store_prepare(st,
                          "INSERT INTO script_versions(name, version, source, created) "
                          "VALUES (?1, ?2, ?3, ?4)",
                          &stmt);
    if (rc != 0)
        goto done;
    pt_db_bind_text(stmt, 1, name, (size_t)-1);
    pt_db_bind_int64(stmt, 2, v);
    pt_db_bind_text(stmt, 3, source, len);
    pt_db_bind_int64(stmt, 4, now);
    rc = pt_store_run_stmt(st, stmt, "store script version");
    if (rc != 0)
        goto done;

    rc = pt_store_run_sql(st,
                          "INSERT INTO script_seq(name, last) VALUES (?1, ?2) "
                          "ON CONFLICT(name) DO UPDATE SET last = excluded.last",
                          name, v, "store script sequence");
    if (rc != 0)
        goto done;

    /* Invariant 7: a new script gets its id here; a new version keeps it. */
    rc = pt_store_prepare(st,
                          "INSERT INTO script_meta(name, run_mode) VALUES (?1, ?2) "
                          "ON CONFLICT(name) DO NOTHING",
                          &stmt);
    if (rc != 0)
        goto done;
    pt_db_bind_text(stmt, 1, name, (size_t)-1);
    pt_db_bind_text(stmt, 2, create ? mode : "API", (size_t)-1);
    rc = pt_store_run_stmt(st, stmt, "store script id");
    if (rc != 0)
        goto done;
    rc = pt_store_query_int(st, "SELECT id FROM script_meta WHERE name = ?1", name, 0, &sid);
    if (rc == 0)
        pt_store_seterr(st, "metadata store: script '%s' has no id", name);
    rc = rc == 1 ? 0 : (rc == 0 ? PT_EDB : rc);
done:
    rc = pt_store_finish(st, rc);
    if (rc == 0 && version != NULL)
        *version = v;
    if (rc == 0 && id != NULL)
        *id = sid;
    return rc;
}

int
pt_store_script_put(pt_store *st, const char *name, const char *source, size_t len, int *version)
{
    return script_store(st, name, source, len, 0, NULL, version, NULL);
}

int
pt_store_script_create(pt_store *st, const char *name, const char *source, size_t len,
                       const char *run_mode, int64_t *id)
{
    return script_store(st, name, source, len, 1, run_mode, NULL, id);
}

int
pt_store_script_set_run_mode(pt_store *st, int64_t id, const char *run_mode)
{
    int rc = script_check_mode(st, run_mode);

    if (rc != 0)
        return rc;
    return pt_store_mutate_one(st, "UPDATE script_meta SET run_mode = ?1 WHERE id = ?2", run_mode,
                               id, "update", "no script with id %lld", (long long)id);
}

int
pt_store_script_get(pt_store *st, const char *name, int version, pt_script **out)
{
    pt_script *list = NULL;
    size_t n = 0;
    int64_t exists = 0;
    int rc;

    *out = NULL;
    if (version < 0) {
        pt_store_seterr(st, "invalid version %d", version);
        return PT_EINVAL;
    }
    /* ?2 = 0 selects the current version. */
    rc =
        script_rows(st,
                    SCRIPT_COLS SCRIPT_FROM
                    "WHERE s.name = ?1 AND v.version = CASE WHEN ?2 = 0 THEN s.current ELSE ?2 END",
                    name, version, &list, &n);
    if (rc != 0)
        return rc;
    if (n == 0) {
        pt_store_scripts_free(list, n);
        rc = pt_store_query_int(st, "SELECT 1 FROM scripts WHERE name = ?1", name, 0, &exists);
        if (rc < 0)
            return rc;
        if (rc == 0)
            pt_store_seterr(st, "no script named '%s'", name);
        else
            pt_store_seterr(st, "script '%s' has no version %d", name, version);
        return PT_ENOTFOUND;
    }
    *out = malloc(sizeof **out);
    if (*out == NULL) {
        pt_store_scripts_free(list, n);
        pt_store_seterr(st, "out of memory");
        return PT_ENOMEM;
    }
    **out = list[0];
    free(list); /* the fields moved to *out */
    return 0;
}

int
pt_store_script_rollback(pt_store *st, const char *name, int version, int *now_current)
{
    int64_t current = 0, target = 0;
    int rc;

    if (version < 0) {
        pt_store_seterr(st, "invalid version %d", version);
        return PT_EINVAL;
    }
    rc = pt_store_begin(st);
    if (rc != 0)
        return rc;
    rc = pt_store_query_int(st, "SELECT current FROM scripts WHERE name = ?1", name, 0, &current);
    if (rc < 0)
        goto fail;
    if (rc == 0) {
        pt_store_seterr(st, "no script named '%s'", name);
        rc = PT_ENOTFOUND;
        goto fail;
    }
    if (version == 0) {
        rc = pt_store_query_int(
            st,
            "SELECT max(version) FROM script_versions WHERE name = ?1 AND version < ?2 "
            "HAVING count(*) > 0",
            name, current, &target);
        if (rc < 0)
            goto fail;
        if (rc == 0) {
            pt_store_seterr(st, "script '%s' has no version before %lld", name, (long long)current);
            rc = PT_EINVAL;
            goto fail;
        }
    } else {
        rc = pt_store_query_int(
            st, "SELECT version FROM script_versions WHERE name = ?1 AND version = ?2", name,
            version, &target);
        if (rc < 0)
            goto fail;
        if (rc == 0) {
            pt_store_seterr(st, "script '%s' has no version %d", name, version);
            rc = PT_ENOTFOUND;
            goto fail;
        }
    }
    if (target == current) {
        pt_store_abort(st); /* nothing to change */
    } else {
        rc = pt_store_finish(st,
                             pt_store_run_sql(st, "UPDATE scripts SET current = ?2 WHERE name = ?1",
                                              name, target, "rollback script"));
        if (rc != 0)
            return rc;
    }
    if (now_current != NULL)
        *now_current = (int)target;
    return 0;
fail:
    pt_store_abort(st);
    return rc;
}

/* Writes into st->err the name of one endpoint that uses script `name`; returns 1 if there is
 * one, 0 if none, or a pt_err. */
static int
script_user(pt_store *st, const char *name)
{
    pt_db_stmt *stmt = NULL;
    int rc = pt_store_prepare(
        st, "SELECT name FROM endpoints WHERE script = ?1 ORDER BY name LIMIT 1", &stmt);

    if (rc != 0)
        return rc;
    pt_db_bind_text(stmt, 1, name, (size_t)-1);
    rc = pt_db_step(stmt);
    if (rc == PT_DB_ROW) {
        pt_store_seterr(st, "script '%s' is used by endpoint '%s'", name,
                        (const char *)pt_db_column_text(stmt, 0, NULL));
        rc = 1;
    } else if (rc == PT_DB_DONE) {
        rc = 0;
    } else {
        rc = pt_store_fail(st, rc, "find endpoints");
    }
    pt_db_finalize(stmt);
    return rc;
}

int
pt_store_script_rm(pt_store *st, const char *name)
{
    int rc;

    rc = pt_store_begin(st);
    if (rc != 0)
        return rc;
    rc = script_user(st, name);
    if (rc == 1)
        rc = PT_EEXIST;
    if (rc == 0)
        rc = pt_store_run_sql(st, "DELETE FROM script_versions WHERE name = ?1", name, 0,
                              "remove script versions");
    if (rc == 0)
        rc = pt_store_run_sql(st, "DELETE FROM scripts WHERE name = ?1", name, 0, "remove script");
    if (rc == 0 && pt_db_changes(st->db) == 0) {
        pt_store_seterr(st, "no script named '%s'", name);
        rc = PT_ENOTFOUND;
    }
    return pt_store_finish(st, rc);
}

/* Runs sql with the text parameters ?1 = a and ?2 = b (when it has a ?2; borrowed) to
 * completion. */
static int
run_sql_tt(pt_store *st, const char *sql, const char *a, const char *b, const char *what)
{
    pt_db_stmt *stmt = NULL;
    int rc = pt_store_prepare(st, sql, &stmt);

    if (rc != 0)
        return rc;
    rc = pt_db_bind_text(stmt, 1, a, (size_t)-1);
    if (rc == 0 && pt_db_param_count(stmt) >= 2)
        rc = pt_db_bind_text(stmt, 2, b, (size_t)-1);
    if (rc != 0) {
        pt_db_finalize(stmt);
        return pt_store_fail(st, rc, what);
    }
    return pt_store_run_stmt(st, stmt, what);
}

int
pt_store_script_rename(pt_store *st, const char *name, const char *new_name)
{
    /* Every place that names a script (webhook sources too: store_webhooks.c), ?1 the old name and
     * ?2 the new one. script_seq keeps the old name's row (invariant 3: a new script under the old
     * name goes on from its last version) and gets one for the new name. */
    static const char *const moves[] = {
        "INSERT INTO script_seq(name, last) VALUES "
        "(?1, (SELECT max(version) FROM script_versions WHERE name = ?1)) "
        "ON CONFLICT(name) DO UPDATE SET last = CASE WHEN excluded.last > script_seq.last "
        "THEN excluded.last ELSE script_seq.last END",
        "UPDATE scripts SET name = ?2 WHERE name = ?1",
        "UPDATE script_versions SET name = ?2 WHERE name = ?1",
        "UPDATE script_meta SET name = ?2 WHERE name = ?1",
        "INSERT INTO script_seq(name, last) SELECT ?2, last FROM script_seq WHERE name = ?1",
        "UPDATE endpoints SET script = ?2 WHERE script = ?1",
        "UPDATE webhook_sources SET script = ?2 WHERE script = ?1",
    };
    int64_t one = 0;
    int rc;

    rc = script_check_name(st, new_name);
    if (rc != 0)
        return rc;
    rc = pt_store_begin(st);
    if (rc != 0)
        return rc;
    rc = pt_store_query_int(st, "SELECT 1 FROM scripts WHERE name = ?1", name, 0, &one);
    if (rc < 0)
        goto done;
    if (rc == 0) {
        pt_store_seterr(st, "no script named '%s'", name);
        rc = PT_ENOTFOUND;
        goto done;
    }
    /* Invariant 3 again: workers cache compiled modules by (name, version) and the versions
     * keep their numbers, so the new name must never have had versions of its own. */
    rc = pt_store_query_int(st,
                            "SELECT 1 WHERE EXISTS (SELECT 1 FROM scripts WHERE name = ?1) "
                            "OR EXISTS (SELECT 1 FROM script_seq WHERE name = ?1)",
                            new_name, 0, &one);
    if (rc < 0)
        goto done;
    if (rc == 1) {
        pt_store_seterr(
            st,
            strcmp(name, new_name) == 0
                ? "script '%s' already has that name"
                : "the script name '%s' is taken, or was used before (the versions of a "
                  "name are never reused)",
            new_name);
        rc = PT_EEXIST;
        goto done;
    }
    /* The foreign keys hold again once every table is updated: check them at COMMIT. */
    rc = pt_db_defer_constraints(st->db);
    if (rc != 0)
        pt_store_fail(st, rc, "rename script");
    for (size_t i = 0; rc == 0 && i < sizeof moves / sizeof moves[0]; i++)
        rc = run_sql_tt(st, moves[i], name, new_name, "rename script");
done:
    return pt_store_finish(st, rc);
}

int
pt_store_script_list(pt_store *st, pt_script **out, size_t *n)
{
    return script_rows(st, SCRIPT_COLS SCRIPT_FROM "WHERE v.version = s.current ORDER BY s.name",
                       NULL, 0, out, n);
}

int
pt_store_script_versions(pt_store *st, const char *name, pt_script **out, size_t *n)
{
    int rc = script_rows(st, SCRIPT_COLS SCRIPT_FROM "WHERE s.name = ?1 ORDER BY v.version", name,
                         0, out, n);

    if (rc == 0 && *n == 0) {
        pt_store_seterr(st, "no script named '%s'", name);
        return PT_ENOTFOUND;
    }
    return rc;
}

/* Reads the name of script `id` into a new string (caller frees). PT_ENOTFOUND with the message
 * naming the id. */
static int
script_name_of(pt_store *st, int64_t id, char **name)
{
    pt_db_stmt *stmt = NULL;
    int rc;

    *name = NULL;
    rc = pt_store_prepare(st, "SELECT name FROM script_meta WHERE id = ?1", &stmt);
    if (rc != 0)
        return rc;
    pt_db_bind_int64(stmt, 1, id);
    rc = pt_db_step(stmt);
    if (rc == PT_DB_ROW) {
        *name = pt_store_coldup(stmt, 0);
        rc = *name != NULL ? 0 : PT_ENOMEM;
        if (rc != 0)
            pt_store_seterr(st, "out of memory");
    } else if (rc == PT_DB_DONE) {
        pt_store_seterr(st, "no script with id %lld", (long long)id);
        rc = PT_ENOTFOUND;
    } else {
        rc = pt_store_fail(st, rc, "find script");
    }
    pt_db_finalize(stmt);
    return rc;
}

int
pt_store_script_get_by_id(pt_store *st, int64_t id, int version, pt_script **out)
{
    char *name = NULL;
    int rc;

    *out = NULL;
    rc = script_name_of(st, id, &name);
    if (rc == 0)
        rc = pt_store_script_get(st, name, version, out);
    free(name);
    return rc;
}

/* ---- script state ------------------------------------------------------------------------- */

int
pt_store_state_get(pt_store *st, int64_t id, char **value, size_t *len)
{
    pt_db_stmt *stmt = NULL;
    int rc;

    *value = NULL;
    *len = 0;
    rc = pt_store_prepare(st, "SELECT state FROM script_meta WHERE id = ?1", &stmt);
    if (rc != 0)
        return rc;
    pt_db_bind_int64(stmt, 1, id);
    rc = pt_db_step(stmt);
    if (rc == PT_DB_ROW) {
        rc = 0;
        if (!pt_db_column_is_null(stmt, 0)) {
            size_t n = 0;
            const char *p = pt_db_column_text(stmt, 0, &n);
            *value = malloc(n + 1);
            if (*value == NULL) {
                pt_store_seterr(st, "out of memory");
                rc = PT_ENOMEM;
            } else {
                if (n > 0)
                    memcpy(*value, p, n);
                (*value)[n] = '\0';
                *len = n;
            }
        }
    } else if (rc == PT_DB_DONE) {
        pt_store_seterr(st, "no script with id %lld", (long long)id);
        rc = PT_ENOTFOUND;
    } else {
        rc = pt_store_fail(st, rc, "read script state");
    }
    pt_db_finalize(stmt);
    return rc;
}

int
pt_store_state_set(pt_store *st, int64_t id, const char *value, size_t len)
{
    pt_db_stmt *stmt = NULL;
    int rc;

    if (len > PT_STORE_STATE_MAX) {
        pt_store_seterr(st, "state of %zu bytes is too big (at most %u bytes)", len,
                        PT_STORE_STATE_MAX);
        return PT_ETOOBIG;
    }
    rc = pt_store_begin(st);
    if (rc != 0)
        return rc;
    rc = pt_store_prepare(st, "UPDATE script_meta SET state = ?2, state_updated = ?3 WHERE id = ?1",
                          &stmt);
    if (rc == 0) {
        pt_db_bind_int64(stmt, 1, id);
        pt_db_bind_text(stmt, 2, value, len);
        pt_db_bind_int64(stmt, 3, (int64_t)time(NULL));
        rc = pt_store_run_stmt(st, stmt, "store script state");
    }
    if (rc == 0 && pt_db_changes(st->db) == 0) {
        pt_store_seterr(st, "no script with id %lld", (long long)id);
        rc = PT_ENOTFOUND;
    }
    return pt_store_finish_quiet(st, rc); /* invariant 7: no bump */
}
