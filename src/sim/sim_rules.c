/* Progression rules (DESIGN section 8): their JSON, which rule is most specific for a task, and
 * the phase arithmetic the simulation runs on. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "sim/sim_int.h"

static int copy_opt(json_t *body, const char *key, char *dst, size_t size, const char *dflt,
                    struct err *e)
{
    json_t *v = json_object_get(body, key);
    if (!v || json_is_null(v)) {
        snprintf(dst, size, "%s", dflt);
        return 0;
    }
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) >= size)
        return err_set(e, ERR_BAD_REQUEST, "%s: expected a non-empty string of at most %zu bytes",
                       key, size - 1);
    snprintf(dst, size, "%s", json_string_value(v));
    return 0;
}

/* The ERR_* of an error phase's Tencent code string, among the codes asyncd answers (the first
 * of those that share a string); 0 for none. */
static int code_of(const char *word)
{
    for (int c = -1; c >= -60; c--) {
        const char *tc = err_tencent_code(c);
        if (tc && *tc && strcmp(tc, word) == 0)
            return c;
    }
    return 0;
}

static int phase_error(json_t *err, size_t i, struct sim_phase *p, struct err *e)
{
    json_t *code = json_object_get(err, "code"), *msg = json_object_get(err, "message");
    if (!json_is_object(err) || !json_is_string(code))
        return err_set(e, ERR_BAD_REQUEST,
                       "phases[%zu].error: expected {\"code\": \"...\", \"message\": \"...\"}", i);
    if (msg && !json_is_string(msg))
        return err_set(e, ERR_BAD_REQUEST, "phases[%zu].error.message: expected a string", i);
    p->err_code = code_of(json_string_value(code));
    if (!p->err_code)
        return err_set(e, ERR_BAD_REQUEST,
                       "phases[%zu].error.code: %.64s is not a code asyncd answers (for example "
                       "InternalError, CdbError.TaskError, InvalidParameterValue.StatusAbnormal)",
                       i, json_string_value(code));
    snprintf(p->err_msg, sizeof p->err_msg, "%s", msg ? json_string_value(msg) : "simulated error");
    return 0;
}

static int phase_duration(json_t *ph, size_t i, struct sim_phase *p, struct err *e)
{
    json_t *polls = json_object_get(ph, "polls"), *s = json_object_get(ph, "s");
    json_t *until = json_object_get(ph, "until");
    int given = (polls != NULL) + (s != NULL) + (until != NULL);
    if (given > 1)
        return err_set(e, ERR_BAD_REQUEST, "phases[%zu]: give one of polls, s and until", i);
    if (polls && (!json_is_integer(polls) || json_integer_value(polls) < 1))
        return err_set(e, ERR_BAD_REQUEST, "phases[%zu].polls: expected an integer >= 1", i);
    if (s && (!json_is_number(s) || json_number_value(s) <= 0))
        return err_set(e, ERR_BAD_REQUEST, "phases[%zu].s: expected a number of seconds > 0", i);
    if (until && !(json_is_string(until) && strcmp(json_string_value(until), "advance") == 0))
        return err_set(e, ERR_BAD_REQUEST, "phases[%zu].until: the only value is \"advance\"", i);
    p->polls = polls ? json_integer_value(polls) : 0;
    p->s_ms = s ? (int64_t)llround(json_number_value(s) * 1000.0) : 0;
    if (s && p->s_ms < 1)
        p->s_ms = 1;
    p->until_advance = until != NULL;
    return 0;
}

static int phase_parse(json_t *ph, size_t i, bool last, struct sim_phase *p, struct err *e)
{
    static const char *const keys[] = {"state", "polls", "s", "until", "info", "error"};
    if (!json_is_object(ph))
        return err_set(e, ERR_BAD_REQUEST, "phases[%zu]: expected an object", i);
    const char *key;
    json_t *v;
    json_object_foreach(ph, key, v)
    {
        bool known = false;
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
            known = known || strcmp(key, keys[k]) == 0;
        if (!known)
            return err_set(e, ERR_BAD_REQUEST,
                           "phases[%zu].%.64s: unknown key (a phase has state, polls, s, until, "
                           "info and error)",
                           i, key);
    }
    json_t *state = json_object_get(ph, "state"), *info = json_object_get(ph, "info");
    memset(p, 0, sizeof *p);
    if (!json_is_string(state) || task_state_parse(json_string_value(state), &p->state) != 0)
        return err_set(e, ERR_BAD_REQUEST,
                       "phases[%zu].state: expected one of initial running waiting paused undoed "
                       "failed success killed removed",
                       i);
    if (info && !json_is_string(info))
        return err_set(e, ERR_BAD_REQUEST, "phases[%zu].info: expected a string", i);
    snprintf(p->info, sizeof p->info, "%s", info ? json_string_value(info) : "");
    int rc = phase_duration(ph, i, p, e);
    if (rc == 0 && json_object_get(ph, "error"))
        rc = phase_error(json_object_get(ph, "error"), i, p, e);
    if (rc == 0 && !last && !p->polls && !p->s_ms && !p->until_advance)
        return err_set(e, ERR_BAD_REQUEST,
                       "phases[%zu]: a phase before the last needs polls, s or \"until\": "
                       "\"advance\" to say when it ends",
                       i);
    if (rc == 0 && !last && task_state_is_final(p->state))
        return err_set(e, ERR_BAD_REQUEST,
                       "phases[%zu]: %s is final, so only the last phase may be in it", i,
                       task_state_name(p->state));
    return rc;
}

