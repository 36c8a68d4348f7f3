/* cli_deploy.c - `portico export DIR` and `portico apply DIR [--dry-run] [--prune]`: the
 * install's scripts, endpoints and webhook sources as files to keep in git, and back. */

/*
 * The directory: scripts/NAME.py (the current version's source), endpoints/NAME.json and
 * webhooks/NAME.json (the objects the admin API gives, without read-only fields such as
 * "created"; keys sorted, two-space indent, one trailing newline, so that a diff shows only
 * what changed). A script's name may hold spaces and any UTF-8 ("Load - Data Warehouse"): in its
 * file name '%', '/' and a leading '.' are written %25, %2F and %2E. A webhook source names its
 * secret; secret values and connections' DSNs are never written. Both commands go through the admin
 * API (cli_api.h), so they work on a data dir and with --server alike; apply is one POST /apply,
 * which plans and applies in one transaction on the other side (admin_apply.c).
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/cli.h"
#include "cli/cli_api.h"
#include "store/store.h"

#define SCRIPT_MAX ((size_t)4 << 20)

/* The three kinds: the directory, the file extension, the admin API's list route and member,
 * and the key of POST /apply's body. */
typedef struct kind {
    const char *dir, *ext, *list, *member, *apply_key, *label;
} kind;

static const kind kinds[] = {
    {"scripts", ".py", "/scripts", "scripts", "scripts", "script"},
    {"endpoints", ".json", "/endpoints", "endpoints", "endpoints", "endpoint"},
    {"webhooks", ".json", "/webhooks/sources", "sources", "webhook_sources", "webhook source"},
};
#define NKINDS (sizeof kinds / sizeof kinds[0])

/* Fields the admin API gives and never takes: left out of the files. */
static const char *const read_only[] = {"name", "created", "id", "updated", "webhook", NULL};

/* An endpoint's "settings" in an export name only the settings it sets: null members (the
 * server-wide value) are left out, and so is an empty object. o borrowed, changed in place. */
static void
drop_default_settings(json_t *o)
{
    json_t *set = json_object_get(o, "settings"), *v;
    const char *key;
    void *tmp;

    if (!json_is_object(set))
        return;
    json_object_foreach_safe(set, tmp, key, v)
    {
        if (json_is_null(v))
            json_object_del(set, key);
    }
    if (json_object_size(set) == 0)
        json_object_del(o, "settings");
}

/* The file name stem of an object's name into out: '%', '/' and a leading '.' percent-encoded.
 * Returns 0, or -1 when out is too small. */
static int
name_to_stem(const char *name, char *out, size_t outsz)
{
    size_t o = 0;

    for (const char *p = name; *p != '\0'; p++) {
        if (o + 4 > outsz)
            return -1;
        if (*p == '%' || *p == '/' || (p == name && *p == '.'))
            o += (size_t)snprintf(out + o, outsz - o, "%%%02X", (unsigned char)*p);
        else
            out[o++] = *p;
    }
    out[o] = '\0';
    return 0;
}

/* The name a file name stem stands for (stem[0..n)), %XX decoded, into out (at least n + 1
 * bytes). Returns 0, or -1 for a malformed escape. */
static int
stem_to_name(const char *stem, size_t n, char *out)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        if (stem[i] != '%') {
            out[o++] = stem[i];
            continue;
        }
        unsigned v;
        if (i + 2 >= n || !isxdigit((unsigned char)stem[i + 1]) ||
            !isxdigit((unsigned char)stem[i + 2]) || sscanf(stem + i + 1, "%2x", &v) != 1)
            return -1;
        out[o++] = (char)v;
        i += 2;
    }
    out[o] = '\0';
    return 0;
}

static int
write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "w");
    int ok;

    if (f == NULL)
        return pt_cli_error("cannot write %s: %s", path, strerror(errno));
    ok = fwrite(data, 1, len, f) == len;
    ok = fclose(f) == 0 && ok;
    return ok ? 0 : pt_cli_error("cannot write %s: %s", path, strerror(errno));
}

