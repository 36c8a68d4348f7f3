/* main.c - the `portico` command: global options, then dispatch to the command groups in
 * src/cli/. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "cli/cli_api.h"
#include "core/config.h"
#include "core/log.h"
#include "core/version.h"

static const char help_text[] =
    "Portico " PT_VERSION " - publish HTTP API endpoints backed by Python handler scripts.\n"
    "\n"
    "usage: portico [--data DIR | --server URL] COMMAND [ARGS...]\n"
    "\n"
    "  init [--warehouse POSTGRESQL_DSN]      create the data dir (idempotent); --warehouse\n"
    "                                         makes the default warehouse dw PostgreSQL\n"
    "       [--store POSTGRESQL_DSN]          --store (or $PORTICO_STORE) keeps the metadata in\n"
    "                                         PostgreSQL; run again on another node to join\n"
    "  serve [--listen HOST:PORT] [--workers N] [--threads N] [--timeout SECONDS]\n"
    "        [--worker-memory MiB] [--max-body MiB] [--max-header KiB]\n"
    "        [--webhook-attempts N] [--webhook-backoff SECONDS]\n"
    "        [--admin-listen HOST:PORT|off] [--session-idle DURATION]\n"
    "        [--log-max-age 7d] [--log-max-rows N] [--log-max-size 256MiB]\n"
    "                                         run the server (default 127.0.0.1:8080; admin\n"
    "                                         API on 127.0.0.1:8081)\n"
    "  script add NAME FILE                   add a script, or a new version of it\n"
    "  script list | show NAME|--id ID [--version V] [--info]\n"
    "  script diff NAME [--from V] [--to V]   unified diff of two versions\n"
    "  script rollback NAME [VERSION] | rename NAME NEW_NAME | rm NAME\n"
    "  endpoint add NAME --path PATH --script SCRIPT --auth public|jwt|apikey\n"
    "               [--method GET,POST]\n"
    "  endpoint set NAME [--path P] [--script S] [--auth A] [--method M]\n"
    "  endpoint list | show NAME | rm NAME\n"
    "  endpoint test NAME [--method M] [--path P] [--query a=1]... [--header 'K: V']...\n"
    "                [--data @FILE|TEXT] [--json]\n"
    "                                         run an endpoint's script on a request, in this\n"
    "                                         process, without publishing (--data: the body)\n"
    "  token create [--name N] [--expires 30d|never] [--endpoint E]... [--rate 100/min]\n"
    "                                         print a JWT for --auth jwt endpoints\n"
    "  token list | revoke ID\n"
    "  apikey create NAME [--endpoint E]... [--rate 100/min]\n"
    "                                         print an API key (once) for --auth apikey\n"
    "  apikey list | revoke NAME\n"
    "  auth trust --issuer ISS --jwks FILE [--audience AUD]\n"
    "                                         accept RS256/ES256 tokens of an identity provider\n"
    "  auth list | untrust ISS\n"
    "  secret set NAME [--value V]            store a secret (value from stdin), encrypted\n"
    "  secret list | rm NAME | rotate-master\n"
    "  db add NAME --sqlite [DIR]             add an embedded warehouse connection\n"
    "  db add NAME --postgres DSN             add a PostgreSQL connection (checked now)\n"
    "  db list | rm NAME\n"
    "  db import CONN SCHEMA TABLE FILE       import a CSV file or a JSON array of objects\n"
    "  db query CONN SQL [--json]             run SQL and print the rows\n"
    "  run FILE.py [ARGS...]                  run a standalone script with `pq` available\n"
    "  run --script NAME [ARGS...]            run a stored script's current version\n"
    "  runs [--script NAME] [--limit N] | runs show ID\n"
    "                                         recorded runs, and one run's output\n"
    "  webhook url | rotate [--base URL]      the install's webhook URL (and a new one)\n"
    "  webhook events [--since ID] [--limit N] [--source NAME] [--json] | replay ID\n"
    "  webhook source add NAME [--verify github|stripe|hmac-sha256] [--secret NAME]\n"
    "        [--header H] [--dedup-header H] [--script SCRIPT] [--base URL]\n"
    "  webhook source list | rm NAME\n"
    "  user add NAME --role admin|editor|viewer\n"
    "                                         add an admin API user (password prompted twice,\n"
    "                                         or read from stdin)\n"
    "  user list | rm NAME | passwd NAME | role NAME ROLE\n"
    "  user token create NAME [--name LABEL] [--expires 30d]\n"
    "                                         print an admin API token (once)\n"
    "  user token list [NAME] | revoke ID\n"
    "  audit [--since 1h] [--actor A] [--limit N] [--json]\n"
    "                                         changes made through the admin API and the CLI\n"
    "  nodes [--json]                         the nodes serving this install (heartbeats), live\n"
    "                                         or stale\n"
    "  logs [--endpoint E] [--status 5xx|500] [--since 1h] [--request-id ID] [--limit N]\n"
    "       [--json] [--follow]                the stored request log: printed lines, tracebacks\n"
    "  export DIR                             write scripts, endpoints and webhook sources to\n"
    "                                         DIR as files to keep in git\n"
    "  apply DIR [--dry-run] [--prune]        make the install match DIR in one transaction\n"
    "                                         (prints the plan; --prune deletes what DIR lacks)\n"
    "  store migrate --to POSTGRESQL_DSN      move this install's metadata store into an\n"
    "                                         empty PostgreSQL one (server stopped; portico.db\n"
    "                                         is kept as portico.db.migrated)\n"
    "  version                                print the version\n"
    "  help                                   print this help (GROUP --help for a group)\n"
    "\n"
    "The data dir is --data DIR (before or after the command), else $PORTICO_DATA, else\n"
    "./portico-data. With --server URL (or $PORTICO_SERVER) and $PORTICO_TOKEN (an admin API\n"
    "token), the commands run against a running server's admin API instead, with the same\n"
    "output; https:// is verified against the system's CAs, or --cacert FILE ($PORTICO_CA_FILE).\n"
    "init, serve, secret rotate-master and store migrate work on the data dir only (with\n"
    "--server: not available remotely, exit 2); run FILE.py sends the file to the server.\n"
    "Errors print one line and exit with status 1 (2 for usage errors).\n";

/* `remote`: the groups whose subcommands say themselves whether they work with --server
 * (PT_CLI_REMOTE), those that always work on the data dir (PT_CLI_LOCAL), and those that have
 * no admin API route yet (0: refused with --server). */
