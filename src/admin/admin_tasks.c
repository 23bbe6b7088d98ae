/* Admin API: creating tasks, reading and listing them, operator verbs and reported transitions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin/admin_int.h"
#include "common/sha256.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/timefmt.h"
#include "common/xalloc.h"
#include "exec/exec.h"
#include "exec/mysql_conn.h"
#include "products/product.h"
#include "task/task_json.h"

#define MAX_STEPS       100
#define IDEM_KEY_MAX    255                  /* bytes of an Idempotency-Key */
#define IDEM_KEY_TTL_MS (24LL * 3600 * 1000) /* how long a key holds (DESIGN.md 7) */

static int query_int(struct admin_req *r, const char *key, int64_t dflt, int64_t lo, int64_t hi,
                     int64_t *out, struct err *e);

static int step_int(json_t *step, size_t i, const char *key, json_int_t dflt, json_int_t lo,
                    json_int_t hi, json_int_t *out, struct err *e)
{
    json_t *v = json_object_get(step, key);
    if (!v || json_is_null(v)) {
        *out = dflt;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return err_set(e, ERR_BAD_REQUEST, "steps[%zu].%s: expected an integer %lld..%lld", i, key,
                       (long long)lo, (long long)hi);
    *out = json_integer_value(v);
    return 0;
}

static int check_step_keys(json_t *step, size_t i, struct err *e)
{
    static const char *const known[] = {"name", "do", "undo", "retries", "timeout_s", NULL};
    const char *key;
    json_t *v;
    json_object_foreach(step, key, v)
    {
        const char *const *k = known;
        while (*k && strcmp(*k, key) != 0)
            k++;
        if (!*k)
            return err_set(e, ERR_BAD_REQUEST,
                           "steps[%zu]: unknown field \"%.64s\" (known: name, do, undo, retries, "
                           "timeout_s)",
                           i, key);
    }
    return 0;
}

/* A normalised copy of one step with defaults filled in. */
static int normalise_step(json_t *step, size_t i, json_t **out, struct err *e)
{
    if (!json_is_object(step))
        return err_set(e, ERR_BAD_REQUEST, "steps[%zu]: expected an object", i);
    int rc = check_step_keys(step, i, e);
    if (rc)
        return rc;
    json_t *name = json_object_get(step, "name"), *doo = json_object_get(step, "do"),
           *undo = json_object_get(step, "undo");
    if (!json_is_string(name) || !*json_string_value(name))
        return err_set(e, ERR_BAD_REQUEST, "steps[%zu].name: a non-empty string is required", i);
    if (!json_is_object(doo) || json_object_size(doo) == 0)
        return err_set(e, ERR_BAD_REQUEST,
                       "steps[%zu].do: an object such as {\"exec\": [\"/bin/true\"]} is required",
                       i);
    if (undo && !json_is_null(undo) && !json_is_object(undo))
        return err_set(e, ERR_BAD_REQUEST, "steps[%zu].undo: expected an object or null", i);
    struct err xe;
    if (exec_validate(doo, &xe) != 0)
        return err_set(e, ERR_BAD_REQUEST, "steps[%zu].do: %s", i, xe.msg);
    if (json_is_object(undo) && exec_validate(undo, &xe) != 0)
        return err_set(e, ERR_BAD_REQUEST, "steps[%zu].undo: %s", i, xe.msg);
    json_int_t retries, timeout;
    if ((rc = step_int(step, i, "retries", 0, 0, 100, &retries, e)) ||
        (rc = step_int(step, i, "timeout_s", 3600, 1, 7 * 86400, &timeout, e)))
        return rc;
    *out = json_pack("{s:O, s:O, s:O, s:I, s:I}", "name", name, "do", doo, "undo",
                     undo ? undo : json_null(), "retries", retries, "timeout_s", timeout);
    return 0;
}

static int normalise_steps(json_t *steps, json_t **out, struct err *e)
{
    if (!json_is_array(steps) || json_array_size(steps) == 0)
        return err_set(e, ERR_BAD_REQUEST, "steps: a non-empty array of steps is required");
    if (json_array_size(steps) > MAX_STEPS)
        return err_set(e, ERR_BAD_REQUEST, "steps: at most %d steps", MAX_STEPS);
    json_t *norm = json_array();
    size_t i;
    json_t *step;
    json_array_foreach(steps, i, step)
    {
        json_t *one = NULL;
        int rc = normalise_step(step, i, &one, e);
        if (rc) {
            json_decref(norm);
            return rc;
        }
        json_array_append_new(norm, one);
    }
    *out = norm;
    return 0;
}

/* The owner is an existing root account; the instance, when named, is theirs, of this product
 * and in this region. */
static int check_task_refs(struct admin *a, const struct task_new *t, struct err *e)
{
    struct account acc = {0};
    int rc = store_account_by_uin(a->cfg.store, t->uin, &acc, e);
    if (rc == ERR_NOT_FOUND)
        return err_set(e, ERR_BAD_REQUEST, "uin: no account with Uin %s", t->uin);
    if (rc)
        return rc;
    bool root = acc.is_root;
    account_clear(&acc);
    if (!root)
        return err_set(e, ERR_BAD_REQUEST, "uin: %s is a sub-account; name its root account",
                       t->uin);
    if (!t->instance_id)
        return 0;
    struct instance in;
    rc = store_instance_get(a->cfg.store, t->product, t->instance_id, &in, e);
    if (rc == ERR_NOT_FOUND)
        return err_set(e, ERR_BAD_REQUEST, "instance_id: no %s instance %s", t->product,
                       t->instance_id);
    if (rc)
        return rc;
    if (strcmp(in.uin, t->uin) != 0)
        return err_set(e, ERR_BAD_REQUEST, "instance_id: %s belongs to another account",
                       t->instance_id);
    if (strcmp(in.region, t->region) != 0)
        return err_set(e, ERR_BAD_REQUEST, "instance_id: %s is in region %s, not %s",
                       t->instance_id, in.region, t->region);
    return 0;
}

/* A task's fields from obj (the body, or an item of a batch's "tasks"). */
static int task_from_obj(json_t *obj, struct task_new *t, struct err *e)
{
    int rc;
    if ((rc = admin_obj_string(obj, "product", true, &t->product, e)) ||
        (rc = admin_obj_string(obj, "region", true, &t->region, e)) ||
        (rc = admin_obj_string(obj, "uin", true, &t->uin, e)) ||
        (rc = admin_obj_string(obj, "instance_id", false, &t->instance_id, e)) ||
        (rc = admin_obj_string(obj, "type", true, &t->type, e)) ||
        (rc = admin_obj_string(obj, "on_failure", false, &t->on_failure, e)))
        return rc;
    if (!product_by_name(t->product))
        return err_set(e, ERR_BAD_REQUEST, "product: expected cdb or mongodb, got %.32s",
                       t->product);
    if (strlen(t->region) >= STORE_ID_MAX || strlen(t->type) > 64)
        return err_set(e, ERR_BAD_REQUEST, "region or type: too long");
    if (t->instance_id && (!*t->instance_id || strlen(t->instance_id) >= STORE_ID_MAX))
        return err_set(e, ERR_BAD_REQUEST, "instance_id: 1..%d characters", STORE_ID_MAX - 1);
    t->on_failure = t->on_failure ? t->on_failure : "pause";
    if (strcmp(t->on_failure, "pause") != 0 && strcmp(t->on_failure, "undo") != 0 &&
        strcmp(t->on_failure, "fail") != 0)
        return err_set(e, ERR_BAD_REQUEST, "on_failure: expected pause, undo or fail");
    return 0;
}

/* The request's Idempotency-Key, if any, into k (hash: its body's). The key is the caller's
 * token's: two tokens never share one. The body is hashed in canonical form (keys sorted, no
 * spaces), so the same request sent with its fields in another order is the same request. */
static int idem_from_request(struct admin_req *r, struct task_idem *k, char hash[65], bool *has,
                             struct err *e)
{
    const char *key = http_header(r->http, "Idempotency-Key");
    *has = key != NULL;
    if (!key)
        return 0;
    size_t n = strlen(key);
    bool printable = n > 0 && n <= IDEM_KEY_MAX;
    for (size_t i = 0; printable && i < n; i++)
        printable = key[i] >= 0x20 && key[i] < 0x7f;
    if (!printable)
        return err_set(e, ERR_BAD_REQUEST,
                       "Idempotency-Key: expected 1..%d printable ASCII characters, got %zu bytes",
                       IDEM_KEY_MAX, n);
    char *canon = json_dumps(r->body, JSON_SORT_KEYS | JSON_COMPACT);
    sha256_hex(canon, strlen(canon), hash);
    free(canon);
    *k = (struct task_idem){
        .scope = r->who->id, .key = key, .body_hash = hash, .ttl_ms = IDEM_KEY_TTL_MS};
    return 0;
}

/* 201 with the new task's id; with an Idempotency-Key seen before with the same body, 200 with
 * the first task's id and nothing created. */
int admin_task_create(struct admin *a, struct admin_req *r, json_t **out, int *status,
                      struct err *e)
{
    struct task_new t = {.node = a->cfg.node};
    struct task_idem idem;
    char hash[65];
    bool has_key;
    int rc = idem_from_request(r, &idem, hash, &has_key, e);
    if (rc || (rc = task_from_obj(r->body, &t, e)) || (rc = check_task_refs(a, &t, e)) ||
        (rc = normalise_steps(json_object_get(r->body, "steps"), &t.steps, e)))
        return rc;
    t.idem = has_key ? &idem : NULL;
    char id[STORE_ID_MAX];
    rc = store_task_create(a->cfg.store, &t, id, e);
    json_decref(t.steps);
    if (rc)
        return rc;
    bool replayed = has_key && idem.replayed;
    if (!replayed && a->cfg.on_change)
        a->cfg.on_change(a->cfg.on_change_ctx);
    *out = json_pack("{s:s}", "AsyncRequestId", id);
    *status = replayed ? 200 : 201;
    return 0;
}

/* A batch's tasks at most: its creation holds SQLite's one writer for about 20 us a task, so
 * a full batch delays the other writes by some 20 ms, no more. */
#define BATCH_MAX 1000

/* One task of a batch, checked as POST /v1/tasks checks its body. */
struct batch_item {
    struct task_new t;
    struct task_idem idem;
    char key[IDEM_KEY_MAX + 8]; /* the batch's key, 0x1f, the item's index */
};

static int batch_item_from(struct admin *a, json_t *obj, size_t i, struct batch_item *it,
                           struct err *e)
{
    struct err ie = {0};
    int rc = json_is_object(obj) ? 0 : err_set(&ie, ERR_BAD_REQUEST, "expected an object");
    if (rc == 0 && (rc = task_from_obj(obj, &it->t, &ie)) == 0 &&
        (rc = check_task_refs(a, &it->t, &ie)) == 0)
        rc = normalise_steps(json_object_get(obj, "steps"), &it->t.steps, &ie);
    if (rc != 0)
        err_set(e, rc, "tasks[%zu]: %s", i, ie.msg);
    return rc;
}

/* Each item's key: the batch's key with its index after a byte no header can carry (0x1f), so
 * no single create's key is ever an item's, and the batch's body hash, so a retry of the same
 * batch replays every item and another batch under the key conflicts at its first. */
static void batch_item_key(struct batch_item *it, const struct task_idem *batch, size_t i)
{
    snprintf(it->key, sizeof it->key, "%s\x1f%zu", batch->key, i);
    it->idem = *batch;
    it->idem.key = it->key;
    it->t.idem = &it->idem;
}

static int batch_tasks(json_t *body, size_t *n, struct err *e)
{
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v) if (strcmp(key, "tasks") != 0) return err_set(
        e, ERR_BAD_REQUEST, "unknown field \"%.64s\" (a batch has only \"tasks\")", key);
    json_t *tasks = json_object_get(body, "tasks");
    *n = json_array_size(tasks);
    if (!json_is_array(tasks) || *n == 0 || *n > BATCH_MAX)
        return err_set(e, ERR_BAD_REQUEST, "tasks: an array of 1..%d tasks is required", BATCH_MAX);
    return 0;
}

