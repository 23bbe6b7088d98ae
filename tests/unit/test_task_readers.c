/* Unit tests: what the readers of a task answer a client, byte for byte -- cdb DescribeTasks,
 * mongodb DescribeDBBackups, DescribeDBInstances' busy instance, the admin API's overview and
 * sim advance, and a simulated task picked up again by a new process. They pin the answers while
 * those readers move from the task's JSON to the typed task (task/task_model.h); one contract run
 * on SQLite and again on PostgreSQL (ASYNCD_TEST_PG=0 leaves it out). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_int.h"
#include "common/log.h"
#include "common/timefmt.h"
#include "products/product.h"
#include "sim/sim.h"
#include "store/store.h"
#include "task/task_json.h"

#include "store_fixture.h"

#define UIN    "100000000001"
#define REGION "ap-guangzhou"

static int setup(void **state) { return store_fixture_open(state, "test_readers", false, NULL); }
static int setup_pg(void **state) { return store_fixture_open(state, "test_readers", true, ""); }
static int teardown(void **state) { return store_fixture_close(state); }

/* A task of n no-op steps; input is JSON text or NULL. */
static void mk(struct store *s, const char *product, const char *instance, const char *type, int n,
               const char *input, char id[STORE_ID_MAX])
{
    json_t *steps = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(steps, json_pack("{s:s, s:{}}", "name", "s", "do"));
    json_t *in = input ? json_loads(input, 0, NULL) : NULL;
    struct task_new t = {.product = product,
                         .region = REGION,
                         .uin = UIN,
                         .instance_id = instance,
                         .type = type,
                         .on_failure = "fail",
                         .steps = steps,
                         .node = "n1",
                         .input = in};
    struct err e = {0};
    assert_int_equal(store_task_create(s, &t, id, &e), 0);
    json_decref(steps);
    json_decref(in);
}

static void move(struct store *s, const char *id, enum task_state from, enum task_state to,
                 const char *info, int advance)
{
    struct task_move m = {.id = id,
                          .expect = from,
                          .to = to,
                          .node = "n1",
                          .info = info,
                          .step_advance = advance,
                          .step_mark = advance ? "done" : NULL};
    struct err e = {0};
    assert_int_equal(store_task_move(s, &m, &e), 0);
}

static struct task *row(struct store *s, const char *id)
{
    struct task *t = NULL;
    struct err e = {0};
    assert_int_equal(store_task_get(s, id, 0, &t, &e), 0);
    return t;
}

static int64_t job_id(struct store *s, const char *id)
{
    struct task_filter f = {.state = -1, .id = id, .limit = 1};
    struct task_list l = {0};
    int64_t total = 0;
    struct err e = {0};
    assert_int_equal(store_task_list(s, &f, &l, &total, &e), 0);
    assert_int_equal(l.n, 1);
    int64_t j = l.items[0]->job_id;
    task_list_clear(&l);
    return j;
}

/* A time as the products show it: "" until it happens. */
static const char *local(int64_t ms, char buf[20])
{
    if (ms == TASK_MS_NONE || ms <= 0)
        return "";
    time_fmt_local(ms, buf);
    return buf;
}

static char *dump(json_t *j) { return json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER); }

static void assert_dump(json_t *j, const char *want)
{
    char *got = dump(j);
    if (strcmp(got, want) != 0)
        fprintf(stderr, "got:  %s\nwant: %s\n", got, want);
    assert_string_equal(got, want);
    free(got);
}

/* Calls product's action with params (JSON text); the answer or the error's code. */
static int call(struct store *s, const struct product *p, const char *action, const char *params,
                json_t **resp)
{
    static struct account who = {.uin = UIN, .owner_uin = UIN, .is_root = true};
    json_t *pj = json_loads(params, 0, NULL);
    struct api_call c = {.product = p,
                         .action = action,
                         .region = REGION,
                         .params = pj,
                         .who = &who,
                         .store = s,
                         .node = "n1"};
    struct err e = {0};
    *resp = json_object();
    int rc = product_action(p, action)->fn(&c, *resp, &e);
    json_decref(pj);
    return rc;
}

/* ---- cdb DescribeTasks ---- */

struct shown {
    char id[STORE_ID_MAX];
    int64_t job;
    char start[20], end[20];
    const char *s, *e;
};

static void shown_of(struct store *s, const char *id, struct shown *o)
{
    snprintf(o->id, sizeof o->id, "%s", id);
    o->job = job_id(s, id);
    struct task *t = row(s, id);
    o->s = local(t->start_ms, o->start);
    o->e = local(t->end_ms, o->end);
    task_free(t);
}

