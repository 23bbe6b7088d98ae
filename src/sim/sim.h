/* Simulation (DESIGN.md section 8): simulated instances, progression rules, simulated tasks.
 * A layer below the products: it knows the store and the task model, never a product's API. */
#ifndef ASYNCD_SIM_H
#define ASYNCD_SIM_H

#include <jansson.h>
#include <stdbool.h>

#include "common/errors.h"
#include "store/store.h"

struct sim; /* the node's rules and the poll counts of its simulated tasks; NULL = none set */

/* A simulated task to create: one action on one (simulated) instance. */
struct sim_task_new {
    const char *product, *region, *uin;
    const char *instance_id; /* NULL for an action without an instance */
    const char *action;      /* the Cloud API action, e.g. "CreateAccounts"; also the task type */
    const char *node;        /* node id for the creation event */
    json_t *input;           /* the checked request parameters, secrets left out; may be NULL */
};

/* Whether the instance was registered with "simulated": true (it has no server). */
bool sim_instance_simulated(const struct instance *in);

/* Creates the task of t->action as the progression rules say (immediate success when no rule
 * applies) and mints its id in the product's format into id_out. ERR_INTERNAL on a store
 * failure. sim may be NULL (no rules: the task succeeds at once). */
int sim_task_create(struct sim *sim, struct store *s, const struct sim_task_new *t,
                    char id_out[STORE_ID_MAX], struct err *e);

#endif
