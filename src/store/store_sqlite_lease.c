/* The SQLite store's engine side: claims with leases, renewals, fenced progress, operator verbs. */
#include <stdio.h>
#include <string.h>

#include "store/store_plan.h"
#include "store/store_sqlite_int.h"

/* --- claim --- */

struct claim_in {
    const char *node;
    int64_t lease_ms;
    const char *parallel; /* products exempt from one-at-a-time per instance; NULL = none */
};

struct candidate {
    char id[STORE_ID_MAX];
    char product[16];
    enum task_state state;
    char old_node[128];
    int64_t lease_no; /* before the claim */
};

/* The oldest runnable tasks, up to max, in creation order. One on an instance waits while an
 * earlier task of its product and instance is unfinished (a paused one too: it still holds the
 * instance), unless ?2, a list ",p,q,", names its product; tasks_instance_open makes that check
 * one index probe (INDEXED BY: a query that stops matching its WHERE fails to prepare instead
 * of walking the instance's history). The check reads the rows as they were before this claim, so a
 * batch holds at most one task per instance: a second one has the first (still initial) before it.
 * INDEXED BY tasks_runnable: walked in created_ms order the first max matches end the search.
 * Left to itself the planner takes tasks_state (state = ?), reads every queued task and sorts
 * them in a temporary b-tree for each claim: with 5,000 queued no-op tasks, 13% of asyncd's CPU
 * samples and more in the heap trims that temporary b-tree's memory caused (perf, issue 11).
 * Every candidate is read before any is taken: no UPDATE runs under an open SELECT. */
static int claim_pick(struct sq_conn *c, const struct claim_in *in, int64_t now, size_t max,
                      struct candidate *cands, size_t *n, struct err *e)
{
    sqlite3_stmt *st;
    int rc = sq_stmt(
        c, SQ_CLAIM_PICK,
        "SELECT id, state, lease_node, lease_no, product FROM tasks t INDEXED BY tasks_runnable"
        " WHERE state IN ('initial', 'running') AND not_before_ms <= ?1 AND driver = 'engine'"
        " AND NOT (remote_kind IS NOT NULL AND remote_lease_no = lease_no AND pause_requested = 0)"
        " AND (lease_expires_ms IS NULL OR lease_expires_ms <= ?1)"
        " AND (t.instance_id IS NULL OR instr(?2, ',' || t.product || ',') > 0"
        " OR NOT EXISTS (SELECT 1 FROM tasks o INDEXED BY tasks_instance_open"
        " WHERE o.product = t.product AND o.instance_id = t.instance_id"
        " AND " SQ_STATES_OPEN /* unqualified: o's, the innermost */
        " AND o.created_ms <= t.created_ms"
        " AND (o.created_ms < t.created_ms OR o.rowid < t.rowid)))"
        " ORDER BY created_ms, rowid LIMIT ?3",
        &st, e);
    if (rc != 0)
        return rc;
    char parallel[256];
    snprintf(parallel, sizeof parallel, ",%.250s,", in->parallel ? in->parallel : "");
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_text(st, 2, parallel, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)max);
    int r = SQLITE_DONE;
    *n = 0;
    while (*n < max && (r = sqlite3_step(st)) == SQLITE_ROW) {
        struct candidate *cand = &cands[(*n)++];
        sq_copy(cand->id, sizeof cand->id, sqlite3_column_text(st, 0));
        const char *word = (const char *)sqlite3_column_text(st, 1);
        cand->state = word && strcmp(word, "initial") == 0 ? TASK_INITIAL : TASK_RUNNING;
        sq_copy(cand->old_node, sizeof cand->old_node, sqlite3_column_text(st, 2));
        cand->lease_no = sqlite3_column_int64(st, 3);
        sq_copy(cand->product, sizeof cand->product, sqlite3_column_text(st, 4));
    }
    if (*n < max && r != SQLITE_DONE)
        rc = sq_fail(c, e, "looking for runnable tasks");
    else if (*n == 0)
        rc = err_set(e, ERR_NOT_FOUND, "no runnable task");
    sq_done(st);
    return rc;
}

