/* Unit tests: the lease keeper (engine_lease.c) on a temp SQLite store, seen through a store that
 * counts, delays or fails its renewal calls: one store call per round for every watch, a lease
 * the store no longer renews is lost, a watch registered while a renewal is out is not judged by
 * it, and a failed renewal never moves last_ok_ms on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/engine_int.h"
#include "store/store.h"

#include "fixture.h"

#define NODE     "node-k"
#define LEASE_MS 600 /* a round every 200 ms */
#define N_WATCH  5

/* The real store behind an ops table whose renewal (and kill/pause check) the test steers. Only
 * the ops the keeper calls are forwarded: node_renew, task_summary, pgroup_record/clear. */
struct probe {
    struct store base; /* first */
    struct store_ops ops;
    struct store *inner;
    atomic_int calls, last_n_only;
    atomic_bool fail;       /* node_renew answers ERR_SERVICE_UNAVAILABLE */
    atomic_bool hold;       /* node_renew waits (before its statement) while set */
    atomic_bool held;       /* a node_renew call is waiting */
    atomic_bool no_summary; /* task_summary fails: only renewals can stop a watch */
};

static struct probe *probe_of(struct store *s) { return (struct probe *)s; }

static int p_node_renew(struct store *s, const char *node, int64_t lease_ms,
                        const struct lease_ref *only, size_t n_only, struct lease_renewal **out,
                        size_t *n, struct err *e)
{
    struct probe *p = probe_of(s);
    atomic_fetch_add(&p->calls, 1);
    atomic_store(&p->last_n_only, (int)n_only);
    while (atomic_load(&p->hold)) {
        atomic_store(&p->held, true);
        usleep(1000);
    }
    atomic_store(&p->held, false);
    if (atomic_load(&p->fail)) {
        *out = NULL, *n = 0;
        return err_set(e, ERR_SERVICE_UNAVAILABLE, "store: the probe is failing renewals");
    }
    return store_node_renew(p->inner, node, lease_ms, only, n_only, out, n, e);
}

static int p_task_summary(struct store *s, const char *product, const char *id,
                          struct task_summary *out, struct err *e)
{
    struct probe *p = probe_of(s);
    if (atomic_load(&p->no_summary))
        return err_set(e, ERR_SERVICE_UNAVAILABLE, "store: the probe is failing reads");
    return store_task_summary(p->inner, product, id, out, e);
}

static int p_pgroup_record(struct store *s, const struct step_pgroup *g, struct err *e)
{
    return store_pgroup_record(probe_of(s)->inner, g, e);
}

static int p_pgroup_clear(struct store *s, const char *node, int64_t pgid, struct err *e)
{
    return store_pgroup_clear(probe_of(s)->inner, node, pgid, e);
}

struct fixture {
    char dir[64];
    struct store *s;
    struct probe probe;
    struct engine *eng;
    struct lease_watch w[N_WATCH + 1];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    struct err e = {0};
    if (fixture_mkdtemp(f->dir, sizeof f->dir, "test_keeper") != 0 ||
        store_open(NULL, f->dir, &f->s, &e) != 0) {
        fprintf(stderr, "store_open: %s\n", e.msg);
        return -1;
    }
    f->probe.inner = f->s;
    f->probe.ops = *f->s->ops;
    f->probe.ops.node_renew = p_node_renew;
    f->probe.ops.task_summary = p_task_summary;
    f->probe.ops.pgroup_record = p_pgroup_record;
    f->probe.ops.pgroup_clear = p_pgroup_clear;
    f->probe.base.ops = &f->probe.ops;
    f->eng = calloc(1, sizeof *f->eng);
    f->eng->cfg.store = &f->probe.base;
    f->eng->cfg.node = NODE;
    if (lease_keeper_start(f->eng, &e) != 0)
        return -1;
    *state = f;
    return 0;
}

static void unwatch_all(struct fixture *f, int n);

static int teardown(void **state)
{
    struct fixture *f = *state;
    unwatch_all(f, N_WATCH + 1); /* a failed test left its watches: the keeper waits for none */
    lease_keeper_stop(f->eng);
    free(f->eng);
    store_close(f->s);
    fixture_rm_tree(f->dir);
    free(f);
    return 0;
}

static void make_task(struct store *s, char id[STORE_ID_MAX])
{
    json_t *steps = json_pack("[{s:s, s:{s:[s]}}]", "name", "step", "do", "exec", "/bin/true");
    struct task_new t = {.product = "cdb",
                         .region = "ap-guangzhou",
                         .uin = "100000000001",
                         .type = "CreateAccounts",
                         .steps = steps,
                         .node = NODE};
    struct err e = {0};
    assert_int_equal(store_task_create(s, &t, id, &e), 0);
    json_decref(steps);
    usleep(2000); /* distinct created_ms: claims take the oldest first */
}

