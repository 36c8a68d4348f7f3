/* wh_import.c - CSV / JSON import into a warehouse table: parsing, type inference, and one
 * transaction of prepared INSERTs through the driver interface (the same for every driver). */

/*
 * Import notes
 *
 * CSV follows RFC 4180: fields separated by ',', records by CRLF or LF (a lone CR too);
 * a field in double quotes may hold commas, line breaks and "" (one quote). A quote inside an
 * unquoted field is kept as is (as Python's csv module does); text after a closing quote is an
 * error. A UTF-8 byte order mark is skipped; blank lines are skipped. The first record names
 * the columns (surrounding spaces trimmed), which must be identifiers. An empty field is NULL.
 *
 * Type inference per column, over its non-empty values: INTEGER if every one is an integer
 * that fits in 64 bits, REAL if every one is a decimal number, TEXT otherwise (and when the
 * column is all empty). Numbers written with a leading zero ("007", "0123.5") are TEXT: they
 * are codes (ZIP, account numbers), and a numeric type would lose the zeros; so are integers
 * too large for 64 bits, which REAL would round.
 *
 * JSON: an array of objects. Columns are the union of the objects' keys in first-seen order.
 * Integers, floats, strings, booleans (as INTEGER 0/1) and null map to columns as expected;
 * nested objects and arrays are stored as compact JSON text. A column is TEXT if any value is a
 * string or nested, else REAL if any is a float, else INTEGER.
 *
 * Both formats are read whole and walked twice (infer, then insert), all rows in one
 * transaction through one prepared INSERT. An existing table is appended to; it must have
 * every imported column (names compare case-insensitively, as SQL does).
 *
 * Primary key: a table the import creates gets the key the caller names (one or more imported
 * columns), or, when none is named, the column called `id` if its values are all present and
 * distinct. The key's values are collected during the inference pass (as text: the file's
 * field, or the JSON scalar as written) and sorted, so that a missing or repeated value is
 * reported by line (element) before anything is written. A named key on an existing table must
 * be the table's key; without a name, an existing table keeps what it has.
 */
#include "warehouse/wh.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/file.h"
#include "warehouse/wh_int.h"
#include "warehouse/wh_sql.h"

/* ---- import: shared ----------------------------------------------------------------------- */

/* The largest file pt_wh_import reads (it is read whole, then parsed). */
#define IMPORT_MAX ((size_t)1 << 30)

enum coltype { COL_INT, COL_REAL, COL_TEXT };

typedef struct column {
    char *name; /* owned */
    /* CSV inference */
    int any, all_int, all_num;
    /* JSON inference */
    int has_int, has_real, has_text;
    enum coltype type;
} column;

/* One row's key, as text (the parts length-prefixed), and where the row is in the file. */
typedef struct keyrow {
    char *text; /* owned */
    size_t len;
    size_t where; /* line (CSV) or element (JSON) */
} keyrow;

typedef struct import {
    pt_wh *wh;
    const char *key_spec; /* "a,b" as the caller named the key, or NULL */
    pt_wh_import_result *res;
    size_t keycols[16]; /* indexes into cols of the key's columns */
    size_t nkeys;
    int key_auto;  /* the key is `id`, chosen without being named */
    keyrow *krows; /* owned, nkrows long */
    size_t nkrows, krcap;
    const char *path; /* for messages */
    const char *schema;
    const char *table;
    column *cols;
    size_t ncols;
    pt_value *vals; /* one row of parameters, ncols long */
    pt_wh_stmt *ins;
    int in_txn;
    int64_t rows;
} import;

