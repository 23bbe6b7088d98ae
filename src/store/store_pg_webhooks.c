/* The PostgreSQL store's webhooks: subscriptions (secret sealed at rest) and the durable outbox
 * of their deliveries, enqueued in the transaction of the event they tell of and claimed under a
 * lease by each node's dispatcher (daemon/webhooks.c). Claims from all nodes take one
 * transaction-scoped advisory lock, so the per-subscription bound on deliveries in flight holds
 * across the cluster; a claim is a few rows a second at most, so the lock costs nothing that
 * matters. The statements other than the enqueue are sent unprepared (pg_exec_sql): they run at
 * operator or dispatcher rates. */
#include <stdlib.h>
#include <string.h>

#include "common/secretbox.h"
#include "common/xalloc.h"
#include "store/store_pg_int.h"

#define WEBHOOK_COLS "id, url, events, COALESCE(product, ''), COALESCE(uin, ''), created_ms"
#define DELIVERY_COLS                                                                              \
    "id, event, task_id, to_state, info, at_ms, status, attempts, next_ms, last_status,"           \
    " last_error, created_ms, delivered_ms, attempt_log"
/* Any constant both nodes agree on: the key of the claims' advisory lock. */
#define CLAIM_LOCK_KEY "7243917201"

int pg_webhook_enqueue(struct pg_conn *c, const char *id, int64_t now, enum task_state to,
                       struct err *e)
{
    struct pg_params p = {0};
    pp_text(&p, id);
    pp_int(&p, now);
    pp_bool(&p, task_state_is_final(to));
    pp_text(&p, task_state_name(to));
    return pg_exec(c, PG_WEBHOOK_ENQUEUE, &p, NULL, "enqueuing webhook deliveries", e);
}

struct insert_ctx {
    const struct webhook *w;
    const char *sealed;
};

static int insert_fn(struct pg_conn *c, void *ctx, struct err *e)
{
    const struct insert_ctx *cx = ctx;
    struct pg_params p = {0};
    pp_text(&p, cx->w->id);
    pp_text(&p, cx->w->url);
    pp_text(&p, cx->sealed);
    pp_text(&p, cx->w->events);
    pp_text(&p, cx->w->product);
    pp_text(&p, cx->w->uin);
    pp_int(&p, cx->w->created_ms);
    int rc = pg_exec_sql(c,
                         "INSERT INTO webhooks(id, url, secret, events, product, uin, created_ms)"
                         " VALUES($1, $2, $3, $4, NULLIF($5, ''), NULLIF($6, ''), $7::bigint)",
                         &p, NULL, "inserting a webhook", e);
    if (rc == ERR_ALREADY_EXISTS)
        rc = err_set(e, ERR_ALREADY_EXISTS, "webhook %s already exists", cx->w->id);
    return rc;
}

int store_pg_webhook_create(struct store *s, const struct webhook *w, struct err *e)
{
    char *sealed;
    int rc = secretbox_seal(w->secret, &sealed, e);
    if (rc != 0)
        return rc;
    struct insert_ctx cx = {w, sealed};
    rc = pg_run(s, PG_TX_NONE, insert_fn, &cx, e);
    free(sealed);
    return rc;
}

static json_t *webhook_row_json(const PGresult *r, int row)
{
    const char *product = pg_str(r, row, 3), *uin = pg_str(r, row, 4);
    json_t *o = json_object();
    json_object_set_new(o, "id", pg_json_text(r, row, 0));
    json_object_set_new(o, "url", pg_json_text(r, row, 1));
    json_object_set_new(o, "events", json_pack("[o]", pg_json_text(r, row, 2)));
    json_object_set_new(o, "product", product && *product ? json_string(product) : json_null());
    json_object_set_new(o, "uin", uin && *uin ? json_string(uin) : json_null());
    json_object_set_new(o, "created_ms", pg_json_int(r, row, 5));
    return o;
}

static int list_fn(struct pg_conn *c, void *ctx, struct err *e)
{
    PGresult *r;
    int rc = pg_exec_sql(c, "SELECT " WEBHOOK_COLS " FROM webhooks ORDER BY created_ms, id", NULL,
                         &r, "listing webhooks", e);
    if (rc != 0)
        return rc;
    json_t *arr = json_array();
    for (int row = 0; row < PQntuples(r); row++)
        json_array_append_new(arr, webhook_row_json(r, row));
    PQclear(r);
    *(json_t **)ctx = arr;
    return 0;
}

int store_pg_webhook_list(struct store *s, json_t **out, struct err *e)
{
    *out = NULL;
    return pg_run(s, PG_TX_NONE, list_fn, out, e);
}

struct get_ctx {
    const char *id, *task;
    int64_t limit;
    json_t *out;
};

