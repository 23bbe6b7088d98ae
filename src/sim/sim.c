/* Simulation: simulated tasks moved through the phases of their progression rule by the polls
 * of DescribeAsyncRequestInfo, the clock and POST /v1/tasks/{id}/advance (DESIGN.md section 8).
 *
 * A simulated task has driver "sim" (its steps are {"sim": {...}}), so the engine never claims
 * it; every state change is one store_task_move, with its event. Step k stands for phase k, so
 * the task's current step says which phase it is in, also after a restart. A last phase that
 * is final is no step of its own: the move into it marks the step before it done. */
#include "sim/sim.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/xalloc.h"
#include "sim/sim_int.h"

#define SIM_BUCKETS  1024
#define SIM_TICK_MS  100 /* the timer's period: how late a phase of `s` seconds may end */
#define SIM_MAX_RULE 1024

/* A simulated task's place in its phases. */
struct sim_entry {
    struct sim_entry *next;
    char id[STORE_ID_MAX], product[16], action[128], instance_id[STORE_ID_MAX];
    struct sim_phase *phases; /* heap */
    size_t n_phases, idx;
    int64_t polls;    /* answers given in phase idx */
    int64_t since_ms; /* when phase idx began (wall clock) */
    enum task_state state;
    bool steps_follow; /* the task's steps are these phases (not a task rule set later) */
    bool done;         /* an operator verb or a conflicting move ended the progression */
    json_t *input;
};

struct sim {
    pthread_mutex_t mu;
    pthread_cond_t tick;
    pthread_t timer;
    bool stop;
    struct store *store;
    char node[128];
    struct sim_rule *rules; /* n_rules of them, in the order they were first set */
    size_t n_rules;
    struct sim_entry *buckets[SIM_BUCKETS];
};

bool sim_instance_simulated(const struct instance *in) { return in->simulated; }

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t bucket_of(const char *id)
{
    uint32_t h = 2166136261u;
    for (; *id; id++)
        h = (h ^ (unsigned char)*id) * 16777619u;
    return h % SIM_BUCKETS;
}

static struct sim_entry *entry_find(struct sim *sim, const char *id)
{
    for (struct sim_entry *x = sim->buckets[bucket_of(id)]; x; x = x->next)
        if (strcmp(x->id, id) == 0)
            return x;
    return NULL;
}

static void entry_free(struct sim_entry *x)
{
    free(x->phases);
    json_decref(x->input);
    free(x);
}

static void entry_add(struct sim *sim, struct sim_entry *x)
{
    size_t b = bucket_of(x->id);
    x->next = sim->buckets[b];
    sim->buckets[b] = x;
}

static void entries_clear(struct sim *sim)
{
    for (size_t b = 0; b < SIM_BUCKETS; b++) {
        struct sim_entry *x = sim->buckets[b];
        while (x) {
            struct sim_entry *next = x->next;
            entry_free(x);
            x = next;
        }
        sim->buckets[b] = NULL;
    }
}

/* ---- moving a task ---- */

static void phase_message(const struct sim_entry *x, size_t k, char *out, size_t size)
{
    const struct sim_phase *p = &x->phases[k];
    char len[64] = "";
    if (k + 1 < x->n_phases) {
        if (p->polls)
            snprintf(len, sizeof len, " for %lld polls", (long long)p->polls);
        else if (p->s_ms)
            snprintf(len, sizeof len, " for %.3g s", (double)p->s_ms / 1000.0);
        else if (p->until_advance)
            snprintf(len, sizeof len, " until advanced");
    }
    snprintf(out, size, "simulated: phase %zu of %zu, %s%s", k + 1, x->n_phases,
             task_state_name(p->state), len);
}

/* The store's word on the task after a move was refused: progression stops there. */
static void resync(struct sim *sim, struct sim_entry *x)
{
    struct task_summary t;
    struct err se;
    if (store_task_summary(sim->store, x->product, x->id, &t, &se) == 0)
        x->state = t.state;
    x->done = true;
}