/* Removes the files of dir ending in ext whose names are not members of keep. */
static int
remove_stale(const char *dir, const char *ext, json_t *keep)
{
    DIR *d = strlen(dir) < 2048 ? opendir(dir) : NULL;
    struct dirent *e;
    char path[2048 + 410], name[400];
    size_t el = strlen(ext);
    int rc = 0;

    if (d == NULL)
        return 0;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (e->d_name[0] == '.' || n <= el || n - el >= sizeof name ||
            strcmp(e->d_name + n - el, ext) != 0)
            continue;
        memcpy(name, e->d_name, n - el);
        name[n - el] = '\0';
        if (json_object_get(keep, name) != NULL)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) != 0)
            rc = pt_cli_error("cannot remove %s: %s", path, strerror(errno));
    }
    closedir(d);
    return rc;
}

/* Writes one kind's files: every object of the list route, a script's source fetched one by
 * one. *count gets the number written. */
static int
export_kind(const char *datadir, const char *root, const kind *k, int *count)
{
    pt_cli_reply rep = {0}, one = {0};
    json_t *items, *v, *written = json_object();
    char dir[2048], path[4096], api[512];
    size_t i;
    int rc;

    *count = 0;
    snprintf(dir, sizeof dir, "%s/%s", root, k->dir);
    if (written == NULL)
        return pt_cli_error("out of memory");
    if (pt_cli_mkdir_p(dir, 0755) != 0) {
        json_decref(written);
        return pt_cli_error("cannot create %s: %s", dir, strerror(errno));
    }
    if ((rc = pt_cli_api(datadir, "GET", k->list, NULL, NULL, &rep)) != 0) {
        json_decref(written);
        return rc;
    }
    items = json_object_get(rep.body, k->member);
    json_array_foreach(items, i, v)
    {
        const char *name = json_string_value(json_object_get(v, "name"));
        int is_script = strcmp(k->dir, "scripts") == 0;
        char *text, stem[400];
        if (name == NULL ||
            !(is_script ? pt_store_script_name_valid(name) : pt_store_name_valid(name)) ||
            name_to_stem(name, stem, sizeof stem) != 0)
            continue; /* never a file name outside dir */
        snprintf(path, sizeof path, "%s/%s%s", dir, stem, k->ext);
        if (is_script) {
            if (pt_cli_api_path(api, sizeof api, "scripts", name, NULL) != 0) {
                rc = pt_cli_error("script name too long: %s", name);
                break;
            }
            if ((rc = pt_cli_api(datadir, "GET", api, NULL, NULL, &one)) != 0)
                break;
            json_t *src = json_object_get(one.body, "source");
            rc = write_file(path, json_string_value(src) != NULL ? json_string_value(src) : "",
                            json_string_length(src));
            pt_cli_reply_clear(&one);
        } else {
            json_t *o = json_deep_copy(v);
            for (size_t r = 0; o != NULL && read_only[r] != NULL; r++)
                json_object_del(o, read_only[r]);
            drop_default_settings(o);
            text = o != NULL ? json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
            json_decref(o);
            if (text == NULL) {
                rc = pt_cli_error("out of memory");
                break;
            }
            char *nl = realloc(text, strlen(text) + 2);
            if (nl == NULL) {
                free(text);
                rc = pt_cli_error("out of memory");
                break;
            }
            strcat(nl, "\n");
            rc = write_file(path, nl, strlen(nl));
            free(nl);
        }
        if (rc != 0)
            break;
        json_object_set_new(written, stem, json_true());
        (*count)++;
    }
    pt_cli_reply_clear(&rep);
    if (rc == 0)
        rc = remove_stale(dir, k->ext, written);
    json_decref(written);
    return rc;
}

