/* The Cloud API 3.0 front door: every request becomes an HTTP 200 JSON envelope
 * {"Response": {..., "RequestId"}} after parsing, routing to a product, signature check, rate
 * limit and permission check; errors carry the Tencent code and a message saying what to fix. */
#ifndef ASYNCD_CLOUDAPI_H
#define ASYNCD_CLOUDAPI_H

#include <stddef.h>
#include <stdint.h>

#include "cloudapi/ratelimit.h"
#include "flows/flows.h"
#include "http/http.h"
#include "sim/sim.h"
#include "store/store.h"

struct cloudapi_config {
    struct store *store;      /* borrowed */
    struct ratelimit *limits; /* borrowed */
    int64_t max_skew_s;       /* allowed client clock difference, 300 by default */
    size_t max_body;          /* the listener's body limit, for messages */
    struct flows_live *flows; /* action templates (reloaded on SIGHUP); borrowed, may be NULL */
    const char *node;         /* this node's id; borrowed */
    void (*wake)(void *ctx);  /* wakes the engine after a task is created; may be NULL */
    void *wake_ctx;
    struct sim *sim; /* progression rules and simulated tasks; borrowed, may be NULL */
};

struct cloudapi;

/* The returned front door borrows everything in cfg; free with cloudapi_free. */
struct cloudapi *cloudapi_new(const struct cloudapi_config *cfg);
void cloudapi_free(struct cloudapi *api);
/* The http_handler_fn for the Cloud API listener; ctx is the struct cloudapi. */
void cloudapi_handle(void *ctx, const struct http_request *req, struct http_response *resp);

/* Counters for /metrics: requests answered by error code ("" = success). Writes Prometheus
 * text lines into a heap string the caller frees. */
char *cloudapi_metrics_text(struct cloudapi *api);

#endif
