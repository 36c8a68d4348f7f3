/* cli_nodes.c - `portico nodes [--json]`: the nodes serving this install, from their
 * heartbeats in the store (GET /nodes), live ones marked, stale ones too. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"
#include "cli/cli_api.h"

/* The addresses array as one cell, and the admin listener's after "admin ". */
static char *
addresses_cell(json_t *node)
{
    json_t *addrs = json_object_get(node, "addresses"), *a;
    const char *admin = json_string_value(json_object_get(node, "admin"));
    size_t i, n = 1;
    char *out;

    json_array_foreach(addrs, i, a) n +=
        strlen(json_string_value(a) ? json_string_value(a) : "") + 1;
    n += admin != NULL ? strlen(admin) + 7 : 0;
    out = calloc(1, n);
    if (out == NULL)
        return NULL;
    json_array_foreach(addrs, i, a)
    {
        if (out[0] != '\0')
            strcat(out, " ");
        strcat(out, json_string_value(a) ? json_string_value(a) : "");
    }
    if (admin != NULL) {
        if (out[0] != '\0')
            strcat(out, " ");
        strcat(out, "admin ");
        strcat(out, admin);
    }
    return out;
}

int
pt_cli_nodes(const char *datadir, int argc, char **argv)
{
    const char *usage = "nodes [--json]";
    const char *as_json = NULL;
    pt_cli_opt opts[] = {{"--json", 0, &as_json}, {NULL, 0, NULL}};
    char *pos[1];
    pt_cli_reply rep;
    int npos = 0, rc;

    rc = pt_cli_parse(argc, argv, opts, pos, 0, 0, &npos, usage);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if ((rc = pt_cli_api(datadir, "GET", "/nodes", NULL, NULL, &rep)) != 0)
        return rc;
    json_t *nodes = json_object_get(rep.body, "nodes");
    if (as_json != NULL) {
        char *text = json_dumps(nodes, JSON_INDENT(2));
        if (text != NULL)
            printf("%s\n", text);
        else
            rc = pt_cli_error("out of memory");
        free(text);
    } else {
        static const char *const head[] = {"NODE",    "STATE",     "HOST",     "VERSION",
                                           "STARTED", "LAST SEEN", "ADDRESSES"};
        pt_cli_table *t = pt_cli_table_new_header(7, head);
        size_t i;
        json_t *nd;
        json_array_foreach(nodes, i, nd)
        {
            if (t == NULL)
                break;
            char *addrs = addresses_cell(nd);
            pt_cli_table_adds(t, json_string_value(json_object_get(nd, "id")));
            pt_cli_table_adds(t, json_is_true(json_object_get(nd, "live")) ? "live" : "stale");
            pt_cli_table_adds(t, json_string_value(json_object_get(nd, "host")));
            pt_cli_table_adds(t, json_string_value(json_object_get(nd, "version")));
            pt_cli_table_add_time(t, json_integer_value(json_object_get(nd, "started")), "-");
            pt_cli_table_add_time(t, json_integer_value(json_object_get(nd, "last_seen")), "-");
            pt_cli_table_adds(t, addrs != NULL ? addrs : "");
            free(addrs);
        }
        if (t != NULL)
            pt_cli_table_print(t, stdout, 0);
        else
            rc = pt_cli_error("out of memory");
        pt_cli_table_free(t);
        if (rc == 0 && json_array_size(nodes) == 0)
            printf("(no node has served this install yet: `portico serve` writes a heartbeat)\n");
    }
    pt_cli_reply_clear(&rep);
    return rc;
}
