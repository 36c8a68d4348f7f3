/* test_admin_diff.c - unified diffs of script versions (admin/admin_diff.c). */
#include <stdlib.h>
#include <string.h>

#include "admin/admin_diff.h"
#include "core/err.h"
#include "test.h"

/* The diff of a and b, NUL-terminated (caller frees), or NULL when it failed. */
static char *
diff(const char *a, const char *b)
{
    pt_buf out;
    pt_buf_init(&out, 0);
    if (pt_admin_diff(a, strlen(a), b, strlen(b), "a", "b", &out) != 0) {
        pt_buf_free(&out);
        return NULL;
    }
    size_t n;
    char *s = pt_buf_steal(&out, &n);
    return s != NULL ? s : strdup("");
}

TEST(admin_diff_equal_texts_give_nothing)
{
    char *d = diff("x\ny\n", "x\ny\n");
    ASSERT_STREQ(d, "");
    free(d);
}

TEST(admin_diff_one_changed_line)
{
    char *d = diff("a\nb\nc\n", "a\nB\nc\n");
    ASSERT_STREQ(d, "--- a\n+++ b\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n");
    free(d);
}

TEST(admin_diff_from_and_to_empty)
{
    char *d = diff("", "x\n");
    ASSERT_STREQ(d, "--- a\n+++ b\n@@ -0,0 +1,1 @@\n+x\n");
    free(d);
    d = diff("x\ny", "");
    ASSERT_STREQ(d, "--- a\n+++ b\n@@ -1,2 +0,0 @@\n-x\n-y\n");
    free(d);
}

TEST(admin_diff_far_apart_changes_make_two_hunks)
{
    char *d = diff("1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n",
                   "one\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\ntwelve\n");
    ASSERT_STREQ(d, "--- a\n+++ b\n"
                    "@@ -1,4 +1,4 @@\n-1\n+one\n 2\n 3\n 4\n"
                    "@@ -9,4 +9,4 @@\n 9\n 10\n 11\n-12\n+twelve\n");
    free(d);
}

TEST(admin_diff_near_changes_share_a_hunk)
{
    char *d = diff("1\n2\n3\n4\n5\n6\n7\n8\n", "x\n2\n3\n4\n5\n6\n7\ny\n");
    ASSERT_STREQ(d, "--- a\n+++ b\n@@ -1,8 +1,8 @@\n-1\n+x\n 2\n 3\n 4\n 5\n 6\n 7\n-8\n+y\n");
    free(d);
}

TEST(admin_diff_insertion_in_the_middle)
{
    char *d = diff("a\nb\n", "a\nnew\nb\n");
    ASSERT_STREQ(d, "--- a\n+++ b\n@@ -1,2 +1,3 @@\n a\n+new\n b\n");
    free(d);
}

TEST(admin_diff_refuses_a_huge_table)
{
    size_t n = 3000;
    char *a = malloc(n * 2 + 1), *b = malloc(n * 2 + 1);
    for (size_t i = 0; i < n; i++) {
        a[2 * i] = 'a';
        b[2 * i] = 'b';
        a[2 * i + 1] = b[2 * i + 1] = '\n';
    }
    a[2 * n] = b[2 * n] = '\0';
    pt_buf out;
    pt_buf_init(&out, 0);
    ASSERT_EQ(pt_admin_diff(a, 2 * n, b, 2 * n, "a", "b", &out), PT_ETOOBIG);
    pt_buf_free(&out);
    free(a);
    free(b);
}
