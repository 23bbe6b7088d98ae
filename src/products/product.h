/* A product dialect (cdb, mongodb): its Version, status words, task-id shape, error codes and
 * action table. The Cloud API front door finds the product and action here and calls it. */
#ifndef ASYNCD_PRODUCT_H
#define ASYNCD_PRODUCT_H

#include <jansson.h>
#include <stdbool.h>

#include "common/errors.h"
#include "task/task_state.h"
#include "flows/flows.h"
#include "sim/sim.h"
#include "store/store.h"

/* One verified, authorised Cloud API call, as an action handler sees it. */
struct api_call {
    const struct product *product;
    const char *action;
    const char *region;
    json_t *params;            /* business parameters (common ones removed); borrowed */
    bool params_from_form;     /* values arrived as strings (GET / form POST) */
    const struct account *who; /* the caller; who->owner_uin is the root account */
    struct store *store;
    const struct flows *flows; /* the flow templates; may be NULL */
    const char *node;          /* this node's id, for task events */
    void (*wake)(void *ctx);   /* wakes the engine after a task is created; may be NULL */
    void *wake_ctx;
    struct sim *sim; /* progression rules and simulated tasks (sim/sim.h); may be NULL */
};

/* Fills `response` (the object inside "Response", RequestId added by the caller). */
typedef int (*action_fn)(struct api_call *c, json_t *response, struct err *e);

struct action {
    const char *name;
    action_fn fn;
    const char *const *params; /* NULL-terminated names the action accepts */
    bool blocking; /* talks to an instance (seconds at worst): runs off the HTTP threads */
    /* The SDK's model of the request (products/sdk_models.h), e.g. "DescribeDBInstancesRequest":
     * its fields are accepted besides params, and checked for presence and kind. NULL = none. */
    const char *request_model;
};

struct product {
    const char *name;    /* "cdb" */
    const char *version; /* "2017-03-20" */
    const char *status_words[TASK_STATE_COUNT];
    bool (*id_shape_ok)(const char *id);
    const char *id_shape_hint;
    int err_task_not_found;     /* the dialect's code for an unknown AsyncRequestId */
    int err_permission_denied;  /* for a sub-account the policy does not allow */
    int err_instance_not_found; /* unknown, foreign or other-region instance */
    int err_instance_status;    /* an instance that is isolated or offline */
    const struct action *actions;
    /* Its flow actions may talk to the instance before the task exists (cdb's live account
     * check), so they run off the HTTP threads too: see product_flow_blocking. */
    bool flows_blocking;
};

/* cdb actions in files of their own */
int cdb_describe_tasks(struct api_call *c, json_t *resp, struct err *e);
int cdb_describe_accounts(struct api_call *c, json_t *resp, struct err *e);
/* Asks in's server what each account of accounts ([user, host] pairs, repeats allowed) holds,
 * before an account action's task exists: ERR_CDB_OPERATION_DENIED naming the account and the
 * privilege (or role) a tenant may not hold, or saying it could not be checked (a server error);
 * ERR_CDB_TASK_ERROR when the instance cannot be reached, drops the connection or takes more
 * than 10 s in all. An account that does not exist passes. Blocks for seconds at worst: call it
 * off the HTTP threads. */
int cdb_accounts_check_live(const struct instance *in, const json_t *accounts, struct err *e);
int mongodb_describe_db_backups(struct api_call *c, json_t *resp, struct err *e);
/* db_instances.c: DescribeDBInstances over the instances registered for the caller. */
int cdb_describe_db_instances(struct api_call *c, json_t *resp, struct err *e);
int mongodb_describe_db_instances(struct api_call *c, json_t *resp, struct err *e);

extern const struct product product_cdb;
extern const struct product product_mongodb;

/* NULL when unknown. */
const struct product *product_by_name(const char *name);
const struct product *product_by_version(const char *version);
const struct action *product_action(const struct product *p, const char *name);
const char *product_status_word(const struct product *p, enum task_state s);

/* ERR_UNKNOWN_PARAMETER naming the first parameter the action does not take. */
int product_check_params(const struct api_call *c, const struct action *a, struct err *e);
/* Reads a string parameter: ERR_MISSING_PARAMETER when required and absent, ERR_INVALID_PARAMETER
 * "NAME: expected a string, got a number" on a wrong type. *out borrows from params. */
int product_param_string(struct api_call *c, const char *name, bool required, const char **out,
                         struct err *e);
/* Integer parameter (JSON integer, or a decimal string from a GET/form request): dflt when absent,
 * InvalidParameter on a wrong type, InvalidParameterValue outside lo..hi. */
int product_param_int(struct api_call *c, const char *name, int64_t dflt, int64_t lo, int64_t hi,
                      int64_t *out, struct err *e);
/* Array of integers (at most max): *n = 0 when absent. */
int product_param_int_list(struct api_call *c, const char *name, int64_t *vals, size_t max,
                           size_t *n, struct err *e);
/* Looks up the caller's instance: unknown, another account's or another region's -> the dialect's
 * instance-not-found code; not running -> its status code. */
int product_find_instance(struct api_call *c, const char *instance_id, struct instance *out,
                          struct err *e);
/* Runs an action defined by a flow template: checks every parameter and the instance, expands the
 * steps and creates the task (nothing is created when anything is wrong); answers AsyncRequestId.
 */
int product_run_flow(struct api_call *c, const struct flow *fl, json_t *resp, struct err *e);
/* Whether product_run_flow(fl) may block for seconds (it connects to the instance), so the
 * front door must defer it to a blocking-work thread as it does a blocking action. */
bool product_flow_blocking(const struct product *p, const struct flow *fl);

/* Looks up the caller's task by AsyncRequestId in this product and region; any id that is
 * malformed, unknown, another product's or another account's gets the dialect's not-found code. */
int product_find_task(struct api_call *c, const char *id, struct task_summary *out, struct err *e);

#endif
