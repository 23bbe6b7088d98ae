/* Unit tests for the SQLite store's group commit (store_sqlite_group.c): concurrent write
 * transactions share one COMMIT, each inside its own savepoint, and no submitter is answered
 * before the COMMIT that holds its transaction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store_sqlite_int.h"

struct fixture {
    char dir[64];
    char path[96];
    struct store *s;
};

static int exec_tx(struct sq_conn *c, const void *in, void *out, struct err *e)
{
    (void)out;
    return sqlite3_exec(c->db, in, NULL, NULL, NULL) == SQLITE_OK ? 0 : sq_fail(c, e, "test DDL");
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test_sqlite_group.XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof f->path, "%s/asyncd.db", f->dir);
    struct err e = {0};
    if (store_sqlite_open(f->path, &f->s, &e) != 0) {
        fprintf(stderr, "store_sqlite_open: %s\n", e.msg);
        return -1;
    }
    /* child's deferred foreign key is checked only at COMMIT: a way to make a COMMIT fail */
    const char *ddl = "CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER);"
                      "CREATE TABLE parent (id INTEGER PRIMARY KEY);"
                      "CREATE TABLE child (id INTEGER REFERENCES parent(id)"
                      " DEFERRABLE INITIALLY DEFERRED);";
    if (sq_write_tx(f->s, exec_tx, ddl, NULL, &e) != 0) {
        fprintf(stderr, "creating the test tables: %s\n", e.msg);
        return -1;
    }
    *state = f;
    return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    store_close(f->s);
    nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

/* Rows of t with key k (k NULL: all rows), read on a connection of its own: what is committed. */
static int64_t committed_rows(const char *path, const char *k)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(
        sqlite3_prepare_v2(db, "SELECT count(*) FROM t WHERE ?1 IS NULL OR k = ?1", -1, &st, NULL),
        SQLITE_OK);
    sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

