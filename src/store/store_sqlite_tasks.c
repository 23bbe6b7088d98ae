/* The SQLite store's task writes (create, move) and the hot-path task summary. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/ids.h"
#include "common/xalloc.h"
#include "store/store_check.h"
#include "store/store_plan.h"
#include "store/store_sqlite_int.h"

#define MINT_ATTEMPTS    8 /* fresh ids tried when one clashes with a stored task */
#define MONGODB_FIRST_ID 1000

/* Mints a task id in the product's format; for mongodb, inside the caller's transaction. */
static int mint_id(struct sq_conn *c, const char *product, char id[STORE_ID_MAX], struct err *e)
{
    if (strcmp(product, "cdb") == 0) {
        ids_cdb_task(id);
        return 0;
    }
    sqlite3_stmt *st;
    int rc = sq_stmt(c, SQ_COUNTER_NEXT,
                     "INSERT INTO counters(product, next_id) VALUES(?1, ?2)"
                     " ON CONFLICT(product) DO UPDATE SET next_id = next_id + 1"
                     " RETURNING next_id - 1",
                     &st, e);
    if (rc != 0)
        return rc;
    sq_bind_text(st, 1, product);
    sqlite3_bind_int64(st, 2, MONGODB_FIRST_ID + 1);
    if (sqlite3_step(st) == SQLITE_ROW)
        snprintf(id, STORE_ID_MAX, "%lld", (long long)sqlite3_column_int64(st, 0));
    else
        rc = sq_fail(c, e, "taking the next mongodb task id");
    sq_done(st);
    return rc;
}

/* Inserts the task row; ERR_ALREADY_EXISTS when the id is taken. */
static int task_insert(struct sq_conn *c, const struct task_new *t, const char *id, int64_t now,
                       struct err *e)
{
    sqlite3_stmt *st;
    int rc = sq_stmt(c, SQ_TASK_INSERT,
                     "INSERT INTO tasks(id, product, region, uin,"
                     " instance_id, type, on_failure, state, created_ms, driver, input)"
                     " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                     &st, e);
    if (rc != 0)
        return rc;
    sq_bind_text(st, 1, id);
    sq_bind_text(st, 2, t->product);
    sq_bind_text(st, 3, t->region);
    sq_bind_text(st, 4, t->uin);
    sq_bind_text(st, 5, t->instance_id && *t->instance_id ? t->instance_id : NULL);
    sq_bind_text(st, 6, t->type);
    sq_bind_text(st, 7, t->on_failure ? t->on_failure : "pause");
    sq_bind_text(st, 8, task_state_name(TASK_INITIAL));
    sqlite3_bind_int64(st, 9, now);
    sq_bind_text(st, 10, store_task_driver(t->steps));
    char *input = t->input ? json_dumps(t->input, JSON_COMPACT) : NULL;
    sq_bind_text(st, 11, input);
    int step_rc = sqlite3_step(st);
    free(input);
    if (step_rc != SQLITE_DONE) {
        if (sqlite3_extended_errcode(c->db) == SQLITE_CONSTRAINT_PRIMARYKEY)
            rc = err_set(e, ERR_ALREADY_EXISTS, "task %s already exists", id);
        else
            rc = sq_fail(c, e, "inserting a task");
    }
    sq_done(st);
    return rc;
}

static int steps_insert(struct sq_conn *c, const char *id, const struct store_step_row *rows,
                        size_t n, struct err *e)
{
    sqlite3_stmt *st;
    int rc = sq_stmt(c, SQ_STEP_INSERT,
                     "INSERT INTO task_steps(task_id, idx, name, do_json,"
                     " undo_json, retries, timeout_s) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                     &st, e);
    for (size_t i = 0; i < n && rc == 0; i++) {
        sq_bind_text(st, 1, id);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)i);
        sq_bind_text(st, 3, rows[i].name);
        sq_bind_text(st, 4, rows[i].do_json);
        sq_bind_text(st, 5, rows[i].undo_json);
        sqlite3_bind_int64(st, 6, rows[i].retries);
        sqlite3_bind_int64(st, 7, rows[i].timeout_s);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = sq_fail(c, e, "inserting a task step");
        sq_done(st);
    }
    return rc;
}

/* One step's actions, erased (heap; NULL = unchanged). */
/* The caller's Idempotency-Key in the creation's transaction (the one writer serializes it with
 * every other creation): STORE_IDEM_REPLAY with id set to the first task, STORE_IDEM_NEW, or
 * ERR_CONFLICT (store_idem_decide). */
static int idem_check(struct sq_conn *c, struct task_idem *k, char id[STORE_ID_MAX], int64_t now,
                      struct err *e)
{
    sqlite3_stmt *st;
    int rc = sq_stmt(c, SQ_IDEM_READ,
                     "SELECT body_hash, task_id, created_ms FROM idempotency_keys"
                     " WHERE scope = ?1 AND idem_key = ?2",
                     &st, e);
    if (rc != 0)
        return rc;
    sq_bind_text(st, 1, k->scope);
    sq_bind_text(st, 2, k->key);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        const char *hash = (const char *)sqlite3_column_text(st, 0);
        rc = store_idem_decide(k, true, hash ? hash : "", sqlite3_column_int64(st, 2), now, e);
        if (rc == STORE_IDEM_REPLAY)
            sq_copy(id, STORE_ID_MAX, sqlite3_column_text(st, 1));
    } else if (step == SQLITE_DONE) {
        rc = store_idem_decide(k, false, NULL, 0, now, e);
    } else {
        rc = sq_fail(c, e, "reading an idempotency key");
    }
    sq_done(st);
    return rc;
}

