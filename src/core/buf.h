/* buf.h - growable byte buffers with a hard cap: appends past the cap fail with PT_ETOOBIG
 * instead of growing without bound (sizes a client controls always go through one). */
#ifndef PT_BUF_H
#define PT_BUF_H

#include <stddef.h>

typedef struct pt_buf {
    char *data; /* NUL-terminated whenever len > 0 or after pt_buf_cstr(); owned */
    size_t len;
    size_t cap;
    size_t max; /* hard cap on len; 0 means SIZE_MAX */
} pt_buf;

/* Initialises an empty buffer (no allocation yet). */
void pt_buf_init(pt_buf *b, size_t max);
/* Releases the storage; the buffer is empty and reusable afterwards. NULL is a no-op. */
void pt_buf_free(pt_buf *b);
/* Empties the buffer but keeps its storage. */
void pt_buf_reset(pt_buf *b);
/* Makes room for n more bytes. Returns 0, PT_ETOOBIG past max, PT_ENOMEM. */
int pt_buf_reserve(pt_buf *b, size_t n);
/* Append bytes; on failure the buffer is unchanged. Returns 0, PT_ETOOBIG or PT_ENOMEM. */
int pt_buf_append(pt_buf *b, const void *p, size_t n);
int pt_buf_puts(pt_buf *b, const char *s);
int pt_buf_putc(pt_buf *b, char c);
int pt_buf_printf(pt_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Returns the contents as a C string (borrowed; valid until the next change). */
const char *pt_buf_cstr(pt_buf *b);
/* Hands the storage to the caller (free with free()); the buffer becomes empty. */
char *pt_buf_steal(pt_buf *b, size_t *len);

#endif