static int get_on(struct pg_conn *c, const char *id, json_t **out, struct err *e)
{
    struct pg_params p = {0};
    pp_text(&p, id);
    PGresult *r;
    int rc = pg_exec_sql(c, "SELECT " WEBHOOK_COLS " FROM webhooks WHERE id = $1", &p, &r,
                         "reading a webhook", e);
    if (rc != 0)
        return rc;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return err_set(e, ERR_NOT_FOUND, "no webhook %s", id);
    }
    json_t *o = webhook_row_json(r, 0);
    PQclear(r);
    rc = pg_exec_sql(c,
                     "SELECT status, count(*) FROM webhook_deliveries WHERE webhook_id = $1"
                     " GROUP BY status",
                     &p, &r, "counting webhook deliveries", e);
    if (rc != 0) {
        json_decref(o);
        return rc;
    }
    json_t *counts = json_pack("{s:i, s:i, s:i, s:i}", "pending", 0, "delivering", 0, "delivered",
                               0, "failed", 0);
    for (int row = 0; row < PQntuples(r); row++)
        json_object_set_new(counts, pg_str(r, row, 0), json_integer(pg_int(r, row, 1)));
    PQclear(r);
    json_object_set_new(o, "deliveries", counts);
    *out = o;
    return 0;
}

static int get_fn(struct pg_conn *c, void *ctx, struct err *e)
{
    struct get_ctx *cx = ctx;
    json_decref(cx->out);
    cx->out = NULL;
    return get_on(c, cx->id, &cx->out, e);
}

int store_pg_webhook_get(struct store *s, const char *id, json_t **out, struct err *e)
{
    struct get_ctx cx = {.id = id};
    int rc = pg_run(s, PG_TX_SNAPSHOT, get_fn, &cx, e);
    *out = rc == 0 ? cx.out : NULL;
    if (rc != 0)
        json_decref(cx.out);
    return rc;
}

static int delete_fn(struct pg_conn *c, void *ctx, struct err *e)
{
    struct pg_params p = {0};
    pp_text(&p, ctx);
    PGresult *r;
    int rc = pg_exec_sql(c, "DELETE FROM webhooks WHERE id = $1", &p, &r, "deleting a webhook", e);
    if (rc == 0 && strcmp(PQcmdTuples(r), "0") == 0)
        rc = err_set(e, ERR_NOT_FOUND, "no webhook %s", (const char *)ctx);
    PQclear(r);
    return rc;
}

int store_pg_webhook_delete(struct store *s, const char *id, struct err *e)
{
    return pg_run(s, PG_TX_NONE, delete_fn, (void *)id, e);
}

static json_t *delivery_row_json(const PGresult *r, int row)
{
    static const char *const text_keys[] = {
        NULL, "event", "task", "task_state", "info", NULL, "state", NULL, NULL, NULL, "last_error"};
    static const char *const int_keys[] = {
        "id",       NULL,      NULL,          NULL, NULL,         "at_ms",       NULL,
        "attempts", "next_ms", "last_status", NULL, "created_ms", "delivered_ms"};
    json_t *o = json_object();
    for (int i = 0; i < 13; i++) {
        if (i < 11 && text_keys[i])
            json_object_set_new(o, text_keys[i], pg_json_text(r, row, i));
        else if (int_keys[i])
            json_object_set_new(o, int_keys[i], pg_json_int(r, row, i));
    }
    json_t *log = pg_json_value(r, row, 13);
    json_object_set_new(o, "attempt_log", json_is_array(log) ? log : json_array());
    if (!json_is_array(log))
        json_decref(log);
    return o;
}

static int deliveries_fn(struct pg_conn *c, void *ctx, struct err *e)
{
    struct get_ctx *cx = ctx;
    json_t *hook = NULL;
    int rc = get_on(c, cx->id, &hook, e);
    json_decref(hook);
    if (rc != 0)
        return rc;
    struct pg_params p = {0};
    pp_text(&p, cx->id);
    pp_text(&p, cx->task);
    pp_int(&p, cx->limit > 0 ? cx->limit : 100);
    PGresult *r;
    rc = pg_exec_sql(c,
                     "SELECT " DELIVERY_COLS " FROM webhook_deliveries WHERE webhook_id = $1"
                     " AND ($2::text IS NULL OR task_id = $2::text) ORDER BY id DESC"
                     " LIMIT $3::bigint",
                     &p, &r, "listing webhook deliveries", e);
    if (rc != 0)
        return rc;
    json_decref(cx->out);
    cx->out = json_array();
    for (int row = 0; row < PQntuples(r); row++)
        json_array_append_new(cx->out, delivery_row_json(r, row));
    PQclear(r);
    return 0;
}