static void apply_effects(struct sim *sim, struct sim_entry *x);

/* Moves x into phase k: one or two store moves (through running when the model asks for it),
 * the last setting the phase's Info. ERR_CONFLICT when the store refused (an operator moved the
 * task meanwhile): x then stops. */
static int enter_phase(struct sim *sim, struct sim_entry *x, size_t k, struct err *e)
{
    const struct sim_phase *p = &x->phases[k];
    enum task_state hops[2];
    int n = sim_path(x->state, p->state, hops);
    bool final = task_state_is_final(p->state);
    char msg[256];
    phase_message(x, k, msg, sizeof msg);
    if (n < 0) { /* a task rule set on a task whose state cannot reach its first phase */
        x->done = true;
        return err_set(e, ERR_CONFLICT, "task %s cannot move from %s to %s", x->id,
                       task_state_name(x->state), task_state_name(p->state));
    }
    bool advance_first = x->steps_follow && k > x->idx;
    bool advance_last = x->steps_follow && k == 0 && final;
    if (n == 0 && x->state == TASK_RUNNING && advance_first) {
        hops[0] = TASK_RUNNING; /* running -> running records the step and the new Info */
        n = 1;
    }
    for (int i = 0; i < n; i++) {
        bool adv = (i == 0 && advance_first) || (i == n - 1 && advance_last);
        struct task_move m = {.id = x->id,
                              .expect = x->state,
                              .to = hops[i],
                              .node = sim->node,
                              .message = msg,
                              .info = i == n - 1 ? p->info : "",
                              .step_advance = adv ? 1 : 0,
                              .step_mark = "done"};
        struct err se;
        int rc = store_task_move(sim->store, &m, &se);
        if (rc != 0) {
            resync(sim, x);
            return err_set(e, rc == ERR_CONFLICT ? ERR_CONFLICT : ERR_INTERNAL,
                           "moving simulated task %s: %s", x->id, se.msg);
        }
        x->state = hops[i];
    }
    x->idx = k;
    x->polls = 0;
    x->since_ms = now_ms();
    if (x->state == TASK_SUCCESS)
        apply_effects(sim, x);
    return 0;
}

/* Ends every phase that is over by now (polls answered, seconds passed). */
static int catch_up(struct sim *sim, struct sim_entry *x, int64_t now, struct err *e)
{
    int rc = 0;
    while (rc == 0 && !x->done && x->idx + 1 < x->n_phases &&
           sim_phase_over(&x->phases[x->idx], x->polls, x->since_ms, now))
        rc = enter_phase(sim, x, x->idx + 1, e);
    return rc;
}

/* ---- effects on the instance ---- */

static void apply_effects(struct sim *sim, struct sim_entry *x)
{
    if (!x->instance_id[0])
        return;
    json_t *state = NULL;
    struct err se;
    if (store_instance_sim_state(sim->store, x->product, x->instance_id, &state, &se) != 0 ||
        !state)
        return; /* a real instance, or gone: nothing recorded */
    const char *status = NULL;
    if (sim_effect_apply(x->product, x->action, x->input, state, &status, now_ms())) {
        char *text = json_dumps(state, JSON_COMPACT);
        if (store_instance_set_sim_state(sim->store, x->product, x->instance_id, text, &se) != 0)
            log_warn("sim: recording the state of %s: %s", x->instance_id, se.msg);
        free(text);
    }
    if (status &&
        store_instance_update(sim->store, x->instance_id, status, NULL, NULL, NULL, &se) != 0)
        log_warn("sim: setting %s %s: %s", x->instance_id, status, se.msg);
    json_decref(state);
}

/* ---- rules ---- */