/* Takes the lease; its number is the candidate's plus one, as read in this same transaction (no
 * RETURNING: SQLite builds and frees a temporary table per statement for it, and perf showed
 * that memory freed back to the kernel on each claim). */
static int claim_take(struct sq_conn *c, const struct claim_in *in, int64_t now,
                      const struct candidate *cand, struct task_claim *out, struct err *e)
{
    sqlite3_stmt *st;
    int rc = sq_stmt(c, SQ_CLAIM_TAKE,
                     "UPDATE tasks SET state = 'running',"
                     " start_ms = COALESCE(start_ms, ?2), lease_node = ?3,"
                     " lease_expires_ms = ?2 + ?4, lease_no = ?5 WHERE id = ?1",
                     &st, e);
    if (rc != 0)
        return rc;
    sq_bind_text(st, 1, cand->id);
    sqlite3_bind_int64(st, 2, now);
    sq_bind_text(st, 3, in->node);
    sqlite3_bind_int64(st, 4, in->lease_ms);
    sqlite3_bind_int64(st, 5, cand->lease_no + 1);
    if (sqlite3_step(st) != SQLITE_DONE) {
        rc = sq_fail(c, e, "claiming a task");
    } else if (sqlite3_changes(c->db) != 1) {
        rc = err_set(e, ERR_INTERNAL, "store: task %s vanished while being claimed", cand->id);
    } else {
        snprintf(out->id, sizeof out->id, "%s", cand->id);
        snprintf(out->product, sizeof out->product, "%s", cand->product);
        out->lease_no = cand->lease_no + 1;
        out->from = cand->state;
        out->taken_over = cand->state == TASK_RUNNING && cand->old_node[0];
    }
    sq_done(st);
    return rc;
}

/* Every claim is in the history with its lease number, so overlapping leases can be audited. */
static int claim_event(struct sq_conn *c, const struct claim_in *in, int64_t now,
                       const struct candidate *cand, const struct task_claim *out, struct err *e)
{
    char msg[256];
    if (cand->state == TASK_INITIAL)
        snprintf(msg, sizeof msg, "started; lease %lld", (long long)out->lease_no);
    else if (cand->old_node[0])
        snprintf(msg, sizeof msg, "lease of %.100s expired; taken over, lease %lld", cand->old_node,
                 (long long)out->lease_no);
    else
        snprintf(msg, sizeof msg, "claimed; lease %lld", (long long)out->lease_no);
    return sq_event_append(c, out->id, now, (int)cand->state, TASK_RUNNING, in->node, msg, e);
}

struct claim_out {
    struct task_claim *claims;
    size_t max, n;
};

static int claim_tx(struct sq_conn *c, const void *inp, void *outp, struct err *e)
{
    const struct claim_in *in = inp;
    struct claim_out *out = outp;
    int64_t now = sq_now_ms();
    struct candidate cands[STORE_CLAIM_BATCH_MAX];
    size_t n = 0;
    int rc = claim_pick(c, in, now, out->max, cands, &n, e);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = claim_take(c, in, now, &cands[i], &out->claims[i], e);
        if (rc == 0)
            rc = claim_event(c, in, now, &cands[i], &out->claims[i], e);
    }
    out->n = rc == 0 ? n : 0;
    return rc;
}

int store_sqlite_task_claim_batch(struct store *s, const char *node, int64_t lease_ms,
                                  const char *parallel, size_t max, struct task_claim *out,
                                  size_t *n, struct err *e)
{
    *n = 0;
    if (max == 0)
        return err_set(e, ERR_INVALID_PARAMETER, "store: a claim batch of 0 tasks");
    struct claim_in in = {node, lease_ms, parallel};
    struct claim_out co = {out, max > STORE_CLAIM_BATCH_MAX ? STORE_CLAIM_BATCH_MAX : max, 0};
    int rc = sq_write_tx(s, claim_tx, &in, &co, e);
    *n = rc == 0 ? co.n : 0;
    return rc;
}

/* A batch of one: the same transaction. */
int store_sqlite_task_claim(struct store *s, const char *node, int64_t lease_ms,
                            const char *parallel, struct task_claim *out, struct err *e)
{
    size_t n;
    return store_sqlite_task_claim_batch(s, node, lease_ms, parallel, 1, out, &n, e);
}

