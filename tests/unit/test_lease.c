/* Unit tests: the store's engine side (DESIGN.md 5-6): claims with leases and lease numbers,
 * renewals, fenced progress, retry times, operator verbs, node lease release, counts. One contract
 * run on SQLite, then on PostgreSQL with each claim statement (ASYNCD_TEST_PG=0 leaves it out). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"
#include "task/task_json.h"

#include "store_fixture.h"

#define LONG_LEASE_MS 60000

static int setup(void **state) { return store_fixture_open(state, "test_lease", false, NULL); }
/* PostgreSQL: the same contract, each test on a database of its own, with each claim statement. */
static int setup_pg(void **state) { return store_fixture_open(state, "test_lease", true, ""); }
static int setup_pg_update(void **state)
{
    return store_fixture_open(state, "test_lease", true, "?claim=update");
}
static int teardown(void **state) { return store_fixture_close(state); }

/* ---- helpers ---- */

static int64_t wall_ms(void) /* the store's clock */
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until the store's millisecond clock has moved on, so created_ms values differ. */
static void next_ms(void)
{
    int64_t t = wall_ms();
    while (wall_ms() <= t)
        usleep(200);
}

/* A cdb task of nsteps exec steps (or, with remote, a step run by an external worker). */
static void make_task_of(struct store *s, int nsteps, bool remote, const char *on_failure,
                         char id[STORE_ID_MAX])
{
    json_t *steps = json_array();
    for (int i = 0; i < nsteps; i++)
        json_array_append_new(
            steps, remote ? json_pack("{s:s, s:{s:{}}}", "name", "far", "do", "remote")
                          : json_pack("{s:s, s:{s:[s]}, s:{s:[s]}}", "name", "step", "do", "exec",
                                      "/bin/true", "undo", "exec", "/bin/true"));
    struct task_new t = {.product = "cdb",
                         .region = "ap-guangzhou",
                         .uin = "100000000001",
                         .type = "CreateAccounts",
                         .on_failure = on_failure,
                         .steps = steps,
                         .node = "node-1"};
    struct err e = {0};
    int rc = store_task_create(s, &t, id, &e);
    if (rc != 0)
        fprintf(stderr, "task_create: %s\n", e.msg);
    assert_int_equal(rc, 0);
    json_decref(steps);
}

static void make_task(struct store *s, char id[STORE_ID_MAX])
{
    make_task_of(s, 2, false, NULL, id);
}

/* A one-step task of product on instance (NULL: none). */
static void make_task_on(struct store *s, const char *product, const char *instance,
                         char id[STORE_ID_MAX])
{
    json_t *steps = json_pack("[{s:s, s:{s:[s]}}]", "name", "step", "do", "exec", "/bin/true");
    struct task_new t = {.product = product,
                         .region = "ap-guangzhou",
                         .uin = "100000000001",
                         .instance_id = instance,
                         .type = "CreateAccounts",
                         .steps = steps,
                         .node = "node-1"};
    struct err e = {0};
    int rc = store_task_create(s, &t, id, &e);
    if (rc != 0)
        fprintf(stderr, "task_create: %s\n", e.msg);
    assert_int_equal(rc, 0);
    json_decref(steps);
    next_ms();
}

static json_t *get(struct store *s, const char *id)
{
    struct task *t = NULL;
    struct err e = {0};
    assert_int_equal(store_task_get(s, id, TASK_READ_ALL, &t, &e), 0);
    json_t *j = task_json(t, NULL); /* the raw view (task/task_json.h) */
    task_free(t);
    return j;
}

static const char *jstr(json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? v : "(null)";
}

static int64_t jint(json_t *o, const char *k) { return json_integer_value(json_object_get(o, k)); }

static json_t *last_event(json_t *task)
{
    json_t *ev = json_object_get(task, "events");
    return json_array_get(ev, json_array_size(ev) - 1);
}

static size_t n_events(json_t *task) { return json_array_size(json_object_get(task, "events")); }

static const char *step_state(json_t *task, int i)
{
    return jstr(json_array_get(json_object_get(task, "steps"), (size_t)i), "state");
}

static int claim(struct store *s, const char *node, int64_t lease_ms, struct task_claim *c)
{
    struct err e = {0};
    return store_task_claim(s, node, lease_ms, c, &e);
}

static void claim_ok(struct store *s, const char *node, int64_t lease_ms, const char *want_id,
                     struct task_claim *c)
{
    assert_int_equal(claim(s, node, lease_ms, c), 0);
    if (want_id)
        assert_string_equal(c->id, want_id);
}

/* Claims with a 1 ms lease and waits for it to lapse. */
static void claim_and_let_expire(struct store *s, const char *id, struct task_claim *c)
{
    claim_ok(s, "node-a", 1, id, c);
    next_ms();
    next_ms();
}

static struct task_progress prog(const struct task_claim *c, enum task_state to)
{
    return (struct task_progress){.id = c->id,
                                  .lease_no = c->lease_no,
                                  .node = "node-a",
                                  .to = to,
                                  .step = -1,
                                  .next_step = -2,
                                  .attempt = -1};
}

static int progress(struct store *s, const struct task_progress *p)
{
    struct err e = {0};
    return store_task_progress(s, p, &e);
}

static int control(struct store *s, const char *id, enum task_verb v, struct err *e)
{
    return store_task_control(s, id, v, "operator", NULL, e);
}

/* ---- claims ---- */

static void test_claim_takes_the_oldest_runnable_task_and_starts_it(void **state)
{
    struct store_fixture *f = *state;
    char removed[STORE_ID_MAX], older[STORE_ID_MAX], newer[STORE_ID_MAX];
    struct err e = {0};
    struct task_claim c;
    assert_int_equal(claim(f->s, "node-a", LONG_LEASE_MS, &c), ERR_NOT_FOUND); /* empty */
    make_task(f->s, removed);
    next_ms();
    make_task(f->s, older);
    next_ms();
    make_task(f->s, newer);
    assert_int_equal(control(f->s, removed, VERB_REMOVE, &e), 0);
    int64_t before = wall_ms();
    claim_ok(f->s, "node-a", LONG_LEASE_MS, older, &c);
    assert_int_equal(c.lease_no, 1);
    assert_int_equal(c.from, TASK_INITIAL); /* its first claim, not a takeover */
    assert_false(c.taken_over);
    assert_string_equal(c.product, "cdb"); /* a claim of one is a batch of one */
    json_t *t = get(f->s, older);
    assert_string_equal(jstr(t, "state"), "running");
    assert_string_equal(jstr(t, "lease_node"), "node-a");
    assert_true(jint(t, "start_ms") >= before && jint(t, "start_ms") <= wall_ms());
    assert_true(jint(t, "lease_expires_ms") >= before + LONG_LEASE_MS);
    assert_int_equal(n_events(t), 2);
    json_t *ev = last_event(t);
    assert_string_equal(jstr(ev, "from"), "initial");
    assert_string_equal(jstr(ev, "to"), "running");
    assert_string_equal(jstr(ev, "node"), "node-a");
    assert_string_equal(jstr(ev, "message"), "started; lease 1");
    json_decref(t);
    claim_ok(f->s, "node-a", LONG_LEASE_MS, newer, &c);
    assert_int_equal(claim(f->s, "node-a", LONG_LEASE_MS, &c), ERR_NOT_FOUND); /* all taken */
}

/* One operation at a time per instance: a later task of the same product and instance waits
 * while an earlier one is unfinished (running or paused); other instances, other products and
 * tasks without an instance go on. */
static void test_tasks_on_one_instance_are_claimed_one_at_a_time_in_order(void **state)
{
    struct store_fixture *f = *state;
    char a[STORE_ID_MAX], b[STORE_ID_MAX], other[STORE_ID_MAX], mongo[STORE_ID_MAX];
    char none[STORE_ID_MAX];
    make_task_on(f->s, "cdb", "cdb-1", a);
    make_task_on(f->s, "cdb", "cdb-1", b);
    make_task_on(f->s, "cdb", "cdb-2", other);
    make_task_on(f->s, "mongodb", "cdb-1", mongo);
    make_task_on(f->s, "cdb", NULL, none);
    struct task_claim ca, c;
    claim_ok(f->s, "node-a", LONG_LEASE_MS, a, &ca);
    claim_ok(f->s, "node-a", LONG_LEASE_MS, other, &c);
    claim_ok(f->s, "node-a", LONG_LEASE_MS, mongo, &c);
    claim_ok(f->s, "node-a", LONG_LEASE_MS, none, &c);
    assert_int_equal(claim(f->s, "node-a", LONG_LEASE_MS, &c), ERR_NOT_FOUND);
    struct task_progress p = prog(&ca, TASK_PAUSED); /* a paused task still holds its instance */
    p.release = true;
    assert_int_equal(progress(f->s, &p), 0);
    assert_int_equal(claim(f->s, "node-a", LONG_LEASE_MS, &c), ERR_NOT_FOUND);
    struct err e = {0};
    assert_int_equal(control(f->s, a, VERB_KILL, &e), 0);
    claim_ok(f->s, "node-a", LONG_LEASE_MS, b, &c);
}

