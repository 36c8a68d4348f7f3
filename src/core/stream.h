/* stream.h - a response body produced piece by piece after the headers went out (large row
 * lists): the interface between whoever makes the body (warehouse/rows.c) and the worker that
 * sends it (server/worker.c). */
#ifndef PT_STREAM_H
#define PT_STREAM_H

#include "core/buf.h"

typedef struct pt_body_stream pt_body_stream;

struct pt_body_stream {
    /* Appends the next part of the body (a bounded chunk) to b. Returns 1 when more follows,
     * 0 after the last part, or a negative pt_err when the body cannot be completed (the
     * response is then cut short). Runs on the worker's loop thread: pure C, no GIL, and it
     * must not share state with code running on other threads. */
    int (*next)(pt_body_stream *s, pt_buf *b);
    /* Releases everything the stream owns; called exactly once, also when the client went
     * away before the end. */
    void (*free)(pt_body_stream *s);
};

#endif
