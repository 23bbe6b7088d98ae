/* asyncd: parse flags, open the store, first-start credentials, serve until SIGTERM. */
#include <errno.h>
#include <jansson.h>
#include <libgen.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin/admin.h"
#include "cloudapi/cloudapi.h"
#include "common/log.h"
#include "common/version.h"
#include "common/secretbox.h"
#include "common/timefmt.h"
#include "common/xalloc.h"
#include "daemon/bootstrap.h"
#include "daemon/notify.h"
#include "daemon/options.h"
#include "daemon/retention.h"
#include "daemon/webhooks.h"
#include "engine/engine.h"
#include "exec/mysql_conn.h"
#include "flows/flows.h"
#include "products/cdb_params.h"

struct daemon_state {
    struct options opt; /* as at start: what the running listeners, store and engine use */
    int argc;           /* the command line, parsed again over the --config file on SIGHUP */
    char **argv;
    struct options *live; /* the last --config read on SIGHUP (NULL = none yet): its log-level
                           * and flows are in force */
    char node[128];
    struct ratelimit *limits;
    struct store *store;
    char *store_url; /* --store, or the URL in --store-file; NULL = the embedded store */
    char *admin_token;
    int lock_fd;
    char data_abs[4096];
    struct cloudapi *api;
    struct admin *admin;
    struct engine *engine;
    struct retention *retention; /* the sweeper of finished tasks and expired keys */
    struct flows_live *flows;    /* replaced whole on SIGHUP */
    struct sim *sim;             /* simulated instances' progression rules */
    struct webhooks *webhooks;   /* the outbox's dispatcher */
    struct http_server *cloud_http, *admin_http;
};

static int configure(struct daemon_state *d, struct err *e)
{
    if (log_set_level_name(d->opt.log_level) != 0)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                       "--log-level %s: expected error, warn, info or debug", d->opt.log_level);
    if (log_set_format_name(d->opt.log_format) != 0)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "--log-format %s: expected text or json",
                       d->opt.log_format);
    char why[256];
    if (time_set_zone(d->opt.tz, why, sizeof why) != 0)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "%s", why);
    d->limits = ratelimit_new();
    for (size_t i = 0; i < d->opt.n_rate_limits; i++) {
        int rc = ratelimit_add_rule(d->limits, d->opt.rate_limits[i], e);
        if (rc)
            return rc;
    }
    if (d->opt.node_id)
        snprintf(d->node, sizeof d->node, "%s", d->opt.node_id);
    else if (gethostname(d->node, sizeof d->node) != 0)
        snprintf(d->node, sizeof d->node, "node-1");
    return 0;
}

/* Refuses to start with a key that cannot open the store's secrets (a lost or replaced key
 * file, a cluster node given another one): the root account's sealed SecretKey is the canary,
 * read now rather than at the first request. A new node reads it in bootstrap_credentials. */
static int check_secret_key(struct daemon_state *d, struct err *e)
{
    char *path = xasprintf("%s/credentials.json", d->opt.data);
    json_t *j = json_load_file(path, 0, NULL);
    free(path);
    const char *uin = json_string_value(json_object_get(j, "Uin"));
    struct account root = {0};
    int rc = uin ? store_account_by_uin(d->store, uin, &root, e) : 0;
    account_clear(&root);
    json_decref(j);
    return rc == ERR_NOT_FOUND ? 0 : rc; /* credentials from another store: nothing to open */
}

