/* fuzz_import.c - libFuzzer target for CSV and JSON import (warehouse/wh_import.c) into the
 * embedded SQLite warehouse, in a temporary data dir made once per process.
 *
 * Input: a selector byte (even: a .csv file, odd: a .json file), then the file's bytes.
 * Properties besides ASan and UBSan: the import succeeds or returns a pt_err; a success leaves
 * exactly the reported number of rows in the table; a failure leaves no table behind (one
 * transaction). */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "fuzz.h"
#include "warehouse/wh.h"

static char dir[64];
static pt_wh *wh;

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void
cleanup(void)
{
    pt_wh_close(wh);
    if (dir[0] != '\0')
        nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

/* The first column of the first row of sql as an integer; INT64_MIN on error or no row. */
static int64_t
scalar(const char *sql)
{
    pt_wh_cursor *c = NULL;
    pt_value v;
    int64_t out = INT64_MIN;

    if (pt_wh_exec(wh, sql, NULL, 0, &c) == 0 && pt_wh_cursor_next(c) == 1) {
        pt_wh_cursor_value(c, 0, &v);
        if (v.type == PT_V_INT)
            out = v.u.i;
    }
    pt_wh_cursor_free(c);
    return out;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pt_fuzz_in in = {data, size};
    char path[96], err[256];
    int64_t rows = -1;

    if (wh == NULL) {
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(dir, sizeof dir, "%s/portico-fuzz-import.XXXXXX", base);
        if (mkdtemp(dir) == NULL || pt_wh_open_embedded(dir, &wh, err, sizeof err) != 0)
            abort();
        atexit(cleanup);
    }
    unsigned sel = pt_fuzz_byte(&in);
    snprintf(path, sizeof path, "%s/in.%s", dir, sel & 1 ? "json" : "csv");
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(in.p, 1, in.n, f) != in.n || fclose(f) != 0)
        abort();

    int rc = pt_wh_import(wh, "fz", "t", path, &rows);
    int64_t exists = scalar("SELECT count(*) FROM fz.sqlite_master WHERE name = 't'");
    if (rc == 0) {
        if (rows < 0 || exists != 1 || scalar("SELECT count(*) FROM fz.t") != rows)
            abort();
        if (pt_wh_drop_table(wh, "fz", "t", 0, 0) != 0)
            abort();
    } else if (rc >= 0 || exists > 0 || pt_wh_in_transaction(wh)) { /* no schema yet: MIN */
        abort();
    }
    return 0;
}