static json_t *batch_answer(const struct batch_item *items, const char (*ids)[STORE_ID_MAX],
                            size_t n, bool *replayed)
{
    json_t *arr = json_array();
    *replayed = true;
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr, json_string(ids[i]));
        *replayed = *replayed && items[i].t.idem && items[i].idem.replayed;
    }
    return json_pack("{s:o}", "AsyncRequestIds", arr);
}

/* 201 with the new tasks' ids, in the order given, all created in one transaction; with an
 * Idempotency-Key seen before with the same body, 200 with the first request's ids. Any item
 * refused refuses the batch: nothing is created and the message names the item. */
int admin_task_create_batch(struct admin *a, struct admin_req *r, json_t **out, int *status,
                            struct err *e)
{
    struct task_idem idem;
    char hash[65];
    bool has_key;
    size_t n = 0;
    int rc = idem_from_request(r, &idem, hash, &has_key, e);
    if (rc || (rc = batch_tasks(r->body, &n, e)))
        return rc;
    struct batch_item *items = xcalloc(n, sizeof *items);
    json_t *tasks = json_object_get(r->body, "tasks");
    for (size_t i = 0; i < n && rc == 0; i++) {
        items[i].t.node = a->cfg.node;
        rc = batch_item_from(a, json_array_get(tasks, i), i, &items[i], e);
        if (rc == 0 && has_key)
            batch_item_key(&items[i], &idem, i);
    }
    struct task_new *ts = xcalloc(n, sizeof *ts);
    char(*ids)[STORE_ID_MAX] = xcalloc(n, sizeof *ids);
    for (size_t i = 0; i < n; i++)
        ts[i] = items[i].t;
    if (rc == 0)
        rc = store_task_create_batch(a->cfg.store, ts, n, ids, e);
    if (rc == ERR_CONFLICT && has_key) /* the store names the item's key: name the caller's */
        err_set(e, rc,
                "Idempotency-Key \"%s\" was used with another request body; send the first batch "
                "again, or use a new key for a new batch",
                idem.key);
    bool replayed = false;
    if (rc == 0) {
        *out = batch_answer(items, (const char(*)[STORE_ID_MAX])ids, n, &replayed);
        *status = replayed ? 200 : 201;
    }
    if (rc == 0 && !replayed && a->cfg.on_change)
        a->cfg.on_change(a->cfg.on_change_ctx);
    for (size_t i = 0; i < n; i++)
        json_decref(items[i].t.steps);
    free(ids);
    free(ts);
    free(items);
    return rc;
}

