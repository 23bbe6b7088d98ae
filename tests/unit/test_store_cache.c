/* Unit tests for store_cache: what it serves from memory and when a write makes it ask again,
 * on the real SQLite store and on a fake backend whose reads can race a write on purpose. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"
#include "store/store_cache.h"

#include "fixture.h"

/* ---- a fake backend: one task and one account, and a hook run inside a read ---- */

struct fake {
    struct store base;
    struct task_summary task;
    struct account account;
    struct instance instance;
    struct token token;
    int summary_reads, account_reads, instance_reads, token_reads;
    struct store *outer;                 /* the cache wrapping this fake */
    void (*during_read)(struct fake *f); /* run once, mid-read, after the row was "read" */
};

static struct fake *fake_of(struct store *s) { return (struct fake *)s; }

static int fake_summary(struct store *s, const char *product, const char *id,
                        struct task_summary *out, struct err *e)
{
    struct fake *f = fake_of(s);
    f->summary_reads++;
    if (strcmp(id, f->task.id) != 0 || strcmp(product, f->task.product) != 0)
        return err_set(e, ERR_NOT_FOUND, "no such task");
    *out = f->task; /* what this read saw; a write may land before it returns */
    void (*hook)(struct fake *) = f->during_read;
    f->during_read = NULL;
    if (hook)
        hook(f);
    return 0;
}

static int fake_move(struct store *s, const struct task_move *m, struct err *e)
{
    struct fake *f = fake_of(s);
    if (f->task.state != m->expect)
        return err_set(e, ERR_CONFLICT, "moved on");
    f->task.state = m->to;
    return 0;
}

static int fake_account(struct store *s, const char *secret_id, struct account *out, struct err *e)
{
    struct fake *f = fake_of(s);
    f->account_reads++;
    if (!f->account.secret_id[0] || strcmp(secret_id, f->account.secret_id) != 0)
        return err_set(e, ERR_NOT_FOUND, "no such key");
    *out = f->account;
    out->policy_json = f->account.policy_json ? strdup(f->account.policy_json) : NULL;
    return 0;
}

/* The fake's "policy" write also rotates or removes the key, to stand for any account write. */
static int fake_set_policy(struct store *s, const char *uin, const char *policy, struct err *e)
{
    (void)uin, (void)e;
    struct fake *f = fake_of(s);
    if (!policy)
        f->account.secret_id[0] = '\0'; /* removed */
    else
        snprintf(f->account.secret_key, sizeof f->account.secret_key, "%s", policy);
    return 0;
}

static int fake_instance_get(struct store *s, const char *product, const char *id,
                             struct instance *out, struct err *e)
{
    struct fake *f = fake_of(s);
    f->instance_reads++;
    if (strcmp(product, f->instance.product) != 0 || strcmp(id, f->instance.instance_id) != 0)
        return err_set(e, ERR_NOT_FOUND, "no such instance");
    *out = f->instance;
    return 0;
}

static int fake_instance_update(struct store *s, const char *id, const char *status,
                                const char *dsn, const char *reserved, struct instance *out,
                                struct err *e)
{
    (void)id, (void)dsn, (void)reserved, (void)e;
    struct fake *f = fake_of(s);
    if (status)
        snprintf(f->instance.status, sizeof f->instance.status, "%s", status);
    if (out)
        *out = f->instance;
    return 0;
}

/* The fake's purge removes its one task if it is final, and names it. */
static int fake_purge(struct store *s, const struct purge_req *r, struct purge_result *out,
                      struct err *e)
{
    (void)r, (void)e;
    struct fake *f = fake_of(s);
    memset(out, 0, sizeof *out);
    if (f->task.id[0] && task_state_is_final(f->task.state)) {
        out->ids = calloc(1, sizeof *out->ids);
        snprintf(out->ids[0], STORE_ID_MAX, "%s", f->task.id);
        out->n_tasks = 1;
        f->task.id[0] = '\0';
    }
    return 0;
}

static int fake_token_by_hash(struct store *s, const char *hash, struct token *out, struct err *e)
{
    struct fake *f = fake_of(s);
    f->token_reads++;
    if (strcmp(hash, f->token.hash) != 0)
        return err_set(e, ERR_NOT_FOUND, "no such token");
    *out = f->token;
    return 0;
}

static void fake_close(struct store *s) { free(s); }

