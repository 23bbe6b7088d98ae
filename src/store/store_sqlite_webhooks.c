/* The SQLite store's webhooks: subscriptions (secret sealed at rest) and the durable outbox of
 * their deliveries, enqueued in the transaction of the event they tell of and claimed under a
 * lease by the node's dispatcher (daemon/webhooks.c). */
#include <stdlib.h>
#include <string.h>

#include "common/secretbox.h"
#include "common/xalloc.h"
#include "store/store_sqlite_int.h"

#define WEBHOOK_COLS "id, url, events, COALESCE(product, ''), COALESCE(uin, ''), created_ms"
#define DELIVERY_COLS                                                                              \
    "id, event, task_id, to_state, info, at_ms, status, attempts, next_ms, last_status,"           \
    " last_error, created_ms, delivered_ms, attempt_log"

int sq_webhook_enqueue(struct sq_conn *c, const char *id, int64_t now, enum task_state to,
                       struct err *e)
{
    sqlite3_stmt *st;
    int rc = sq_stmt(c, SQ_WEBHOOK_ENQUEUE,
                     "INSERT INTO webhook_deliveries(webhook_id, task_id, seq, event, product, uin,"
                     " to_state, info, at_ms, next_ms, created_ms)"
                     " SELECT w.id, t.id, (SELECT MAX(seq) FROM task_events x WHERE x.task_id ="
                     " t.id), CASE WHEN ?3 THEN 'final' ELSE 'transition' END, t.product, t.uin,"
                     " ?4, t.info, ?2, ?2, ?2 FROM tasks t JOIN webhooks w"
                     " ON (w.product IS NULL OR w.product = t.product)"
                     " AND (w.uin IS NULL OR w.uin = t.uin)"
                     " WHERE t.id = ?1 AND (w.events = 'transition' OR ?3)",
                     &st, e);
    if (rc != 0)
        return rc;
    sq_bind_text(st, 1, id);
    sqlite3_bind_int64(st, 2, now);
    sqlite3_bind_int(st, 3, task_state_is_final(to));
    sq_bind_text(st, 4, task_state_name(to));
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = sq_fail(c, e, "enqueuing webhook deliveries");
    sq_done(st);
    return rc;
}

struct webhook_in {
    const struct webhook *w;
    const char *sealed;
};

static int webhook_insert_tx(struct sq_conn *c, const void *inp, void *out, struct err *e)
{
    (void)out;
    const struct webhook_in *in = inp;
    sqlite3_stmt *st;
    int rc = sq_stmt(c, SQ_WEBHOOK_INSERT,
                     "INSERT INTO webhooks(id, url, secret, events, product, uin, created_ms)"
                     " VALUES(?1, ?2, ?3, ?4, NULLIF(?5, ''), NULLIF(?6, ''), ?7)",
                     &st, e);
    if (rc != 0)
        return rc;
    sq_bind_text(st, 1, in->w->id);
    sq_bind_text(st, 2, in->w->url);
    sq_bind_text(st, 3, in->sealed);
    sq_bind_text(st, 4, in->w->events);
    sq_bind_text(st, 5, in->w->product);
    sq_bind_text(st, 6, in->w->uin);
    sqlite3_bind_int64(st, 7, in->w->created_ms);
    if (sqlite3_step(st) == SQLITE_DONE)
        rc = 0;
    else if ((sqlite3_extended_errcode(c->db) & 0xff) == SQLITE_CONSTRAINT)
        rc = err_set(e, ERR_ALREADY_EXISTS, "webhook %s already exists", in->w->id);
    else
        rc = sq_fail(c, e, "inserting a webhook");
    sq_done(st);
    return rc;
}

int store_sqlite_webhook_create(struct store *s, const struct webhook *w, struct err *e)
{
    char *sealed;
    int rc = secretbox_seal(w->secret, &sealed, e);
    if (rc != 0)
        return rc;
    struct webhook_in in = {w, sealed};
    rc = sq_write_tx(s, webhook_insert_tx, &in, NULL, e);
    free(sealed);
    return rc;
}

