/* Retention (DESIGN.md 7, --retention): a thread that removes finished tasks past the retention,
 * with their steps and events, and idempotency keys past their 24 h, in small batches, off the
 * request path. Every node of a shared store runs one; their batches skip each other's rows. */
#ifndef ASYNCD_RETENTION_H
#define ASYNCD_RETENTION_H

#include <stddef.h>
#include <stdint.h>

#include "common/errors.h"
#include "store/store.h"

#define RETENTION_DEFAULT_MS   (30LL * 86400 * 1000)
#define RETENTION_KEYS_TTL_MS  (24LL * 3600 * 1000) /* how long an Idempotency-Key holds */
#define RETENTION_BATCH        500                  /* tasks (and keys) one transaction removes */
#define RETENTION_MAX_EVERY_MS 60000

struct retention_config {
    struct store *store;  /* borrowed; outlives the sweeper */
    int64_t retention_ms; /* 0 = keep finished tasks forever (keys still expire) */
    int64_t every_ms;     /* between sweeps; 0 = retention / 10, within 1 s .. 60 s */
    size_t batch;         /* 0 = RETENTION_BATCH */
};

struct retention;

/* Tells the store's cache the retention and starts the sweeper thread; its first sweep runs at
 * once. *out is freed by retention_stop. ERR_INTERNAL when the thread cannot start. */
int retention_start(const struct retention_config *cfg, struct retention **out, struct err *e);
/* Stops the thread (a batch in progress finishes first) and frees r; NULL is fine. */
void retention_stop(struct retention *r);

#endif