static int import_error(import *im, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
import_error(import *im, int rc, const char *fmt, ...)
{
    char msg[400];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pt_wh_set_error(im->wh, "%s: %s", im->path, msg);
    return rc;
}

/* Adds a column; names must be identifiers and distinct ignoring case. */
static int
add_column(import *im, const char *name, size_t len, size_t *cap)
{
    column *c;
    size_t i;

    if (im->ncols == *cap) {
        size_t ncap = *cap != 0 ? *cap * 2 : 16;
        column *nc = realloc(im->cols, ncap * sizeof *nc);
        if (nc == NULL)
            return import_error(im, PT_ENOMEM, "out of memory");
        im->cols = nc;
        *cap = ncap;
    }
    c = &im->cols[im->ncols];
    memset(c, 0, sizeof *c);
    c->name = strndup(name, len);
    if (c->name == NULL)
        return import_error(im, PT_ENOMEM, "out of memory");
    im->ncols++; /* owned by im from here on */
    c->all_int = c->all_num = 1;
    if (strlen(c->name) != len || !pt_wh_ident_valid(c->name))
        return import_error(im, PT_EINVAL,
                            "column %zu name \"%s\" is not a valid identifier (letters, digits, "
                            "'_' and '$', not starting with a digit)",
                            im->ncols, c->name);
    for (i = 0; i + 1 < im->ncols; i++)
        if (strcasecmp(im->cols[i].name, c->name) == 0)
            return import_error(im, PT_EINVAL, "duplicate column \"%s\"", c->name);
    return 0;
}

/* ---- import: the primary key -------------------------------------------------------------- */

#define KEY_MAX 16

/* The key's columns, once the file's columns are known: those named in im->key_spec (comma
 * separated, each an imported column), else a column named `id` as a candidate. Returns 0 or
 * PT_EINVAL (message set). */
static int
key_resolve(import *im)
{
    const char *p = im->key_spec;
    size_t i, k;

    im->nkeys = 0;
    if (p == NULL) {
        for (k = 0; k < im->ncols; k++)
            if (strcasecmp(im->cols[k].name, "id") == 0) {
                im->keycols[0] = k;
                im->nkeys = 1;
                im->key_auto = 1;
            }
        return 0;
    }
    for (;;) {
        char name[128];
        size_t n;
        while (isspace((unsigned char)*p))
            p++;
        n = strcspn(p, ",");
        while (n > 0 && isspace((unsigned char)p[n - 1]))
            n--;
        if (n == 0 || n >= sizeof name)
            return import_error(im, PT_EINVAL, "--primary-key \"%s\": expected COL[,COL...]",
                                im->key_spec);
        memcpy(name, p, n);
        name[n] = '\0';
        if (!pt_wh_ident_valid(name))
            return import_error(im, PT_EINVAL,
                                "--primary-key: \"%s\" is not a valid column name (letters, "
                                "digits, '_' and '$', not starting with a digit)",
                                name);
        for (k = 0; k < im->ncols; k++)
            if (strcasecmp(im->cols[k].name, name) == 0)
                break;
        if (k == im->ncols)
            return import_error(im, PT_EINVAL, "--primary-key: the file has no column \"%s\"",
                                name);
        for (i = 0; i < im->nkeys; i++)
            if (im->keycols[i] == k)
                return import_error(im, PT_EINVAL, "--primary-key: column \"%s\" named twice",
                                    name);
        if (im->nkeys == KEY_MAX)
            return import_error(im, PT_EINVAL, "--primary-key: at most %d columns", KEY_MAX);
        im->keycols[im->nkeys++] = k;
        p += strcspn(p, ",");
        if (*p == '\0')
            return 0;
        p++;
    }
}

/* Records one row's key: parts[i] (borrowed; NULL when the row has no value) of len[i] bytes
 * for each key column. Returns 0 or PT_ENOMEM (message set). */
static int
key_add(import *im, const char *const *parts, const size_t *lens, size_t where)
{
    pt_buf b;
    keyrow *r;
    size_t i;
    int rc = 0;

    if (im->nkrows == im->krcap) {
        size_t ncap = im->krcap != 0 ? im->krcap * 2 : 1024;
        keyrow *nr = realloc(im->krows, ncap * sizeof *nr);
        if (nr == NULL)
            return import_error(im, PT_ENOMEM, "out of memory");
        im->krows = nr;
        im->krcap = ncap;
    }
    r = &im->krows[im->nkrows];
    r->where = where;
    r->text = NULL;
    r->len = 0;
    for (i = 0; i < im->nkeys; i++)
        if (parts[i] == NULL) {
            im->nkrows++; /* a NULL text marks a row without a key value */
            return 0;
        }
    pt_buf_init(&b, 0);
    for (i = 0; rc == 0 && i < im->nkeys; i++) {
        rc = pt_buf_printf(&b, "%zu:", lens[i]);
        if (rc == 0)
            rc = pt_buf_append(&b, parts[i], lens[i]);
    }
    if (rc == 0)
        rc = pt_buf_putc(&b, '\0');
    if (rc != 0) {
        pt_buf_free(&b);
        return import_error(im, PT_ENOMEM, "out of memory");
    }
    r->len = b.len - 1;
    r->text = b.data; /* ownership moves to im->krows */
    im->nkrows++;
    return 0;
}

static int
keyrow_cmp(const void *a, const void *b)
{
    const keyrow *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->text, y->text, n);

    if (c != 0)
        return c;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return x->where < y->where ? -1 : x->where > y->where;
}

/* The key's column names as "a, b" into out. */
static void
key_names(const import *im, char *out, size_t outsz)
{
    size_t i, used = 0;

    out[0] = '\0';
    for (i = 0; i < im->nkeys && used < outsz; i++)
        used += (size_t)snprintf(out + used, outsz - used, "%s%s", i > 0 ? ", " : "",
                                 im->cols[im->keycols[i]].name);
}

/* After pass 1: a named key must have a value in every row and no value twice (else PT_EINVAL,
 * message set); an `id` candidate that does not qualify is dropped, with a note saying why. */
