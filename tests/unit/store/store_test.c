/* store_test.c - helpers the store's unit tests share (store_test.h). */
#include "store/store_test.h"
#include <stddef.h>

#include "store/changes.h"

uint64_t
pt_test_store_counter(const char *dir)
{
    pt_changes *c = NULL;
    uint64_t v;

    if (pt_changes_open(dir, &c) != 0)
        return UINT64_MAX;
    v = pt_changes_read(c);
    pt_changes_close(c);
    return v;
}
