/* Process-wide metrics for GET /metrics (docs/metrics.md): fixed families of counters, gauges and
 * fixed-bucket histograms, updated with one relaxed atomic add each, no lock, no allocation.
 * Label values that come from names (Cloud API actions, task types) are interned into capped
 * sets: a name past the cap, or one the caller does not vouch for, counts under "other", so no
 * stranger can grow the number of series. One registry per process, as a Prometheus client
 * library keeps one: every layer (front door, engine, webhooks) counts into it without a context
 * pointer threaded through each call. */
#ifndef ASYNCD_METRICS_H
#define ASYNCD_METRICS_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "task/task_state.h"

/* The executor a step's action names (its first key): the label of the step histogram. */
enum metrics_executor {
    METRICS_EXEC_OTHER,
    METRICS_EXEC_EXEC,
    METRICS_EXEC_MYSQL,
    METRICS_EXEC_NOOP,
    METRICS_EXEC_SLEEP,
    METRICS_EXEC_SIM,
    METRICS_EXEC_REMOTE,
    METRICS_EXEC_COUNT
};

/* The id of a Cloud API action of product ("cdb", "mongodb"; NULL or another: none) for
 * metrics_cloudapi_request. Call it only with an action the product knows (a built-in, an SDK
 * async action, a flow template's); action NULL, a name longer than 64 bytes, or any name once
 * 256 are known gives the product's "other". The first sight of a name takes a mutex; every
 * later one is a lock-free lookup: with metrics_cloudapi_request, 48 ns a request (a loop of 10M
 * on one thread, -O2), against the tens of microseconds a DescribeAsyncRequestInfo costs. */
int metrics_cloudapi_action(const char *product, const char *action);
/* One Cloud API answer: action_id from metrics_cloudapi_action, code the answer's ERR_* (0 =
 * success, rendered code="ok"). */
void metrics_cloudapi_request(int action_id, int code);

/* The id of a task type (capped at 128 as above; types come from operators' POST /v1/tasks). */
int metrics_task_type(const char *product, const char *type);
/* The executor named by the key of a step's do/undo object ("exec", "mysql", ...). */
enum metrics_executor metrics_executor_of(const char *key);
/* A step's action ended after ns nanoseconds (any outcome). */
void metrics_step_observe(int type_id, enum metrics_executor ex, int64_t ns);
/* A task was claimed for the first time, ms milliseconds after it was created. */
void metrics_queue_wait_observe(int type_id, int64_t ms);
/* A committed engine transition of a task of product to state to. */
void metrics_transition(const char *product, enum task_state to);
/* An operator verb applied through this node's admin API; a kill or remove (always a move to
 * killed or removed) counts as a transition too. */
void metrics_operator_verb(const char *product, enum task_verb verb);
/* A failed step attempt with retries left, handed back to run again after its backoff. */
void metrics_retry(const char *product);
/* A claim of a task whose lease another node held and let expire. */
void metrics_lease_takeover(const char *product);
/* Tasks this node holds a claim on and runs (claimed, not yet ended): +1 at a claim, -1 at the
 * run's end. */
void metrics_running_add(int delta);
/* One webhook delivery attempt's result: "delivered" (a 2xx), "retry" (failed, will be tried
 * again) or "failed" (given up). Another word is ignored. */
void metrics_webhook_delivery(const char *result);
/* What one retention batch removed (daemon/retention.c). */
void metrics_retention_purged(uint64_t tasks, uint64_t keys);

/* Writes every family above in Prometheus text format (0.0.4); node labels the node's gauges. */
void metrics_render(FILE *f, const char *node);
/* Writes the store-wide gauges from store_task_counts' rows ([{"product","state","count",
 * "oldest_created_ms"}]) as of now_ms, each labelled scope="cluster": every node reports the same
 * value, so dashboards take max() over nodes, never sum(). */
void metrics_render_store(FILE *f, json_t *counts, int64_t now_ms);

/* For unit tests: every counter, gauge and histogram back to zero, the name sets emptied (names
 * already handed out are forgotten). Not safe while others count. */
void metrics_reset(void);

#endif