static int
cmd_export(const char *datadir, int argc, char **argv)
{
    const char *usage = "export DIR";
    char *pos[1];
    int npos = 0, rc, counts[NKINDS];

    rc = pt_cli_parse(argc, argv, NULL, pos, 1, 1, &npos, usage);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (strlen(pos[0]) > 1024)
        return pt_cli_error("directory name too long");
    if (pt_cli_mkdir_p(pos[0], 0755) != 0)
        return pt_cli_error("cannot create %s: %s", pos[0], strerror(errno));
    for (size_t k = 0; k < NKINDS; k++)
        if ((rc = export_kind(datadir, pos[0], &kinds[k], &counts[k])) != 0)
            return rc;
    printf("exported %d script%s, %d endpoint%s and %d webhook source%s to %s\n", counts[0],
           counts[0] == 1 ? "" : "s", counts[1], counts[1] == 1 ? "" : "s", counts[2],
           counts[2] == 1 ? "" : "s", pos[0]);
    return 0;
}

/* Reads one kind's files into want (name -> source text or object). A bad file is an error
 * naming it (and its line, for JSON). */
static int
read_kind(const char *root, const kind *k, json_t *want)
{
    struct dirent **list = NULL;
    char dir[2048], path[4096], name[400], stem[400];
    size_t el = strlen(k->ext);
    int n, i, rc = 0;

    snprintf(dir, sizeof dir, "%s/%s", root, k->dir);
    n = scandir(dir, &list, NULL, alphasort);
    if (n < 0)
        return errno == ENOENT ? 0 : pt_cli_error("cannot read %s: %s", dir, strerror(errno));
    for (i = 0; i < n; i++) {
        const char *f = list[i]->d_name;
        size_t fl = strlen(f);
        struct stat sb;
        if (rc != 0 || f[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, f);
        if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode) || fl <= el ||
            strcmp(f + fl - el, k->ext) != 0) {
            rc = pt_cli_error("%s: unexpected file (%s/ holds NAME%s files)", path, k->dir, k->ext);
            continue;
        }
        if (fl - el >= sizeof name) {
            rc = pt_cli_error("%s: name too long", path);
            continue;
        }
        memcpy(stem, f, fl - el);
        stem[fl - el] = '\0';
        if (stem_to_name(stem, fl - el, name) != 0) {
            rc = pt_cli_error("%s: a '%%' in a file name is followed by two hex digits", path);
            continue;
        }
        if (strcmp(k->ext, ".py") == 0 ? !pt_store_script_name_valid(name)
                                       : !pt_store_name_valid(name)) {
            rc = pt_cli_error("%s: invalid %s name '%s'%s", path, k->label, name,
                              strcmp(k->ext, ".py") == 0 ? ""
                                                         : " (letters, digits, _ . -; at most 64)");
            continue;
        }
        if (strcmp(k->ext, ".py") == 0) {
            char *data = NULL;
            size_t len = 0;
            if (pt_cli_read_file(path, SCRIPT_MAX, &data, &len) != 0) {
                rc = PT_CLI_ERROR;
                continue;
            }
            json_t *s = json_stringn(data, len);
            free(data);
            if (s == NULL) {
                rc = pt_cli_error("%s: not UTF-8 text", path);
                continue;
            }
            json_object_set_new(want, name, s);
        } else {
            json_error_t jerr;
            json_t *o = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
            if (o == NULL) {
                rc = pt_cli_error("%s:%d: %s", path, jerr.line, jerr.text);
                continue;
            }
            if (!json_is_object(o)) {
                json_decref(o);
                rc = pt_cli_error("%s:1: expected a JSON object", path);
                continue;
            }
            json_t *nm = json_object_get(o, "name");
            if (nm != NULL && (!json_is_string(nm) || strcmp(json_string_value(nm), name) != 0)) {
                json_decref(o);
                rc = pt_cli_error("%s: \"name\" differs from the file name '%s'", path, name);
                continue;
            }
            json_object_set_new(want, name, o);
        }
    }
    for (i = 0; i < n; i++)
        free(list[i]);
    free(list);
    return rc;
}