static void test_instance_rule_is_lifted_for_the_parallel_products(void **state)
{
    struct store_fixture *f = *state;
    char a[STORE_ID_MAX], b[STORE_ID_MAX], m1[STORE_ID_MAX], m2[STORE_ID_MAX];
    make_task_on(f->s, "cdb", "cdb-1", a);
    make_task_on(f->s, "cdb", "cdb-1", b);
    make_task_on(f->s, "mongodb", "cmgo-1", m1);
    make_task_on(f->s, "mongodb", "cmgo-1", m2);
    struct task_claim c;
    struct err e = {0};
    const char *parallel = "redis,cdb";
    assert_int_equal(store_task_claim_with(f->s, "node-a", LONG_LEASE_MS, parallel, &c, &e), 0);
    assert_string_equal(c.id, a);
    assert_int_equal(store_task_claim_with(f->s, "node-a", LONG_LEASE_MS, parallel, &c, &e), 0);
    assert_string_equal(c.id, b);
    assert_int_equal(store_task_claim_with(f->s, "node-a", LONG_LEASE_MS, parallel, &c, &e), 0);
    assert_string_equal(c.id, m1);
    assert_int_equal(store_task_claim_with(f->s, "node-a", LONG_LEASE_MS, parallel, &c, &e),
                     ERR_NOT_FOUND);
}

static void test_live_lease_blocks_other_nodes_expired_lease_is_taken_over(void **state)
{
    struct store_fixture *f = *state;
    char id[STORE_ID_MAX];
    make_task(f->s, id);
    struct task_claim a, b;
    claim_ok(f->s, "node-a", LONG_LEASE_MS, id, &a);
    assert_int_equal(claim(f->s, "node-b", LONG_LEASE_MS, &b), ERR_NOT_FOUND);

    char id2[STORE_ID_MAX];
    make_task(f->s, id2);
    claim_and_let_expire(f->s, id2, &a);
    assert_int_equal(a.lease_no, 1);
    claim_ok(f->s, "node-b", LONG_LEASE_MS, id2, &b);
    assert_int_equal(b.lease_no, 2);
    assert_int_equal(b.from, TASK_RUNNING);
    assert_true(b.taken_over);
    json_t *t = get(f->s, id2);
    assert_string_equal(jstr(t, "lease_node"), "node-b");
    assert_string_equal(jstr(last_event(t), "from"), "running");
    assert_string_equal(jstr(last_event(t), "message"),
                        "lease of node-a expired; taken over, lease 2");
    json_decref(t);
}

static void test_lease_no_grows_at_every_claim(void **state)
{
    struct store_fixture *f = *state;
    char id[STORE_ID_MAX];
    struct err e = {0};
    make_task(f->s, id);
    struct task_claim c;
    for (int64_t want = 1; want <= 3; want++) {
        claim_and_let_expire(f->s, id, &c);
        assert_int_equal(c.lease_no, want);
    }
    claim_ok(f->s, "node-a", LONG_LEASE_MS, id, &c);
    assert_int_equal(c.lease_no, 4);
    assert_int_equal(store_release_node_leases(f->s, "node-a", &e), 0);
    claim_ok(f->s, "node-b", LONG_LEASE_MS, id, &c);
    assert_int_equal(c.lease_no, 5);
}

static void test_release_node_leases_frees_only_that_nodes_tasks(void **state)
{
    struct store_fixture *f = *state;
    char mine[STORE_ID_MAX], theirs[STORE_ID_MAX];
    struct err e = {0};
    make_task(f->s, mine);
    next_ms();
    make_task(f->s, theirs);
    struct task_claim c;
    claim_ok(f->s, "node-a", LONG_LEASE_MS, mine, &c);
    claim_ok(f->s, "node-b", LONG_LEASE_MS, theirs, &c);
    assert_int_equal(claim(f->s, "node-c", LONG_LEASE_MS, &c), ERR_NOT_FOUND);
    assert_int_equal(store_release_node_leases(f->s, "node-a", &e), 0);
    claim_ok(f->s, "node-c", LONG_LEASE_MS, mine, &c);
    assert_int_equal(c.lease_no, 2);
    assert_int_equal(claim(f->s, "node-c", LONG_LEASE_MS, &c), ERR_NOT_FOUND);
}

/* ---- renew ---- */

static void test_renew_extends_only_the_current_lease(void **state)
{
    struct store_fixture *f = *state;
    char id[STORE_ID_MAX];
    struct err e = {0};
    make_task(f->s, id);
    struct task_claim old, cur;
    claim_and_let_expire(f->s, id, &old);
    claim_ok(f->s, "node-b", 1000, id, &cur);
    struct task_lease_state ls;
    int64_t before = wall_ms();
    assert_int_equal(store_task_renew(f->s, id, cur.lease_no, LONG_LEASE_MS, &ls, &e), 0);
    assert_true(ls.held);
    assert_false(ls.pause_requested);
    json_t *t = get(f->s, id);
    assert_true(jint(t, "lease_expires_ms") >= before + LONG_LEASE_MS);
    assert_int_equal(store_task_renew(f->s, id, old.lease_no, LONG_LEASE_MS * 2, &ls, &e), 0);
    assert_false(ls.held);
    json_t *after = get(f->s, id);
    assert_true(json_equal(t, after));
    json_decref(t);
    json_decref(after);
    /* Once the task leaves running, the lease is not held either. */
    struct task_progress p = prog(&cur, TASK_SUCCESS);
    p.release = true;
    assert_int_equal(progress(f->s, &p), 0);
    assert_int_equal(store_task_renew(f->s, id, cur.lease_no, LONG_LEASE_MS, &ls, &e), 0);
    assert_false(ls.held);
}

/* ---- renewal by node ---- */

static int renew_node(struct store *s, const char *node, const struct lease_ref *only,
                      size_t n_only, struct lease_renewal **out, size_t *n)
{
    struct err e = {0};
    int rc = store_node_renew(s, node, LONG_LEASE_MS, only, n_only, out, n, &e);
    if (rc != 0)
        fprintf(stderr, "node_renew: %s\n", e.msg);
    return rc;
}

static const struct lease_renewal *renewal_of(const struct lease_renewal *v, size_t n,
                                              const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].id, id) == 0)
            return &v[i];
    return NULL;
}

static struct lease_ref ref_of(const struct task_claim *c)
{
    struct lease_ref r = {.lease_no = c->lease_no};
    snprintf(r.id, sizeof r.id, "%s", c->id);
    return r;
}

#define MINE           12
#define SHORT_LEASE_MS 300 /* long enough for three claims in a row, short enough to wait out */
#define THEIRS         4

static void test_node_renew_renews_every_lease_of_the_node_in_one_call(void **state)
{
    struct store_fixture *f = *state;
    char id[MINE + THEIRS][STORE_ID_MAX];
    struct task_claim c[MINE + THEIRS];
    for (int i = 0; i < MINE + THEIRS; i++)
        make_task(f->s, id[i]);
    for (int i = 0; i < MINE + THEIRS; i++)
        claim_ok(f->s, i < MINE ? "node-a" : "node-b", 5000, id[i], &c[i]);
    json_t *theirs_before = get(f->s, id[MINE]);
    int64_t before = wall_ms();
    struct lease_renewal *got = NULL;
    size_t n = 0;
    assert_int_equal(renew_node(f->s, "node-a", NULL, 0, &got, &n), 0);
    assert_int_equal(n, MINE);
    for (int i = 0; i < MINE; i++) {
        const struct lease_renewal *r = renewal_of(got, n, id[i]);
        assert_non_null(r);
        assert_int_equal(r->lease_no, c[i].lease_no);
        assert_false(r->pause_requested);
        json_t *t = get(f->s, id[i]);
        assert_true(jint(t, "lease_expires_ms") >= before + LONG_LEASE_MS);
        json_decref(t);
    }
    free(got);
    /* The other node's leases are untouched. */
    json_t *theirs_after = get(f->s, id[MINE]);
    assert_true(json_equal(theirs_before, theirs_after));
    json_decref(theirs_before);
    json_decref(theirs_after);
    /* The listed form renews just the listed leases of the node: another node's is refused. */
    struct lease_ref only[] = {ref_of(&c[0]), ref_of(&c[1]), ref_of(&c[MINE])};
    json_t *third_before = get(f->s, id[2]);
    assert_int_equal(renew_node(f->s, "node-a", only, 3, &got, &n), 0);
    assert_int_equal(n, 2);
    assert_non_null(renewal_of(got, n, id[0]));
    assert_non_null(renewal_of(got, n, id[1]));
    free(got);
    json_t *third_after = get(f->s, id[2]);
    assert_true(json_equal(third_before, third_after));
    json_decref(third_before);
    json_decref(third_after);
    /* An empty list writes nothing and answers nothing. */
    assert_int_equal(renew_node(f->s, "node-a", only, 0, &got, &n), 0);
    assert_null(got);
    assert_int_equal(n, 0);
}

