/* The SQLite store's group commit: every write transaction is a closure run on the one writer
 * connection; closures submitted while a commit is under way are run together in one
 * BEGIN IMMEDIATE ... COMMIT, each inside a savepoint of its own, so one fsync covers them all.
 *
 * Leader/follower, not a writer thread: the submitter that finds no batch running runs one
 * itself (its own closure and whatever queued behind it), so an uncontended write costs no
 * thread hand-off, and there is no thread to start or stop with the store. Submitters that
 * arrive while a batch runs queue up and sleep; when the batch is committed its leader hands the
 * lead to the first still queued and then answers each of its batch. A leader waits a little
 * for the writers active a moment ago that are not queued yet (gather()).
 *
 * A follower sleeps on a futex word of its own job, not on a condition variable of the group's
 * mutex: woken, it returns without taking that mutex. With a condition variable every woken
 * follower first blocked on the mutex the leader held while waking the rest (a second sleep
 * and wake-up per write; __pthread_mutex_cond_lock was 6% of the create path's CPU in perf).
 *
 * Measured with bench/tasks.sh (5,000 one-step no-op tasks, 8 clients, 2 workers): fdatasync
 * calls per task went from 3.1 to 1.3. */
#include <linux/futex.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "store/store_sqlite_int.h"

/* What a queued job's submitter waits for. */
enum job_state { JOB_QUEUED, JOB_LEAD, JOB_DONE };

/* One submitted transaction, on its submitter's stack; touched by the leader only under the
 * group's mutex (queueing) or while its submitter sleeps (running fn, answering). Once state is
 * JOB_DONE the submitter may return at any moment: the leader touches nothing of it after that
 * store but the futex wake on its address (a stale wake-up is harmless to any futex user). */
struct sq_job {
    sq_tx_fn fn;
    const void *in;
    void *out;
    struct err *e; /* the submitter's; may be NULL */
    int rc;
    _Atomic uint32_t state; /* enum job_state; the futex word the submitter sleeps on */
    pthread_t thread;       /* the submitter */
    struct sq_job *next;
};

