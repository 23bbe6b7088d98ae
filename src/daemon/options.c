/* Command-line flags of asyncd, with their defaults and --help. */
#include "daemon/options.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/xalloc.h"

enum {
    OPT_LISTEN = 256,
    OPT_ADMIN,
    OPT_DATA,
    OPT_STORE,
    OPT_FLOWS,
    OPT_SIM_RULES,
    OPT_WORKERS,
    OPT_MAX_RUNNING,
    OPT_NODE,
    OPT_CERT,
    OPT_KEY,
    OPT_TZ,
    OPT_LOG,
    OPT_RATE,
    OPT_LEASE,
    OPT_MAXBODY,
    OPT_IDLE,
    OPT_DRAIN,
    OPT_REQ_TIMEOUT,
    OPT_MAXCONNS,
    OPT_MAXCONNS_CLIENT,
    OPT_PARAM_CATALOG,
    OPT_SECRET_KEY,
    OPT_STORE_FILE,
    OPT_INSTANCE_SERIAL,
    OPT_LOG_FORMAT
};

static const struct option long_opts[] = {
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"admin", required_argument, NULL, OPT_ADMIN},
    {"data", required_argument, NULL, OPT_DATA},
    {"store", required_argument, NULL, OPT_STORE},
    {"store-file", required_argument, NULL, OPT_STORE_FILE},
    {"flows", required_argument, NULL, OPT_FLOWS},
    {"sim-rules", required_argument, NULL, OPT_SIM_RULES},
    {"workers", required_argument, NULL, OPT_WORKERS},
    {"max-running", required_argument, NULL, OPT_MAX_RUNNING},
    {"node-id", required_argument, NULL, OPT_NODE},
    {"tls-cert", required_argument, NULL, OPT_CERT},
    {"tls-key", required_argument, NULL, OPT_KEY},
    {"tz", required_argument, NULL, OPT_TZ},
    {"log-level", required_argument, NULL, OPT_LOG},
    {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
    {"rate-limit", required_argument, NULL, OPT_RATE},
    {"lease-s", required_argument, NULL, OPT_LEASE},
    {"max-body", required_argument, NULL, OPT_MAXBODY},
    {"idle-timeout", required_argument, NULL, OPT_IDLE},
    {"drain-s", required_argument, NULL, OPT_DRAIN},
    {"request-timeout", required_argument, NULL, OPT_REQ_TIMEOUT},
    {"max-conns", required_argument, NULL, OPT_MAXCONNS},
    {"max-conns-per-client", required_argument, NULL, OPT_MAXCONNS_CLIENT},
    {"param-catalog", required_argument, NULL, OPT_PARAM_CATALOG},
    {"secret-key-file", required_argument, NULL, OPT_SECRET_KEY},
    {"instance-serial", required_argument, NULL, OPT_INSTANCE_SERIAL},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

void options_usage(void)
{
    fputs(
        "usage: asyncd [options]\n"
        "Serves Tencent Cloud API 3.0 async requests (cdb 2017-03-20, mongodb 2019-07-25).\n\n"
        "  --listen HOST:PORT      Cloud API listener (default 127.0.0.1:9000; port 0 = any)\n"
        "  --admin HOST:PORT       admin API listener (default 127.0.0.1:9001)\n"
        "  --data DIR              data directory: asyncd.db, credentials.json (default ./var)\n"
        "  --store URL             store instead of DIR/asyncd.db: sqlite:/path.db, or\n"
        "                          postgres://USER@HOST:PORT/DB[?pool=N&claim=update] shared\n"
        "                          by several nodes (see docs/multinode.md); a password\n"
        "                          here is visible to every local user (ps): leave it out\n"
        "                          (libpq reads ~/.pgpass, PGPASSFILE) or use --store-file\n"
        "  --store-file FILE       read the --store URL from FILE (mode 0600 or stricter)\n"
        "  --flows DIR             flow templates laid over the shipped flows/ file by file\n"
        "                          (SIGHUP reloads them)\n"
        "  --sim-rules FILE        progression rules for simulated tasks, set at start: a JSON\n"
        "                          array of rules, each with a \"name\" (docs/simulation.md)\n"
        "  --param-catalog FILE    cdb parameters tenants may set, merged over the shipped\n"
        "                          DIR/cdb/params/catalog.json (see docs/flows.md)\n"
        "  --workers N             task worker threads (default: the core count; 0 = this\n"
        "                          node runs no tasks, it only answers the APIs); a step\n"
        "                          waiting for its exec child holds no thread\n"
        "  --max-running N         tasks in flight on this node at once, claimed and not yet\n"
        "                          finished (default 4096; lowered, with a log line, to what\n"
        "                          the open-file limit covers at 3 descriptors a step)\n"
        "  --node-id NAME          this node's name in leases and events (default: hostname)\n"
        "  --tls-cert FILE --tls-key FILE   serve the Cloud API over HTTPS\n"
        "  --secret-key-file FILE  key that seals secrets at rest (64 hex digits, mode 0600;\n"
        "                          default DIR/secret.key, created on first start); every\n"
        "                          node sharing a PostgreSQL store needs the same one\n"
        "  --tz ZONE               zone of time strings, e.g. UTC, Asia/Shanghai (default: local)\n"
        "  --log-level LEVEL       error, warn, info (default) or debug\n",
        stdout);
    /* Two strings: C17 promises compilers only 4095 bytes in one literal. */
    fputs(
        "  --log-format FORMAT     text (default) or json: one object per line with ts, level,\n"
        "                          msg and each key=value word of msg as a field\n"
        "  --rate-limit P:A=N      per-second limit per account for product P, action A\n"
        "                          ('*' matches any; '*=0' lifts every limit; N=0 unlimited;\n"
        "                          later flags win; defaults cdb:DescribeAsyncRequestInfo=40,\n"
        "                          mongodb:DescribeAsyncRequestInfo=20, others 20)\n"
        "  --lease-s N             task lease length in seconds (default 15), renewed every N/3\n"
        "  --drain-s N             on SIGTERM, how long running steps may finish (default 10)\n"
        "  --instance-serial P=on|off[,P=on|off]  tasks on one instance of product P run one at\n"
        "                          a time, in creation order (on), or may overlap (off); a\n"
        "                          paused task holds its instance (default cdb=on,mongodb=on)\n"
        "  --max-body BYTES        largest request body accepted (default 1048576)\n"
        "  --idle-timeout S        close connections idle (or stalled) for S seconds (default 30)\n"
        "  --request-timeout S     a request's headers and body must arrive within S seconds\n"
        "                          of its start (default 30), however steadily they trickle\n"
        "  --max-conns N           Cloud API connections open at once (default: sized from\n"
        "                          the open-file limit, which asyncd raises to its hard limit)\n"
        "  --max-conns-per-client N  connections from one IP address on each listener\n"
        "                          (default 1024; 0 = no limit); more are closed at once\n"
        "  --help                  this text\n"
        "  --version               the release, then exit\n\n"
        "On first start with an empty store asyncd creates a root account and writes\n"
        "DIR/credentials.json (mode 0600) with AppId, Uin, SecretId, SecretKey and AdminToken.\n"
        "SIGTERM or SIGINT stops it gracefully.\n",
        stdout);
}

static int parse_uint(const char *flag, const char *v, unsigned long lo, unsigned long hi,
                      unsigned long *out, struct err *e)
{
    char *end;
    unsigned long n = strtoul(v, &end, 10);
    if (!*v || *end || n < lo || n > hi || v[0] == '-')
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "--%s %s: expected an integer %lu..%lu",
                       flag, v, lo, hi);
    *out = n;
    return 0;
}

