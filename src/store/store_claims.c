/* The engine's claims, once for both dialects (store_db.h): pick the oldest runnable tasks (one
 * operation at a time per instance, unless its product is parallel), take each one's lease (its
 * lease_no + 1, the fencing token every later write is checked against) and append the RUNNING
 * event that records the claim. Three ways to the same rows, by what the store can do:
 * - DB_CAP_SKIP_LOCKED (PostgreSQL): the whole batch in one statement (DB_CLAIM_BATCH) that
 *   locks the rows other nodes have not, one round trip;
 * - DB_CAP_ONE_WRITER (SQLite): read the candidates, then take each, in one writer's closure
 *   (nobody else writes between the read and the takes);
 * - neither (PostgreSQL with ?claim=update): one conditional statement picks and takes the
 *   oldest task (DB_CLAIM_UPDATE), one claim per call.
 * Asked to (the `read` bits), the second way also reads each taken task in the same closure
 * (db_task_read) and hands it to the caller: the engine's first read of a task it claimed was a
 * reader transaction of its own (BEGIN, row, steps, last event, ROLLBACK) on pages the claim's
 * commit had just made stale in the reader's cache, ~8% of asyncd's CPU with one task a request
 * (perf: preads, WAL lock fcntls, futexes); the writer has them hot. Where each statement is a
 * round trip (the other two ways) reading there would cost one, so no task is handed over and the
 * caller reads as before. */
#include <stdio.h>
#include <string.h>

#include "store/store.h"
#include "store/store_db.h"
#include "store/store_task_rows.h"

/* ?claim=update: candidates tried when other claimers win the race for them. */
#define CLAIM_UPDATE_TRIES 4

struct claim_op {
    const char *node;
    int64_t lease_ms;
    char parallel[256]; /* ",p,q,": products exempt from one-at-a-time per instance */
    size_t max, n;
    unsigned read; /* TASK_READ_* of each task to hand over; 0 = none */
    struct task_claim *out;
};

/* The columns DB_CLAIM_PICK and DB_CLAIM_UPDATE answer. */
enum { COL_ID, COL_STATE, COL_OLD_NODE, COL_LEASE_NO, COL_PRODUCT };

struct candidate {
    char old_node[128]; /* "" when the task had no lease */
    int64_t lease_no;   /* as the row answered it */
};

/* A claim that found nothing fails inside its transaction, which then writes nothing. */
static int claimed(const struct claim_op *op, struct err *e)
{
    return op->n ? 0 : err_set(e, ERR_NOT_FOUND, "no runnable task");
}

static enum task_state from_word(const char *word)
{
    return word && strcmp(word, "initial") == 0 ? TASK_INITIAL : TASK_RUNNING;
}

/* The current row of DB_CLAIM_PICK or DB_CLAIM_UPDATE as a claim and its candidate. */
static void claim_from_row(struct db_tx *t, struct task_claim *c, struct candidate *cand)
{
    *c = (struct task_claim){.from = from_word(db_text(t, COL_STATE))};
    db_copy(t, COL_ID, c->id, sizeof c->id);
    db_copy(t, COL_PRODUCT, c->product, sizeof c->product);
    db_copy(t, COL_OLD_NODE, cand->old_node, sizeof cand->old_node);
    cand->lease_no = db_int(t, COL_LEASE_NO);
    c->taken_over = c->from == TASK_RUNNING && cand->old_node[0];
}

/* Every claim is in the history with its lease number, so overlapping leases can be audited
 * (DB_CLAIM_BATCH writes the same message in SQL). */
static int claim_event(struct db_tx *t, const struct claim_op *op, int64_t now,
                       const struct task_claim *c, const char *old_node, struct err *e)
{
    char msg[256];
    long long no = (long long)c->lease_no;
    if (c->from == TASK_INITIAL)
        snprintf(msg, sizeof msg, "started; lease %lld", no);
    else if (old_node[0])
        snprintf(msg, sizeof msg, "lease of %.100s expired; taken over, lease %lld", old_node, no);
    else
        snprintf(msg, sizeof msg, "claimed; lease %lld", no);
    return db_event_append(t, c->id, now, (int)c->from, TASK_RUNNING, op->node, msg, e);
}