static int
key_check(import *im, const char *unit)
{
    char names[256], why[200] = "";
    size_t i;

    if (im->nkeys == 0)
        return 0;
    key_names(im, names, sizeof names);
    for (i = 0; i < im->nkrows && why[0] == '\0'; i++)
        if (im->krows[i].text == NULL)
            snprintf(why, sizeof why, "%s %zu has no value for it", unit, im->krows[i].where);
    if (why[0] == '\0' && im->nkrows > 1) { /* qsort needs rows (a header alone has none) */
        qsort(im->krows, im->nkrows, sizeof *im->krows, keyrow_cmp);
        for (i = 1; i < im->nkrows && why[0] == '\0'; i++) {
            const keyrow *a = &im->krows[i - 1], *b = &im->krows[i];
            if (a->len == b->len && memcmp(a->text, b->text, a->len) == 0)
                snprintf(why, sizeof why, "%ss %zu and %zu have the same value", unit, a->where,
                         b->where);
        }
    }
    if (why[0] == '\0')
        return 0;
    if (!im->key_auto)
        return import_error(im, PT_EINVAL, "primary key (%s): %s", names, why);
    snprintf(im->res->note, sizeof im->res->note,
             "no primary key: column %s does not qualify (%s); name one with "
             "--primary-key COL[,COL]",
             names, why);
    im->nkeys = 0;
    im->key_auto = 0;
    return 0;
}

/* An existing table: a named key must be its key; an `id` candidate is dropped (the table keeps
 * the key it has). Returns 0, PT_EINVAL (message set) or a catalog error. */
static int
key_existing(import *im)
{
    pt_wh_catalog *cat = NULL;
    const pt_wh_table_info *t;
    char names[256];
    size_t i, nmatch = 0, npk = 0;
    int rc;

    if (im->key_spec == NULL) {
        im->res->note[0] = '\0';
        im->nkeys = 0;
        im->key_auto = 0;
        return 0;
    }
    rc = pt_wh_catalog_read(im->wh, im->schema, im->table, PT_WH_CAT_FIELDS, &cat);
    if (rc != 0)
        return rc;
    if (cat->nschemas != 1 || cat->schemas[0].ntables != 1) {
        pt_wh_catalog_free(cat);
        return import_error(im, PT_EINVAL, "table %s.%s not found in the catalog", im->schema,
                            im->table);
    }
    t = &cat->schemas[0].tables[0];
    for (i = 0; i < t->nfields; i++) {
        size_t k;
        if (t->fields[i].pk == 0)
            continue;
        npk++;
        for (k = 0; k < im->nkeys; k++)
            if (strcasecmp(t->fields[i].name, im->cols[im->keycols[k]].name) == 0)
                nmatch++;
    }
    pt_wh_catalog_free(cat);
    if (npk == im->nkeys && nmatch == im->nkeys)
        return 0;
    key_names(im, names, sizeof names);
    return import_error(im, PT_EINVAL,
                        "table %s.%s exists and its primary key is not (%s); --primary-key "
                        "applies when the import creates the table",
                        im->schema, im->table, names);
}

static int
exec_simple(pt_wh *wh, const char *sql)
{
    pt_wh_cursor *c = NULL;
    int rc = pt_wh_exec(wh, sql, NULL, 0, &c);

    pt_wh_cursor_free(c);
    return rc;
}

/* Checks that an existing table has every imported column. */
static int
check_columns(import *im)
{
    pt_wh_cursor *cur = NULL;
    pt_buf sql;
    size_t i, j;
    int rc;

    pt_buf_init(&sql, 0);
    rc = pt_wh_sql_select_all(&sql, im->schema, im->table);
    rc = rc != 0 ? rc : pt_buf_puts(&sql, " LIMIT 0");
    if (rc != 0) {
        rc = import_error(im, PT_ENOMEM, "out of memory");
        goto done;
    }
    rc = pt_wh_exec(im->wh, pt_buf_cstr(&sql), NULL, 0, &cur);
    if (rc != 0)
        goto done;
    for (i = 0; i < im->ncols; i++) {
        for (j = 0; j < pt_wh_cursor_ncols(cur); j++)
            if (strcasecmp(pt_wh_cursor_colname(cur, j), im->cols[i].name) == 0)
                break;
        if (j == pt_wh_cursor_ncols(cur)) {
            rc = import_error(im, PT_EINVAL, "table %s.%s exists and has no column \"%s\"",
                              im->schema, im->table, im->cols[i].name);
            goto done;
        }
    }
done:
    pt_wh_cursor_free(cur);
    pt_buf_free(&sql);
    return rc;
}

/* Creates the schema and (if missing) the table, opens the transaction and prepares the
 * INSERT. On error the transaction is rolled back by import_finish. */