/* The products --instance-serial knows, in the order instance_parallel lists them. */
static const char *const serial_products[] = {"cdb", "mongodb"};
#define N_SERIAL_PRODUCTS (sizeof serial_products / sizeof serial_products[0])

/* One P=on|off item of --instance-serial into off[]: which products may overlap. */
static int serial_item(const char *item, size_t len, bool off[N_SERIAL_PRODUCTS], struct err *e)
{
    const char *eq = memchr(item, '=', len);
    size_t plen = eq ? (size_t)(eq - item) : len;
    for (size_t i = 0; eq && i < N_SERIAL_PRODUCTS; i++) {
        if (strlen(serial_products[i]) != plen || strncmp(item, serial_products[i], plen) != 0)
            continue;
        size_t vlen = len - plen - 1;
        if (vlen == 2 && strncmp(eq + 1, "on", 2) == 0)
            off[i] = false;
        else if (vlen == 3 && strncmp(eq + 1, "off", 3) == 0)
            off[i] = true;
        else
            break;
        return 0;
    }
    return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                   "--instance-serial %.*s: expected PRODUCT=on or PRODUCT=off, PRODUCT being "
                   "cdb or mongodb (e.g. cdb=on,mongodb=off)",
                   (int)len, item);
}

/* --instance-serial cdb=on,mongodb=off; a later flag changes only the products it names. */
static int set_instance_serial(struct options *o, const char *v, struct err *e)
{
    bool off[N_SERIAL_PRODUCTS] = {0};
    for (size_t i = 0; i < N_SERIAL_PRODUCTS; i++) {
        char want[24];
        snprintf(want, sizeof want, ",%s,", serial_products[i]);
        char have[sizeof o->instance_parallel + 2];
        snprintf(have, sizeof have, ",%s,", o->instance_parallel);
        off[i] = strstr(have, want) != NULL;
    }
    for (const char *p = v;;) {
        size_t len = strcspn(p, ",");
        int rc = serial_item(p, len, off, e);
        if (rc)
            return rc;
        if (!p[len])
            break;
        p += len + 1;
    }
    o->instance_parallel[0] = '\0';
    for (size_t i = 0; i < N_SERIAL_PRODUCTS; i++)
        if (off[i])
            snprintf(o->instance_parallel + strlen(o->instance_parallel),
                     sizeof o->instance_parallel - strlen(o->instance_parallel), "%s%s",
                     o->instance_parallel[0] ? "," : "", serial_products[i]);
    return 0;
}