int store_pg_webhook_deliveries(struct store *s, const char *id, const char *task, int64_t limit,
                                json_t **out, struct err *e)
{
    struct get_ctx cx = {.id = id, .task = task, .limit = limit};
    int rc = pg_run(s, PG_TX_SNAPSHOT, deliveries_fn, &cx, e);
    *out = rc == 0 ? cx.out : NULL;
    if (rc != 0)
        json_decref(cx.out);
    return rc;
}

/* ---- the dispatcher's side ---- */

struct claim_ctx {
    const struct delivery_claim_req *r;
    struct webhook_delivery *ds; /* r->max of them */
    size_t n;
};

static void delivery_from_row(const PGresult *r, int row, struct webhook_delivery *d, struct err *e,
                              int *rc)
{
    memset(d, 0, sizeof *d);
    d->id = pg_int(r, row, 0);
    pg_copy(d->webhook_id, sizeof d->webhook_id, pg_str(r, row, 1));
    pg_copy(d->url, sizeof d->url, pg_str(r, row, 2));
    if (*rc == 0)
        *rc = secretbox_open_into(pg_str(r, row, 3), d->secret, sizeof d->secret, e);
    pg_copy(d->event, sizeof d->event, pg_str(r, row, 4));
    pg_copy(d->task_id, sizeof d->task_id, pg_str(r, row, 5));
    pg_copy(d->product, sizeof d->product, pg_str(r, row, 6));
    pg_copy(d->uin, sizeof d->uin, pg_str(r, row, 7));
    enum task_state ts = TASK_INITIAL;
    task_state_parse(pg_str(r, row, 8), &ts);
    d->state = ts;
    pg_copy(d->info, sizeof d->info, pg_str(r, row, 9));
    d->at_ms = pg_int(r, row, 10);
    d->attempt = (int)pg_int(r, row, 11);
}

/* Due deliveries in id order, each behind no unfinished earlier one of its subscription and
 * task, and no more per subscription than per_webhook less its live leases: taken in one
 * statement, under the claims' lock. */
static int claim_fn(struct pg_conn *c, void *ctx, struct err *e)
{
    struct claim_ctx *cx = ctx;
    const struct delivery_claim_req *rq = cx->r;
    cx->n = 0; /* pg_run may run this again */
    int rc = pg_exec_sql(c, "SELECT pg_advisory_xact_lock(" CLAIM_LOCK_KEY ")", NULL, NULL,
                         "locking webhook claims", e);
    if (rc != 0)
        return rc;
    struct pg_params p = {0};
    pp_int(&p, rq->now_ms);
    pp_int(&p, rq->per_webhook);
    pp_int(&p, rq->max);
    pp_text(&p, rq->node);
    pp_int(&p, rq->now_ms + rq->lease_ms);
    PGresult *r;
    rc = pg_exec_sql(
        c,
        "WITH inflight AS (SELECT webhook_id, count(*) AS n FROM webhook_deliveries"
        " WHERE status = 'delivering' AND lease_until_ms > $1::bigint GROUP BY webhook_id),"
        " cand AS (SELECT d.id, d.webhook_id, row_number() OVER (PARTITION BY d.webhook_id"
        " ORDER BY d.id) AS rn FROM webhook_deliveries d WHERE d.status IN ('pending',"
        " 'delivering') AND ((d.status = 'pending' AND d.next_ms <= $1::bigint) OR (d.status ="
        " 'delivering' AND d.lease_until_ms <= $1::bigint)) AND NOT EXISTS (SELECT 1 FROM"
        " webhook_deliveries o WHERE o.webhook_id = d.webhook_id AND o.task_id = d.task_id"
        " AND o.id < d.id AND o.status IN ('pending', 'delivering'))),"
        " picked AS (SELECT cand.id FROM cand LEFT JOIN inflight ON inflight.webhook_id ="
        " cand.webhook_id WHERE cand.rn + COALESCE(inflight.n, 0) <= $2::bigint"
        " ORDER BY cand.id LIMIT $3::bigint)"
        " UPDATE webhook_deliveries d SET status = 'delivering', lease_node = $4::text,"
        " lease_until_ms = $5::bigint, attempts = d.attempts + 1 FROM picked, webhooks w"
        " WHERE d.id = picked.id AND w.id = d.webhook_id RETURNING d.id, d.webhook_id, w.url,"
        " w.secret, d.event, d.task_id, d.product, d.uin, d.to_state, COALESCE(d.info, ''),"
        " d.at_ms, d.attempts",
        &p, &r, "claiming webhook deliveries", e);
    if (rc != 0)
        return rc;
    for (int row = 0; row < PQntuples(r) && cx->n < (size_t)rq->max; row++)
        delivery_from_row(r, row, &cx->ds[cx->n++], e, &rc);
    PQclear(r);
    return rc;
}

