/* The task create, alone and in a batch, once for both dialects (store_db.h): the id minted in
 * the product's format, the Idempotency-Key checked and recorded, and the task's row, steps and
 * creation event, all in the creation's transaction.
 *
 * Two ways to write the row, steps and event, chosen by the dialect's capability:
 * - one statement (DB_TASK_CREATE, DB_CAP_WRITE_CTE: PostgreSQL), which writes the row, the steps
 *   (as one JSON array), the "created" event and its webhook deliveries; each statement there is
 *   a round trip to the server, so a creation without a key is one round trip in autocommit
 *   instead of six (BEGIN, task, steps, event, outbox, COMMIT); with a key, and in a batch, it
 *   runs between the key's read and its record in the one transaction;
 * - statement by statement (DB_TASK_INSERT, DB_STEP_INSERT a step, db_event_append), where
 *   data-modifying WITH does not exist (SQLite: its statements are function calls inside one
 *   closure of the writer's group commit, so the count costs no round trip). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/ids.h"
#include "common/xalloc.h"
#include "store/store_check.h"
#include "store/store_db.h"

#define MINT_ATTEMPTS    8 /* fresh ids tried when one clashes with a stored task */
#define MONGODB_FIRST_ID 1000

/* One task to create, made ready before its transaction (on SQLite, off the one writer). */
struct create_item {
    const struct task_new *t;
    struct store_task_prep p; /* checked, secrets sealed, steps serialised */
    const char *driver;       /* store_task_driver's word */
    char *input;              /* the input as JSON text, or NULL */
    char *steps;              /* the steps as DB_TASK_CREATE's JSON array; NULL: statement by
                                 statement */
    char id[STORE_ID_MAX];    /* the new task's, or the replayed one's */
};

struct create_op {
    struct create_item *items;
    size_t n;
    bool batch; /* name the failed item: "tasks[i]: " */
};

/* The steps as the JSON array DB_TASK_CREATE reads; the caller frees it. */
static char *steps_json(const struct store_task_prep *p)
{
    json_t *a = json_array();
    for (size_t i = 0; i < p->n; i++) {
        const struct store_step_row *r = &p->rows[i];
        json_array_append_new(a,
                              json_pack("{s:I,s:s,s:s,s:s?,s:I,s:I}", "idx", (json_int_t)i, "name",
                                        r->name, "do_json", r->do_json, "undo_json", r->undo_json,
                                        "retries", r->retries, "timeout_s", r->timeout_s));
    }
    char *text = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    return text;
}

static int item_prep(struct create_item *it, const struct task_new *t, bool one_statement,
                     struct err *e)
{
    *it = (struct create_item){.t = t};
    int rc = store_task_prep(t, &it->p, e);
    if (rc != 0)
        return rc;
    it->driver = store_task_driver(t->steps);
    it->input = t->input ? json_dumps(t->input, JSON_COMPACT) : NULL;
    it->steps = one_statement ? steps_json(&it->p) : NULL;
    return 0;
}

static void item_free(struct create_item *it)
{
    store_task_prep_free(&it->p);
    free(it->input);
    free(it->steps);
}

/* Mints a task id in the product's format, inside the creation's transaction: cdb's ids begin
 * with the millisecond (common/ids.h), so minted here they follow the order the rows are
 * written in; mongodb's counter row is per product (on PostgreSQL locked by the upsert until
 * the transaction ends: one number a task, no gaps unless a transaction rolls back). */
static int mint_id(struct db_tx *tx, const char *product, char id[STORE_ID_MAX], struct err *e)
{
    if (strcmp(product, "cdb") == 0) {
        ids_cdb_task(id);
        return 0;
    }
    const char *what = "taking the next mongodb task id";
    int rc = db_exec_row(tx, DB_COUNTER_NEXT,
                         DB_ARGS(DB_TEXT(product), DB_INT(MONGODB_FIRST_ID + 1)), what, e);
    if (rc == 1)
        snprintf(id, STORE_ID_MAX, "%lld", (long long)db_int(tx, 0));
    else if (rc == 0)
        rc = err_set(e, ERR_INTERNAL, "store: %s: no row", what);
    return rc < 0 ? rc : 0;
}

