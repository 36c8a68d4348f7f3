/* cli_script.c - `portico script add|list|show|diff|rollback|rename|rm`: versioned handler
 * scripts, through the admin API (cli_api.h: in-process on the data dir, or --server). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "cli/cli.h"
#include "cli/cli_api.h"
#include "core/err.h"
#include "store/store.h"

static const char script_usage[] =
    "script add NAME FILE | list | show NAME|--id ID [--version V] [--info] | "
    "diff NAME [--from V] [--to V] | rollback NAME [VERSION] | rename NAME NEW_NAME | rm NAME";

/* Integer member `key` of o, or 0. */
static json_int_t
int_of(json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

/* String member `key` of o, or "". Borrowed from o. */
static const char *
str_of(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s != NULL ? s : "";
}

static int
script_add(const char *datadir, int argc, char **argv)
{
    const char *usage = "script add NAME FILE";
    pt_cli_reply rep;
    char *pos[2], *source = NULL, path[1024];
    size_t len = 0;
    int npos = 0, rc;

    rc = pt_cli_parse(argc, argv, NULL, pos, 2, 2, &npos, usage);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (!pt_store_script_name_valid(pos[0]))
        return pt_cli_error("invalid script name '%s' (1 to 128 bytes of UTF-8, no control "
                            "characters, no leading or trailing space)",
                            pos[0]);
    /* One byte over the API's cap, so that the server gives its own refusal (413). */
    if (pt_cli_read_file(pos[1], PT_ADMIN_SCRIPT_MAX + 1, &source, &len) != 0)
        return PT_CLI_ERROR;
    json_t *src = json_stringn(source, len);
    free(source);
    if (src == NULL)
        return pt_cli_error("%s is not UTF-8 text", pos[1]);
    if (pt_cli_api_path(path, sizeof path, "scripts", pos[0], "versions", NULL) != 0) {
        json_decref(src);
        return pt_cli_error("the script name is too long");
    }
    /* The server compiles it first: a script that cannot run never becomes current. */
    rc = pt_cli_api(datadir, "POST", path, NULL, json_pack("{s:o}", "source", src), &rep);
    if (rc != 0)
        return rc;
    printf("script %s version %d\n", str_of(rep.body, "name"), (int)int_of(rep.body, "version"));
    pt_cli_reply_clear(&rep);
    return 0;
}

static int
script_list(const char *datadir, int argc, char **argv)
{
    static const pt_cli_col cols[] = {
        {"ID", "id", PT_CLI_COL_TEXT, NULL, NULL},
        {"NAME", "name", PT_CLI_COL_TEXT, NULL, NULL},
        {"CURRENT", "current", PT_CLI_COL_TEXT, NULL, NULL},
        {"VERSIONS", "versions", PT_CLI_COL_TEXT, NULL, NULL},
        {"MODE", "run_mode", PT_CLI_COL_TEXT, NULL, NULL},
        {"UPDATED", "updated", PT_CLI_COL_TIME, "-", NULL},
    };

    return pt_cli_api_list_cmd(datadir, argc, argv, "script list", "/scripts", "scripts", cols, 6);
}

/* The name of the script with id `id` into out (from GET /scripts). 0 or the exit status. */
static int
name_of_id(const char *datadir, long id, char *out, size_t outsz)
{
    pt_cli_reply rep;
    size_t i;
    json_t *s;
    int rc = pt_cli_api(datadir, "GET", "/scripts", NULL, NULL, &rep);

    if (rc != 0)
        return rc;
    rc = PT_CLI_ERROR;
    json_array_foreach(json_object_get(rep.body, "scripts"), i, s)
    {
        if (int_of(s, "id") == id) {
            snprintf(out, outsz, "%s", str_of(s, "name"));
            rc = 0;
            break;
        }
    }
    pt_cli_reply_clear(&rep);
    return rc == 0 ? 0 : pt_cli_error("no script with id %ld", id);
}

static int
script_show(const char *datadir, int argc, char **argv)
{
    const char *usage = "script show NAME|--id ID [--version V] [--info]";
    const char *vopt = NULL, *idopt = NULL, *info = NULL;
    pt_cli_opt opts[] = {
        {"--version", 1, &vopt}, {"--id", 1, &idopt}, {"--info", 0, &info}, {NULL, 0, NULL}};
    pt_cli_reply rep;
    char *pos[1], name[512], path[1024], when[64], vtext[16];
    long version = 0, id = 0;
    int npos = 0, rc;

    rc = pt_cli_parse(argc, argv, opts, pos, 0, 1, &npos, usage);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if ((npos == 1) == (idopt != NULL))
        return pt_cli_usage(usage);
    if (vopt != NULL && pt_cli_parse_long(vopt, 1, 1000000000, &version) != 0)
        return pt_cli_error("invalid --version '%s' (a version number: 1, 2, ...)", vopt);
    if (idopt != NULL && pt_cli_parse_long(idopt, 1, INT64_MAX, &id) != 0)
        return pt_cli_error("invalid --id '%s' (a script id: see 'portico script list')", idopt);
    if (idopt != NULL) {
        if ((rc = name_of_id(datadir, id, name, sizeof name)) != 0)
            return rc;
    } else {
        snprintf(name, sizeof name, "%s", pos[0]);
    }
    snprintf(vtext, sizeof vtext, "%ld", version);
    /* /scripts/NAME/versions/V, or /scripts/NAME (the current one): without --version the
     * NULL in place of "versions" ends the segments there. */
    if (pt_cli_api_path(path, sizeof path, "scripts", name, version ? "versions" : NULL, vtext,
                        NULL) != 0)
        return pt_cli_error("the script name is too long");
    if ((rc = pt_cli_api(datadir, "GET", path, NULL, NULL, &rep)) != 0)
        return rc;
    if (info != NULL) {
        pt_cli_format_time(int_of(rep.body, "created"), when, sizeof when);
        printf("id: %lld\nname: %s\nversion: %d\ncurrent: %d\nrun_mode: %s\ncreated: %s\n",
               (long long)int_of(rep.body, "id"), str_of(rep.body, "name"),
               (int)int_of(rep.body, "version"), (int)int_of(rep.body, "current"),
               str_of(rep.body, "run_mode"), when);
    } else {
        /* The source exactly as stored, so that `script show` output can be compared with a
         * file. */
        json_t *src = json_object_get(rep.body, "source");
        fwrite(json_string_value(src), 1, json_string_length(src), stdout);
    }
    pt_cli_reply_clear(&rep);
    return 0;
}

static int
script_diff(const char *datadir, int argc, char **argv)
{
    const char *usage = "script diff NAME [--from V] [--to V]";
    const char *from = NULL, *to = NULL;
    pt_cli_opt opts[] = {{"--from", 1, &from}, {"--to", 1, &to}, {NULL, 0, NULL}};
    pt_cli_reply rep;
    char *pos[1], path[1024];
    long v;
    int npos = 0, rc;

    rc = pt_cli_parse(argc, argv, opts, pos, 1, 1, &npos, usage);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (from != NULL && pt_cli_parse_long(from, 1, 1000000000, &v) != 0)
        return pt_cli_error("invalid --from '%s' (a version number: 1, 2, ...)", from);
    if (to != NULL && pt_cli_parse_long(to, 1, 1000000000, &v) != 0)
        return pt_cli_error("invalid --to '%s' (a version number: 1, 2, ...)", to);
    if (pt_cli_api_path(path, sizeof path, "scripts", pos[0], "diff", NULL) != 0)
        return pt_cli_error("the script name is too long");
    json_t *query = json_object();
    if (from != NULL)
        json_object_set_new(query, "from", json_string(from));
    if (to != NULL)
        json_object_set_new(query, "to", json_string(to));
    if ((rc = pt_cli_api(datadir, "GET", path, query, NULL, &rep)) != 0)
        return rc;
    if (rep.raw != NULL)
        fwrite(rep.raw, 1, rep.raw_len, stdout);
    pt_cli_reply_clear(&rep);
    return 0;
}

static int
script_rollback(const char *datadir, int argc, char **argv)
{
    const char *usage = "script rollback NAME [VERSION]";
    pt_cli_reply rep;
    char *pos[2], path[1024];
    long version = 0;
    int npos = 0, rc;

    rc = pt_cli_parse(argc, argv, NULL, pos, 1, 2, &npos, usage);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (npos == 2 && pt_cli_parse_long(pos[1], 1, 1000000000, &version) != 0)
        return pt_cli_error("invalid version '%s' (a version number: 1, 2, ...)", pos[1]);
    if (pt_cli_api_path(path, sizeof path, "scripts", pos[0], "rollback", NULL) != 0)
        return pt_cli_error("the script name is too long");
    rc = pt_cli_api(
        datadir, "POST", path, NULL,
        version != 0 ? json_pack("{s:I}", "version", (json_int_t)version) : json_object(), &rep);
    if (rc != 0)
        return rc;
    printf("script %s now runs version %d\n", pos[0], (int)int_of(rep.body, "current"));
    pt_cli_reply_clear(&rep);
    return 0;
}

static int
script_rename(const char *datadir, int argc, char **argv)
{
    pt_cli_reply rep;
    char *pos[2], path[1024];
    int npos = 0, rc;

    rc = pt_cli_parse(argc, argv, NULL, pos, 2, 2, &npos, "script rename NAME NEW_NAME");
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (!pt_store_script_name_valid(pos[1]))
        return pt_cli_error("invalid script name '%s' (1 to 128 bytes of UTF-8, no control "
                            "characters, no leading or trailing space)",
                            pos[1]);
    if (pt_cli_api_path(path, sizeof path, "scripts", pos[0], NULL) != 0)
        return pt_cli_error("the script name is too long");
    rc = pt_cli_api(datadir, "PATCH", path, NULL, json_pack("{s:s}", "name", pos[1]), &rep);
    if (rc != 0)
        return rc;
    printf("script %s renamed to %s\n", pos[0], pos[1]);
    pt_cli_reply_clear(&rep);
    return 0;
}

static int
script_rm(const char *datadir, int argc, char **argv)
{
    pt_cli_reply rep;
    char *pos[1], path[1024];
    int npos = 0, rc;

    rc = pt_cli_parse(argc, argv, NULL, pos, 1, 1, &npos, "script rm NAME");
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (pt_cli_api_path(path, sizeof path, "scripts", pos[0], NULL) != 0)
        return pt_cli_error("the script name is too long");
    if ((rc = pt_cli_api(datadir, "DELETE", path, NULL, NULL, &rep)) != 0)
        return rc;
    printf("script %s removed\n", pos[0]);
    pt_cli_reply_clear(&rep);
    return 0;
}

static const pt_cli_sub script_subs[] = {{"add", NULL, script_add, PT_CLI_REMOTE},
                                         {"list", "ls", script_list, PT_CLI_REMOTE},
                                         {"show", NULL, script_show, PT_CLI_REMOTE},
                                         {"diff", NULL, script_diff, PT_CLI_REMOTE},
                                         {"rollback", NULL, script_rollback, PT_CLI_REMOTE},
                                         {"rename", NULL, script_rename, PT_CLI_REMOTE},
                                         {"rm", NULL, script_rm, PT_CLI_REMOTE},
                                         {NULL, NULL, NULL, 0}};

int
pt_cli_script(const char *datadir, int argc, char **argv)
{
    return pt_cli_dispatch("script", script_usage, script_subs, datadir, argc, argv);
}
