/* asyncctl: the operator CLI over the asyncd admin API (accounts, instances, tasks, tokens,
 * webhooks, health). */
#include "ctl_client.h"
#include "common/version.h"
#include "common/xalloc.h"
#include "ctl_print.h"

#include <curl/curl.h>
#include <jansson.h>

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Where a command's option goes: a JSON body field or a query parameter. */
enum field_where { IN_BODY, IN_QUERY };
enum field_kind { F_STR, F_COUNT, F_FLAG };

struct field {
    const char *opt; /* "--product" */
    const char *key; /* "product" in the body or the query */
    uint8_t where;   /* enum field_where */
    uint8_t kind;    /* enum field_kind: a string, a whole number, or a flag sent as true */
    bool required;
    const char *def; /* the value when the option is absent, or NULL */
};

#define MAX_FIELDS 10
#define MAX_POS    64

struct command;
typedef int (*command_fn)(struct ctl *c, int argc, char **argv, const struct command *cmd);

/*
 * One subcommand. Most are declarative: a method, a path whose "{}" takes the ID argument, and
 * the options that fill the body or the query. The others set run and do it themselves.
 */
struct command {
    const char *group;   /* "task", or two words ("account key") */
    const char *verb;    /* "show", or NULL for a command without a verb ("health") */
    const char *args;    /* usage after "asyncctl GROUP VERB" */
    const char *purpose; /* one line */
    const char *method;  /* "POST"; NULL when run is set */
    const char *path;    /* "/v1/tasks/{}/pause": each "{}" takes a positional argument */
    const char *body;    /* a fixed JSON body the options are added to, or NULL */
    bool need_one;       /* at least one option must be given */
    void (*print)(json_t *answer);
    command_fn run;
    struct field fields[MAX_FIELDS];
};

/* ---------- usage ---------- */