/* --- fenced progress --- */

/* The task's state, current step and lease in the caller's transaction. */
static int row_read(struct sq_conn *c, enum sq_slot slot, const char *id, struct task_row *row,
                    struct err *e)
{
    sqlite3_stmt *st;
    int rc = sq_stmt(c, slot,
                     "SELECT state, current_step, lease_no,"
                     " COALESCE(lease_expires_ms, 0), driver = 'external', phase = 'undo'"
                     " FROM tasks WHERE id = ?1",
                     &st, e);
    if (rc != 0)
        return rc;
    sq_bind_text(st, 1, id);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        const char *word = (const char *)sqlite3_column_text(st, 0);
        if (!word || task_state_parse(word, &row->state) != 0)
            rc = err_set(e, ERR_INTERNAL, "store: task %s has an unknown state", id);
        row->step = sqlite3_column_int64(st, 1);
        row->lease_no = sqlite3_column_int64(st, 2);
        row->lease_expires_ms = sqlite3_column_int64(st, 3);
        row->external = sqlite3_column_int(st, 4) != 0;
        row->undoing = sqlite3_column_int(st, 5) != 0;
    } else if (r == SQLITE_DONE) {
        rc = err_set(e, ERR_NOT_FOUND, "no task %s", id);
    } else {
        rc = sq_fail(c, e, "reading a task");
    }
    sq_done(st);
    return rc;
}

/* Sets a step's state (and message); when only_if is given, only a step in that state changes. */
static int step_set(struct sq_conn *c, enum sq_slot slot, const char *id, int64_t idx,
                    const char *state, const char *message, const char *only_if, const char *output,
                    struct err *e)
{
    sqlite3_stmt *st;
    int rc = sq_stmt(c, slot,
                     "UPDATE task_steps SET state = ?3, message = CASE WHEN ?4 IS NULL"
                     " THEN message WHEN ?4 = '' THEN NULL ELSE ?4 END,"
                     " output = COALESCE(?6, output)"
                     " WHERE task_id = ?1 AND idx = ?2 AND (?5 IS NULL OR state = ?5)",
                     &st, e);
    if (rc != 0)
        return rc;
    sq_bind_text(st, 1, id);
    sqlite3_bind_int64(st, 2, idx);
    sq_bind_text(st, 3, state);
    sq_bind_text(st, 4, message);
    sq_bind_text(st, 5, only_if);
    sq_bind_text(st, 6, output);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = sq_fail(c, e, "updating a task step");
    sq_done(st);
    return rc;
}

static int progress_update(struct sq_conn *c, const struct task_progress *p, int64_t now,
                           struct err *e)
{
    sqlite3_stmt *st;
    int rc = sq_stmt(c, SQ_PROGRESS_TASK,
                     "UPDATE tasks SET state = ?2,"
                     " end_ms = CASE WHEN ?3 THEN ?4 ELSE end_ms END,"
                     " info = CASE WHEN ?5 IS NULL THEN info WHEN ?5 = '' THEN NULL ELSE ?5 END,"
                     " current_step = CASE WHEN ?6 = -2 THEN current_step ELSE ?6 END,"
                     " phase = COALESCE(?7, phase),"
                     " attempt = CASE WHEN ?8 < 0 THEN attempt ELSE ?8 END, not_before_ms = ?9,"
                     " lease_node = CASE WHEN ?10 THEN NULL ELSE lease_node END,"
                     " lease_expires_ms = CASE WHEN ?10 THEN NULL ELSE lease_expires_ms END,"
                     " pause_requested = CASE WHEN ?2 = 'running' THEN pause_requested ELSE 0 END"
                     " WHERE id = ?1",
                     &st, e);
    if (rc != 0)
        return rc;
    sq_bind_text(st, 1, p->id);
    sq_bind_text(st, 2, task_state_name(p->to));
    sqlite3_bind_int(st, 3, task_state_is_final(p->to));
    sqlite3_bind_int64(st, 4, now);
    sq_bind_text(st, 5, p->info);
    sqlite3_bind_int64(st, 6, p->next_step);
    sq_bind_text(st, 7, p->phase);
    sqlite3_bind_int64(st, 8, p->attempt);
    sqlite3_bind_int64(st, 9, p->not_before_ms);
    sqlite3_bind_int(st, 10, p->release);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = sq_fail(c, e, "recording task progress");
    sq_done(st);
    return rc;
}

