/* cli_init.c - `portico init`: creates the data dir, its layout, the install's keys and the
 * metadata store. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "auth/keys.h"
#include "cli/cli.h"
#include "core/err.h"
#include "store/changes.h"
#include "store/store.h"

/* Layout of a data dir (0700 throughout: it holds keys and data):
 *   portico.db          the metadata store (store_sqlite.c)
 *   run/changes         the change counter (changes.c)
 *   warehouse/dw/       the built-in warehouse, one <schema>.db per schema (wh_sqlite.c)
 *   keys/               jwt.key, apikey.key, master.key: 256-bit keys, 0600 (auth/keys.h);
 *                       master.key only when $PORTICO_MASTER_KEY is not set
 * init creates only what is missing: a key, once made, is never replaced (tokens, API keys
 * and secrets depend on it). */
int
pt_cli_init(const char *datadir, int argc, char **argv)
{
    static const char *subdirs[] = {"run", "warehouse", "warehouse/dw"};
    const char *usage = "init";
    char path[4096], err[512];
    struct stat sb;
    pt_store *st = NULL;
    pt_changes *ch = NULL;
    char *pos[1];
    int npos = 0, existed, rc, nkeys = 0;
    size_t i;

    rc = pt_cli_parse(argc, argv, NULL, pos, 0, 0, &npos, usage);
    if (rc != 0)
        return rc < 0 ? 0 : rc;

    snprintf(path, sizeof path, "%s/portico.db", datadir);
    existed = stat(path, &sb) == 0;
    if (pt_cli_mkdir_p(datadir, 0700) != 0)
        return pt_cli_error("cannot create %s: %s", datadir, strerror(errno));
    for (i = 0; i < sizeof subdirs / sizeof subdirs[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", datadir, subdirs[i]);
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            return pt_cli_error("cannot create %s: %s", path, strerror(errno));
    }
    if (pt_store_open(datadir, &st, err, sizeof err) != 0)
        return pt_cli_error("%s", err);
    pt_store_close(st);
    rc = pt_changes_open(datadir, &ch);
    if (rc != 0)
        return pt_cli_error("cannot create %s/run/changes: %s", datadir, pt_strerror(rc));
    pt_changes_close(ch);
    if (pt_keys_init(datadir, &nkeys, err, sizeof err) != 0)
        return pt_cli_error("%s", err);

    if (existed && nkeys > 0)
        printf("data dir %s is ready (it was already initialised; %d missing key%s created)\n",
               datadir, nkeys, nkeys == 1 ? "" : "s");
    else if (existed)
        printf("data dir %s is ready (it was already initialised)\n", datadir);
    else
        printf("initialised data dir %s\n", datadir);
    return 0;
}