static int usage_error(const struct command *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int usage_error(const struct command *cmd, const char *fmt, ...)
{
    va_list ap;
    fputs("asyncctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (cmd)
        fprintf(stderr, "usage: asyncctl %s%s%s %s\n", cmd->group, cmd->verb ? " " : "",
                cmd->verb ? cmd->verb : "", cmd->args);
    else
        fputs("try 'asyncctl --help'\n", stderr);
    return EXIT_USAGE;
}

static const char global_help[] =
    "Global options (before or after the command):\n"
    "  --admin URL   admin API base URL (default $ASYNCD_ADMIN, else " DEFAULT_ADMIN ")\n"
    "  --token T     admin token (default: AdminToken of --data DIR/credentials.json when --data\n"
    "                is given, else $ASYNCD_TOKEN, else ./var/credentials.json)\n"
    "  --data DIR    the daemon's data directory, to read credentials.json from\n"
    "  --json        print the API's JSON answer as it came, for scripts\n"
    "  --help        this help; 'asyncctl GROUP VERB --help' for one command\n"
    "Exit status: 0 success, 1 the API answered an error (or a waited-for task did not\n"
    "succeed), 2 usage error, 3 the daemon could not be reached.\n";

static void command_help(const struct command *cmd)
{
    printf("usage: asyncctl %s%s%s %s\n%s\n\n%s", cmd->group, cmd->verb ? " " : "",
           cmd->verb ? cmd->verb : "", cmd->args, cmd->purpose, global_help);
}

/* ---------- options ---------- */

struct opt {
    const char *name;   /* "--product" */
    const char **value; /* for an option with an argument */
    bool *flag;         /* for a flag */
};

/* Matches argv[*i] against one option; 1 when matched (value consumed), 0 not, -1 missing value. */
static int opt_match(const struct opt *o, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    size_t n = strlen(o->name);
    if (strncmp(a, o->name, n) != 0 || (a[n] != '\0' && a[n] != '='))
        return 0;
    if (o->flag) {
        if (a[n] == '=')
            return 0;
        *o->flag = true;
        return 1;
    }
    if (a[n] == '=') {
        *o->value = a + n + 1;
        return 1;
    }
    if (*i + 1 >= argc)
        return -1;
    *o->value = argv[++*i];
    return 1;
}

/*
 * Parses a command's arguments: its own options, the global ones, and positionals into pos[].
 * Returns -1 to go on, else the exit code (after printing help or a usage error).
 */
static int parse_args(struct ctl *c, int argc, char **argv, const struct opt *own,
                      const struct command *cmd, const char **pos, int *npos, int minpos,
                      int maxpos)
{
    bool help = false;
    const struct opt global[] = {
        {"--admin", &c->admin_opt, NULL},
        {"--token", &c->token, NULL},
        {"--data", &c->data, NULL},
        {"--json", NULL, &c->json},
        {"--help", NULL, &help},
        {"-h", NULL, &help},
        {NULL, NULL, NULL},
    };
    bool only_pos = false;
    *npos = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (only_pos || a[0] != '-' || strcmp(a, "-") == 0) {
            if (*npos >= maxpos)
                return usage_error(cmd, "unexpected argument '%s'", a);
            pos[(*npos)++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_pos = true;
            continue;
        }
        int r = 0;
        for (const struct opt *o = own; o && o->name && r == 0; o++)
            r = opt_match(o, argc, argv, &i);
        for (const struct opt *o = global; o->name && r == 0; o++)
            r = opt_match(o, argc, argv, &i);
        if (r < 0)
            return usage_error(cmd, "option %s needs a value", a);
        if (r == 0)
            return usage_error(cmd, "unknown option '%s'", a);
    }
    if (help) {
        command_help(cmd);
        return EXIT_OK;
    }
    if (*npos < minpos)
        return usage_error(cmd, "missing argument");
    return -1;
}

static bool is_count(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

static int show(struct ctl *c, json_t *ans, void (*printer)(json_t *))
{
    if (!c->json)
        (printer ? printer : ctl_print_plain)(ans);
    json_decref(ans);
    return EXIT_OK;
}

/* ---------- declarative commands ---------- */

/* Applies defaults and checks required, numeric and at-least-one options; -1 or EXIT_USAGE. */
static int check_fields(const struct command *cmd, const char **val, const bool *flag, int nf)
{
    bool any = false;
    for (int i = 0; i < nf; i++) {
        const struct field *f = &cmd->fields[i];
        any |= val[i] != NULL || flag[i];
        if (!val[i])
            val[i] = f->def;
        if (f->required && !val[i] && !flag[i])
            return usage_error(cmd, "%s is required", f->opt);
        if (f->kind == F_COUNT && val[i] && !is_count(val[i]))
            return usage_error(cmd, "%s takes a whole number, not '%s'", f->opt, val[i]);
    }
    if (cmd->need_one && !any)
        return usage_error(cmd, "give at least one option");
    return -1;
}

/* How many "{}" holes the command's path has: the positional arguments it takes. */
static int path_holes(const struct command *cmd)
{
    int n = 0;
    for (const char *h = strstr(cmd->path, "{}"); h; h = strstr(h + 2, "{}"))
        n++;
    return n;
}

/* The command's path with each "{}" replaced by the next escaped id, plus its query options
 * (caller frees). */
static char *build_path(struct ctl *c, const struct command *cmd, const char **ids,
                        const char **val, int nf)
{
    struct buf b = {0};
    const char *p = cmd->path;
    for (const char *hole; (hole = strstr(p, "{}")); p = hole + 2) {
        ctl_buf_add(&b, p, (size_t)(hole - p));
        ctl_add_escaped(c, &b, *ids++);
    }
    ctl_buf_add(&b, p, strlen(p));
    for (int i = 0; i < nf; i++)
        if (cmd->fields[i].where == IN_QUERY)
            ctl_add_query(c, &b, cmd->fields[i].key, val[i]);
    return b.p;
}

/* The JSON body from the body options; NULL for GET (caller json_decref()s it). */
static json_t *build_body(const struct command *cmd, const char **val, const bool *flag, int nf)
{
    if (strcmp(cmd->method, "GET") == 0)
        return NULL;
    json_t *body = cmd->body ? json_loads(cmd->body, 0, NULL) : json_object();
    for (int i = 0; i < nf; i++) {
        const struct field *f = &cmd->fields[i];
        if (f->where != IN_BODY)
            continue;
        if (f->kind == F_FLAG && flag[i])
            json_object_set_new(body, f->key, json_true());
        else if (val[i])
            json_object_set_new(body, f->key, json_string(val[i]));
    }
    return body;
}

/* Runs a declarative command: options go into the body or the query, the IDs into the path. */
static int run_declared(struct ctl *c, int argc, char **argv, const struct command *cmd)
{
    const char *val[MAX_FIELDS] = {0}, *pos[2];
    bool flag[MAX_FIELDS] = {0};
    struct opt opts[MAX_FIELDS + 1] = {{0}};
    int nf = 0;
    for (; nf < MAX_FIELDS && cmd->fields[nf].opt; nf++) {
        opts[nf].name = cmd->fields[nf].opt;
        if (cmd->fields[nf].kind == F_FLAG)
            opts[nf].flag = &flag[nf];
        else
            opts[nf].value = &val[nf];
    }
    int want = path_holes(cmd);
    int n, rc = parse_args(c, argc, argv, opts, cmd, pos, &n, want, want);
    if (rc >= 0 || (rc = check_fields(cmd, val, flag, nf)) >= 0 || (rc = ctl_prepare(c)))
        return rc;
    char *path = build_path(c, cmd, pos, val, nf);
    json_t *body = build_body(cmd, val, flag, nf), *ans;
    rc = ctl_call(c, cmd->method, path, body, &ans);
    json_decref(body);
    free(path);
    return rc ? rc : show(c, ans, cmd->print);
}

/* ---------- commands that do more than one call ---------- */

/* instance add: a real instance (--dsn) or a simulated one (--simulated), exactly one of them. */
static int cmd_instance_add(struct ctl *c, int argc, char **argv, const struct command *cmd)
{
    bool dsn = false, sim = false;
    for (int i = 0; i < argc; i++) {
        dsn |= strcmp(argv[i], "--dsn") == 0;
        sim |= strcmp(argv[i], "--simulated") == 0;
    }
    bool help = false;
    for (int i = 0; i < argc; i++)
        help |= strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0;
    if (!help && dsn == sim)
        return usage_error(cmd, "give --dsn DSN for a real instance or --simulated, not %s",
                           dsn ? "both" : "neither");
    return run_declared(c, argc, argv, cmd);
}

/* sim rule set NAME (FILE | -): the rule's JSON from a file or standard input. */
static int cmd_sim_rule_set(struct ctl *c, int argc, char **argv, const struct command *cmd)
{
    const char *pos[2];
    int n, rc = parse_args(c, argc, argv, NULL, cmd, pos, &n, 2, 2);
    json_t *ans;
    if (rc >= 0)
        return rc;
    json_error_t err;
    bool in = strcmp(pos[1], "-") == 0;
    json_t *body = in ? json_loadf(stdin, 0, &err) : json_load_file(pos[1], 0, &err);
    if (!body)
        return usage_error(cmd, "%s: line %d column %d: %s", in ? "<stdin>" : pos[1], err.line,
                           err.column, err.text);
    if ((rc = ctl_prepare(c))) {
        json_decref(body);
        return rc;
    }
    char *path = ctl_path_with_id(c, "/v1/simulation/rules/", pos[0], "");
    rc = ctl_call(c, "PUT", path, body, &ans);
    json_decref(body);
    free(path);
    return rc ? rc : show(c, ans, ctl_print_plain);
}

static int cmd_policy_set(struct ctl *c, int argc, char **argv, const struct command *cmd)
{
    const char *pos[MAX_POS];
    int n, rc = parse_args(c, argc, argv, NULL, cmd, pos, &n, 2, MAX_POS);
    json_t *ans;
    if (rc >= 0 || (rc = ctl_prepare(c)))
        return rc;
    json_t *allow = json_array();
    for (int i = 1; i < n; i++)
        json_array_append_new(allow, json_string(pos[i]));
    json_t *body = json_pack("{s:o}", "allow", allow);
    char *path = ctl_path_with_id(c, "/v1/subaccounts/", pos[0], "/policy");
    rc = ctl_call(c, "PUT", path, body, &ans);
    json_decref(body);
    free(path);
    return rc ? rc : show(c, ans, ctl_print_plain);
}

static int cmd_task_create(struct ctl *c, int argc, char **argv, const struct command *cmd)
{
    const char *file = NULL, *key = NULL, *pos[1];
    const struct opt own[] = {
        {"--file", &file, NULL}, {"--idempotency-key", &key, NULL}, {NULL, NULL, NULL}};
    int n, rc = parse_args(c, argc, argv, own, cmd, pos, &n, 0, 1);
    json_t *ans;
    if (rc >= 0)
        return rc;
    if (key && (!*key || strlen(key) > 255))
        return usage_error(cmd, "--idempotency-key takes 1 to 255 characters");
    if (n == 1 && (strcmp(pos[0], "-") != 0 || file))
        return usage_error(cmd, "give --file F or -, once");
    if (n == 1)
        file = "-";
    if (!file)
        return usage_error(cmd, "give the task body with --file F, or - to read standard input");
    json_error_t err;
    bool in = strcmp(file, "-") == 0;
    json_t *body = in ? json_loadf(stdin, 0, &err) : json_load_file(file, 0, &err);
    if (!body)
        return usage_error(cmd, "%s: line %d column %d: %s", in ? "<stdin>" : file, err.line,
                           err.column, err.text);
    /* With a key, running the same command again (after a timeout, say) answers the task the
     * first run made instead of making a second one. */
    /* An array is a batch: POST /v1/tasks/batch makes all its tasks in one transaction or none
     * (the refused one named), so a script never has to clean up half a batch. */
    bool batch = json_is_array(body);
    if (batch)
        body = json_pack("{s:o}", "tasks", body);
    c->idem_key = key;
    rc = ctl_call(c, "POST", batch ? "/v1/tasks/batch" : "/v1/tasks", body, &ans);
    c->idem_key = NULL;
    json_decref(body);
    return rc ? rc : show(c, ans, batch ? ctl_print_task_ids : ctl_print_task_id);
}

/* The first line of file (the secret, kept out of argv and so out of ps), into out[cap]. */
static int read_secret_file(const struct command *cmd, const char *file, char *out, size_t cap)
{
    FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
    if (!f)
        return usage_error(cmd, "%s: %s", file, strerror(errno));
    bool got = fgets(out, (int)cap, f) != NULL;
    if (f != stdin)
        fclose(f);
    out[got ? strcspn(out, "\r\n") : 0] = '\0';
    if (!out[0])
        return usage_error(cmd, "%s: no secret on its first line", file);
    return -1;
}

/* webhook create: the secret from --secret-file F (or - for standard input), or --secret S. */
static int cmd_webhook_create(struct ctl *c, int argc, char **argv, const struct command *cmd)
{
    const char *url = NULL, *secret = NULL, *file = NULL, *events = "final", *product = NULL,
               *uin = NULL, *pos[1];
    const struct opt own[] = {
        {"--url", &url, NULL},       {"--secret", &secret, NULL},   {"--secret-file", &file, NULL},
        {"--events", &events, NULL}, {"--product", &product, NULL}, {"--uin", &uin, NULL},
        {NULL, NULL, NULL}};
    int n, rc = parse_args(c, argc, argv, own, cmd, pos, &n, 0, 0);
    if (rc >= 0)
        return rc;
    if (!url)
        return usage_error(cmd, "--url is required");
    if (!!secret == !!file)
        return usage_error(cmd, "give the secret with --secret-file F (or -) or --secret S, once");
    char buf[512];
    if (file && (rc = read_secret_file(cmd, file, buf, sizeof buf)) >= 0)
        return rc;
    if ((rc = ctl_prepare(c)))
        return rc;
    json_t *body =
        json_pack("{s:s, s:s, s:[s]}", "url", url, "secret", file ? buf : secret, "events", events);
    memset(buf, 0, sizeof buf);
    if (product)
        json_object_set_new(body, "product", json_string(product));
    if (uin)
        json_object_set_new(body, "uin", json_string(uin));
    json_t *ans;
    rc = ctl_call(c, "POST", "/v1/webhooks", body, &ans);
    json_decref(body);
    return rc ? rc : show(c, ans, ctl_print_plain);
}

static bool is_final(const char *state)
{
    static const char *const finals[] = {"success", "failed", "undoed", "killed", "removed", NULL};
    return state && ctl_in_list(state, finals);
}

/* One progress line on stderr: elapsed time, state (and the dialect's word), step k/n and its
 * name while one is current, and the latest event's message. */
static void wait_progress(json_t *t, double elapsed)
{
    json_t *steps = json_object_get(t, "steps");
    json_int_t cur = json_integer_value(json_object_get(t, "current_step"));
    size_t n = json_array_size(steps);
    const char *state = json_string_value(json_object_get(t, "state"));
    const char *word = json_string_value(json_object_get(t, "Status"));
    json_t *events = json_object_get(t, "events");
    const char *last = json_string_value(
        json_object_get(json_array_get(events, json_array_size(events) - 1), "message"));
    char step[200] = "";
    if (cur >= 0 && (size_t)cur < n) {
        const char *name =
            json_string_value(json_object_get(json_array_get(steps, (size_t)cur), "name"));
        snprintf(step, sizeof step, "  step %" JSON_INTEGER_FORMAT " of %zu (%.100s)", cur + 1, n,
                 name ? name : "");
    }
    fprintf(stderr, "[%7.1fs] %s%s%s%s%s\n", elapsed, state ? state : "?", word ? " (" : "",
            word ? word : "", word ? ")" : "", step);
    if (last)
        fprintf(stderr, "%11s%.200s\n", "", last);
}

/* Reports how a wait ended; 0 when the task succeeded, else EXIT_API. */
static int wait_outcome(json_t *t, const char *id, bool json, const char *timeout)
{
    const char *state = json_string_value(json_object_get(t, "state"));
    if (json) {
        json_dumpf(t, stdout, JSON_COMPACT);
        putchar('\n');
    }
    if (!is_final(state)) {
        fprintf(stderr, "asyncctl: task %s still %s after %s s\n", id, state ? state : "?",
                timeout);
        return EXIT_API;
    }
    if (strcmp(state, "success") != 0) {
        fprintf(stderr, "asyncctl: task %s ended %s\n", id, state);
        return EXIT_API;
    }
    return EXIT_OK;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Polls a task until it reaches a final state: 0 when it succeeded, 1 otherwise or on timeout. */
static int cmd_task_wait(struct ctl *c, int argc, char **argv, const struct command *cmd)
{
    const char *timeout = NULL, *interval = "1", *pos[1];
    const struct opt own[] = {
        {"--timeout", &timeout, NULL}, {"--interval", &interval, NULL}, {NULL, NULL, NULL}};
    int n, rc = parse_args(c, argc, argv, own, cmd, pos, &n, 1, 1);
    if (rc >= 0)
        return rc;
    double tmo = timeout ? strtod(timeout, NULL) : 0, ivl = strtod(interval, NULL);
    if (tmo < 0 || ivl <= 0)
        return usage_error(cmd, "--timeout and --interval take a positive number of seconds");
    if ((rc = ctl_prepare(c)))
        return rc;
    char *path = ctl_path_with_id(c, "/v1/tasks/", pos[0], "");
    bool json = c->json;
    c->json = false; /* polls print nothing; the last answer is printed once */
    double start = now_s();
    json_t *t = NULL;
    long long seen = -1;
    char *url = xasprintf("%s", path);
    /* Long-poll: each call returns as soon as the task has an event after the last one seen. */
    while ((rc = ctl_call(c, "GET", url, NULL, &t)) == 0) {
        const char *state = json_string_value(json_object_get(t, "state"));
        json_t *events = json_object_get(t, "events");
        long long seq = json_integer_value(
            json_object_get(json_array_get(events, json_array_size(events) - 1), "seq"));
        if (seq != seen && !json)
            wait_progress(t, now_s() - start);
        seen = seq;
        if (is_final(state) || (tmo > 0 && now_s() - start >= tmo)) {
            rc = wait_outcome(t, pos[0], json, timeout);
            break;
        }
        json_decref(t);
        t = NULL;
        double left = tmo > 0 ? tmo - (now_s() - start) : 25;
        double w = left < ivl ? ivl : left > 25 ? 25 : left;
        free(url);
        url = xasprintf("%s?wait=%.1fs&since_seq=%lld", path, w, seq);
    }
    json_decref(t);
    free(url);
    free(path);
    return rc;
}

static int cmd_metrics(struct ctl *c, int argc, char **argv, const struct command *cmd)
{
    const char *pos[1];
    int n, rc = parse_args(c, argc, argv, NULL, cmd, pos, &n, 0, 0);
    struct reply r;
    if (rc >= 0 || (rc = ctl_prepare(c)) || (rc = ctl_request(c, "GET", "/metrics", NULL, &r)))
        return rc;
    rc = r.status >= 200 && r.status < 300 ? EXIT_OK : ctl_api_error(c, &r);
    if (rc == EXIT_OK)
        fputs(r.body.p, stdout);
    free(r.body.p);
    return rc;
}

/* ---------- the command table ---------- */

#define BODY(o, k)                                                                                 \
    {                                                                                              \
        (o), (k), IN_BODY, F_STR, false, NULL                                                      \
    }
#define BODY_REQ(o, k)                                                                             \
    {                                                                                              \
        (o), (k), IN_BODY, F_STR, true, NULL                                                       \
    }
#define QUERY(o, k)                                                                                \
    {                                                                                              \
        (o), (k), IN_QUERY, F_STR, false, NULL                                                     \
    }
#define QUERY_COUNT(o, k)                                                                          \
    {                                                                                              \
        (o), (k), IN_QUERY, F_COUNT, false, NULL                                                   \
    }
#define TASK_VERB(v, what)                                                                         \
    {                                                                                              \
        .group = "task", .verb = v, .args = "ID [--message M]", .purpose = what, .method = "POST", \
        .path = "/v1/tasks/{}/" v, .print = ctl_print_task, .fields = {                            \
            BODY("--message", "message")                                                           \
        }                                                                                          \
    }

static const struct command commands[] = {
    {.group = "account",
     .verb = "create",
     .args = "",
     .method = "POST",
     .path = "/v1/accounts",
     .purpose = "Create a root account; prints its keys."},
    {.group = "account",
     .verb = "show",
     .args = "UIN",
     .method = "GET",
     .path = "/v1/accounts/{}",
     .print = ctl_print_account,
     .purpose = "Show an account (root or sub-account) and its key pairs (never a SecretKey)."},
    {.group = "account",
     .verb = "disable",
     .args = "UIN",
     .method = "PATCH",
     .path = "/v1/accounts/{}",
     .body = "{\"disabled\": true}",
     .print = ctl_print_account,
     .purpose =
         "Disable an account: every request it signs is refused (AuthFailure.SecretIdNotFound);"
         " a root account's sub-accounts too."},
    {.group = "account",
     .verb = "enable",
     .args = "UIN",
     .method = "PATCH",
     .path = "/v1/accounts/{}",
     .body = "{\"disabled\": false}",
     .print = ctl_print_account,
     .purpose = "Enable a disabled account again."},
    {.group = "account key",
     .verb = "create",
     .args = "UIN",
     .method = "POST",
     .path = "/v1/accounts/{}/keys",
     .purpose = "Add a key pair to an account (at most 2); prints SecretId and SecretKey, the only "
                "time the SecretKey is shown."},
    {.group = "account key",
     .verb = "list",
     .args = "UIN",
     .method = "GET",
     .path = "/v1/accounts/{}/keys",
     .print = ctl_print_keys,
     .purpose = "List an account's key pairs: SecretId, status, created (never a SecretKey)."},
    {.group = "account key",
     .verb = "disable",
     .args = "UIN SECRET_ID",
     .method = "PATCH",
     .path = "/v1/accounts/{}/keys/{}",
     .body = "{\"status\": \"disabled\"}",
     .purpose = "Disable a key pair: requests signed with it are refused from the next one on."},
    {.group = "account key",
     .verb = "enable",
     .args = "UIN SECRET_ID",
     .method = "PATCH",
     .path = "/v1/accounts/{}/keys/{}",
     .body = "{\"status\": \"enabled\"}",
     .purpose = "Enable a disabled key pair again."},
    {.group = "account key",
     .verb = "delete",
     .args = "UIN SECRET_ID",
     .method = "DELETE",
     .path = "/v1/accounts/{}/keys/{}",
     .purpose = "Delete a disabled key pair for good (disable it first)."},
    {.group = "subaccount",
     .verb = "create",
     .args = "ROOT_UIN",
     .method = "POST",
     .path = "/v1/accounts/{}/subaccounts",
     .purpose = "Create a sub-account under a root account; prints its keys."},
    {.group = "policy",
     .verb = "set",
     .args = "SUB_UIN PATTERN...",
     .run = cmd_policy_set,
     .purpose =
         "Replace a sub-account's policy; a pattern is PRODUCT:ACTION, '*' matches anything."},
    {.group = "instance",
     .verb = "create",
     .method = "POST",
     .path = "/v1/instances",
     .args = "--product P --region R --uin U --id ID [--status running] --dsn DSN",
     .purpose = "Register an instance (status running, isolated or offline).",
     .fields = {BODY_REQ("--product", "product"),
                BODY_REQ("--region", "region"),
                BODY_REQ("--uin", "uin"),
                BODY_REQ("--id", "instance_id"),
                {"--status", "status", IN_BODY, F_STR, false, "running"},
                BODY_REQ("--dsn", "dsn")}},
    {.group = "instance",
     .verb = "add",
     .run = cmd_instance_add,
     .method = "POST",
     .path = "/v1/instances",
     .args = "--product P --region R --uin U --id ID [--status running] (--dsn DSN | --simulated)",
     .purpose = "Register an instance: a real one with its DSN, or a simulated one (no server; "
                "its tasks follow the progression rules, docs/simulation.md).",
     .fields = {BODY_REQ("--product", "product"),
                BODY_REQ("--region", "region"),
                BODY_REQ("--uin", "uin"),
                BODY_REQ("--id", "instance_id"),
                {"--status", "status", IN_BODY, F_STR, false, "running"},
                BODY("--dsn", "dsn"),
                {"--simulated", "simulated", IN_BODY, F_FLAG, false, NULL}}},
    {.group = "instance",
     .verb = "list",
     .args = "[--product P] [--uin U]",
     .method = "GET",
     .path = "/v1/instances",
     .print = ctl_print_instances,
     .purpose = "List instances.",
     .fields = {QUERY("--product", "product"), QUERY("--uin", "uin")}},
    {.group = "instance",
     .verb = "show",
     .args = "ID",
     .method = "GET",
     .path = "/v1/instances/{}",
     .purpose = "Show one instance (its DSN password as ***)."},
    {.group = "instance",
     .verb = "set",
     .args = "ID [--status S] [--dsn DSN]",
     .method = "PATCH",
     .path = "/v1/instances/{}",
     .need_one = true,
     .purpose = "Change an instance's status or DSN.",
     .fields = {BODY("--status", "status"), BODY("--dsn", "dsn")}},
    {.group = "task",
     .verb = "create",
     .args = "(--file F | -) [--idempotency-key K]",
     .run = cmd_task_create,
     .purpose = "Create a task from a JSON body (docs/admin-api.md, POST /v1/tasks); prints its "
                "id. A JSON array of bodies (up to 1000) creates them all in one transaction or "
                "none (POST /v1/tasks/batch) and prints their ids a line each, in order. With "
                "--idempotency-key K, the same command run again prints the first run's ids and "
                "makes no second task."},
    {.group = "task",
     .verb = "show",
     .args = "ID",
     .method = "GET",
     .path = "/v1/tasks/{}",
     .print = ctl_print_task,
     .purpose = "Show a task with its steps and events."},
    {.group = "task",
     .verb = "list",
     .method = "GET",
     .path = "/v1/tasks",
     .print = ctl_print_task_list,
     .args = "[--product P] [--status S] [--instance ID] [--uin U] [--type T] [--since TIME] "
             "[--until TIME] [--limit N] [--offset N]",
     .purpose = "List tasks, newest first; --status takes a canonical state or a status word "
                "of either dialect (RUNNING, undoed); --since/--until bound the creation time "
                "(RFC 3339 or Unix ms).",
     .fields = {QUERY("--product", "product"), QUERY("--status", "status"),
                QUERY("--instance", "instance_id"), QUERY("--uin", "uin"), QUERY("--type", "type"),
                QUERY("--since", "since"), QUERY("--until", "until"),
                QUERY_COUNT("--limit", "limit"), QUERY_COUNT("--offset", "offset")}},
    {.group = "task",
     .verb = "wait",
     .args = "ID [--timeout S] [--interval S]",
     .run = cmd_task_wait,
     .purpose = "Follow a task until it ends, showing progress; exit 0 when it succeeded, else 1."},
    TASK_VERB("pause", "Pause a running task."),
    TASK_VERB("resume", "Resume a paused task (retry its failed step)."),
    TASK_VERB("skip", "Skip the failed step of a paused task and go on."),
    TASK_VERB("undo", "Undo a paused or running task."),
    TASK_VERB("kill", "Kill a running or paused task."),
    TASK_VERB("remove", "Withdraw a task that has not started."),
    {.group = "task",
     .verb = "transition",
     .method = "POST",
     .path = "/v1/tasks/{}/transition",
     .args = "ID --to STATE [--info I] [--message M] [--step-done]",
     .print = ctl_print_task,
     .purpose = "Record a state change reported by whoever runs the task.",
     .fields = {BODY_REQ("--to", "to"),
                BODY("--info", "info"),
                BODY("--message", "message"),
                {"--step-done", "step_done", IN_BODY, F_FLAG, false, NULL}}},
    {.group = "sim rule",
     .verb = "set",
     .args = "NAME (FILE | -)",
     .run = cmd_sim_rule_set,
     .purpose = "Set a progression rule for simulated tasks from a JSON file or standard input "
                "(docs/simulation.md)."},
    {.group = "sim rule",
     .verb = "list",
     .args = "",
     .method = "GET",
     .path = "/v1/simulation/rules",
     .purpose = "List the progression rules."},
    {.group = "sim rule",
     .verb = "delete",
     .args = "NAME",
     .method = "DELETE",
     .path = "/v1/simulation/rules/{}",
     .purpose = "Delete a progression rule (tasks created later no longer follow it)."},
    {.group = "sim",
     .verb = "reset",
     .args = "",
     .method = "POST",
     .path = "/v1/simulation/reset",
     .purpose = "Delete every progression rule, simulated instance and simulated task."},
    {.group = "sim",
     .verb = "advance",
     .args = "TASK",
     .method = "POST",
     .path = "/v1/tasks/{}/advance",
     .print = ctl_print_task,
     .purpose = "End the phase a simulated task waits in (\"until\": \"advance\")."},
    {.group = "token",
     .verb = "create",
     .args = "--scope admin|operator|reader|worker --name N",
     .method = "POST",
     .path = "/v1/tokens",
     .print = ctl_print_token,
     .purpose = "Make an admin API token valid on every node; prints it once (keep it).",
     .fields = {BODY_REQ("--scope", "scope"), BODY_REQ("--name", "name")}},
    {.group = "token",
     .verb = "list",
     .args = "",
     .method = "GET",
     .path = "/v1/tokens",
     .print = ctl_print_tokens,
     .purpose = "List the live tokens (ids, names, scopes; never the tokens)."},
    {.group = "token",
     .verb = "revoke",
     .args = "ID",
     .method = "DELETE",
     .path = "/v1/tokens/{}",
     .purpose = "Revoke a token on every node."},
    {.group = "webhook",
     .verb = "create",
     .args = "--url URL (--secret-file F | --secret S) [--events final|transition] [--product P] "
             "[--uin U]",
     .run = cmd_webhook_create,
     .purpose = "Subscribe URL to tasks' final states (default) or every transition, of one "
                "product or account if given; deliveries are signed with the secret "
                "(docs/webhooks.md)."},
    {.group = "webhook",
     .verb = "list",
     .args = "",
     .method = "GET",
     .path = "/v1/webhooks",
     .print = ctl_print_webhooks,
     .purpose = "List the webhook subscriptions (never their secrets)."},
    {.group = "webhook",
     .verb = "show",
     .args = "ID",
     .method = "GET",
     .path = "/v1/webhooks/{}",
     .purpose = "Show a subscription with its deliveries counted by state."},
    {.group = "webhook",
     .verb = "delete",
     .args = "ID",
     .method = "DELETE",
     .path = "/v1/webhooks/{}",
     .purpose = "Delete a subscription and its deliveries, sent or not."},
    {.group = "webhook",
     .verb = "deliveries",
     .args = "ID [--task TASK] [--limit N]",
     .method = "GET",
     .path = "/v1/webhooks/{}/deliveries",
     .print = ctl_print_deliveries,
     .purpose = "List a subscription's deliveries, newest first, with their attempts.",
     .fields = {QUERY("--task", "task"), QUERY_COUNT("--limit", "limit")}},
    {.group = "health",
     .args = "",
     .method = "GET",
     .path = "/healthz",
     .print = ctl_print_health,
     .purpose = "Check that the daemon answers (GET /healthz)."},
    {.group = "metrics",
     .args = "",
     .run = cmd_metrics,
     .purpose = "Print the Prometheus metrics (GET /metrics)."},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

/* ---------- dispatch ---------- */

/* Whether k belongs to group: its own, or a two-word group under it ("account key" under
 * "account"). */
static bool in_group(const struct command *k, const char *group)
{
    size_t n = strlen(group);
    return strncmp(k->group, group, n) == 0 && (k->group[n] == '\0' || k->group[n] == ' ');
}

static void main_help(FILE *f, const char *group)
{
    fputs("asyncctl: operate an asyncd daemon through its admin API.\n\nCommands:\n", f);
    for (size_t i = 0; i < NCOMMANDS; i++) {
        const struct command *k = &commands[i];
        if (group && !in_group(k, group))
            continue;
        fprintf(f, "  asyncctl %s%s%s %s\n      %s\n", k->group, k->verb ? " " : "",
                k->verb ? k->verb : "", k->args, k->purpose);
    }
    fprintf(f, "\n%s", global_help);
}

static const struct command *find_command(const char *group, const char *verb, bool *group_known)
{
    *group_known = false;
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (strcmp(commands[i].group, group) != 0)
            continue;
        *group_known = true;
        if (!commands[i].verb || (verb && strcmp(commands[i].verb, verb) == 0))
            return &commands[i];
    }
    return NULL;
}

/* Global options before the command; the index of the command word, or -1 - exit code. */
static int parse_leading(struct ctl *c, int argc, char **argv)
{
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const struct opt global[] = {{"--admin", &c->admin_opt, NULL},
                                     {"--token", &c->token, NULL},
                                     {"--data", &c->data, NULL},
                                     {"--json", NULL, &c->json},
                                     {NULL, NULL, NULL}};
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            main_help(stdout, NULL);
            return -1 - EXIT_OK;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("asyncctl %s\n", ASYNCD_VERSION);
            return -1 - EXIT_OK;
        }
        int r = 0;
        for (const struct opt *o = global; o->name && r == 0; o++)
            r = opt_match(o, argc, argv, &i);
        if (r <= 0)
            return -1 - usage_error(NULL, r < 0 ? "option %s needs a value" : "unknown option '%s'",
                                    argv[i]);
    }
    if (i >= argc)
        return -1 - usage_error(NULL, "no command given");
    return i;
}

/* An unknown or missing verb after a known group: the group's help, exit 0 for --help, else 2. */
static int group_help(const char *group, const char *verb)
{
    bool help = verb && (strcmp(verb, "--help") == 0 || strcmp(verb, "-h") == 0);
    if (!help)
        fprintf(stderr, "asyncctl: %s '%s'\n", verb ? "unknown verb" : "missing verb after",
                verb ? verb : group);
    main_help(help ? stdout : stderr, group);
    return help ? EXIT_OK : EXIT_USAGE;
}

static int run(int argc, char **argv)
{
    struct ctl c = {0};
    int i = parse_leading(&c, argc, argv);
    if (i < 0)
        return -1 - i;
    const char *group = argv[i], *verb = i + 1 < argc ? argv[i + 1] : NULL;
    char pair[64] = "";
    bool known;
    int words = 1;
    /* A two-word group ("account key create ...") before a one-word one ("account show"). */
    if (verb && snprintf(pair, sizeof pair, "%s %s", group, verb) < (int)sizeof pair) {
        bool pair_known;
        const char *v = i + 2 < argc ? argv[i + 2] : NULL;
        if (find_command(pair, v, &pair_known) || pair_known)
            group = pair, verb = v, words = 2;
    }
    const struct command *cmd = find_command(group, verb, &known);
    if (!cmd)
        return known ? group_help(group, verb) : usage_error(NULL, "unknown command '%s'", group);
    int skip = words + (cmd->verb ? 1 : 0);
    command_fn fn = cmd->run ? cmd->run : run_declared;
    int rc = fn(&c, argc - i - skip, argv + i + skip, cmd);
    ctl_close(&c);
    return rc;
}

int main(int argc, char **argv)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
        fputs("asyncctl: curl_global_init failed\n", stderr);
        return EXIT_UNREACHABLE;
    }
    int rc = run(argc, argv);
    fflush(stdout);
    curl_global_cleanup();
    return rc;
}
