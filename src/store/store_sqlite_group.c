/* The SQLite store's group commit: every write transaction is a closure run on the one writer
 * connection; closures submitted while a commit is under way are run together in one
 * BEGIN IMMEDIATE ... COMMIT, each inside a savepoint of its own, so one fsync covers them all.
 *
 * Leader/follower, not a writer thread: the submitter that finds no batch running runs one
 * itself (its own closure and whatever queued behind it), so an uncontended write costs no
 * thread hand-off, and there is no thread to start or stop with the store. Submitters that
 * arrive while a batch runs queue up and sleep; when the batch is committed its leader answers
 * each of them and wakes the first still queued, which leads the next batch. A leader alone in
 * the queue while another writer was active a moment ago waits a little for it (gather()).
 *
 * Measured with bench/tasks.sh (5,000 one-step no-op tasks, 8 clients, 2 workers): fdatasync
 * calls per task went from 3.1 to 1.3. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "store/store_sqlite_int.h"

/* One submitted transaction, on its submitter's stack; touched by the leader only under the
 * group's mutex (queueing, answering) or while its submitter sleeps (running fn). */
struct sq_job {
    sq_tx_fn fn;
    const void *in;
    void *out;
    struct err *e; /* the submitter's; may be NULL */
    int rc;
    bool done;
    pthread_cond_t cv; /* signalled when done, or when this job is to lead the next batch */
    struct sq_job *next;
};

/* A lone job waits this long for company when another writer is active (submitted within
 * SIBLING_US): two engine workers that claim and record in turn otherwise never share a COMMIT,
 * each arriving while the other's fsync runs, and pay one fsync per transaction. */
#define GATHER_US  300
#define SIBLING_US 2000

void sq_group_init(struct sq_group *g)
{
    memset(g, 0, sizeof *g);
    pthread_mutex_init(&g->mu, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&g->grew, &attr);
    pthread_condattr_destroy(&attr);
    atomic_init(&g->commits, 0);
    atomic_init(&g->txs, 0);
}

void sq_group_destroy(struct sq_group *g)
{
    pthread_cond_destroy(&g->grew);
    pthread_mutex_destroy(&g->mu);
}

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Remembers that this thread submitted at now. Under g->mu. */
static void recent_note(struct sq_group *g, int64_t now)
{
    pthread_t self = pthread_self();
    for (unsigned i = 0; i < SQ_RECENT; i++)
        if (g->recent[i].at_us && pthread_equal(g->recent[i].thread, self)) {
            g->recent[i].at_us = now;
            return;
        }
    g->recent[g->recent_next].thread = self;
    g->recent[g->recent_next].at_us = now;
    g->recent_next = (g->recent_next + 1) % SQ_RECENT;
}

/* Whether another thread than this one submitted within SIBLING_US. Under g->mu. */
static bool sibling_active(const struct sq_group *g, int64_t now)
{
    pthread_t self = pthread_self();
    for (unsigned i = 0; i < SQ_RECENT; i++)
        if (g->recent[i].at_us && now - g->recent[i].at_us < SIBLING_US &&
            !pthread_equal(g->recent[i].thread, self))
            return true;
    return false;
}

/* With only the leader's own job queued while another writer is active, waits up to GATHER_US
 * for a second one. Under g->mu. */
static void gather(struct sq_group *g)
{
    int64_t now = mono_us();
    if (g->head != g->tail || !sibling_active(g, now))
        return;
    int64_t until_us = now + GATHER_US;
    struct timespec until = {.tv_sec = until_us / 1000000, .tv_nsec = until_us % 1000000 * 1000};
    g->gathering = true;
    while (g->head == g->tail && mono_us() < until_us)
        if (pthread_cond_timedwait(&g->grew, &g->mu, &until) != 0)
            break;
    g->gathering = false;
}

void sq_write_stats(struct store *s, uint64_t *commits, uint64_t *txs)
{
    struct sq_group *g = &sq_of(s)->group;
    *commits = atomic_load(&g->commits);
    *txs = atomic_load(&g->txs);
}

static void err_copy(struct err *dst, const struct err *src)
{
    if (dst)
        *dst = *src;
}

/* Fails every job of jobs[0..n) that has not failed on its own, with e. */
static void fail_ok_jobs(struct sq_job **jobs, size_t n, const struct err *e)
{
    for (size_t i = 0; i < n; i++)
        if (jobs[i]->rc == 0) {
            jobs[i]->rc = e->code;
            err_copy(jobs[i]->e, e);
        }
}

/* Runs one job inside a savepoint of its own: its effects stay when it returns 0, and are undone
 * without touching the batch's other jobs when it fails, so no closure ever sees a failed one's
 * partial writes. A job alone in its transaction needs no savepoint: when it fails the whole
 * transaction is rolled back. (Each savepoint costs SQLite a bitmap allocated and freed; perf
 * showed that free trimming the thread's heap on most uncontended writes.) Returns false when
 * the transaction is gone (rolled back for an alone job's failure, or by SQLite itself on some
 * errors, e.g. SQLITE_FULL or an I/O error). */