static json_t *webhook_row_json(sqlite3_stmt *st)
{
    const char *product = (const char *)sqlite3_column_text(st, 3);
    const char *uin = (const char *)sqlite3_column_text(st, 4);
    json_t *o = json_object();
    json_object_set_new(o, "id", sq_col_json_text(st, 0));
    json_object_set_new(o, "url", sq_col_json_text(st, 1));
    json_object_set_new(o, "events", json_pack("[o]", sq_col_json_text(st, 2)));
    json_object_set_new(o, "product", product && *product ? json_string(product) : json_null());
    json_object_set_new(o, "uin", uin && *uin ? json_string(uin) : json_null());
    json_object_set_new(o, "created_ms", sq_col_json_int(st, 5));
    return o;
}

/* Runs the cached read statement slot (sql) with ?1 = id (NULL binds nothing), appending one
 * object per row made by row_fn to arr. */
static int read_rows(struct sq_conn *c, enum sq_slot slot, const char *sql, const char *id,
                     const char *task, int64_t limit, json_t *(*row_fn)(sqlite3_stmt *),
                     json_t *arr, struct err *e)
{
    sqlite3_stmt *st;
    int rc = sq_stmt(c, slot, sql, &st, e);
    if (rc != 0)
        return rc;
    if (id)
        sq_bind_text(st, 1, id);
    if (task)
        sq_bind_text(st, 2, task);
    if (limit > 0)
        sqlite3_bind_int64(st, 3, limit);
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW)
        json_array_append_new(arr, row_fn(st));
    if (step != SQLITE_DONE)
        rc = sq_fail(c, e, "reading webhooks");
    sq_done(st);
    return rc;
}

int store_sqlite_webhook_list(struct store *s, json_t **out, struct err *e)
{
    struct sq_conn *c = sq_reader_acquire(sq_of(s));
    json_t *arr = json_array();
    int rc = read_rows(c, SQ_WEBHOOK_LIST,
                       "SELECT " WEBHOOK_COLS " FROM webhooks ORDER BY created_ms, id", NULL, NULL,
                       0, webhook_row_json, arr, e);
    sq_release(c);
    if (rc != 0)
        json_decref(arr);
    *out = rc == 0 ? arr : NULL;
    return rc;
}

static json_t *count_row_json(sqlite3_stmt *st)
{
    return json_pack("{s:o, s:I}", "state", sq_col_json_text(st, 0), "n",
                     (json_int_t)sqlite3_column_int64(st, 1));
}

/* {"pending": n, "delivering": n, "delivered": n, "failed": n} of one subscription. */
static json_t *counts_object(json_t *rows)
{
    json_t *o = json_pack("{s:i, s:i, s:i, s:i}", "pending", 0, "delivering", 0, "delivered", 0,
                          "failed", 0);
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
        json_object_set(o, json_string_value(json_object_get(r, "state")), json_object_get(r, "n"));
    return o;
}

static int webhook_get_on(struct sq_conn *c, const char *id, json_t **out, struct err *e)
{
    json_t *arr = json_array(), *counts = json_array();
    int rc = read_rows(c, SQ_WEBHOOK_GET, "SELECT " WEBHOOK_COLS " FROM webhooks WHERE id = ?1", id,
                       NULL, 0, webhook_row_json, arr, e);
    if (rc == 0 && json_array_size(arr) == 0)
        rc = err_set(e, ERR_NOT_FOUND, "no webhook %s", id);
    if (rc == 0)
        rc = read_rows(c, SQ_WEBHOOK_COUNTS,
                       "SELECT status, count(*) FROM webhook_deliveries WHERE webhook_id = ?1"
                       " GROUP BY status",
                       id, NULL, 0, count_row_json, counts, e);
    if (rc == 0) {
        *out = json_incref(json_array_get(arr, 0));
        json_object_set_new(*out, "deliveries", counts_object(counts));
    }
    json_decref(arr);
    json_decref(counts);
    return rc;
}

int store_sqlite_webhook_get(struct store *s, const char *id, json_t **out, struct err *e)
{
    *out = NULL;
    struct sq_conn *c = sq_reader_acquire(sq_of(s));
    int rc = sq_begin_read(c, e);
    if (rc == 0)
        rc = webhook_get_on(c, id, out, e);
    sq_rollback(c);
    sq_release(c);
    return rc;
}

