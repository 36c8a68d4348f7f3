/* stream.h - a response body produced piece by piece after the headers went out (large row
 * lists): the interface between whoever makes the body (warehouse/rows.c) and the worker that
 * sends it (server/worker_send.c). */
#ifndef PT_STREAM_H
#define PT_STREAM_H

#include "core/buf.h"

typedef struct pt_body_stream pt_body_stream;

/* What next() returns when the rest of the chunk is not there yet (a database server has not
 * sent the next rows): the caller sends what b holds, if anything, and otherwise waits until
 * wait_fd() is readable before calling next() again. Never returned by a stream whose wait_fd
 * is NULL. */
#define PT_STREAM_WAIT 2

struct pt_body_stream {
    /* Appends the next part of the body (a bounded chunk) to b. Returns 1 when more follows,
     * 0 after the last part, PT_STREAM_WAIT when it would have to wait for input (b may hold
     * part of a chunk), or a negative pt_err when the body cannot be completed (the response
     * is then cut short). Never blocks on a socket. Runs on the worker's loop thread: pure C,
     * no GIL, and it must not share state with code running on other threads. */
    int (*next)(pt_body_stream *s, pt_buf *b);
    /* The descriptor to watch for readability after next() returned PT_STREAM_WAIT, the same
     * one for the stream's whole life, or -1 when there is none. Borrowed: the stream owns it
     * and closes it in free(); the caller never closes it (watch a duplicate instead). NULL
     * for streams that never wait. */
    int (*wait_fd)(pt_body_stream *s);
    /* Releases everything the stream owns; called exactly once, also when the client went
     * away before the end. */
    void (*free)(pt_body_stream *s);
};

#endif
