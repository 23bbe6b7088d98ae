/* What every store backend checks and derives the same way (store_check.c). */
#ifndef ASYNCD_STORE_CHECK_H
#define ASYNCD_STORE_CHECK_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* A step of a new task, checked and serialised; do_json/undo_json are heap (undo may be NULL). */
struct store_step_row {
    const char *name;
    char *do_json, *undo_json;
    json_int_t retries, timeout_s;
};

/* Checks steps (a non-empty array of {name, do, undo?, retries?, timeout_s?}) into *out (free with
 * store_steps_free); ERR_INVALID_PARAMETER_VALUE naming the field. */
int store_steps_parse(json_t *steps, struct store_step_row **out, size_t *n, struct err *e);
void store_steps_free(struct store_step_row *rows, size_t n);
/* Checks a new task's product, region, uin, type and on_failure. */
int store_task_new_check(const struct task_new *t, struct err *e);
/* A new task made ready for its INSERTs: checked (store_task_new_check), its steps' secrets
 * sealed (sealed, which rows borrow from) and each step serialised (rows[0..n)). */
struct store_task_prep {
    json_t *sealed;
    struct store_step_row *rows;
    size_t n;
};
int store_task_prep(const struct task_new *t, struct store_task_prep *p, struct err *e);
void store_task_prep_free(struct store_task_prep *p);
/* Item i of a batch failed with rc: e's message becomes "tasks[i]: " and what it said; returns
 * rc. */
int store_batch_item_err(struct err *e, size_t i, int rc);
/* "external" when a step is done by a remote worker through the transition call (a remote
 * action without a "kind": the engine leaves the task alone), else "engine". */
const char *store_task_driver(json_t *steps);
/* What a stored Idempotency-Key (found: its body_hash, task_id, created_ms) means for a
 * creation with k at now: STORE_IDEM_NEW (none, or expired: create and record the key),
 * STORE_IDEM_REPLAY (same body within the TTL: answer task_id, create nothing; k->replayed is
 * set), or ERR_CONFLICT naming the key (another body). */
enum { STORE_IDEM_NEW = 0, STORE_IDEM_REPLAY = 1 };
int store_idem_decide(struct task_idem *k, bool found, const char *body_hash, int64_t created_ms,
                      int64_t now, struct err *e);
/* Copies src into dst (size bytes), cutting at a UTF-8 character boundary when it must cut. */
void store_copy_utf8(char *dst, size_t size, const char *src);

#endif
