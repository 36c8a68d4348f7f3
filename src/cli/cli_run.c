/* cli_run.c - `portico run FILE.py|--script NAME [ARGS...]`: a standalone script with `pq`
 * available, recorded as a run; and `portico runs`, which reads those records.
 *
 * Design notes
 *
 *   `portico run` is a small recorder around the script: it records the run (store_runs.h),
 *   forks, and the child runs the script in Python with stdout and stderr on pipes. The parent
 *   (which never starts Python) copies what comes through the pipes to its own stdout and
 *   stderr as it arrives, so the terminal shows the output as it happens, and keeps the first
 *   PT_STORE_RUN_OUTPUT_MAX bytes of both, interleaved as they came, for the record. A third
 *   pipe carries the traceback of a failed script. Because the recorder is another process, a
 *   script that crashes the interpreter (a segfault in an extension, os._exit) still gets its
 *   run recorded, with its output, as an error.
 *
 *   pq.run_script starts `portico run --record ID --script NAME`: the worker created the record
 *   (trigger "pq.run_script") and this process fills it in. The admin API's
 *   POST /scripts/{name}/runs starts `portico run --record ID --detach --script NAME`: the
 *   recorder forks away from the worker once the record is checked (its parent exits at once,
 *   so the worker is never left with a child to reap, and a worker that is replaced leaves the
 *   run going; the master, a child subreaper, reaps it).
 *
 *   While the script runs, the recorder appends the output it holds to the record about every
 *   second, or as soon as 64 KiB are waiting (pt_store_run_output), up to its last whole line:
 *   `portico runs show ID` and GET /runs/{id} show it growing. The end of the run writes the
 *   whole output again, so the record is complete even when a progress write failed.
 *
 *   Through --server, `run --script NAME` starts the run with that route and follows it
 *   (GET /runs/{id}?offset=N), printing the output as it grows and exiting with the run's exit
 *   code; `run FILE.py` sends the file's text with POST /runs, which writes it to a private
 *   file of the server's data dir and starts `portico run --record ID --detach --remove-file
 *   FILE`: the recorder runs FILE and removes it when the run ends, whatever the outcome. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_api.h"
#include "core/err.h"
#include "py/py.h"
#include "store/store.h"
#include "store/store_runs.h"

#define ERROR_MAX (64u << 10)     /* bytes of traceback kept */
#define PROGRESS_MS 1000          /* how often the output so far is recorded */
#define PROGRESS_BYTES (64 << 10) /* or as soon as this much waits */
#define FOLLOW_MS 250             /* how often a remote `run` asks for new output */

static const char run_usage[] = "run FILE.py [ARGS...] | run --script NAME [ARGS...]";

/* A bounded capture: the first `cap` bytes are kept, the rest only counted. */
typedef struct capture {
    char *data;
    size_t len, cap;
    int64_t dropped;
} capture;

static void
capture_add(capture *c, const char *p, size_t n)
{
    size_t room = c->cap - c->len;
    size_t take = n < room ? n : room;

    if (take > 0 && c->data != NULL) {
        memcpy(c->data + c->len, p, take);
        c->len += take;
    }
    c->dropped += (int64_t)(n - take);
}

/* What one stream sent after its last newline. The record takes stdout and stderr a whole line
 * at a time, so their lines interleave but never cut into each other (Python may write a line
 * and its newline in two calls, and the two pipes are read in any order). A line fragment
 * longer than the buffer is recorded as it comes. */
typedef struct partial {
    char buf[4096];
    size_t len;
} partial;

static void
partial_flush(partial *pl, capture *c)
{
    capture_add(c, pl->buf, pl->len);
    pl->len = 0;
}