static int webhook_delete_tx(struct sq_conn *c, const void *inp, void *out, struct err *e)
{
    (void)out;
    sqlite3_stmt *st;
    int rc = sq_stmt(c, SQ_WEBHOOK_DELETE, "DELETE FROM webhooks WHERE id = ?1", &st, e);
    if (rc != 0)
        return rc;
    sq_bind_text(st, 1, inp);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = sq_fail(c, e, "deleting a webhook");
    else if (sqlite3_changes(c->db) == 0)
        rc = err_set(e, ERR_NOT_FOUND, "no webhook %s", (const char *)inp);
    sq_done(st);
    return rc;
}

int store_sqlite_webhook_delete(struct store *s, const char *id, struct err *e)
{
    return sq_write_tx(s, webhook_delete_tx, id, NULL, e);
}

static json_t *delivery_row_json(sqlite3_stmt *st)
{
    static const char *const keys[] = {
        "id",       "event",   "task",        "task_state", "info",       "at_ms",       "state",
        "attempts", "next_ms", "last_status", "last_error", "created_ms", "delivered_ms"};
    json_t *o = json_object();
    for (int i = 0; i < (int)(sizeof keys / sizeof keys[0]); i++) {
        int type = sqlite3_column_type(st, i);
        json_object_set_new(
            o, keys[i], type == SQLITE_INTEGER ? sq_col_json_int(st, i) : sq_col_json_text(st, i));
    }
    const char *log = (const char *)sqlite3_column_text(st, 13);
    json_t *j = log ? json_loads(log, 0, NULL) : NULL;
    json_object_set_new(o, "attempt_log", j ? j : json_array());
    return o;
}

int store_sqlite_webhook_deliveries(struct store *s, const char *id, const char *task,
                                    int64_t limit, json_t **out, struct err *e)
{
    *out = NULL;
    struct sq_conn *c = sq_reader_acquire(sq_of(s));
    json_t *hook = NULL, *arr = json_array();
    int rc = sq_begin_read(c, e);
    if (rc == 0)
        rc = webhook_get_on(c, id, &hook, e);
    if (rc == 0)
        rc = read_rows(c, SQ_WEBHOOK_DELIVERIES,
                       "SELECT " DELIVERY_COLS " FROM webhook_deliveries WHERE webhook_id = ?1"
                       " AND (?2 IS NULL OR task_id = ?2) ORDER BY id DESC LIMIT ?3",
                       id, task, limit > 0 ? limit : 100, delivery_row_json, arr, e);
    sq_rollback(c);
    sq_release(c);
    json_decref(hook);
    if (rc != 0)
        json_decref(arr);
    *out = rc == 0 ? arr : NULL;
    return rc;
}

/* ---- the dispatcher's side ---- */

struct claim_out {
    struct webhook_delivery *ds;
    size_t n;
};

/* Due deliveries in id order, each behind no unfinished earlier one of its subscription and
 * task, and no more per subscription than per_webhook less its live leases. */
static int claim_pick(struct sq_conn *c, const struct delivery_claim_req *r, int64_t *ids,
                      size_t *n, struct err *e)
{
    sqlite3_stmt *st;
    int rc = sq_stmt(
        c, SQ_DELIVERY_PICK,
        "WITH inflight AS (SELECT webhook_id, count(*) AS n FROM webhook_deliveries"
        " WHERE status = 'delivering' AND lease_until_ms > ?1 GROUP BY webhook_id),"
        " cand AS (SELECT d.id, d.webhook_id, row_number() OVER (PARTITION BY d.webhook_id"
        " ORDER BY d.id) AS rn FROM webhook_deliveries d WHERE d.status IN ('pending',"
        " 'delivering') AND ((d.status = 'pending' AND d.next_ms <= ?1) OR (d.status ="
        " 'delivering' AND d.lease_until_ms <= ?1)) AND NOT EXISTS (SELECT 1 FROM"
        " webhook_deliveries o WHERE o.webhook_id = d.webhook_id AND o.task_id = d.task_id"
        " AND o.id < d.id AND o.status IN ('pending', 'delivering')))"
        " SELECT cand.id FROM cand LEFT JOIN inflight ON inflight.webhook_id = cand.webhook_id"
        " WHERE cand.rn + COALESCE(inflight.n, 0) <= ?2 ORDER BY cand.id LIMIT ?3",
        &st, e);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(st, 1, r->now_ms);
    sqlite3_bind_int(st, 2, r->per_webhook);
    sqlite3_bind_int(st, 3, r->max);
    int step;
    *n = 0;
    while ((step = sqlite3_step(st)) == SQLITE_ROW && *n < (size_t)r->max)
        ids[(*n)++] = sqlite3_column_int64(st, 0);
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        rc = sq_fail(c, e, "picking webhook deliveries");
    sq_done(st);
    return rc;
}