static int open_store(struct daemon_state *d, struct err *e)
{
    int rc = bootstrap_store_url(d->opt.store, d->opt.store_file, &d->store_url, e);
    if (!rc)
        rc = bootstrap_data_dir(d->opt.data, e);
    if (!rc && !realpath(d->opt.data, d->data_abs))
        snprintf(d->data_abs, sizeof d->data_abs, "%s", d->opt.data);
    if (!rc)
        rc = bootstrap_lock(d->opt.data, &d->lock_fd, e);
    /* The key before the store: the first start already writes a sealed SecretKey. */
    if (!rc)
        rc = secretbox_load(d->opt.secret_key_file, d->opt.data, e);
    /* Which mysql step args are passwords is the template language's rule; the store seals
     * them from the first task on, so it gets the rule before it opens. */
    store_set_secret_args(mysql_conn_secret_args);
    if (!rc)
        rc = store_open(d->store_url, d->opt.data, &d->store, e);
    if (!rc)
        rc = bootstrap_credentials(d->store, d->opt.data, &d->admin_token, e);
    if (!rc)
        rc = check_secret_key(d, e);
    return rc;
}

/* The cdb parameter catalogue beside the templates, with --param-catalog over it; loaded before
 * any thread starts, read-only afterwards. Empty, ModifyInstanceParam refuses every parameter. */
static int load_param_catalog(struct daemon_state *d, const char *flows_dir, struct err *e)
{
    int rc = cdb_params_load(flows_dir, d->opt.param_catalog, e);
    if (!rc && cdb_params_count() == 0)
        log_warn("no cdb parameter catalogue (FLOWS/cdb/params/catalog.json, --param-catalog): "
                 "ModifyInstanceParam refuses every parameter");
    else if (!rc)
        log_info("loaded %zu cdb parameters", cdb_params_count());
    return rc;
}

/* The shipped templates: ./flows, else the flows/ beside the binary's directory (bin/../flows,
 * a source tree), else an installed set (bin/../share/asyncd/flows, `make install`); NULL when
 * none exists. */
static const char *shipped_flows_dir(char *buf, size_t cap)
{
    if (access("flows", R_OK) == 0)
        return "flows";
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return NULL;
    exe[n] = '\0';
    const char *bindir = dirname(exe);
    static const char *const beside[] = {"../flows", "../share/asyncd/flows"};
    for (size_t i = 0; i < sizeof beside / sizeof beside[0]; i++) {
        snprintf(buf, cap, "%s/%s", bindir, beside[i]);
        if (access(buf, R_OK) == 0)
            return buf;
    }
    return NULL;
}