static void test_cdb_describe_tasks_answers_every_field_as_before(void **state)
{
    struct store_fixture *f = *state;
    char a[STORE_ID_MAX], b[STORE_ID_MAX], c[STORE_ID_MAX], d[STORE_ID_MAX];
    mk(f->s, "cdb", "cdb-1", "ModifyInstanceParam", 2, NULL, a); /* running, half way */
    move(f->s, a, TASK_INITIAL, TASK_RUNNING, "half way", 1);
    mk(f->s, "cdb", NULL, "MyOwnType", 1, NULL, b); /* failed, an operator's own type */
    move(f->s, b, TASK_INITIAL, TASK_RUNNING, NULL, 0);
    move(f->s, b, TASK_RUNNING, TASK_FAILED, "boom", 0);
    mk(f->s, "cdb", "cdb-2", "CreateAccounts", 3, NULL, c);     /* still initial */
    mk(f->s, "cdb", "cdb-1", "RestartDBInstances", 1, NULL, d); /* succeeded */
    move(f->s, d, TASK_INITIAL, TASK_RUNNING, NULL, 0);
    move(f->s, d, TASK_RUNNING, TASK_SUCCESS, "done.", 1);
    char other[STORE_ID_MAX];
    mk(f->s, "mongodb", "cmgo-1", "CreateBackupDBInstance", 1, NULL, other); /* not cdb's */
    struct shown sa, sb, sc, sd;
    shown_of(f->s, a, &sa);
    shown_of(f->s, b, &sb);
    shown_of(f->s, c, &sc);
    shown_of(f->s, d, &sd);
    char want[4096];
    snprintf(want, sizeof want,
             "{\"TotalCount\":4,\"Items\":["
             "{\"Code\":0,\"Message\":\"done.\",\"JobId\":%lld,\"Progress\":100,"
             "\"TaskStatus\":\"SUCCEED\",\"TaskType\":\"REBOOT\",\"StartTime\":\"%s\","
             "\"EndTime\":\"%s\",\"InstanceIds\":[\"cdb-1\"],\"AsyncRequestId\":\"%s\","
             "\"TaskAttachInfo\":[]},"
             "{\"Code\":0,\"Message\":\"\",\"JobId\":%lld,\"Progress\":0,"
             "\"TaskStatus\":\"INITIAL\",\"TaskType\":\"SQL OPERATION\",\"StartTime\":\"%s\","
             "\"EndTime\":\"%s\",\"InstanceIds\":[\"cdb-2\"],\"AsyncRequestId\":\"%s\","
             "\"TaskAttachInfo\":[]},"
             "{\"Code\":-1,\"Message\":\"boom\",\"JobId\":%lld,\"Progress\":0,"
             "\"TaskStatus\":\"FAILED\",\"TaskType\":\"MyOwnType\",\"StartTime\":\"%s\","
             "\"EndTime\":\"%s\",\"InstanceIds\":[],\"AsyncRequestId\":\"%s\","
             "\"TaskAttachInfo\":[]},"
             "{\"Code\":0,\"Message\":\"half way\",\"JobId\":%lld,\"Progress\":50,"
             "\"TaskStatus\":\"RUNNING\",\"TaskType\":\"MODIFY PARAM\",\"StartTime\":\"%s\","
             "\"EndTime\":\"%s\",\"InstanceIds\":[\"cdb-1\"],\"AsyncRequestId\":\"%s\","
             "\"TaskAttachInfo\":[]}]}",
             (long long)sd.job, sd.s, sd.e, sd.id, (long long)sc.job, sc.s, sc.e, sc.id,
             (long long)sb.job, sb.s, sb.e, sb.id, (long long)sa.job, sa.s, sa.e, sa.id);
    assert_true(*sb.e && *sd.e && *sa.s && !*sa.e && !*sc.s); /* the ends the answer shows */
    json_t *resp;
    assert_int_equal(call(f->s, &product_cdb, "DescribeTasks", "{}", &resp), 0);
    assert_dump(resp, want);
    json_decref(resp);
    /* Filters and paging still select in the store: the page is the second item only. */
    assert_int_equal(call(f->s, &product_cdb, "DescribeTasks",
                          "{\"InstanceId\":\"cdb-1\",\"Offset\":1,\"Limit\":1}", &resp),
                     0);
    assert_int_equal(json_integer_value(json_object_get(resp, "TotalCount")), 2);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(resp, "Items"), 0), "AsyncRequestId")),
                        a);
    json_decref(resp);
    if (f->db[0]) /* PostgreSQL holds UTF-8 only; SQLite keeps what a program printed */
        return;
    char x[STORE_ID_MAX], params[128];
    mk(f->s, "cdb", "cdb-1", "X", 1, NULL, x);
    move(f->s, x, TASK_INITIAL, TASK_RUNNING, "caf\xe9 ok", 0);
    snprintf(params, sizeof params, "{\"AsyncRequestId\":\"%s\"}", x);
    assert_int_equal(call(f->s, &product_cdb, "DescribeTasks", params, &resp), 0);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(resp, "Items"), 0), "Message")),
                        "caf? ok");
    json_decref(resp);
}

