/* changes.c - the metadata change counter shared by all processes of a data dir (mmapped). */

/*
 * Protocol.  A writer commits its metadata transaction and only then increments the counter.
 * A reader (a worker) reads the counter *before* loading the metadata and remembers that value;
 * on each request it compares the remembered value with the current one and reloads when they
 * differ. A change committed while a load is running therefore always shows up as a newer
 * counter value afterwards, so no change is ever missed; at worst one reload is redundant.
 *
 * The counter is a naturally aligned 8-byte word at offset 0 of DATA/run/changes (the mapping
 * is page aligned), updated with __atomic builtins, which are lock-free for 8 bytes on every
 * platform Portico targets, and coherent across processes through MAP_SHARED.
 */
#include "store/changes.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"

struct pt_changes {
    uint64_t *word; /* the shared mapping, 8 bytes */
};

int
pt_changes_open(const char *datadir, pt_changes **out)
{
    char path[4096];
    struct stat sb;
    void *map = MAP_FAILED;
    pt_changes *c = NULL;
    int fd = -1;
    int rc;

    *out = NULL;
    if (snprintf(path, sizeof path, "%s/run", datadir) >= (int)sizeof path)
        return PT_EINVAL;
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return PT_EIO;
    if (snprintf(path, sizeof path, "%s/run/changes", datadir) >= (int)sizeof path)
        return PT_EINVAL;

    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = PT_EIO;
        goto done;
    }
    /* Growing to 8 bytes is safe when several processes race: ftruncate only ever extends a
     * short file with zeros here and never touches an existing counter. */
    if (fstat(fd, &sb) != 0 || (sb.st_size < 8 && ftruncate(fd, 8) != 0)) {
        rc = PT_EIO;
        goto done;
    }
    map = mmap(NULL, sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        rc = PT_EIO;
        goto done;
    }
    c = malloc(sizeof *c);
    if (c == NULL) {
        rc = PT_ENOMEM;
        goto done;
    }
    c->word = map;
    map = MAP_FAILED; /* owned by c now */
    *out = c;
    rc = 0;
done:
    if (map != MAP_FAILED)
        munmap(map, sizeof(uint64_t));
    if (fd >= 0)
        close(fd);
    return rc;
}

void
pt_changes_close(pt_changes *c)
{
    if (c == NULL)
        return;
    munmap(c->word, sizeof(uint64_t));
    free(c);
}

void
pt_changes_bump(pt_changes *c)
{
    __atomic_add_fetch(c->word, 1, __ATOMIC_SEQ_CST);
}

uint64_t
pt_changes_read(const pt_changes *c)
{
    return __atomic_load_n(c->word, __ATOMIC_ACQUIRE);
}

int
pt_changes_bump_dir(const char *datadir)
{
    pt_changes *c = NULL;
    int rc = pt_changes_open(datadir, &c);

    if (rc != 0)
        return rc;
    pt_changes_bump(c);
    pt_changes_close(c);
    return 0;
}