static bool same_dir(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

/* The template directories in the order they load: the shipped ones, then --flows DIR over them
 * file by file (a template there replaces the shipped one of its product and action, and adds
 * the actions the shipped set lacks). Returns how many (0, 1 or 2). */
static size_t flow_dirs(const struct daemon_state *d, const char *dirs[2], char *buf, size_t cap)
{
    size_t n = 0;
    const char *flows = d->live ? d->live->flows : d->opt.flows;
    const char *shipped = shipped_flows_dir(buf, cap);
    if (shipped && !(flows && same_dir(shipped, flows)))
        dirs[n++] = shipped;
    if (flows)
        dirs[n++] = flows;
    return n;
}

static void log_flows(const struct flows *f, const char *const *dirs, size_t n, const char *why)
{
    if (n == 2)
        log_info("%sloaded %zu flow templates from %s and %s (%zu of %s's replaced by %s's)", why,
                 flows_count(f), dirs[0], dirs[1], flows_replaced(f), dirs[0], dirs[1]);
    else
        log_info("%sloaded %zu flow templates from %s", why, flows_count(f), dirs[0]);
}

/* The templates, and the cdb parameter catalogue of the last directory that has one. */
static int load_flows(struct daemon_state *d, struct err *e)
{
    char buf[4200];
    const char *dirs[2];
    size_t n = flow_dirs(d, dirs, buf, sizeof buf);
    if (n == 0) {
        log_warn("no flow templates found (give --flows DIR): only DescribeAsyncRequestInfo and "
                 "the built-in actions are served");
        return load_param_catalog(d, NULL, e);
    }
    struct flows *f;
    int rc = flows_load_layers(dirs, n, &f, e);
    if (rc)
        return rc;
    d->flows = flows_live_new(f);
    log_flows(f, dirs, n, "");
    const char *catalog = dirs[0];
    char *path = xasprintf("%s/cdb/params/catalog.json", dirs[n - 1]);
    if (access(path, R_OK) == 0)
        catalog = dirs[n - 1];
    free(path);
    return load_param_catalog(d, catalog, e);
}

/* SIGHUP: the templates are read again; a set that does not load leaves the one in use. Requests
 * in flight finish with the set they started with. The parameter catalogue is not reloaded. */
static void reload_flows(struct daemon_state *d)
{
    char buf[4200];
    const char *dirs[2];
    size_t n = flow_dirs(d, dirs, buf, sizeof buf);
    struct flows *f;
    struct err e = {0};
    if (n == 0 || !d->flows) {
        log_warn("SIGHUP: no flow templates were loaded at start; nothing to reload");
        return;
    }
    if (flows_load_layers(dirs, n, &f, &e) != 0) {
        log_error("SIGHUP: keeping the flow templates in use: %s", e.msg);
        return;
    }
    flows_live_swap(d->flows, f);
    log_flows(f, dirs, n, "SIGHUP: ");
}

/* Descriptors kept back from the listeners and the engine's steps: the store, MySQL
 * connections, flow files, the engine's own. */
#define FD_RESERVE 256
/* What the connections keep however many steps may run: a quarter of the descriptors, up to
 * this many. */
#define CONN_FD_FLOOR 4096
/* A worker starting a step holds 4 more for a moment (the status and stdin pipes' ends). */
#define SPAWN_FDS_PER_WORKER 4
/* The admin listener runs a thread per connection (a long-poll blocks its thread): at most this
 * many, and at most an eighth of the descriptors. */
#define ADMIN_MAX_CONNS 1024
/* Past this many connections memory (up to 34 KiB each) matters more than descriptors. */
#define CLOUD_MAX_CONNS 65536
#define MIN_CONNS       16

struct conn_limits {
    unsigned cloud, admin;
};

/* How the open-file limit is shared: steps first (up to what leaves the connections their
 * floor), then the two listeners. */
struct fd_budget {
    uint64_t nofile;      /* the limit in force */
    unsigned max_running; /* --max-running, clamped to fit */
    uint64_t step_fds;    /* kept back for the running steps */
};

/* Raises the open-file limit to the hard limit, so a flood of connections meets our limits
 * (connections refused, service goes on) before the process runs out of descriptors. Returns
 * the limit now in force. */
static uint64_t raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 1024;
    if (rl.rlim_cur < rl.rlim_max) {
        struct rlimit want = {.rlim_cur = rl.rlim_max, .rlim_max = rl.rlim_max};
        if (want.rlim_cur == RLIM_INFINITY) /* the kernel caps NOFILE at fs.nr_open */
            want.rlim_cur = 1u << 20;
        if (setrlimit(RLIMIT_NOFILE, &want) == 0)
            rl.rlim_cur = want.rlim_cur;
        else
            log_warn("cannot raise the open-file limit to %llu: %s",
                     (unsigned long long)want.rlim_cur, strerror(errno));
    }
    return rl.rlim_cur == RLIM_INFINITY ? 1u << 20 : (uint64_t)rl.rlim_cur;
}

/* Raises the open-file limit and keeps ENGINE_FDS_PER_STEP descriptors back for each step that
 * may run at once, so a node running --max-running exec children never runs out of them; a
 * --max-running the limit cannot cover is lowered, and the log says so. */