static int
import_begin(import *im)
{
    const pt_wh_driver *drv = im->wh->drv;
    pt_wh_coldef *defs = NULL;
    const char **names = NULL;
    const char *keys[KEY_MAX];
    pt_buf sql;
    size_t i;
    int exists, rc;

    pt_buf_init(&sql, 0);
    if (im->ncols == 0) {
        rc = import_error(im, PT_EINVAL, "no columns to import");
        goto done;
    }
    im->vals = calloc(im->ncols, sizeof *im->vals);
    defs = calloc(im->ncols, sizeof *defs);
    names = calloc(im->ncols, sizeof *names);
    if (im->vals == NULL || defs == NULL || names == NULL) {
        rc = import_error(im, PT_ENOMEM, "out of memory");
        goto done;
    }
    rc = pt_wh_create_schema(im->wh, im->schema);
    if (rc != 0)
        goto done;
    exists = pt_wh_table_exists(im->wh, im->schema, im->table);
    if (exists < 0) {
        rc = exists;
        goto done;
    }
    if (exists) {
        rc = check_columns(im);
        if (rc == 0)
            rc = key_existing(im);
        if (rc != 0)
            goto done;
    }
    rc = exec_simple(im->wh, "BEGIN");
    if (rc != 0)
        goto done;
    im->in_txn = 1;

    for (i = 0; i < im->ncols; i++) {
        const column *c = &im->cols[i];
        defs[i].name = names[i] = c->name;
        defs[i].type = c->type == COL_INT    ? drv->type_int
                       : c->type == COL_REAL ? drv->type_real
                                             : drv->type_text;
    }
    for (i = 0; i < im->nkeys; i++)
        keys[i] = im->cols[im->keycols[i]].name;
    rc = pt_wh_sql_create_table(&sql, im->schema, im->table, defs, im->ncols, keys, im->nkeys);
    if (rc != 0) {
        rc = import_error(im, rc, "cannot build the CREATE TABLE statement");
        goto done;
    }
    rc = exec_simple(im->wh, pt_buf_cstr(&sql));
    if (rc != 0)
        goto done;
    rc = pt_wh_sql_insert(&sql, im->schema, im->table, names, im->ncols, NULL);
    if (rc != 0) {
        rc = import_error(im, rc, "cannot build the INSERT statement");
        goto done;
    }
    rc = pt_wh_prepare(im->wh, pt_buf_cstr(&sql), &im->ins);
done:
    free(defs);
    free(names);
    pt_buf_free(&sql);
    return rc;
}

/* Inserts im->vals; `where` names the row in error messages ("line 7", "element 3"). */
static int
import_row(import *im, const char *where)
{
    int rc = pt_wh_stmt_run(im->ins, im->vals, im->ncols);

    if (rc != 0) {
        char msg[sizeof im->wh->err];
        snprintf(msg, sizeof msg, "%s", pt_wh_errmsg(im->wh));
        return import_error(im, rc, "%s: %s", where, msg);
    }
    im->rows++;
    return 0;
}

/* Commits when rc is 0, else rolls back; frees everything im owns. Returns the final rc. */
static int
import_finish(import *im, int rc)
{
    size_t i;

    pt_wh_stmt_free(im->ins);
    im->ins = NULL;
    if (im->in_txn) {
        if (rc == 0) {
            rc = exec_simple(im->wh, "COMMIT");
            if (rc != 0) {
                char msg[sizeof im->wh->err];
                snprintf(msg, sizeof msg, "%s", pt_wh_errmsg(im->wh));
                import_error(im, rc, "commit failed: %s", msg);
            }
        }
        if (rc != 0) {
            char saved[sizeof im->wh->err];
            snprintf(saved, sizeof saved, "%s", pt_wh_errmsg(im->wh));
            exec_simple(im->wh, "ROLLBACK");
            snprintf(im->wh->err, sizeof im->wh->err, "%s", saved);
        }
    }
    if (rc == 0 && im->nkeys > 0) {
        char names[256];
        key_names(im, names, sizeof names);
        if (im->key_auto)
            snprintf(im->res->note, sizeof im->res->note,
                     "primary key: %s (its values are unique and not null)", names);
        else
            snprintf(im->res->note, sizeof im->res->note, "primary key: %s", names);
    }
    for (i = 0; i < im->ncols; i++)
        free(im->cols[i].name);
    free(im->cols);
    free(im->vals);
    for (i = 0; i < im->nkrows; i++)
        free(im->krows[i].text);
    free(im->krows);
    return rc;
}

/* ---- import: CSV -------------------------------------------------------------------------- */

typedef struct csv_reader {
    const char *p;
    size_t n;
    size_t i;
    size_t line;     /* line of the next byte */
    size_t rec_line; /* first line of the record just read */
    pt_buf buf;      /* field bytes, each field NUL-terminated */
    size_t *off;     /* field offsets into buf */
    size_t *len;     /* field lengths */
    const char **fields;
    size_t nf;
    size_t cap;
} csv_reader;

