/* The simulation's private parts: progression rules and their phases (sim_rules.c), and the
 * effects of a simulated task on its instance (sim_effects.c). Pure functions, unit-tested. */
#ifndef ASYNCD_SIM_INT_H
#define ASYNCD_SIM_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/errors.h"
#include "store/store.h"
#include "task/task_state.h"

/* One phase of a rule: a state held for `polls` answers, `s_ms` milliseconds or until advanced;
 * the last phase lasts for ever. */
struct sim_phase {
    enum task_state state;
    int64_t polls;      /* 0 = not counted in polls */
    int64_t s_ms;       /* 0 = not timed */
    bool until_advance; /* "until": "advance" */
    char info[1024];    /* the Info while in the phase ("" when none) */
    int err_code;       /* 0, or the ERR_* DescribeAsyncRequestInfo answers in the phase */
    char err_msg[512];
};

struct sim_rule {
    char name[128];
    char product[16];
    char action[128];         /* "*" = any */
    char instance_id[64];     /* "" = any */
    char task[64];            /* "" = any */
    struct sim_phase *phases; /* heap, n_phases of them */
    size_t n_phases;
    json_t *json; /* the rule as given, with its name; owned */
};

/* Parses a rule body (the JSON of DESIGN section 8) named `name` into r (sim_rule_clear frees
 * it). ERR_BAD_REQUEST saying which field is wrong. */
int sim_rule_parse(const char *name, json_t *body, struct sim_rule *r, struct err *e);
void sim_rule_clear(struct sim_rule *r);
/* Parses a phases array; *out is a heap array of *n the caller free()s. */
int sim_phases_parse(json_t *phases, struct sim_phase **out, size_t *n, struct err *e);
/* How well r matches a task: -1 when it does not; else higher is more specific (task 8,
 * instance 4, action 2, "*" 0, summed). */
int sim_rule_score(const struct sim_rule *r, const char *product, const char *action,
                   const char *instance_id, const char *task);
/* Whether phase p (not the last), entered at since_ms and answered `polls` times, is over at now.
 */
bool sim_phase_over(const struct sim_phase *p, int64_t polls, int64_t since_ms, int64_t now_ms);
/* The moves from `from` to `to` through legal transitions (directly or through running): fills
 * hops (at most 2) and returns their count; 0 when from == to; -1 when to cannot be reached. */
int sim_path(enum task_state from, enum task_state to, enum task_state hops[2]);

/* What a task that reached success changes on its simulated instance's recorded state: state is
 * the instance's sim state (changed in place), input the task's checked parameters. Sets
 * *status to a new instance status ("isolated", ...) when the action changes it, else NULL.
 * Returns whether anything in state changed. */
bool sim_effect_apply(const char *product, const char *action, const json_t *input, json_t *state,
                      const char **status, int64_t now_ms);

#endif