static const pt_cli_sub commands[] = {
    {"init", NULL, pt_cli_init, PT_CLI_LOCAL},
    {"serve", NULL, pt_cli_serve, PT_CLI_LOCAL},
    {"script", NULL, pt_cli_script, PT_CLI_REMOTE},
    {"endpoint", NULL, pt_cli_endpoint, PT_CLI_REMOTE},
    {"db", NULL, pt_cli_db, PT_CLI_REMOTE},
    {"run", NULL, pt_cli_run, PT_CLI_REMOTE},
    {"runs", NULL, pt_cli_runs, PT_CLI_REMOTE},
    {"token", NULL, pt_cli_token, PT_CLI_REMOTE},
    {"apikey", NULL, pt_cli_apikey, PT_CLI_REMOTE},
    {"secret", NULL, pt_cli_secret, PT_CLI_REMOTE},
    {"auth", NULL, pt_cli_auth, PT_CLI_REMOTE},
    {"webhook", NULL, pt_cli_webhook, PT_CLI_REMOTE},
    {"user", NULL, pt_cli_user, PT_CLI_REMOTE},
    {"audit", NULL, pt_cli_audit, PT_CLI_REMOTE},
    {"logs", NULL, pt_cli_logs, PT_CLI_REMOTE},
    {"nodes", NULL, pt_cli_nodes, PT_CLI_REMOTE},
    {"export", NULL, pt_cli_export, PT_CLI_REMOTE},
    {"apply", NULL, pt_cli_apply, PT_CLI_REMOTE},
    {"store", NULL, pt_cli_store},
    {NULL, NULL, NULL},
};