static void
csv_rewind(csv_reader *r)
{
    r->i = 0;
    r->line = 1;
    if (r->n >= 3 && memcmp(r->p, "\xEF\xBB\xBF", 3) == 0)
        r->i = 3;
}

static int
csv_push(csv_reader *r, size_t off)
{
    if (r->nf == r->cap) {
        size_t ncap = r->cap != 0 ? r->cap * 2 : 16;
        size_t *noff = realloc(r->off, ncap * sizeof *noff);
        if (noff == NULL)
            return PT_ENOMEM;
        r->off = noff;
        size_t *nlen = realloc(r->len, ncap * sizeof *nlen);
        if (nlen == NULL)
            return PT_ENOMEM;
        r->len = nlen;
        const char **nf = realloc(r->fields, ncap * sizeof *nf);
        if (nf == NULL)
            return PT_ENOMEM;
        r->fields = nf;
        r->cap = ncap;
    }
    r->off[r->nf] = off;
    r->len[r->nf] = r->buf.len - off;
    r->nf++;
    return pt_buf_putc(&r->buf, '\0');
}

/* Reads the next non-blank record into r->fields / r->len / r->nf. Returns 1, 0 at the end,
 * or a pt_err with the message set on im. */
static int
csv_next(csv_reader *r, import *im)
{
    const char *p = r->p;
    size_t n = r->n;

    for (;;) {
        int first_quoted = 0;

        if (r->i >= n)
            return 0;
        r->nf = 0;
        r->rec_line = r->line;
        pt_buf_reset(&r->buf);
        for (;;) {
            size_t off = r->buf.len;
            int rc = 0;
            if (r->i < n && p[r->i] == '"') {
                size_t start_line = r->line;
                if (r->nf == 0)
                    first_quoted = 1;
                r->i++;
                for (;;) {
                    if (r->i >= n)
                        return import_error(im, PT_EINVAL, "line %zu: quoted field is never closed",
                                            start_line);
                    if (p[r->i] == '"') {
                        if (r->i + 1 < n && p[r->i + 1] == '"') {
                            rc |= pt_buf_putc(&r->buf, '"');
                            r->i += 2;
                            continue;
                        }
                        r->i++;
                        break;
                    }
                    if (p[r->i] == '\n')
                        r->line++;
                    rc |= pt_buf_putc(&r->buf, p[r->i]);
                    r->i++;
                }
                if (r->i < n && p[r->i] != ',' && p[r->i] != '\r' && p[r->i] != '\n')
                    return import_error(im, PT_EINVAL,
                                        "line %zu: unexpected text after a closing quote", r->line);
            } else {
                size_t s = r->i;
                while (r->i < n && p[r->i] != ',' && p[r->i] != '\r' && p[r->i] != '\n')
                    r->i++;
                rc |= pt_buf_append(&r->buf, p + s, r->i - s);
            }
            if (rc != 0 || csv_push(r, off) != 0)
                return import_error(im, PT_ENOMEM, "out of memory");
            if (r->i < n && p[r->i] == ',') {
                r->i++;
                continue;
            }
            /* End of record: CRLF, LF, CR or the end of the data. */
            if (r->i < n && p[r->i] == '\r')
                r->i++;
            if (r->i < n && p[r->i] == '\n')
                r->i++;
            r->line++;
            break;
        }
        if (r->nf == 1 && r->len[0] == 0 && !first_quoted)
            continue; /* blank line */
        for (size_t k = 0; k < r->nf; k++)
            r->fields[k] = r->buf.data + r->off[k];
        return 1;
    }
}

/* [+-]?(0|[1-9][0-9]*) within int64. */
static int
is_int_text(const char *s, size_t n)
{
    size_t i = 0;
    char *end;

    if (i < n && (s[i] == '+' || s[i] == '-'))
        i++;
    if (i == n || (s[i] == '0' && i + 1 < n))
        return 0;
    for (; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return 0;
    errno = 0;
    (void)strtoll(s, &end, 10);
    return errno == 0 && end == s + n;
}

/* A decimal number: [+-]? digits? (. digits?)? ([eE][+-]?digits)?, at least one mantissa
 * digit, no leading zero before another digit, finite. Integers that overflow int64 are not
 * numbers here (REAL would round them). */
static int
is_num_text(const char *s, size_t n)
{
    size_t i = 0, digits = 0;
    int has_dot_or_exp = 0;
    char *end;
    double d;

    if (i < n && (s[i] == '+' || s[i] == '-'))
        i++;
    if (i + 1 < n && s[i] == '0' && isdigit((unsigned char)s[i + 1]))
        return 0;
    while (i < n && isdigit((unsigned char)s[i])) {
        i++;
        digits++;
    }
    if (i < n && s[i] == '.') {
        has_dot_or_exp = 1;
        i++;
        while (i < n && isdigit((unsigned char)s[i])) {
            i++;
            digits++;
        }
    }
    if (digits == 0)
        return 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        size_t e;
        has_dot_or_exp = 1;
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        e = i;
        while (i < n && isdigit((unsigned char)s[i]))
            i++;
        if (i == e)
            return 0;
    }
    if (i != n)
        return 0;
    if (!has_dot_or_exp)
        return is_int_text(s, n);
    d = strtod(s, &end);
    return end == s + n && isfinite(d);
}