/* ---- mongodb DescribeDBBackups ---- */

/* Claims the oldest initial task (it must be id) and succeeds it, its last step reporting out. */
static void succeed_with_output(struct store *s, const char *id, int n_steps, const char *out)
{
    struct task_claim cl;
    struct err e = {0};
    assert_int_equal(store_task_claim(s, "n1", 60000, &cl, &e), 0);
    assert_string_equal(cl.id, id);
    for (int i = 0; i < n_steps; i++) {
        bool last = i == n_steps - 1;
        struct task_progress p = {.id = id,
                                  .lease_no = cl.lease_no,
                                  .node = "n1",
                                  .to = last ? TASK_SUCCESS : TASK_RUNNING,
                                  .step = i,
                                  .step_state = "done",
                                  .step_output = last ? out : NULL,
                                  .info = last ? "backed up" : NULL,
                                  .next_step = i + 1,
                                  .attempt = -1,
                                  .release = last,
                                  .event = true};
        assert_int_equal(store_task_progress(s, &p, &e), 0);
    }
}

/* One BackupInfo as DescribeDBBackups answers it. */
static void backup_item(char out[512], const char *name, const char *desc, int size,
                        const char *start, const char *end, int method, const char *id)
{
    snprintf(out, 512,
             "{\"InstanceId\":\"cmgo-1\",\"BackupType\":1,\"BackupName\":\"%s\","
             "\"BackupDesc\":\"%s\",\"BackupSize\":%d,\"StartTime\":\"%s\","
             "\"EndTime\":\"%s\",\"Status\":2,\"BackupMethod\":%d,\"BackId\":%lld,"
             "\"DeleteTime\":\"\",\"BackupRegion\":\"" REGION "\",\"RestoreTime\":\"\"}",
             name, desc, size, start, end, method, strtoll(id, NULL, 10));
}

static void test_mongodb_describe_db_backups_answers_as_before(void **state)
{
    struct store_fixture *f = *state;
    struct err e = {0};
    struct instance in = {.product = "mongodb",
                          .instance_id = "cmgo-1",
                          .region = REGION,
                          .uin = UIN,
                          .status = "running",
                          .simulated = true};
    assert_int_equal(store_instance_create(f->s, &in, &e), 0);
    char b1[STORE_ID_MAX], b2[STORE_ID_MAX], b3[STORE_ID_MAX], b4[STORE_ID_MAX];
    mk(f->s, "mongodb", "cmgo-1", "CreateBackupDBInstance", 2,
       "{\"BackupMethod\":0,\"BackupRemark\":\"nightly\"}", b1);
    succeed_with_output(f->s, b1, 2, "{\"BackupName\":\"bk-one\",\"BackupSize\":4096}");
    mk(f->s, "mongodb", "cmgo-1", "CreateBackupDBInstance", 1, "{\"BackupMethod\":1}", b2);
    move(f->s, b2, TASK_INITIAL, TASK_RUNNING, NULL, 0);
    move(f->s, b2, TASK_RUNNING, TASK_SUCCESS, NULL, 1);
    mk(f->s, "mongodb", "cmgo-1", "CreateBackupDBInstance", 1, "{\"BackupMethod\":0}", b3);
    move(f->s, b3, TASK_INITIAL, TASK_RUNNING, NULL, 0); /* not finished: not listed */
    mk(f->s, "mongodb", "cmgo-1", "CreateBackupDBInstance", 1, NULL, b4); /* no input */
    move(f->s, b4, TASK_INITIAL, TASK_RUNNING, NULL, 0);
    move(f->s, b4, TASK_RUNNING, TASK_SUCCESS, NULL, 1);
    char s1[20], e1[20], s2[20], e2[20], s4[20], e4[20];
    struct task *t1 = row(f->s, b1), *t2 = row(f->s, b2), *t4 = row(f->s, b4);
    char want[4096];
    char i1[512], i2[512], i4[512];
    backup_item(i1, "bk-one", "nightly", 4096, local(t1->start_ms, s1), local(t1->end_ms, e1), 0,
                b1);
    backup_item(i2, b2, "", 0, local(t2->start_ms, s2), local(t2->end_ms, e2), 1, b2);
    backup_item(i4, b4, "", 0, local(t4->start_ms, s4), local(t4->end_ms, e4), 0, b4);
    task_free(t1);
    task_free(t2);
    task_free(t4);
    json_t *resp;
    snprintf(want, sizeof want, "{\"BackupList\":[%s,%s,%s],\"TotalCount\":3}", i4, i2, i1);
    assert_int_equal(
        call(f->s, &product_mongodb, "DescribeDBBackups", "{\"InstanceId\":\"cmgo-1\"}", &resp), 0);
    assert_dump(resp, want);
    json_decref(resp);
    snprintf(want, sizeof want, "{\"BackupList\":[%s],\"TotalCount\":1}", i1);
    assert_int_equal(call(f->s, &product_mongodb, "DescribeDBBackups",
                          "{\"InstanceId\":\"cmgo-1\",\"BackupMethod\":0}", &resp),
                     0);
    assert_dump(resp, want);
    json_decref(resp);
    snprintf(want, sizeof want, "{\"BackupList\":[%s],\"TotalCount\":3}", i2);
    assert_int_equal(call(f->s, &product_mongodb, "DescribeDBBackups",
                          "{\"InstanceId\":\"cmgo-1\",\"Offset\":1,\"Limit\":1}", &resp),
                     0);
    assert_dump(resp, want);
    json_decref(resp);
}

