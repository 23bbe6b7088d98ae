/* Command-line flags of asyncd, with their defaults and --help. */
#include "daemon/options.h"

#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/xalloc.h"
#include "daemon/config_file.h"

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
    OPT_LOG_FORMAT,
    OPT_CONFIG,
    OPT_RETENTION,
    OPT_RETENTION_EVERY,
    OPT_WEBHOOK_BACKOFF,
    OPT_WEBHOOK_ATTEMPTS
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
    {"config", required_argument, NULL, OPT_CONFIG},
    {"retention", required_argument, NULL, OPT_RETENTION},
    /* Hidden (not in --help): the tests' short sweep interval. */
    {"retention-sweep-ms", required_argument, NULL, OPT_RETENTION_EVERY},
    {"webhook-backoff-ms", required_argument, NULL, OPT_WEBHOOK_BACKOFF},
    {"webhook-attempts", required_argument, NULL, OPT_WEBHOOK_ATTEMPTS},
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
        "                          waiting for its exec child or MySQL statements holds\n"
        "                          no thread\n"
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
        "  --retention DURATION    finished tasks are removed with their steps and events\n"
        "                          this long after they ended, e.g. 30d, 12h, 90m, 45s\n"
        "                          (default 30d; 0 or off = keep them forever)\n"
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
        "  --config FILE           every flag above, one a line: `name = value` or `name value`\n"
        "                          (no --; '#' starts a comment line); flags on the command\n"
        "                          line win; SIGHUP reads it again and applies --log-level\n"
        "                          and --flows at once (the rest at the next restart)\n"
        "  --webhook-backoff-ms N  first webhook retry after N ms, doubling up to an hour\n"
        "                          (default 1000); --webhook-attempts N before a delivery\n"
        "                          fails (default 15); see docs/webhooks.md\n"
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

/* A duration: digits and one unit of s, m, h or d ("30d", "90s"); "0" or "off" is 0. Into ms. */
static int parse_duration_ms(const char *flag, const char *v, long long *out, struct err *e)
{
    static const struct {
        char unit;
        long long ms;
    } units[] = {{'s', 1000}, {'m', 60000}, {'h', 3600000}, {'d', 86400000}};
    if (strcmp(v, "off") == 0 || strcmp(v, "0") == 0) {
        *out = 0;
        return 0;
    }
    char *end = (char *)v;
    errno = 0;
    long long n = v[0] >= '0' && v[0] <= '9' ? strtoll(v, &end, 10) : -1;
    for (size_t i = 0; n >= 0 && errno == 0 && i < sizeof units / sizeof units[0]; i++)
        if (end[0] == units[i].unit && end[1] == '\0' &&
            n <= 100LL * 365 * 86400000 / units[i].ms) {
            *out = n * units[i].ms;
            return 0;
        }
    return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                   "--%s %s: expected a number and a unit s, m, h or d (e.g. 30d, 12h, 90s), "
                   "at most 100 years, or 0 / off",
                   flag, v);
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
    o->retention_ms = 30LL * 86400000;
    o->max_body = 1 << 20;
    o->idle_timeout_s = 30;
    o->request_timeout_s = 30;
    o->max_conns_per_client = 1024;
    o->webhook_backoff_ms = 1000;
    o->webhook_attempts = 15;
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
    case OPT_WEBHOOK_BACKOFF:
        if ((rc = parse_uint("webhook-backoff-ms", v, 1, 3600000, &n, e)))
            return rc;
        o->webhook_backoff_ms = (unsigned)n;
        return 0;
    case OPT_WEBHOOK_ATTEMPTS:
        if ((rc = parse_uint("webhook-attempts", v, 1, 1000, &n, e)))
            return rc;
        o->webhook_attempts = (unsigned)n;
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
        if (log_level_parse(v) < 0)
            return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                           "--log-level %s: expected error, warn, info or debug", v);
        o->log_level = v;
        return 0;
    case OPT_LOG_FORMAT:
        if (strcmp(v, "text") != 0 && strcmp(v, "json") != 0)
            return err_set(e, ERR_INVALID_PARAMETER_VALUE, "--log-format %s: expected text or json",
                           v);
        o->log_format = v;
        return 0;
    case OPT_CONFIG:
        o->config = v;
        return 0;
    case OPT_RATE:
        o->rate_limits = xrealloc(o->rate_limits, (o->n_rate_limits + 1) * sizeof *o->rate_limits);
        o->rate_limits[o->n_rate_limits++] = v;
        return 0;
    case OPT_INSTANCE_SERIAL:
        return set_instance_serial(o, v, e);
    case OPT_RETENTION:
        return parse_duration_ms("retention", v, &o->retention_ms, e);
    case OPT_RETENTION_EVERY: {
        unsigned long n;
        int rc = parse_uint("retention-sweep-ms", v, 10, 3600000, &n, e);
        o->retention_every_ms = rc ? 0 : (long long)n;
        return rc;
    }
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
    case OPT_WEBHOOK_BACKOFF:
    case OPT_WEBHOOK_ATTEMPTS:
        return set_number(o, c, v, e);
    default:
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "unknown option; see asyncd --help");
    }
}

