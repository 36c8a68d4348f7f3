/* admin_runs.c - /runs and POST /scripts/{name}/runs: the record of script runs (store_runs.h)
 * and background runs of a saved script started on the server.
 *
 * A run is started the way pq.run_script starts one: the record is made here (trigger "api"),
 * then `portico --data D run --record ID --detach --script NAME [ARGS...]` (/proc/self/exe),
 * whose recorder checks the record, forks away and exits 0 (cli_run.c). The pool thread waits
 * only for that first exit, so the answer (202) means the run is under way; the script then
 * runs in a process of its own, so a script that crashes cannot hurt the server, and the
 * recorder writes its output into the record as it comes.
 *
 * POST /runs runs a file of the client (`portico run FILE.py` through --server): the source
 * is written to DATA/run/runs/ID.py (0600) and the recorder is started with
 * `--remove-file DATA/run/runs/ID.py`, which runs that file and removes it when the run ends. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "admin/admin.h"
#include "core/err.h"
#include "core/spawn.h"
#include "store/store_runs.h"

#define RUNS_LIMIT_DEFAULT 20
#define RUNS_LIMIT_MAX 1000000
#define RUN_ARGS_MAX 1000
#define RUN_NAME_MAX 255

/* The run as JSON; with_output adds its output from byte `offset` on (moved forward to a
 * character boundary) and the error. New reference, NULL when out of memory. */
static json_t *
run_json(const pt_script_run *r, int with_output, size_t offset)
{
    int ended = r->finished != 0;
    json_t *o = json_pack(
        "{s:I, s:s, s:o, s:i, s:s, s:s, s:I, s:o, s:o, s:o, s:I}", "id", (json_int_t)r->id,
        "script", r->script, "script_id",
        r->script_id != 0 ? json_integer((json_int_t)r->script_id) : json_null(), "version",
        r->version, "trigger", r->trigger, "status", r->status, "started", (json_int_t)r->started,
        "finished", ended ? json_integer((json_int_t)r->finished) : json_null(), "exit_code",
        ended ? json_integer(r->exit_code) : json_null(), "duration_ms",
        ended ? json_integer((json_int_t)(r->finished - r->started)) : json_null(),
        "output_dropped", (json_int_t)r->output_dropped);
    if (o == NULL || !with_output)
        return o;
    if (offset > r->output_len)
        offset = r->output_len;
    while (offset < r->output_len && ((unsigned char)r->output[offset] & 0xc0) == 0x80)
        offset++;
    json_object_set_new(o, "output", json_stringn(r->output + offset, r->output_len - offset));
    json_object_set_new(o, "output_offset", json_integer((json_int_t)offset));
    json_object_set_new(o, "output_len", json_integer((json_int_t)r->output_len));
    json_object_set_new(o, "error", r->error != NULL ? json_string(r->error) : json_null());
    return o;
}

static json_t *
run_item_json(const void *item)
{
    return run_json(item, 0, 0);
}

static int
list(pt_admin_call *c, pt_admin_reply *r)
{
    const char *script = pt_admin_query_str(c, "script");
    long long limit = RUNS_LIMIT_DEFAULT, offset = 0;
    pt_script_run *runs = NULL;
    int64_t total = 0;
    size_t n = 0;
    int rc;

    if ((rc = pt_admin_query_long(c->query, "limit", 1, RUNS_LIMIT_MAX, &limit, r)) != 0 ||
        (rc = pt_admin_query_long(c->query, "offset", 0, INT64_MAX, &offset, r)) != 0)
        return rc;
    rc = pt_store_run_list(c->store, 0, script, limit, offset, &runs, &n, &total);
    rc = pt_admin_list_reply(c, r, rc, "runs", runs, n, sizeof *runs, run_item_json);
    if (rc == 0 && r->body != NULL)
        json_object_set_new(r->body, "total", json_integer(total));
    pt_store_runs_free(runs, n);
    return rc;
}

/* The run id of the path, or 0 when it is not one. */
static int64_t
id_of(const char *s)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    return *s != '\0' && *end == '\0' && v >= 1 ? (int64_t)v : 0;
}

static int
get(pt_admin_call *c, pt_admin_reply *r)
{
    long long offset = 0;
    int64_t id = id_of(c->params[0]);
    pt_script_run run;
    int rc;

    if (id == 0)
        return pt_admin_fail(r, 400, "bad_request", "id", "a run id is a number from 1");
    if ((rc = pt_admin_query_long(c->query, "offset", 0, INT64_MAX, &offset, r)) != 0)
        return rc;
    rc = pt_store_run_get(c->store, id, &run);
    if (rc != 0)
        return pt_admin_fail_store(r, c->store, rc, NULL);
    r->body = run_json(&run, 1, (size_t)offset);
    pt_script_run_clear(&run);
    return r->body != NULL ? 0 : pt_admin_fail(r, 500, "internal", NULL, "out of memory");
}