/* Passwords a mysql action sets (the argument after IDENTIFIED BY, ...) are kept with the task so
 * a crash can re-run the step, but the admin view shows "***" in their place. */
static void redact_action(json_t *action)
{
    json_t *mysql = json_object_get(action, "mysql");
    json_t *args = json_object_get(mysql, "args");
    size_t n = json_array_size(args);
    if (!n || n > 64)
        return;
    bool secret[64] = {false};
    json_t *stmts = json_object_get(mysql, "statements");
    const char *sql = json_string_value(json_object_get(mysql, "sql"));
    if (sql)
        mysql_conn_secret_args(sql, secret, n);
    size_t i;
    json_t *v;
    json_array_foreach(stmts, i, v) if (json_is_string(v))
        mysql_conn_secret_args(json_string_value(v), secret, n);
    for (i = 0; i < n; i++)
        if (secret[i])
            json_array_set_new(args, i, json_string("***"));
}

/* The admin view (docs/admin-api.md): the dialect's Status word, ISO times, passwords hidden
 * (task/task_json.h makes it). */
static json_t *task_view(const struct task *t)
{
    const struct product *p = product_by_name(t->product);
    struct task_json_opts o = {.view = true,
                               .status_word = p ? product_status_word(p, t->state) : NULL,
                               .redact = redact_action};
    return task_json(t, &o);
}

