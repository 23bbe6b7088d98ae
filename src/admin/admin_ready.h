/* The readiness probe behind /readyz: one cheap store query, bounded in time. */
#ifndef ASYNCD_ADMIN_READY_H
#define ASYNCD_ADMIN_READY_H

#include "common/errors.h"
#include "store/store.h"

/* 0 when the store answered a cheap query within timeout_ms; else -1 with e saying why: the
 * store's own error, a timeout, or an earlier probe still waiting on it. */
int admin_ready_probe(struct store *s, int timeout_ms, struct err *e);

#endif