static void set_defaults(struct options *o)
{
    memset(o, 0, sizeof *o);
    o->listen = "127.0.0.1:9000";
    o->admin = "127.0.0.1:9001";
    o->data = "./var";
    o->log_level = "info";
    o->log_format = "text";
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    o->workers = cores > 0 ? (unsigned)cores : 2;
    o->max_running = 4096;
    o->http_threads = cores > 2 ? (unsigned)cores : 2;
    o->drain_s = 10;
    o->lease_s = 15;
    o->max_body = 1 << 20;
    o->idle_timeout_s = 30;
    o->request_timeout_s = 30;
    o->max_conns_per_client = 1024;
}

static int set_number(struct options *o, int c, const char *v, struct err *e)
{
    unsigned long n;
    int rc;
    switch (c) {
    case OPT_DRAIN:
        if ((rc = parse_uint("drain-s", v, 0, 3600, &n, e)))
            return rc;
        o->drain_s = (unsigned)n;
        return 0;
    case OPT_WORKERS:
        if ((rc = parse_uint("workers", v, 0, 256, &n, e)))
            return rc;
        o->workers = (unsigned)n;
        return 0;
    case OPT_MAX_RUNNING:
        if ((rc = parse_uint("max-running", v, 1, 1000000, &n, e)))
            return rc;
        o->max_running = (unsigned)n;
        return 0;
    case OPT_LEASE:
        if ((rc = parse_uint("lease-s", v, 1, 3600, &n, e)))
            return rc;
        o->lease_s = (unsigned)n;
        return 0;
    case OPT_IDLE:
        if ((rc = parse_uint("idle-timeout", v, 1, 3600, &n, e)))
            return rc;
        o->idle_timeout_s = (unsigned)n;
        return 0;
    case OPT_REQ_TIMEOUT:
        if ((rc = parse_uint("request-timeout", v, 1, 3600, &n, e)))
            return rc;
        o->request_timeout_s = (unsigned)n;
        return 0;
    case OPT_MAXCONNS:
        if ((rc = parse_uint("max-conns", v, 16, 1000000, &n, e)))
            return rc;
        o->max_conns = (unsigned)n;
        return 0;
    case OPT_MAXCONNS_CLIENT:
        if ((rc = parse_uint("max-conns-per-client", v, 0, 1000000, &n, e)))
            return rc;
        o->max_conns_per_client = (unsigned)n;
        return 0;
    default:
        if ((rc = parse_uint("max-body", v, 1024, 1ul << 30, &n, e)))
            return rc;
        o->max_body = n;
        return 0;
    }
}

