/* test_file.c - unit tests for the bounded whole-file reader (core/file.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "core/file.h"
#include "test.h"

TEST(file_read_whole_and_capped)
{
    char dir[] = "/tmp/pt-test-file-XXXXXX", path[64], err[128] = "", *data = NULL;
    size_t len = 99;
    FILE *f;

    ASSERT_TRUE(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/a.txt", dir);
    f = fopen(path, "w");
    ASSERT_TRUE(f != NULL);
    fputs("hello\nworld", f);
    fclose(f);

    ASSERT_EQ(pt_file_read(path, 11, &data, &len, err, sizeof err), 0);
    ASSERT_EQ(len, 11);
    ASSERT_STREQ(data, "hello\nworld"); /* NUL-terminated */
    free(data);

    ASSERT_EQ(pt_file_read(path, 10, &data, &len, err, sizeof err), PT_ETOOBIG);
    ASSERT_TRUE(data == NULL);
    ASSERT_EQ(len, 0);
    ASSERT_STREQ(err, "file too big (11 bytes, at most 10)");

    ASSERT_EQ(pt_file_read(dir, 1000, &data, &len, err, sizeof err), PT_EIO);
    ASSERT_STREQ(err, "is a directory");

    snprintf(path, sizeof path, "%s/missing", dir);
    ASSERT_EQ(pt_file_read(path, 1000, &data, &len, NULL, 0), PT_EIO);
    ASSERT_TRUE(data == NULL);
    pt_test_rm_tree(dir);
}