static struct fd_budget size_steps(const struct options *o)
{
    struct fd_budget b = {.nofile = raise_nofile(), .max_running = o->max_running};
    if (o->workers == 0)
        return b;
    uint64_t budget = b.nofile > FD_RESERVE ? b.nofile - FD_RESERVE : 0;
    uint64_t floor = budget / 4 < CONN_FD_FLOOR ? budget / 4 : CONN_FD_FLOOR;
    if (floor < 2 * MIN_CONNS)
        floor = 2 * MIN_CONNS;
    uint64_t spawn = (uint64_t)o->workers * SPAWN_FDS_PER_WORKER;
    uint64_t room = budget > floor + spawn ? budget - floor - spawn : 0;
    uint64_t fit = room / ENGINE_FDS_PER_STEP;
    if (fit < 1)
        fit = 1;
    if (b.max_running > fit) {
        log_warn("--max-running %u: the open-file limit (%llu) leaves room for %llu steps at once "
                 "(%d descriptors each, %llu kept for connections); running at most %llu",
                 b.max_running, (unsigned long long)b.nofile, (unsigned long long)fit,
                 ENGINE_FDS_PER_STEP, (unsigned long long)floor, (unsigned long long)fit);
        b.max_running = (unsigned)fit;
    }
    b.step_fds = (uint64_t)b.max_running * ENGINE_FDS_PER_STEP + spawn;
    return b;
}

/* Shares the descriptors left after FD_RESERVE and the steps' share between the two listeners. */
static struct conn_limits size_connections(const struct options *o, const struct fd_budget *fb)
{
    uint64_t nofile = fb->nofile;
    uint64_t left = nofile > fb->step_fds ? nofile - fb->step_fds : 0;
    uint64_t budget = left > FD_RESERVE + 2 * MIN_CONNS ? left - FD_RESERVE : 2 * MIN_CONNS;
    struct conn_limits l;
    l.admin = (unsigned)(budget / 8 < ADMIN_MAX_CONNS ? budget / 8 : ADMIN_MAX_CONNS);
    l.admin = l.admin < MIN_CONNS ? MIN_CONNS : l.admin;
    uint64_t cloud = budget > l.admin + MIN_CONNS ? budget - l.admin : MIN_CONNS;
    l.cloud = (unsigned)(cloud < CLOUD_MAX_CONNS ? cloud : CLOUD_MAX_CONNS);
    if (o->max_conns) {
        if (o->max_conns > l.cloud)
            log_warn("--max-conns %u is more than the %u connections the open-file limit "
                     "(%llu) leaves room for",
                     o->max_conns, l.cloud, (unsigned long long)nofile);
        l.cloud = o->max_conns;
    }
    log_info("open files: limit %llu, %u kept back, %llu for %u steps at once; connections: "
             "cloudapi %u, admin %u, per client %u%s",
             (unsigned long long)nofile, FD_RESERVE, (unsigned long long)fb->step_fds,
             o->workers ? fb->max_running : 0, l.cloud, l.admin, o->max_conns_per_client,
             o->max_conns_per_client ? "" : " (no limit)");
    return l;
}