static void job_wait(struct sq_job *j)
{
    uint32_t st;
    while ((st = atomic_load_explicit(&j->state, memory_order_acquire)) == JOB_QUEUED)
        syscall(SYS_futex, (uint32_t *)&j->state, FUTEX_WAIT_PRIVATE, st, NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *word)
{
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* Answers j: its rc and error are final from here. */
static void job_done(struct sq_job *j)
{
    atomic_store_explicit(&j->state, JOB_DONE, memory_order_release);
    futex_wake(&j->state);
}

/* A leader waits for company: for the writers active a moment ago (submitted or answered
 * within SIBLING_US, or two COMMITs' time when those are slower) that are not queued yet, at
 * most half the last COMMIT's time, and at least GATHER_US, at most GATHER_MAX_US. Two engine
 * workers that claim and record in turn otherwise never share a COMMIT, each arriving while the
 * other's fsync runs; and the HTTP threads of many clients split into two halves that
 * alternate, each half in the other's COMMIT, when the batch starts with whoever is queued.
 * One COMMIT at a time runs on SQLite's one writer, so waiting part of an fsync for the other
 * half costs less than the fsync the other half would pay alone.
 * 5,000 creates alone (POST /v1/tasks, engine off, 16 clients, 2 shared CPUs; two runs of each
 * build back to back): before, a lone leader waiting up to 300 us for one more job, 1530 and
 * 1245 creates/s at 7.6 creates a COMMIT (the disk's fsync took ~3.5 ms then); with this wait
 * 1813 and 1729 creates/s at 10.1 a COMMIT. */
#define GATHER_US     300
#define GATHER_MAX_US 2000
#define SIBLING_US    2000

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

/* Remembers that thread self submitted, or was answered, at now. Under g->mu. */
static void recent_note(struct sq_group *g, pthread_t self, int64_t now)
{
    for (unsigned i = 0; i < SQ_RECENT; i++)
        if (g->recent[i].at_us && pthread_equal(g->recent[i].thread, self)) {
            g->recent[i].at_us = now;
            return;
        }
    g->recent[g->recent_next].thread = self;
    g->recent[g->recent_next].at_us = now;
    g->recent_next = (g->recent_next + 1) % SQ_RECENT;
}

/* How many other threads than this one submitted or were answered within the window, the
 * queued ones included. Under g->mu. */
static unsigned siblings_active(const struct sq_group *g, int64_t now, int64_t window_us)
{
    pthread_t self = pthread_self();
    unsigned n = 0;
    for (unsigned i = 0; i < SQ_RECENT; i++)
        if (g->recent[i].at_us && now - g->recent[i].at_us < window_us &&
            !pthread_equal(g->recent[i].thread, self))
            n++;
    return n;
}

/* Waits while fewer jobs are queued than the writers active a moment ago (the leader and its
 * siblings), as long as the limits above allow. Under g->mu. */
static void gather(struct sq_group *g)
{
    int64_t now = mono_us();
    int64_t window = g->commit_us * 2 > SIBLING_US ? g->commit_us * 2 : SIBLING_US;
    unsigned want = 1 + siblings_active(g, now, window);
    if (g->queued >= want)
        return;
    int64_t wait = g->commit_us / 2;
    wait = wait < GATHER_US ? GATHER_US : wait > GATHER_MAX_US ? GATHER_MAX_US : wait;
    int64_t until_us = now + wait;
    struct timespec until = {.tv_sec = until_us / 1000000, .tv_nsec = until_us % 1000000 * 1000};
    g->gathering = true;
    g->gather_want = want < SQ_BATCH_MAX ? want : SQ_BATCH_MAX;
    while (g->queued < want && g->queued < SQ_BATCH_MAX && mono_us() < until_us)
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
static void batch_run(struct store_sqlite *s, struct sq_job **jobs, size_t n, int64_t *commit_us)
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
        int64_t t0 = mono_us();
        if (sq_commit(c, &be) != 0)
            fail_ok_jobs(jobs + first, i - first, &be);
        else
            atomic_fetch_add(&s->group.commits, 1);
        *commit_us = mono_us() - t0;
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
    g->queued -= (unsigned)n;
    if (!g->head)
        g->tail = NULL;
    return n;
}

/* Leads one batch: called with g->mu held and g->leading set, returns with it released. After
 * the commit the lead passes straight to the first job still queued (g->leading stays set, so
 * no newcomer leads beside it), then each job of this batch is answered outside the mutex. */
static void batch_lead(struct store_sqlite *s, struct sq_group *g)
{
    struct sq_job *jobs[SQ_BATCH_MAX];
    gather(g);
    size_t n = queue_take(g, jobs);
    pthread_mutex_unlock(&g->mu);
    int64_t commit_us = g->commit_us;
    batch_run(s, jobs, n, &commit_us);
    pthread_mutex_lock(&g->mu);
    g->commit_us = commit_us;
    /* A writer answered now may be back with its next write in a moment (the engine's workers
     * and flushers write in turn): counting it active from its answer, not from its submission
     * (which a slow fsync puts out of SIBLING_US), lets the next leader wait for it. */
    int64_t now = mono_us();
    for (size_t i = 0; i < n; i++)
        recent_note(g, jobs[i]->thread, now);
    struct sq_job *next = g->head;
    g->leading = next != NULL;
    if (next)
        atomic_store_explicit(&next->state, JOB_LEAD, memory_order_release);
    pthread_mutex_unlock(&g->mu);
    /* Only the wake-up is left out of the mutex: the next leader may already have seen
     * JOB_LEAD, led, and returned. */
    if (next)
        futex_wake(&next->state);
    for (size_t i = 0; i < n; i++)
        job_done(jobs[i]); /* its submitter may return (and free it) from here */
}

int sq_write_tx(struct store *s, sq_tx_fn fn, const void *in, void *out, struct err *e)
{
    struct store_sqlite *sq = sq_of(s);
    struct sq_group *g = &sq->group;
    struct sq_job job = {.fn = fn, .in = in, .out = out, .e = e, .thread = pthread_self()};
    atomic_init(&job.state, JOB_QUEUED);
    pthread_mutex_lock(&g->mu);
    if (g->tail)
        g->tail->next = &job;
    else
        g->head = &job;
    g->tail = &job;
    g->queued++;
    recent_note(g, job.thread, mono_us());
    if (g->gathering && g->queued >= g->gather_want) /* not each arrival: one wake-up */
        pthread_cond_signal(&g->grew);
    bool lead = !g->leading;
    g->leading = true;
    if (!lead)
        pthread_mutex_unlock(&g->mu);
    for (;;) {
        if (lead) { /* g->mu is held */
            atomic_store_explicit(&job.state, JOB_QUEUED, memory_order_relaxed);
            batch_lead(sq, g);
        }
        job_wait(&job);
        if (atomic_load_explicit(&job.state, memory_order_acquire) == JOB_DONE)
            break;
        lead = true; /* JOB_LEAD: handed the lead of the next batch, which holds this job */
        pthread_mutex_lock(&g->mu);
    }
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
