/* Simulation (DESIGN.md section 8): simulated instances, progression rules, simulated tasks.
 * A layer below the products: it knows the store and the task model, never a product's API.
 * The rules and each task's place in its phases (poll counts, phase clocks) live in memory, one
 * mutex over them: the HTTP threads poll concurrently. After a restart a task resumes from the
 * phase its store row says (its current step), with that phase's polls and clock counted anew. */
#ifndef ASYNCD_SIM_H
#define ASYNCD_SIM_H

#include <jansson.h>
#include <stdbool.h>

#include "common/errors.h"
#include "store/store.h"
#include "task/task_state.h"

struct sim; /* the node's rules and the poll counts of its simulated tasks; NULL = none set */

/* A simulated task to create: one action on one (simulated) instance. */
struct sim_task_new {
    const char *product, *region, *uin;
    const char *instance_id; /* NULL for an action without an instance */
    const char *action;      /* the Cloud API action, e.g. "CreateAccounts"; also the task type */
    const char *node;        /* node id for the creation event */
    json_t *input;           /* the checked request parameters, secrets left out; may be NULL */
};

/* A simulation over store s (borrowed; outlives it), node naming this node in task events. Starts
 * the light timer that ends phases of `s` seconds without a poll. sim_free stops it. */
struct sim *sim_new(struct store *s, const char *node);
void sim_free(struct sim *sim);

/* Whether the instance was registered with "simulated": true (it has no server). */
bool sim_instance_simulated(const struct instance *in);

/* Creates the task of t->action as the progression rules say (immediate success when no rule
 * applies) and mints its id in the product's format into id_out. ERR_INTERNAL on a store
 * failure. sim may be NULL (no rules: the task succeeds at once). */
int sim_task_create(struct sim *sim, struct store *s, const struct sim_task_new *t,
                    char id_out[STORE_ID_MAX], struct err *e);

/* One answer of DescribeAsyncRequestInfo about t (read by the caller): for a simulated task,
 * counts the poll, moves the task on as its phases say and re-reads *t; returns the error of an
 * error phase (its code and message), else 0. A real task: 0 at once, t untouched. */
int sim_task_poll(struct sim *sim, struct store *s, struct task_summary *t, struct err *e);
/* POST /v1/tasks/{id}/advance: ends the task's current phase. ERR_NOT_FOUND (no such simulated
 * task), ERR_CONFLICT (its phase does not wait for advance, or it is over). */
int sim_task_advance(struct sim *sim, struct store *s, const char *id, struct err *e);
/* An operator verb on a task: *handled is false (and nothing done) unless it is simulated; then
 * resume and skip lead to success, undo to undoed, kill to killed, pause to paused, remove to
 * removed, each as one or two store moves. ERR_CONFLICT when the verb does not fit its state. */
int sim_task_verb(struct sim *sim, struct store *s, const char *id, enum task_verb verb,
                  const char *message, bool *handled, struct err *e);

/* Rules. set: ERR_BAD_REQUEST saying what is wrong; a rule naming a task applies to it at once.
 * delete: ERR_NOT_FOUND. list: a new JSON array the caller json_decref()s. load_file: a JSON
 * array of rules, each with a "name" (--sim-rules). */
int sim_rule_set(struct sim *sim, const char *name, json_t *rule, struct err *e);
int sim_rule_delete(struct sim *sim, const char *name, struct err *e);
json_t *sim_rule_list(struct sim *sim);
int sim_rules_load_file(struct sim *sim, const char *path, struct err *e);
/* Clears the rules, and deletes the simulated instances and tasks from the store; *out: a new
 * {"rules","tasks","instances"} object of what went. */
int sim_reset(struct sim *sim, json_t **out, struct err *e);

#endif