static int claim_take(struct sq_conn *c, const struct delivery_claim_req *r, int64_t id,
                      struct err *e)
{
    sqlite3_stmt *st;
    int rc = sq_stmt(c, SQ_DELIVERY_TAKE,
                     "UPDATE webhook_deliveries SET status = 'delivering', lease_node = ?2,"
                     " lease_until_ms = ?3, attempts = attempts + 1 WHERE id = ?1",
                     &st, e);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    sq_bind_text(st, 2, r->node);
    sqlite3_bind_int64(st, 3, r->now_ms + r->lease_ms);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = sq_fail(c, e, "taking a webhook delivery");
    sq_done(st);
    return rc;
}

static int claim_read(struct sq_conn *c, int64_t id, struct webhook_delivery *d, struct err *e)
{
    sqlite3_stmt *st;
    int rc = sq_stmt(c, SQ_DELIVERY_READ,
                     "SELECT d.webhook_id, w.url, w.secret, d.event, d.task_id, d.product, d.uin,"
                     " d.to_state, COALESCE(d.info, ''), d.at_ms, d.attempts"
                     " FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id"
                     " WHERE d.id = ?1",
                     &st, e);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) != SQLITE_ROW) {
        rc = sq_fail(c, e, "reading a webhook delivery");
    } else {
        memset(d, 0, sizeof *d);
        d->id = id;
        sq_copy(d->webhook_id, sizeof d->webhook_id, sqlite3_column_text(st, 0));
        sq_copy(d->url, sizeof d->url, sqlite3_column_text(st, 1));
        rc = secretbox_open_into((const char *)sqlite3_column_text(st, 2), d->secret,
                                 sizeof d->secret, e);
        sq_copy(d->event, sizeof d->event, sqlite3_column_text(st, 3));
        sq_copy(d->task_id, sizeof d->task_id, sqlite3_column_text(st, 4));
        sq_copy(d->product, sizeof d->product, sqlite3_column_text(st, 5));
        sq_copy(d->uin, sizeof d->uin, sqlite3_column_text(st, 6));
        enum task_state ts = TASK_INITIAL;
        task_state_parse((const char *)sqlite3_column_text(st, 7), &ts);
        d->state = ts;
        sq_copy(d->info, sizeof d->info, sqlite3_column_text(st, 8));
        d->at_ms = sqlite3_column_int64(st, 9);
        d->attempt = sqlite3_column_int(st, 10);
    }
    sq_done(st);
    return rc;
}

static int claim_tx(struct sq_conn *c, const void *inp, void *outp, struct err *e)
{
    const struct delivery_claim_req *r = inp;
    struct claim_out *out = outp;
    int64_t *ids = xcalloc((size_t)r->max, sizeof *ids);
    size_t n = 0;
    int rc = claim_pick(c, r, ids, &n, e);
    out->ds = n ? xcalloc(n, sizeof *out->ds) : NULL;
    out->n = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = claim_take(c, r, ids[i], e);
        if (rc == 0)
            rc = claim_read(c, ids[i], &out->ds[out->n], e);
        if (rc == 0)
            out->n++;
    }
    free(ids);
    return rc;
}

/* Whether anything is due, asked on a reader: the dispatcher polls several times a second, and
 * an idle outbox must not cost the writer a transaction each time. */