/* The row's values, in DB_TASK_INSERT's order, then DB_TASK_CREATE's two more. */
enum { ROW_ARGS = 11, CREATE_ARGS = 13 };
static void row_args(const struct create_item *it, int64_t now, struct db_arg a[CREATE_ARGS])
{
    const struct task_new *t = it->t;
    const struct db_arg v[CREATE_ARGS] = {
        DB_TEXT(it->id),
        DB_TEXT(t->product),
        DB_TEXT(t->region),
        DB_TEXT(t->uin),
        DB_TEXT(t->instance_id && *t->instance_id ? t->instance_id : NULL),
        DB_TEXT(t->type),
        DB_TEXT(t->on_failure ? t->on_failure : "pause"),
        DB_TEXT(task_state_name(TASK_INITIAL)),
        DB_INT(now),
        DB_TEXT(it->driver),
        DB_TEXT(it->input),
        DB_TEXT(it->steps),
        DB_TEXT(t->node ? t->node : ""),
    };
    memcpy(a, v, sizeof v);
}

/* The row, steps and event under it->id: 1 when written, 0 when the id is taken (nothing
 * written), or an ERR_*. */
static int task_insert(struct db_tx *tx, const struct create_item *it, int64_t now, struct err *e)
{
    struct db_arg a[CREATE_ARGS];
    row_args(it, now, a);
    if (it->steps)
        return db_exec_row(tx, DB_TASK_CREATE, a, CREATE_ARGS, "creating a task", e);
    int rc = db_exec(tx, DB_TASK_INSERT, a, ROW_ARGS, "inserting a task", e);
    if (rc != 0 || db_changes(tx) == 0)
        return rc;
    const struct store_step_row *r = it->p.rows;
    for (size_t i = 0; i < it->p.n && rc == 0; i++)
        rc = db_exec(tx, DB_STEP_INSERT,
                     DB_ARGS(DB_TEXT(it->id), DB_INT(i), DB_TEXT(r[i].name), DB_TEXT(r[i].do_json),
                             DB_TEXT(r[i].undo_json), DB_INT(r[i].retries), DB_INT(r[i].timeout_s)),
                     "inserting a task step", e);
    if (rc == 0)
        rc = db_event_append(tx, it->id, now, -1, TASK_INITIAL, it->t->node, "created", e);
    return rc == 0 ? 1 : rc;
}

/* The caller's Idempotency-Key in the creation's transaction: STORE_IDEM_REPLAY with it->id set
 * to the first task, STORE_IDEM_NEW, or ERR_CONFLICT (store_idem_decide). Where several writers
 * run at once, creations with one key queue on DB_IDEM_LOCK, so the second of two concurrent ones
 * reads the key (READ COMMITTED: a fresh snapshot per statement) only after the first committed
 * or rolled back; SQLite's one writer runs them one after another anyway. */
static int idem_check(struct db_tx *tx, struct create_item *it, int64_t now, struct err *e)
{
    struct task_idem *k = it->t->idem;
    int rc = db_has(tx, DB_CAP_ONE_WRITER)
                 ? 0
                 : db_exec(tx, DB_IDEM_LOCK, DB_ARGS(DB_TEXT(k->scope), DB_TEXT(k->key)),
                           "locking an idempotency key", e);
    if (rc == 0)
        rc = db_exec_row(tx, DB_IDEM_READ, DB_ARGS(DB_TEXT(k->scope), DB_TEXT(k->key)),
                         "reading an idempotency key", e);
    if (rc < 0)
        return rc;
    bool found = rc == 1;
    const char *hash = found && db_text(tx, 0) ? db_text(tx, 0) : "";
    rc = store_idem_decide(k, found, hash, found ? db_int(tx, 2) : 0, now, e);
    if (rc == STORE_IDEM_REPLAY)
        db_copy(tx, 1, it->id, sizeof it->id);
    return rc;
}