/* The most specific rule for a task (the latest set among equals); NULL when none applies. */
static const struct sim_rule *rule_for(struct sim *sim, const char *product, const char *action,
                                       const char *instance_id, const char *task)
{
    const struct sim_rule *best = NULL;
    int best_score = -1;
    for (size_t i = 0; sim && i < sim->n_rules; i++) {
        int sc = sim_rule_score(&sim->rules[i], product, action, instance_id, task);
        if (sc >= 0 && sc >= best_score) {
            best = &sim->rules[i];
            best_score = sc;
        }
    }
    return best;
}

static struct sim_phase *phases_copy(const struct sim_phase *p, size_t n)
{
    struct sim_phase *c = xcalloc(n, sizeof *c);
    memcpy(c, p, n * sizeof *c);
    return c;
}

/* A task rule, now: x restarts at the rule's first phase from where it is. */
static int rule_apply_now(struct sim *sim, struct sim_entry *x, const struct sim_rule *r,
                          struct err *e)
{
    free(x->phases);
    x->phases = phases_copy(r->phases, r->n_phases);
    x->n_phases = r->n_phases;
    x->steps_follow = false;
    x->done = task_state_is_final(x->state);
    x->idx = 0;
    x->polls = 0;
    x->since_ms = now_ms();
    if (x->done)
        return 0;
    return enter_phase(sim, x, 0, e);
}

/* ---- tasks ---- */

/* The steps that stand for the phases; step 0 also holds the whole phase list, so the task can
 * be followed again after a restart. */
static json_t *steps_for(const struct sim_phase *ph, size_t n, json_t *phases_json)
{
    size_t n_steps = n > 1 && task_state_is_final(ph[n - 1].state) ? n - 1 : n;
    json_t *steps = json_array();
    for (size_t i = 0; i < n_steps; i++) {
        json_t *sim = json_pack("{s:I}", "phase", (json_int_t)i);
        if (i == 0)
            json_object_set(sim, "phases", phases_json);
        char name[64];
        snprintf(name, sizeof name, "phase %zu: %s", i + 1, task_state_name(ph[i].state));
        json_array_append_new(steps, json_pack("{s:s, s:{s:o}}", "name", name, "do", "sim", sim));
    }
    return steps;
}

static const struct sim_phase default_phase = {.state = TASK_SUCCESS};

int sim_task_create(struct sim *sim, struct store *s, const struct sim_task_new *t,
                    char id_out[STORE_ID_MAX], struct err *e)
{
    if (sim)
        pthread_mutex_lock(&sim->mu);
    const struct sim_rule *r = rule_for(sim, t->product, t->action, t->instance_id, NULL);
    const struct sim_phase *ph = r ? r->phases : &default_phase;
    size_t n = r ? r->n_phases : 1;
    json_t *phases_json = r ? json_incref(json_object_get(r->json, "phases"))
                            : json_pack("[{s:s}]", "state", "success");
    json_t *steps = steps_for(ph, n, phases_json);
    json_decref(phases_json);
    struct task_new tn = {.product = t->product,
                          .region = t->region,
                          .uin = t->uin,
                          .instance_id = t->instance_id,
                          .type = t->action,
                          .on_failure = "fail",
                          .steps = steps,
                          .node = t->node,
                          .input = t->input};
    struct err se;
    int rc = store_task_create(s, &tn, id_out, &se);
    json_decref(steps);
    if (rc) {
        if (sim)
            pthread_mutex_unlock(&sim->mu);
        return err_set(e, ERR_INTERNAL, "creating the simulated task: %s", se.msg);
    }
    struct sim_entry *x = xcalloc(1, sizeof *x);
    snprintf(x->id, sizeof x->id, "%s", id_out);
    snprintf(x->product, sizeof x->product, "%s", t->product);
    snprintf(x->action, sizeof x->action, "%s", t->action);
    snprintf(x->instance_id, sizeof x->instance_id, "%s", t->instance_id ? t->instance_id : "");
    x->phases = phases_copy(ph, n);
    x->n_phases = n;
    x->state = TASK_INITIAL;
    x->steps_follow = true;
    x->input = t->input ? json_deep_copy(t->input) : NULL;
    struct sim tmp; /* no sim: moves go straight to the store, nothing is remembered */
    struct sim *use = sim;
    if (!sim) {
        memset(&tmp, 0, sizeof tmp);
        tmp.store = s;
        snprintf(tmp.node, sizeof tmp.node, "%s", t->node ? t->node : "");
        use = &tmp;
    } else {
        entry_add(sim, x);
    }
    rc = enter_phase(use, x, 0, e);
    const struct sim_rule *tr =
        sim ? rule_for(sim, t->product, t->action, t->instance_id, id_out) : NULL;
    if (rc == 0 && tr && tr->task[0])
        rc = rule_apply_now(use, x, tr, e);
    if (!sim)
        entry_free(x);
    else
        pthread_mutex_unlock(&sim->mu);
    return rc == ERR_CONFLICT ? 0 : rc; /* the task exists; an operator got there first */
}