static int read_task(struct admin *a, const char *id, unsigned what, struct task **out,
                     struct err *e)
{
    int rc = store_task_get(a->cfg.store, id, what, out, e);
    if (rc == ERR_NOT_FOUND)
        return err_set(e, ERR_NOT_FOUND, "no task %s", id);
    return rc;
}

static int load_task(struct admin *a, const char *id, struct task **out, struct err *e)
{
    return read_task(a, id, TASK_READ_ALL, out, e);
}

/* "30s", "500ms", "2m" or plain seconds, at most 120 s. */
static int parse_wait(const char *v, int64_t *ms, struct err *e)
{
    char *end;
    double n = strtod(v, &end);
    double unit = strcmp(end, "ms") == 0             ? 1
                  : strcmp(end, "m") == 0            ? 60000
                  : (!*end || strcmp(end, "s") == 0) ? 1000
                                                     : -1;
    if (end == v || unit < 0 || n < 0 || n * unit > 120000)
        return err_set(e, ERR_BAD_REQUEST,
                       "wait: expected a duration up to 120s, such as 30s or 500ms");
    *ms = (int64_t)(n * unit);
    return 0;
}

static int64_t last_seq(const struct task *t)
{
    const struct task_event *last = task_last_event(t);
    return last ? last->seq : 0;
}