/* One flag of the command line, kept until the config file (if any) has been applied. */
struct cli_flag {
    int c;
    const char *v;
};

/* Collects the command line's flags in order; --config is taken at once, the rest wait. */
static int scan_argv(int argc, char **argv, struct options *o, struct cli_flag **out, size_t *n,
                     struct err *e)
{
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
        if (c == '?' || c == ':')
            return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                           "%s: unknown option or missing value; "
                           "see asyncd --help",
                           argv[optind - 1]);
        if (c == OPT_CONFIG) {
            o->config = optarg;
            continue;
        }
        *out = xrealloc(*out, (*n + 1) * sizeof **out);
        (*out)[(*n)++] = (struct cli_flag){c, optarg};
    }
    if (optind < argc)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "unexpected argument %s; see asyncd --help",
                       argv[optind]);
    return 0;
}

/* Flags given once that contradict each other, wherever they came from. */
static int check_pairs(const struct options *o, struct err *e)
{
    if (o->store && o->store_file)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                       "--store and --store-file both name the store; give one of them");
    if (!!o->tls_cert != !!o->tls_key)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "--tls-cert and --tls-key go together");
    return 0;
}

/* A flag without a value: on as a bare name or "name = true", left off by "name = false". */
static int set_switch(struct options *o, int c, const char *name, const char *value, struct err *e)
{
    if (value && strcmp(value, "false") == 0)
        return 0;
    if (value && strcmp(value, "true") != 0)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "%s %s: expected true, false or no value",
                       name, value);
    return set_option(o, c, NULL, e);
}

/* The config file's flags, through the same table and set_option as the command line's. */
static int apply_config_flag(void *ctx, const char *name, const char *value, struct err *e)
{
    struct options *o = ctx;
    for (const struct option *opt = long_opts; opt->name; opt++) {
        if (strcmp(opt->name, name) != 0)
            continue;
        if (opt->val == OPT_CONFIG || opt->val == 'h' || opt->val == 'V')
            return err_set(e, ERR_INVALID_PARAMETER_VALUE, "%s: not a flag for a config file",
                           name);
        if (opt->has_arg == no_argument)
            return set_switch(o, opt->val, name, value, e);
        if (!value)
            return err_set(e, ERR_INVALID_PARAMETER_VALUE, "%s needs a value (%s = VALUE)", name,
                           name);
        return set_option(o, opt->val, value, e);
    }
    return err_set(e, ERR_INVALID_PARAMETER_VALUE, "unknown flag %s; see asyncd --help", name);
}

int options_parse(int argc, char **argv, struct options *o, struct err *e)
{
    set_defaults(o);
    struct cli_flag *flags = NULL;
    size_t n = 0;
    int rc = scan_argv(argc, argv, o, &flags, &n, e);
    /* The file first, then the command line over it: the command line wins whatever the order. */
    if (!rc && o->config)
        rc = config_file_read(o->config, apply_config_flag, o, &o->config_text, e);
    for (size_t i = 0; !rc && i < n; i++)
        rc = set_option(o, flags[i].c, flags[i].v, e);
    free(flags);
    return rc ? rc : check_pairs(o, e);
}

void options_free(struct options *o)
{
    free(o->rate_limits);
    o->rate_limits = NULL;
    free(o->config_text);
    o->config_text = NULL;
}

/* The flags options_diff compares: where each lives in struct options, and whether SIGHUP can
 * apply it to a running daemon (main.c) or only a restart can. */