/* The body's "args": NULL or an array of strings without NUL bytes (sys.argv[1:]); `others`
 * NULL or the other members the body may have, space-separated with a space at both ends.
 * Returns 0 or the refusal. */
static int
check_args(pt_admin_call *c, pt_admin_reply *r, const char *others, json_t **args)
{
    char word[64];

    const char *key;
    json_t *v;
    size_t i;

    *args = NULL;
    if (c->body == NULL)
        return 0;
    if (!json_is_object(c->body))
        return pt_admin_fail(r, 400, "bad_request", NULL, "the body must be a JSON object");
    json_object_foreach(c->body, key, v)
    {
        snprintf(word, sizeof word, " %s ", key);
        if (strcmp(key, "args") != 0 && (others == NULL || strstr(others, word) == NULL))
            return pt_admin_fail(r, 400, "bad_request", key, "unknown member '%s'", key);
    }
    *args = json_object_get(c->body, "args");
    if (*args == NULL || json_is_null(*args)) {
        *args = NULL;
        return 0;
    }
    if (!json_is_array(*args) || json_array_size(*args) > RUN_ARGS_MAX)
        return pt_admin_fail(r, 400, "bad_request", "args",
                             "args is a list of at most %d strings (sys.argv[1:])", RUN_ARGS_MAX);
    json_array_foreach(*args, i, v)
    {
        if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
            return pt_admin_fail(r, 400, "bad_request", "args",
                                 "args is a list of strings without NUL characters");
    }
    return 0;
}

/* Starts the recorder of run `id` (see the top of the file) with `opt what` (--script NAME
 * or --remove-file FILE) and waits for its first exit. Returns 0 when the run is under way, or
 * -1 with the reason in err. */
static int
spawn_recorder(const char *datadir, int64_t id, const char *opt, const char *what, json_t *args,
               char *err, size_t errsz)
{
    size_t nargs = json_array_size(args), n = 0;
    char **argv = calloc(nargs + 10, sizeof *argv);
    char *data = realpath(datadir, NULL), idbuf[32];
    pid_t pid;
    int rc = -1, status = 0, sp;

    if (argv == NULL || data == NULL) {
        snprintf(err, errsz, "%s", data == NULL ? strerror(errno) : "out of memory");
        goto done;
    }
    snprintf(idbuf, sizeof idbuf, "%lld", (long long)id);
    argv[n++] = "portico";
    argv[n++] = "--data";
    argv[n++] = data;
    argv[n++] = "run";
    argv[n++] = "--record";
    argv[n++] = idbuf;
    argv[n++] = "--detach";
    argv[n++] = (char *)opt;
    argv[n++] = (char *)what;
    for (size_t i = 0; i < nargs; i++)
        argv[n++] = (char *)json_string_value(json_array_get(args, i));
    sp = pt_spawn_self(argv, 0, &pid);
    if (sp != 0) {
        snprintf(err, errsz, "%s", strerror(sp));
        goto done;
    }
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            rc = 0; /* reaped elsewhere: it ran; the record tells how */
            goto done;
        }
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        rc = 0;
    else
        snprintf(err, errsz, "the run's recorder ended with status %d",
                 WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
done:
    free(data);
    free(argv);
    return rc;
}

/* Nothing runs: records the end of run `id` as an error saying why (rather than "running"
 * for ever) and answers 500 with it. */
static int
fail_start(pt_admin_call *c, pt_admin_reply *r, int64_t id, const char *err)
{
    pt_script_run end = {.id = id, .status = "error", .exit_code = 1};
    char why[300];

    snprintf(why, sizeof why, "cannot start the run: %s", err);
    end.error = why;
    (void)pt_store_run_finish(c->store, &end); /* best effort: the answer says it too */
    return pt_admin_fail(r, 500, "internal", NULL, "%s", why);
}

/* POST /scripts/{name}/runs {"args"?: [...]}: 202 {"id", "script", "version", "status"}. */
static int
start(pt_admin_call *c, pt_admin_reply *r)
{
    pt_script *s = NULL;
    pt_script_run run;
    json_t *args = NULL;
    char err[256];
    int rc;

    if ((rc = check_args(c, r, NULL, &args)) != 0)
        return rc;
    rc = pt_store_script_get(c->store, c->params[0], 0, &s);
    if (rc != 0)
        return pt_admin_fail_store(r, c->store, rc, NULL);
    memset(&run, 0, sizeof run);
    run.script_id = s->id;
    run.script = s->name; /* borrowed */
    run.version = s->version;
    run.trigger = "api";
    rc = pt_store_run_start(c->store, &run);
    if (rc != 0) {
        pt_script_free(s);
        return pt_admin_fail_store(r, c->store, rc, NULL);
    }
    if (spawn_recorder(c->datadir, run.id, "--script", s->name, args, err, sizeof err) != 0) {
        pt_script_free(s);
        return fail_start(c, r, run.id, err);
    }
    r->status = 202;
    r->body = json_pack("{s:I, s:s, s:i, s:s}", "id", (json_int_t)run.id, "script", s->name,
                        "version", s->version, "status", "running");
    c->audit = json_pack("{s:s, s:i, s:I}", "script", s->name, "version", s->version, "run",
                         (json_int_t)run.id);
    pt_script_free(s);
    return 0;
}