/* Claims a new task for NODE and registers w for it, as a worker does. */
static void claim_and_watch(struct fixture *f, struct lease_watch *w)
{
    char id[STORE_ID_MAX];
    make_task(f->s, id);
    struct task_claim c;
    struct err e = {0};
    int64_t sent = engine_mono_ms();
    assert_int_equal(store_task_claim(f->s, NODE, LEASE_MS, &c, &e), 0);
    assert_string_equal(c.id, id);
    memset(w, 0, sizeof *w);
    snprintf(w->id, sizeof w->id, "%s", c.id);
    snprintf(w->product, sizeof w->product, "cdb");
    w->lease_no = c.lease_no;
    w->lease_ms = LEASE_MS;
    atomic_init(&w->last_ok_ms, sent);
    atomic_init(&w->stop, STOP_NONE);
    lease_watch_add(f->eng, w);
}

static void unwatch_all(struct fixture *f, int n)
{
    for (int i = 0; i < n; i++)
        lease_watch_remove(f->eng, &f->w[i]);
}

static void test_one_store_call_per_round_renews_every_watch(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < N_WATCH; i++)
        claim_and_watch(f, &f->w[i]);
    int64_t start = engine_mono_ms();
    atomic_store(&f->probe.calls, 0);
    usleep(3 * LEASE_MS * 1000); /* the leases would have run out three times over */
    int calls = atomic_load(&f->probe.calls);
    /* A round every third of a lease for all five: about 9 calls in 1.8 s (fewer on a loaded
     * machine), where renewing per task made 45. */
    assert_in_range(calls, 3, 14);
    assert_int_equal(atomic_load(&f->probe.last_n_only), N_WATCH);
    for (int i = 0; i < N_WATCH; i++) {
        assert_int_equal(atomic_load(&f->w[i].stop), STOP_NONE);
        assert_true(atomic_load(&f->w[i].last_ok_ms) > start + 2 * LEASE_MS);
    }
    /* The store holds the leases live: no other node can claim the tasks. */
    struct task_claim c;
    struct err e = {0};
    assert_int_equal(store_task_claim(f->s, "node-other", LEASE_MS, &c, &e), ERR_NOT_FOUND);
    unwatch_all(f, N_WATCH);
}

static void test_a_lease_the_store_no_longer_renews_is_lost(void **state)
{
    struct fixture *f = *state;
    atomic_store(&f->probe.no_summary, true); /* the kill must be found by the renewal */
    for (int i = 0; i < 2; i++)
        claim_and_watch(f, &f->w[i]);
    struct err e = {0};
    assert_int_equal(store_task_control(f->s, f->w[0].id, VERB_KILL, "operator", NULL, &e), 0);
    usleep(2 * (LEASE_MS / 3) * 1000 + 100000);
    assert_int_equal(atomic_load(&f->w[0].stop), STOP_LOST);
    assert_int_equal(atomic_load(&f->w[1].stop), STOP_NONE);
    unwatch_all(f, 2);
}

static void test_a_watch_added_while_a_renewal_is_out_is_not_judged_by_it(void **state)
{
    struct fixture *f = *state;
    atomic_store(&f->probe.no_summary, true);
    claim_and_watch(f, &f->w[0]);
    atomic_store(&f->probe.hold, true);
    while (!atomic_load(&f->probe.held)) /* the next round is out, listing w[0] alone */
        usleep(1000);
    claim_and_watch(f, &f->w[1]);
    atomic_store(&f->probe.hold, false);
    usleep(50 * 1000); /* the held round's answer, without w[1], is applied */
    assert_int_equal(atomic_load(&f->w[1].stop), STOP_NONE);
    assert_int_equal(atomic_load(&f->w[0].stop), STOP_NONE);
    /* Its own turn comes with the next round. */
    int64_t added = atomic_load(&f->w[1].last_ok_ms);
    usleep((LEASE_MS / 3 + 100) * 1000);
    assert_true(atomic_load(&f->w[1].last_ok_ms) > added);
    assert_int_equal(atomic_load(&f->w[1].stop), STOP_NONE);
    unwatch_all(f, 2);
}

static void test_a_failed_renewal_leaves_last_ok_where_it_was(void **state)
{
    struct fixture *f = *state;
    claim_and_watch(f, &f->w[0]);
    usleep((LEASE_MS / 3 + 100) * 1000);
    int64_t ok = atomic_load(&f->w[0].last_ok_ms);
    atomic_store(&f->probe.fail, true);
    int calls = atomic_load(&f->probe.calls);
    usleep(2 * LEASE_MS * 1000);
    assert_true(atomic_load(&f->probe.calls) > calls + 2); /* retried, every 250 ms */
    assert_int_equal(atomic_load(&f->w[0].last_ok_ms), ok);
    assert_int_equal(atomic_load(&f->w[0].stop), STOP_NONE);
    atomic_store(&f->probe.fail, false);
    usleep(400 * 1000);
    /* Too late by the store's clock (the lease ran out while it failed): lost, not renewed. */
    assert_int_equal(atomic_load(&f->w[0].stop), STOP_LOST);
    assert_int_equal(atomic_load(&f->w[0].last_ok_ms), ok);
    unwatch_all(f, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_one_store_call_per_round_renews_every_watch, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_lease_the_store_no_longer_renews_is_lost, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_a_watch_added_while_a_renewal_is_out_is_not_judged_by_it, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_failed_renewal_leaves_last_ok_where_it_was, setup,
                                        teardown),
    };
    return cmocka_run_group_tests_name("lease keeper", tests, NULL, NULL);
}
