/* The process's metric registry: fixed arrays of atomic counters indexed by small label ids, and
 * the Prometheus text renderer. Updates are relaxed atomic adds: a scrape may see one family a
 * few events ahead of another, never a torn value. */
#include "common/metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#include "common/errors.h"

#define M_PRODUCTS 3  /* 0: none or unknown, 1: cdb, 2: mongodb */
#define M_CODES    64 /* -ERR_* codes; errors.h's lie in 0..-54 */
#define M_ACTIONS  256
#define M_TYPES    128
#define M_SLOTS    512 /* hash slots of a name set: at least twice its cap, a power of two */
#define M_NAME_MAX 64
#define M_BUCKETS  18
#define M_WEBHOOK  3

static const char *const product_names[M_PRODUCTS] = {"", "cdb", "mongodb"};
static const char *const executor_names[METRICS_EXEC_COUNT] = {"other", "exec", "mysql", "noop",
                                                               "sleep", "sim",  "remote"};
static const char *const webhook_results[M_WEBHOOK] = {"delivered", "retry", "failed"};

/* Upper bounds in seconds: a no-op step's milliseconds up to an hour-long exec step or a queue
 * that waits for a busy instance. */
static const double bucket_le[M_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,    2.5,
                                            5,     10,   30,    60,   120, 300,  600, 1800, 3600};

/* Per-bucket (not cumulative) counts, the last one past every bound; the sum in microseconds. */
struct hist {
    atomic_uint_fast64_t n[M_BUCKETS + 1];
    atomic_uint_fast64_t sum_us;
};

struct name_entry {
    int product;
    char name[M_NAME_MAX + 1];
};

/* Interned (product, name) pairs. Ids 0..M_PRODUCTS-1 are each product's "other"; slots hold
 * id + 1 (0 = empty), written once under mu and read without it. */
struct name_set {
    int cap;
    pthread_mutex_t mu;
    atomic_int n;
    atomic_int slots[M_SLOTS];
    struct name_entry names[M_ACTIONS];
};

static struct name_set actions = {.cap = M_ACTIONS, .mu = PTHREAD_MUTEX_INITIALIZER};
static struct name_set types = {.cap = M_TYPES, .mu = PTHREAD_MUTEX_INITIALIZER};

static atomic_uint_fast64_t cloudapi_requests[M_ACTIONS][M_CODES];
static struct hist step_hist[M_TYPES][METRICS_EXEC_COUNT];
static struct hist queue_hist[M_TYPES];
static atomic_uint_fast64_t transitions[M_PRODUCTS][TASK_STATE_COUNT];
static atomic_uint_fast64_t verbs[M_PRODUCTS][VERB_COUNT];
static atomic_uint_fast64_t retries[M_PRODUCTS];
static atomic_uint_fast64_t takeovers[M_PRODUCTS];
static atomic_uint_fast64_t webhook[M_WEBHOOK];
static atomic_uint_fast64_t purged_tasks, purged_keys; /* retention (daemon/retention.c) */
static atomic_int_fast64_t running;