enum diff_kind { DIFF_STR, DIFF_UINT, DIFF_SIZE, DIFF_LL };
static const struct {
    const char *name;
    size_t off;
    enum diff_kind kind;
    bool live;
} diff_fields[] = {
    {"log-level", offsetof(struct options, log_level), DIFF_STR, true},
    {"flows", offsetof(struct options, flows), DIFF_STR, true},
    {"listen", offsetof(struct options, listen), DIFF_STR, false},
    {"admin", offsetof(struct options, admin), DIFF_STR, false},
    {"data", offsetof(struct options, data), DIFF_STR, false},
    {"store", offsetof(struct options, store), DIFF_STR, false},
    {"store-file", offsetof(struct options, store_file), DIFF_STR, false},
    {"sim-rules", offsetof(struct options, sim_rules), DIFF_STR, false},
    {"param-catalog", offsetof(struct options, param_catalog), DIFF_STR, false},
    {"secret-key-file", offsetof(struct options, secret_key_file), DIFF_STR, false},
    {"node-id", offsetof(struct options, node_id), DIFF_STR, false},
    {"tls-cert", offsetof(struct options, tls_cert), DIFF_STR, false},
    {"tls-key", offsetof(struct options, tls_key), DIFF_STR, false},
    {"tz", offsetof(struct options, tz), DIFF_STR, false},
    {"log-format", offsetof(struct options, log_format), DIFF_STR, false},
    {"workers", offsetof(struct options, workers), DIFF_UINT, false},
    {"max-running", offsetof(struct options, max_running), DIFF_UINT, false},
    {"lease-s", offsetof(struct options, lease_s), DIFF_UINT, false},
    {"drain-s", offsetof(struct options, drain_s), DIFF_UINT, false},
    {"idle-timeout", offsetof(struct options, idle_timeout_s), DIFF_UINT, false},
    {"request-timeout", offsetof(struct options, request_timeout_s), DIFF_UINT, false},
    {"max-conns", offsetof(struct options, max_conns), DIFF_UINT, false},
    {"max-conns-per-client", offsetof(struct options, max_conns_per_client), DIFF_UINT, false},
    {"max-body", offsetof(struct options, max_body), DIFF_SIZE, false},
    {"retention", offsetof(struct options, retention_ms), DIFF_LL, false},
    {"webhook-backoff-ms", offsetof(struct options, webhook_backoff_ms), DIFF_UINT, false},
    {"webhook-attempts", offsetof(struct options, webhook_attempts), DIFF_UINT, false},
};

static bool field_differs(const struct options *a, const struct options *b, size_t i)
{
    const char *pa = (const char *)a + diff_fields[i].off,
               *pb = (const char *)b + diff_fields[i].off;
    switch (diff_fields[i].kind) {
    case DIFF_STR: {
        const char *sa = *(const char *const *)(const void *)pa;
        const char *sb = *(const char *const *)(const void *)pb;
        return (!sa || !sb) ? sa != sb : strcmp(sa, sb) != 0;
    }
    case DIFF_UINT:
        return *(const unsigned *)(const void *)pa != *(const unsigned *)(const void *)pb;
    case DIFF_LL:
        return *(const long long *)(const void *)pa != *(const long long *)(const void *)pb;
    default:
        return *(const size_t *)(const void *)pa != *(const size_t *)(const void *)pb;
    }
}

static bool rate_limits_differ(const struct options *a, const struct options *b)
{
    if (a->n_rate_limits != b->n_rate_limits)
        return true;
    for (size_t i = 0; i < a->n_rate_limits; i++)
        if (strcmp(a->rate_limits[i], b->rate_limits[i]) != 0)
            return true;
    return false;
}

static void append_name(char *buf, size_t cap, const char *name)
{
    size_t n = strlen(buf);
    snprintf(buf + n, cap - n, "%s%s", n ? " " : "", name);
}

void options_diff(const struct options *was, const struct options *now, char *live, char *restart,
                  size_t cap)
{
    live[0] = restart[0] = '\0';
    for (size_t i = 0; i < sizeof diff_fields / sizeof diff_fields[0]; i++)
        if (field_differs(was, now, i))
            append_name(diff_fields[i].live ? live : restart, cap, diff_fields[i].name);
    if (rate_limits_differ(was, now))
        append_name(restart, cap, "rate-limit");
    if (strcmp(was->instance_parallel, now->instance_parallel) != 0)
        append_name(restart, cap, "instance-serial");
}
