/* Flow templates: each Cloud API action that starts a task is a JSON file,
 * flows/<product>/<Action>.json, loaded at start-up (--flows DIR). A template declares the action's
 * parameters (types and limits, checked before any task exists) and the steps it becomes, with
 * ${Param} / ${var.Field} substituted as whole values into argv elements and executor args -- never
 * into SQL text or a shell line -- so an operator adds or changes an action without recompiling. */
#ifndef ASYNCD_FLOWS_H
#define ASYNCD_FLOWS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/errors.h"

struct flows;
struct flow;

/* Loads every DIR/<product>/<Action>.json. A malformed template fails the load with a message
 * naming the file and the field (ERR_INVALID_PARAMETER_VALUE). *out is freed with flows_free. */
int flows_load(const char *dir, struct flows **out, struct err *e);
/* Loads the directories in order, a template of a later one replacing the same product/action of
 * an earlier one (the shipped templates, then the operator's --flows DIR over them). */
int flows_load_layers(const char *const *dirs, size_t n, struct flows **out, struct err *e);
/* How many templates a later directory replaced. */
size_t flows_replaced(const struct flows *f);
/* Another reference to f (NULL-safe); flows_free drops one and frees with the last. */
struct flows *flows_ref(struct flows *f);
void flows_free(struct flows *f);

/* The set in use, which a reload (SIGHUP) replaces whole: a request takes a reference with
 * flows_live_get (NULL-safe; NULL when l is) and drops it with flows_free, so a reload never
 * frees a template under a request that uses it. new/swap take over the caller's reference. */
struct flows_live;
struct flows_live *flows_live_new(struct flows *f);
struct flows *flows_live_get(struct flows_live *l);
void flows_live_swap(struct flows_live *l, struct flows *f);
void flows_live_free(struct flows_live *l);
/* The template for product/action, or NULL. */
const struct flow *flows_find(const struct flows *f, const char *product, const char *action);
/* How many templates were loaded. */
size_t flows_count(const struct flows *f);

const char *flow_task_type(const struct flow *fl);  /* the task's type (e.g. "CreateAccounts") */
const char *flow_on_failure(const struct flow *fl); /* pause | undo | fail */
/* The request parameter naming the instance ("InstanceId"), or NULL when the action has none. */
const char *flow_instance_param(const struct flow *fl);
/* The parameter names the action takes, for UnknownParameter checks (borrowed, NULL-terminated). */
const char *const *flow_param_names(const struct flow *fl);

/* Checks params against the template's schema: MissingParameter for a required one,
 * InvalidParameter for a wrong type ("Accounts.0.User: expected a string, got a number"),
 * InvalidParameterValue for a value out of its limits (pattern, length, range, enum, NUL byte).
 * With from_form, values arrived as strings (GET/form) and integers/booleans are parsed. On success
 * *clean is a new JSON object of typed values (the caller decrefs). */
int flow_check_params(const struct flow *fl, const json_t *params, bool from_form, json_t **clean,
                      struct err *e);
/* The instance id named by the (checked) parameters, or NULL. An array parameter must hold exactly
 * one id. */
const char *flow_instance_id(const struct flow *fl, const json_t *clean, struct err *e);
/* Expands the template's steps with the checked parameters: a new JSON array of concrete steps
 * ({"name", "do", "undo", "retries", "timeout_s"}) the caller decrefs. */
int flow_expand(const struct flow *fl, const json_t *clean, json_t **steps, struct err *e);
/* A copy of the checked parameters without the ones marked "secret" (passwords), to keep with the
 * task. The caller decrefs it. */
json_t *flow_public_params(const struct flow *fl, const json_t *clean);
/* Extra fields the action answers besides AsyncRequestId (a borrowed object, may be NULL). */
const json_t *flow_response(const struct flow *fl);

#endif
