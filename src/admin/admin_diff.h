/* admin_diff.h - a unified diff of two texts, line by line (what GET
 * /scripts/{name}/diff returns). Internal to src/admin/. */
#ifndef PT_ADMIN_DIFF_H
#define PT_ADMIN_DIFF_H

#include <stddef.h>

#include "core/buf.h"

/* Past this many (lines of a) x (lines of b), after the common head and tail are set aside,
 * the diff is refused (PT_ETOOBIG): the comparison's table would not be small. */
#define PT_ADMIN_DIFF_CELLS (4u << 20)

/* Appends the unified diff (3 lines of context, "--- label_a" / "+++ label_b" headers) of
 * a[0..an) and b[0..bn) to out; nothing when they are equal. A last line without a newline
 * is compared and printed as if it had one. Everything borrowed. Returns 0, PT_ENOMEM, or
 * PT_ETOOBIG (see PT_ADMIN_DIFF_CELLS). */
int pt_admin_diff(const char *a, size_t an, const char *b, size_t bn, const char *label_a,
                  const char *label_b, pt_buf *out);

#endif