static void test_node_renew_leaves_out_expired_and_taken_over_leases(void **state)
{
    struct store_fixture *f = *state;
    char lapsed[STORE_ID_MAX], taken[STORE_ID_MAX], reclaimed[STORE_ID_MAX];
    make_task(f->s, taken); /* claims take the oldest first: lapsed is left lapsed */
    make_task(f->s, reclaimed);
    make_task(f->s, lapsed);
    struct task_claim cl, ct, cr_old, cr_new, other;
    claim_ok(f->s, "node-a", SHORT_LEASE_MS, taken, &ct);
    claim_ok(f->s, "node-a", SHORT_LEASE_MS, reclaimed, &cr_old);
    claim_ok(f->s, "node-a", SHORT_LEASE_MS, lapsed, &cl);
    usleep((SHORT_LEASE_MS + 50) * 1000);
    claim_ok(f->s, "node-b", LONG_LEASE_MS, taken, &other);      /* another node took it over */
    claim_ok(f->s, "node-a", LONG_LEASE_MS, reclaimed, &cr_new); /* this node claimed it again */
    assert_int_equal(cr_new.lease_no, cr_old.lease_no + 1);
    json_t *lapsed_before = get(f->s, lapsed);
    struct lease_renewal *got = NULL;
    size_t n = 0;
    assert_int_equal(renew_node(f->s, "node-a", NULL, 0, &got, &n), 0);
    assert_int_equal(n, 1); /* only the live lease: the new one of the reclaimed task */
    assert_string_equal(got[0].id, reclaimed);
    assert_int_equal(got[0].lease_no, cr_new.lease_no);
    free(got);
    /* An expired lease stays expired (the task is anyone's to claim), and the lease number that
     * was bumped is absent even when its task's new lease is renewed. */
    json_t *lapsed_after = get(f->s, lapsed);
    assert_true(json_equal(lapsed_before, lapsed_after));
    json_decref(lapsed_before);
    json_decref(lapsed_after);
    struct lease_ref only[] = {ref_of(&cl), ref_of(&ct), ref_of(&cr_old)};
    assert_int_equal(renew_node(f->s, "node-a", only, 3, &got, &n), 0);
    assert_int_equal(n, 0);
    assert_null(got);
}

