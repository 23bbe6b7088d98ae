/* Webhooks, once for both dialects: subscriptions (secret sealed at rest) and the durable outbox
 * of their deliveries, claimed under a lease by each node's dispatcher (daemon/webhooks.c). The
 * outbox rows are enqueued in the transaction of the event they tell of, by the event append
 * (store_events.c). */
#include <stdlib.h>
#include <string.h>

#include "common/secretbox.h"
#include "common/xalloc.h"
#include "store/store.h"
#include "store/store_db.h"

struct create_ctx {
    const struct webhook *w;
    const char *sealed;
};

static int create_fn(struct db_tx *t, void *ctx, struct err *e)
{
    const struct create_ctx *cx = ctx;
    const struct webhook *w = cx->w;
    int rc =
        db_exec(t, DB_WEBHOOK_INSERT,
                DB_ARGS(DB_TEXT(w->id), DB_TEXT(w->url), DB_TEXT(cx->sealed), DB_TEXT(w->events),
                        DB_TEXT(w->product), DB_TEXT(w->uin), DB_INT(w->created_ms)),
                "inserting a webhook", e);
    if (rc == ERR_ALREADY_EXISTS)
        rc = err_set(e, ERR_ALREADY_EXISTS, "webhook %s already exists", w->id);
    return rc;
}

int store_db_webhook_create(struct store *s, const struct webhook *w, struct err *e)
{
    char *sealed;
    int rc = secretbox_seal(w->secret, &sealed, e);
    if (rc != 0)
        return rc;
    struct create_ctx cx = {w, sealed};
    rc = db_run(s, DB_WRITE_ONE, create_fn, &cx, e);
    free(sealed);
    return rc;
}

static json_t *webhook_row_json(struct db_tx *t)
{
    const char *product = db_text(t, 3), *uin = db_text(t, 4);
    json_t *o = json_object();
    json_object_set_new(o, "id", db_json_text(t, 0));
    json_object_set_new(o, "url", db_json_text(t, 1));
    json_object_set_new(o, "events", json_pack("[o]", db_json_text(t, 2)));
    json_object_set_new(o, "product", product && *product ? json_string(product) : json_null());
    json_object_set_new(o, "uin", uin && *uin ? json_string(uin) : json_null());
    json_object_set_new(o, "created_ms", db_json_int(t, 5));
    return o;
}

/* Runs st with args, appending one object per row made by row_fn to arr. */
static int read_rows(struct db_tx *t, enum db_stmt st, const struct db_arg *args, size_t n,
                     json_t *(*row_fn)(struct db_tx *), json_t *arr, struct err *e)
{
    const char *what = "reading webhooks";
    int rc = db_exec(t, st, args, n, what, e);
    while (rc == 0 && (rc = db_next(t, what, e)) == 1) {
        json_array_append_new(arr, row_fn(t));
        rc = 0;
    }
    return rc;
}

struct read_ctx {
    const char *id, *task;
    int64_t limit;
    json_t *out;
};

static int list_fn(struct db_tx *t, void *ctx, struct err *e)
{
    struct read_ctx *cx = ctx;
    json_decref(cx->out);
    cx->out = json_array();
    return read_rows(t, DB_WEBHOOK_LIST, DB_NO_ARGS, webhook_row_json, cx->out, e);
}

/* Runs fn as a read of the given kind, starting each run from no result; *out is the result on
 * success, NULL otherwise. */
static int read_json(struct store *s, enum db_kind kind,
                     int (*fn)(struct db_tx *, void *, struct err *), struct read_ctx *cx,
                     json_t **out, struct err *e)
{
    int rc = db_run(s, kind, fn, cx, e);
    if (rc != 0) {
        json_decref(cx->out);
        cx->out = NULL;
    }
    *out = cx->out;
    return rc;
}

int store_db_webhook_list(struct store *s, json_t **out, struct err *e)
{
    struct read_ctx cx = {0};
    return read_json(s, DB_READ, list_fn, &cx, out, e);
}

