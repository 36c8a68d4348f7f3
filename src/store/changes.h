/* changes.h - a change counter shared by every process of one data dir: DATA/run/changes,
 * 8 bytes, mmapped. Writers bump it after committing metadata; workers compare it to the
 * value they loaded with, one memory read per request. */
#ifndef PT_CHANGES_H
#define PT_CHANGES_H

#include <stdint.h>

typedef struct pt_changes pt_changes;

/* Maps the counter of datadir, creating the file. Caller frees with pt_changes_close. */
int pt_changes_open(const char *datadir, pt_changes **out);
void pt_changes_close(pt_changes *c);
/* Atomically increments the counter. */
void pt_changes_bump(pt_changes *c);
/* Reads the counter (acquire ordering). */
uint64_t pt_changes_read(const pt_changes *c);
/* Opens, bumps and closes: for CLI commands. Returns 0 or a pt_err. */
int pt_changes_bump_dir(const char *datadir);

#endif