/* ---- DescribeDBInstances: busy while a task of the product runs on the instance ---- */

static int64_t field(struct store *s, const struct product *p, const char *items, const char *key)
{
    json_t *resp;
    assert_int_equal(call(s, p, "DescribeDBInstances", "{}", &resp), 0);
    json_t *item = json_array_get(json_object_get(resp, items), 0);
    assert_non_null(item);
    int64_t v = json_integer_value(json_object_get(item, key));
    json_decref(resp);
    return v;
}

static void test_describe_db_instances_shows_a_running_task(void **state)
{
    struct store_fixture *f = *state;
    struct err e = {0};
    struct instance cdb = {.product = "cdb",
                           .instance_id = "cdb-1",
                           .region = REGION,
                           .uin = UIN,
                           .status = "running",
                           .dsn = "mysql://u:p@10.1.2.3:3307/"};
    struct instance mongo = {.product = "mongodb",
                             .instance_id = "cmgo-1",
                             .region = REGION,
                             .uin = UIN,
                             .status = "running",
                             .dsn = "mongodb://u:p@10.2.0.1:27018/"};
    assert_int_equal(store_instance_create(f->s, &cdb, &e), 0);
    assert_int_equal(store_instance_create(f->s, &mongo, &e), 0);
    char a[STORE_ID_MAX], b[STORE_ID_MAX];
    mk(f->s, "cdb", "cdb-1", "RestartDBInstances", 1, NULL, a);
    mk(f->s, "mongodb", "cmgo-1", "RestartNodes", 1, NULL, b);
    assert_int_equal(field(f->s, &product_cdb, "Items", "TaskStatus"), 0); /* initial: not yet */
    assert_int_equal(field(f->s, &product_mongodb, "InstanceDetails", "Status"), 2);
    move(f->s, a, TASK_INITIAL, TASK_RUNNING, NULL, 0);
    assert_int_equal(field(f->s, &product_cdb, "Items", "TaskStatus"), 5);
    assert_int_equal(field(f->s, &product_mongodb, "InstanceDetails", "Status"), 2);
    move(f->s, b, TASK_INITIAL, TASK_RUNNING, NULL, 0);
    assert_int_equal(field(f->s, &product_mongodb, "InstanceDetails", "Status"), 1);
    move(f->s, a, TASK_RUNNING, TASK_SUCCESS, NULL, 1);
    move(f->s, b, TASK_RUNNING, TASK_FAILED, NULL, 0);
    assert_int_equal(field(f->s, &product_cdb, "Items", "TaskStatus"), 0);
    assert_int_equal(field(f->s, &product_mongodb, "InstanceDetails", "Status"), 2);
}

/* ---- the admin API: the overview, and a simulated task's advance ---- */