/* Adds n bytes of one stream to the record c, whole lines first (see partial). */
static void
record_lines(capture *c, partial *pl, const char *p, size_t n)
{
    while (n > 0) {
        const char *nl = memchr(p, '\n', n);
        size_t take = nl != NULL ? (size_t)(nl - p) + 1 : n;
        if (pl->len + take > sizeof pl->buf)
            partial_flush(pl, c);
        if (take > sizeof pl->buf) {
            capture_add(c, p, take);
        } else {
            memcpy(pl->buf + pl->len, p, take);
            pl->len += take;
            if (nl != NULL)
                partial_flush(pl, c);
        }
        p += take;
        n -= take;
    }
}

/* Writes all of p to fd, giving up quietly on an error (a closed terminal must not stop the
 * script or its record). */
static void
copy_out(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

/* The recording of the output while the run goes on (see the design notes). */
typedef struct progress {
    const char *datadir; /* borrowed */
    int64_t run_id;      /* 0: nothing is recorded */
    pt_store *st;        /* opened on the first write; NULL after a failure */
    int failed;          /* a write failed: the rest waits for the end of the run */
    size_t done;         /* bytes of the capture already recorded */
    int64_t last_ms;     /* when the last write was made */
} progress;

static int64_t
mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The end of the last whole UTF-8 character of p[from..end): end, or the start of a character
 * whose last bytes have not come yet. */
static size_t
whole_chars(const char *p, size_t from, size_t end)
{
    size_t i = end;

    while (i > from && ((unsigned char)p[i - 1] & 0xc0) == 0x80 && end - i < 3)
        i--;
    if (i == from)
        return end;
    unsigned char lead = (unsigned char)p[i - 1];
    size_t need = lead < 0x80 ? 1 : lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
    return (i - 1) + need <= end ? end : i - 1;
}

/* Records what the capture holds past pg->done when a second has passed or PROGRESS_BYTES
 * wait: up to its last newline, or, for a longer line, its last whole UTF-8 character. */
static void
progress_write(progress *pg, const capture *c)
{
    int64_t now = mono_ms();
    size_t end = c->len;

    if (pg->run_id == 0 || pg->failed || c->len == pg->done ||
        (now - pg->last_ms < PROGRESS_MS && c->len - pg->done < PROGRESS_BYTES))
        return;
    while (end > pg->done && c->data[end - 1] != '\n')
        end--;
    if (end == pg->done) {
        if (c->len - pg->done < PROGRESS_BYTES)
            return;
        end = whole_chars(c->data, pg->done, c->len);
    }
    if (pg->st == NULL) {
        char err[512];
        if (pt_store_open(pg->datadir, &pg->st, err, sizeof err) != 0) {
            pg->failed = 1;
            return;
        }
    }
    if (pt_store_run_output(pg->st, pg->run_id, c->data + pg->done, end - pg->done, c->dropped) !=
        0) {
        pg->failed = 1;
        return;
    }
    pg->done = end;
    pg->last_ms = now;
}

/* Reads the three pipes until all are closed: out and err are copied to 1 and 2 as they come
 * and recorded into output a line at a time, errinfo captured into error; pg records the
 * output as it grows. */
static void
pump(int out, int err, int errinfo, capture *output, capture *error, progress *pg)
{
    struct pollfd p[3] = {{out, POLLIN, 0}, {err, POLLIN, 0}, {errinfo, POLLIN, 0}};
    char buf[65536];
    partial lines[2] = {{{0}, 0}, {{0}, 0}};
    int open = 3;

    while (open > 0) {
        progress_write(pg, output);
        if (poll(p, 3, pg->run_id != 0 ? PROGRESS_MS : -1) < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        for (int i = 0; i < 3; i++) {
            if (p[i].fd < 0 || p[i].revents == 0)
                continue;
            ssize_t n = read(p[i].fd, buf, sizeof buf);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                close(p[i].fd);
                p[i].fd = -1;
                open--;
                if (i < 2)
                    partial_flush(&lines[i], output); /* a last line without newline */
                continue;
            }
            if (i < 2) {
                copy_out(i + 1, buf, (size_t)n);
                record_lines(output, &lines[i], buf, (size_t)n);
            } else {
                capture_add(error, buf, (size_t)n);
            }
        }
    }
}

/* The script's process while it runs, for forward_signal. */
static volatile pid_t child_pid;

/* SIGTERM or SIGHUP to `portico run` (a process manager, pq.run_script stopping a run) goes to
 * the script, and this process stays to record how it ended. */
static void
forward_signal(int sig)
{
    if (child_pid > 0)
        kill(child_pid, sig);
}

/* What `portico run` was asked to run. */
typedef struct run_args {
    const char *file;   /* FILE.py, or NULL */
    const char *script; /* --script NAME, or NULL */
    const char *record; /* --record ID (pq.run_script), or NULL */
    int detach;         /* --detach (with --record): the admin API's background run */
    int remove_file;    /* --remove-file FILE (with --record): file is removed at the end */
    int argc;           /* sys.argv[1:] */
    char **argv;
} run_args;

/* Parses the options before FILE or after --script NAME. Returns 0, -1 for --help (printed),
 * or an exit status with the error printed. */
static int
parse_run_args(int argc, char **argv, run_args *a)
{
    int i = 0;

    memset(a, 0, sizeof *a);
    while (i < argc && argv[i][0] == '-') {
        const char *o = argv[i];
        if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0) {
            printf("usage: portico %s\n", run_usage);
            return -1;
        }
        if (strcmp(o, "--") == 0) {
            i++;
            break;
        }
        if (strcmp(o, "--detach") == 0) {
            a->detach = 1;
            i++;
            continue;
        }
        if (strcmp(o, "--script") != 0 && strcmp(o, "--record") != 0 &&
            strcmp(o, "--remove-file") != 0)
            return pt_cli_error("unknown option '%s' (usage: portico %s)", o, run_usage);
        if (i + 1 >= argc)
            return pt_cli_error("%s needs a value", o);
        if (strcmp(o, "--record") == 0) {
            a->record = argv[i + 1];
            i += 2;
            continue;
        }
        if (strcmp(o, "--remove-file") == 0) {
            a->file = argv[i + 1];
            a->remove_file = 1;
        } else {
            a->script = argv[i + 1];
        }
        i += 2;
        break; /* everything after --script NAME or --remove-file FILE belongs to the script */
    }
    if (a->script == NULL && a->file == NULL) {
        if (i >= argc)
            return pt_cli_usage(run_usage);
        a->file = argv[i++];
    }
    if ((a->detach || a->remove_file) && a->record == NULL)
        return pt_cli_error("%s goes with --record (the server's own use)",
                            a->detach ? "--detach" : "--remove-file");
    a->argc = argc - i;
    a->argv = argv + i;
    return 0;
}

