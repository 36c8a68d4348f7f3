/* reqid.c - request ids: 16 hex digits, a random per-process prefix and a counter. */
#include "server/reqid.h"

#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

static uint32_t prefix;
static uint32_t counter;

void
pt_reqid_init(void)
{
    uint32_t r = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    if (f == NULL || fread(&r, sizeof(r), 1, f) != 1)
        r = (uint32_t)getpid() * 2654435761u;
    if (f != NULL)
        fclose(f);
    prefix = r;
    counter = 0;
}

void
pt_reqid_next(char out[PT_REQID_SIZE])
{
    snprintf(out, PT_REQID_SIZE, "%08x%08x", prefix, ++counter);
}