/* --- one statement (DB_CAP_SKIP_LOCKED) --- */

enum { BATCH_ID, BATCH_PRODUCT, BATCH_LEASE_NO, BATCH_OLD_STATE, BATCH_TAKEN_OVER };

static int batch_fn(struct db_tx *t, void *ctx, struct err *e)
{
    struct claim_op *op = ctx;
    const char *what = "claiming tasks";
    op->n = 0; /* a retried statement claims afresh */
    int rc = db_exec(t, DB_CLAIM_BATCH,
                     DB_ARGS(DB_INT(db_now_ms()), DB_TEXT(op->parallel), DB_TEXT(op->node),
                             DB_INT(op->lease_ms), DB_INT((int64_t)op->max)),
                     what, e);
    while (rc == 0 && op->n < op->max && (rc = db_next(t, what, e)) == 1) {
        rc = 0;
        struct task_claim *c = &op->out[op->n++];
        *c = (struct task_claim){.from = from_word(db_text(t, BATCH_OLD_STATE))};
        db_copy(t, BATCH_ID, c->id, sizeof c->id);
        db_copy(t, BATCH_PRODUCT, c->product, sizeof c->product);
        c->lease_no = db_int(t, BATCH_LEASE_NO);
        c->taken_over = c->from == TASK_RUNNING && db_int(t, BATCH_TAKEN_OVER) != 0;
    }
    return rc != 0 ? rc : claimed(op, e);
}

/* --- read, then take (DB_CAP_ONE_WRITER) --- */

/* Every candidate is read before any is taken: one statement is open at a time. */
static int pick(struct db_tx *t, struct claim_op *op, int64_t now, struct candidate *cands,
                struct err *e)
{
    const char *what = "looking for runnable tasks";
    int rc =
        db_exec(t, DB_CLAIM_PICK,
                DB_ARGS(DB_INT(now), DB_TEXT(op->parallel), DB_INT((int64_t)op->max)), what, e);
    while (rc == 0 && op->n < op->max && (rc = db_next(t, what, e)) == 1) {
        rc = 0;
        claim_from_row(t, &op->out[op->n], &cands[op->n]);
        op->n++;
    }
    return rc;
}

/* Takes the candidate's lease: its number is the one read in this same transaction plus one. */
static int take(struct db_tx *t, const struct claim_op *op, int64_t now, struct task_claim *c,
                const struct candidate *cand, struct err *e)
{
    c->lease_no = cand->lease_no + 1;
    int rc = db_exec(t, DB_CLAIM_TAKE,
                     DB_ARGS(DB_TEXT(c->id), DB_INT(now), DB_TEXT(op->node), DB_INT(op->lease_ms),
                             DB_INT(c->lease_no)),
                     "claiming a task", e);
    if (rc == 0 && db_changes(t) != 1)
        rc = err_set(e, ERR_INTERNAL, "store: task %s vanished while being claimed", c->id);
    return rc;
}

/* The task as this transaction has just left it, for the caller (task_claim.task). Read after
 * the take and the claim event, so it is what the commit makes durable: a write that a later
 * closure of the same commit makes (an operator's pause) is seen at the run's next read, as one
 * landing just after a read of the committed row would be. */
static int hand_over(struct db_tx *t, const struct claim_op *op, struct task_claim *c,
                     struct err *e)
{
    if (!op->read)
        return 0;
    c->task = task_new();
    return db_task_read(t, c->id, op->read, c->task, e);
}

