/* admin_diff.c - unified diffs of script versions: the longest common subsequence of lines
 * (a table of 16-bit lengths over the part between the common head and tail), then hunks with
 * three lines of context, as `diff -u` prints them. */
#include "admin/admin_diff.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

#define CONTEXT 3

typedef struct line {
    const char *p;
    size_t n; /* without the newline */
} line;

/* Splits s into lines (caller frees *out). Returns 0 or PT_ENOMEM. */
static int
split(const char *s, size_t n, line **out, size_t *count)
{
    size_t cap = 1;
    for (size_t i = 0; i < n; i++)
        cap += s[i] == '\n';
    line *l = malloc(cap * sizeof *l);
    size_t k = 0, start = 0;
    if (l == NULL)
        return PT_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\n') {
            l[k++] = (line){s + start, i - start};
            start = i + 1;
        }
    }
    if (start < n)
        l[k++] = (line){s + start, n - start};
    *out = l;
    *count = k;
    return 0;
}

static int
same(const line *x, const line *y)
{
    return x->n == y->n && memcmp(x->p, y->p, x->n) == 0;
}

/* One step of the edit script: ' ' keep, '-' delete a[ai], '+' insert b[bi]. */
typedef struct op {
    char kind;
    size_t ai, bi; /* positions in a and b before this step */
} op;

/* The edit script turning a into b. Caller frees *out. */
static int
edit_script(const line *a, size_t na, const line *b, size_t nb, op **out, size_t *nops)
{
    size_t head = 0, tail = 0;
    while (head < na && head < nb && same(&a[head], &b[head]))
        head++;
    while (tail < na - head && tail < nb - head && same(&a[na - 1 - tail], &b[nb - 1 - tail]))
        tail++;
    size_t n = na - head - tail, m = nb - head - tail;
    if (n > 0 && m > 0 && (n + 1) > PT_ADMIN_DIFF_CELLS / (m + 1))
        return PT_ETOOBIG;
    /* min(n, m) < 2^16 follows from the cap, so lengths fit in 16 bits. */
    uint16_t *dp = calloc((n + 1) * (m + 1), sizeof *dp);
    op *ops = malloc((na + nb + 1) * sizeof *ops);
    if (dp == NULL || ops == NULL) {
        free(dp);
        free(ops);
        return PT_ENOMEM;
    }
#define DP(i, j) dp[(i) * (m + 1) + (j)]
    for (size_t i = n; i-- > 0;)
        for (size_t j = m; j-- > 0;)
            DP(i, j) = same(&a[head + i], &b[head + j]) ? (uint16_t)(DP(i + 1, j + 1) + 1)
                       : DP(i + 1, j) >= DP(i, j + 1)   ? DP(i + 1, j)
                                                        : DP(i, j + 1);
    size_t k = 0, i = 0, j = 0;
    for (size_t h = 0; h < head; h++)
        ops[k++] = (op){' ', h, h};
    while (i < n || j < m) {
        if (i < n && j < m && same(&a[head + i], &b[head + j])) {
            ops[k++] = (op){' ', head + i, head + j};
            i++;
            j++;
        } else if (j == m || (i < n && DP(i + 1, j) >= DP(i, j + 1))) {
            ops[k++] = (op){'-', head + i, head + j};
            i++;
        } else {
            ops[k++] = (op){'+', head + i, head + j};
            j++;
        }
    }
#undef DP
    for (size_t t = 0; t < tail; t++)
        ops[k++] = (op){' ', head + n + t, head + m + t};
    free(dp);
    *out = ops;
    *nops = k;
    return 0;
}

/* "@@ -l,s +l,s @@" as diff -u writes it: an empty side names the line before it. */
static int
hunk_header(pt_buf *out, size_t astart, size_t acount, size_t bstart, size_t bcount)
{
    return pt_buf_printf(out, "@@ -%zu,%zu +%zu,%zu @@\n", acount ? astart + 1 : astart, acount,
                         bcount ? bstart + 1 : bstart, bcount);
}

int
pt_admin_diff(const char *a, size_t an, const char *b, size_t bn, const char *label_a,
              const char *label_b, pt_buf *out)
{
    line *la = NULL, *lb = NULL;
    op *ops = NULL;
    size_t na = 0, nb = 0, nops = 0;
    int rc = split(a, an, &la, &na);
    if (rc == 0)
        rc = split(b, bn, &lb, &nb);
    if (rc == 0)
        rc = edit_script(la, na, lb, nb, &ops, &nops);
    if (rc != 0)
        goto done;
    int headed = 0;
    size_t k = 0;
    while (k < nops) {
        while (k < nops && ops[k].kind == ' ')
            k++;
        if (k == nops)
            break;
        /* A hunk: from CONTEXT lines before this change to CONTEXT lines after the last change
         * that is no more than 2 * CONTEXT kept lines from the previous one. */
        size_t first = k > CONTEXT ? k - CONTEXT : 0, last = k;
        for (size_t e = k; e < nops; e++) {
            if (ops[e].kind != ' ') {
                last = e;
                continue;
            }
            if (e - last > 2 * CONTEXT)
                break;
        }
        size_t end = last + CONTEXT + 1 < nops ? last + CONTEXT + 1 : nops;
        size_t acount = 0, bcount = 0;
        for (size_t e = first; e < end; e++) {
            acount += ops[e].kind != '+';
            bcount += ops[e].kind != '-';
        }
        if (!headed) {
            rc = pt_buf_printf(out, "--- %s\n+++ %s\n", label_a, label_b);
            headed = 1;
        }
        if (rc == 0)
            rc = hunk_header(out, ops[first].ai, acount, ops[first].bi, bcount);
        for (size_t e = first; rc == 0 && e < end; e++) {
            const line *l = ops[e].kind == '+' ? &lb[ops[e].bi] : &la[ops[e].ai];
            rc = pt_buf_putc(out, ops[e].kind);
            if (rc == 0)
                rc = pt_buf_append(out, l->p, l->n);
            if (rc == 0)
                rc = pt_buf_putc(out, '\n');
        }
        if (rc != 0)
            break;
        k = end;
    }
done:
    free(la);
    free(lb);
    free(ops);
    return rc;
}
