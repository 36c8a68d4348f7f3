/* file.h - reading a whole file into memory, refusing files over a size cap. */
#ifndef PT_FILE_H
#define PT_FILE_H

#include <stddef.h>

/* Reads the whole file at path (borrowed) when it holds at most max bytes: *data gets its bytes
 * and a NUL (caller frees with free()), *len their count. Returns 0, PT_EIO (cannot open or read
 * it, or it is a directory), PT_ETOOBIG (more than max bytes) or PT_ENOMEM; then *data is NULL
 * and err (errsz bytes; may be NULL when errsz is 0) says why, without the path ("is a
 * directory", "file too big (N bytes, at most M)", strerror's text). */
int pt_file_read(const char *path, size_t max, char **data, size_t *len, char *err, size_t errsz);

#endif