int
main(int argc, char **argv)
{
    const char *data = NULL, *server = NULL;
    const pt_cli_sub *cmd;
    char **args = NULL;
    char *datadir = NULL;
    int nargs = 0, passthrough = 0, i, rc;

    pt_log_init("cli");
    args = calloc((size_t)argc + 1, sizeof *args);
    if (args == NULL) {
        fputs("error: out of memory\n", stderr);
        return 1;
    }
    /* Take out --data wherever it is, except in what a command passes on verbatim: the
     * arguments after `--`, and those of the script in `portico run FILE ARGS`. */
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!passthrough && strcmp(a, "--data") == 0) {
            if (i + 1 >= argc) {
                fputs("error: --data needs a value\n", stderr);
                rc = 1;
                goto done;
            }
            data = argv[++i];
            continue;
        }
        if (!passthrough && strncmp(a, "--data=", 7) == 0) {
            data = a + 7;
            continue;
        }
        if (!passthrough && strcmp(a, "--server") == 0) {
            if (i + 1 >= argc) {
                fputs("error: --server needs a value (http://HOST:PORT of the admin listener)\n",
                      stderr);
                rc = 1;
                goto done;
            }
            server = argv[++i];
            continue;
        }
        if (!passthrough && strncmp(a, "--server=", 9) == 0) {
            server = a + 9;
            continue;
        }
        if (!passthrough && strcmp(a, "--cacert") == 0) {
            if (i + 1 >= argc) {
                fputs("error: --cacert needs a value (a PEM file with the server's CA)\n", stderr);
                rc = 1;
                goto done;
            }
            pt_cli_http_cafile(argv[++i]);
            continue;
        }
        if (!passthrough && strncmp(a, "--cacert=", 9) == 0) {
            pt_cli_http_cafile(a + 9);
            continue;
        }
        args[nargs++] = argv[i];
        if (strcmp(a, "--") == 0 && nargs > 1)
            passthrough = 1;
        if (nargs == 2 && strcmp(args[0], "run") == 0 && a[0] != '-')
            passthrough = 1; /* args[1] is the script */
        if (nargs >= 3 && strcmp(args[0], "run") == 0 && strcmp(args[nargs - 2], "--script") == 0)
            passthrough = 1; /* `run --script NAME ARGS`: args[nargs - 1] is the script */
        /* `endpoint test NAME --data @FILE`: there --data is the request's body; the data dir
         * is given before the command (or $PORTICO_DATA). */
        if (nargs == 2 && strcmp(args[0], "endpoint") == 0 && strcmp(a, "test") == 0)
            passthrough = 1;
    }

    if (nargs == 0) {
        fputs(help_text, stderr);
        rc = 2;
        goto done;
    }
    if (strcmp(args[0], "help") == 0 || strcmp(args[0], "--help") == 0 ||
        strcmp(args[0], "-h") == 0) {
        fputs(help_text, stdout);
        rc = 0;
        goto done;
    }
    if (strcmp(args[0], "version") == 0 || strcmp(args[0], "--version") == 0) {
        puts("portico " PT_VERSION);
        rc = 0;
        goto done;
    }
    cmd = pt_cli_sub_find(commands, args[0]);
    if (cmd == NULL) {
        fprintf(stderr, "error: unknown command '%s' (see 'portico help')\n", args[0]);
        rc = 2;
        goto done;
    }
    pt_cli_api_setup(server, NULL);
    if (pt_cli_api_server() != NULL && cmd->remote == 0) {
        rc = pt_cli_api_local_only(cmd->name);
        goto done;
    }
    if (cmd->remote != PT_CLI_REMOTE)
        pt_cli_api_setup("", NULL);
    pt_cli_api_command(cmd->name);
    datadir = pt_config_datadir(data);
    if (datadir == NULL) {
        fputs("error: out of memory\n", stderr);
        rc = 1;
        goto done;
    }
    /* Everything Portico creates (store, warehouse files, keys) is private to the owner;
     * `run` keeps the user's umask for the files its script writes. */
    if (cmd->fn != pt_cli_run)
        umask(077);
    fflush(stdout);
    rc = cmd->fn(datadir, nargs - 1, args + 1);
done:
    fflush(stdout);
    free(datadir);
    free(args);
    return rc;
}