/* The entry of a simulated task created before this process started, rebuilt from its row. */
static struct sim_entry *entry_load(struct sim *sim, const struct task_summary *t)
{
    struct task *task = NULL;
    struct err se;
    if (store_task_get(sim->store, t->id, TASK_READ_STEPS, &task, &se) != 0)
        return NULL;
    const struct task_step *first = task_step_at(task, 0);
    json_t *sim0 = json_object_get(first ? first->do_action : NULL, "sim");
    struct sim_phase *ph = NULL;
    size_t n = 0;
    if (!json_object_get(sim0, "phases")) { /* no phases recorded: the default, success */
        ph = phases_copy(&default_phase, 1);
        n = 1;
    } else if (sim_phases_parse(json_object_get(sim0, "phases"), &ph, &n, &se) != 0) {
        task_free(task);
        return NULL;
    }
    struct sim_entry *x = xcalloc(1, sizeof *x);
    snprintf(x->id, sizeof x->id, "%s", t->id);
    snprintf(x->product, sizeof x->product, "%s", t->product);
    snprintf(x->action, sizeof x->action, "%s", task->type ? task->type : "");
    snprintf(x->instance_id, sizeof x->instance_id, "%s", t->instance_id);
    x->phases = ph;
    x->n_phases = n;
    int64_t step = task->current_step;
    x->idx = step < 0 ? 0 : (size_t)step < n ? (size_t)step : n - 1;
    x->state = t->state;
    x->steps_follow = true;
    /* A state its phase does not say: an operator's verb, which the rule no longer overrides. */
    x->done = x->state != ph[x->idx].state && x->state != TASK_INITIAL;
    x->since_ms = now_ms();
    x->input = json_is_object(task->input) ? json_incref(task->input) : NULL;
    task_free(task);
    entry_add(sim, x);
    return x;
}

static struct sim_entry *entry_of(struct sim *sim, const struct task_summary *t)
{
    struct sim_entry *x = entry_find(sim, t->id);
    if (x || !(x = entry_load(sim, t)))
        return x;
    struct err e;
    /* Still initial while its phase is not: the process stopped between the task's creation and
     * its first move. The move is made now. */
    if (!x->done && x->state != x->phases[x->idx].state && enter_phase(sim, x, x->idx, &e) != 0)
        log_warn("sim: %s", e.msg);
    return x;
}

