/* file.c - reading a whole file into memory, refusing files over a size cap (file.h). */
#include "core/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"

int
pt_file_read(const char *path, size_t max, char **data, size_t *len, char *err, size_t errsz)
{
    struct stat sb;
    char *buf = NULL;
    size_t got = 0;
    int fd, rc = PT_EIO;

    *data = NULL;
    *len = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errsz, "%s", strerror(errno));
        return PT_EIO;
    }
    if (fstat(fd, &sb) != 0) {
        snprintf(err, errsz, "%s", strerror(errno));
        goto done;
    }
    if (S_ISDIR(sb.st_mode)) {
        snprintf(err, errsz, "is a directory");
        goto done;
    }
    if ((uint64_t)sb.st_size > max) {
        snprintf(err, errsz, "file too big (%lld bytes, at most %zu)", (long long)sb.st_size, max);
        rc = PT_ETOOBIG;
        goto done;
    }
    buf = malloc((size_t)sb.st_size + 1);
    if (buf == NULL) {
        snprintf(err, errsz, "out of memory");
        rc = PT_ENOMEM;
        goto done;
    }
    /* A file that grows while it is read is cut at the size it had: never past max. */
    while (got < (size_t)sb.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)sb.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, errsz, "%s", strerror(errno));
            goto done;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    *data = buf;
    *len = got;
    buf = NULL;
    rc = 0;
done:
    free(buf);
    close(fd);
    return rc;
}
