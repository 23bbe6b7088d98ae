/* Unit tests of what is PostgreSQL's own in the store (the shared contract runs in test_store.c
 * and test_lease.c): several nodes on one database, concurrent schema creation, the server going
 * away and coming back, text that is not UTF-8. Runs on a throw-away cluster that
 * scripts/postgres.sh starts (or on ASYNCD_TEST_PG_URL's server, without the restart test). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"

#define LONG_LEASE_MS 60000

/* ---- PostgreSQL: the same contract on a throw-away cluster that scripts/postgres.sh starts
 * (or on the server ASYNCD_TEST_PG_URL names); each test gets a database of its own. ---- */

#include "pg_fixture.h"

struct fixture {
    char db[32];
    char *url; /* heap: the test's own database */
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (pg_fresh_db(f->db, "", &f->url) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    pg_drop_db(f->db);
    free(f->url);
    free(f);
    return 0;
}

/* f's database with opts ("?pool=2", "?claim=update", ...) appended; heap. */
static char *url_with(const struct fixture *f, const char *opts)
{
    size_t n = strlen(f->url) + strlen(opts) + 1;
    char *u = malloc(n);
    snprintf(u, n, "%s%s", f->url, strchr(f->url, '?') && *opts == '?' ? "" : opts);
    if (strchr(f->url, '?') && *opts == '?')
        snprintf(u + strlen(u), n - strlen(u), "&%s", opts + 1);
    return u;
}

static struct store *open_url(const char *url)
{
    struct store *s = NULL;
    struct err e = {0};
    int rc = store_open(url, NULL, &s, &e);
    if (rc != 0)
        fail_msg("store_open(%s): %s", url, e.msg);
    return s;
}

static void make_task(struct store *s, const char *product, char id[STORE_ID_MAX])
{
    json_t *steps = json_pack("[{s:s, s:{s:[s]}}]", "name", "one", "do", "exec", "/bin/true");
    struct task_new t = {.product = product,
                         .region = "ap-guangzhou",
                         .uin = "100000000001",
                         .type = "CreateAccounts",
                         .steps = steps,
                         .node = "node-1"};
    struct err e = {0};
    int rc = store_task_create(s, &t, id, &e);
    if (rc != 0)
        fail_msg("task_create: %s", e.msg);
    json_decref(steps);
}

/* Runs one query on url and returns its first value as a number (-1 when none). */
static long long query_num(const char *url, const char *sql)
{
    char *plain = strdup(url);
    plain[strcspn(plain, "?")] = '\0'; /* our own options are not libpq's */
    PGconn *c = PQconnectdb(plain);
    PGresult *r = PQexec(c, sql);
    long long v = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0
                      ? strtoll(PQgetvalue(r, 0, 0), NULL, 10)
                      : -1;
    PQclear(r);
    PQfinish(c);
    free(plain);
    return v;
}

/* ---- several nodes ---- */

#define RACE_TASKS   300
#define RACE_THREADS 3 /* per store */

struct racer {
    struct store *s;
    char node[16];
    int n_done, errors;
    char first_error[512];
};

static void *race_worker(void *arg)
{
    struct racer *r = arg;
    for (;;) {
        struct task_claim c;
        struct err e = {0};
        int rc = store_task_claim(r->s, r->node, LONG_LEASE_MS, &c, &e);
        if (rc == ERR_NOT_FOUND)
            break;
        struct task_progress p = {.id = c.id,
                                  .lease_no = c.lease_no,
                                  .node = r->node,
                                  .to = TASK_SUCCESS,
                                  .step = -1,
                                  .next_step = -2,
                                  .attempt = -1,
                                  .release = true,
                                  .message = "done"};
        if (rc == 0)
            rc = store_task_progress(r->s, &p, &e); /* a shared claim: the loser's write fails */
        if (rc != 0) {
            if (!r->errors++)
                snprintf(r->first_error, sizeof r->first_error, "%s", e.msg);
            if (r->errors > 20)
                break;
        } else {
            r->n_done++;
        }
    }
    return NULL;
}

/* Two stores (two pools, as two asyncd nodes) with the given claim options share RACE_TASKS. */
static void race_two_nodes(const struct fixture *f, const char *opts_a, const char *opts_b)
{
    char *ua = url_with(f, opts_a), *ub = url_with(f, opts_b);
    struct store *nodes[2] = {open_url(ua), open_url(ub)};
    free(ua);
    free(ub);
    char id[STORE_ID_MAX];
    for (int i = 0; i < RACE_TASKS; i++)
        make_task(nodes[i % 2], i % 3 ? "cdb" : "mongodb", id);
    struct racer r[2 * RACE_THREADS];
    pthread_t th[2 * RACE_THREADS];
    memset(r, 0, sizeof r);
    for (int i = 0; i < 2 * RACE_THREADS; i++) {
        r[i].s = nodes[i % 2];
        snprintf(r[i].node, sizeof r[i].node, "node-%d", i % 2);
        assert_int_equal(pthread_create(&th[i], NULL, race_worker, &r[i]), 0);
    }
    int done = 0;
    for (int i = 0; i < 2 * RACE_THREADS; i++) {
        pthread_join(th[i], NULL);
        if (r[i].errors)
            fail_msg("racer %d: %d errors, first: %s", i, r[i].errors, r[i].first_error);
        done += r[i].n_done;
    }
    /* Each task reached success once and no fenced write was refused: no task was shared. */
    assert_int_equal(done, RACE_TASKS);
    assert_int_equal(query_num(f->url, "SELECT count(*) FROM tasks WHERE state = 'success'"),
                     RACE_TASKS);
    assert_int_equal(query_num(f->url, "SELECT count(*) FROM task_events WHERE message LIKE "
                                       "'started; lease 1'"),
                     RACE_TASKS);
    store_close(nodes[0]);
    store_close(nodes[1]);
}

static void test_two_nodes_claiming_with_skip_locked_never_share_a_task(void **state)
{
    race_two_nodes(*state, "?pool=3", "?pool=3");
}

static void test_two_nodes_claiming_with_one_update_never_share_a_task(void **state)
{
    race_two_nodes(*state, "?pool=3&claim=update", "?claim=update&pool=3");
}

static void test_nodes_with_either_claim_statement_share_a_database(void **state)
{
    race_two_nodes(*state, "?claim=skip-locked", "?claim=update");
}

static void test_a_dead_nodes_task_is_taken_over_after_its_lease(void **state)
{
    struct fixture *f = *state;
    struct store *a = open_url(f->url), *b = open_url(f->url);
    char id[STORE_ID_MAX];
    make_task(a, "cdb", id);
    struct task_claim ca, cb;
    struct err e = {0};
    assert_int_equal(store_task_claim(a, "node-a", 200, &ca, &e), 0);
    store_close(a); /* node-a dies holding the lease */
    assert_int_equal(store_task_claim(b, "node-b", LONG_LEASE_MS, &cb, &e), ERR_NOT_FOUND);
    int64_t deadline = fixture_now_ms() + 5000;
    int rc;
    while ((rc = store_task_claim(b, "node-b", LONG_LEASE_MS, &cb, &e)) == ERR_NOT_FOUND &&
           fixture_now_ms() < deadline)
        usleep(20000);
    assert_int_equal(rc, 0);
    assert_string_equal(cb.id, id);
    assert_int_equal(cb.lease_no, ca.lease_no + 1);
    struct task_progress late = {.id = id,
                                 .lease_no = ca.lease_no,
                                 .node = "node-a",
                                 .to = TASK_SUCCESS,
                                 .step = -1,
                                 .next_step = -2,
                                 .attempt = -1};
    assert_int_equal(store_task_progress(b, &late, &e), ERR_CONFLICT);
    struct task *t = NULL;
    assert_int_equal(store_task_get(b, id, TASK_READ_EVENTS, &t, &e), 0);
    assert_string_equal(task_last_event(t)->message,
                        "lease of node-a expired; taken over, lease 2");
    task_free(t);
    store_close(b);
}

/* ---- schema ---- */

struct opener {
    const char *url;
    int rc;
    char msg[512];
};

static void *open_and_close(void *arg)
{
    struct opener *o = arg;
    struct store *s = NULL;
    struct err e = {0};
    o->rc = store_open(o->url, NULL, &s, &e);
    snprintf(o->msg, sizeof o->msg, "%s", e.msg);
    store_close(s);
    return NULL;
}

#define NODES 4

struct account_race {
    struct store *s[NODES];
    pthread_barrier_t go;
    atomic_int created, refused, other;
    char root[NODES][24];
};

struct account_racer {
    struct account_race *r;
    int node;
};

static struct account a_root(const char *uin, const char *secret_id)
{
    struct account a = {.is_root = true};
    snprintf(a.uin, sizeof a.uin, "%s", uin);
    snprintf(a.owner_uin, sizeof a.owner_uin, "%s", uin);
    snprintf(a.app_id, sizeof a.app_id, "1250000000");
    snprintf(a.secret_id, sizeof a.secret_id, "%s", secret_id);
    snprintf(a.secret_key, sizeof a.secret_key, "key-of-%s", secret_id);
    return a;
}

static void *key_creator(void *arg)
{
    struct account_racer *me = arg;
    struct account_race *r = me->r;
    pthread_barrier_wait(&r->go);
    for (int i = 0; i < 6; i++) {
        char id[32];
        snprintf(id, sizeof id, "AKIDn%dk%d", me->node, i);
        struct err e = {0};
        int rc = store_account_key_create(r->s[me->node], "100000000001", id, "k", 3, &e);
        atomic_fetch_add(rc == 0 ? &r->created : rc == ERR_CONFLICT ? &r->refused : &r->other, 1);
    }
    return NULL;
}

/* Nodes creating keys for one account at once never take it past the most it may hold: the
 * count and the insert are one transaction behind the account's row lock. */
static void test_nodes_creating_keys_at_once_keep_to_the_limit(void **state)
{
    struct fixture *f = *state;
    struct account_race r = {0};
    struct account_racer me[NODES];
    pthread_t th[NODES];
    struct err e = {0};
    for (int i = 0; i < NODES; i++)
        r.s[i] = open_url(f->url);
    struct account a = a_root("100000000001", "AKIDfirst");
    assert_int_equal(store_account_create(r.s[0], &a, &e), 0);
    pthread_barrier_init(&r.go, NULL, NODES);
    for (int i = 0; i < NODES; i++) {
        me[i] = (struct account_racer){&r, i};
        assert_int_equal(pthread_create(&th[i], NULL, key_creator, &me[i]), 0);
    }
    for (int i = 0; i < NODES; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&r.go);
    assert_int_equal(atomic_load(&r.other), 0);
    assert_int_equal(atomic_load(&r.created), 2);
    assert_int_equal(atomic_load(&r.refused), NODES * 6 - 2);
    json_t *keys = NULL;
    assert_int_equal(store_account_key_list(r.s[1], "100000000001", &keys, &e), 0);
    assert_int_equal(json_array_size(keys), 3);
    json_decref(keys);
    for (int i = 0; i < NODES; i++)
        store_close(r.s[i]);
}

static void *first_starter(void *arg)
{
    struct account_racer *me = arg;
    struct account_race *r = me->r;
    char uin[24], id[32];
    snprintf(uin, sizeof uin, "10000000000%d", me->node);
    snprintf(id, sizeof id, "AKIDnode%d", me->node);
    struct account cand = a_root(uin, id), got = {0};
    struct err e = {0};
    pthread_barrier_wait(&r->go);
    if (store_account_first_root(r->s[me->node], &cand, &got, &e) == 0) {
        snprintf(r->root[me->node], sizeof r->root[me->node], "%s", got.uin);
        atomic_fetch_add(&r->created, 1);
    } else {
        atomic_fetch_add(&r->other, 1);
    }
    account_clear(&got);
    return NULL;
}

/* Nodes making their first start on an empty database at once agree on one root account. */
static void test_nodes_starting_at_once_agree_on_one_first_root(void **state)
{
    struct fixture *f = *state;
    struct account_race r = {0};
    struct account_racer me[NODES];
    pthread_t th[NODES];
    struct err e = {0};
    for (int i = 0; i < NODES; i++)
        r.s[i] = open_url(f->url);
    pthread_barrier_init(&r.go, NULL, NODES);
    for (int i = 0; i < NODES; i++) {
        me[i] = (struct account_racer){&r, i};
        assert_int_equal(pthread_create(&th[i], NULL, first_starter, &me[i]), 0);
    }
    for (int i = 0; i < NODES; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&r.go);
    assert_int_equal(atomic_load(&r.other), 0);
    assert_int_equal(atomic_load(&r.created), NODES);
    for (int i = 1; i < NODES; i++)
        assert_string_equal(r.root[i], r.root[0]);
    int64_t n = 0;
    assert_int_equal(store_account_count(r.s[0], &n, &e), 0);
    assert_int_equal(n, 1);
    for (int i = 0; i < NODES; i++)
        store_close(r.s[i]);
}

static void test_three_nodes_opening_an_empty_database_at_once_make_one_schema(void **state)
{
    struct fixture *f = *state;
    struct opener o[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        o[i] = (struct opener){.url = f->url};
        assert_int_equal(pthread_create(&th[i], NULL, open_and_close, &o[i]), 0);
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        if (o[i].rc != 0)
            fail_msg("opener %d: %s", i, o[i].msg);
    }
    assert_int_equal(query_num(f->url, "SELECT count(*) FROM schema_version"), 1);
    assert_int_equal(query_num(f->url, "SELECT version FROM schema_version"), 10);
    assert_int_equal(query_num(f->url, "SELECT count(*) FROM pg_tables WHERE tablename = "
                                       "'tasks'"),
                     1);
}

static void test_a_newer_schema_is_refused(void **state)
{
    struct fixture *f = *state;
    store_close(open_url(f->url));
    assert_int_equal(query_num(f->url, "WITH u AS (UPDATE schema_version SET version = 99"
                                       " RETURNING version) SELECT version FROM u"),
                     99);
    struct store *s = NULL;
    struct err e = {0};
    assert_int_equal(store_open(f->url, NULL, &s, &e), ERR_INTERNAL);
    assert_non_null(strstr(e.msg, "schema version 99"));
    assert_null(s);
}

static void test_open_of_an_unreachable_server_is_service_unavailable(void **state)
{
    (void)state;
    char url[128];
    snprintf(url, sizeof url, "postgres://postgres@127.0.0.1:%d/asyncd", free_port());
    struct store *s = NULL;
    struct err e = {0};
    assert_int_equal(store_open(url, NULL, &s, &e), ERR_SERVICE_UNAVAILABLE);
    assert_non_null(strstr(e.msg, "the PostgreSQL store is unreachable"));
    assert_null(s);
}

static void test_text_that_is_not_utf8_is_kept_with_question_marks(void **state)
{
    struct fixture *f = *state;
    struct store *s = open_url(f->url);
    char id[STORE_ID_MAX];
    make_task(s, "cdb", id);
    struct task_move m = {.id = id,
                          .expect = TASK_INITIAL,
                          .to = TASK_RUNNING,
                          .node = "n",
                          .message = "caf\xc3\xa9 \xff\xfe ok"};
    struct err e = {0};
    assert_int_equal(store_task_move(s, &m, &e), 0);
    struct task *t = NULL;
    assert_int_equal(store_task_get(s, id, TASK_READ_EVENTS, &t, &e), 0);
    assert_true(t->n_events > 1);
    assert_string_equal(t->events[1].message, "caf\xc3\xa9 ?? ok");
    task_free(t);
    store_close(s);
}

/* ---- the server goes away and comes back ---- */

static int pg_script_run(const char *verb)
{
    char cmd[1024];
    if (strcmp(verb, "start") == 0) {
        char path[128];
        snprintf(path, sizeof path, "%s/port", g_pg_dir);
        FILE *p = fopen(path, "r");
        int port = 0;
        if (!p || fscanf(p, "%d", &port) != 1)
            port = 0;
        if (p)
            fclose(p);
        snprintf(cmd, sizeof cmd, "bash %s start %s %d >/dev/null", pg_script(), g_pg_dir, port);
    } else {
        snprintf(cmd, sizeof cmd, "bash %s %s %s", pg_script(), verb, g_pg_dir);
    }
    return system(cmd);
}

/* Calls task_summary until it answers 0 (within ms); counts the ServiceUnavailable answers. */
static int summary_until_ok(struct store *s, const char *id, int64_t ms, int *unavailable)
{
    int64_t deadline = fixture_now_ms() + ms;
    for (;;) {
        struct task_summary sum;
        struct err e = {0};
        int rc = store_task_summary(s, "cdb", id, &sum, &e);
        if (rc == ERR_SERVICE_UNAVAILABLE) {
            (*unavailable)++;
            assert_non_null(strstr(e.msg, "the PostgreSQL store is unreachable"));
            assert_non_null(strstr(e.msg, "retry"));
        } else if (rc != 0) {
            fail_msg("task_summary: rc %d: %s", rc, e.msg);
        }
        if (rc == 0 || fixture_now_ms() >= deadline)
            return rc;
        usleep(20000);
    }
}

static void test_calls_fail_while_the_server_is_down_and_recover_without_reopening(void **state)
{
    struct fixture *f = *state;
    if (!g_pg_dir[0])
        skip(); /* ASYNCD_TEST_PG_URL's server is not ours to restart */
    char *url = url_with(f, "?pool=2");
    struct store *s = open_url(url);
    free(url);
    char id[STORE_ID_MAX], later[STORE_ID_MAX];
    make_task(s, "cdb", id);
    struct err e = {0};
    /* restart: every pooled session is cut; the first use of each says so, the next reconnects */
    assert_int_equal(pg_script_run("restart"), 0);
    int unavailable = 0;
    for (int i = 0; i < 4; i++)
        assert_int_equal(summary_until_ok(s, id, 10000, &unavailable), 0);
    assert_true(unavailable >= 1);
    /* down for a while: answers are ServiceUnavailable at once, nothing blocks */
    assert_int_equal(pg_script_run("stop"), 0);
    struct task_claim c;
    int64_t t0 = fixture_now_ms();
    for (int i = 0; i < 5; i++) {
        assert_int_equal(store_task_claim(s, "node-a", LONG_LEASE_MS, &c, &e),
                         ERR_SERVICE_UNAVAILABLE);
        usleep(50000);
    }
    assert_true(fixture_now_ms() - t0 < 5000);
    assert_int_equal(pg_script_run("start"), 0);
    t0 = fixture_now_ms();
    unavailable = 0;
    assert_int_equal(summary_until_ok(s, id, 15000, &unavailable), 0);
    fprintf(stderr, "    (answered again %lld ms after the server came back)\n",
            (long long)(fixture_now_ms() - t0));
    /* nothing was lost, and writes work again on the same store */
    assert_int_equal(store_task_claim(s, "node-a", LONG_LEASE_MS, &c, &e), 0);
    assert_string_equal(c.id, id);
    make_task(s, "cdb", later);
    store_close(s);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_two_nodes_claiming_with_skip_locked_never_share_a_task),
        T(test_two_nodes_claiming_with_one_update_never_share_a_task),
        T(test_nodes_with_either_claim_statement_share_a_database),
        T(test_a_dead_nodes_task_is_taken_over_after_its_lease),
        T(test_nodes_creating_keys_at_once_keep_to_the_limit),
        T(test_nodes_starting_at_once_agree_on_one_first_root),
        T(test_three_nodes_opening_an_empty_database_at_once_make_one_schema),
        T(test_a_newer_schema_is_refused),
        T(test_open_of_an_unreachable_server_is_service_unavailable),
        T(test_text_that_is_not_utf8_is_kept_with_question_marks),
        T(test_calls_fail_while_the_server_is_down_and_recover_without_reopening),
    };
    if (pg_skipped("test_store_pg"))
        return 0;
    return cmocka_run_group_tests(tests, pg_group_setup, pg_group_teardown);
}