/* Long-poll: answers once the task's state differs from the one seen on arrival (or, with
 * since_seq=N, once it has an event after N), when it is final, or when the wait is over. The
 * store is polled, so changes made by any node are seen. */
static int wait_for_change(struct admin *a, const char *id, int64_t wait_ms, int64_t since,
                           struct task **task, struct err *e)
{
    enum task_state state0 = (*task)->state;
    int64_t deadline = time_now_ms() + wait_ms;
    for (;;) {
        bool changed = since >= 0 ? last_seq(*task) > since : (*task)->state != state0;
        if (changed || task_state_is_final((*task)->state) || time_now_ms() >= deadline)
            return 0;
        struct timespec nap = {0, 100 * 1000000L};
        nanosleep(&nap, NULL);
        task_free(*task);
        *task = NULL;
        int rc = load_task(a, id, task, e);
        if (rc)
            return rc;
    }
}

int admin_task_show(struct admin *a, struct admin_req *r, json_t **out, int *status, struct err *e)
{
    (void)status;
    int64_t wait_ms = 0, since = -1;
    const char *w = admin_query(r, "wait"), *s = admin_query(r, "since_seq");
    struct task *t = NULL;
    int rc = w ? parse_wait(w, &wait_ms, e) : 0;
    if (!rc && s)
        rc = query_int(r, "since_seq", -1, 0, INT64_MAX, &since, e);
    if (!rc)
        rc = load_task(a, r->arg[0], &t, e);
    if (!rc && wait_ms > 0)
        rc = wait_for_change(a, r->arg[0], wait_ms, since, &t, e);
    if (!rc)
        *out = task_view(t);
    task_free(t);
    return rc;
}

static int query_int(struct admin_req *r, const char *key, int64_t dflt, int64_t lo, int64_t hi,
                     int64_t *out, struct err *e)
{
    const char *v = admin_query(r, key);
    *out = dflt;
    if (!v)
        return 0;
    char *end;
    long long n = strtoll(v, &end, 10);
    if (!*v || *end || n < lo || n > hi)
        return err_set(e, ERR_BAD_REQUEST, "%s: expected an integer %lld..%lld", key, (long long)lo,
                       (long long)hi);
    *out = n;
    return 0;
}

/* status=: a canonical state, or a status word of either dialect (cdb RUNNING, FAILED covering
 * failed and undoed, UNDEFINED = waiting; mongodb running, failed covering killed and removed):
 * the states it names, as a mask. product= narrows the dialects asked. */