static int64_t rows_on(struct sq_conn *c, const char *k)
{
    sqlite3_stmt *st;
    assert_int_equal(
        sqlite3_prepare_v2(c->db, "SELECT count(*) FROM t WHERE k = ?1", -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

/* ---- closures ---- */

struct put_in {
    const char *k;
    struct store *s;
    int fail_with;        /* after the insert: 0 = succeed, else return this ERR_* */
    const char *must_not; /* a key this closure must not see (a failed closure's row) */
    int64_t *seen;        /* out: rows with key must_not seen */
};

/* Inserts k; out (uint64_t *, may be NULL) gets the COMMITs done when the closure ran. */
static int put_tx(struct sq_conn *c, const void *inp, void *out, struct err *e)
{
    const struct put_in *in = inp;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(c->db, "INSERT INTO t(k, v) VALUES(?1, 1)", -1, &st, NULL) != SQLITE_OK)
        return sq_fail(c, e, "preparing the test insert");
    sqlite3_bind_text(st, 1, in->k, -1, SQLITE_STATIC);
    int r = sqlite3_step(st);
    sqlite3_finalize(st);
    if (r != SQLITE_DONE)
        return sq_fail(c, e, "the test insert");
    if (in->must_not && in->seen)
        *in->seen = rows_on(c, in->must_not);
    if (out) {
        uint64_t txs;
        sq_write_stats(in->s, out, &txs);
    }
    if (in->fail_with)
        return err_set(e, in->fail_with, "closure %s fails on purpose", in->k);
    return 0;
}

/* Inserts a child whose parent does not exist: the deferred key fails the COMMIT. */
static int orphan_tx(struct sq_conn *c, const void *in, void *out, struct err *e)
{
    (void)in, (void)out;
    return sqlite3_exec(c->db, "INSERT INTO child(id) VALUES(42)", NULL, NULL, NULL) == SQLITE_OK
               ? 0
               : sq_fail(c, e, "inserting the orphan");
}

/* Holds the batch it leads until released: the transactions submitted meanwhile queue up. */
static atomic_bool hold_running, hold_release;

static int hold_tx(struct sq_conn *c, const void *in, void *out, struct err *e)
{
    (void)c, (void)in, (void)out, (void)e;
    atomic_store(&hold_running, true);
    while (!atomic_load(&hold_release))
        usleep(1000);
    return 0;
}

/* ---- a submitting thread ---- */

struct submit {
    struct store *s;
    sq_tx_fn fn;
    const void *in;
    void *out;
    pthread_t th;
    struct err e;
    int rc;
};

static void *submit_main(void *arg)
{
    struct submit *t = arg;
    t->rc = sq_write_tx(t->s, t->fn, t->in, t->out, &t->e);
    return NULL;
}

static void submit_start(struct submit *t)
{
    assert_int_equal(pthread_create(&t->th, NULL, submit_main, t), 0);
}

static void wait_until_queued(struct store *s, size_t n)
{
    for (int i = 0; i < 5000 && sq_write_queued(s) < n; i++)
        usleep(1000);
    assert_int_equal(sq_write_queued(s), n);
}

/* Starts a held batch; the transactions submitted until hold_end() form the next one. */
static void hold_begin(struct store *s, struct submit *hold)
{
    atomic_store(&hold_running, false);
    atomic_store(&hold_release, false);
    *hold = (struct submit){.s = s, .fn = hold_tx};
    submit_start(hold);
    for (int i = 0; i < 5000 && !atomic_load(&hold_running); i++)
        usleep(1000);
    assert_true(atomic_load(&hold_running));
}

static void hold_end(struct submit *hold)
{
    atomic_store(&hold_release, true);
    pthread_join(hold->th, NULL);
    assert_int_equal(hold->rc, 0);
}

/* ---- tests ---- */

#define WRITERS    16
#define PER_WRITER 40

struct writer {
    struct fixture *f;
    int no;
    pthread_t th;
    atomic_int failures;
};

/* Each write, once answered, must be committed: visible on a connection of the thread's own,
 * and a COMMIT must have completed after the closure ran. */
static void *writer_main(void *arg)
{
    struct writer *w = arg;
    for (int i = 0; i < PER_WRITER; i++) {
        char k[32];
        snprintf(k, sizeof k, "w%d-%d", w->no, i);
        struct put_in in = {.k = k, .s = w->f->s};
        uint64_t commits_then = 0, commits_now, txs;
        struct err e = {0};
        int rc = sq_write_tx(w->f->s, put_tx, &in, &commits_then, &e);
        sq_write_stats(w->f->s, &commits_now, &txs);
        if (rc != 0 || committed_rows(w->f->path, k) != 1 || commits_now <= commits_then) {
            fprintf(stderr, "writer %d row %d: rc %d (%s), commits %llu then %llu now\n", w->no, i,
                    rc, e.msg, (unsigned long long)commits_then, (unsigned long long)commits_now);
            atomic_fetch_add(&w->failures, 1);
        }
    }
    return NULL;
}

static void test_concurrent_writers_all_commit_in_fewer_commits(void **state)
{
    struct fixture *f = *state;
    uint64_t commits0, txs0, commits1, txs1;
    sq_write_stats(f->s, &commits0, &txs0);
    struct writer w[WRITERS];
    for (int i = 0; i < WRITERS; i++) {
        w[i] = (struct writer){.f = f, .no = i};
        atomic_init(&w[i].failures, 0);
        assert_int_equal(pthread_create(&w[i].th, NULL, writer_main, &w[i]), 0);
    }
    int failures = 0;
    for (int i = 0; i < WRITERS; i++) {
        pthread_join(w[i].th, NULL);
        failures += atomic_load(&w[i].failures);
    }
    assert_int_equal(failures, 0);
    assert_int_equal(committed_rows(f->path, NULL), WRITERS * PER_WRITER);
    sq_write_stats(f->s, &commits1, &txs1);
    assert_int_equal(txs1 - txs0, WRITERS * PER_WRITER);
    /* 16 writers at once: batches form, so there are fewer COMMITs than transactions. */
    fprintf(stderr, "  %d transactions in %llu commits\n", WRITERS * PER_WRITER,
            (unsigned long long)(commits1 - commits0));
    assert_true(commits1 - commits0 < txs1 - txs0);
}

static void test_failing_closure_is_undone_alone(void **state)
{
    struct fixture *f = *state;
    uint64_t commits0, txs0, commits1, txs1;
    int64_t seen = -1;
    struct put_in a = {.k = "a", .s = f->s};
    struct put_in b = {.k = "b", .s = f->s, .fail_with = ERR_CONFLICT};
    struct put_in c = {.k = "c", .s = f->s, .must_not = "b", .seen = &seen};
    struct submit hold, ta = {.s = f->s, .fn = put_tx, .in = &a},
                        tb = {.s = f->s, .fn = put_tx, .in = &b},
                        tc = {.s = f->s, .fn = put_tx, .in = &c};
    hold_begin(f->s, &hold);
    sq_write_stats(f->s, &commits0, &txs0);
    submit_start(&ta);
    wait_until_queued(f->s, 1);
    submit_start(&tb);
    wait_until_queued(f->s, 2);
    submit_start(&tc);
    wait_until_queued(f->s, 3);
    hold_end(&hold);
    pthread_join(ta.th, NULL);
    pthread_join(tb.th, NULL);
    pthread_join(tc.th, NULL);
    sq_write_stats(f->s, &commits1, &txs1);
    /* one COMMIT for the held batch, one for a, b and c together */
    assert_int_equal(commits1 - commits0, 2);
    assert_int_equal(txs1 - txs0, 4);
    assert_int_equal(ta.rc, 0);
    assert_int_equal(tb.rc, ERR_CONFLICT);
    assert_string_equal(tb.e.msg, "closure b fails on purpose");
    assert_int_equal(tc.rc, 0);
    assert_int_equal(seen, 0); /* c ran after b in the batch and did not see b's insert */
    assert_int_equal(committed_rows(f->path, "a"), 1);
    assert_int_equal(committed_rows(f->path, "b"), 0);
    assert_int_equal(committed_rows(f->path, "c"), 1);
}

static void test_commit_failure_fails_the_whole_batch(void **state)
{
    struct fixture *f = *state;
    struct put_in a = {.k = "a", .s = f->s};
    struct submit hold, ta = {.s = f->s, .fn = put_tx, .in = &a}, to = {.s = f->s, .fn = orphan_tx};
    hold_begin(f->s, &hold);
    submit_start(&ta);
    wait_until_queued(f->s, 1);
    submit_start(&to);
    wait_until_queued(f->s, 2);
    hold_end(&hold);
    pthread_join(ta.th, NULL);
    pthread_join(to.th, NULL);
    assert_int_equal(ta.rc, ERR_INTERNAL);
    assert_int_equal(to.rc, ERR_INTERNAL);
    assert_non_null(strstr(ta.e.msg, "committing"));
    assert_non_null(strstr(ta.e.msg, "FOREIGN KEY"));
    assert_string_equal(ta.e.msg, to.e.msg);
    assert_int_equal(committed_rows(f->path, "a"), 0);
    /* the writer is usable again afterwards */
    struct put_in d = {.k = "d", .s = f->s};
    struct err e = {0};
    assert_int_equal(sq_write_tx(f->s, put_tx, &d, NULL, &e), 0);
    assert_int_equal(committed_rows(f->path, "d"), 1);
}

/* Two writers, each one transaction after another (the engine's two workers: claim, record,
 * claim...): without gathering each would arrive during the other's COMMIT and none would
 * share one. */
#define PAIR_WRITES 150

struct pair_writer {
    struct fixture *f;
    int no;
    pthread_t th;
    int failures;
};

static void *pair_main(void *arg)
{
    struct pair_writer *w = arg;
    for (int i = 0; i < PAIR_WRITES; i++) {
        char k[32];
        snprintf(k, sizeof k, "p%d-%d", w->no, i);
        struct put_in in = {.k = k, .s = w->f->s};
        struct err e = {0};
        w->failures += sq_write_tx(w->f->s, put_tx, &in, NULL, &e) != 0;
    }
    return NULL;
}

static void test_two_alternating_writers_share_commits(void **state)
{
    struct fixture *f = *state;
    uint64_t commits0, txs0, commits1, txs1;
    sq_write_stats(f->s, &commits0, &txs0);
    struct pair_writer w[2] = {{.f = f, .no = 0}, {.f = f, .no = 1}};
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&w[i].th, NULL, pair_main, &w[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(w[i].th, NULL);
    assert_int_equal(w[0].failures + w[1].failures, 0);
    assert_int_equal(committed_rows(f->path, NULL), 2 * PAIR_WRITES);
    sq_write_stats(f->s, &commits1, &txs1);
    fprintf(stderr, "  %llu transactions of two writers in %llu commits\n",
            (unsigned long long)(txs1 - txs0), (unsigned long long)(commits1 - commits0));
    assert_true(commits1 - commits0 <= (txs1 - txs0) * 3 / 4);
}

/* Count-then-insert under a limit of 5, from many threads at once. */
static int limited_insert_tx(struct sq_conn *c, const void *inp, void *out, struct err *e)
{
    (void)out;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(c->db, "SELECT count(*) FROM t WHERE k LIKE 'lim-%'", -1, &st, NULL) !=
        SQLITE_OK)
        return sq_fail(c, e, "counting");
    int64_t n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    if (n < 0 || n >= 5)
        return err_set(e, ERR_CONFLICT, "limit reached (%lld)", (long long)n);
    usleep(200); /* widen the window between the count and the insert */
    return put_tx(c, inp, NULL, e);
}

static void test_count_then_insert_stays_serialized(void **state)
{
    struct fixture *f = *state;
    enum { N = 24 };
    struct put_in in[N];
    char keys[N][16];
    struct submit t[N], hold;
    hold_begin(f->s, &hold); /* so that most of them land in one batch */
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof keys[i], "lim-%d", i);
        in[i] = (struct put_in){.k = keys[i], .s = f->s};
        t[i] = (struct submit){.s = f->s, .fn = limited_insert_tx, .in = &in[i]};
        submit_start(&t[i]);
    }
    wait_until_queued(f->s, N);
    hold_end(&hold);
    int ok = 0, conflicts = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(t[i].th, NULL);
        ok += t[i].rc == 0;
        conflicts += t[i].rc == ERR_CONFLICT;
    }
    assert_int_equal(ok, 5);
    assert_int_equal(conflicts, N - 5);
    assert_int_equal(committed_rows(f->path, NULL), 5);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_concurrent_writers_all_commit_in_fewer_commits),
        T(test_failing_closure_is_undone_alone),
        T(test_commit_failure_fails_the_whole_batch),
        T(test_count_then_insert_stays_serialized),
        T(test_two_alternating_writers_share_commits),
    };
    return cmocka_run_group_tests_name("sqlite_group", tests, NULL, NULL);
}
