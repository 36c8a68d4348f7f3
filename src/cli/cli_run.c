/* cli_run.c - `portico run FILE.py [ARGS...]`: a standalone script with `pq` available. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "py/py.h"

int
pt_cli_run(const char *datadir, int argc, char **argv)
{
    const char *usage = "run FILE.py [ARGS...]";
    struct stat sb;

    /* Everything after FILE belongs to the script (main.c leaves it untouched). */
    if (argc == 0)
        return pt_cli_usage(usage);
    if (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
        printf("usage: portico %s\n", usage);
        return 0;
    }
    if (pt_cli_need_datadir(datadir) != 0)
        return PT_CLI_ERROR;
    if (stat(argv[0], &sb) != 0)
        return pt_cli_error("cannot read %s: %s", argv[0], strerror(errno));
    if (S_ISDIR(sb.st_mode))
        return pt_cli_error("cannot read %s: is a directory", argv[0]);
    if (access(argv[0], R_OK) != 0)
        return pt_cli_error("cannot read %s: %s", argv[0], strerror(errno));
    /* sys.argv is [FILE, ARGS...], as `python3 FILE ARGS...` gives. */
    return pt_py_run_file(datadir, argv[0], argc, argv);
}