static void add(atomic_uint_fast64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static uint64_t get(atomic_uint_fast64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

static int product_ix(const char *p)
{
    if (!p)
        return 0;
    for (int i = 1; i < M_PRODUCTS; i++)
        if (strcmp(p, product_names[i]) == 0)
            return i;
    return 0;
}

/* --- name sets --- */

static void names_init(struct name_set *s)
{
    for (int i = 0; i < M_PRODUCTS; i++) {
        s->names[i].product = i;
        strcpy(s->names[i].name, "other");
    }
    atomic_store(&s->n, M_PRODUCTS);
}

/* The set's reserved entries are written once, before any lookup can need them. */
static pthread_once_t names_once = PTHREAD_ONCE_INIT;
static void names_init_all(void)
{
    names_init(&actions);
    names_init(&types);
}

static uint32_t name_hash(int product, const char *name)
{
    uint32_t h = 2166136261u ^ (uint32_t)product; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h;
}

/* The id of (product, name), or -1; *slot: where the probe ended (an empty slot then). */
static int names_find(struct name_set *s, int product, const char *name, uint32_t *slot)
{
    uint32_t i = name_hash(product, name) & (M_SLOTS - 1);
    for (;; i = (i + 1) & (M_SLOTS - 1)) {
        int v = atomic_load_explicit(&s->slots[i], memory_order_acquire);
        if (v == 0) {
            *slot = i;
            return -1;
        }
        const struct name_entry *en = &s->names[v - 1];
        if (en->product == product && strcmp(en->name, name) == 0)
            return v - 1;
    }
}

static int names_id(struct name_set *s, const char *product, const char *name)
{
    pthread_once(&names_once, names_init_all);
    int p = product_ix(product);
    if (!name || !*name || strlen(name) > M_NAME_MAX || strcmp(name, "other") == 0)
        return p;
    uint32_t slot;
    int id = names_find(s, p, name, &slot);
    if (id >= 0)
        return id;
    pthread_mutex_lock(&s->mu);
    id = names_find(s, p, name, &slot); /* another thread may have added it meanwhile */
    int n = atomic_load_explicit(&s->n, memory_order_relaxed);
    if (id < 0 && n < s->cap) {
        id = n;
        s->names[id].product = p;
        strcpy(s->names[id].name, name);
        atomic_store_explicit(&s->n, n + 1, memory_order_release);
        atomic_store_explicit(&s->slots[slot], id + 1, memory_order_release);
    }
    pthread_mutex_unlock(&s->mu);
    return id >= 0 ? id : p;
}

/* --- updates --- */

int metrics_cloudapi_action(const char *product, const char *action)
{
    return names_id(&actions, product, action);
}

void metrics_cloudapi_request(int action_id, int code)
{
    int ci = -code;
    if (ci < 0 || ci >= M_CODES)
        ci = -ERR_INTERNAL;
    if (action_id < 0 || action_id >= M_ACTIONS)
        action_id = 0;
    add(&cloudapi_requests[action_id][ci], 1);
}

int metrics_task_type(const char *product, const char *type)
{
    return names_id(&types, product, type);
}

enum metrics_executor metrics_executor_of(const char *key)
{
    for (int i = 1; key && i < METRICS_EXEC_COUNT; i++)
        if (strcmp(key, executor_names[i]) == 0)
            return (enum metrics_executor)i;
    return METRICS_EXEC_OTHER;
}

static void hist_observe(struct hist *h, int64_t us)
{
    if (us < 0)
        us = 0;
    double s = (double)us / 1e6;
    int b = 0;
    while (b < M_BUCKETS && s > bucket_le[b])
        b++;
    add(&h->n[b], 1);
    add(&h->sum_us, (uint64_t)us);
}

void metrics_step_observe(int type_id, enum metrics_executor ex, int64_t ns)
{
    if (type_id < 0 || type_id >= M_TYPES || ex < 0 || ex >= METRICS_EXEC_COUNT)
        return;
    hist_observe(&step_hist[type_id][ex], ns / 1000);
}

void metrics_queue_wait_observe(int type_id, int64_t ms)
{
    if (type_id >= 0 && type_id < M_TYPES)
        hist_observe(&queue_hist[type_id], ms * 1000);
}

void metrics_transition(const char *product, enum task_state to)
{
    if (to >= 0 && to < TASK_STATE_COUNT)
        add(&transitions[product_ix(product)][to], 1);
}

void metrics_operator_verb(const char *product, enum task_verb verb)
{
    if (verb < 0 || verb >= VERB_COUNT)
        return;
    add(&verbs[product_ix(product)][verb], 1);
    if (verb == VERB_KILL || verb == VERB_REMOVE)
        metrics_transition(product, verb == VERB_KILL ? TASK_KILLED : TASK_REMOVED);
}

void metrics_retry(const char *product) { add(&retries[product_ix(product)], 1); }

void metrics_lease_takeover(const char *product) { add(&takeovers[product_ix(product)], 1); }

void metrics_running_add(int delta)
{
    atomic_fetch_add_explicit(&running, delta, memory_order_relaxed);
}

void metrics_webhook_delivery(const char *result)
{
    for (int i = 0; result && i < M_WEBHOOK; i++)
        if (strcmp(result, webhook_results[i]) == 0)
            add(&webhook[i], 1);
}

void metrics_retention_purged(uint64_t tasks, uint64_t keys)
{
    add(&purged_tasks, tasks);
    add(&purged_keys, keys);
}

/* --- rendering --- */

/* A label value as the text format wants it: backslash, quote and newline escaped. */
static void put_value(FILE *f, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            fputc('\\', f);
        if (*v == '\n')
            fputs("\\n", f);
        else
            fputc(*v, f);
    }
}

static void head(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{labels,le="..."} lines, _sum and _count of one histogram series; labels is the text
 * between the braces (already escaped). Nothing for a series never observed. */
static void hist_render(FILE *f, const char *name, const char *labels, struct hist *h)
{
    uint64_t n[M_BUCKETS + 1], total = 0;
    for (int b = 0; b <= M_BUCKETS; b++)
        total += n[b] = get(&h->n[b]);
    if (total == 0)
        return;
    uint64_t cum = 0;
    for (int b = 0; b < M_BUCKETS; b++) {
        cum += n[b];
        fprintf(f, "%s_bucket{%s,le=\"%g\"} %llu\n", name, labels, bucket_le[b],
                (unsigned long long)cum);
    }
    /* _count is the +Inf bucket's, so the two agree even while others observe. */
    fprintf(f, "%s_bucket{%s,le=\"+Inf\"} %llu\n", name, labels, (unsigned long long)total);
    fprintf(f, "%s_sum{%s} %.6f\n", name, labels, (double)get(&h->sum_us) / 1e6);
    fprintf(f, "%s_count{%s} %llu\n", name, labels, (unsigned long long)total);
}

/* product="P",KEY="NAME" of a name set's entry, escaped, into buf. */
static void entry_labels(const struct name_entry *en, const char *key, char *buf, size_t cap)
{
    FILE *m = fmemopen(buf, cap, "w");
    fprintf(m, "product=\"%s\",%s=\"", product_names[en->product], key);
    put_value(m, en->name);
    fputc('"', m);
    fclose(m);
}

static int names_count(struct name_set *s)
{
    pthread_once(&names_once, names_init_all);
    return atomic_load_explicit(&s->n, memory_order_acquire);
}

static void render_cloudapi(FILE *f)
{
    head(f, "asyncd_cloudapi_requests_total", "counter",
         "Cloud API requests answered, by product, action (\"other\" for an unknown one) and "
         "Error.Code (\"ok\" for success).");
    int n = names_count(&actions);
    char labels[256];
    for (int id = 0; id < n; id++) {
        entry_labels(&actions.names[id], "action", labels, sizeof labels);
        for (int ci = 0; ci < M_CODES; ci++) {
            uint64_t v = get(&cloudapi_requests[id][ci]);
            if (v)
                fprintf(f, "asyncd_cloudapi_requests_total{%s,code=\"%s\"} %llu\n", labels,
                        ci ? err_tencent_code(-ci) : "ok", (unsigned long long)v);
        }
    }
}

static void render_engine_hists(FILE *f)
{
    int n = names_count(&types);
    char base[256], labels[320];
    head(f, "asyncd_step_duration_seconds", "histogram",
         "Time a step's do or undo action ran on this node, by product, task type and executor.");
    for (int id = 0; id < n; id++) {
        entry_labels(&types.names[id], "type", base, sizeof base);
        for (int ex = 0; ex < METRICS_EXEC_COUNT; ex++) {
            snprintf(labels, sizeof labels, "%s,executor=\"%s\"", base, executor_names[ex]);
            hist_render(f, "asyncd_step_duration_seconds", labels, &step_hist[id][ex]);
        }
    }
    head(f, "asyncd_queue_wait_seconds", "histogram",
         "Time from a task's creation to its first claim, by product and task type.");
    for (int id = 0; id < n; id++) {
        entry_labels(&types.names[id], "type", base, sizeof base);
        hist_render(f, "asyncd_queue_wait_seconds", base, &queue_hist[id]);
    }
}

/* One counter per known product (0 included, so rate() has a series from the start), and the
 * unknown product's only once it counted. */
static void render_by_product(FILE *f, const char *name, atomic_uint_fast64_t *c)
{
    for (int p = 0; p < M_PRODUCTS; p++) {
        uint64_t v = get(&c[p]);
        if (p || v)
            fprintf(f, "%s{product=\"%s\"} %llu\n", name, product_names[p], (unsigned long long)v);
    }
}

static void render_engine_counters(FILE *f, const char *node)
{
    head(f, "asyncd_task_transitions_total", "counter",
         "Task transitions this node committed (its engine's, and the kill and remove verbs it "
         "answered), by product and the state entered.");
    for (int p = 0; p < M_PRODUCTS; p++)
        for (int s = TASK_RUNNING; s < TASK_STATE_COUNT;
             s++) { /* the engine never enters initial */
            uint64_t v = get(&transitions[p][s]);
            if (p || v)
                fprintf(f, "asyncd_task_transitions_total{product=\"%s\",to=\"%s\"} %llu\n",
                        product_names[p], task_state_name((enum task_state)s),
                        (unsigned long long)v);
        }
    head(f, "asyncd_operator_verbs_total", "counter",
         "Operator verbs this node's admin API applied, by product and verb.");
    for (int p = 0; p < M_PRODUCTS; p++)
        for (int v = 0; v < VERB_COUNT; v++) {
            uint64_t n = get(&verbs[p][v]);
            if (p || n)
                fprintf(f, "asyncd_operator_verbs_total{product=\"%s\",verb=\"%s\"} %llu\n",
                        product_names[p], task_verb_name((enum task_verb)v), (unsigned long long)n);
        }
    head(f, "asyncd_task_retries_total", "counter",
         "Failed step attempts handed back to run again after their backoff, by product.");
    render_by_product(f, "asyncd_task_retries_total", retries);
    head(f, "asyncd_lease_takeovers_total", "counter",
         "Claims of a task whose lease another node held and let expire, by product.");
    render_by_product(f, "asyncd_lease_takeovers_total", takeovers);
    head(f, "asyncd_webhook_deliveries_total", "counter",
         "Webhook delivery attempts by result: delivered, retry (will be tried again), failed "
         "(given up).");
    for (int i = 0; i < M_WEBHOOK; i++)
        fprintf(f, "asyncd_webhook_deliveries_total{result=\"%s\"} %llu\n", webhook_results[i],
                (unsigned long long)get(&webhook[i]));
    head(f, "asyncd_retention_purged_total", "counter",
         "Rows this node's retention sweeps removed: finished tasks (with their steps and "
         "events) and expired idempotency keys.");
    fprintf(f, "asyncd_retention_purged_total{what=\"tasks\"} %llu\n",
            (unsigned long long)get(&purged_tasks));
    fprintf(f, "asyncd_retention_purged_total{what=\"keys\"} %llu\n",
            (unsigned long long)get(&purged_keys));
    head(f, "asyncd_tasks_running", "gauge",
         "Tasks this node has claimed and runs now (a step running, waiting for a worker thread "
         "or for its last write).");
    fputs("asyncd_tasks_running{node=\"", f);
    put_value(f, node ? node : "");
    fprintf(f, "\"} %lld\n", (long long)atomic_load_explicit(&running, memory_order_relaxed));
}

void metrics_render(FILE *f, const char *node)
{
    render_cloudapi(f);
    render_engine_hists(f);
    render_engine_counters(f, node);
}

static const char *row_str(json_t *row, const char *k)
{
    const char *s = json_string_value(json_object_get(row, k));
    return s ? s : "";
}

void metrics_render_store(FILE *f, json_t *counts, int64_t now_ms)
{
    size_t i;
    json_t *row;
    head(f, "asyncd_tasks", "gauge",
         "Tasks in the store, by product and canonical state. Store-wide (scope=\"cluster\"): "
         "every node reports the same value; take max() over nodes, not sum().");
    json_array_foreach(counts, i, row)
    {
        fprintf(f, "asyncd_tasks{scope=\"cluster\",product=\"");
        put_value(f, row_str(row, "product"));
        fprintf(f, "\",state=\"%s\"} %lld\n", row_str(row, "state"),
                (long long)json_integer_value(json_object_get(row, "count")));
    }
    /* queued: initial, not yet claimed; per known product, 0 included */
    int64_t queued[M_PRODUCTS] = {0}, oldest[M_PRODUCTS] = {0};
    json_array_foreach(counts, i, row)
    {
        if (strcmp(row_str(row, "state"), "initial") != 0)
            continue;
        int p = product_ix(row_str(row, "product"));
        queued[p] += json_integer_value(json_object_get(row, "count"));
        int64_t o = json_integer_value(json_object_get(row, "oldest_created_ms"));
        if (o > 0 && (oldest[p] == 0 || o < oldest[p]))
            oldest[p] = o;
    }
    head(f, "asyncd_tasks_queued", "gauge",
         "Tasks created and not yet claimed (state initial), store-wide (scope=\"cluster\": "
         "max() over nodes, not sum()).");
    for (int p = 1; p < M_PRODUCTS; p++)
        fprintf(f, "asyncd_tasks_queued{scope=\"cluster\",product=\"%s\"} %lld\n", product_names[p],
                (long long)queued[p]);
    head(f, "asyncd_tasks_oldest_queued_age_seconds", "gauge",
         "Age of the oldest task not yet claimed, 0 when none waits; store-wide "
         "(scope=\"cluster\": max() over nodes, not sum()).");
    for (int p = 1; p < M_PRODUCTS; p++) {
        double age = oldest[p] && now_ms > oldest[p] ? (double)(now_ms - oldest[p]) / 1e3 : 0;
        fprintf(f,
                "asyncd_tasks_oldest_queued_age_seconds{scope=\"cluster\",product=\"%s\"} %.3f\n",
                product_names[p], age);
    }
}

static void names_clear(struct name_set *s)
{
    for (int i = 0; i < M_SLOTS; i++)
        atomic_store(&s->slots[i], 0);
    names_init(s);
}

void metrics_reset(void)
{
    pthread_once(&names_once, names_init_all);
    names_clear(&actions);
    names_clear(&types);
    memset(cloudapi_requests, 0, sizeof cloudapi_requests);
    memset(step_hist, 0, sizeof step_hist);
    memset(queue_hist, 0, sizeof queue_hist);
    memset(transitions, 0, sizeof transitions);
    memset(verbs, 0, sizeof verbs);
    memset(retries, 0, sizeof retries);
    memset(takeovers, 0, sizeof takeovers);
    memset(webhook, 0, sizeof webhook);
    atomic_store(&purged_tasks, 0);
    atomic_store(&purged_keys, 0);
    atomic_store(&running, 0);
}
