/* Unit tests: the task engine (DESIGN.md 5) on a temp SQLite store, running /bin/sh steps that
 * leave their traces in a temp directory: order, retries, on_failure, undo, operator verbs, drain,
 * and fencing (a worker that lost its task writes nothing). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "engine/engine.h"
#include "store/store.h"
#include "task/task_json.h"

#include "fixture.h"

#define WAIT_MS 10000 /* generous deadline for a state the engine reaches in well under 1 s */

struct fixture {
    char dir[64];  /* the store */
    char work[80]; /* the steps' traces */
    struct store *s;
    struct engine *eng;
};

static int start_engine(struct fixture *f, const char *node)
{
    struct engine_config cfg = {
        .store = f->s, .node = node, .workers = 2, .lease_s = 2, .drain_s = 1};
    struct err e = {0};
    int rc = engine_start(&cfg, &f->eng, &e);
    if (rc != 0)
        fprintf(stderr, "engine_start: %s\n", e.msg);
    return rc;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    struct err e = {0};
    log_set_level(LOG_ERROR);
    if (fixture_mkdtemp(f->dir, sizeof f->dir, "test_engine") != 0 ||
        store_open(NULL, f->dir, &f->s, &e) != 0) {
        fprintf(stderr, "store_open: %s\n", e.msg);
        return -1;
    }
    snprintf(f->work, sizeof f->work, "%s/work", f->dir);
    if (mkdir(f->work, 0700) != 0 || start_engine(f, "node-1") != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    engine_stop(f->eng);
    store_close(f->s);
    fixture_rm_tree(f->dir);
    free(f);
    return 0;
}

/* ---- helpers ---- */

/* A step running script under /bin/sh, with $W set to the work directory; undo may be NULL. */
static json_t *sh_step(const struct fixture *f, const char *name, const char *script,
                       const char *undo, int retries)
{
    char *dos = NULL, *undos = NULL;
    assert_true(asprintf(&dos, "W=%s; %s", f->work, script) > 0);
    json_t *step = json_pack("{s:s, s:{s:[s,s,s]}, s:i}", "name", name, "do", "exec", "/bin/sh",
                             "-c", dos, "retries", retries);
    if (undo) {
        assert_true(asprintf(&undos, "W=%s; %s", f->work, undo) > 0);
        json_object_set_new(step, "undo", json_pack("{s:[s,s,s]}", "exec", "/bin/sh", "-c", undos));
    }
    free(dos);
    free(undos);
    return step;
}

/* Creates a cdb task of the steps (stolen) and wakes the engine. */
static void create(struct fixture *f, json_t *steps, const char *on_failure, char id[STORE_ID_MAX])
{
    struct task_new t = {.product = "cdb",
                         .region = "ap-guangzhou",
                         .uin = "100000000001",
                         .type = "CreateAccounts",
                         .on_failure = on_failure,
                         .steps = steps,
                         .node = "test"};
    struct err e = {0};
    int rc = store_task_create(f->s, &t, id, &e);
    if (rc != 0)
        fprintf(stderr, "task_create: %s\n", e.msg);
    assert_int_equal(rc, 0);
    json_decref(steps);
    engine_wake(f->eng);
}

static enum task_state state_now(struct fixture *f, const char *id, struct task_summary *sum)
{
    struct err e = {0};
    assert_int_equal(store_task_summary(f->s, "cdb", id, sum, &e), 0);
    return sum->state;
}

/* Polls until the task is in state `want`, failing after ms. */
static void wait_state(struct fixture *f, const char *id, enum task_state want, int64_t ms)
{
    struct task_summary sum;
    int64_t until = fixture_now_ms() + ms;
    while (state_now(f, id, &sum) != want) {
        if (fixture_now_ms() > until)
            fail_msg("task %s is %s after %lld ms, want %s (info: %s)", id,
                     task_state_name(sum.state), (long long)ms, task_state_name(want), sum.info);
        usleep(10000);
    }
}

static json_t *get(struct fixture *f, const char *id)
{
    struct task *t = NULL;
    struct err e = {0};
    assert_int_equal(store_task_get(f->s, id, TASK_READ_ALL, &t, &e), 0);
    json_t *j = task_json(t, NULL); /* the raw view (task/task_json.h) */
    task_free(t);
    return j;
}

static const char *jstr(json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? v : "(null)";
}

static const char *step_state(json_t *task, int i)
{
    return jstr(json_array_get(json_object_get(task, "steps"), (size_t)i), "state");
}

static void control(struct fixture *f, const char *id, enum task_verb v)
{
    struct err e = {0};
    int rc = store_task_control(f->s, id, v, "operator", NULL, &e);
    if (rc != 0)
        fail_msg("%s %s: %s", task_verb_name(v), id, e.msg);
    engine_wake(f->eng);
}

static void work_path(const struct fixture *f, const char *name, char *buf, size_t n)
{
    snprintf(buf, n, "%s/%s", f->work, name);
}

/* The work file's content ("" when absent); the caller frees it. */
static char *slurp(const struct fixture *f, const char *name)
{
    char path[160];
    work_path(f, name, path, sizeof path);
    FILE *fp = fopen(path, "r");
    char *buf = calloc(1, 4096);
    if (fp) {
        size_t n = fread(buf, 1, 4095, fp);
        buf[n] = '\0';
        fclose(fp);
    }
    return buf;
}

static void assert_file(const struct fixture *f, const char *name, const char *want)
{
    char *got = slurp(f, name);
    assert_string_equal(got, want);
    free(got);
}

static void touch(const struct fixture *f, const char *name)
{
    char path[160];
    work_path(f, name, path, sizeof path);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fclose(fp);
}

/* Waits for a step to write its pid ("echo $$ > $W/name") and returns it. */
static pid_t wait_pid(const struct fixture *f, const char *name)
{
    int64_t until = fixture_now_ms() + WAIT_MS;
    for (;;) {
        char *text = slurp(f, name);
        pid_t pid = (pid_t)atoi(text);
        size_t len = strlen(text);
        bool whole = len > 0 && text[len - 1] == '\n';
        free(text);
        if (whole && pid > 0)
            return pid;
        if (fixture_now_ms() > until)
            fail_msg("no pid in %s", name);
        usleep(10000);
    }
}

/* True once pid has exited (no such process, or a zombie) within ms. */
static bool process_gone_within(pid_t pid, int64_t ms)
{
    int64_t until = fixture_now_ms() + ms;
    do {
        if (kill(pid, 0) < 0 && errno == ESRCH)
            return true;
        char path[64], stat[256] = "";
        snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
        FILE *fp = fopen(path, "r");
        if (fp) {
            size_t n = fread(stat, 1, sizeof stat - 1, fp);
            stat[n] = '\0';
            fclose(fp);
            char *paren = strrchr(stat, ')');
            if (paren && paren[1] == ' ' && paren[2] == 'Z')
                return true;
        }
        usleep(5000);
    } while (fixture_now_ms() < until);
    return false;
}

static int count_events_with(json_t *task, const char *needle)
{
    int n = 0;
    size_t i;
    json_t *ev;
    json_array_foreach(json_object_get(task, "events"), i,
                       ev) if (strstr(jstr(ev, "message"), needle)) n++;
    return n;
}

/* ---- steps and outcomes ---- */

static void test_one_step_success_keeps_the_last_stdout_line_as_info(void **state)
{
    struct fixture *f = *state;
    char id[STORE_ID_MAX];
    json_t *steps = json_array();
    json_array_append_new(steps, sh_step(f, "drop",
                                         "echo working; echo 'Dropped the database "
                                         "table successfully.'",
                                         NULL, 0));
    create(f, steps, NULL, id);
    wait_state(f, id, TASK_SUCCESS, WAIT_MS);
    struct task_summary sum;
    state_now(f, id, &sum);
    assert_true(sum.has_info);
    assert_string_equal(sum.info, "Dropped the database table successfully.");
    assert_true(sum.start_ms > 0 && sum.end_ms >= sum.start_ms);
    json_t *t = get(f, id);
    assert_string_equal(step_state(t, 0), "done");
    assert_true(json_is_null(json_object_get(t, "lease_node")));
    json_decref(t);
}

static void test_steps_run_in_order(void **state)
{
    struct fixture *f = *state;
    char id[STORE_ID_MAX];
    json_t *steps = json_array();
    for (int i = 1; i <= 4; i++) {
        char script[64];
        snprintf(script, sizeof script, "echo %d >> $W/order; echo step %d", i, i);
        json_array_append_new(steps, sh_step(f, "s", script, NULL, 0));
    }
    create(f, steps, NULL, id);
    wait_state(f, id, TASK_SUCCESS, WAIT_MS);
    assert_file(f, "order", "1\n2\n3\n4\n");
    struct task_summary sum;
    state_now(f, id, &sum);
    assert_string_equal(sum.info, "step 4");
}

static void test_failed_step_is_retried_with_backoff_then_succeeds(void **state)
{
    struct fixture *f = *state;
    char id[STORE_ID_MAX];
    json_t *steps = json_array();
    json_array_append_new(
        steps,
        sh_step(
            f, "flaky",
            "echo $ASYNCD_ATTEMPT >> $W/attempts; n=$(wc -l < $W/attempts);"
            " if [ $n -lt 3 ]; then echo \"try $n failed\" >&2; exit 1; fi; echo third time lucky",
            NULL, 2));
    create(f, steps, NULL, id);
    wait_state(f, id, TASK_SUCCESS, WAIT_MS);
    assert_file(f, "attempts", "1\n2\n3\n");
    json_t *t = get(f, id);
    assert_string_equal(jstr(t, "info"), "third time lucky");
    assert_int_equal(count_events_with(t, "retrying in"), 2);
    assert_int_equal(count_events_with(t, "try 1 failed"), 1);
    assert_int_equal(json_integer_value(json_object_get(t, "attempt")), 0);
    json_decref(t);
}

static void test_failure_pauses_then_resume_retries_the_step(void **state)
{
    struct fixture *f = *state;
    char id[STORE_ID_MAX];
    json_t *steps = json_array();
    json_array_append_new(steps, sh_step(f, "one", "echo one >> $W/order", NULL, 0));
    json_array_append_new(steps, sh_step(f, "two",
                                         "echo two >> $W/order; [ -f $W/ok ] ||"
                                         " { echo no ok file >&2; exit 3; }; echo fixed",
                                         NULL, 0));
    create(f, steps, NULL, id);
    wait_state(f, id, TASK_PAUSED, WAIT_MS);
    json_t *t = get(f, id);
    assert_string_equal(step_state(t, 0), "done");
    assert_string_equal(step_state(t, 1), "failed");
    assert_non_null(strstr(jstr(t, "info"), "no ok file"));
    assert_true(json_is_null(json_object_get(t, "lease_node")));
    json_decref(t);
    touch(f, "ok");
    control(f, id, VERB_RESUME);
    wait_state(f, id, TASK_SUCCESS, WAIT_MS);
    assert_file(f, "order", "one\ntwo\ntwo\n"); /* step one is not run again */
    struct task_summary sum;
    state_now(f, id, &sum);
    assert_string_equal(sum.info, "fixed");
}

static void test_skip_marks_the_failed_step_skipped_and_goes_on(void **state)
{
    struct fixture *f = *state;
    char id[STORE_ID_MAX];
    json_t *steps = json_array();
    json_array_append_new(steps, sh_step(f, "one", "echo one >> $W/order", NULL, 0));
    json_array_append_new(steps, sh_step(f, "two", "echo two >> $W/order; exit 1", NULL, 0));
    json_array_append_new(steps, sh_step(f, "three", "echo three >> $W/order; echo last", NULL, 0));
    create(f, steps, "pause", id);
    wait_state(f, id, TASK_PAUSED, WAIT_MS);
    control(f, id, VERB_SKIP);
    wait_state(f, id, TASK_SUCCESS, WAIT_MS);
    assert_file(f, "order", "one\ntwo\nthree\n");
    json_t *t = get(f, id);
    assert_string_equal(step_state(t, 0), "done");
    assert_string_equal(step_state(t, 1), "skipped");
    assert_string_equal(step_state(t, 2), "done");
    assert_string_equal(jstr(t, "info"), "last");
    json_decref(t);
}

static void test_on_failure_fail_ends_the_task_failed(void **state)
{
    struct fixture *f = *state;
    char id[STORE_ID_MAX];
    json_t *steps = json_array();
    json_array_append_new(steps, sh_step(f, "one", "echo broken >&2; exit 2",
                                         "echo undo >> "
                                         "$W/order",
                                         0));
    create(f, steps, "fail", id);
    wait_state(f, id, TASK_FAILED, WAIT_MS);
    struct task_summary sum;
    state_now(f, id, &sum);
    assert_non_null(strstr(sum.info, "broken"));
    assert_true(sum.end_ms > 0);
    assert_file(f, "order", "");
}

/* Three steps that log do/undo into $W/order; step `failing` (or none: -1) fails its do and,
 * with undo_fails, step 1's undo fails too. */
static json_t *logged_steps(const struct fixture *f, int failing, bool undo_fails)
{
    json_t *steps = json_array();
    for (int i = 0; i < 3; i++) {
        char dos[96], undos[96];
        snprintf(dos, sizeof dos, "echo do%d >> $W/order%s", i, i == failing ? "; exit 1" : "");
        snprintf(undos, sizeof undos, "echo undo%d >> $W/order%s", i,
                 undo_fails && i == 1 ? "; echo cannot >&2; exit 1" : "");
        json_array_append_new(steps, sh_step(f, "s", dos, undos, 0));
    }
    return steps;
}

static void test_on_failure_undo_undoes_done_steps_in_reverse(void **state)
{
    struct fixture *f = *state;
    char id[STORE_ID_MAX];
    create(f, logged_steps(f, 2, false), "undo", id);
    wait_state(f, id, TASK_UNDOED, WAIT_MS);
    assert_file(f, "order", "do0\ndo1\ndo2\nundo1\nundo0\n");
    json_t *t = get(f, id);
    assert_string_equal(step_state(t, 0), "undone");
    assert_string_equal(step_state(t, 1), "undone");
    assert_string_equal(step_state(t, 2), "failed");
    assert_false(json_is_null(json_object_get(t, "end_ms")));
    json_decref(t);
}

static void test_failed_undo_ends_the_task_failed(void **state)
{
    struct fixture *f = *state;
    char id[STORE_ID_MAX];
    create(f, logged_steps(f, 2, true), "undo", id);
    wait_state(f, id, TASK_FAILED, WAIT_MS);
    assert_file(f, "order", "do0\ndo1\ndo2\nundo1\n");
    json_t *t = get(f, id);
    assert_string_equal(step_state(t, 0), "done");
    assert_string_equal(step_state(t, 1), "undo_failed");
    assert_non_null(strstr(jstr(t, "info"), "cannot"));
    json_decref(t);
}

/* ---- operators ---- */

static void test_kill_stops_the_running_step_within_2s(void **state)
{
    struct fixture *f = *state;
    char id[STORE_ID_MAX];
    json_t *steps = json_array();
    json_array_append_new(steps, sh_step(f, "slow", "echo $$ > $W/pid; exec sleep 30", NULL, 0));
    create(f, steps, NULL, id);
    pid_t pid = wait_pid(f, "pid");
    int64_t t0 = fixture_now_ms();
    control(f, id, VERB_KILL);
    wait_state(f, id, TASK_KILLED, 2000);
    assert_true(process_gone_within(pid, 2000 - (fixture_now_ms() - t0)));
    json_t *t = get(f, id);
    assert_string_equal(step_state(t, 0), "failed");
    json_decref(t);
}

static void test_pause_request_pauses_after_the_running_step(void **state)
{
    struct fixture *f = *state;
    char id[STORE_ID_MAX];
    json_t *steps = json_array();
    json_array_append_new(steps, sh_step(f, "one",
                                         "echo $$ > $W/pid;"
                                         " while [ ! -f $W/go ]; do sleep 0.02; done; echo one",
                                         NULL, 0));
    json_array_append_new(steps, sh_step(f, "two", "echo two >> $W/order; echo two", NULL, 0));
    create(f, steps, NULL, id);
    wait_pid(f, "pid");
    control(f, id, VERB_PAUSE);
    struct task_summary sum;
    assert_int_equal(state_now(f, id, &sum), TASK_RUNNING); /* the step goes on */
    touch(f, "go");
    wait_state(f, id, TASK_PAUSED, WAIT_MS);
    json_t *t = get(f, id);
    assert_string_equal(step_state(t, 0), "done");
    assert_string_equal(step_state(t, 1), "pending");
    assert_int_equal(json_integer_value(json_object_get(t, "pause_requested")), 0);
    json_decref(t);
    assert_file(f, "order", "");
    control(f, id, VERB_RESUME);
    wait_state(f, id, TASK_SUCCESS, WAIT_MS);
    assert_file(f, "order", "two\n");
}

static void test_undo_while_a_step_runs_stops_it_and_undoes_the_done_steps(void **state)
{
    struct fixture *f = *state;
    char id[STORE_ID_MAX];
    json_t *steps = json_array();
    json_array_append_new(steps,
                          sh_step(f, "one", "echo do0 >> $W/order", "echo undo0 >> $W/order", 0));
    json_array_append_new(
        steps, sh_step(f, "two", "echo $$ > $W/pid; exec sleep 30", "echo undo1 >> $W/order", 0));
    create(f, steps, NULL, id);
    pid_t pid = wait_pid(f, "pid");
    control(f, id, VERB_UNDO);
    wait_state(f, id, TASK_UNDOED, WAIT_MS);
    assert_true(process_gone_within(pid, 2000));
    assert_file(f, "order", "do0\nundo0\n"); /* step two never finished: nothing to undo */
    json_t *t = get(f, id);
    assert_string_equal(step_state(t, 0), "undone");
    assert_string_equal(step_state(t, 1), "failed");
    json_decref(t);
}

static void test_undo_verb_during_the_undo_phase_still_undoes_every_done_step(void **state)
{
    struct fixture *f = *state;
    char id[STORE_ID_MAX];
    json_t *steps = json_array();
    json_array_append_new(steps,
                          sh_step(f, "one", "echo do0 >> $W/order", "echo undo0 >> $W/order", 0));
    json_array_append_new(steps, sh_step(f, "two", "echo do1 >> $W/order",
                                         "echo $$ > $W/pid;"
                                         " while [ ! -f $W/go ]; do sleep 0.02; done;"
                                         " echo undo1 >> $W/order",
                                         0));
    json_array_append_new(steps, sh_step(f, "three", "exit 1", NULL, 0));
    create(f, steps, "undo", id);
    wait_pid(f, "pid");
    struct err e = {0};
    assert_int_equal(store_task_control(f->s, id, VERB_UNDO, "operator", NULL, &e), ERR_CONFLICT);
    touch(f, "go");
    wait_state(f, id, TASK_UNDOED, WAIT_MS);
    assert_file(f, "order", "do0\ndo1\nundo1\nundo0\n");
    json_t *t = get(f, id);
    assert_string_equal(step_state(t, 0), "undone");
    assert_string_equal(step_state(t, 1), "undone");
    json_decref(t);
}

/* ---- stopping and fencing ---- */

static void test_stop_drains_then_hands_the_task_back_for_the_next_engine(void **state)
{
    struct fixture *f = *state;
    char id[STORE_ID_MAX];
    json_t *steps = json_array();
    json_array_append_new(steps, sh_step(f, "long",
                                         "if [ -f $W/second ]; then echo finished;"
                                         " else touch $W/second; echo $$ > $W/pid;"
                                         " exec sleep 30; fi",
                                         NULL, 0));
    create(f, steps, NULL, id);
    pid_t pid = wait_pid(f, "pid");
    int64_t t0 = fixture_now_ms();
    engine_stop(f->eng);
    f->eng = NULL;
    int64_t took = fixture_now_ms() - t0;
    if (took < 900 || took > 3000)
        fail_msg("engine_stop took %lld ms, want about drain_s (1 s) plus the kill",
                 (long long)took);
    assert_true(process_gone_within(pid, 1000));
    json_t *t = get(f, id);
    assert_string_equal(jstr(t, "state"), "running");
    assert_true(json_is_null(json_object_get(t, "lease_node")));
    assert_true(json_is_null(json_object_get(t, "lease_expires_ms")));
    assert_string_equal(step_state(t, 0), "pending");
    assert_int_equal(count_events_with(t, "node node-1 stopping: step 1 will run again"), 1);
    json_decref(t);
    assert_int_equal(start_engine(f, "node-2"), 0);
    wait_state(f, id, TASK_SUCCESS, WAIT_MS);
    struct task_summary sum;
    state_now(f, id, &sum);
    assert_string_equal(sum.info, "finished");
}

static void test_worker_that_lost_its_task_writes_nothing_more(void **state)
{
    struct fixture *f = *state;
    char id[STORE_ID_MAX];
    json_t *steps = json_array();
    json_array_append_new(steps, sh_step(f, "slow", "echo $$ > $W/pid; exec sleep 30", NULL, 0));
    json_array_append_new(steps, sh_step(f, "next", "echo next >> $W/order", NULL, 0));
    create(f, steps, NULL, id);
    pid_t pid = wait_pid(f, "pid");
    json_t *before = get(f, id);
    control(f, id, VERB_KILL); /* lease_no bumped: the worker's writes are fenced out */
    json_t *killed = get(f, id);
    assert_int_equal(json_integer_value(json_object_get(killed, "lease_no")),
                     json_integer_value(json_object_get(before, "lease_no")) + 1);
    assert_true(process_gone_within(pid, 2000));
    /* Barrier: both workers busy on new tasks proves the old one left the killed task. */
    char busy[2][STORE_ID_MAX];
    for (int i = 0; i < 2; i++) {
        steps = json_array();
        char script[96];
        snprintf(script, sizeof script,
                 "echo $$ > $W/busy%d; while [ ! -f $W/go ]; do sleep"
                 " 0.02; done",
                 i);
        json_array_append_new(steps, sh_step(f, "busy", script, NULL, 0));
        create(f, steps, NULL, busy[i]);
    }
    wait_pid(f, "busy0");
    wait_pid(f, "busy1");
    json_t *after = get(f, id);
    assert_true(json_equal(killed, after));
    assert_string_equal(jstr(after, "state"), "killed");
    assert_string_equal(step_state(after, 1), "pending");
    assert_file(f, "order", "");
    touch(f, "go");
    for (int i = 0; i < 2; i++)
        wait_state(f, busy[i], TASK_SUCCESS, WAIT_MS);
    json_decref(before);
    json_decref(killed);
    json_decref(after);
}

/* ---- concurrency: a waiting step holds no worker ---- */

/* A step that counts the steps running beside it (itself included) into $W/counts. */
static json_t *counting_step(const struct fixture *f, const char *sleep_s)
{
    char script[256];
    snprintf(script, sizeof script,
             "touch $W/run.$ASYNCD_TASK_ID; ls $W | grep -c '^run\\.' >> $W/counts; sleep %s;"
             " rm -f $W/run.$ASYNCD_TASK_ID",
             sleep_s);
    json_t *steps = json_array();
    json_array_append_new(steps, sh_step(f, "count", script, NULL, 0));
    return steps;
}

/* The most steps a counting step saw running at once. */
static int most_counted(const struct fixture *f)
{
    char *text = slurp(f, "counts");
    int most = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
        if (atoi(line) > most)
            most = atoi(line);
    free(text);
    return most;
}

static void test_exec_steps_wait_without_holding_a_worker(void **state)
{
    struct fixture *f = *state; /* 2 workers */
    char ids[8][STORE_ID_MAX];
    int64_t t0 = fixture_now_ms();
    for (int i = 0; i < 8; i++)
        create(f, counting_step(f, "1.5"), NULL, ids[i]);
    for (int i = 0; i < 8; i++)
        wait_state(f, ids[i], TASK_SUCCESS, WAIT_MS);
    int64_t took = fixture_now_ms() - t0;
    /* one at a time per worker would take 4 x 1.5 s */
    if (took > 4500)
        fail_msg("8 steps of 1.5 s on 2 workers took %lld ms: they did not overlap",
                 (long long)took);
    int most = most_counted(f);
    if (most <= 2)
        fail_msg("at most %d steps ran at once on 2 workers, want more", most);
}

static void test_max_running_bounds_the_tasks_in_flight(void **state)
{
    struct fixture *f = *state;
    engine_stop(f->eng);
    struct engine_config cfg = {.store = f->s,
                                .node = "node-1",
                                .workers = 2,
                                .max_running = 3,
                                .lease_s = 2,
                                .drain_s = 1};
    struct err e = {0};
    assert_int_equal(engine_start(&cfg, &f->eng, &e), 0);
    char ids[6][STORE_ID_MAX];
    int64_t t0 = fixture_now_ms();
    for (int i = 0; i < 6; i++)
        create(f, counting_step(f, "0.6"), NULL, ids[i]);
    for (int i = 0; i < 6; i++)
        wait_state(f, ids[i], TASK_SUCCESS, WAIT_MS);
    int64_t took = fixture_now_ms() - t0;
    int most = most_counted(f);
    if (most > 3)
        fail_msg("%d steps ran at once with max_running 3", most);
    if (took < 1150)
        fail_msg("6 steps of 0.6 s, 3 at a time, took only %lld ms", (long long)took);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_one_step_success_keeps_the_last_stdout_line_as_info),
        T(test_steps_run_in_order),
        T(test_failed_step_is_retried_with_backoff_then_succeeds),
        T(test_failure_pauses_then_resume_retries_the_step),
        T(test_skip_marks_the_failed_step_skipped_and_goes_on),
        T(test_on_failure_fail_ends_the_task_failed),
        T(test_on_failure_undo_undoes_done_steps_in_reverse),
        T(test_failed_undo_ends_the_task_failed),
        T(test_kill_stops_the_running_step_within_2s),
        T(test_pause_request_pauses_after_the_running_step),
        T(test_undo_while_a_step_runs_stops_it_and_undoes_the_done_steps),
        T(test_undo_verb_during_the_undo_phase_still_undoes_every_done_step),
        T(test_stop_drains_then_hands_the_task_back_for_the_next_engine),
        T(test_worker_that_lost_its_task_writes_nothing_more),
        T(test_exec_steps_wait_without_holding_a_worker),
        T(test_max_running_bounds_the_tasks_in_flight),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