static int start_servers(struct daemon_state *d, struct err *e)
{
    struct fd_budget fb = size_steps(&d->opt);
    int rc = engine_start(&(struct engine_config){.store = d->store,
                                                  .node = d->node,
                                                  .workers = d->opt.workers,
                                                  .max_running = fb.max_running,
                                                  .lease_s = d->opt.lease_s,
                                                  .drain_s = d->opt.drain_s,
                                                  .data_dir = d->data_abs,
                                                  .instance_parallel = d->opt.instance_parallel},
                          &d->engine, e);
    if (rc)
        return rc;
    rc = retention_start(&(struct retention_config){.store = d->store,
                                                    .retention_ms = d->opt.retention_ms,
                                                    .every_ms = d->opt.retention_every_ms},
                         &d->retention, e);
    if (rc)
        return rc;
    rc = webhooks_start(&(struct webhooks_config){.store = d->store,
                                                  .node = d->node,
                                                  .backoff_ms = d->opt.webhook_backoff_ms,
                                                  .max_attempts = (int)d->opt.webhook_attempts,
                                                  .per_webhook = WEBHOOKS_PER_WEBHOOK,
                                                  .timeout_ms = WEBHOOKS_TIMEOUT_MS},
                        &d->webhooks, e);
    if (rc)
        return rc;
    d->sim = sim_new(d->store, d->node);
    if (d->opt.sim_rules && (rc = sim_rules_load_file(d->sim, d->opt.sim_rules, e)) != 0)
        return rc;
    d->api = cloudapi_new(&(struct cloudapi_config){.store = d->store,
                                                    .limits = d->limits,
                                                    .max_body = d->opt.max_body,
                                                    .flows = d->flows,
                                                    .node = d->node,
                                                    .wake = engine_wake,
                                                    .wake_ctx = d->engine,
                                                    .sim = d->sim});
    d->admin = admin_new(&(struct admin_config){.store = d->store,
                                                .token = d->admin_token,
                                                .node = d->node,
                                                .api = d->api,
                                                .on_change = engine_wake,
                                                .on_change_ctx = d->engine,
                                                .sim = d->sim});
    /* Actions that call an instance (cdb DescribeAccounts, up to 5 s against a dead server) run
     * on 4 blocking-work threads of their own, so they never hold up the HTTP threads. */
    struct conn_limits lim = size_connections(&d->opt, &fb);
    struct http_config cloud = {.listen = d->opt.listen,
                                .threads = d->opt.http_threads,
                                .blocking_threads = 4,
                                .max_body = d->opt.max_body,
                                .idle_timeout_s = d->opt.idle_timeout_s,
                                .request_timeout_s = d->opt.request_timeout_s,
                                .max_conns = lim.cloud,
                                .max_conns_per_client = d->opt.max_conns_per_client,
                                .tls_cert = d->opt.tls_cert,
                                .tls_key = d->opt.tls_key};
    /* A connection per thread: admin calls may long-poll (GET /v1/tasks/ID?wait=30s). The
     * request deadline covers only the arrival of a request, never the wait for its answer. */
    struct http_config admin = {.listen = d->opt.admin,
                                .threads = 1,
                                .max_body = d->opt.max_body,
                                .idle_timeout_s = 150,
                                .request_timeout_s = d->opt.request_timeout_s,
                                .max_conns = lim.admin,
                                .max_conns_per_client = d->opt.max_conns_per_client,
                                .thread_per_connection = true};
    rc = http_server_start(&cloud, cloudapi_handle, d->api, &d->cloud_http, e);
    if (!rc)
        rc = http_server_start(&admin, admin_handle, d->admin, &d->admin_http, e);
    return rc;
}

/* Prints the ready line with the real ports; supervisors and tests wait for it. */
static void announce(const struct daemon_state *d)
{
    char host[256], ahost[256];
    uint16_t port;
    http_split_hostport(d->opt.listen, host, sizeof host, &port, NULL);
    http_split_hostport(d->opt.admin, ahost, sizeof ahost, &port, NULL);
    const char *open = strchr(host, ':') ? "[" : "", *close = strchr(host, ':') ? "]" : "";
    const char *aopen = strchr(ahost, ':') ? "[" : "", *aclose = strchr(ahost, ':') ? "]" : "";
    log_info("listening cloudapi=%s%s%s:%u admin=%s%s%s:%u", open, host, close,
             http_server_port(d->cloud_http), aopen, ahost, aclose,
             http_server_port(d->admin_http));
    /* Both listeners accept by now, so a unit ordered After=asyncd.service finds them. */
    if (notify_send("READY=1") != 0)
        log_warn("cannot tell the supervisor (NOTIFY_SOCKET) that asyncd is ready");
}

/* SIGHUP with --config: the file is read again under the same command line (which still wins).
 * What can change under running threads is applied: the log level (atomic in log.c) and the
 * --flows directory (the templates reload next). Everything else the listeners, store and
 * engine were built with stays until a restart, and the log line says which flags those are.
 * A file that no longer parses changes nothing. */