static int anything_due(struct store *s, int64_t now, bool *due, struct err *e)
{
    struct sq_conn *c = sq_reader_acquire(sq_of(s));
    sqlite3_stmt *st;
    int rc = sq_stmt(c, SQ_DELIVERY_DUE,
                     "SELECT 1 FROM webhook_deliveries WHERE status IN ('pending', 'delivering')"
                     " AND ((status = 'pending' AND next_ms <= ?1) OR (status = 'delivering'"
                     " AND lease_until_ms <= ?1)) LIMIT 1",
                     &st, e);
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, now);
        int step = sqlite3_step(st);
        *due = step == SQLITE_ROW;
        if (step != SQLITE_ROW && step != SQLITE_DONE)
            rc = sq_fail(c, e, "looking for due webhook deliveries");
    }
    sq_done(st);
    sq_release(c);
    return rc;
}

int store_sqlite_delivery_claim(struct store *s, const struct delivery_claim_req *r,
                                struct webhook_delivery **out, size_t *n, struct err *e)
{
    *out = NULL;
    *n = 0;
    bool due = false;
    if (r->max <= 0)
        return 0;
    int rc0 = anything_due(s, r->now_ms, &due, e);
    if (rc0 != 0 || !due)
        return rc0;
    struct claim_out co = {0};
    int rc = sq_write_tx(s, claim_tx, r, &co, e);
    if (rc != 0 || co.n == 0) {
        free(co.ds);
        return rc;
    }
    *out = co.ds;
    *n = co.n;
    return 0;
}

static int finish_tx(struct sq_conn *c, const void *inp, void *out, struct err *e)
{
    (void)out;
    const struct delivery_result *r = inp;
    sqlite3_stmt *st;
    int rc = sq_stmt(
        c, SQ_DELIVERY_FINISH,
        "UPDATE webhook_deliveries SET status = CASE WHEN ?4 THEN 'delivered' WHEN ?5 THEN"
        " 'failed' ELSE 'pending' END, next_ms = ?6, lease_node = NULL, lease_until_ms = NULL,"
        " last_status = NULLIF(?7, 0), last_error = NULLIF(?8, ''),"
        " delivered_ms = CASE WHEN ?4 THEN ?9 END, attempt_log = json_insert(attempt_log,"
        " '$[#]', json_object('at_ms', ?9, 'status', NULLIF(?7, 0), 'error', NULLIF(?8, ''),"
        " 'took_ms', ?10)) WHERE id = ?1 AND status = 'delivering' AND lease_node = ?2"
        " AND attempts = ?3",
        &st, e);
    if (rc != 0)
        return rc;
    sqlite3_bind_int64(st, 1, r->id);
    sq_bind_text(st, 2, r->node);
    sqlite3_bind_int(st, 3, r->attempt);
    sqlite3_bind_int(st, 4, r->delivered);
    sqlite3_bind_int(st, 5, r->give_up);
    sqlite3_bind_int64(st, 6, r->next_ms);
    sqlite3_bind_int(st, 7, r->http_status);
    sq_bind_text(st, 8, r->error ? r->error : "");
    sqlite3_bind_int64(st, 9, r->now_ms);
    sqlite3_bind_int64(st, 10, r->took_ms);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = sq_fail(c, e, "recording a webhook attempt");
    else if (sqlite3_changes(c->db) == 0)
        rc = err_set(e, ERR_CONFLICT,
                     "webhook delivery %lld is no longer leased to %s at attempt %d (taken over "
                     "or its subscription deleted)",
                     (long long)r->id, r->node, r->attempt);
    sq_done(st);
    return rc;
}

int store_sqlite_delivery_finish(struct store *s, const struct delivery_result *r, struct err *e)
{
    return sq_write_tx(s, finish_tx, r, NULL, e);
}

static int release_tx(struct sq_conn *c, const void *inp, void *out, struct err *e)
{
    (void)out;
    sqlite3_stmt *st;
    int rc = sq_stmt(c, SQ_DELIVERY_RELEASE,
                     "UPDATE webhook_deliveries SET status = 'pending', lease_node = NULL,"
                     " lease_until_ms = NULL WHERE status = 'delivering' AND lease_node = ?1",
                     &st, e);
    if (rc != 0)
        return rc;
    sq_bind_text(st, 1, inp);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = sq_fail(c, e, "releasing webhook deliveries");
    sq_done(st);
    return rc;
}

int store_sqlite_delivery_release_node(struct store *s, const char *node, struct err *e)
{
    return sq_write_tx(s, release_tx, node, NULL, e);
}
