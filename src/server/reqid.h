/* reqid.h - request ids: 16 hex digits, a random per-process prefix and a counter. */
#ifndef PT_REQID_H
#define PT_REQID_H

#define PT_REQID_SIZE 24

/* Seeds the per-process prefix from /dev/urandom. Call once per worker process. */
void pt_reqid_init(void);
/* Writes the next id (NUL-terminated) into out. Not thread-safe: the loop's leader only. */
void pt_reqid_next(char out[PT_REQID_SIZE]);

#endif
