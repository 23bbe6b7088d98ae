/* Shared by the admin API's files: the request view handlers get and small JSON helpers. */
#ifndef ASYNCD_ADMIN_INT_H
#define ASYNCD_ADMIN_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "admin/admin.h"
#include "cloudapi/params.h"

struct admin {
    struct admin_config cfg;
};

struct admin_req {
    const struct http_request *http;
    const char *arg[3];      /* path segments matched by '*' in the route */
    json_t *body;            /* parsed JSON body (an object; {} when empty) */
    struct param_list query; /* decoded query string */
    const struct token *who; /* the caller's token */
};

/* A handler sets *out (a new reference) and *status, or returns an ERR_* with e filled. */
typedef int (*admin_fn)(struct admin *a, struct admin_req *r, json_t **out, int *status,
                        struct err *e);

/* Query parameter value or NULL. */
const char *admin_query(const struct admin_req *r, const char *key);
/* Body fields: ERR_BAD_REQUEST "field: expected ..." on a wrong type or a missing required one. */
int admin_body_string(const struct admin_req *r, const char *key, bool required, const char **out,
                      struct err *e);
/* The same of a field of obj, any JSON object of the body. */
int admin_obj_string(json_t *obj, const char *key, bool required, const char **out, struct err *e);

/* accounts, their key pairs, and instances (admin_accounts.c) */
int admin_account_create(struct admin *a, struct admin_req *r, json_t **out, int *status,
                         struct err *e);
int admin_account_show(struct admin *a, struct admin_req *r, json_t **out, int *status,
                       struct err *e);
int admin_account_patch(struct admin *a, struct admin_req *r, json_t **out, int *status,
                        struct err *e);
int admin_key_list(struct admin *a, struct admin_req *r, json_t **out, int *status, struct err *e);
int admin_key_create(struct admin *a, struct admin_req *r, json_t **out, int *status,
                     struct err *e);
int admin_key_patch(struct admin *a, struct admin_req *r, json_t **out, int *status, struct err *e);
int admin_key_delete(struct admin *a, struct admin_req *r, json_t **out, int *status,
                     struct err *e);
int admin_subaccount_create(struct admin *a, struct admin_req *r, json_t **out, int *status,
                            struct err *e);
int admin_policy_set(struct admin *a, struct admin_req *r, json_t **out, int *status,
                     struct err *e);
int admin_instance_create(struct admin *a, struct admin_req *r, json_t **out, int *status,
                          struct err *e);
int admin_instance_list(struct admin *a, struct admin_req *r, json_t **out, int *status,
                        struct err *e);
int admin_instance_show(struct admin *a, struct admin_req *r, json_t **out, int *status,
                        struct err *e);
int admin_instance_patch(struct admin *a, struct admin_req *r, json_t **out, int *status,
                         struct err *e);
/* tasks (admin_tasks.c) */
int admin_task_create(struct admin *a, struct admin_req *r, json_t **out, int *status,
                      struct err *e);
int admin_task_create_batch(struct admin *a, struct admin_req *r, json_t **out, int *status,
                            struct err *e);
int admin_task_show(struct admin *a, struct admin_req *r, json_t **out, int *status, struct err *e);
int admin_task_list(struct admin *a, struct admin_req *r, json_t **out, int *status, struct err *e);
int admin_task_verb(struct admin *a, struct admin_req *r, json_t **out, int *status, struct err *e);
int admin_task_transition(struct admin *a, struct admin_req *r, json_t **out, int *status,
                          struct err *e);
/* simulation: rules, reset, advancing a simulated task (admin_sim.c) */
int admin_sim_rule_put(struct admin *a, struct admin_req *r, json_t **out, int *status,
                       struct err *e);
int admin_sim_rule_list(struct admin *a, struct admin_req *r, json_t **out, int *status,
                        struct err *e);
int admin_sim_rule_delete(struct admin *a, struct admin_req *r, json_t **out, int *status,
                          struct err *e);
int admin_sim_reset(struct admin *a, struct admin_req *r, json_t **out, int *status, struct err *e);
int admin_sim_advance(struct admin *a, struct admin_req *r, json_t **out, int *status,
                      struct err *e);
/* remote steps pulled by workers (admin_workers.c) */
int admin_worker_claim(struct admin *a, struct admin_req *r, json_t **out, int *status,
                       struct err *e);
int admin_worker_heartbeat(struct admin *a, struct admin_req *r, json_t **out, int *status,
                           struct err *e);
int admin_worker_complete(struct admin *a, struct admin_req *r, json_t **out, int *status,
                          struct err *e);
int admin_worker_fail(struct admin *a, struct admin_req *r, json_t **out, int *status,
                      struct err *e);
/* the web console's calls (admin_ui.c): GET /v1/whoami, GET /v1/overview */
int admin_whoami(struct admin *a, struct admin_req *r, json_t **out, int *status, struct err *e);
int admin_overview(struct admin *a, struct admin_req *r, json_t **out, int *status, struct err *e);
/* webhook subscriptions and their deliveries (admin_webhooks.c) */
int admin_webhook_create(struct admin *a, struct admin_req *r, json_t **out, int *status,
                         struct err *e);
int admin_webhook_list(struct admin *a, struct admin_req *r, json_t **out, int *status,
                       struct err *e);
int admin_webhook_show(struct admin *a, struct admin_req *r, json_t **out, int *status,
                       struct err *e);
int admin_webhook_delete(struct admin *a, struct admin_req *r, json_t **out, int *status,
                         struct err *e);
int admin_webhook_deliveries(struct admin *a, struct admin_req *r, json_t **out, int *status,
                             struct err *e);
/* tokens and who is calling (admin_tokens.c) */
enum admin_scope {
    SCOPE_ADMIN = 1u << 0,    /* everything, tokens and accounts included */
    SCOPE_OPERATOR = 1u << 1, /* tasks and instances: create, verbs, read */
    SCOPE_READER = 1u << 2,   /* GETs only */
    SCOPE_WORKER = 1u << 3,   /* the remote-step calls only (/v1/workers/...) */
};
/* The SCOPE_* bit of a scope's name; 0 for an unknown one. */
unsigned admin_scope_bit(const char *name);
/* The names of the scopes in bits, " or "-joined, into out (truncated to size). */
void admin_scope_names(unsigned bits, char *out, size_t size);
/* Finds the live token of the request's "Authorization: Bearer T" in the store: 0 with *who
 * filled; ERR_ADMIN_UNAUTHORIZED when it is missing, unknown or revoked; the store's error
 * (ERR_SERVICE_UNAVAILABLE) when it cannot be asked. */
int admin_authenticate(struct admin *a, const struct http_request *req, struct token *who,
                       struct err *e);
int admin_token_create(struct admin *a, struct admin_req *r, json_t **out, int *status,
                       struct err *e);
int admin_token_list(struct admin *a, struct admin_req *r, json_t **out, int *status,
                     struct err *e);
int admin_token_revoke(struct admin *a, struct admin_req *r, json_t **out, int *status,
                       struct err *e);

#endif