static const struct store_ops fake_ops = {
    .name = "fake",
    .close = fake_close,
    .task_summary = fake_summary,
    .task_move = fake_move,
    .account_by_secret_id = fake_account,
    .account_set_policy = fake_set_policy,
    .instance_get = fake_instance_get,
    .instance_update = fake_instance_update,
    .purge = fake_purge,
    .token_by_hash = fake_token_by_hash,
};

static struct fake *fake_new(bool shared, enum task_state state)
{
    struct fake *f = calloc(1, sizeof *f);
    f->base.ops = &fake_ops;
    snprintf(f->task.id, sizeof f->task.id, "aaaaaaaa-bbbbbbbb-cccccccc-dddddddd");
    snprintf(f->task.product, sizeof f->task.product, "cdb");
    snprintf(f->task.uin, sizeof f->task.uin, "100");
    f->task.state = state;
    snprintf(f->account.secret_id, sizeof f->account.secret_id, "AKIDfake");
    snprintf(f->account.secret_key, sizeof f->account.secret_key, "key-1");
    snprintf(f->instance.product, sizeof f->instance.product, "mongodb");
    snprintf(f->instance.instance_id, sizeof f->instance.instance_id, "cmgo-1");
    snprintf(f->instance.status, sizeof f->instance.status, "running");
    snprintf(f->token.id, sizeof f->token.id, "tok-1");
    snprintf(f->token.hash, sizeof f->token.hash, "%064d", 1);
    f->outer = store_cache_wrap(&f->base, shared);
    return f;
}

static enum task_state read_state(struct fake *f)
{
    struct task_summary t;
    struct err e = {0};
    assert_int_equal(store_task_summary(f->outer, "cdb", f->task.id, &t, &e), 0);
    return t.state;
}

static void move_to(struct fake *f, enum task_state from, enum task_state to)
{
    struct task_move m = {.id = f->task.id, .expect = from, .to = to, .node = "n"};
    struct err e = {0};
    assert_int_equal(store_task_move(f->outer, &m, &e), 0);
}

static void write_success_mid_read(struct fake *f) { move_to(f, TASK_RUNNING, TASK_SUCCESS); }

static void test_a_read_racing_a_write_is_not_kept(void **state)
{
    (void)state;
    struct fake *f = fake_new(false, TASK_RUNNING);
    f->during_read = write_success_mid_read;
    assert_int_equal(read_state(f), TASK_RUNNING); /* concurrent with the write: either is right */
    assert_int_equal(read_state(f), TASK_SUCCESS); /* but the stale row was not cached */
    int reads = f->summary_reads;
    assert_int_equal(read_state(f), TASK_SUCCESS);
    assert_int_equal(f->summary_reads, reads); /* now from memory */
    store_close(f->outer);
}

/* Another node wrote SUCCESS while this read of RUNNING was in flight, and a second reader on
 * this node saw SUCCESS first: the late RUNNING must not replace it. */
static void read_success_from_another_reader(struct fake *f)
{
    f->task.state = TASK_SUCCESS; /* written by another node: the cache is not told */
    assert_int_equal(read_state(f), TASK_SUCCESS);
}

static void test_shared_final_state_is_never_replaced_by_an_older_one(void **state)
{
    (void)state;
    struct fake *f = fake_new(true, TASK_RUNNING);
    f->during_read = read_success_from_another_reader;
    assert_int_equal(read_state(f), TASK_RUNNING);
    int reads = f->summary_reads;
    assert_int_equal(read_state(f), TASK_SUCCESS);
    assert_int_equal(f->summary_reads, reads); /* the final state, from memory */
    store_close(f->outer);
}

static void test_shared_non_final_state_always_asks_the_store(void **state)
{
    (void)state;
    struct fake *f = fake_new(true, TASK_RUNNING);
    assert_int_equal(read_state(f), TASK_RUNNING);
    assert_int_equal(read_state(f), TASK_RUNNING);
    assert_int_equal(f->summary_reads, 2);
    f->task.state = TASK_FAILED; /* another node's write */
    assert_int_equal(read_state(f), TASK_FAILED);
    assert_int_equal(read_state(f), TASK_FAILED);
    assert_int_equal(f->summary_reads, 3);
    store_close(f->outer);
}

static void test_exclusive_caches_non_final_states_and_sees_writes_at_once(void **state)
{
    (void)state;
    struct fake *f = fake_new(false, TASK_INITIAL);
    assert_int_equal(read_state(f), TASK_INITIAL);
    assert_int_equal(read_state(f), TASK_INITIAL);
    assert_int_equal(f->summary_reads, 1);
    move_to(f, TASK_INITIAL, TASK_RUNNING);
    assert_int_equal(read_state(f), TASK_RUNNING);
    move_to(f, TASK_RUNNING, TASK_PAUSED);
    assert_int_equal(read_state(f), TASK_PAUSED);
    store_close(f->outer);
}