static void test_overview_counts_finished_and_shows_the_oldest_queued(void **state)
{
    struct store_fixture *f = *state;
    struct admin a = {.cfg = {.store = f->s}};
    struct admin_req r = {0};
    json_t *out = NULL;
    int status = 200;
    struct err e = {0};
    assert_int_equal(admin_overview(&a, &r, &out, &status, &e), 0);
    json_object_del(out, "counts"); /* store_task_counts': tested with the store */
    char want[1024];
    snprintf(want, sizeof want,
             "{\"now_ms\":%lld,\"finished\":{\"by_product\":{},\"sampled\":false},"
             "\"oldest_queued\":null}",
             (long long)json_integer_value(json_object_get(out, "now_ms")));
    assert_dump(out, want);
    json_decref(out);
    char q1[STORE_ID_MAX], q2[STORE_ID_MAX], c1[STORE_ID_MAX], m1[STORE_ID_MAX], r1[STORE_ID_MAX];
    mk(f->s, "mongodb", "cmgo-1", "X", 1, NULL, q1); /* queued first */
    mk(f->s, "cdb", "cdb-1", "X", 1, NULL, q2);
    mk(f->s, "cdb", "cdb-2", "X", 1, NULL, c1);
    move(f->s, c1, TASK_INITIAL, TASK_RUNNING, NULL, 0);
    move(f->s, c1, TASK_RUNNING, TASK_SUCCESS, NULL, 1);
    mk(f->s, "mongodb", "cmgo-2", "X", 1, NULL, m1);
    move(f->s, m1, TASK_INITIAL, TASK_RUNNING, NULL, 0);
    move(f->s, m1, TASK_RUNNING, TASK_KILLED, NULL, 0);
    mk(f->s, "cdb", "cdb-3", "X", 1, NULL, r1); /* running: not finished */
    move(f->s, r1, TASK_INITIAL, TASK_RUNNING, NULL, 0);
    /* by_product in the list's order (newest first: mongodb's kill, then cdb's success) */
    assert_int_equal(admin_overview(&a, &r, &out, &status, &e), 0);
    json_object_del(out, "counts");
    int64_t now = json_integer_value(json_object_get(out, "now_ms"));
    struct task *t = row(f->s, q1);
    snprintf(want, sizeof want,
             "{\"now_ms\":%lld,\"finished\":{\"by_product\":{"
             "\"mongodb\":{\"minute\":1,\"hour\":1},\"all\":{\"minute\":2,\"hour\":2},"
             "\"cdb\":{\"minute\":1,\"hour\":1}},\"sampled\":false},"
             "\"oldest_queued\":{\"AsyncRequestId\":\"%s\",\"product\":\"mongodb\","
             "\"created_ms\":%lld,\"age_ms\":%lld,\"queued\":2}}",
             (long long)now, q1, (long long)t->created_ms, (long long)(now - t->created_ms));
    task_free(t);
    assert_dump(out, want);
    json_decref(out);
}

static void set_rule(struct sim *sim, const char *name, const char *rule)
{
    json_t *j = json_loads(rule, 0, NULL);
    struct err e = {0};
    assert_non_null(j);
    assert_int_equal(sim_rule_set(sim, name, j, &e), 0);
    json_decref(j);
}

static void sim_create(struct sim *sim, struct store *s, const char *action, const char *input,
                       char id[STORE_ID_MAX])
{
    json_t *in = input ? json_loads(input, 0, NULL) : NULL;
    struct sim_task_new t = {.product = "cdb",
                             .region = REGION,
                             .uin = UIN,
                             .instance_id = "cdb-sim1",
                             .action = action,
                             .node = "n1",
                             .input = in};
    struct err e = {0};
    assert_int_equal(sim_task_create(sim, s, &t, id, &e), 0);
    json_decref(in);
}

static void sim_instance(struct store *s)
{
    struct instance in = {.product = "cdb",
                          .instance_id = "cdb-sim1",
                          .region = REGION,
                          .uin = UIN,
                          .status = "running",
                          .simulated = true};
    struct err e = {0};
    assert_int_equal(store_instance_create(s, &in, &e), 0);
}

/* The advance answers the task as the store reads it whole (task_json's raw view: steps and
 * events, no Status word, no ISO times), in its next phase. */
