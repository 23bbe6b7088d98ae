/* The admin API (docs/admin-api.md): accounts, policies, instances, tasks and their control
 * verbs, /healthz and /metrics, as JSON over HTTP behind a bearer token. */
#ifndef ASYNCD_ADMIN_H
#define ASYNCD_ADMIN_H

#include "cloudapi/cloudapi.h"
#include "http/http.h"
#include "sim/sim.h"
#include "store/store.h"

struct admin_config {
    struct store *store;  /* borrowed */
    const char *token;    /* the AdminToken; borrowed */
    const char *node;     /* this node's id, recorded in task events; borrowed */
    struct cloudapi *api; /* for its metrics; borrowed, may be NULL */
    /* Called after a task is created or an operator verb applied (wakes the engine); may be NULL.
     */
    void (*on_change)(void *ctx);
    void *on_change_ctx;
    struct sim *sim; /* simulation rules and simulated tasks; borrowed, may be NULL */
};

struct admin;

struct admin *admin_new(const struct admin_config *cfg);
void admin_free(struct admin *a);
/* The http_handler_fn of the admin listener; ctx is the struct admin. */
void admin_handle(void *ctx, const struct http_request *req, struct http_response *resp);

#endif