/* A progress write's checks, which come before it writes anything: 0, or why it is refused. */
static int progress_check(struct sq_conn *c, const struct task_progress *p, struct err *e)
{
    struct task_row row;
    int rc = row_read(c, SQ_LEASE_READ, p->id, &row, e);
    return rc != 0 ? rc : store_progress_allowed(p, &row, e);
}

/* The writes of a checked progress write: its step, its task row, its event. */
static int progress_write(struct sq_conn *c, const struct task_progress *p, struct err *e)
{
    int64_t now = sq_now_ms();
    int rc = 0;
    if (p->step >= 0 && p->step_state)
        rc = step_set(c, SQ_PROGRESS_STEP, p->id, p->step, p->step_state, p->message, NULL,
                      p->step_output, e);
    if (rc == 0)
        rc = progress_update(c, p, now, e);
    if (rc == 0 && (p->to != TASK_RUNNING || p->event))
        rc = sq_event_append(c, p->id, now, TASK_RUNNING, p->to, p->node,
                             p->event_message ? p->event_message : p->message, e);
    return rc;
}

static int progress_tx(struct sq_conn *c, const void *inp, void *outp, struct err *e)
{
    (void)outp;
    const struct task_progress *p = inp;
    int rc = progress_check(c, p, e);
    return rc != 0 ? rc : progress_write(c, p, e);
}

int store_sqlite_task_progress(struct store *s, const struct task_progress *p, struct err *e)
{
    int rc = store_progress_args_check(p, e);
    if (rc != 0)
        return rc;
    return sq_write_tx(s, progress_tx, p, NULL, e);
}

struct progress_batch {
    const struct task_progress *ps;
    size_t n;
    int *rcs; /* each write's outcome; -1: not tried (its arguments were refused before) */
};

/* One write of a batch. A refused one is refused by its checks, before it writes anything, so it
 * needs no savepoint of its own to leave the others' effects alone; a write that fails once it
 * has begun writing fails the whole batch (nonzero), which the engine then writes one by one
 * (engine_flush.c). A savepoint per item (SAVEPOINT, RELEASE) was 10% of the engine's CPU
 * draining 20,000 no-op tasks (perf, 2 CPUs). */
static int progress_item(struct sq_conn *c, const struct task_progress *p, int *rc_out,
                         struct err *e)
{
    struct err ie = {0};
    *rc_out = progress_check(c, p, &ie);
    if (sqlite3_get_autocommit(c->db))
        return err_set(e, ERR_INTERNAL, "store: a batched write ended its transaction: %s", ie.msg);
    if (*rc_out != 0)
        return 0;
    *rc_out = progress_write(c, p, e);
    return *rc_out;
}

static int progress_batch_tx(struct sq_conn *c, const void *inp, void *outp, struct err *e)
{
    (void)outp;
    const struct progress_batch *b = inp;
    for (size_t i = 0; i < b->n; i++) {
        if (b->rcs[i] != -1)
            continue;
        int rc = progress_item(c, &b->ps[i], &b->rcs[i], e);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int store_sqlite_task_progress_batch(struct store *s, const struct task_progress *ps, size_t n,
                                     int *rcs, struct err *e)
{
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        struct err ae;
        rcs[i] = store_progress_args_check(&ps[i], &ae) != 0 ? ae.code : -1;
        any = any || rcs[i] == -1;
    }
    if (!any)
        return 0;
    struct progress_batch b = {ps, n, rcs};
    int rc = sq_write_tx(s, progress_batch_tx, &b, NULL, e);
    for (size_t i = 0; i < n; i++) {
        struct err ae;
        if (rc != 0 && store_progress_args_check(&ps[i], &ae) == 0)
            rcs[i] = rc; /* rolled back with the transaction */
        else if (rcs[i] == -1)
            rcs[i] = ERR_INTERNAL;
    }
    return rc;
}
