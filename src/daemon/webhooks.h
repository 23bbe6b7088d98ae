/* The webhook dispatcher (DESIGN.md 7, docs/webhooks.md): one thread per node that claims due
 * deliveries from the store's outbox under a lease, POSTs each to its subscription's URL with an
 * HMAC-SHA256 signature, and records the attempt: a 2xx delivers it, anything else (or no answer
 * within the timeout) retries it with exponential backoff until max_attempts, then it fails. The
 * outbox is durable and leased, so deliveries survive a restart of this node and are taken over
 * by another one when it dies: at least once, in order per subscription and task. */
#ifndef ASYNCD_WEBHOOKS_H
#define ASYNCD_WEBHOOKS_H

#include <stdint.h>

#include "common/errors.h"
#include "store/store.h"

struct webhooks_config {
    struct store *store; /* borrowed; outlives the dispatcher */
    const char *node;    /* this node's id: the leases' owner; borrowed */
    int64_t backoff_ms;  /* first retry delay, doubling each attempt (capped at an hour), +-20% */
    int max_attempts;    /* attempts before a delivery fails */
    int per_webhook;     /* deliveries in flight at once per subscription, across nodes */
    int64_t timeout_ms;  /* the whole HTTP exchange */
};

/* Defaults: 1 s backoff, 15 attempts, 4 in flight per subscription, 10 s timeout. */
#define WEBHOOKS_BACKOFF_MS   1000
#define WEBHOOKS_MAX_ATTEMPTS 15
#define WEBHOOKS_PER_WEBHOOK  4
#define WEBHOOKS_TIMEOUT_MS   10000

struct webhooks;

/* Gives back the leases a previous run of this node left, then starts the thread. ERR_INTERNAL
 * when libcurl or the thread cannot start. *out is freed by webhooks_stop. */
int webhooks_start(const struct webhooks_config *cfg, struct webhooks **out, struct err *e);
/* Stops the thread: deliveries in flight are abandoned and their leases given back, so they are
 * sent again (at least once) at the next start or by another node. NULL is ignored. */
void webhooks_stop(struct webhooks *w);

/* The signature header's value for a body sent at unix second t:
 * "t=<t>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>" into out (cap >= 96). */
void webhooks_signature(const char *secret, int64_t t, const char *body, size_t body_len, char *out,
                        size_t cap);
/* The JSON body of a delivery (heap; the caller frees). */
char *webhooks_payload(const struct webhook_delivery *d);
/* The wait before attempt `attempt` + 1 after attempt `attempt` failed, without jitter. */
int64_t webhooks_backoff_ms(int64_t base_ms, int attempt);

#endif
