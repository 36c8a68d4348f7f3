/* cli_audit.c - `portico audit [--since DURATION] [--actor NAME] [--limit N] [--json]`: the
 * audit log of changes made through the admin API and the CLI, newest first (GET /audit). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cli/cli.h"
#include "cli/cli_api.h"
#include "core/config.h"

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
    char *pos[1], num[24];
    int64_t secs = 0;
    long max = 100;
    pt_cli_reply rep;
    int npos = 0, rc;

    rc = pt_cli_parse(argc, argv, opts, pos, 0, 0, &npos, usage);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (since != NULL && (pt_config_parse_duration(since, &secs) != 0 || secs < 0))
        return pt_cli_error("invalid --since '%s' (a duration such as 15m, 1h or 7d)", since);
    if (limit != NULL && pt_cli_parse_long(limit, 1, 100000, &max) != 0)
        return pt_cli_error("invalid --limit '%s' (1 to 100000)", limit);
    snprintf(num, sizeof num, "%ld", max);
    json_t *query = json_pack("{s:s}", "limit", num);
    if (since != NULL)
        json_object_set_new(query, "since", json_string(since));
    if (actor != NULL)
        json_object_set_new(query, "actor", json_string(actor));
    if ((rc = pt_cli_api(datadir, "GET", "/audit", query, NULL, &rep)) != 0)
        return rc;
    json_t *entries = json_object_get(rep.body, "entries");
    if (as_json != NULL) {
        char *text = json_dumps(entries, JSON_INDENT(2));
        if (text != NULL)
            printf("%s\n", text);
        else
            rc = pt_cli_error("out of memory");
        free(text);
    } else {
        static const char *const head[] = {"TIME", "ACTOR", "ACTION", "OBJECT", "DETAIL"};
        pt_cli_table *t = pt_cli_table_new_header(5, head);
        size_t i;
        json_t *e;
        json_array_foreach(entries, i, e)
        {
            if (t == NULL)
                break;
            const char *object = json_string_value(json_object_get(e, "object"));
            char *detail = json_dumps(json_object_get(e, "detail"), JSON_COMPACT | JSON_ENCODE_ANY);
            pt_cli_table_add_time(t, json_integer_value(json_object_get(e, "time")) / 1000, "-");
            pt_cli_table_adds(t, json_string_value(json_object_get(e, "actor")));
            pt_cli_table_adds(t, json_string_value(json_object_get(e, "action")));
            pt_cli_table_adds(t, object != NULL && object[0] ? object : "-");
            pt_cli_table_adds(t, detail != NULL ? detail : "{}");
            free(detail);
        }
        if (t != NULL)
            pt_cli_table_print(t, stdout, 0);
        else
            rc = pt_cli_error("out of memory");
        pt_cli_table_free(t);
    }
    pt_cli_reply_clear(&rep);
    return rc;
}
