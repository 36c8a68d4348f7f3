/* store_runs.h - the record of script runs (`portico run`, pq.run_script): who ran what, when,
 * how it ended, and what it printed. */
#ifndef PT_STORE_RUNS_H
#define PT_STORE_RUNS_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* Captured output is kept up to this many bytes; the rest is counted, not stored. */
#define PT_STORE_RUN_OUTPUT_MAX (1u << 20)

typedef struct pt_script_run {
    int64_t id;        /* assigned by pt_store_run_start */
    int64_t script_id; /* 0: a file run (`portico run FILE.py`) */
    char *script;      /* the script's name, or the file's path */
    int version;       /* the script version that ran; 0 for a file */
    char *trigger;     /* "cli", "pq.run_script", ... */
    char *status;      /* "running", "success" or "error" */
    int64_t started;   /* unix milliseconds */
    int64_t finished;  /* unix milliseconds; 0 while running */
    int exit_code;     /* the process exit status (128 + N for signal N); -1 while running */
    char *output;      /* stdout and stderr as they came, NUL-terminated, at most
                        * PT_STORE_RUN_OUTPUT_MAX bytes; "" in lists */
    size_t output_len;
    int64_t output_dropped; /* bytes of output past the cap, not stored */
    char *error;            /* the error or traceback of an error run, NULL otherwise */
} pt_script_run;

/* Records a run that starts now (status "running"): script_id, script, version and trigger
 * are read from r; r->id and r->started are set. Does not bump the change counter (no worker
 * serves differently because of a run). Returns 0 or a pt_err. */
int pt_store_run_start(pt_store *st, pt_script_run *r);
/* Records the end of run r->id: status, exit_code, output (output_len bytes, borrowed; cut at
 * PT_STORE_RUN_OUTPUT_MAX with the rest added to output_dropped; NULL keeps the output already
 * recorded), error (may be NULL); finished is set to now when 0. May be called again to
 * correct an ended run (pq.run_script does when it stopped the run). PT_ENOTFOUND for an
 * unknown id. */
int pt_store_run_finish(pt_store *st, const pt_script_run *r);
/* Appends more[0..len) (whole UTF-8 characters) to the output recorded so far of run id and
 * sets its output_dropped, while the run is "running" (the recorder's progress, so that a
 * viewer sees the output grow; an ended run is left as it is). The recorder keeps the whole
 * output within PT_STORE_RUN_OUTPUT_MAX. Returns 0 or a pt_err. */
int pt_store_run_output(pt_store *st, int64_t id, const char *more, size_t len, int64_t dropped);
/* One run with its output. PT_ENOTFOUND (message names the id). Caller frees with
 * pt_script_run_clear. */
int pt_store_run_get(pt_store *st, int64_t id, pt_script_run *out);
/* Runs, newest first, without their output: of script `script_id` (0: any) and with script
 * name `script` (NULL: any), skipping `offset`, at most `limit`. *total (may be NULL) gets the
 * number of matching runs. Caller frees *out with pt_store_runs_free. */
int pt_store_run_list(pt_store *st, int64_t script_id, const char *script, int64_t limit,
                      int64_t offset, pt_script_run **out, size_t *n, int64_t *total);
void pt_script_run_clear(pt_script_run *r); /* frees the fields; NULL is a no-op */
void pt_store_runs_free(pt_script_run *list, size_t n);

#endif