static json_t *count_row_json(struct db_tx *t)
{
    return json_pack("{s:o, s:I}", "state", db_json_text(t, 0), "n", (json_int_t)db_int(t, 1));
}

/* The subscription with {"pending": n, "delivering": n, "delivered": n, "failed": n}. */
static int get_on(struct db_tx *t, const char *id, json_t **out, struct err *e)
{
    json_t *arr = json_array(), *counts = json_array();
    int rc = read_rows(t, DB_WEBHOOK_GET, DB_ARGS(DB_TEXT(id)), webhook_row_json, arr, e);
    if (rc == 0 && json_array_size(arr) == 0)
        rc = err_set(e, ERR_NOT_FOUND, "no webhook %s", id);
    if (rc == 0)
        rc = read_rows(t, DB_WEBHOOK_COUNTS, DB_ARGS(DB_TEXT(id)), count_row_json, counts, e);
    if (rc == 0) {
        json_t *by_state = json_pack("{s:i, s:i, s:i, s:i}", "pending", 0, "delivering", 0,
                                     "delivered", 0, "failed", 0);
        size_t i;
        json_t *r;
        json_array_foreach(counts, i, r) json_object_set(
            by_state, json_string_value(json_object_get(r, "state")), json_object_get(r, "n"));
        *out = json_incref(json_array_get(arr, 0));
        json_object_set_new(*out, "deliveries", by_state);
    }
    json_decref(arr);
    json_decref(counts);
    return rc;
}

static int get_fn(struct db_tx *t, void *ctx, struct err *e)
{
    struct read_ctx *cx = ctx;
    json_decref(cx->out);
    cx->out = NULL;
    return get_on(t, cx->id, &cx->out, e);
}

int store_db_webhook_get(struct store *s, const char *id, json_t **out, struct err *e)
{
    struct read_ctx cx = {.id = id};
    return read_json(s, DB_SNAPSHOT, get_fn, &cx, out, e);
}

static int delete_fn(struct db_tx *t, void *ctx, struct err *e)
{
    int rc = db_exec(t, DB_WEBHOOK_DELETE, DB_ARGS(DB_TEXT(ctx)), "deleting a webhook", e);
    if (rc == 0 && db_changes(t) == 0)
        rc = err_set(e, ERR_NOT_FOUND, "no webhook %s", (const char *)ctx);
    return rc;
}

int store_db_webhook_delete(struct store *s, const char *id, struct err *e)
{
    return db_run(s, DB_WRITE_ONE, delete_fn, (void *)id, e);
}

static json_t *delivery_row_json(struct db_tx *t)
{
    static const char *const text_keys[] = {
        NULL, "event", "task", "task_state", "info", NULL, "state", NULL, NULL, NULL, "last_error"};
    static const char *const int_keys[] = {
        "id",       NULL,      NULL,          NULL, NULL,         "at_ms",       NULL,
        "attempts", "next_ms", "last_status", NULL, "created_ms", "delivered_ms"};
    json_t *o = json_object();
    for (int i = 0; i < 13; i++) {
        if (i < 11 && text_keys[i])
            json_object_set_new(o, text_keys[i], db_json_text(t, i));
        else if (int_keys[i])
            json_object_set_new(o, int_keys[i], db_json_int(t, i));
    }
    const char *log = db_text(t, 13);
    json_t *j = log ? json_loads(log, 0, NULL) : NULL;
    if (j && !json_is_array(j)) {
        json_decref(j);
        j = NULL;
    }
    json_object_set_new(o, "attempt_log", j ? j : json_array());
    return o;
}

static int deliveries_fn(struct db_tx *t, void *ctx, struct err *e)
{
    struct read_ctx *cx = ctx;
    json_decref(cx->out);
    cx->out = NULL;
    json_t *hook = NULL;
    int rc = get_on(t, cx->id, &hook, e);
    json_decref(hook);
    if (rc != 0)
        return rc;
    cx->out = json_array();
    return read_rows(
        t, DB_WEBHOOK_DELIVERIES,
        DB_ARGS(DB_TEXT(cx->id), DB_TEXT(cx->task), DB_INT(cx->limit > 0 ? cx->limit : 100)),
        delivery_row_json, cx->out, e);
}

