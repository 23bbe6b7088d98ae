/* Shared by the admin API's files: the request view handlers get and small JSON helpers. */
#ifndef ASYNCD_ADMIN_INT_H
#define ASYNCD_ADMIN_INT_H

#include <jansson.h>
#include <stdbool.h>
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
};

/* A handler sets *out (a new reference) and *status, or returns an ERR_* with e filled. */
typedef int (*admin_fn)(struct admin *a, struct admin_req *r, json_t **out, int *status,
                        struct err *e);

/* Query parameter value or NULL. */
const char *admin_query(const struct admin_req *r, const char *key);
/* Body fields: ERR_BAD_REQUEST "field: expected ..." on a wrong type or a missing required one. */
int admin_body_string(const struct admin_req *r, const char *key, bool required, const char **out,
                      struct err *e);

/* accounts and instances (admin_accounts.c) */
int admin_account_create(struct admin *a, struct admin_req *r, json_t **out, int *status,
                         struct err *e);
int admin_account_show(struct admin *a, struct admin_req *r, json_t **out, int *status,
                       struct err *e);
int admin_subaccount_create(struct admin *a, struct admin_req *r, json_t **out, int *status,
                            struct err *e);
int admin_policy_set(struct admin *a, struct admin_req *r, json_t **out, int *status,
                     struct err *e);
int admin_instance_create(struct admin *a, struct admin_req *r, json_t **out, int *status,
                          struct err *e);
int admin_instance_list(struct admin *a, struct admin_req *r, json_t **out, int *status,
                        struct err *e);
int admin_instance_patch(struct admin *a, struct admin_req *r, json_t **out, int *status,
                         struct err *e);
/* tasks (admin_tasks.c) */
int admin_task_create(struct admin *a, struct admin_req *r, json_t **out, int *status,
                      struct err *e);
int admin_task_show(struct admin *a, struct admin_req *r, json_t **out, int *status, struct err *e);
int admin_task_list(struct admin *a, struct admin_req *r, json_t **out, int *status, struct err *e);
int admin_task_verb(struct admin *a, struct admin_req *r, json_t **out, int *status, struct err *e);
int admin_task_transition(struct admin *a, struct admin_req *r, json_t **out, int *status,
                          struct err *e);

#endif