/* Checks that the file can be read; prints the error. */
static int
check_file(const char *path)
{
    struct stat sb;

    if (stat(path, &sb) != 0)
        return pt_cli_error("cannot read %s: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode))
        return pt_cli_error("cannot read %s: is a directory", path);
    if (access(path, R_OK) != 0)
        return pt_cli_error("cannot read %s: %s", path, strerror(errno));
    return 0;
}

/* Records the start of the run (or adopts --record's). Fills *run_id (0: not recorded, with a
 * warning printed, for a file run whose store cannot be written) and, for --script, *script.
 * Returns 0 or an exit status with the error printed. */
static int
begin_run(const char *datadir, const run_args *a, pt_script **script, int64_t *run_id)
{
    pt_store *st = NULL;
    char err[1024];
    pt_script_run r;
    long rec = 0;
    int rc = 0;

    *run_id = 0;
    if (pt_store_open(datadir, &st, err, sizeof err) != 0) {
        if (a->file == NULL || a->record != NULL)
            return pt_cli_error("%s", err);
        fprintf(stderr, "warning: this run is not recorded: %s\n", err);
        return 0;
    }
    if (a->record != NULL) {
        /* pq.run_script or the admin API made the record: run the version it names, or the
         * file (POST /runs). */
        if ((a->script == NULL && !a->remove_file) ||
            pt_cli_parse_long(a->record, 1, INT64_MAX, &rec) != 0 ||
            pt_store_run_get(st, rec, &r) != 0) {
            rc = pt_cli_error("invalid --record '%s' (the run id of a --script or --remove-file "
                              "run)",
                              a->record);
            goto done;
        }
        if (a->script == NULL) {
            if (r.script_id != 0)
                rc = pt_cli_error("invalid --record '%s' (run %ld is not a file run)", a->record,
                                  rec);
        } else if (pt_store_script_get(st, a->script, r.version, script) != 0)
            rc = pt_cli_error("%s", pt_store_errmsg(st));
        pt_script_run_clear(&r);
        *run_id = rec;
        goto done;
    }
    if (a->script != NULL && pt_store_script_get(st, a->script, 0, script) != 0) {
        rc = pt_cli_error("%s", pt_store_errmsg(st));
        goto done;
    }
    memset(&r, 0, sizeof r);
    r.script_id = *script != NULL ? (*script)->id : 0;
    r.script = (char *)(*script != NULL ? (*script)->name : a->file); /* borrowed */
    r.version = *script != NULL ? (*script)->version : 0;
    r.trigger = "cli";
    if (pt_store_run_start(st, &r) != 0) {
        if (a->file == NULL) {
            rc = pt_cli_error("%s", pt_store_errmsg(st));
            goto done;
        }
        fprintf(stderr, "warning: this run is not recorded: %s\n", pt_store_errmsg(st));
    } else {
        *run_id = r.id;
    }
done:
    pt_store_close(st);
    return rc;
}

/* Records the end of run_id (0: nothing to record). */
static void
end_run(const char *datadir, int64_t run_id, int code, const capture *output, const capture *error,
        const char *fallback_error)
{
    pt_store *st = NULL;
    char err[1024];
    pt_script_run r;

    if (run_id == 0)
        return;
    memset(&r, 0, sizeof r);
    r.id = run_id;
    r.status = code == 0 ? "success" : "error";
    r.exit_code = code;
    r.output = output->data;
    r.output_len = output->len;
    r.output_dropped = output->dropped;
    if (code != 0)
        r.error = error->len > 0 ? error->data : (char *)fallback_error;
    if (pt_store_open(datadir, &st, err, sizeof err) != 0) {
        fprintf(stderr, "warning: the end of run %lld is not recorded: %s\n", (long long)run_id,
                err);
        return;
    }
    if (pt_store_run_finish(st, &r) != 0)
        fprintf(stderr, "warning: the end of run %lld is not recorded: %s\n", (long long)run_id,
                pt_store_errmsg(st));
    pt_store_close(st);
}

/* The child: runs the script with stdout, stderr and the traceback on the given pipes. Never
 * returns. */
static void
run_child(const char *datadir, const run_args *a, const pt_script *s, int out, int err, int errinfo)
{
    char **argv = NULL;
    int status;

    fflush(NULL);
    if (dup2(out, 1) < 0 || dup2(err, 2) < 0)
        _exit(1);
    close(out);
    close(err);
    signal(SIGINT, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    /* sys.argv: [FILE or NAME, ARGS...], as `python3 FILE ARGS...` gives. */
    argv = calloc((size_t)a->argc + 2, sizeof *argv);
    if (argv == NULL)
        _exit(1);
    argv[0] = (char *)(a->file != NULL ? a->file : s->name);
    for (int i = 0; i < a->argc; i++)
        argv[i + 1] = a->argv[i];
    pt_py_run_spec spec = {.datadir = datadir,
                           .path = a->file,
                           .name = s != NULL ? s->name : NULL,
                           .id = s != NULL ? s->id : 0,
                           .version = s != NULL ? s->version : 0,
                           .source = s != NULL ? s->source : NULL,
                           .source_len = s != NULL ? s->source_len : 0,
                           .argc = a->argc + 1,
                           .argv = argv,
                           .error_fd = errinfo};
    status = pt_py_run(&spec);
    fflush(NULL);
    _exit(status);
}

/* Integer member `key` of o, or dflt when absent or null. */
static json_int_t
int_or(json_t *o, const char *key, json_int_t dflt)
{
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? json_integer_value(v) : dflt;
}

/* String member `key` of o, or "". Borrowed from o. */
static const char *
str_of(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s != NULL ? s : "";
}

/* Reads all of the file at path into a new string (*out, freed by the caller). Returns 0 or an
 * exit status with the error printed. */
static int
read_source(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n = 0, cap = 0;

    *out = NULL;
    if (f == NULL)
        return pt_cli_error("cannot read %s: %s", path, strerror(errno));
    for (;;) {
        if (cap - n < 65536) {
            char *nb = realloc(buf, cap + 65536);
            if (nb == NULL)
                break;
            buf = nb;
            cap += 65536;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f) || buf == NULL) {
        int e = ferror(f) ? errno : ENOMEM;
        fclose(f);
        free(buf);
        return pt_cli_error("cannot read %s: %s", path, strerror(e));
    }
    fclose(f);
    *out = buf;
    *len = n;
    return 0;
}

/* The body of POST /runs for `run FILE.py`: {name (the file's base name), source, args}; args
 * is stolen. New reference in *body. Returns 0 or an exit status with the error printed. */
static int
file_body(const char *file, json_t *args, json_t **body)
{
    const char *base = strrchr(file, '/');
    char *src = NULL;
    size_t n = 0;
    int rc;

    *body = NULL;
    if ((rc = check_file(file)) != 0 || (rc = read_source(file, &src, &n)) != 0) {
        json_decref(args);
        return rc;
    }
    json_t *text = json_stringn(src, n);
    free(src);
    if (text == NULL) {
        json_decref(args);
        return pt_cli_error("cannot run %s remotely: it is not UTF-8 text", file);
    }
    *body = json_pack("{s:s, s:o, s:o}", "name", base != NULL && base[1] != '\0' ? base + 1 : file,
                      "source", text, "args", args);
    return *body != NULL ? 0 : pt_cli_error("out of memory");
}

/* `run --script NAME [ARGS...]` or `run FILE.py [ARGS...]` through --server: starts the run on
 * the server (POST /scripts/{name}/runs, or POST /runs with the file's text) and prints its
 * output as it grows (stdout and stderr of the script come together, on stdout); the exit
 * status is the run's. ^C stops following, not the run (`portico runs show ID` later). */
static int
remote_run(const run_args *a)
{
    pt_cli_reply rep;
    char path[1024], off[32];
    json_int_t offset = 0;
    json_t *body = NULL;
    int rc;

    if (a->record != NULL || a->remove_file)
        return pt_cli_error("--record and --remove-file are the server's own use, not remote");
    json_t *args = json_array();
    for (int i = 0; args != NULL && i < a->argc; i++)
        if (json_array_append_new(args, json_string(a->argv[i])) != 0) {
            json_decref(args);
            return pt_cli_error("argument %d is not UTF-8 text", i + 1);
        }
    if (a->file != NULL) {
        if ((rc = file_body(a->file, args, &body)) != 0)
            return rc;
        snprintf(path, sizeof path, "/runs");
    } else if (pt_cli_api_path(path, sizeof path, "scripts", a->script, "runs", NULL) != 0) {
        json_decref(args);
        return pt_cli_error("the script name is too long");
    } else {
        body = json_pack("{s:o}", "args", args);
    }
    rc = pt_cli_api(NULL, "POST", path, NULL, body, &rep);
    if (rc != 0)
        return rc;
    json_int_t id = int_or(rep.body, "id", 0);
    pt_cli_reply_clear(&rep);
    snprintf(path, sizeof path, "/runs/%lld", (long long)id);
    for (;;) {
        snprintf(off, sizeof off, "%lld", (long long)offset);
        rc = pt_cli_api(NULL, "GET", path, json_pack("{s:s}", "offset", off), NULL, &rep);
        if (rc != 0)
            return rc;
        json_t *out = json_object_get(rep.body, "output");
        fwrite(json_string_value(out), 1, json_string_length(out), stdout);
        fflush(stdout);
        offset = int_or(rep.body, "output_len", offset);
        if (strcmp(str_of(rep.body, "status"), "running") != 0)
            break;
        pt_cli_reply_clear(&rep);
        poll(NULL, 0, FOLLOW_MS);
    }
    rc = (int)int_or(rep.body, "exit_code", 1);
    /* As the recorder prints it on the server's terminal. */
    if (rc >= 128 && strncmp(str_of(rep.body, "error"), "the script was killed", 21) == 0)
        fprintf(stderr, "error: %s\n", str_of(rep.body, "error"));
    pt_cli_reply_clear(&rep);
    return rc;
}

int
pt_cli_run(const char *datadir, int argc, char **argv)
{
    run_args a;
    pt_script *script = NULL;
    capture output = {NULL, 0, PT_STORE_RUN_OUTPUT_MAX, 0}, error = {NULL, 0, ERROR_MAX, 0};
    int p_out[2] = {-1, -1}, p_err[2] = {-1, -1}, p_info[2] = {-1, -1};
    int64_t run_id = 0;
    progress pg = {NULL, 0, NULL, 0, 0, 0};
    struct sigaction ign, fwd, old_int, old_quit, old_pipe, old_term, old_hup;
    char why[128] = "";
    int rc, status = 0, code;
    pid_t pid;

    rc = parse_run_args(argc, argv, &a);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (pt_cli_api_server() != NULL)
        return remote_run(&a);
    if (pt_cli_need_datadir(datadir) != 0 || (a.file != NULL && check_file(a.file) != 0)) {
        rc = PT_CLI_ERROR;
        goto done;
    }
    /* Started by pq.run_script: a worker that goes away stops its run (the worker's thread
     * waits for this process until it ends, so only the worker's exit sends this). */
    if (a.record != NULL && !a.detach && prctl(PR_SET_PDEATHSIG, SIGTERM) == 0 && getppid() == 1) {
        rc = pt_cli_error("the process that started this run is gone");
        goto done;
    }
    rc = begin_run(datadir, &a, &script, &run_id);
    if (rc != 0)
        goto done;
    if (a.detach) {
        /* The record is good: the process that started this one (a worker's pool thread)
         * gets its exit status 0 now, and the run goes on in a session of its own. */
        fflush(NULL);
        pid = fork();
        if (pid < 0) {
            rc = pt_cli_error("cannot start the run: %s", strerror(errno));
            goto done;
        }
        if (pid > 0) {
            a.remove_file = 0; /* the run goes on in the child, which removes it */
            goto done;
        }
        setsid();
    }
    pg.datadir = datadir;
    pg.run_id = run_id;
    pg.last_ms = mono_ms();
    output.data = malloc(output.cap);
    error.data = malloc(error.cap + 1);
    if (output.data == NULL || error.data == NULL || pipe2(p_out, O_CLOEXEC) != 0 ||
        pipe2(p_err, O_CLOEXEC) != 0 || pipe2(p_info, O_CLOEXEC) != 0) {
        rc = pt_cli_error("cannot start the run: %s", strerror(errno));
        goto done;
    }
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        rc = pt_cli_error("cannot start the run: %s", strerror(errno));
        goto done;
    }
    if (pid == 0) {
        close(p_out[0]);
        close(p_err[0]);
        close(p_info[0]);
        run_child(datadir, &a, script, p_out[1], p_err[1], p_info[1]);
    }
    close(p_out[1]);
    close(p_err[1]);
    close(p_info[1]);
    p_out[1] = p_err[1] = p_info[1] = -1;
    /* Like system(): ^C goes to the script (same process group); this process stays to record
     * how it ended. */
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    memset(&fwd, 0, sizeof fwd);
    fwd.sa_handler = forward_signal;
    fwd.sa_flags = SA_RESTART;
    child_pid = pid;
    sigaction(SIGINT, &ign, &old_int);
    sigaction(SIGQUIT, &ign, &old_quit);
    sigaction(SIGPIPE, &ign, &old_pipe);
    sigaction(SIGTERM, &fwd, &old_term);
    sigaction(SIGHUP, &fwd, &old_hup);
    pump(p_out[0], p_err[0], p_info[0], &output, &error, &pg);
    pt_store_close(pg.st);
    pg.st = NULL;
    p_out[0] = p_err[0] = p_info[0] = -1; /* closed by pump */
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGQUIT, &old_quit, NULL);
    sigaction(SIGPIPE, &old_pipe, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGHUP, &old_hup, NULL);
    child_pid = 0;
    if (WIFSIGNALED(status)) {
        code = 128 + WTERMSIG(status);
        snprintf(why, sizeof why, "the script was killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
        fprintf(stderr, "error: %s\n", why);
    } else {
        code = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
        snprintf(why, sizeof why, "the script exited with status %d", code);
    }
    error.data[error.len] = '\0';
    end_run(datadir, run_id, code, &output, &error, why);
    rc = code;
done:
    for (int i = 0; i < 2; i++) {
        if (p_out[i] >= 0)
            close(p_out[i]);
        if (p_err[i] >= 0)
            close(p_err[i]);
        if (p_info[i] >= 0)
            close(p_info[i]);
    }
    free(output.data);
    free(error.data);
    pt_script_free(script);
    if (a.remove_file)
        unlink(a.file); /* POST /runs's copy of the file: gone whatever the outcome */
    return rc;
}

/* ---- portico runs ------------------------------------------------------------------------ */

static const char runs_usage[] = "runs [--script NAME] [--limit N] | runs show ID";

/* The DURATION cell: "1.234 s", or "-" while running. */
static void
format_duration(json_t *run, char *out, size_t outsz)
{
    json_int_t finished = int_or(run, "finished", 0);
    if (finished == 0)
        snprintf(out, outsz, "-");
    else
        snprintf(out, outsz, "%.3f s", (double)(finished - int_or(run, "started", 0)) / 1000.0);
}

/* The EXIT cell: the exit code, or "-" while running. */
static void
format_exit(json_t *run, char *out, size_t outsz)
{
    json_t *code = json_object_get(run, "exit_code");
    if (json_is_integer(code))
        snprintf(out, outsz, "%lld", (long long)json_integer_value(code));
    else
        snprintf(out, outsz, "-");
}

static int
runs_show(const char *datadir, int argc, char **argv)
{
    const char *usage = "runs show ID";
    pt_cli_reply rep;
    char *pos[1], path[64], started[64], finished[64], took[32];
    long id = 0;
    int npos = 0, rc;

    rc = pt_cli_parse(argc, argv, NULL, pos, 1, 1, &npos, usage);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (pt_cli_parse_long(pos[0], 1, INT64_MAX, &id) != 0)
        return pt_cli_error("invalid run id '%s' (see 'portico runs')", pos[0]);
    snprintf(path, sizeof path, "/runs/%ld", id);
    if ((rc = pt_cli_api(datadir, "GET", path, NULL, NULL, &rep)) != 0)
        return rc;
    json_t *r = rep.body;
    json_t *out = json_object_get(r, "output"), *error = json_object_get(r, "error");
    size_t out_len = json_string_length(out);
    const char *out_s = json_string_value(out);
    json_int_t dropped = int_or(r, "output_dropped", 0);
    pt_cli_format_time(int_or(r, "started", 0) / 1000, started, sizeof started);
    if (int_or(r, "finished", 0) != 0)
        pt_cli_format_time(int_or(r, "finished", 0) / 1000, finished, sizeof finished);
    else
        snprintf(finished, sizeof finished, "-");
    format_duration(r, took, sizeof took);
    printf("run: %lld\n", (long long)int_or(r, "id", 0));
    if (int_or(r, "script_id", 0) != 0)
        printf("script: %s (id %lld, version %d)\n", str_of(r, "script"),
               (long long)int_or(r, "script_id", 0), (int)int_or(r, "version", 0));
    else
        printf("file: %s\n", str_of(r, "script"));
    printf("trigger: %s\nstatus: %s\n", str_of(r, "trigger"), str_of(r, "status"));
    if (int_or(r, "finished", 0) != 0)
        printf("exit code: %d\n", (int)int_or(r, "exit_code", 0));
    printf("started: %s\nfinished: %s\nduration: %s\n", started, finished, took);
    if (json_is_string(error))
        printf("error:\n%s\n", json_string_value(error));
    printf("output:\n");
    if (out_s != NULL)
        fwrite(out_s, 1, out_len, stdout);
    if (dropped > 0)
        printf("%s[output cut: the log keeps the first %u bytes; %lld more bytes were not "
               "recorded]\n",
               out_len > 0 && out_s[out_len - 1] != '\n' ? "\n" : "", PT_STORE_RUN_OUTPUT_MAX,
               (long long)dropped);
    pt_cli_reply_clear(&rep);
    return 0;
}

static int
runs_list(const char *datadir, int argc, char **argv)
{
    const char *script = NULL, *limit_opt = NULL;
    pt_cli_opt opts[] = {{"--script", 1, &script}, {"--limit", 1, &limit_opt}, {NULL, 0, NULL}};
    static const pt_cli_col cols[] = {
        {"ID", "id", PT_CLI_COL_TEXT, NULL, NULL, NULL},
        {"SCRIPT", "script", PT_CLI_COL_TEXT, NULL, NULL, NULL},
        {"VERSION", "version", PT_CLI_COL_TEXT, "-", NULL, NULL},
        {"TRIGGER", "trigger", PT_CLI_COL_TEXT, NULL, NULL, NULL},
        {"STATUS", "status", PT_CLI_COL_TEXT, NULL, NULL, NULL},
        {"STARTED", "started", PT_CLI_COL_TIME_MS, "-", NULL, NULL},
        {"DURATION", NULL, PT_CLI_COL_FN, "-", NULL, format_duration},
        {"EXIT", NULL, PT_CLI_COL_FN, "-", NULL, format_exit},
    };
    pt_cli_reply rep;
    char *pos[1];
    long limit = 20;
    int npos = 0, rc;

    rc = pt_cli_parse(argc, argv, opts, pos, 0, 0, &npos, runs_usage);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (limit_opt != NULL && pt_cli_parse_long(limit_opt, 1, 1000000, &limit) != 0)
        return pt_cli_error("invalid --limit '%s' (1 to 1000000)", limit_opt);
    json_t *query = json_object();
    json_object_set_new(query, "limit", json_sprintf("%ld", limit));
    if (script != NULL)
        json_object_set_new(query, "script", json_string(script));
    if ((rc = pt_cli_api(datadir, "GET", "/runs", query, NULL, &rep)) != 0)
        return rc;
    rc = pt_cli_api_table(rep.body, "runs", cols, sizeof cols / sizeof cols[0], 0);
    pt_cli_reply_clear(&rep);
    return rc;
}

int
pt_cli_runs(const char *datadir, int argc, char **argv)
{
    if (argc > 0 && strcmp(argv[0], "show") == 0)
        return runs_show(datadir, argc - 1, argv + 1);
    return runs_list(datadir, argc, argv);
}