static int by_id(const void *a, const void *b)
{
    int64_t x = ((const struct webhook_delivery *)a)->id,
            y = ((const struct webhook_delivery *)b)->id;
    return x < y ? -1 : x > y;
}

/* Whether anything is due, without a transaction or the claims' lock: every node polls several
 * times a second, and an idle outbox must cost no more than one index probe. */
static int due_fn(struct pg_conn *c, void *ctx, struct err *e)
{
    struct claim_ctx *cx = ctx;
    struct pg_params p = {0};
    pp_int(&p, cx->r->now_ms);
    PGresult *r;
    int rc = pg_exec_sql(c,
                         "SELECT 1 FROM webhook_deliveries WHERE status IN ('pending',"
                         " 'delivering') AND ((status = 'pending' AND next_ms <= $1::bigint) OR"
                         " (status = 'delivering' AND lease_until_ms <= $1::bigint)) LIMIT 1",
                         &p, &r, "looking for due webhook deliveries", e);
    if (rc == 0)
        cx->n = (size_t)PQntuples(r);
    PQclear(r);
    return rc;
}

int store_pg_delivery_claim(struct store *s, const struct delivery_claim_req *r,
                            struct webhook_delivery **out, size_t *n, struct err *e)
{
    *out = NULL;
    *n = 0;
    if (r->max <= 0)
        return 0;
    struct claim_ctx due = {.r = r};
    int rc0 = pg_run(s, PG_TX_NONE, due_fn, &due, e);
    if (rc0 != 0 || due.n == 0)
        return rc0;
    struct claim_ctx cx = {.r = r, .ds = xcalloc((size_t)r->max, sizeof *cx.ds)};
    int rc = pg_run(s, PG_TX_WRITE, claim_fn, &cx, e);
    if (rc != 0 || cx.n == 0) {
        free(cx.ds);
        return rc;
    }
    qsort(cx.ds, cx.n, sizeof *cx.ds, by_id); /* RETURNING keeps no order */
    *out = cx.ds;
    *n = cx.n;
    return 0;
}

static int finish_fn(struct pg_conn *c, void *ctx, struct err *e)
{
    const struct delivery_result *d = ctx;
    struct pg_params p = {0};
    pp_int(&p, d->id);
    pp_text(&p, d->node);
    pp_int(&p, d->attempt);
    pp_bool(&p, d->delivered);
    pp_bool(&p, d->give_up);
    pp_int(&p, d->next_ms);
    pp_int(&p, d->http_status);
    pp_text(&p, d->error ? d->error : "");
    pp_int(&p, d->now_ms);
    pp_int(&p, d->took_ms);
    PGresult *r;
    int rc = pg_exec_sql(
        c,
        "UPDATE webhook_deliveries SET status = CASE WHEN $4::boolean THEN 'delivered' WHEN"
        " $5::boolean THEN 'failed' ELSE 'pending' END, next_ms = $6::bigint, lease_node = NULL,"
        " lease_until_ms = NULL, last_status = NULLIF($7::integer, 0),"
        " last_error = NULLIF($8::text, ''), delivered_ms = CASE WHEN $4::boolean THEN"
        " $9::bigint END, attempt_log = (attempt_log::jsonb || jsonb_build_array("
        "jsonb_build_object('at_ms', $9::bigint, 'status', NULLIF($7::integer, 0), 'error',"
        " NULLIF($8::text, ''), 'took_ms', $10::bigint)))::text WHERE id = $1::bigint"
        " AND status = 'delivering' AND lease_node = $2::text AND attempts = $3::integer",
        &p, &r, "recording a webhook attempt", e);
    if (rc == 0 && strcmp(PQcmdTuples(r), "0") == 0)
        rc = err_set(e, ERR_CONFLICT,
                     "webhook delivery %lld is no longer leased to %s at attempt %d (taken over "
                     "or its subscription deleted)",
                     (long long)d->id, d->node, d->attempt);
    PQclear(r);
    return rc;
}

int store_pg_delivery_finish(struct store *s, const struct delivery_result *r, struct err *e)
{
    return pg_run(s, PG_TX_NONE, finish_fn, (void *)r, e);
}

static int release_fn(struct pg_conn *c, void *ctx, struct err *e)
{
    struct pg_params p = {0};
    pp_text(&p, ctx);
    return pg_exec_sql(c,
                       "UPDATE webhook_deliveries SET status = 'pending', lease_node = NULL,"
                       " lease_until_ms = NULL WHERE status = 'delivering' AND lease_node = $1",
                       &p, NULL, "releasing webhook deliveries", e);
}

int store_pg_delivery_release_node(struct store *s, const char *node, struct err *e)
{
    return pg_run(s, PG_TX_NONE, release_fn, (void *)node, e);
}