int store_db_webhook_deliveries(struct store *s, const char *id, const char *task, int64_t limit,
                                json_t **out, struct err *e)
{
    struct read_ctx cx = {.id = id, .task = task, .limit = limit};
    return read_json(s, DB_SNAPSHOT, deliveries_fn, &cx, out, e);
}

/* ---- the dispatcher's side ---- */

struct claim_ctx {
    const struct delivery_claim_req *r;
    struct webhook_delivery *ds; /* r->max of them */
    size_t n;
    bool due;
};

/* A claimed delivery from a row of DB_DELIVERY_CLAIM or DB_DELIVERY_READ. */
static int delivery_from_row(struct db_tx *t, struct webhook_delivery *d, struct err *e)
{
    memset(d, 0, sizeof *d);
    d->id = db_int(t, 0);
    db_copy(t, 1, d->webhook_id, sizeof d->webhook_id);
    db_copy(t, 2, d->url, sizeof d->url);
    int rc = secretbox_open_into(db_text(t, 3), d->secret, sizeof d->secret, e);
    db_copy(t, 4, d->event, sizeof d->event);
    db_copy(t, 5, d->task_id, sizeof d->task_id);
    db_copy(t, 6, d->product, sizeof d->product);
    db_copy(t, 7, d->uin, sizeof d->uin);
    enum task_state ts = TASK_INITIAL;
    const char *word = db_text(t, 8);
    if (word)
        task_state_parse(word, &ts);
    d->state = ts;
    db_copy(t, 9, d->info, sizeof d->info);
    d->at_ms = db_int(t, 10);
    d->attempt = (int)db_int(t, 11);
    return rc;
}

/* Reads the rows of the open statement into cx->ds. */
static int read_claimed(struct db_tx *t, struct claim_ctx *cx, struct err *e)
{
    int rc;
    while ((rc = db_next(t, "claiming webhook deliveries", e)) == 1) {
        if (cx->n >= (size_t)cx->r->max)
            continue;
        rc = delivery_from_row(t, &cx->ds[cx->n++], e);
        if (rc != 0)
            return rc;
    }
    return rc;
}

/* PostgreSQL: under the cluster-wide claims' lock, pick and take in one statement. */
static int claim_in_one(struct db_tx *t, struct claim_ctx *cx, struct err *e)
{
    const struct delivery_claim_req *r = cx->r;
    int rc = db_exec(t, DB_DELIVERY_LOCK, DB_NO_ARGS, "locking webhook claims", e);
    if (rc == 0)
        rc = db_exec(t, DB_DELIVERY_CLAIM,
                     DB_ARGS(DB_INT(r->now_ms), DB_INT(r->per_webhook), DB_INT(r->max),
                             DB_TEXT(r->node), DB_INT(r->now_ms + r->lease_ms)),
                     "claiming webhook deliveries", e);
    return rc == 0 ? read_claimed(t, cx, e) : rc;
}

/* SQLite (the one writer serializes claims): pick the ids, then take and read each. */
static int claim_by_steps(struct db_tx *t, struct claim_ctx *cx, struct err *e)
{
    const struct delivery_claim_req *r = cx->r;
    const char *what = "picking webhook deliveries";
    int64_t *ids = xcalloc((size_t)r->max, sizeof *ids);
    size_t n = 0;
    int rc = db_exec(t, DB_DELIVERY_PICK,
                     DB_ARGS(DB_INT(r->now_ms), DB_INT(r->per_webhook), DB_INT(r->max)), what, e);
    while (rc == 0 && (rc = db_next(t, what, e)) == 1) {
        if (n < (size_t)r->max)
            ids[n++] = db_int(t, 0);
        rc = 0;
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = db_exec(t, DB_DELIVERY_TAKE,
                     DB_ARGS(DB_INT(ids[i]), DB_TEXT(r->node), DB_INT(r->now_ms + r->lease_ms)),
                     "taking a webhook delivery", e);
        if (rc == 0)
            rc = db_exec(t, DB_DELIVERY_READ, DB_ARGS(DB_INT(ids[i])), "reading a webhook delivery",
                         e);
        if (rc == 0)
            rc = read_claimed(t, cx, e);
    }
    free(ids);
    return rc;
}

