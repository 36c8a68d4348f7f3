/* json.h - JSON text output primitives shared by the C serializers (responses, rows, logs).
 * Output is always valid UTF-8 JSON; invalid UTF-8 input bytes become U+FFFD. */
#ifndef PT_JSON_H
#define PT_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/* Appends s[0..n) as a quoted JSON string. Non-ASCII UTF-8 is copied as is (not \u-escaped),
 * control characters are escaped. Returns 0 or a pt_buf error. */
int pt_json_string(pt_buf *b, const char *s, size_t n);
/* Appends an integer. */
int pt_json_int(pt_buf *b, int64_t v);
/* Appends a double exactly as Python's json.dumps does: repr() digits (shortest round-trip,
 * "1.0", "1e+16", "1.5e-07"), and NaN, Infinity, -Infinity for non-finite values. */
int pt_json_double(pt_buf *b, double v);
/* Formats v like Python's repr(float) into out (at least 32 bytes); returns the length. */
size_t pt_json_format_double(double v, char *out);

#endif