static bool job_run(struct sq_conn *c, struct sq_job *j, bool alone)
{
    struct err se = {0};
    if (!alone && sq_exec_slot(c, SQ_SAVEPOINT, "SAVEPOINT job", "opening a savepoint", &se) != 0) {
        j->rc = se.code;
        err_copy(j->e, &se);
        return !sqlite3_get_autocommit(c->db);
    }
    j->rc = j->fn(c, j->in, j->out, j->e);
    if (sqlite3_get_autocommit(c->db)) {
        if (j->rc == 0)
            j->rc =
                err_set(j->e, ERR_INTERNAL, "store: a write transaction ended inside its closure");
        return false;
    }
    if (alone) {
        if (j->rc != 0)
            sq_rollback(c);
        return j->rc == 0;
    }
    if (j->rc == 0 && sq_exec_slot(c, SQ_RELEASE, "RELEASE job", "releasing a savepoint", &se) == 0)
        return true;
    if (j->rc == 0) {
        j->rc = se.code;
        err_copy(j->e, &se);
    }
    if (sq_exec_slot(c, SQ_ROLLBACK_TO, "ROLLBACK TO job", "undoing a failed write", NULL) != 0 ||
        sq_exec_slot(c, SQ_RELEASE, "RELEASE job", "releasing a savepoint", NULL) != 0) {
        sq_rollback(c);
        return false;
    }
    return true;
}

/* Runs jobs[0..n) on the writer, as few transactions as it takes (one unless SQLite itself ends
 * one), and sets each job's rc. A job counts as done only once the COMMIT that holds it has
 * returned: with synchronous=FULL that is after the WAL's fsync, so nothing is acknowledged that
 * a crash or a power loss could take back. */
static void batch_run(struct store_sqlite *s, struct sq_job **jobs, size_t n)
{
    struct sq_conn *c = sq_writer_acquire(s);
    size_t i = 0;
    while (i < n) {
        size_t first = i;
        struct err be = {0};
        if (sq_begin_write(c, &be) != 0) {
            fail_ok_jobs(jobs + i, n - i, &be);
            break;
        }
        bool intact = true, alone = n - first == 1;
        while (i < n && intact)
            intact = job_run(c, jobs[i++], alone);
        if (!intact) {
            /* The jobs before the one that ended the transaction were rolled back with it. */
            err_set(&be, ERR_SERVICE_UNAVAILABLE,
                    "store: this write was rolled back with the batch it was committed in, "
                    "because another write in it failed: %s; retry",
                    jobs[i - 1]->e ? jobs[i - 1]->e->msg : "(no message)");
            fail_ok_jobs(jobs + first, i - first, &be);
            continue;
        }
        /* The batch's one fsync. A failed COMMIT fails every job in it. */
        if (sq_commit(c, &be) != 0)
            fail_ok_jobs(jobs + first, i - first, &be);
        else
            atomic_fetch_add(&s->group.commits, 1);
    }
    atomic_fetch_add(&s->group.txs, n);
    sq_release(c);
}

/* Takes up to SQ_BATCH_MAX jobs off the queue into jobs; returns how many. Under g->mu. */
static size_t queue_take(struct sq_group *g, struct sq_job **jobs)
{
    size_t n = 0;
    while (g->head && n < SQ_BATCH_MAX) {
        jobs[n++] = g->head;
        g->head = g->head->next;
    }
    if (!g->head)
        g->tail = NULL;
    return n;
}

/* Leads one batch: called and returns with g->mu held, drops it while the batch runs. */
static void batch_lead(struct store_sqlite *s, struct sq_group *g)
{
    struct sq_job *jobs[SQ_BATCH_MAX];
    g->leading = true;
    gather(g);
    size_t n = queue_take(g, jobs);
    pthread_mutex_unlock(&g->mu);
    batch_run(s, jobs, n);
    pthread_mutex_lock(&g->mu);
    for (size_t i = 0; i < n; i++) {
        jobs[i]->done = true;
        pthread_cond_signal(&jobs[i]->cv); /* its submitter may return (and free it) from here */
    }
    g->leading = false;
    if (g->head)
        pthread_cond_signal(&g->head->cv); /* the next batch's leader */
}

int sq_write_tx(struct store *s, sq_tx_fn fn, const void *in, void *out, struct err *e)
{
    struct store_sqlite *sq = sq_of(s);
    struct sq_group *g = &sq->group;
    struct sq_job job = {.fn = fn, .in = in, .out = out, .e = e};
    pthread_cond_init(&job.cv, NULL);
    pthread_mutex_lock(&g->mu);
    if (g->tail)
        g->tail->next = &job;
    else
        g->head = &job;
    g->tail = &job;
    recent_note(g, mono_us());
    if (g->gathering)
        pthread_cond_signal(&g->grew);
    while (!job.done) {
        if (g->leading)
            pthread_cond_wait(&job.cv, &g->mu);
        else
            batch_lead(sq, g);
    }
    pthread_mutex_unlock(&g->mu);
    pthread_cond_destroy(&job.cv);
    return job.rc;
}

size_t sq_write_queued(struct store *s)
{
    struct sq_group *g = &sq_of(s)->group;
    size_t n = 0;
    pthread_mutex_lock(&g->mu);
    for (const struct sq_job *j = g->head; j; j = j->next)
        n++;
    pthread_mutex_unlock(&g->mu);
    return n;
}