/* The header row (already read into r): one column per field, surrounding spaces trimmed. */
static int
csv_header(import *im, const csv_reader *r)
{
    size_t cap = 0, k;
    int rc = 0;

    for (k = 0; rc == 0 && k < r->nf; k++) {
        const char *f = r->fields[k];
        size_t n = r->len[k];
        while (n > 0 && isspace((unsigned char)*f)) {
            f++;
            n--;
        }
        while (n > 0 && isspace((unsigned char)f[n - 1]))
            n--;
        rc = add_column(im, f, n, &cap);
    }
    return rc;
}

/* Pass 1 over the records after the header: checks their shape and infers the column types.
 * Returns 0 or a negative pt_err (message set). */
static int
csv_infer(import *im, csv_reader *r)
{
    const char *parts[KEY_MAX];
    size_t lens[KEY_MAX], k;
    int rc;

    rc = key_resolve(im);
    if (rc != 0)
        return rc;
    while ((rc = csv_next(r, im)) == 1) {
        if (r->nf != im->ncols)
            return import_error(im, PT_EINVAL, "line %zu: expected %zu fields, found %zu",
                                r->rec_line, im->ncols, r->nf);
        for (k = 0; k < im->nkeys; k++) {
            size_t c = im->keycols[k];
            parts[k] = r->len[c] != 0 ? r->fields[c] : NULL;
            lens[k] = r->len[c];
        }
        if (im->nkeys > 0 && (rc = key_add(im, parts, lens, r->rec_line)) != 0)
            return rc;
        for (k = 0; k < r->nf; k++) {
            column *c = &im->cols[k];
            if (r->len[k] == 0)
                continue;
            c->any = 1;
            if (c->all_int && !is_int_text(r->fields[k], r->len[k]))
                c->all_int = 0;
            if (c->all_num && !c->all_int && !is_num_text(r->fields[k], r->len[k]))
                c->all_num = 0;
        }
    }
    if (rc < 0)
        return rc;
    for (k = 0; k < im->ncols; k++) {
        column *c = &im->cols[k];
        c->type = !c->any ? COL_TEXT : c->all_int ? COL_INT : c->all_num ? COL_REAL : COL_TEXT;
    }
    return key_check(im, "line");
}

/* Pass 2: inserts every record after the header, typed as pass 1 inferred. */
static int
csv_insert(import *im, csv_reader *r)
{
    char where[48];
    size_t k;
    int rc;

    csv_rewind(r);
    rc = csv_next(r, im); /* the header */
    if (rc < 0)
        return rc;
    while ((rc = csv_next(r, im)) == 1) {
        for (k = 0; k < im->ncols; k++) {
            pt_value *v = &im->vals[k];
            const char *f = r->fields[k];
            if (r->len[k] == 0) {
                v->type = PT_V_NULL;
            } else if (im->cols[k].type == COL_INT) {
                v->type = PT_V_INT;
                v->u.i = strtoll(f, NULL, 10);
            } else if (im->cols[k].type == COL_REAL) {
                v->type = PT_V_FLOAT;
                v->u.f = strtod(f, NULL);
            } else {
                v->type = PT_V_TEXT;
                v->u.s.p = f;
                v->u.s.n = r->len[k];
            }
        }
        snprintf(where, sizeof where, "line %zu", r->rec_line);
        rc = import_row(im, where);
        if (rc != 0)
            return rc;
    }
    return rc < 0 ? rc : 0;
}

static int
import_csv(import *im, const char *data, size_t len)
{
    csv_reader r = {.p = data, .n = len};
    int rc;

    pt_buf_init(&r.buf, 0);
    csv_rewind(&r);
    rc = csv_next(&r, im);
    if (rc == 0)
        rc = import_error(im, PT_EINVAL, "empty file (a header row is needed)");
    if (rc > 0)
        rc = csv_header(im, &r);
    if (rc == 0)
        rc = csv_infer(im, &r);
    if (rc == 0)
        rc = import_begin(im);
    if (rc == 0)
        rc = csv_insert(im, &r);
    pt_buf_free(&r.buf);
    free(r.off);
    free(r.len);
    free(r.fields);
    return rc < 0 ? rc : 0;
}

/* ---- import: JSON ------------------------------------------------------------------------- */