static void test_sim_advance_answers_the_raw_task(void **state)
{
    struct store_fixture *f = *state;
    sim_instance(f->s);
    struct sim *sim = sim_new(f->s, "n1");
    set_rule(sim, "hold",
             "{\"product\":\"cdb\",\"phases\":[{\"state\":\"running\",\"until\":\"advance\","
             "\"info\":\"held\"},{\"state\":\"success\",\"info\":\"let go\"}]}");
    char id[STORE_ID_MAX];
    sim_create(sim, f->s, "CreateAccounts", "{\"Password\":null,\"Accounts\":[]}", id);
    struct admin a = {.cfg = {.store = f->s, .sim = sim}};
    struct admin_req r = {.arg = {id}};
    json_t *out = NULL;
    int status = 200;
    struct err e = {0};
    assert_int_equal(admin_sim_advance(&a, &r, &out, &status, &e), 0);
    struct task *t = NULL;
    assert_int_equal(store_task_get(f->s, id, TASK_READ_ALL, &t, &e), 0);
    json_t *raw = task_json(t, NULL);
    char *want = dump(raw);
    assert_dump(out, want);
    free(want);
    json_decref(raw);
    const char *keys[] = {"AsyncRequestId",
                          "product",
                          "region",
                          "uin",
                          "instance_id",
                          "type",
                          "on_failure",
                          "state",
                          "info",
                          "phase",
                          "lease_node",
                          "driver",
                          "current_step",
                          "created_ms",
                          "start_ms",
                          "end_ms",
                          "attempt",
                          "not_before_ms",
                          "pause_requested",
                          "lease_no",
                          "lease_expires_ms",
                          "n_steps",
                          "input",
                          "steps",
                          "events"};
    size_t k = 0;
    const char *key;
    json_t *v;
    json_object_foreach(out, key, v) assert_string_equal(key, keys[k++]);
    assert_int_equal(k, sizeof keys / sizeof *keys);
    assert_string_equal(json_string_value(json_object_get(out, "state")), "success");
    assert_int_equal(t->state, TASK_SUCCESS);
    task_free(t);
    json_decref(out);
    sim_free(sim);
}

/* A simulated task outlives its process: a new one rebuilds it from the row (its phases from the
 * first step's "sim", its action from the type, its input) and carries on where it was. */
static void test_a_new_process_carries_a_simulated_task_on(void **state)
{
    struct store_fixture *f = *state;
    sim_instance(f->s);
    struct sim *old = sim_new(f->s, "n1");
    set_rule(old, "slow",
             "{\"product\":\"cdb\",\"phases\":[{\"state\":\"running\",\"polls\":2,"
             "\"info\":\"isolating\"},{\"state\":\"success\",\"info\":\"isolated\"}]}");
    char id[STORE_ID_MAX];
    sim_create(old, f->s, "IsolateDBInstance", "{\"InstanceId\":\"cdb-sim1\"}", id);
    sim_free(old);
    struct sim *sim = sim_new(f->s, "n2"); /* no rules: the task keeps its own phases */
    struct err e = {0};
    struct instance in;
    const char *want[] = {"running isolating running", "running isolating running",
                          "success isolated isolated", "success isolated isolated"};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        struct task_summary t;
        assert_int_equal(store_task_summary(f->s, "cdb", id, &t, &e), 0);
        assert_int_equal(sim_task_poll(sim, f->s, &t, &e), 0);
        assert_int_equal(store_instance_get(f->s, "cdb", "cdb-sim1", &in, &e), 0);
        char got[1100];
        snprintf(got, sizeof got, "%s %s %s", task_state_name(t.state), t.has_info ? t.info : "-",
                 in.status);
        assert_string_equal(got, want[i]);
    }
    sim_free(sim);
}

#define CONTRACT(X)                                                                                \
    X(test_cdb_describe_tasks_answers_every_field_as_before)                                       \
    X(test_mongodb_describe_db_backups_answers_as_before)                                          \
    X(test_describe_db_instances_shows_a_running_task)                                             \
    X(test_overview_counts_finished_and_shows_the_oldest_queued)                                   \
    X(test_sim_advance_answers_the_raw_task)                                                       \
    X(test_a_new_process_carries_a_simulated_task_on)
#define ON_SQLITE(name) cmocka_unit_test_setup_teardown(name, setup, teardown),
#define ON_PG(name)     cmocka_unit_test_setup_teardown(name, setup_pg, teardown),

int main(void)
{
    log_set_level(LOG_ERROR);
    const struct CMUnitTest sqlite[] = {CONTRACT(ON_SQLITE)};
    const struct CMUnitTest postgres[] = {CONTRACT(ON_PG)};
    return STORE_FIXTURE_RUN("test_task_readers: the postgres group", sqlite, postgres);
}