static void test_node_renew_reports_a_pause_and_drops_a_killed_task(void **state)
{
    struct store_fixture *f = *state;
    char paused[STORE_ID_MAX], killed[STORE_ID_MAX];
    struct err e = {0};
    make_task(f->s, paused);
    make_task(f->s, killed);
    struct task_claim cp, ck;
    claim_ok(f->s, "node-a", LONG_LEASE_MS, paused, &cp);
    claim_ok(f->s, "node-a", LONG_LEASE_MS, killed, &ck);
    assert_int_equal(control(f->s, paused, VERB_PAUSE, &e), 0);
    assert_int_equal(control(f->s, killed, VERB_KILL, &e), 0);
    struct lease_ref only[] = {ref_of(&cp), ref_of(&ck)};
    struct lease_renewal *got = NULL;
    size_t n = 0;
    assert_int_equal(renew_node(f->s, "node-a", only, 2, &got, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(got[0].id, paused);
    assert_true(got[0].pause_requested);
    free(got);
    assert_int_equal(renew_node(f->s, "node-a", NULL, 0, &got, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(got[0].id, paused);
    free(got);
}

/* ---- fenced progress ---- */

static void test_progress_with_a_stale_lease_is_refused_and_changes_nothing(void **state)
{
    struct store_fixture *f = *state;
    char id[STORE_ID_MAX];
    struct err e = {0};
    make_task(f->s, id);
    struct task_claim old, cur;
    claim_and_let_expire(f->s, id, &old);
    claim_ok(f->s, "node-b", LONG_LEASE_MS, id, &cur);
    json_t *before = get(f->s, id);
    struct task_progress p = prog(&old, TASK_SUCCESS);
    p.step = 0, p.step_state = "done", p.message = "stale", p.info = "stale", p.next_step = 1;
    p.release = true, p.event = true;
    assert_int_equal(store_task_progress(f->s, &p, &e), ERR_CONFLICT);
    assert_non_null(strstr(e.msg, "no longer ours"));
    p.to = TASK_RUNNING;
    assert_int_equal(progress(f->s, &p), ERR_CONFLICT);
    json_t *after = get(f->s, id);
    assert_true(json_equal(before, after));
    json_decref(before);
    json_decref(after);
}

static void test_progress_after_an_operator_kill_is_refused(void **state)
{
    struct store_fixture *f = *state;
    char id[STORE_ID_MAX];
    struct err e = {0};
    make_task(f->s, id);
    struct task_claim c;
    claim_ok(f->s, "node-a", LONG_LEASE_MS, id, &c);
    assert_int_equal(control(f->s, id, VERB_KILL, &e), 0);
    json_t *before = get(f->s, id);
    assert_string_equal(jstr(before, "state"), "killed");
    assert_int_equal(jint(before, "lease_no"), c.lease_no + 1);
    assert_string_equal(step_state(before, 0), "failed");
    struct task_progress p = prog(&c, TASK_RUNNING);
    p.step = 0, p.step_state = "done", p.next_step = 1, p.event = true, p.message = "late";
    assert_int_equal(progress(f->s, &p), ERR_CONFLICT);
    p.to = TASK_SUCCESS;
    assert_int_equal(progress(f->s, &p), ERR_CONFLICT);
    json_t *after = get(f->s, id);
    assert_true(json_equal(before, after));
    json_decref(before);
    json_decref(after);
}

static void test_progress_to_success_ends_the_task_with_one_event(void **state)
{
    struct store_fixture *f = *state;
    char id[STORE_ID_MAX];
    make_task(f->s, id);
    struct task_claim c;
    claim_ok(f->s, "node-a", LONG_LEASE_MS, id, &c);
    struct task_progress p = prog(&c, TASK_REMOVED); /* not a move running may make */
    assert_int_equal(progress(f->s, &p), ERR_CONFLICT);
    p = prog(&c, TASK_RUNNING);
    p.step = 0, p.step_state = "done", p.message = "one", p.next_step = 1, p.attempt = 0;
    assert_int_equal(progress(f->s, &p), 0); /* no event asked for: none appended */
    json_t *t = get(f->s, id);
    size_t events = n_events(t);
    assert_int_equal(jint(t, "current_step"), 1);
    assert_string_equal(step_state(t, 0), "done");
    json_decref(t);
    int64_t before = wall_ms();
    p = prog(&c, TASK_SUCCESS);
    p.step = 1, p.step_state = "done", p.message = "Dropped it.", p.info = "Dropped it.";
    p.next_step = 2, p.release = true;
    assert_int_equal(progress(f->s, &p), 0);
    t = get(f->s, id);
    assert_string_equal(jstr(t, "state"), "success");
    assert_string_equal(jstr(t, "info"), "Dropped it.");
    assert_true(jint(t, "end_ms") >= before);
    assert_true(json_is_null(json_object_get(t, "lease_node")));
    assert_true(json_is_null(json_object_get(t, "lease_expires_ms")));
    assert_int_equal(n_events(t), events + 1);
    assert_string_equal(jstr(last_event(t), "from"), "running");
    assert_string_equal(jstr(last_event(t), "to"), "success");
    assert_string_equal(jstr(last_event(t), "message"), "Dropped it.");
    assert_string_equal(step_state(t, 1), "done");
    json_decref(t);
    assert_int_equal(progress(f->s, &p), ERR_CONFLICT); /* final: nothing more */
}

static void test_released_task_with_a_retry_time_waits_for_it(void **state)
{
    struct store_fixture *f = *state;
    char id[STORE_ID_MAX];
    make_task(f->s, id);
    struct task_claim c;
    claim_ok(f->s, "node-a", LONG_LEASE_MS, id, &c);
    int64_t not_before = wall_ms() + 300;
    struct task_progress p = prog(&c, TASK_RUNNING);
    p.attempt = 1, p.not_before_ms = not_before, p.release = true, p.event = true;
    p.message = "retrying in 300 ms";
    assert_int_equal(progress(f->s, &p), 0);
    json_t *t = get(f->s, id);
    assert_true(json_is_null(json_object_get(t, "lease_node")));
    assert_int_equal(jint(t, "attempt"), 1);
    json_decref(t);
    int rc;
    while ((rc = claim(f->s, "node-b", LONG_LEASE_MS, &c)) == ERR_NOT_FOUND)
        assert_true(wall_ms() < not_before + 5000);
    assert_int_equal(rc, 0);
    assert_true(wall_ms() >= not_before);
    assert_string_equal(c.id, id);
    assert_int_equal(c.lease_no, 2);
    t = get(f->s, id);
    assert_string_equal(jstr(last_event(t), "message"), "claimed; lease 2");
    json_decref(t);
}

/* ---- operator verbs ---- */

enum setup {
    AT_INITIAL,
    AT_LEASED,
    AT_UNLEASED,
    AT_PAUSED,
    AT_UNDOED,
    AT_FAILED,
    AT_SUCCESS,
    AT_KILLED,
    AT_REMOVED,
    AT_COUNT
};
static const char *const setup_state[AT_COUNT] = {
    "initial", "running", "running", "paused", "undoed", "failed", "success", "killed", "removed"};

/* A fresh 2-step task in the given situation; the store holds no other runnable task. */
static void put_task_at(struct store *s, enum setup at, char id[STORE_ID_MAX])
{
    struct err e = {0};
    struct task_claim c;
    make_task(s, id);
    if (at == AT_INITIAL)
        return;
    if (at == AT_REMOVED) {
        assert_int_equal(control(s, id, VERB_REMOVE, &e), 0);
        return;
    }
    claim_ok(s, "node-a", LONG_LEASE_MS, id, &c);
    struct task_progress p = prog(&c, TASK_RUNNING);
    p.release = true;
    switch (at) {
    case AT_LEASED:
        return;
    case AT_KILLED:
        assert_int_equal(control(s, id, VERB_KILL, &e), 0);
        return;
    case AT_PAUSED:
        p.to = TASK_PAUSED, p.step = 0, p.step_state = "failed", p.message = "boom";
        break;
    case AT_UNDOED:
        p.to = TASK_UNDOED;
        break;
    case AT_FAILED:
        p.to = TASK_FAILED;
        break;
    case AT_SUCCESS:
        p.to = TASK_SUCCESS;
        break;
    default:
        break; /* AT_UNLEASED: running, lease given back */
    }
    assert_int_equal(progress(s, &p), 0);
}

/* The state verb leads to from at, or NULL when it is refused (docs/admin-api.md). */
static const char *verb_result(enum task_verb v, enum setup at)
{
    switch (v) {
    case VERB_PAUSE:
        return at == AT_LEASED ? "running" : at == AT_UNLEASED ? "paused" : NULL;
    case VERB_RESUME:
    case VERB_SKIP:
        return at == AT_PAUSED ? "running" : NULL;
    case VERB_UNDO:
    case VERB_KILL:
        if (at == AT_LEASED || at == AT_UNLEASED || at == AT_PAUSED)
            return v == VERB_KILL ? "killed" : "running";
        return NULL;
    default:
        return at == AT_INITIAL ? "removed" : NULL;
    }
}

static void check_applied(enum task_verb v, enum setup at, json_t *before, json_t *t)
{
    int64_t lease_no = jint(before, "lease_no");
    assert_int_equal(n_events(t), n_events(before) + 1);
    assert_string_equal(jstr(last_event(t), "from"), setup_state[at]);
    assert_string_equal(jstr(last_event(t), "to"), verb_result(v, at));
    assert_string_equal(jstr(last_event(t), "node"), "operator");
    bool bumps = v == VERB_UNDO || v == VERB_KILL;
    bumps = bumps || (v == VERB_PAUSE && at == AT_UNLEASED); /* fences a lapsed holder out */
    assert_int_equal(jint(t, "lease_no"), lease_no + (bumps ? 1 : 0));
    bool keeps_lease = v == VERB_PAUSE && at == AT_LEASED;
    assert_int_equal(json_is_null(json_object_get(t, "lease_node")), !keeps_lease);
    assert_int_equal(jint(t, "pause_requested"), keeps_lease ? 1 : 0);
    assert_int_equal(json_is_null(json_object_get(t, "end_ms")),
                     !(v == VERB_KILL || v == VERB_REMOVE));
    /* The first step: resumed, skipped, or marked failed when a worker is cut short. */
    static const char *const step0[VERB_COUNT] = {[VERB_RESUME] = "pending",
                                                  [VERB_SKIP] = "skipped",
                                                  [VERB_UNDO] = "failed",
                                                  [VERB_KILL] = "failed"};
    static const int current[VERB_COUNT] = {[VERB_SKIP] = 1, [VERB_UNDO] = -1};
    if (step0[v])
        assert_string_equal(step_state(t, 0), step0[v]);
    assert_int_equal(jint(t, "current_step"), current[v]);
    assert_string_equal(jstr(t, "phase"), v == VERB_UNDO ? "undo" : "do");
}

static void test_every_verb_from_every_state(void **state)
{
    struct store_fixture *f = *state;
    for (int v = 0; v < VERB_COUNT; v++) {
        for (int at = 0; at < AT_COUNT; at++) {
            char id[STORE_ID_MAX];
            struct err e = {0};
            put_task_at(f->s, (enum setup)at, id);
            json_t *before = get(f->s, id);
            int rc = control(f->s, id, (enum task_verb)v, &e);
            json_t *t = get(f->s, id);
            const char *want = verb_result((enum task_verb)v, (enum setup)at);
            if (!want) {
                if (rc != ERR_CONFLICT)
                    fail_msg("%s from setup %d: rc %d, want a conflict", task_verb_name(v), at, rc);
                assert_non_null(strstr(e.msg, "needs"));
                assert_non_null(strstr(e.msg, setup_state[at]));
                assert_true(json_equal(before, t));
            } else {
                if (rc != 0)
                    fail_msg("%s from setup %d: %s", task_verb_name(v), at, e.msg);
                assert_string_equal(jstr(t, "state"), want);
                check_applied((enum task_verb)v, (enum setup)at, before, t);
            }
            /* Nothing of this task stays runnable for the next one's claim. */
            const char *now = jstr(t, "state");
            if (strcmp(now, "running") == 0)
                assert_int_equal(control(f->s, id, VERB_KILL, &e), 0);
            else if (strcmp(now, "initial") == 0)
                assert_int_equal(control(f->s, id, VERB_REMOVE, &e), 0);
            json_decref(before);
            json_decref(t);
        }
    }
}

static void test_pause_with_a_live_lease_is_requested_and_seen_at_renew(void **state)
{
    struct store_fixture *f = *state;
    char id[STORE_ID_MAX];
    struct err e = {0};
    make_task(f->s, id);
    struct task_claim c;
    claim_ok(f->s, "node-a", LONG_LEASE_MS, id, &c);
    assert_int_equal(control(f->s, id, VERB_PAUSE, &e), 0);
    struct task_lease_state ls;
    assert_int_equal(store_task_renew(f->s, id, c.lease_no, LONG_LEASE_MS, &ls, &e), 0);
    assert_true(ls.held);
    assert_true(ls.pause_requested);
    /* The holder pauses at its step boundary; the request is then spent. */
    struct task_progress p = prog(&c, TASK_PAUSED);
    p.release = true, p.message = "paused before step 2/2 as requested";
    assert_int_equal(progress(f->s, &p), 0);
    json_t *t = get(f->s, id);
    assert_string_equal(jstr(t, "state"), "paused");
    assert_int_equal(jint(t, "pause_requested"), 0);
    json_decref(t);
}

static void test_undo_takes_the_task_from_its_worker_for_the_undo_phase(void **state)
{
    struct store_fixture *f = *state;
    char id[STORE_ID_MAX];
    struct err e = {0};
    make_task(f->s, id);
    struct task_claim c, again;
    claim_ok(f->s, "node-a", LONG_LEASE_MS, id, &c);
    struct task_progress p = prog(&c, TASK_RUNNING);
    p.step = 0, p.step_state = "done", p.next_step = 1, p.event = true, p.message = "one";
    assert_int_equal(progress(f->s, &p), 0);
    assert_int_equal(control(f->s, id, VERB_UNDO, &e), 0);
    json_t *t = get(f->s, id);
    assert_string_equal(jstr(t, "phase"), "undo");
    assert_int_equal(jint(t, "current_step"), 0);
    assert_string_equal(step_state(t, 0), "done");   /* to be undone */
    assert_string_equal(step_state(t, 1), "failed"); /* cut short */
    assert_string_equal(jstr(json_array_get(json_object_get(t, "steps"), 1), "message"),
                        "stopped for undo");
    json_decref(t);
    p.step = 1, p.next_step = 2;
    assert_int_equal(progress(f->s, &p), ERR_CONFLICT);  /* the old worker is fenced out */
    claim_ok(f->s, "node-b", LONG_LEASE_MS, id, &again); /* at once, for the undo phase */
    assert_int_equal(again.lease_no, c.lease_no + 2);
}

static void test_external_tasks_are_never_claimed_and_undo_records_undoed(void **state)
{
    struct store_fixture *f = *state;
    char running[STORE_ID_MAX], initial[STORE_ID_MAX];
    struct err e = {0};
    struct task_claim c;
    make_task_of(f->s, 1, true, NULL, running);
    make_task_of(f->s, 1, true, NULL, initial);
    assert_int_equal(claim(f->s, "node-a", 1000, &c), ERR_NOT_FOUND);
    struct task_move m = {.id = running, .expect = TASK_INITIAL, .to = TASK_RUNNING, .node = "w"};
    assert_int_equal(store_task_move(f->s, &m, &e), 0); /* its worker reports it running */
    assert_int_equal(claim(f->s, "node-a", 1000, &c), ERR_NOT_FOUND);
    assert_int_equal(control(f->s, running, VERB_UNDO, &e), 0);
    json_t *t = get(f->s, running);
    assert_string_equal(jstr(t, "driver"), "external");
    assert_string_equal(jstr(t, "state"), "undoed");
    assert_true(jint(t, "end_ms") > 0);
    assert_string_equal(jstr(last_event(t), "to"), "undoed");
    json_decref(t);
    assert_int_equal(control(f->s, initial, VERB_UNDO, &e), ERR_CONFLICT);
}

static void test_pause_now_fences_out_the_holder_whose_lease_lapsed(void **state)
{
    struct store_fixture *f = *state;
    char id[STORE_ID_MAX];
    struct err e = {0};
    make_task(f->s, id);
    struct task_claim c;
    claim_and_let_expire(f->s, id, &c); /* its worker stalled past the lease */
    assert_int_equal(control(f->s, id, VERB_PAUSE, &e), 0);
    assert_int_equal(control(f->s, id, VERB_RESUME, &e), 0);
    json_t *before = get(f->s, id);
    struct task_progress p = prog(&c, TASK_SUCCESS);
    p.release = true;
    assert_int_equal(progress(f->s, &p), ERR_CONFLICT);
    json_t *after = get(f->s, id);
    assert_true(json_equal(before, after));
    json_decref(before);
    json_decref(after);
}

static void test_undo_during_the_undo_phase_keeps_the_step_being_undone(void **state)
{
    struct store_fixture *f = *state;
    char id[STORE_ID_MAX];
    struct err e = {0};
    make_task_of(f->s, 3, false, "undo", id);
    struct task_claim c;
    claim_ok(f->s, "node-a", LONG_LEASE_MS, id, &c);
    for (int i = 0; i < 2; i++) {
        struct task_progress p = prog(&c, TASK_RUNNING);
        p.step = i, p.step_state = "done", p.next_step = i + 1;
        assert_int_equal(progress(f->s, &p), 0);
    }
    struct task_progress p = prog(&c, TASK_RUNNING); /* step 3 failed: undo from step 2 */
    p.step = 2, p.step_state = "failed", p.next_step = 1, p.phase = "undo", p.event = true;
    assert_int_equal(progress(f->s, &p), 0);
    json_t *before = get(f->s, id);
    assert_int_equal(control(f->s, id, VERB_UNDO, &e), ERR_CONFLICT);
    assert_non_null(strstr(e.msg, "being undone already"));
    json_t *t = get(f->s, id);
    assert_true(json_equal(before, t));
    json_decref(t);
    /* Paused between undo retries, undo goes on from the same step. */
    p = prog(&c, TASK_RUNNING);
    p.release = true, p.attempt = 1, p.not_before_ms = 0;
    assert_int_equal(progress(f->s, &p), 0);
    assert_int_equal(control(f->s, id, VERB_PAUSE, &e), 0);
    assert_int_equal(control(f->s, id, VERB_UNDO, &e), 0);
    t = get(f->s, id);
    assert_string_equal(jstr(t, "state"), "running");
    assert_string_equal(jstr(t, "phase"), "undo");
    assert_int_equal(jint(t, "current_step"), 1);
    assert_string_equal(step_state(t, 1), "done");
    json_decref(t);
    json_decref(before);
}

/* ---- counts ---- */

static int64_t count_of(json_t *counts, const char *product, const char *st)
{
    size_t i;
    json_t *row;
    json_array_foreach(counts, i,
                       row) if (strcmp(jstr(row, "product"), product) == 0 &&
                                strcmp(jstr(row, "state"), st) == 0) return jint(row, "count");
    return 0;
}

static void test_task_counts_group_by_product_and_state(void **state)
{
    struct store_fixture *f = *state;
    struct err e = {0};
    char id[STORE_ID_MAX];
    for (int i = 0; i < 3; i++)
        make_task(f->s, id);
    assert_int_equal(control(f->s, id, VERB_REMOVE, &e), 0);
    json_t *steps = json_pack("[{s:s, s:{s:[s]}}]", "name", "m", "do", "exec", "/bin/true");
    struct task_new t = {
        .product = "mongodb", .region = "r", .uin = "1", .type = "T", .steps = steps, .node = "n"};
    for (int i = 0; i < 2; i++)
        assert_int_equal(store_task_create(f->s, &t, id, &e), 0);
    json_decref(steps);
    json_t *counts = NULL;
    assert_int_equal(store_task_counts(f->s, &counts, &e), 0);
    assert_int_equal(json_array_size(counts), 3);
    assert_int_equal(count_of(counts, "cdb", "initial"), 2);
    assert_int_equal(count_of(counts, "cdb", "removed"), 1);
    assert_int_equal(count_of(counts, "mongodb", "initial"), 2);
    size_t i;
    json_t *row;
    json_array_foreach(counts, i, row) /* the earliest creation of each group, for /metrics */
        assert_true(jint(row, "oldest_created_ms") > 0 &&
                    jint(row, "oldest_created_ms") <= wall_ms());
    json_decref(counts);
}

/* ---- concurrency ---- */

#define RACE_TASKS   200
#define RACE_THREADS 4

struct racer {
    struct store *s;
    char node[16];
    int n_done, errors;
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
        if (rc != 0) {
            r->errors++;
            break;
        }
        struct task_progress p = {.id = c.id,
                                  .lease_no = c.lease_no,
                                  .node = r->node,
                                  .to = TASK_SUCCESS,
                                  .step = -1,
                                  .next_step = -2,
                                  .attempt = -1,
                                  .release = true,
                                  .message = "done"};
        if (store_task_progress(r->s, &p, &e) != 0) /* a shared claim: the loser's write */
            r->errors++;
        else
            r->n_done++;
    }
    return NULL;
}

static void test_concurrent_claims_never_share_a_task(void **state)
{
    struct store_fixture *f = *state;
    char id[STORE_ID_MAX];
    for (int i = 0; i < RACE_TASKS; i++)
        make_task_of(f->s, 1, false, NULL, id);
    struct racer *r = calloc(RACE_THREADS, sizeof *r);
    pthread_t th[RACE_THREADS];
    for (int i = 0; i < RACE_THREADS; i++) {
        r[i].s = f->s;
        snprintf(r[i].node, sizeof r[i].node, "node-%d", i);
        assert_int_equal(pthread_create(&th[i], NULL, race_worker, &r[i]), 0);
    }
    int n = 0;
    for (int i = 0; i < RACE_THREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(r[i].errors, 0);
        n += r[i].n_done;
    }
    free(r);
    /* A task reaches success once, so RACE_TASKS completions and no refused write mean each
     * task was claimed and completed exactly once. */
    assert_int_equal(n, RACE_TASKS);
    json_t *counts = NULL;
    struct err e = {0};
    assert_int_equal(store_task_counts(f->s, &counts, &e), 0);
    assert_int_equal(json_array_size(counts), 1);
    assert_int_equal(count_of(counts, "cdb", "success"), RACE_TASKS);
    json_decref(counts);
}

/* ---- claims in batches, progress in batches ---- */

static int claim_batch(struct store *s, const char *node, int64_t lease_ms, const char *parallel,
                       size_t max, struct task_claim *out, size_t *n)
{
    struct err e = {0};
    int rc = store_task_claim_batch(s, node, lease_ms, parallel, max, out, n, &e);
    if (rc != 0 && rc != ERR_NOT_FOUND)
        fprintf(stderr, "task_claim_batch: %s\n", e.msg);
    return rc;
}

static void test_claim_batch_takes_one_task_per_instance_in_creation_order(void **state)
{
    struct store_fixture *f = *state;
    char a[STORE_ID_MAX], b[STORE_ID_MAX], other[STORE_ID_MAX], mongo[STORE_ID_MAX];
    char none[STORE_ID_MAX], c3[STORE_ID_MAX];
    make_task_on(f->s, "cdb", "cdb-1", a);
    make_task_on(f->s, "cdb", "cdb-1", b);
    make_task_on(f->s, "cdb", "cdb-2", other);
    make_task_on(f->s, "mongodb", "cdb-1", mongo);
    make_task_on(f->s, "cdb", NULL, none);
    make_task_on(f->s, "cdb", "cdb-1", c3);
    struct task_claim got[8];
    size_t n = 0;
    assert_int_equal(claim_batch(f->s, "node-a", LONG_LEASE_MS, NULL, 8, got, &n), 0);
    assert_int_equal(n, 4);
    const char *want[] = {a, other, mongo, none};
    const char *want_product[] = {"cdb", "cdb", "mongodb", "cdb"};
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(got[i].id, want[i]);
        assert_string_equal(got[i].product, want_product[i]);
        assert_int_equal(got[i].lease_no, 1);
        json_t *t = get(f->s, got[i].id);
        assert_string_equal(jstr(t, "state"), "running");
        assert_string_equal(jstr(t, "lease_node"), "node-a");
        assert_string_equal(jstr(last_event(t), "message"), "started; lease 1");
        json_decref(t);
    }
    /* b and c3 wait for a; the others are held. */
    assert_int_equal(claim_batch(f->s, "node-b", LONG_LEASE_MS, NULL, 8, got, &n), ERR_NOT_FOUND);
    assert_int_equal(n, 0);
    struct err e = {0};
    assert_int_equal(control(f->s, a, VERB_KILL, &e), 0);
    assert_int_equal(claim_batch(f->s, "node-b", LONG_LEASE_MS, NULL, 8, got, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(got[0].id, b);
}

static void test_claim_batch_lifts_the_instance_rule_for_the_parallel_products(void **state)
{
    struct store_fixture *f = *state;
    char a[STORE_ID_MAX], b[STORE_ID_MAX], m1[STORE_ID_MAX], m2[STORE_ID_MAX];
    make_task_on(f->s, "cdb", "cdb-1", a);
    make_task_on(f->s, "cdb", "cdb-1", b);
    make_task_on(f->s, "mongodb", "cmgo-1", m1);
    make_task_on(f->s, "mongodb", "cmgo-1", m2);
    struct task_claim got[8];
    size_t n = 0;
    assert_int_equal(claim_batch(f->s, "node-a", LONG_LEASE_MS, "redis,cdb", 8, got, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(got[0].id, a);
    assert_string_equal(got[1].id, b);
    assert_string_equal(got[2].id, m1);
    assert_int_equal(claim_batch(f->s, "node-a", LONG_LEASE_MS, "redis,cdb", 8, got, &n),
                     ERR_NOT_FOUND);
}

static void test_claim_batch_stops_at_max_and_numbers_each_lease(void **state)
{
    struct store_fixture *f = *state;
    char ids[5][STORE_ID_MAX];
    for (int i = 0; i < 5; i++) {
        make_task_on(f->s, "cdb", NULL, ids[i]);
    }
    struct task_claim got[8];
    size_t n = 0;
    /* 1 ms leases: the first two lapse and are taken over with the next number. */
    assert_int_equal(claim_batch(f->s, "node-a", 1, NULL, 2, got, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(got[0].id, ids[0]);
    assert_string_equal(got[1].id, ids[1]);
    struct task_claim stale = got[0];
    next_ms();
    next_ms();
    assert_int_equal(claim_batch(f->s, "node-b", LONG_LEASE_MS, NULL, 8, got, &n), 0);
    assert_int_equal(n, 5);
    for (int i = 0; i < 5; i++) {
        assert_string_equal(got[i].id, ids[i]);
        assert_int_equal(got[i].lease_no, i < 2 ? 2 : 1);
        assert_int_equal(got[i].from, i < 2 ? TASK_RUNNING : TASK_INITIAL);
        assert_int_equal(got[i].taken_over, i < 2);
    }
    json_t *t = get(f->s, ids[0]);
    assert_string_equal(jstr(last_event(t), "message"),
                        "lease of node-a expired; taken over, lease 2");
    json_decref(t);
    /* The first holder is fenced out; the new one writes. */
    struct task_progress p = prog(&stale, TASK_SUCCESS);
    p.release = true;
    assert_int_equal(progress(f->s, &p), ERR_CONFLICT);
    p = prog(&got[0], TASK_SUCCESS);
    p.release = true;
    assert_int_equal(progress(f->s, &p), 0);
}

/* A batch of 0 is a caller's mistake; one larger than STORE_CLAIM_BATCH_MAX takes that many. */
static void test_claim_batch_of_none_is_refused_and_a_larger_one_is_capped(void **state)
{
    struct store_fixture *f = *state;
    struct task_claim got[STORE_CLAIM_BATCH_MAX + 8];
    size_t n = 7;
    struct err e = {0};
    assert_int_equal(store_task_claim_batch(f->s, "node-a", LONG_LEASE_MS, NULL, 0, got, &n, &e),
                     ERR_INVALID_PARAMETER);
    assert_int_equal(n, 0);
    assert_string_equal(e.msg, "store: a claim batch of 0 tasks");
    for (int i = 0; i < STORE_CLAIM_BATCH_MAX + 2; i++) {
        char id[STORE_ID_MAX];
        make_task_of(f->s, 1, false, NULL, id);
    }
    assert_int_equal(
        claim_batch(f->s, "node-a", LONG_LEASE_MS, NULL, STORE_CLAIM_BATCH_MAX + 8, got, &n), 0);
    assert_int_equal(n, STORE_CLAIM_BATCH_MAX);
    assert_int_equal(claim_batch(f->s, "node-a", LONG_LEASE_MS, NULL, 8, got, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(claim_batch(f->s, "node-a", LONG_LEASE_MS, NULL, 8, got, &n), ERR_NOT_FOUND);
    assert_int_equal(n, 0);
}

static void test_progress_batch_judges_each_write_on_its_own(void **state)
{
    struct store_fixture *f = *state;
    char ids[3][STORE_ID_MAX];
    for (int i = 0; i < 3; i++)
        make_task_on(f->s, "cdb", NULL, ids[i]);
    struct task_claim got[3];
    size_t n = 0;
    assert_int_equal(claim_batch(f->s, "node-a", LONG_LEASE_MS, NULL, 3, got, &n), 0);
    assert_int_equal(n, 3);
    struct task_progress ps[3] = {prog(&got[0], TASK_SUCCESS), prog(&got[1], TASK_SUCCESS),
                                  prog(&got[2], TASK_PAUSED)};
    ps[1].lease_no = got[1].lease_no + 1; /* not the holder's number */
    for (int i = 0; i < 3; i++) {
        ps[i].release = true;
        ps[i].step = 0;
        ps[i].step_state = i == 2 ? "failed" : "done";
        ps[i].message = "batched";
    }
    int rcs[3] = {99, 99, 99};
    struct err e = {0};
    assert_int_equal(store_task_progress_batch(f->s, ps, 3, rcs, &e), 0);
    assert_int_equal(rcs[0], 0);
    assert_int_equal(rcs[1], ERR_CONFLICT);
    assert_int_equal(rcs[2], 0);
    const char *want[] = {"success", "running", "paused"};
    const char *want_step[] = {"done", "pending", "failed"};
    for (int i = 0; i < 3; i++) {
        json_t *t = get(f->s, ids[i]);
        assert_string_equal(jstr(t, "state"), want[i]);
        assert_string_equal(step_state(t, 0), want_step[i]);
        json_decref(t);
    }
    json_t *t = get(f->s, ids[1]); /* the refused write left it as claimed */
    assert_string_equal(jstr(t, "lease_node"), "node-a");
    assert_string_equal(jstr(last_event(t), "message"), "started; lease 1");
    json_decref(t);
}

/* A stale write is refused with the holder's lease in its message, written alone or in a batch
 * (on PostgreSQL: the bulk statement, and the write-by-write path a batch with two writes of one
 * task takes); the other writes of the batch apply. */
static void test_stale_progress_is_refused_on_every_path(void **state)
{
    struct store_fixture *f = *state;
    char a[STORE_ID_MAX], b[STORE_ID_MAX];
    make_task_on(f->s, "cdb", NULL, a);
    make_task_on(f->s, "cdb", NULL, b);
    struct task_claim old, cur, other;
    claim_and_let_expire(f->s, a, &old);
    claim_ok(f->s, "node-b", LONG_LEASE_MS, a, &cur);
    claim_ok(f->s, "node-b", LONG_LEASE_MS, b, &other);
    struct err e = {0};
    struct task_progress p = prog(&old, TASK_SUCCESS);
    p.release = true;
    assert_int_equal(store_task_progress(f->s, &p, &e), ERR_CONFLICT);
    char want[256];
    snprintf(want, sizeof want, "task %s is no longer ours: it is running, lease 2 (ours 1)", a);
    assert_string_equal(e.msg, want);
    int rcs[3] = {99, 99, 99};
    struct task_progress bulk[2] = {p, prog(&other, TASK_RUNNING)};
    bulk[1].event = true, bulk[1].message = "b goes on";
    assert_int_equal(store_task_progress_batch(f->s, bulk, 2, rcs, &e), 0);
    assert_int_equal(rcs[0], ERR_CONFLICT);
    assert_int_equal(rcs[1], 0);
    struct task_progress repeats[3] = {p, prog(&other, TASK_RUNNING), prog(&other, TASK_SUCCESS)};
    repeats[1].event = true, repeats[1].message = "b again";
    repeats[2].release = true, repeats[2].message = "b done";
    assert_int_equal(store_task_progress_batch(f->s, repeats, 3, rcs, &e), 0);
    assert_int_equal(rcs[0], ERR_CONFLICT);
    assert_int_equal(rcs[1], 0);
    assert_int_equal(rcs[2], 0);
    json_t *t = get(f->s, a);
    assert_string_equal(jstr(t, "state"), "running");
    assert_string_equal(jstr(t, "lease_node"), "node-b");
    json_decref(t);
    t = get(f->s, b);
    assert_string_equal(jstr(t, "state"), "success");
    json_t *evs = json_object_get(t, "events");
    size_t ne = json_array_size(evs);
    assert_string_equal(jstr(json_array_get(evs, ne - 3), "message"), "b goes on");
    assert_string_equal(jstr(json_array_get(evs, ne - 2), "message"), "b again");
    assert_string_equal(jstr(last_event(t), "message"), "b done");
    json_decref(t);
}

/* The first arg of the task's mysql step, as the store has it now. */
static char *mysql_arg0(struct store *s, const char *id)
{
    struct task *t = NULL;
    struct err e = {0};
    assert_int_equal(store_task_get(s, id, TASK_READ_STEPS, &t, &e), 0);
    json_t *args = json_object_get(json_object_get(t->steps[0].do_action, "mysql"), "args");
    char *v = strdup(json_string_value(json_array_get(args, 0)));
    task_free(t);
    return v;
}

/* A final write in a batch erases the step secrets of a task with a mysql step, beside a plain
 * write (on PostgreSQL the bulk statement leaves the first to the write-by-write path). */
static void test_progress_batch_final_write_erases_mysql_secrets(void **state)
{
    struct store_fixture *f = *state;
    json_t *steps = json_pack("[{s:s, s:{s:{s:s, s:[s, s]}}}]", "name", "create", "do", "mysql",
                              "sql", "CREATE USER {0:str}@{1:str}", "args", "bob", "%");
    struct task_new tn = {.product = "cdb",
                          .region = "ap-guangzhou",
                          .uin = "100000000001",
                          .type = "CreateAccounts",
                          .steps = steps,
                          .node = "node-1"};
    char m[STORE_ID_MAX], plain[STORE_ID_MAX];
    struct err e = {0};
    assert_int_equal(store_task_create(f->s, &tn, m, &e), 0);
    json_decref(steps);
    next_ms();
    make_task_on(f->s, "cdb", NULL, plain);
    struct task_claim got[2];
    size_t n = 0;
    assert_int_equal(claim_batch(f->s, "node-a", LONG_LEASE_MS, NULL, 2, got, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(got[0].id, m);
    char *before = mysql_arg0(f->s, m);
    assert_string_equal(before, "bob");
    free(before);
    struct task_progress ps[2] = {prog(&got[0], TASK_SUCCESS), prog(&got[1], TASK_SUCCESS)};
    for (int i = 0; i < 2; i++) {
        ps[i].step = 0, ps[i].step_state = "done", ps[i].next_step = 1;
        ps[i].release = true, ps[i].message = "made it";
    }
    int rcs[2] = {99, 99};
    assert_int_equal(store_task_progress_batch(f->s, ps, 2, rcs, &e), 0);
    assert_int_equal(rcs[0], 0);
    assert_int_equal(rcs[1], 0);
    char *after = mysql_arg0(f->s, m);
    assert_string_equal(after, "***");
    free(after);
    for (int i = 0; i < 2; i++) {
        json_t *t = get(f->s, got[i].id);
        assert_string_equal(jstr(t, "state"), "success");
        assert_string_equal(step_state(t, 0), "done");
        assert_string_equal(jstr(last_event(t), "message"), "made it");
        json_decref(t);
    }
}

/* The task as a comparable value: its own id and the times of day left out (only whether each
 * is set stays). */
static json_t *task_shape(struct store *s, const char *id)
{
    json_t *t = get(s, id);
    const char *drop[] = {"AsyncRequestId", "created_ms", "job_id", "created_at"};
    for (size_t i = 0; i < sizeof drop / sizeof drop[0]; i++)
        json_object_del(t, drop[i]);
    const char *times[] = {"start_ms", "end_ms", "lease_expires_ms", "start_time", "end_time"};
    for (size_t i = 0; i < sizeof times / sizeof times[0]; i++)
        json_object_set_new(t, times[i], json_boolean(!json_is_null(json_object_get(t, times[i]))));
    size_t k;
    json_t *ev;
    json_array_foreach(json_object_get(t, "events"), k, ev)
    {
        json_object_del(ev, "at_ms");
        json_object_del(ev, "at");
    }
    return t;
}

#define KINDS 5

/* Write kind k of progress_batch_matches_writes_one_by_one to the task claimed as c. */
static struct task_progress write_of_kind(const struct task_claim *c, int k)
{
    static const enum task_state to[KINDS] = {TASK_SUCCESS, TASK_RUNNING, TASK_PAUSED, TASK_RUNNING,
                                              TASK_FAILED};
    struct task_progress p = prog(c, to[k]);
    p.step = 0;
    switch (k) {
    case 0: /* the last step done */
        p.step_state = "done";
        p.message = "made it";
        p.event_message = "step 1/1 done: made it";
        p.step_output = "{\"k\":1}";
        p.info = "made it";
        p.next_step = 1;
        p.attempt = 0;
        p.release = p.event = true;
        break;
    case 1: /* a retry later */
        p.step = -1;
        p.message = "retrying";
        p.attempt = 1;
        p.not_before_ms = 4102444800000; /* 2100 */
        p.release = p.event = true;
        break;
    case 2: /* paused on a failure */
        p.step_state = "failed";
        p.message = p.info = "it broke";
        p.release = true;
        break;
    case 3: /* output kept, no event */
        p.step_state = "running";
        p.step_output = "{\"wake_ms\":5}";
        break;
    default: /* failed, Info cleared */
        p.step_state = "failed";
        p.message = "";
        p.info = "";
        p.release = true;
        break;
    }
    return p;
}

/* A batch writes what the same writes one by one write: steps, Info, events and leases; two
 * writes to one task in a batch both apply, in order. */
static void test_progress_batch_matches_writes_one_by_one(void **state)
{
    struct store_fixture *f = *state;
    char ids[2 * KINDS][STORE_ID_MAX];
    for (int i = 0; i < 2 * KINDS; i++)
        make_task_on(f->s, "cdb", NULL, ids[i]);
    struct task_claim got[2 * KINDS];
    size_t n = 0;
    assert_int_equal(claim_batch(f->s, "node-a", LONG_LEASE_MS, NULL, 2 * KINDS, got, &n), 0);
    assert_int_equal(n, 2 * KINDS);
    struct task_progress ps[KINDS];
    int rcs[KINDS];
    struct err e = {0};
    for (int k = 0; k < KINDS; k++) {
        struct task_progress p = write_of_kind(&got[k], k);
        assert_int_equal(progress(f->s, &p), 0);
        ps[k] = write_of_kind(&got[KINDS + k], k);
    }
    assert_int_equal(store_task_progress_batch(f->s, ps, KINDS, rcs, &e), 0);
    for (int k = 0; k < KINDS; k++) {
        assert_int_equal(rcs[k], 0);
        json_t *one = task_shape(f->s, got[k].id), *batched = task_shape(f->s, got[KINDS + k].id);
        char *a = json_dumps(one, JSON_SORT_KEYS), *b = json_dumps(batched, JSON_SORT_KEYS);
        assert_string_equal(b, a);
        free(a);
        free(b);
        json_decref(one);
        json_decref(batched);
    }
    /* got[3] still runs under its lease: a step event, then its end, in one batch */
    struct task_progress twice[2] = {prog(&got[3], TASK_RUNNING), prog(&got[3], TASK_SUCCESS)};
    twice[0].message = "halfway";
    twice[0].event = true;
    twice[1].message = "all done";
    twice[1].release = true;
    assert_int_equal(store_task_progress_batch(f->s, twice, 2, rcs, &e), 0);
    assert_int_equal(rcs[0], 0);
    assert_int_equal(rcs[1], 0);
    json_t *t = get(f->s, got[3].id);
    assert_string_equal(jstr(t, "state"), "success");
    json_t *evs = json_object_get(t, "events");
    size_t ne = json_array_size(evs);
    assert_true(ne >= 3);
    assert_string_equal(jstr(json_array_get(evs, ne - 2), "message"), "halfway");
    assert_string_equal(jstr(json_array_get(evs, ne - 1), "message"), "all done");
    json_decref(t);
}

#define BATCH_RACE_THREADS 4
#define BATCH_RACE_MAX     8

static void *batch_race_worker(void *arg)
{
    struct racer *r = arg;
    for (;;) {
        struct task_claim got[BATCH_RACE_MAX];
        size_t n = 0;
        struct err e = {0};
        int rc =
            store_task_claim_batch(r->s, r->node, LONG_LEASE_MS, NULL, BATCH_RACE_MAX, got, &n, &e);
        if (rc == ERR_NOT_FOUND)
            break;
        if (rc != 0 || n == 0) {
            r->errors++;
            break;
        }
        struct task_progress ps[BATCH_RACE_MAX];
        int rcs[BATCH_RACE_MAX];
        for (size_t i = 0; i < n; i++)
            ps[i] = (struct task_progress){.id = got[i].id,
                                           .lease_no = got[i].lease_no,
                                           .node = r->node,
                                           .to = TASK_SUCCESS,
                                           .step = -1,
                                           .next_step = -2,
                                           .attempt = -1,
                                           .release = true,
                                           .message = "done"};
        if (store_task_progress_batch(r->s, ps, n, rcs, &e) != 0)
            r->errors++;
        for (size_t i = 0; i < n; i++) {
            if (rcs[i] != 0) /* a shared claim: the loser's write */
                r->errors++;
            else
                r->n_done++;
        }
    }
    return NULL;
}

static void test_concurrent_claim_batches_never_share_a_task(void **state)
{
    struct store_fixture *f = *state;
    char id[STORE_ID_MAX];
    for (int i = 0; i < RACE_TASKS; i++)
        make_task_of(f->s, 1, false, NULL, id);
    struct racer r[BATCH_RACE_THREADS];
    memset(r, 0, sizeof r);
    pthread_t th[BATCH_RACE_THREADS];
    for (int i = 0; i < BATCH_RACE_THREADS; i++) {
        r[i].s = f->s;
        snprintf(r[i].node, sizeof r[i].node, "node-%d", i);
        assert_int_equal(pthread_create(&th[i], NULL, batch_race_worker, &r[i]), 0);
    }
    int n = 0;
    for (int i = 0; i < BATCH_RACE_THREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(r[i].errors, 0);
        n += r[i].n_done;
    }
    assert_int_equal(n, RACE_TASKS);
    json_t *counts = NULL;
    struct err e = {0};
    assert_int_equal(store_task_counts(f->s, &counts, &e), 0);
    assert_int_equal(count_of(counts, "cdb", "success"), RACE_TASKS);
    json_decref(counts);
}

/* ?claim=update claims one task per call, batch or not. */
static void test_claim_batch_with_claim_update_takes_one_at_a_time(void **state)
{
    struct store_fixture *f = *state;
    char a[STORE_ID_MAX], b[STORE_ID_MAX];
    make_task_on(f->s, "cdb", NULL, a);
    make_task_on(f->s, "cdb", NULL, b);
    struct task_claim got[4];
    size_t n = 0;
    assert_int_equal(claim_batch(f->s, "node-a", LONG_LEASE_MS, NULL, 4, got, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(got[0].id, a);
    assert_int_equal(got[0].lease_no, 1);
    assert_int_equal(claim_batch(f->s, "node-a", LONG_LEASE_MS, NULL, 4, got, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(got[0].id, b);
}

/* Batch claims and progress: SQLite and PostgreSQL's SKIP LOCKED statement. */
#define BATCH_CONTRACT(X)                                                                          \
    X(test_claim_batch_takes_one_task_per_instance_in_creation_order)                              \
    X(test_claim_batch_lifts_the_instance_rule_for_the_parallel_products)                          \
    X(test_claim_batch_stops_at_max_and_numbers_each_lease)                                        \
    X(test_claim_batch_of_none_is_refused_and_a_larger_one_is_capped)                              \
    X(test_progress_batch_judges_each_write_on_its_own)                                            \
    X(test_progress_batch_matches_writes_one_by_one)                                               \
    X(test_stale_progress_is_refused_on_every_path)                                                \
    X(test_progress_batch_final_write_erases_mysql_secrets)                                        \
    X(test_concurrent_claim_batches_never_share_a_task)

/* The contract: every test here runs on each backend. */
#define CONTRACT(X)                                                                                \
    X(test_claim_takes_the_oldest_runnable_task_and_starts_it)                                     \
    X(test_live_lease_blocks_other_nodes_expired_lease_is_taken_over)                              \
    X(test_lease_no_grows_at_every_claim)                                                          \
    X(test_release_node_leases_frees_only_that_nodes_tasks)                                        \
    X(test_renew_extends_only_the_current_lease)                                                   \
    X(test_node_renew_renews_every_lease_of_the_node_in_one_call)                                  \
    X(test_node_renew_leaves_out_expired_and_taken_over_leases)                                    \
    X(test_node_renew_reports_a_pause_and_drops_a_killed_task)                                     \
    X(test_progress_with_a_stale_lease_is_refused_and_changes_nothing)                             \
    X(test_progress_after_an_operator_kill_is_refused)                                             \
    X(test_progress_to_success_ends_the_task_with_one_event)                                       \
    X(test_released_task_with_a_retry_time_waits_for_it)                                           \
    X(test_every_verb_from_every_state)                                                            \
    X(test_pause_with_a_live_lease_is_requested_and_seen_at_renew)                                 \
    X(test_undo_takes_the_task_from_its_worker_for_the_undo_phase)                                 \
    X(test_external_tasks_are_never_claimed_and_undo_records_undoed)                               \
    X(test_pause_now_fences_out_the_holder_whose_lease_lapsed)                                     \
    X(test_undo_during_the_undo_phase_keeps_the_step_being_undone)                                 \
    X(test_task_counts_group_by_product_and_state)                                                 \
    X(test_concurrent_claims_never_share_a_task)                                                   \
    X(test_tasks_on_one_instance_are_claimed_one_at_a_time_in_order)                               \
    X(test_instance_rule_is_lifted_for_the_parallel_products)
#define ON_SQLITE(name)    cmocka_unit_test_setup_teardown(name, setup, teardown),
#define ON_PG(name)        cmocka_unit_test_setup_teardown(name, setup_pg, teardown),
#define ON_PG_UPDATE(name) cmocka_unit_test_setup_teardown(name, setup_pg_update, teardown),

int main(void)
{
    const struct CMUnitTest sqlite[] = {CONTRACT(ON_SQLITE) BATCH_CONTRACT(ON_SQLITE)};
    const struct CMUnitTest pg[] = {CONTRACT(ON_PG) BATCH_CONTRACT(ON_PG)};
    const struct CMUnitTest pg_update[] = {CONTRACT(ON_PG_UPDATE) ON_PG_UPDATE(
        test_claim_batch_with_claim_update_takes_one_at_a_time)};
    return STORE_FIXTURE_RUN_CLAIMS("test_lease: the postgres groups", sqlite, pg, pg_update);
}
