/* The rules of remote steps (store_workers.c, whose transactions store_db.h declares): why a
 * worker's lease is no longer current, what a claimed step looks like, and the result a worker
 * records. The dialects only hold the SQL (store_sqlite_sql.c, store_pg_sql.c). */
#ifndef ASYNCD_STORE_WORKERS_H
#define ASYNCD_STORE_WORKERS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

/* The lease owner of a worker's claim: "worker:" and its name. */
#define STORE_WORKER_PREFIX "worker:"

/* The columns a worker's check reads, as a backend read them. */
struct worker_row {
    bool found;
    enum task_state state;
    int64_t lease_no, lease_expires_ms;
    bool held_by_worker; /* lease_node starts with "worker:" */
    char owner[160];     /* lease_node, "" when none */
    int remote_step;     /* the step handed over, and its phase */
    char remote_phase[8];
};

/* 0 when row is still held by the worker under lease_no at time now (the store's clock), else
 * ERR_CONFLICT with why: gone, no longer running (killed, paused...), taken back or claimed
 * again, already reported, or its lease expired. */
int store_worker_lease_check(const char *id, int64_t lease_no, const struct worker_row *row,
                             int64_t now, struct err *e);

/* One claimed step for the worker: {"task","step","phase","kind","args","input","name",
 * "attempt","lease_no","lease_expires_ms"}. action_json is the step's do or undo text,
 * input_json the task's input (either may be NULL). */
json_t *store_worker_step_json(const char *id, int step, const char *phase, const char *name,
                               const char *action_json, const char *input_json, int attempt,
                               int64_t lease_no, int64_t expires_ms);

/* The stored result text of a report (heap, caller frees): {"outcome","message","output",
 * "worker","step","phase"}. */
char *store_worker_result_text(const struct worker_report *r, int step, const char *phase);

/* The result text a backend read, parsed for the engine when it is for step/phase: *out is a new
 * reference, or NULL when text is NULL or about another step. */
void store_worker_result_parse(const char *text, int step, const char *phase, json_t **out);

/* ERR_INVALID_PARAMETER_VALUE unless r asks for at least one kind and 1..max steps. */
int store_worker_claim_check(const struct worker_claim_req *r, struct err *e);

#endif