/* Due deliveries in id order, each behind no unfinished earlier one of its subscription and
 * task, and no more per subscription than per_webhook less its live leases. Where the dialect
 * writes through CTEs (DB_CAP_WRITE_CTE) that is one round trip; otherwise several statements,
 * which the one writer keeps as serialized as the lock does. */
static int claim_fn(struct db_tx *t, void *ctx, struct err *e)
{
    struct claim_ctx *cx = ctx;
    cx->n = 0; /* PostgreSQL may run this again */
    return db_has(t, DB_CAP_WRITE_CTE) ? claim_in_one(t, cx, e) : claim_by_steps(t, cx, e);
}

/* Whether anything is due, without a write transaction (or the claims' lock): every node polls
 * several times a second, and an idle outbox must cost no more than one index probe. */
static int due_fn(struct db_tx *t, void *ctx, struct err *e)
{
    struct claim_ctx *cx = ctx;
    const char *what = "looking for due webhook deliveries";
    int rc = db_exec(t, DB_DELIVERY_DUE, DB_ARGS(DB_INT(cx->r->now_ms)), what, e);
    if (rc == 0)
        rc = db_next(t, what, e);
    cx->due = rc == 1;
    return rc == 1 ? 0 : rc;
}

static int by_id(const void *a, const void *b)
{
    int64_t x = ((const struct webhook_delivery *)a)->id,
            y = ((const struct webhook_delivery *)b)->id;
    return x < y ? -1 : x > y;
}

int store_db_delivery_claim(struct store *s, const struct delivery_claim_req *r,
                            struct webhook_delivery **out, size_t *n, struct err *e)
{
    *out = NULL;
    *n = 0;
    if (r->max <= 0)
        return 0;
    struct claim_ctx cx = {.r = r};
    int rc = db_run(s, DB_READ, due_fn, &cx, e);
    if (rc != 0 || !cx.due)
        return rc;
    cx.ds = xcalloc((size_t)r->max, sizeof *cx.ds);
    rc = db_run(s, DB_WRITE, claim_fn, &cx, e);
    if (rc != 0 || cx.n == 0) {
        free(cx.ds);
        return rc;
    }
    qsort(cx.ds, cx.n, sizeof *cx.ds, by_id); /* RETURNING keeps no order */
    *out = cx.ds;
    *n = cx.n;
    return 0;
}

static int finish_fn(struct db_tx *t, void *ctx, struct err *e)
{
    const struct delivery_result *d = ctx;
    int rc = db_exec(
        t, DB_DELIVERY_FINISH,
        DB_ARGS(DB_INT(d->id), DB_TEXT(d->node), DB_INT(d->attempt), DB_INT(d->delivered ? 1 : 0),
                DB_INT(d->give_up ? 1 : 0), DB_INT(d->next_ms), DB_INT(d->http_status),
                DB_TEXT(d->error ? d->error : ""), DB_INT(d->now_ms), DB_INT(d->took_ms)),
        "recording a webhook attempt", e);
    if (rc == 0 && db_changes(t) == 0)
        rc = err_set(e, ERR_CONFLICT,
                     "webhook delivery %lld is no longer leased to %s at attempt %d (taken over "
                     "or its subscription deleted)",
                     (long long)d->id, d->node, d->attempt);
    return rc;
}

int store_db_delivery_finish(struct store *s, const struct delivery_result *r, struct err *e)
{
    return db_run(s, DB_WRITE_ONE, finish_fn, (void *)r, e);
}

static int release_fn(struct db_tx *t, void *ctx, struct err *e)
{
    return db_exec(t, DB_DELIVERY_RELEASE, DB_ARGS(DB_TEXT(ctx)), "releasing webhook deliveries",
                   e);
}

int store_db_delivery_release_node(struct store *s, const char *node, struct err *e)
{
    return db_run(s, DB_WRITE_ONE, release_fn, (void *)node, e);
}