static void reload_config(struct daemon_state *d)
{
    if (!d->opt.config)
        return;
    struct options *now = xcalloc(1, sizeof *now);
    struct err e = {0};
    if (options_parse(d->argc, d->argv, now, &e) != 0) {
        log_error("SIGHUP: keeping the configuration in use: %s", e.msg);
        options_free(now);
        free(now);
        return;
    }
    char live[512], restart[512], unused[512];
    options_diff(d->live ? d->live : &d->opt, now, live, unused, sizeof live);
    options_diff(&d->opt, now, unused, restart, sizeof restart);
    log_set_level_name(now->log_level); /* parsed, so a known name */
    if (d->live) {
        options_free(d->live);
        free(d->live);
    }
    d->live = now;
    log_info("SIGHUP: read %s: applied: %s; needs a restart: %s", d->opt.config,
             live[0] ? live : "nothing changed", restart[0] ? restart : "nothing");
}

/* Serves until SIGTERM or SIGINT; SIGHUP reloads the config file and the flow templates. */
static void wait_for_stop_signal(struct daemon_state *d)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    int sig = 0;
    while (sigwait(&set, &sig) == 0 && sig == SIGHUP) {
        reload_config(d);
        reload_flows(d);
    }
    log_info("received %s; draining", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    if (notify_send("STOPPING=1") != 0)
        log_warn("cannot tell the supervisor (NOTIFY_SOCKET) that asyncd is stopping");
}

static void shut_down(struct daemon_state *d)
{
    if (d->cloud_http)
        http_server_quiesce(d->cloud_http);
    if (d->admin_http)
        http_server_quiesce(d->admin_http);
    /* Both servers stop (in-flight and deferred requests answered) before the engine: a request
     * that creates a task calls engine_wake, which must never see a freed engine. */
    http_server_stop(d->cloud_http);
    http_server_stop(d->admin_http);
    d->cloud_http = d->admin_http = NULL;
    /* Running steps reach a safe point (or are stopped at the drain deadline) before the store
     * closes; their leases go back so the tasks run on after a restart or on another node. */
    engine_stop(d->engine);
    d->engine = NULL;
    retention_stop(d->retention);
    d->retention = NULL;
    /* After the engine: its last transitions' deliveries are in the outbox for the next start
     * or another node; the ones in flight go back there too. */
    webhooks_stop(d->webhooks);
    d->webhooks = NULL;
    admin_free(d->admin);
    cloudapi_free(d->api);
    sim_free(d->sim);
    store_close(d->store);
    bootstrap_store_url_free(d->store_url);
    flows_live_free(d->flows);
    cdb_params_unload();
    ratelimit_free(d->limits);
    free(d->admin_token);
    options_free(&d->opt);
    if (d->live) {
        options_free(d->live);
        free(d->live);
    }
    secretbox_forget();
    if (d->lock_fd >= 0)
        close(d->lock_fd);
}

int main(int argc, char **argv)
{
    /* Block the stop signals and SIGHUP in every thread; the main thread takes them with sigwait.
     */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct daemon_state d = {.lock_fd = -1, .argc = argc, .argv = argv};
    struct err e = {0};
    int rc = options_parse(argc, argv, &d.opt, &e);
    if (rc || d.opt.help || d.opt.version) {
        if (rc)
            fprintf(stderr, "asyncd: %s\n", e.msg);
        else if (d.opt.help)
            options_usage();
        else
            printf("asyncd %s\n", ASYNCD_VERSION);
        options_free(&d.opt);
        return rc ? 2 : 0;
    }
    if (!(rc = configure(&d, &e)) && !(rc = load_flows(&d, &e)) && !(rc = open_store(&d, &e)) &&
        !(rc = start_servers(&d, &e))) {
        announce(&d);
        wait_for_stop_signal(&d);
    } else {
        log_error("%s", e.msg);
    }
    shut_down(&d);
    if (!rc)
        log_info("stopped");
    return rc ? 1 : 0;
}