static int pick_take_fn(struct db_tx *t, void *ctx, struct err *e)
{
    struct claim_op *op = ctx;
    store_task_claims_free(op->out, op->n); /* a retried closure claims (and reads) afresh */
    op->n = 0;
    int64_t now = db_now_ms();
    struct candidate cands[STORE_CLAIM_BATCH_MAX];
    int rc = pick(t, op, now, cands, e);
    if (rc == 0)
        rc = claimed(op, e);
    for (size_t i = 0; rc == 0 && i < op->n; i++) {
        rc = take(t, op, now, &op->out[i], &cands[i], e);
        if (rc == 0)
            rc = claim_event(t, op, now, &op->out[i], cands[i].old_node, e);
        if (rc == 0)
            rc = hand_over(t, op, &op->out[i], e);
    }
    return rc;
}

/* --- one conditional statement a claim (neither) --- */

/* No row means another claimer won the candidate (or nothing is claimable); a fresh statement
 * sees the next one. */
static int update_fn(struct db_tx *t, void *ctx, struct err *e)
{
    struct claim_op *op = ctx;
    const char *what = "claiming a task";
    op->n = 0;
    int64_t now = db_now_ms();
    struct candidate cand;
    for (int i = 0; i < CLAIM_UPDATE_TRIES; i++) {
        int rc = db_exec_row(
            t, DB_CLAIM_UPDATE,
            DB_ARGS(DB_INT(now), DB_TEXT(op->node), DB_INT(op->lease_ms), DB_TEXT(op->parallel)),
            what, e);
        if (rc != 0 && rc != 1)
            return rc;
        if (rc == 1) {
            claim_from_row(t, &op->out[0], &cand);
            op->out[0].lease_no = cand.lease_no; /* the taken lease's */
            op->n = 1;
            return claim_event(t, op, now, &op->out[0], cand.old_node, e);
        }
    }
    return claimed(op, e);
}

/* The handed tasks' step secrets, opened outside the writer's closure (the engine's thread pays
 * for it, as it did in its own read). */
static int open_handed(struct task_claim *out, size_t n)
{
    struct err e;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (out[i].task && out[i].task->has_steps)
            rc = store_task_open_steps(out[i].task, &e);
    return rc;
}

int store_db_task_claim_batch(struct store *s, const char *node, int64_t lease_ms,
                              const char *parallel, size_t max, unsigned read,
                              struct task_claim *out, size_t *n, struct err *e)
{
    *n = 0;
    if (max == 0)
        return err_set(e, ERR_INVALID_PARAMETER, "store: a claim batch of 0 tasks");
    struct claim_op op = {.node = node, .lease_ms = lease_ms, .out = out};
    op.max = max > STORE_CLAIM_BATCH_MAX ? STORE_CLAIM_BATCH_MAX : max;
    snprintf(op.parallel, sizeof op.parallel, ",%.250s,", parallel ? parallel : "");
    int rc;
    if (db_store_has(s, DB_CAP_SKIP_LOCKED))
        rc = db_run(s, DB_WRITE_ONE, batch_fn, &op, e);
    else if (db_store_has(s, DB_CAP_ONE_WRITER)) {
        op.read = read;
        rc = db_run(s, DB_WRITE, pick_take_fn, &op, e);
    } else {
        rc = db_run(s, DB_WRITE, update_fn, &op, e);
    }
    /* A claim that failed hands nothing over, whatever its closure had read (its commit may have
     * failed after the closure). The secrets fail to open only if the key changed under us:
     * the claim stands and the caller reads the task as it would have, unhanded. */
    if (rc != 0)
        store_task_claims_free(out, op.n);
    else if (open_handed(out, op.n) != 0)
        store_task_claims_free(out, op.n);
    *n = rc == 0 ? op.n : 0;
    return rc;
}

/* A batch of one: the same transaction. */
int store_db_task_claim(struct store *s, const char *node, int64_t lease_ms, const char *parallel,
                        struct task_claim *out, struct err *e)
{
    size_t n;
    return store_db_task_claim_batch(s, node, lease_ms, parallel, 1, 0, out, &n, e);
}