/* Parses data[0..len) into *root (caller frees with json_decref): a non-empty array, whose
 * elements are checked to be objects by json_infer. Returns 0 or PT_EINVAL (message set). */
static int
json_load_rows(import *im, const char *data, size_t len, json_t **root)
{
    json_error_t jerr;

    *root = json_loadb(data, len, JSON_DECODE_ANY, &jerr);
    if (*root == NULL)
        return import_error(im, PT_EINVAL, "line %d: invalid JSON: %s", jerr.line, jerr.text);
    if (!json_is_array(*root))
        return import_error(im, PT_EINVAL, "expected a JSON array of objects");
    if (json_array_size(*root) == 0)
        return import_error(im, PT_EINVAL, "empty JSON array: nothing to import");
    return 0;
}

/* Finds the column for key (borrowed) in *out, adding it when new; pos is the key's position in
 * its object. Returns 0, PT_EINVAL for keys that differ only in case, or PT_ENOMEM. */
static int
json_column(import *im, const char *key, size_t pos, size_t *cap, column **out)
{
    size_t k;
    int rc;

    /* Objects usually list their keys in the same order: try the same position first. */
    if (pos < im->ncols && strcmp(im->cols[pos].name, key) == 0) {
        *out = &im->cols[pos];
        return 0;
    }
    for (k = 0; k < im->ncols; k++) {
        if (strcasecmp(im->cols[k].name, key) != 0)
            continue;
        if (strcmp(im->cols[k].name, key) != 0)
            return import_error(im, PT_EINVAL,
                                "keys \"%s\" and \"%s\" differ only in case "
                                "(column names are case-insensitive)",
                                im->cols[k].name, key);
        *out = &im->cols[k];
        return 0;
    }
    rc = add_column(im, key, strlen(key), cap);
    if (rc != 0)
        return rc;
    *out = &im->cols[im->ncols - 1];
    return 0;
}

/* Pass 1: the columns are the union of the objects' keys, in first-seen order; each column's
 * type is the widest its values need. Returns 0, PT_EINVAL (message set) or PT_ENOMEM. */
static int
json_infer(import *im, json_t *root)
{
    size_t cap = 0, i, k;
    int rc;

    for (i = 0; i < json_array_size(root); i++) {
        json_t *obj = json_array_get(root, i);
        const char *key;
        json_t *val;
        size_t pos = 0;
        if (!json_is_object(obj))
            return import_error(im, PT_EINVAL, "element %zu is not an object", i + 1);
        json_object_foreach(obj, key, val)
        {
            column *c = NULL;
            rc = json_column(im, key, pos, &cap, &c);
            if (rc != 0)
                return rc;
            pos++;
            switch (json_typeof(val)) {
            case JSON_INTEGER:
            case JSON_TRUE:
            case JSON_FALSE:
                c->has_int = 1;
                break;
            case JSON_REAL:
                c->has_real = 1;
                break;
            case JSON_STRING:
            case JSON_OBJECT:
            case JSON_ARRAY:
                c->has_text = 1;
                break;
            case JSON_NULL:
                break;
            }
        }
    }
    for (k = 0; k < im->ncols; k++) {
        column *c = &im->cols[k];
        c->type = c->has_text ? COL_TEXT : c->has_real ? COL_REAL : c->has_int ? COL_INT : COL_TEXT;
    }
    return 0;
}

/* Sets *v from val (borrowed; NULL when the object lacks the key, which is NULL). Strings point
 * into val; a nested object or array is dumped to compact JSON text in *text (caller frees with
 * free()). Returns 0 or PT_ENOMEM (message set). */
static int
json_value(import *im, json_t *val, pt_value *v, char **text)
{
    v->type = PT_V_NULL;
    if (val == NULL)
        return 0;
    switch (json_typeof(val)) {
    case JSON_INTEGER:
        v->type = PT_V_INT;
        v->u.i = json_integer_value(val);
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        v->type = PT_V_INT;
        v->u.i = json_is_true(val);
        break;
    case JSON_REAL:
        v->type = PT_V_FLOAT;
        v->u.f = json_real_value(val);
        break;
    case JSON_STRING:
        v->type = PT_V_TEXT;
        v->u.s.p = json_string_value(val);
        v->u.s.n = json_string_length(val);
        break;
    case JSON_OBJECT:
    case JSON_ARRAY:
        *text = json_dumps(val, JSON_COMPACT | JSON_ENCODE_ANY);
        if (*text == NULL)
            return import_error(im, PT_ENOMEM, "out of memory");
        v->type = PT_V_TEXT;
        v->u.s.p = *text;
        v->u.s.n = strlen(*text);
        break;
    case JSON_NULL:
        break;
    }
    return 0;
}

/* Pass 2: one INSERT per element, in the transaction import_begin opens. Returns 0 or a pt_err
 * (message set); import_finish commits or rolls back. */