/* One task in the caller's transaction: replayed, or minted, written and its key recorded
 * (replacing an expired one). */
static int task_create(struct db_tx *tx, struct create_item *it, struct err *e)
{
    const struct task_idem *k = it->t->idem;
    int64_t now = db_now_ms();
    it->id[0] = '\0'; /* a transaction run again starts afresh */
    int rc = k ? idem_check(tx, it, now, e) : STORE_IDEM_NEW;
    if (rc != STORE_IDEM_NEW)
        return rc == STORE_IDEM_REPLAY ? 0 : rc;
    /* A clash is astronomically unlikely for cdb (80 random bits within a millisecond); for
     * mongodb it means the counter was reset under existing tasks, and the next numbers are
     * tried. */
    int written = 0;
    for (int attempt = 0; attempt < MINT_ATTEMPTS && written == 0; attempt++) {
        rc = mint_id(tx, it->t->product, it->id, e);
        written = rc == 0 ? task_insert(tx, it, now, e) : rc;
    }
    if (written < 0)
        return written;
    if (written == 0)
        return err_set(e, ERR_ALREADY_EXISTS, "task %s already exists", it->id);
    if (!k)
        return 0;
    return db_exec(tx, DB_IDEM_PUT,
                   DB_ARGS(DB_TEXT(k->scope), DB_TEXT(k->key), DB_TEXT(k->body_hash),
                           DB_TEXT(it->id), DB_INT(now)),
                   "recording an idempotency key", e);
}

/* Every task of the op in the one transaction: all are created or none. */
static int create_fn(struct db_tx *tx, void *ctx, struct err *e)
{
    struct create_op *op = ctx;
    for (size_t i = 0; i < op->n; i++) {
        int rc = task_create(tx, &op->items[i], e);
        if (rc != 0)
            return op->batch ? store_batch_item_err(e, i, rc) : rc;
    }
    return 0;
}

int store_db_task_create(struct store *s, const struct task_new *t, char id_out[STORE_ID_MAX],
                         struct err *e)
{
    id_out[0] = '\0';
    bool one_statement = db_store_has(s, DB_CAP_WRITE_CTE);
    struct create_item it;
    int rc = item_prep(&it, t, one_statement, e);
    if (rc != 0)
        return rc;
    struct create_op op = {&it, 1, false};
    /* Without a key the one statement needs no BEGIN and COMMIT: it is atomic, and durable once
     * it returns. A mongodb id costs one statement more before it (the counter), which then
     * commits on its own: a number a failed creation took is skipped, as a rolled-back
     * transaction would not have. bench/pgboss.sh (2 CPUs, 5000 noop tasks): creates
     * 574/s -> 625/s, end to end 480/s -> 515/s. (SQLite: DB_WRITE_ONE is DB_WRITE.) */
    rc = db_run(s, one_statement && !t->idem ? DB_WRITE_ONE : DB_WRITE, create_fn, &op, e);
    if (rc == 0)
        snprintf(id_out, STORE_ID_MAX, "%s", it.id);
    item_free(&it);
    return rc;
}

int store_db_task_create_batch(struct store *s, const struct task_new *ts, size_t n,
                               char (*ids_out)[STORE_ID_MAX], struct err *e)
{
    bool one_statement = db_store_has(s, DB_CAP_WRITE_CTE);
    struct create_item *items = xcalloc(n ? n : 1, sizeof *items);
    int rc = 0;
    size_t ready = 0;
    for (; ready < n && rc == 0; ready++)
        if ((rc = item_prep(&items[ready], &ts[ready], one_statement, e)) != 0)
            rc = store_batch_item_err(e, ready, rc);
    struct create_op op = {items, n, true};
    if (rc == 0)
        rc = db_run(s, DB_WRITE, create_fn, &op, e);
    for (size_t i = 0; i < n; i++)
        snprintf(ids_out[i], STORE_ID_MAX, "%s", rc == 0 ? items[i].id : "");
    for (size_t i = 0; i < ready; i++)
        item_free(&items[i]);
    free(items);
    return rc;
}