static int status_mask(const char *word, const char *product, unsigned *mask, struct err *e)
{
    enum task_state s;
    if (task_state_parse(word, &s) == 0) {
        *mask = 1u << s;
        return 0;
    }
    const struct product *dialects[] = {&product_cdb, &product_mongodb};
    *mask = 0;
    for (size_t i = 0; i < 2; i++) {
        if (product && strcmp(product, dialects[i]->name) != 0)
            continue;
        for (int st = 0; st < TASK_STATE_COUNT; st++)
            if (strcmp(product_status_word(dialects[i], (enum task_state)st), word) == 0)
                *mask |= 1u << st;
    }
    if (*mask)
        return 0;
    return err_set(e, ERR_BAD_REQUEST,
                   "status: expected a canonical state (initial running paused undoed failed "
                   "success killed removed waiting) or a status word of cdb (INITIAL RUNNING "
                   "SUCCESS FAILED KILLED REMOVED PAUSED UNDEFINED) or mongodb, got %.32s",
                   word);
}

/* since= / until=: an RFC 3339 time or Unix milliseconds; 0 when absent. */
static int query_time(struct admin_req *r, const char *key, int64_t *out, struct err *e)
{
    const char *v = admin_query(r, key);
    *out = 0;
    if (!v)
        return 0;
    char *end;
    long long n = strtoll(v, &end, 10);
    if (*v && !*end && n > 0) {
        *out = n;
        return 0;
    }
    if (time_parse_rfc3339(v, out) == 0 && *out > 0)
        return 0;
    return err_set(e, ERR_BAD_REQUEST,
                   "%s: expected an RFC 3339 time such as 2026-11-23T04:00:00Z or Unix "
                   "milliseconds, got %.40s",
                   key, v);
}

int admin_task_list(struct admin *a, struct admin_req *r, json_t **out, int *status, struct err *e)
{
    (void)status;
    const char *type = admin_query(r, "type");
    const char *types[2] = {type, NULL};
    struct task_filter f = {.product = admin_query(r, "product"),
                            .uin = admin_query(r, "uin"),
                            .instance_id = admin_query(r, "instance_id"),
                            .region = admin_query(r, "region"),
                            .state = -1,
                            .types = type ? types : NULL};
    if (f.product && !product_by_name(f.product))
        return err_set(e, ERR_BAD_REQUEST, "product: expected cdb or mongodb, got %.32s",
                       f.product);
    const char *st = admin_query(r, "status");
    int rc;
    if (st && (rc = status_mask(st, f.product, &f.state_mask, e)))
        return rc;
    if ((rc = query_int(r, "limit", 100, 1, 1000, &f.limit, e)) ||
        (rc = query_int(r, "offset", 0, 0, INT64_MAX, &f.offset, e)) ||
        (rc = query_time(r, "since", &f.created_from_ms, e)) ||
        (rc = query_time(r, "until", &f.created_to_ms, e)))
        return rc;
    struct task_list list = {0};
    int64_t total = 0;
    if ((rc = store_task_list(a->cfg.store, &f, &list, &total, e)))
        return rc;
    json_t *tasks = json_array();
    for (size_t i = 0; i < list.n; i++)
        json_array_append_new(tasks, task_view(list.items[i]));
    task_list_clear(&list);
    *out = json_pack("{s:o, s:I}", "tasks", tasks, "total", (json_int_t)total);
    return 0;
}

/* One info line per operator action, beside the engine's transition lines (engine/engine_log.h):
 * who did what to which task, and the state it is in now (a pause of a running task is only
 * requested: the engine's line says when it took effect). */
static void log_verb(const struct task *t, const char *verb, const struct token *who,
                     const char *node)
{
    const struct task_event *last = task_last_event(t);
    const char *msg = last && last->message ? last->message : "";
    char buf[512];
    log_info("task %s product=%s type=%s instance=%s verb=%s by=%s state=%s node=%s "
             "message=\"%s\"",
             task_text_or(t->id, "-"), task_text_or(t->product, "-"), task_text_or(t->type, "-"),
             task_text_or(t->instance_id, "-"), verb, who && who->id[0] ? who->id : "-",
             task_state_name(t->state), node ? node : "-", log_field(msg, buf, sizeof buf));
}

/* Answers the task as it is after an operator's change, and logs the change. *t: the task read
 * (the caller task_free()s it, also on failure). */