static void test_account_key_rotation_and_removal_are_seen_at_once(void **state)
{
    (void)state;
    struct fake *f = fake_new(false, TASK_INITIAL);
    struct account a = {0};
    struct err e = {0};
    assert_int_equal(store_account_by_secret_id(f->outer, "AKIDfake", &a, &e), 0);
    account_clear(&a);
    assert_int_equal(store_account_by_secret_id(f->outer, "AKIDfake", &a, &e), 0);
    account_clear(&a);
    assert_int_equal(f->account_reads, 1);
    assert_int_equal(store_account_set_policy(f->outer, "100", "key-2", &e), 0); /* rotation */
    assert_int_equal(store_account_by_secret_id(f->outer, "AKIDfake", &a, &e), 0);
    assert_string_equal(a.secret_key, "key-2");
    account_clear(&a);
    assert_int_equal(store_account_set_policy(f->outer, "100", NULL, &e), 0); /* removal */
    assert_int_equal(store_account_by_secret_id(f->outer, "AKIDfake", &a, &e), ERR_NOT_FOUND);
    store_close(f->outer);
}

static void test_shared_accounts_expire_within_the_bound(void **state)
{
    (void)state;
    struct fake *f = fake_new(true, TASK_INITIAL);
    struct account a = {0};
    struct err e = {0};
    assert_int_equal(store_account_by_secret_id(f->outer, "AKIDfake", &a, &e), 0);
    account_clear(&a);
    f->account.secret_id[0] = '\0'; /* removed through another node */
    usleep((STORE_CACHE_SHARED_TTL_MS + 50) * 1000);
    assert_int_equal(store_account_by_secret_id(f->outer, "AKIDfake", &a, &e), ERR_NOT_FOUND);
    store_close(f->outer);
}

static const char *instance_status(struct fake *f, char buf[16])
{
    struct instance in;
    struct err e = {0};
    assert_int_equal(store_instance_get(f->outer, "mongodb", "cmgo-1", &in, &e), 0);
    memcpy(buf, in.status, 16);
    return buf;
}

static void test_instance_status_change_is_seen_at_once(void **state)
{
    (void)state;
    struct fake *f = fake_new(false, TASK_INITIAL);
    struct err e = {0};
    char buf[16];
    assert_string_equal(instance_status(f, buf), "running");
    assert_string_equal(instance_status(f, buf), "running");
    assert_int_equal(f->instance_reads, 1);
    assert_int_equal(store_instance_update(f->outer, "cmgo-1", "isolated", NULL, NULL, NULL, &e),
                     0);
    assert_string_equal(instance_status(f, buf), "isolated");
    store_close(f->outer);
}

/* Another node may revoke a token: in shared mode every lookup asks the store, so the
 * revocation holds at the next request here too. */
static void test_shared_tokens_always_ask_the_store(void **state)
{
    (void)state;
    struct fake *f = fake_new(true, TASK_INITIAL);
    struct token t;
    struct err e = {0};
    assert_int_equal(store_token_by_hash(f->outer, f->token.hash, &t, &e), 0);
    f->token.hash[0] = '\0'; /* revoked through another node */
    assert_int_equal(store_token_by_hash(f->outer, t.hash, &t, &e), ERR_NOT_FOUND);
    assert_int_equal(f->token_reads, 2);
    store_close(f->outer);
}

/* ---- the real SQLite store, opened as asyncd opens it ---- */

