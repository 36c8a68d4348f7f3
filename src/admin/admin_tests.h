/* admin_tests.h - test runs over the admin API (issue 9, section 5): POST
 * /endpoints/{name}/test and POST /scripts/test, and the answer's JSON shape, which
 * `portico endpoint test --json` prints too. */
#ifndef PT_ADMIN_TESTS_H
#define PT_ADMIN_TESTS_H

#include <jansson.h>

#include "admin/admin.h"
#include "core/request.h"

/* The routes (ended by a zeroed entry); min role editor. */
extern const pt_admin_route pt_admin_tests_routes[];

/* The handler timeout test runs get (the server's --timeout; 30 s until set). */
void pt_admin_tests_set_timeout(double seconds);

/* A test run's answer: {"status", "headers" (object, lower-case names), "body" (text, or
 * base64 with "body_base64": true when not UTF-8), "body_base64", "printed" (list of lines),
 * "traceback" (or null), "duration_ms"}. New reference; NULL when out of memory. */
json_t *pt_admin_test_result(const pt_response *resp, double duration_ms);

#endif