int sim_task_poll(struct sim *sim, struct store *s, struct task_summary *t, struct err *e)
{
    if (!t->simulated || !sim)
        return 0;
    pthread_mutex_lock(&sim->mu);
    struct sim_entry *x = entry_of(sim, t);
    int rc = 0;
    if (x) {
        enum task_state before = x->state;
        size_t idx = x->idx;
        struct err me;
        if (catch_up(sim, x, now_ms(), &me) != 0)
            log_warn("sim: %s", me.msg);
        if (!x->done)
            x->polls++;
        const struct sim_phase *p = &x->phases[x->idx];
        if (!x->done && p->err_code)
            rc = err_set(e, p->err_code, "%s", p->err_msg);
        struct err se;
        if ((x->state != before || x->idx != idx) &&
            store_task_summary(s, t->product, t->id, t, &se) != 0)
            rc = err_set(e, ERR_INTERNAL, "reading task %s: %s", t->id, se.msg);
        /* The phase speaks, also for a phase the store has no move for (the first one when it
         * is initial, or one after a phase in the same state). */
        if (!x->done && rc == 0) {
            snprintf(t->info, sizeof t->info, "%s", p->info);
            t->has_info = true;
        }
    }
    pthread_mutex_unlock(&sim->mu);
    return rc;
}

/* The simulated task id, by its row; ERR_NOT_FOUND when there is none or it is not simulated. */
static int summary_of(struct store *s, const char *id, struct task_summary *t, struct err *e)
{
    static const char *const products[] = {"cdb", "mongodb"};
    for (size_t i = 0; i < 2; i++) {
        struct err se;
        int rc = store_task_summary(s, products[i], id, t, &se);
        if (rc == 0)
            return t->simulated ? 0 : err_set(e, ERR_NOT_FOUND, "task %s is not simulated", id);
        if (rc != ERR_NOT_FOUND)
            return err_set(e, rc, "%s", se.msg);
    }
    return err_set(e, ERR_NOT_FOUND, "no task %s", id);
}

int sim_task_advance(struct sim *sim, struct store *s, const char *id, struct err *e)
{
    struct task_summary t;
    int rc = summary_of(s, id, &t, e);
    if (rc)
        return rc;
    pthread_mutex_lock(&sim->mu);
    struct sim_entry *x = entry_of(sim, &t);
    if (!x)
        rc = err_set(e, ERR_INTERNAL, "task %s: its phases cannot be read", id);
    else if (x->done || x->idx + 1 >= x->n_phases)
        rc = err_set(e, ERR_CONFLICT, "task %s is in its last phase (%s): nothing to advance to",
                     id, task_state_name(x->state));
    else if (!x->phases[x->idx].until_advance)
        rc = err_set(e, ERR_CONFLICT,
                     "task %s: phase %zu (%s) ends by polls or seconds, not \"until\": "
                     "\"advance\"",
                     id, x->idx + 1, task_state_name(x->phases[x->idx].state));
    else
        rc = enter_phase(sim, x, x->idx + 1, e);
    pthread_mutex_unlock(&sim->mu);
    return rc;
}

/* The state an operator verb leads a simulated task to; -1 when it does not fit. */
static int verb_target(enum task_verb v, enum task_state from, enum task_state *to)
{
    switch (v) {
    case VERB_PAUSE:
        *to = TASK_PAUSED;
        return from == TASK_RUNNING || from == TASK_WAITING ? 0 : -1;
    case VERB_RESUME:
    case VERB_SKIP:
        *to = TASK_SUCCESS;
        return from == TASK_PAUSED ? 0 : -1;
    case VERB_UNDO:
        *to = TASK_UNDOED;
        return from == TASK_PAUSED || from == TASK_RUNNING ? 0 : -1;
    case VERB_KILL:
        *to = TASK_KILLED;
        return from == TASK_RUNNING || from == TASK_WAITING || from == TASK_PAUSED ? 0 : -1;
    default:
        *to = TASK_REMOVED;
        return from == TASK_INITIAL ? 0 : -1;
    }
}

