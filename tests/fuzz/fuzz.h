/* fuzz.h - what every libFuzzer target in tests/fuzz/ shares: the entry point's prototype and
 * a small reader that splits one fuzz input into the several arguments a parser takes. */
#ifndef PT_FUZZ_H
#define PT_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A cursor over the fuzz input. */
typedef struct pt_fuzz_in {
    const uint8_t *p;
    size_t n;
} pt_fuzz_in;

/* Takes one byte (0 when the input is spent). */
static inline unsigned
pt_fuzz_byte(pt_fuzz_in *in)
{
    if (in->n == 0)
        return 0;
    in->n--;
    return *in->p++;
}

/* Takes the bytes up to the next '\n' (or the end) as a field, the '\n' dropped; *len gets its
 * length. Returns a pointer into the input (not NUL-terminated). */
static inline const char *
pt_fuzz_field(pt_fuzz_in *in, size_t *len)
{
    const uint8_t *s = in->p, *nl = memchr(in->p, '\n', in->n);
    size_t k = nl != NULL ? (size_t)(nl - in->p) : in->n;
    *len = k;
    in->p += k;
    in->n -= k;
    if (nl != NULL) {
        in->p++;
        in->n--;
    }
    return (const char *)s;
}

#endif