/* Prints a refusal of POST /apply, naming the file of the item it is about. */
static int
apply_error(const char *root, const pt_cli_reply *rep)
{
    json_t *err = json_object_get(rep->body, "error");
    const char *field = json_string_value(json_object_get(err, "field"));
    const char *msg = json_string_value(json_object_get(err, "message"));
    const char *colon = field != NULL ? strchr(field, ':') : NULL;
    char stem[400];

    if (colon == NULL || msg == NULL)
        return pt_cli_api_error(rep);
    for (size_t k = 0; k < NKINDS; k++) {
        const char *kd =
            strcmp(kinds[k].apply_key, "webhook_sources") == 0 ? "webhook_source" : kinds[k].label;
        if (strlen(kd) == (size_t)(colon - field) && strncmp(field, kd, strlen(kd)) == 0 &&
            name_to_stem(colon + 1, stem, sizeof stem) == 0)
            return pt_cli_error("%s/%s/%s%s: %s (nothing was applied)", root, kinds[k].dir, stem,
                                kinds[k].ext, msg);
    }
    return pt_cli_api_error(rep);
}

static int
cmd_apply(const char *datadir, int argc, char **argv)
{
    const char *usage = "apply DIR [--dry-run] [--prune]";
    const char *dry = NULL, *prune = NULL;
    pt_cli_opt opts[] = {{"--dry-run", 0, &dry}, {"--prune", 0, &prune}, {NULL, 0, NULL}};
    pt_cli_reply rep = {0};
    struct stat sb;
    json_t *body, *plan, *item;
    char *pos[1];
    size_t i;
    int npos = 0, rc;

    rc = pt_cli_parse(argc, argv, opts, pos, 1, 1, &npos, usage);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (strlen(pos[0]) > 1024)
        return pt_cli_error("directory name too long");
    if (stat(pos[0], &sb) != 0 || !S_ISDIR(sb.st_mode))
        return pt_cli_error("%s: not a directory", pos[0]);
    body = json_pack("{s:b, s:b}", "dry_run", dry != NULL, "prune", prune != NULL);
    for (size_t k = 0; body != NULL && rc == 0 && k < NKINDS; k++) {
        json_t *want = json_object();
        rc = want != NULL ? read_kind(pos[0], &kinds[k], want) : pt_cli_error("out of memory");
        json_object_set_new(body, kinds[k].apply_key, want);
    }
    if (body == NULL)
        return pt_cli_error("out of memory");
    if (rc != 0) {
        json_decref(body);
        return rc;
    }
    if ((rc = pt_cli_api_raw(datadir, "POST", "/apply", NULL, body, &rep)) != 0)
        return rc;
    if (rep.status >= 300) {
        rc = apply_error(pos[0], &rep);
        pt_cli_reply_clear(&rep);
        return rc;
    }
    plan = json_object_get(rep.body, "plan");
    json_array_foreach(plan, i, item)
    {
        const char *kd = json_string_value(json_object_get(item, "kind"));
        json_t *ch = json_object_get(item, "changes"), *c;
        size_t j;
        printf("%-6s %s %s", json_string_value(json_object_get(item, "action")),
               kd != NULL && strcmp(kd, "webhook_source") == 0 ? "webhook source" : kd,
               json_string_value(json_object_get(item, "name")));
        json_array_foreach(ch, j, c) printf("%s%s", j == 0 ? " (" : ", ", json_string_value(c));
        printf("%s\n", json_array_size(ch) > 0 ? ")" : "");
    }
    if (json_array_size(plan) == 0)
        printf("no changes\n");
    else if (dry != NULL)
        printf("dry run: nothing applied (%zu change%s)\n", json_array_size(plan),
               json_array_size(plan) == 1 ? "" : "s");
    else
        printf("applied %zu change%s\n", json_array_size(plan),
               json_array_size(plan) == 1 ? "" : "s");
    pt_cli_reply_clear(&rep);
    return 0;
}

int
pt_cli_export(const char *datadir, int argc, char **argv)
{
    return cmd_export(datadir, argc, argv);
}

int
pt_cli_apply(const char *datadir, int argc, char **argv)
{
    return cmd_apply(datadir, argc, argv);
}
