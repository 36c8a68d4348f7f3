/* store_test.h - helpers the store's unit tests share. */
#ifndef PT_STORE_TEST_H
#define PT_STORE_TEST_H

#include <stdint.h>

/* The change counter of data dir `dir` (store/changes.h), or UINT64_MAX when it cannot be
 * read. */
uint64_t pt_test_store_counter(const char *dir);

#endif