/* Records the key for the new task id, replacing an expired one. */
static int idem_put(struct sq_conn *c, const struct task_idem *k, const char *id, int64_t now,
                    struct err *e)
{
    sqlite3_stmt *st;
    int rc = sq_stmt(c, SQ_IDEM_PUT,
                     "INSERT INTO idempotency_keys(scope, idem_key, body_hash, task_id, created_ms)"
                     " VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(scope, idem_key) DO UPDATE SET"
                     " body_hash = excluded.body_hash, task_id = excluded.task_id,"
                     " created_ms = excluded.created_ms",
                     &st, e);
    if (rc != 0)
        return rc;
    sq_bind_text(st, 1, k->scope);
    sq_bind_text(st, 2, k->key);
    sq_bind_text(st, 3, k->body_hash);
    sq_bind_text(st, 4, id);
    sqlite3_bind_int64(st, 5, now);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = sq_fail(c, e, "recording an idempotency key");
    sq_done(st);
    return rc;
}

struct create_in {
    const struct task_new *t;
    const struct store_step_row *rows; /* the steps, their secrets sealed */
    size_t n;
};

/* The task row, its steps and its creation event; out is the new id (char[STORE_ID_MAX]). */
static int task_create_tx(struct sq_conn *c, const void *inp, void *out, struct err *e)
{
    const struct create_in *in = inp;
    const struct task_new *t = in->t;
    char *id = out;
    int64_t now = sq_now_ms();
    int rc = t->idem ? idem_check(c, t->idem, id, now, e) : STORE_IDEM_NEW;
    if (rc != STORE_IDEM_NEW)
        return rc == STORE_IDEM_REPLAY ? 0 : rc;
    rc = ERR_ALREADY_EXISTS;
    /* A clash is astronomically unlikely for cdb (80 random bits within a millisecond); for
     * mongodb it means the counter was reset under existing tasks, and the next numbers are
     * tried. */
    for (int attempt = 0; attempt < MINT_ATTEMPTS && rc == ERR_ALREADY_EXISTS; attempt++) {
        rc = mint_id(c, t->product, id, e);
        if (rc == 0)
            rc = task_insert(c, t, id, now, e);
    }
    if (rc == 0)
        rc = steps_insert(c, id, in->rows, in->n, e);
    if (rc == 0)
        rc = sq_event_append(c, id, now, -1, TASK_INITIAL, t->node, "created", e);
    if (rc == 0 && t->idem)
        rc = idem_put(c, t->idem, id, now, e);
    return rc;
}

int store_sqlite_task_create(struct store *s, const struct task_new *t, char id_out[STORE_ID_MAX],
                             struct err *e)
{
    id_out[0] = '\0';
    struct store_task_prep p;
    int rc = store_task_prep(t, &p, e);
    if (rc != 0)
        return rc;
    char id[STORE_ID_MAX];
    struct create_in in = {t, p.rows, p.n};
    rc = sq_write_tx(s, task_create_tx, &in, id, e);
    store_task_prep_free(&p);
    if (rc == 0)
        snprintf(id_out, STORE_ID_MAX, "%s", id);
    return rc;
}

struct create_batch_in {
    const struct create_in *items;
    size_t n;
};

/* Every task of a batch in the one closure, so in one savepoint: all are created or none. */
static int task_create_batch_tx(struct sq_conn *c, const void *inp, void *out, struct err *e)
{
    const struct create_batch_in *b = inp;
    char(*ids)[STORE_ID_MAX] = out;
    for (size_t i = 0; i < b->n; i++) {
        int rc = task_create_tx(c, &b->items[i], ids[i], e);
        if (rc != 0)
            return store_batch_item_err(e, i, rc);
    }
    return 0;
}

int store_sqlite_task_create_batch(struct store *s, const struct task_new *ts, size_t n,
                                   char (*ids_out)[STORE_ID_MAX], struct err *e)
{
    struct store_task_prep *p = xcalloc(n ? n : 1, sizeof *p);
    struct create_in *items = xcalloc(n ? n : 1, sizeof *items);
    int rc = 0;
    size_t ready = 0;
    for (; ready < n && rc == 0; ready++) {
        rc = store_task_prep(&ts[ready], &p[ready], e);
        if (rc != 0)
            rc = store_batch_item_err(e, ready, rc);
        items[ready] = (struct create_in){&ts[ready], p[ready].rows, p[ready].n};
    }
    if (rc == 0) {
        struct create_batch_in in = {items, n};
        rc = sq_write_tx(s, task_create_batch_tx, &in, ids_out, e);
    }
    for (size_t i = 0; i < ready; i++)
        store_task_prep_free(&p[i]);
    free(items);
    free(p);
    if (rc != 0)
        for (size_t i = 0; i < n; i++)
            ids_out[i][0] = '\0';
    return rc;
}