int sim_task_verb(struct sim *sim, struct store *s, const char *id, enum task_verb verb,
                  const char *message, bool *handled, struct err *e)
{
    struct task_summary t;
    struct err ne;
    *handled = false;
    if (!sim || summary_of(s, id, &t, &ne) != 0)
        return 0;
    *handled = true;
    pthread_mutex_lock(&sim->mu);
    struct sim_entry *x = entry_of(sim, &t);
    enum task_state to = TASK_SUCCESS, hops[2];
    int rc = 0;
    if (!x)
        rc = err_set(e, ERR_INTERNAL, "task %s: its phases cannot be read", id);
    else if (verb_target(verb, x->state, &to) != 0)
        rc = err_set(e, ERR_CONFLICT, "cannot %s simulated task %s: it is %s", task_verb_name(verb),
                     id, task_state_name(x->state));
    int n = rc ? 0 : sim_path(x->state, to, hops);
    char msg[256];
    snprintf(msg, sizeof msg, "%s by an operator%s%s", task_verb_name(verb),
             message && *message ? ": " : "", message ? message : "");
    for (int i = 0; i < n && rc == 0; i++) {
        struct task_move m = {.id = id,
                              .expect = x->state,
                              .to = hops[i],
                              .node = sim->node,
                              .message = msg,
                              .info = i == n - 1 ? "" : NULL};
        rc = store_task_move(s, &m, e);
        if (rc == 0)
            x->state = hops[i];
    }
    if (x && rc == 0) {
        x->done = true;
        if (x->state == TASK_SUCCESS)
            apply_effects(sim, x);
    }
    pthread_mutex_unlock(&sim->mu);
    return rc;
}

/* ---- rules, the admin side ---- */

static struct sim_rule *rule_named(struct sim *sim, const char *name)
{
    for (size_t i = 0; i < sim->n_rules; i++)
        if (strcmp(sim->rules[i].name, name) == 0)
            return &sim->rules[i];
    return NULL;
}

/* A rule naming a task applies to it at once (when it exists). */
static int task_rule_now(struct sim *sim, const struct sim_rule *r, struct err *e)
{
    struct task_summary t;
    struct err se;
    if (store_task_summary(sim->store, r->product, r->task, &t, &se) != 0 || !t.simulated)
        return 0;
    struct sim_entry *x = entry_of(sim, &t);
    return x ? rule_apply_now(sim, x, r, e) : 0;
}

int sim_rule_set(struct sim *sim, const char *name, json_t *rule, struct err *e)
{
    struct sim_rule r;
    int rc = sim_rule_parse(name, rule, &r, e);
    if (rc)
        return rc;
    pthread_mutex_lock(&sim->mu);
    struct sim_rule *old = rule_named(sim, name);
    if (old) {
        sim_rule_clear(old);
        *old = r;
    } else if (sim->n_rules >= SIM_MAX_RULE) {
        sim_rule_clear(&r);
        rc = err_set(e, ERR_BAD_REQUEST, "at most %d rules; delete some first", SIM_MAX_RULE);
    } else {
        sim->rules = xrealloc(sim->rules, (sim->n_rules + 1) * sizeof *sim->rules);
        sim->rules[sim->n_rules++] = r;
        old = &sim->rules[sim->n_rules - 1];
    }
    if (rc == 0 && old->task[0])
        rc = task_rule_now(sim, old, e);
    pthread_mutex_unlock(&sim->mu);
    return rc;
}

int sim_rule_delete(struct sim *sim, const char *name, struct err *e)
{
    pthread_mutex_lock(&sim->mu);
    struct sim_rule *r = rule_named(sim, name);
    int rc = 0;
    if (!r) {
        rc = err_set(e, ERR_NOT_FOUND, "no simulation rule %.128s", name);
    } else {
        size_t i = (size_t)(r - sim->rules);
        sim_rule_clear(r);
        memmove(&sim->rules[i], &sim->rules[i + 1], (sim->n_rules - i - 1) * sizeof *r);
        sim->n_rules--;
    }
    pthread_mutex_unlock(&sim->mu);
    return rc;
}

json_t *sim_rule_list(struct sim *sim)
{
    json_t *list = json_array();
    pthread_mutex_lock(&sim->mu);
    for (size_t i = 0; i < sim->n_rules; i++)
        json_array_append(list, sim->rules[i].json);
    pthread_mutex_unlock(&sim->mu);
    return list;
}