struct fixture {
    char dir[64];
    struct store *s;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    struct err e = {0};
    if (fixture_mkdtemp(f->dir, sizeof f->dir, "test_store_cache") != 0 ||
        store_open(NULL, f->dir, &f->s, &e) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    store_close(f->s);
    fixture_rm_tree(f->dir);
    free(f);
    return 0;
}

static void make_task(struct store *s, char id[STORE_ID_MAX])
{
    json_t *steps = json_pack("[{s:s, s:{s:[s]}}]", "name", "x", "do", "exec", "/bin/true");
    struct task_new t = {.product = "cdb",
                         .region = "ap-guangzhou",
                         .uin = "100",
                         .type = "T",
                         .steps = steps,
                         .node = "node-1"};
    struct err e = {0};
    assert_int_equal(store_task_create(s, &t, id, &e), 0);
    json_decref(steps);
}

static enum task_state sqlite_state(struct store *s, const char *id)
{
    struct task_summary t;
    struct err e = {0};
    assert_int_equal(store_task_summary(s, "cdb", id, &t, &e), 0);
    return t.state;
}

static void test_sqlite_state_changes_are_seen_at_once(void **state)
{
    struct fixture *f = *state;
    char id[STORE_ID_MAX];
    struct err e = {0};
    struct store_cache_stats st;
    make_task(f->s, id);
    assert_int_equal(sqlite_state(f->s, id), TASK_INITIAL);
    assert_int_equal(sqlite_state(f->s, id), TASK_INITIAL);
    store_cache_stats(f->s, &st);
    assert_true(st.task_hits >= 1);
    struct task_claim c;
    assert_int_equal(store_task_claim(f->s, "node-1", 15000, &c, &e), 0); /* id unknown before */
    assert_string_equal(c.id, id);
    assert_int_equal(sqlite_state(f->s, id), TASK_RUNNING);
    assert_int_equal(store_task_control(f->s, id, VERB_KILL, "node-1", "stop", &e), 0);
    assert_int_equal(sqlite_state(f->s, id), TASK_KILLED);
    assert_int_equal(sqlite_state(f->s, id), TASK_KILLED);
}

static void create_root(struct store *s, const char *uin, const char *secret_id)
{
    struct account a = {.is_root = true};
    struct err e = {0};
    snprintf(a.uin, sizeof a.uin, "%s", uin);
    snprintf(a.owner_uin, sizeof a.owner_uin, "%s", uin);
    snprintf(a.app_id, sizeof a.app_id, "1250000000");
    snprintf(a.secret_id, sizeof a.secret_id, "%s", secret_id);
    snprintf(a.secret_key, sizeof a.secret_key, "k");
    assert_int_equal(store_account_create(s, &a, &e), 0);
}

static void test_sqlite_policy_change_is_seen_at_once(void **state)
{
    struct fixture *f = *state;
    struct account got = {0};
    struct err e = {0};
    create_root(f->s, "100", "AKIDsqlite");
    for (int i = 0; i < 2; i++) {
        assert_int_equal(store_account_by_secret_id(f->s, "AKIDsqlite", &got, &e), 0);
        assert_null(got.policy_json);
        account_clear(&got);
    }
    assert_int_equal(store_account_set_policy(f->s, "100", "[\"cdb:*\"]", &e), 0);
    assert_int_equal(store_account_by_secret_id(f->s, "AKIDsqlite", &got, &e), 0);
    assert_non_null(got.policy_json);
    assert_non_null(strstr(got.policy_json, "cdb:*"));
    account_clear(&got);
}

static void test_sqlite_token_revocation_holds_at_the_next_lookup(void **state)
{
    struct fixture *f = *state;
    struct token t = {.created_ms = 1}, got;
    struct err e = {0};
    snprintf(t.id, sizeof t.id, "tok-0123456789abcdef");
    snprintf(t.name, sizeof t.name, "ci");
    snprintf(t.scope, sizeof t.scope, "operator");
    snprintf(t.hash, sizeof t.hash, "%064d", 7);
    assert_int_equal(store_token_create(f->s, &t, &e), 0);
    for (int i = 0; i < 2; i++) { /* the second from memory */
        assert_int_equal(store_token_by_hash(f->s, t.hash, &got, &e), 0);
        assert_string_equal(got.id, t.id);
    }
    assert_int_equal(store_token_touch(f->s, t.id, 5000, &e), 0);
    assert_int_equal(store_token_by_hash(f->s, t.hash, &got, &e), 0);
    assert_int_equal(got.last_used_ms, 5000);
    assert_int_equal(store_token_revoke(f->s, t.id, &e), 0);
    assert_int_equal(store_token_by_hash(f->s, t.hash, &got, &e), ERR_NOT_FOUND);
}

static void by_uin(struct store *s, const char *uin, struct account *out)
{
    struct err e = {0};
    assert_int_equal(store_account_by_uin(s, uin, out, &e), 0);
    account_clear(out);
}

static void test_sqlite_account_by_uin_sees_writes_at_once(void **state)
{
    struct fixture *f = *state;
    struct account got = {0};
    struct err e = {0};
    create_root(f->s, "200", "AKIDfirst");
    by_uin(f->s, "200", &got);
    by_uin(f->s, "200", &got); /* from memory */
    assert_string_equal(got.secret_id, "AKIDfirst");
    assert_false(got.disabled);
    assert_int_equal(store_account_set_disabled(f->s, "200", true, &e), 0);
    by_uin(f->s, "200", &got);
    assert_true(got.disabled);
    assert_int_equal(store_account_key_create(f->s, "200", "AKIDsecond", "k2", 5, &e), 0);
    assert_int_equal(store_account_key_set_enabled(f->s, "200", "AKIDfirst", false, &e), 0);
    by_uin(f->s, "200", &got);
    assert_string_equal(got.secret_id, "AKIDsecond"); /* its first enabled key now */
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int read_rc(struct fake *f, const char *id)
{
    struct task_summary t;
    struct err e = {0};
    return store_task_summary(f->outer, "cdb", id, &t, &e);
}

static void test_a_purge_drops_the_entries_of_the_tasks_it_removed(void **state)
{
    (void)state;
    struct fake *f = fake_new(false, TASK_SUCCESS);
    f->task.end_ms = wall_ms();
    char id[STORE_ID_MAX];
    snprintf(id, sizeof id, "%s", f->task.id);
    assert_int_equal(read_rc(f, id), 0);
    assert_int_equal(read_rc(f, id), 0);
    assert_int_equal(f->summary_reads, 1); /* cached */
    struct purge_req r = {.tasks_before_ms = wall_ms() + 1, .max = 10};
    struct purge_result out;
    struct err e = {0};
    assert_int_equal(store_purge(f->outer, &r, &out, &e), 0);
    assert_int_equal(out.n_tasks, 1);
    free(out.ids);
    assert_int_equal(read_rc(f, id), ERR_NOT_FOUND);
    assert_int_equal(f->summary_reads, 2);
    store_close(f->outer);
}

/* Another node purged the task: this node's cache was never told, but an entry that ended longer
 * ago than the retention is a miss, so the store's answer (no such task) is what it says. */
static void test_shared_final_entry_past_the_retention_asks_the_store(void **state)
{
    (void)state;
    struct fake *f = fake_new(true, TASK_SUCCESS);
    f->task.end_ms = wall_ms() - 10000;
    char id[STORE_ID_MAX];
    snprintf(id, sizeof id, "%s", f->task.id);
    assert_int_equal(read_rc(f, id), 0);
    assert_int_equal(read_rc(f, id), 0);
    assert_int_equal(f->summary_reads, 1); /* no retention yet: cached */
    store_cache_set_retention(f->outer, 5000);
    f->task.id[0] = '\0'; /* purged through another node */
    assert_int_equal(read_rc(f, id), ERR_NOT_FOUND);
    assert_int_equal(f->summary_reads, 2);
    store_close(f->outer);
}

static void test_final_entry_within_the_retention_stays_cached(void **state)
{
    (void)state;
    struct fake *f = fake_new(true, TASK_FAILED);
    f->task.end_ms = wall_ms();
    store_cache_set_retention(f->outer, 60000);
    assert_int_equal(read_rc(f, f->task.id), 0);
    assert_int_equal(read_rc(f, f->task.id), 0);
    assert_int_equal(f->summary_reads, 1);
    store_close(f->outer);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_read_racing_a_write_is_not_kept),
        cmocka_unit_test(test_shared_final_state_is_never_replaced_by_an_older_one),
        cmocka_unit_test(test_shared_non_final_state_always_asks_the_store),
        cmocka_unit_test(test_exclusive_caches_non_final_states_and_sees_writes_at_once),
        cmocka_unit_test(test_account_key_rotation_and_removal_are_seen_at_once),
        cmocka_unit_test(test_shared_accounts_expire_within_the_bound),
        cmocka_unit_test(test_instance_status_change_is_seen_at_once),
        cmocka_unit_test(test_a_purge_drops_the_entries_of_the_tasks_it_removed),
        cmocka_unit_test(test_shared_final_entry_past_the_retention_asks_the_store),
        cmocka_unit_test(test_final_entry_within_the_retention_stays_cached),
        cmocka_unit_test(test_shared_tokens_always_ask_the_store),
        cmocka_unit_test_setup_teardown(test_sqlite_token_revocation_holds_at_the_next_lookup,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_sqlite_account_by_uin_sees_writes_at_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sqlite_state_changes_are_seen_at_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sqlite_policy_change_is_seen_at_once, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