int sim_path(enum task_state from, enum task_state to, enum task_state hops[2])
{
    if (from == to)
        return 0;
    if (task_state_can_move(from, to)) {
        hops[0] = to;
        return 1;
    }
    if (task_state_can_move(from, TASK_RUNNING) && task_state_can_move(TASK_RUNNING, to)) {
        hops[0] = TASK_RUNNING;
        hops[1] = to;
        return 2;
    }
    return -1;
}

int sim_phases_parse(json_t *phases, struct sim_phase **out, size_t *n, struct err *e)
{
    *out = NULL;
    *n = 0;
    if (!json_is_array(phases) || json_array_size(phases) == 0 || json_array_size(phases) > 64)
        return err_set(e, ERR_BAD_REQUEST, "phases: expected an array of 1 to 64 phases");
    size_t count = json_array_size(phases);
    struct sim_phase *ph = xcalloc(count, sizeof *ph);
    int rc = 0;
    enum task_state prev = TASK_INITIAL, hops[2];
    for (size_t i = 0; i < count && rc == 0; i++) {
        rc = phase_parse(json_array_get(phases, i), i, i + 1 == count, &ph[i], e);
        if (rc == 0 && sim_path(prev, ph[i].state, hops) < 0)
            rc = err_set(e, ERR_BAD_REQUEST,
                         "phases[%zu]: a task cannot move from %s to %s (DESIGN: initial -> "
                         "running|removed; running -> anything but initial; waiting -> "
                         "running|killed; paused -> running|undoed|failed|killed)",
                         i, task_state_name(prev), task_state_name(ph[i].state));
        if (rc == 0)
            prev = ph[i].state;
    }
    if (rc != 0) {
        free(ph);
        return rc;
    }
    *out = ph;
    *n = count;
    return 0;
}

int sim_rule_parse(const char *name, json_t *body, struct sim_rule *r, struct err *e)
{
    memset(r, 0, sizeof *r);
    if (!json_is_object(body))
        return err_set(e, ERR_BAD_REQUEST, "a rule is a JSON object");
    if (!name || !*name || strlen(name) >= sizeof r->name)
        return err_set(e, ERR_BAD_REQUEST, "name: expected 1 to %zu characters",
                       sizeof r->name - 1);
    snprintf(r->name, sizeof r->name, "%s", name);
    int rc = copy_opt(body, "product", r->product, sizeof r->product, "", e);
    if (rc == 0 && strcmp(r->product, "cdb") != 0 && strcmp(r->product, "mongodb") != 0)
        rc = err_set(e, ERR_BAD_REQUEST, "product: expected \"cdb\" or \"mongodb\"");
    if (rc == 0)
        rc = copy_opt(body, "action", r->action, sizeof r->action, "*", e);
    if (rc == 0)
        rc = copy_opt(body, "instance_id", r->instance_id, sizeof r->instance_id, "", e);
    if (rc == 0)
        rc = copy_opt(body, "task", r->task, sizeof r->task, "", e);
    if (rc == 0)
        rc = sim_phases_parse(json_object_get(body, "phases"), &r->phases, &r->n_phases, e);
    if (rc != 0)
        return rc;
    r->json = json_deep_copy(body);
    json_object_set_new(r->json, "name", json_string(name));
    return 0;
}

void sim_rule_clear(struct sim_rule *r)
{
    free(r->phases);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}

int sim_rule_score(const struct sim_rule *r, const char *product, const char *action,
                   const char *instance_id, const char *task)
{
    if (strcmp(r->product, product) != 0)
        return -1;
    int score = 0;
    if (r->task[0]) {
        if (!task || strcmp(r->task, task) != 0)
            return -1;
        score += 8;
    }
    if (r->instance_id[0]) {
        if (!instance_id || strcmp(r->instance_id, instance_id) != 0)
            return -1;
        score += 4;
    }
    if (strcmp(r->action, "*") != 0) {
        if (!action || strcmp(r->action, action) != 0)
            return -1;
        score += 2;
    }
    return score;
}

bool sim_phase_over(const struct sim_phase *p, int64_t polls, int64_t since_ms, int64_t now_ms)
{
    if (p->polls)
        return polls >= p->polls;
    if (p->s_ms)
        return now_ms - since_ms >= p->s_ms;
    return false; /* until advanced, or the last phase */
}
