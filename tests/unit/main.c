/* main.c - runs the registered unit tests and reports "N passed, N failed".
 *
 * Usage: unit-tests [-v] [FILTER...]; a test runs when its name or file contains a FILTER. */
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

static pt_test *tests;
static size_t ntests;
static int current_failed;
static const char *current_name;

void
pt_test_register(pt_test *t)
{
    t->next = tests;
    tests = t;
    ntests++;
}

void
pt_test_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;

    if (!current_failed)
        fprintf(stderr, "FAIL %s\n", current_name);
    current_failed = 1;
    fprintf(stderr, "  %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void
pt_test_print_bytes(const char *p, size_t n)
{
    fputs("    \"", stderr);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
            fprintf(stderr, "\\x%02x", c);
        else
            fputc(c, stderr);
    }
    fprintf(stderr, "\" (%zu bytes)\n", n);
}

/* Runs in source order: by file, then by line. */
static int
test_cmp(const void *a, const void *b)
{
    const pt_test *x = *(pt_test *const *)a, *y = *(pt_test *const *)b;
    int c = strcmp(x->file, y->file);
    return c ? c : (x->line > y->line) - (x->line < y->line);
}

static int
selected(const pt_test *t, int argc, char **argv, int first)
{
    if (first >= argc)
        return 1;
    for (int i = first; i < argc; i++) {
        if (strstr(t->name, argv[i]) || strstr(t->file, argv[i]))
            return 1;
    }
    return 0;
}

int
main(int argc, char **argv)
{
    int verbose = 0, first = 1;
    size_t passed = 0, failed = 0, n = 0;

    if (argc > 1 && strcmp(argv[1], "-v") == 0) {
        verbose = 1;
        first = 2;
    }
    pt_test **list = calloc(ntests ? ntests : 1, sizeof(*list));
    if (list == NULL)
        return 2;
    for (pt_test *t = tests; t; t = t->next)
        list[n++] = t;
    qsort(list, n, sizeof(*list), test_cmp);

    for (size_t i = 0; i < n; i++) {
        if (!selected(list[i], argc, argv, first))
            continue;
        current_name = list[i]->name;
        current_failed = 0;
        if (verbose)
            fprintf(stderr, "RUN  %s (%s)\n", list[i]->name, list[i]->file);
        fflush(stderr);
        list[i]->fn();
        if (current_failed)
            failed++;
        else
            passed++;
    }
    free(list);
    printf("%zu passed, %zu failed\n", passed, failed);
    return failed ? 1 : 0;
}

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void
pt_test_rm_tree(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}