static int
json_insert(import *im, json_t *root)
{
    char **texts = NULL; /* JSON text of nested values in the current row */
    size_t i, k;
    char where[48];
    int rc;

    rc = import_begin(im);
    if (rc != 0)
        goto done;
    texts = calloc(im->ncols, sizeof *texts);
    if (texts == NULL) {
        rc = import_error(im, PT_ENOMEM, "out of memory");
        goto done;
    }
    for (i = 0; i < json_array_size(root); i++) {
        json_t *obj = json_array_get(root, i);
        for (k = 0; k < im->ncols && rc == 0; k++)
            rc = json_value(im, json_object_get(obj, im->cols[k].name), &im->vals[k], &texts[k]);
        if (rc == 0) {
            snprintf(where, sizeof where, "element %zu", i + 1);
            rc = import_row(im, where);
        }
        for (k = 0; k < im->ncols; k++) {
            free(texts[k]);
            texts[k] = NULL;
        }
        if (rc != 0)
            goto done;
    }
done:
    free(texts);
    return rc;
}

/* Pass 1b: the key's value in each element (a string as is, another scalar as JSON writes it;
 * null or missing is no value). Returns 0 or a pt_err (message set). */
static int
json_keys(import *im, json_t *root)
{
    const char *parts[KEY_MAX];
    char *dumped[KEY_MAX];
    size_t lens[KEY_MAX], i, k;
    int rc = key_resolve(im);

    for (i = 0; rc == 0 && im->nkeys > 0 && i < json_array_size(root); i++) {
        json_t *obj = json_array_get(root, i);
        for (k = 0; k < im->nkeys; k++) {
            json_t *v = json_object_get(obj, im->cols[im->keycols[k]].name);
            dumped[k] = NULL;
            parts[k] = NULL;
            lens[k] = 0;
            if (v == NULL || json_is_null(v))
                continue;
            if (json_is_string(v)) {
                parts[k] = json_string_value(v);
                lens[k] = json_string_length(v);
                continue;
            }
            dumped[k] = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            if (dumped[k] == NULL) {
                rc = import_error(im, PT_ENOMEM, "out of memory");
                parts[k] = "";
            } else {
                parts[k] = dumped[k];
                lens[k] = strlen(dumped[k]);
            }
        }
        if (rc == 0)
            rc = key_add(im, parts, lens, i + 1);
        for (k = 0; k < im->nkeys; k++)
            free(dumped[k]);
    }
    return rc != 0 ? rc : key_check(im, "element");
}

/* Imports a JSON array of objects: parse, infer the columns, insert. */
static int
import_json(import *im, const char *data, size_t len)
{
    json_t *root = NULL;
    int rc;

    rc = json_load_rows(im, data, len, &root);
    if (rc == 0)
        rc = json_infer(im, root);
    if (rc == 0)
        rc = json_keys(im, root);
    if (rc == 0)
        rc = json_insert(im, root);
    json_decref(root);
    return rc;
}

/* ---- import: entry ------------------------------------------------------------------------ */

static int
looks_like_json(const char *path, const char *data, size_t len)
{
    size_t n = strlen(path), i = 0;

    if (n >= 5 && strcasecmp(path + n - 5, ".json") == 0)
        return 1;
    if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0)
        i = 3;
    while (i < len && isspace((unsigned char)data[i]))
        i++;
    return i < len && data[i] == '[';
}

int
pt_wh_import(pt_wh *wh, const char *schema, const char *table, const char *path, int64_t *rows)
{
    pt_wh_import_result res;
    int rc = pt_wh_import_keyed(wh, schema, table, path, NULL, &res);

    if (rows != NULL)
        *rows = res.rows;
    return rc;
}

int
pt_wh_import_keyed(pt_wh *wh, const char *schema, const char *table, const char *path,
                   const char *primary_key, pt_wh_import_result *res)
{
import im = {.wh = wh, .path = path, .schema = schema, .table = table, .key_spec = primary_key, .res = res };
    char *data = NULL, msg[256];
    size_t len = 0;
    int rc;

    res->rows = 0;
    res->note[0] = '\0';
    wh->err[0] = '\0';
    rc = pt_wh_check_ident(wh, "schema", schema);
    if (rc == 0)
        rc = pt_wh_check_ident(wh, "table", table);
    if (rc != 0)
        return rc;
    rc = pt_file_read(path, IMPORT_MAX, &data, &len, msg, sizeof msg);
    if (rc != 0)
        return import_error(&im, rc, "cannot read: %s", msg);
    if (looks_like_json(path, data, len))
        rc = import_json(&im, data, len);
    else
        rc = import_csv(&im, data, len);
    rc = import_finish(&im, rc);
    if (rc == 0)
        res->rows = im.rows;
    else
        res->note[0] = '\0';
    free(data);
    return rc;
}
