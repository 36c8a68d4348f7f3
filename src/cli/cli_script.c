/* cli_script.c - `portico script add|list|show|rollback|rm`: versioned handler scripts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/err.h"
#include "py/py.h"
#include "store/store.h"

#define SCRIPT_MAX (16u << 20) /* bytes; handler scripts are small, this catches mistakes */

static const char script_usage[] =
    "script add NAME FILE | list | show NAME|--id ID [--version V] [--info] | "
    "rollback NAME [VERSION] | rename NAME NEW_NAME | rm NAME";

static int
script_add(const char *datadir, int argc, char **argv)
{
    const char *usage = "script add NAME FILE";
    pt_store *st = NULL;
    char *pos[2], *source = NULL, err[1024] = "";
    size_t len = 0;
    int npos = 0, version = 0, rc;

    rc = pt_cli_parse(argc, argv, NULL, pos, 2, 2, &npos, usage);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (pt_cli_need_datadir(datadir) != 0)
        return PT_CLI_ERROR;
    if (!pt_store_script_name_valid(pos[0]))
        return pt_cli_error("invalid script name '%s' (1 to 128 bytes of UTF-8, no control "
                            "characters, no leading or trailing space)",
                            pos[0]);
    if (pt_cli_read_file(pos[1], SCRIPT_MAX, &source, &len) != 0)
        return PT_CLI_ERROR;

    /* Compile first: a script that cannot run never becomes current. */
    rc = pt_py_check_syntax(source, len, pos[1], err, sizeof err);
    if (rc != 0) {
        rc = pt_cli_error("%s: %s", pos[1], err[0] != '\0' ? err : pt_strerror(rc));
        goto done;
    }
    rc = pt_cli_open_store(datadir, &st);
    if (rc != 0)
        goto done;
    if (pt_store_script_put(st, pos[0], source, len, &version) != 0) {
        rc = pt_cli_error("%s", pt_store_errmsg(st));
        goto done;
    }
    printf("script %s version %d\n", pos[0], version);
done:
    pt_store_close(st);
    free(source);
    return rc;
}

static int
script_rows(pt_store *st, pt_cli_table *t)
{
    pt_script *list = NULL;
    size_t n = 0, i, j;
    int bad = 0;

    if (pt_store_script_list(st, &list, &n) != 0)
        return pt_cli_error("%s", pt_store_errmsg(st));
    for (i = 0; !bad && i < n; i++) {
        pt_script *versions = NULL;
        size_t nv = 0;
        int64_t updated = list[i].created;
        char id[32], num[32], count[32], when[64];

        /* "Updated" is when the newest version was stored. */
        if (pt_store_script_versions(st, list[i].name, &versions, &nv) == 0)
            for (j = 0; j < nv; j++)
                if (versions[j].created > updated)
                    updated = versions[j].created;
        pt_store_scripts_free(versions, nv);
        snprintf(id, sizeof id, "%lld", (long long)list[i].id);
        snprintf(num, sizeof num, "%d", list[i].current);
        snprintf(count, sizeof count, "%zu", nv);
        pt_cli_format_time(updated, when, sizeof when);
        bad = pt_cli_table_adds(t, id) || pt_cli_table_adds(t, list[i].name) ||
              pt_cli_table_adds(t, num) || pt_cli_table_adds(t, count) ||
              pt_cli_table_adds(t, list[i].run_mode) || pt_cli_table_adds(t, when);
    }
    pt_store_scripts_free(list, n);
    return bad ? pt_cli_error("out of memory") : 0;
}

static int
script_list(const char *datadir, int argc, char **argv)
{
    static const char *const head[] = {"ID", "NAME", "CURRENT", "VERSIONS", "MODE", "UPDATED"};

    return pt_cli_store_list_cmd(datadir, argc, argv, "script list", head, 6, script_rows);
}

static int
script_show(const char *datadir, int argc, char **argv)
{
    const char *usage = "script show NAME|--id ID [--version V] [--info]";
    const char *vopt = NULL, *idopt = NULL, *info = NULL;
    pt_cli_opt opts[] = {
        {"--version", 1, &vopt}, {"--id", 1, &idopt}, {"--info", 0, &info}, {NULL, 0, NULL}};
    pt_store *st = NULL;
    pt_script *s = NULL;
    char *pos[1], when[64];
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
    rc = pt_cli_open_store(datadir, &st);
    if (rc != 0)
        return rc;
    if ((idopt != NULL ? pt_store_script_get_by_id(st, id, (int)version, &s)
                       : pt_store_script_get(st, pos[0], (int)version, &s)) != 0) {
        rc = pt_cli_error("%s", pt_store_errmsg(st));
        goto done;
    }
    if (info != NULL) {
        pt_cli_format_time(s->created, when, sizeof when);
        printf("id: %lld\nname: %s\nversion: %d\ncurrent: %d\nrun_mode: %s\ncreated: %s\n",
               (long long)s->id, s->name, s->version, s->current, s->run_mode, when);
        goto done;
    }
    /* The source exactly as stored, so that `script show` output can be compared with a
     * file. */
    fwrite(s->source, 1, s->source_len, stdout);
done:
    pt_script_free(s);
    pt_store_close(st);
    return rc;
}

static int
script_rollback(const char *datadir, int argc, char **argv)
{
    const char *usage = "script rollback NAME [VERSION]";
    pt_store *st = NULL;
    char *pos[2];
    long version = 0;
    int npos = 0, now = 0, rc;

    rc = pt_cli_parse(argc, argv, NULL, pos, 1, 2, &npos, usage);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (npos == 2 && pt_cli_parse_long(pos[1], 1, 1000000000, &version) != 0)
        return pt_cli_error("invalid version '%s' (a version number: 1, 2, ...)", pos[1]);
    rc = pt_cli_open_store(datadir, &st);
    if (rc != 0)
        return rc;
    if (pt_store_script_rollback(st, pos[0], (int)version, &now) != 0) {
        rc = pt_cli_error("%s", pt_store_errmsg(st));
        goto done;
    }
    printf("script %s now runs version %d\n", pos[0], now);
done:
    pt_store_close(st);
    return rc;
}

static int
script_rename(const char *datadir, int argc, char **argv)
{
    const char *usage = "script rename NAME NEW_NAME";
    pt_store *st = NULL;
    char *pos[2];
    int npos = 0, rc;

    rc = pt_cli_parse(argc, argv, NULL, pos, 2, 2, &npos, usage);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    rc = pt_cli_open_store(datadir, &st);
    if (rc != 0)
        return rc;
    if (pt_store_script_rename(st, pos[0], pos[1]) != 0)
        rc = pt_cli_error("%s", pt_store_errmsg(st));
    else
        printf("script %s renamed to %s\n", pos[0], pos[1]);
    pt_store_close(st);
    return rc;
}

static int
script_rm(const char *datadir, int argc, char **argv)
{
    return pt_cli_store_name_cmd(datadir, argc, argv, "script rm NAME", pt_store_script_rm,
                                 "script ", " removed");
}

static const pt_cli_sub script_subs[] = {{"add", NULL, script_add},
                                         {"list", "ls", script_list},
                                         {"show", NULL, script_show},
                                         {"rollback", NULL, script_rollback},
                                         {"rename", NULL, script_rename},
                                         {"rm", NULL, script_rm},
                                         {NULL, NULL, NULL}};

int
pt_cli_script(const char *datadir, int argc, char **argv)
{
    return pt_cli_dispatch("script", script_usage, script_subs, datadir, argc, argv);
}