static int show_changed(struct admin *a, const char *id, const char *verb, const struct token *who,
                        const char *node, struct task **t, json_t **out, struct err *e)
{
    int rc = load_task(a, id, t, e);
    if (rc)
        return rc;
    log_verb(*t, verb, who, node);
    *out = task_view(*t);
    return 0;
}

/* Applies one move and answers the task as it is afterwards. */
static int move_and_show(struct admin *a, struct admin_req *r, struct task_move *m, json_t **out,
                         struct err *e)
{
    int rc = store_task_move(a->cfg.store, m, e);
    if (rc)
        return rc;
    struct task *t = NULL;
    rc = show_changed(a, m->id, "transition", r->who, m->node, &t, out, e);
    /* An external driver's move is a transition like the engine's, when it moves at all. */
    if (rc == 0 && m->to != m->expect)
        metrics_transition(t->product, m->to);
    task_free(t);
    return rc;
}

int admin_task_verb(struct admin *a, struct admin_req *r, json_t **out, int *status, struct err *e)
{
    (void)status;
    enum task_verb verb;
    if (task_verb_parse(r->arg[1], &verb) != 0)
        return err_set(e, ERR_NOT_FOUND,
                       "no such verb %.32s: use pause, resume, skip, undo, kill, remove or "
                       "transition",
                       r->arg[1]);
    const char *msg;
    int rc = admin_body_string(r, "message", false, &msg, e);
    if (rc)
        return rc;
    /* A simulated task has no steps to resume or undo: the simulation moves it (sim/sim.h). */
    bool simulated = false;
    rc = sim_task_verb(a->cfg.sim, a->cfg.store, r->arg[0], verb, msg, &simulated, e);
    if (!simulated)
        rc = store_task_control(a->cfg.store, r->arg[0], verb, a->cfg.node, msg, e);
    if (rc == ERR_NOT_FOUND)
        return err_set(e, ERR_NOT_FOUND, "no task %s", r->arg[0]);
    if (rc)
        return rc;
    if (a->cfg.on_change)
        a->cfg.on_change(a->cfg.on_change_ctx);
    struct task *t = NULL;
    rc = show_changed(a, r->arg[0], task_verb_name(verb), r->who, a->cfg.node, &t, out, e);
    if (rc == 0)
        metrics_operator_verb(t->product, verb);
    task_free(t);
    return rc;
}

static int transition_from_body(struct admin_req *r, struct task_move *m, struct err *e)
{
    const char *to;
    int rc;
    if ((rc = admin_body_string(r, "to", true, &to, e)) ||
        (rc = admin_body_string(r, "message", false, &m->message, e)) ||
        (rc = admin_body_string(r, "info", false, &m->info, e)))
        return rc;
    if (task_state_parse(to, &m->to) != 0)
        return err_set(e, ERR_BAD_REQUEST,
                       "to: expected a canonical state (initial running paused undoed failed "
                       "success killed removed)");
    json_t *done = json_object_get(r->body, "step_done");
    if (done && !json_is_boolean(done))
        return err_set(e, ERR_BAD_REQUEST, "step_done: expected true or false");
    if (json_is_true(done)) {
        m->step_advance = 1;
        m->step_mark = "done";
    }
    return 0;
}

int admin_task_transition(struct admin *a, struct admin_req *r, json_t **out, int *status,
                          struct err *e)
{
    (void)status;
    struct task_move m = {.id = r->arg[0], .node = a->cfg.node};
    struct task *task = NULL;
    int rc = transition_from_body(r, &m, e);
    if (rc || (rc = read_task(a, r->arg[0], 0, &task, e)))
        return rc;
    m.expect = task->state; /* the row alone: no steps or events needed */
    task_free(task);
    if (!task_state_can_move(m.expect, m.to))
        return err_set(e, ERR_CONFLICT, "task %s is %s; %s -> %s is not a move tasks can make",
                       r->arg[0], task_state_name(m.expect), task_state_name(m.expect),
                       task_state_name(m.to));
    return move_and_show(a, r, &m, out, e);
}