static int set_option(struct options *o, int c, const char *v, struct err *e)
{
    switch (c) {
    case OPT_LISTEN:
        o->listen = v;
        return 0;
    case OPT_ADMIN:
        o->admin = v;
        return 0;
    case OPT_DATA:
        o->data = v;
        return 0;
    case OPT_STORE:
        o->store = v;
        return 0;
    case OPT_STORE_FILE:
        o->store_file = v;
        return 0;
    case OPT_FLOWS:
        o->flows = v;
        return 0;
    case OPT_SIM_RULES:
        o->sim_rules = v;
        return 0;
    case OPT_PARAM_CATALOG:
        o->param_catalog = v;
        return 0;
    case OPT_SECRET_KEY:
        o->secret_key_file = v;
        return 0;
    case OPT_NODE:
        o->node_id = v;
        return 0;
    case OPT_CERT:
        o->tls_cert = v;
        return 0;
    case OPT_KEY:
        o->tls_key = v;
        return 0;
    case OPT_TZ:
        o->tz = v;
        return 0;
    case OPT_LOG:
        o->log_level = v;
        return 0;
    case OPT_LOG_FORMAT:
        o->log_format = v;
        return 0;
    case OPT_RATE:
        o->rate_limits = xrealloc(o->rate_limits, (o->n_rate_limits + 1) * sizeof *o->rate_limits);
        o->rate_limits[o->n_rate_limits++] = v;
        return 0;
    case OPT_INSTANCE_SERIAL:
        return set_instance_serial(o, v, e);
    case 'h':
        o->help = 1;
        return 0;
    case 'V':
        o->version = 1;
        return 0;
    case OPT_WORKERS:
    case OPT_MAX_RUNNING:
    case OPT_LEASE:
    case OPT_IDLE:
    case OPT_DRAIN:
    case OPT_REQ_TIMEOUT:
    case OPT_MAXCONNS:
    case OPT_MAXCONNS_CLIENT:
    case OPT_MAXBODY:
        return set_number(o, c, v, e);
    default:
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "unknown option; see asyncd --help");
    }
}

int options_parse(int argc, char **argv, struct options *o, struct err *e)
{
    set_defaults(o);
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
        if (c == '?' || c == ':')
            return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                           "%s: unknown option or missing value; "
                           "see asyncd --help",
                           argv[optind - 1]);
        int rc = set_option(o, c, optarg, e);
        if (rc)
            return rc;
    }
    if (optind < argc)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "unexpected argument %s; see asyncd --help",
                       argv[optind]);
    if (o->store && o->store_file)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                       "--store and --store-file both name the store; give one of them");
    if (!!o->tls_cert != !!o->tls_key)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "--tls-cert and --tls-key go together");
    return 0;
}

void options_free(struct options *o)
{
    free(o->rate_limits);
    o->rate_limits = NULL;
}
