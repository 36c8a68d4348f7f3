/* cli_audit.c - `portico audit [--since DURATION] [--actor NAME] [--limit N] [--json]`: the
 * audit log of changes made through the admin API and the CLI, newest first. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cli/cli.h"
#include "core/config.h"
#include "store/store_audit.h"

int
pt_cli_audit(const char *datadir, int argc, char **argv)
{
    const char *usage = "audit [--since DURATION] [--actor NAME] [--limit N] [--json]";
    const char *since = NULL, *actor = NULL, *limit = NULL, *as_json = NULL;
    pt_cli_opt opts[] = {{"--since", 1, &since},
                         {"--actor", 1, &actor},
                         {"--limit", 1, &limit},
                         {"--json", 0, &as_json},
                         {NULL, 0, NULL}};
    char *pos[1];
    int64_t secs = 0, from = 0;
    long max = 100;
    pt_store *st = NULL;
    pt_audit_entry *list = NULL;
    size_t n = 0;
    int npos = 0, rc;

    rc = pt_cli_parse(argc, argv, opts, pos, 0, 0, &npos, usage);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (since != NULL) {
        if (pt_config_parse_duration(since, &secs) != 0 || secs < 0)
            return pt_cli_error("invalid --since '%s' (a duration such as 15m, 1h or 7d)", since);
        from = ((int64_t)time(NULL) - secs) * 1000;
    }
    if (limit != NULL && pt_cli_parse_long(limit, 1, 100000, &max) != 0)
        return pt_cli_error("invalid --limit '%s' (1 to 100000)", limit);
    if ((rc = pt_cli_open_store(datadir, &st)) != 0)
        return rc;
    if (pt_store_audit_list(st, from, actor, max, &list, &n) != 0) {
        rc = pt_cli_error("%s", pt_store_errmsg(st));
        pt_store_close(st);
        return rc;
    }
    if (as_json != NULL) {
        json_t *arr = json_array();
        for (size_t i = 0; arr != NULL && i < n; i++) {
            json_t *detail = json_loads(list[i].detail, JSON_DECODE_ANY, NULL);
            json_array_append_new(
                arr, json_pack("{s:I, s:I, s:s, s:s, s:s, s:o}", "id", (json_int_t)list[i].id,
                               "time", (json_int_t)list[i].time, "actor", list[i].actor, "action",
                               list[i].action, "object", list[i].object, "detail",
                               detail != NULL ? detail : json_object()));
        }
        char *text = arr != NULL ? json_dumps(arr, JSON_INDENT(2)) : NULL;
        if (text != NULL)
            printf("%s\n", text);
        else
            rc = pt_cli_error("out of memory");
        free(text);
        json_decref(arr);
    } else {
        static const char *const head[] = {"TIME", "ACTOR", "ACTION", "OBJECT", "DETAIL"};
        pt_cli_table *t = pt_cli_table_new_header(5, head);
        for (size_t i = 0; t != NULL && i < n; i++) {
            pt_cli_table_add_time(t, list[i].time / 1000, "-");
            pt_cli_table_adds(t, list[i].actor);
            pt_cli_table_adds(t, list[i].action);
            pt_cli_table_adds(t, list[i].object[0] ? list[i].object : "-");
            pt_cli_table_adds(t, list[i].detail);
        }
        if (t != NULL)
            pt_cli_table_print(t, stdout, 0);
        else
            rc = pt_cli_error("out of memory");
        pt_cli_table_free(t);
    }
    pt_store_audit_free(list, n);
    pt_store_close(st);
    return rc;
}