int sim_rules_load_file(struct sim *sim, const char *path, struct err *e)
{
    json_error_t je;
    json_t *arr = json_load_file(path, 0, &je);
    if (!arr)
        return err_set(e, ERR_BAD_REQUEST, "--sim-rules %s: line %d: %s", path, je.line, je.text);
    int rc = json_is_array(arr) ? 0
                                : err_set(e, ERR_BAD_REQUEST,
                                          "--sim-rules %s: expected a JSON array of rules", path);
    size_t i;
    json_t *r;
    json_array_foreach(arr, i, r)
    {
        if (rc)
            break;
        const char *name = json_string_value(json_object_get(r, "name"));
        struct err re;
        if (!name)
            rc = err_set(e, ERR_BAD_REQUEST, "--sim-rules %s: rule %zu has no \"name\"", path, i);
        else if ((rc = sim_rule_set(sim, name, r, &re)) != 0)
            rc = err_set(e, rc, "--sim-rules %s: rule %s: %s", path, name, re.msg);
    }
    json_decref(arr);
    return rc;
}

int sim_reset(struct sim *sim, json_t **out, struct err *e)
{
    pthread_mutex_lock(&sim->mu);
    size_t n_rules = sim->n_rules;
    for (size_t i = 0; i < sim->n_rules; i++)
        sim_rule_clear(&sim->rules[i]);
    free(sim->rules);
    sim->rules = NULL;
    sim->n_rules = 0;
    entries_clear(sim);
    int64_t tasks = 0, instances = 0;
    int rc = store_sim_reset(sim->store, &tasks, &instances, e);
    pthread_mutex_unlock(&sim->mu);
    if (rc == 0)
        *out = json_pack("{s:I, s:I, s:I}", "rules", (json_int_t)n_rules, "tasks",
                         (json_int_t)tasks, "instances", (json_int_t)instances);
    return rc;
}

/* ---- the timer: phases of `s` seconds end without a poll, so GET /v1/tasks agrees ---- */

static void *timer_main(void *arg)
{
    struct sim *sim = arg;
    pthread_setname_np(pthread_self(), "sim-timer");
    pthread_mutex_lock(&sim->mu);
    while (!sim->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += SIM_TICK_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&sim->tick, &sim->mu, &ts);
        int64_t now = now_ms();
        for (size_t b = 0; b < SIM_BUCKETS && !sim->stop; b++)
            for (struct sim_entry *x = sim->buckets[b]; x; x = x->next) {
                struct err e;
                if (!x->done && x->phases[x->idx].s_ms && catch_up(sim, x, now, &e) != 0)
                    log_warn("sim: %s", e.msg);
            }
    }
    pthread_mutex_unlock(&sim->mu);
    return NULL;
}

struct sim *sim_new(struct store *s, const char *node)
{
    struct sim *sim = xcalloc(1, sizeof *sim);
    pthread_mutex_init(&sim->mu, NULL);
    pthread_cond_init(&sim->tick, NULL);
    sim->store = s;
    snprintf(sim->node, sizeof sim->node, "%s", node ? node : "");
    if (pthread_create(&sim->timer, NULL, timer_main, sim) != 0)
        abort(); /* a thread at start: out of resources, as an allocation would be */
    return sim;
}

void sim_free(struct sim *sim)
{
    if (!sim)
        return;
    pthread_mutex_lock(&sim->mu);
    sim->stop = true;
    pthread_cond_signal(&sim->tick);
    pthread_mutex_unlock(&sim->mu);
    pthread_join(sim->timer, NULL);
    for (size_t i = 0; i < sim->n_rules; i++)
        sim_rule_clear(&sim->rules[i]);
    free(sim->rules);
    entries_clear(sim);
    pthread_cond_destroy(&sim->tick);
    pthread_mutex_destroy(&sim->mu);
    free(sim);
}