/* Writes n bytes of src to path, a new file of mode 0600 (creating DATA/run/runs, 0700).
 * Returns 0 or -1 with the reason in err (nothing left behind). */
static int
write_source(const char *datadir, const char *path, const char *src, size_t n, char *err,
             size_t errsz)
{
    char dir[PATH_MAX];
    int fd = -1, rc = -1;

    snprintf(dir, sizeof dir, "%s/run", datadir);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        goto fail;
    snprintf(dir, sizeof dir, "%s/run/runs", datadir);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        goto fail;
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        goto fail;
    for (size_t off = 0; off < n;) {
        ssize_t w = write(fd, src + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            unlink(path);
            goto fail;
        }
        off += (size_t)w;
    }
    rc = 0;
    goto done;
fail:
    snprintf(err, errsz, "cannot write %s: %s", path, strerror(errno != 0 ? errno : EIO));
done:
    if (fd >= 0)
        close(fd);
    return rc;
}

/* POST /runs {"name", "source", "args"?: [...]}: runs a file sent by the client (`portico run
 * FILE.py` through --server) -> 202 {"id", "script", "status"}. */
static int
start_file(pt_admin_call *c, pt_admin_reply *r)
{
    const char *name = pt_admin_body_str(c, r, "name", 1);
    const char *source = name != NULL ? pt_admin_body_str(c, r, "source", 1) : NULL;
    size_t src_len = json_string_length(json_object_get(c->body, "source"));
    pt_script_run run;
    json_t *args = NULL;
    char path[PATH_MAX], err[PATH_MAX + 64];
    int rc;

    if (source == NULL)
        return -r->status;
    if ((rc = check_args(c, r, " name source ", &args)) != 0)
        return rc;
    if (*name == '\0' || strlen(name) != json_string_length(json_object_get(c->body, "name")) ||
        strlen(name) > RUN_NAME_MAX)
        return pt_admin_fail(r, 400, "bad_request", "name",
                             "name is the file's name: 1 to %d characters, no NUL", RUN_NAME_MAX);
    if (src_len == 0 || strlen(source) != src_len)
        return pt_admin_fail(r, 400, "bad_request", "source",
                             "source is the script's text: not empty, no NUL characters");
    memset(&run, 0, sizeof run);
    run.script = (char *)name; /* borrowed */
    run.trigger = "api";
    rc = pt_store_run_start(c->store, &run);
    if (rc != 0)
        return pt_admin_fail_store(r, c->store, rc, NULL);
    snprintf(path, sizeof path, "%s/run/runs/%lld.py", c->datadir, (long long)run.id);
    if (write_source(c->datadir, path, source, src_len, err, sizeof err) != 0)
        return fail_start(c, r, run.id, err);
    if (spawn_recorder(c->datadir, run.id, "--remove-file", path, args, err, sizeof err) != 0) {
        unlink(path); /* best effort: the recorder may have removed it already */
        return fail_start(c, r, run.id, err);
    }
    r->status = 202;
    r->body =
        json_pack("{s:I, s:s, s:s}", "id", (json_int_t)run.id, "script", name, "status", "running");
    c->audit = json_pack("{s:s, s:I}", "file", name, "run", (json_int_t)run.id);
    return 0;
}

const pt_admin_route pt_admin_runs_routes[] = {
    {"GET", "/runs", PT_ROLE_VIEWER, list,
     "Script runs, newest first, without output (?script=NAME&limit=20&offset=0)"},
    {"GET", "/runs/{id}", PT_ROLE_VIEWER, get,
     "One run with its output (?offset=N: the output from byte N on, for following it)"},
    {"POST", "/runs", PT_ROLE_EDITOR, start_file,
     "Run a file's text in the background {name, source, args?} -> 202 {id} (portico run "
     "FILE.py); follow it at /runs/{id}"},
    {"POST", "/scripts/{name}/runs", PT_ROLE_EDITOR, start,
     "Run a saved script in the background {args?} -> 202 {id}; follow it at /runs/{id}"},
    {NULL, NULL, PT_ROLE_NONE, NULL, NULL},
};
