/* Per-second request limits per root account, product and action (DESIGN.md 3).
 * A sliding window: a key admits a request only when fewer than N were admitted in the last
 * second, so "the 21st call within one second fails" holds however the calls fall on clock
 * seconds. Rules are matched newest first; '*' matches any product or action; N = 0 is
 * unlimited. Thread-safe. */
#ifndef ASYNCD_RATELIMIT_H
#define ASYNCD_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "common/errors.h"

struct ratelimit;

/* A limiter with the documented defaults: "*:*=20", "cdb:DescribeAsyncRequestInfo=40",
 * "mongodb:DescribeAsyncRequestInfo=20". Free with ratelimit_free. */
struct ratelimit *ratelimit_new(void);
void ratelimit_free(struct ratelimit *rl);

/* Adds a rule from a --rate-limit flag value: "PRODUCT:ACTION=N" or "*=N" (both parts '*').
 * ERR_INVALID_PARAMETER_VALUE with a message on a malformed spec. Later rules win. */
int ratelimit_add_rule(struct ratelimit *rl, const char *spec, struct err *e);
/* The limit that applies (0 = unlimited). */
uint32_t ratelimit_limit(const struct ratelimit *rl, const char *product, const char *action);
/* Admits or refuses one request at time now_ns (CLOCK_MONOTONIC ns). True = admitted. */
bool ratelimit_take(struct ratelimit *rl, const char *uin, const char *product, const char *action,
                    int64_t now_ns);

#endif
