/* The store interface: accounts, instances and tasks, behind one ops table per backend
 * (store_sqlite.c embedded, store_pg.c PostgreSQL). Every call returns 0 or a negative ERR_* code
 * and fills the caller's struct err with a message a person can act on.
 * Every task state change is one transaction that also appends the event (DESIGN.md 4). */
#ifndef ASYNCD_STORE_H
#define ASYNCD_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/errors.h"
#include "task/task_model.h"
#include "task/task_state.h"

#define STORE_ID_MAX 64

struct account {
    char uin[24];       /* this account's Uin (decimal) */
    char owner_uin[24]; /* the root account's Uin; equal to uin for a root account */
    char app_id[24];    /* the root account's AppId */
    char secret_id[64]; /* the key pair it was found by (account_by_secret_id), its first
                           enabled one (account_by_uin; "" when it has none), or the first
                           key to store (account_create) */
    char secret_key[64];
    bool is_root;
    bool disabled;       /* this account is disabled: none of its keys signs */
    bool owner_disabled; /* a sub-account whose root account is disabled (so is it) */
    bool has_policy;     /* sub-accounts: false until a policy is set */
    char *policy_json;   /* heap; JSON array of "product:Action" patterns, or NULL. Free with
                            account_clear. */
};
void account_clear(struct account *a);

struct instance {
    char product[16];
    char instance_id[STORE_ID_MAX];
    char region[STORE_ID_MAX];
    char uin[24];    /* owning root account */
    char status[16]; /* running | isolated | offline */
    char dsn[512];
    char reserved_accounts[4096]; /* cdb: JSON array of accounts tenants may not touch; "" = [] */
    bool simulated;               /* registered with "simulated": true: no server, no dsn */
};

/* What DescribeAsyncRequestInfo needs, read on the hot path. Times are Unix ms, 0 = not yet. */
struct task_summary {
    char id[STORE_ID_MAX];
    char product[16];
    char region[STORE_ID_MAX];
    char uin[24]; /* owning root account */
    char instance_id[STORE_ID_MAX];
    enum task_state state;
    char info[1024]; /* last step message; "" when none */
    bool has_info;
    int64_t created_ms, start_ms, end_ms;
    int64_t lease_no; /* grows at every claim and when an operator takes the task back */
    bool simulated;   /* driven by progression rules (driver "sim", sim/sim.h), not the engine */
};

/* An Idempotency-Key on a task creation (DESIGN.md 7). The key is taken in the creation's own
 * transaction: the first creation with (scope, key) makes the task and records body_hash; a later
 * one within ttl_ms with the same body_hash makes nothing and answers the first task's id (with
 * replayed set); with another body_hash it fails ERR_CONFLICT naming the key. A key older than
 * ttl_ms counts as absent and is replaced. Concurrent creations with one key make one task. */
struct task_idem {
    const char *scope;     /* whose key: the caller's token id */
    const char *key;       /* 1..255 bytes */
    const char *body_hash; /* lower-case hex SHA-256 of the canonical body */
    int64_t ttl_ms;
    bool replayed; /* out */
};

/* A new task: steps is a JSON array of step objects (kept as given, owned by the caller). */
struct task_new {
    const char *product, *region, *uin, *instance_id /* may be NULL */, *type, *on_failure;
    json_t *steps;
    const char *node;       /* node id for the creation event */
    json_t *input;          /* the request's checked parameters (secrets left out); may be NULL */
    struct task_idem *idem; /* NULL = no Idempotency-Key */
};

/* What a task read returns beside the task's row (store_task_get). */
#define TASK_READ_STEPS      1u /* its steps, secrets opened */
#define TASK_READ_EVENTS     2u /* its whole event history */
#define TASK_READ_LAST_EVENT 4u /* its latest event only (with TASK_READ_EVENTS: all of them) */
#define TASK_READ_ALL        (TASK_READ_STEPS | TASK_READ_EVENTS)

struct task_filter {
    const char *product, *uin, *instance_id, *region; /* NULL = any */
    int state;                                        /* -1 = any, else enum task_state */
    int64_t limit, offset;
    const char *id;                         /* one AsyncRequestId; NULL = any */
    unsigned state_mask;                    /* bit (1 << state) per wanted state; 0 = any */
    const char *const *types;               /* NULL-terminated task types; NULL = any */
    int64_t start_from_ms, start_to_ms;     /* StartTime range (inclusive); 0 = open */
    int64_t created_from_ms, created_to_ms; /* creation time range (inclusive); 0 = open */
    bool oldest_first;
};

/* One state change. `expect` is the state the caller saw; the store refuses (ERR_CONFLICT) when
 * the task has moved on meanwhile, so two racing operators cannot both win. */
struct task_move {
    const char *id;
    enum task_state expect, to;
    const char *node;
    const char *message; /* event message; NULL = none */
    const char *info;    /* new task Info (last step message); NULL = unchanged */
    int step_advance;    /* +1: mark the current step done/skipped and move to the next; 0: stay */
    const char *step_mark; /* with step_advance: "done" or "skipped" */
};

/* --- the engine's side: leases and fenced progress (DESIGN.md 5) --- */

/* A task a worker now holds: every write it makes is conditional on lease_no staying current. */
struct task_claim {
    char id[STORE_ID_MAX];
    int64_t lease_no;
    char product[16];     /* the task's product */
    enum task_state from; /* before the claim: TASK_INITIAL (its first) or TASK_RUNNING */
    bool taken_over;      /* running under another lease that expired (a node died or stalled) */
    /* The task as the claim left it (running under lease_no, the claim's RUNNING event its last),
     * read in the claim's own transaction; only when the caller asked (store_task_claim_batch_read)
     * and the store could read it there at no extra round trip, else NULL. The caller owns it
     * (store_task_claims_free frees the tasks of a batch). */
    struct task *task;
};

/* The most claims one task_claim_batch call makes. */
#define STORE_CLAIM_BATCH_MAX 64

/* One fenced write by the lease holder: applies only while the task is running and its lease_no is
 * still m->lease_no (else ERR_CONFLICT: an operator or another node moved it). */
struct task_progress {
    const char *id;
    int64_t lease_no;
    const char *node;
    enum task_state to;        /* TASK_RUNNING to stay running */
    int step;                  /* the step this is about (-1: none) */
    const char *step_state;    /* its new state ("running", "done", "failed", "pending", "undoing",
                                  "undone", "undo_failed"); NULL = unchanged */
    const char *message;       /* the step's message and the event's message; NULL = unchanged,
                                  "" = cleared */
    const char *event_message; /* the event's message when it differs; NULL = message */
    const char *step_output; /* JSON text the step produced (kept for its undo); NULL = unchanged */
    const char *info;        /* new task Info; NULL = unchanged, "" = cleared (null) */
    int next_step;           /* new current_step; -2 = unchanged (-1 is valid in the undo phase) */
    const char *phase;       /* "do" / "undo"; NULL = unchanged */
    int attempt;             /* new attempt count; -1 = unchanged */
    int64_t not_before_ms;   /* earliest next claim (retry backoff); 0 = now */
    bool release;            /* give the lease up (retry later, paused, final) */
    bool event;              /* append an event even when the state stays running */
};

/* What a lease holder learns when it checks in. */
struct task_lease_state {
    bool held; /* still running under this lease */
    bool pause_requested;
};

/* A lease a node renews (store_node_renew), and what it learns of one it still holds. */
struct lease_ref {
    char id[STORE_ID_MAX];
    int64_t lease_no;
};
struct lease_renewal {
    char id[STORE_ID_MAX];
    int64_t lease_no;
    bool pause_requested; /* an operator asked for a pause: the holder pauses at its next step */
};

/* An exec step's process group, recorded while the step runs so that the node's next start can
 * kill what a crash of asyncd left behind (DESIGN.md 5). pgid is the step child's pid. */
struct step_pgroup {
    char node[128]; /* the --node-id that ran it: only that node acts on the record */
    char task_id[STORE_ID_MAX];
    int64_t pgid;
    char boot_id[40];    /* /proc/sys/kernel/random/boot_id when the child started */
    int64_t start_ticks; /* the child's start time, clock ticks after boot (/proc/PID/stat) */
};

/* An admin API token (DESIGN.md 7). The token itself is never stored: hash is the lower-case hex
 * SHA-256 of its text (a 32-byte random secret needs no slow hash to resist guessing). */
struct token {
    char id[STORE_ID_MAX]; /* "tok-" and 16 hex digits; shown, never secret */
    char name[128];
    char scope[16]; /* admin | operator | reader | worker */
    char hash[65];
    int64_t created_ms;
    int64_t last_used_ms; /* 0 = never */
};

/* --- remote steps pulled by external workers (DESIGN.md 5; store_workers.c) --- */

/* The engine hands a task over to workers at step `step` of `phase`: fenced by the engine's
 * lease_no; the lease is released and the task waits for a worker of `kind` (no engine claims
 * it while it waits). The handover is bound to the task's lease_no: an operator verb that takes
 * the task back (it bumps lease_no) ends the wait, and the engine claims it again. */
struct remote_handover {
    const char *id;
    int64_t lease_no;
    const char *node, *kind, *phase;
    int step;
    const char *message; /* the event's message; NULL = no event */
};

/* A worker's claim: up to max steps of these kinds whose task waits for a worker. */
struct worker_claim_req {
    const char *worker;       /* the lease owner becomes "worker:<worker>" */
    const char *const *kinds; /* n_kinds of them */
    size_t n_kinds;
    int max;
    int64_t lease_ms;
};

/* What a worker's heartbeat learns. */
struct worker_lease {
    int64_t expires_ms;
    bool pause_requested;
};

/* A worker's result for the step it holds under lease_no. */
struct worker_report {
    const char *id;
    int64_t lease_no;
    const char *worker;
    bool done;               /* true: complete; false: fail */
    const char *message;     /* may be NULL */
    const char *output_json; /* JSON object text (complete only); NULL = none */
};

/* --- retention (store_purge; daemon/retention.h) --- */

/* One batch of retention. Tasks in a final state whose end_ms is before tasks_before_ms go,
 * oldest end first, with their steps, events and process-group records; so do idempotency keys
 * created before keys_before_ms (0 = none). At most max of each. */
struct purge_req {
    int64_t tasks_before_ms, keys_before_ms;
    size_t max;
};
struct purge_result {
    char (*ids)[STORE_ID_MAX]; /* the purged tasks (heap, n_tasks of them; NULL when none): the
                                  caller free()s it */
    size_t n_tasks;
    int64_t n_keys;
};

/* --- webhooks: subscriptions and their durable outbox (DESIGN.md 7; store_webhooks.c) ---
 * Every event a task's transaction appends also enqueues, in that transaction, one delivery per
 * subscription it matches: a state change (from != to, the creation included) for "transition"
 * subscriptions, the entry to a final state for "final" ones, filtered by product and uin. */

#define WEBHOOK_URL_MAX    1024
#define WEBHOOK_SECRET_MAX 256

struct webhook {
    char id[STORE_ID_MAX]; /* "wh-" and 16 hex digits */
    char url[WEBHOOK_URL_MAX];
    char secret[WEBHOOK_SECRET_MAX]; /* in clear in memory; sealed at rest (common/secretbox.h) */
    char events[16];                 /* "final" | "transition" */
    char product[16];                /* "" = every product */
    char uin[24];                    /* "" = every root account */
    int64_t created_ms;
};

/* A delivery a dispatcher now holds: with its subscription's url and secret (opened) and what
 * the payload says. attempt is the attempt this claim makes (1 for the first); it is also the
 * fencing token of delivery_finish. */
struct webhook_delivery {
    int64_t id;
    char webhook_id[STORE_ID_MAX];
    char url[WEBHOOK_URL_MAX];
    char secret[WEBHOOK_SECRET_MAX];
    char event[16]; /* "final" | "transition" */
    char task_id[STORE_ID_MAX];
    char product[16];
    char uin[24];
    enum task_state state; /* the state the task entered */
    char info[1024];       /* the task's Info at that moment */
    int64_t at_ms;         /* when the task entered it */
    int attempt;
};

/* Claims up to max due deliveries for node: pending ones whose next_ms has come, and delivering
 * ones whose lease expired (a node died or stopped mid-delivery); each gets a lease of lease_ms
 * and attempt + 1. A delivery waits while an earlier one of its subscription and task is not
 * yet delivered or failed (so a receiver sees a task's events in order), and a subscription has
 * at most per_webhook deliveries in flight (live leases) across all nodes. */
struct delivery_claim_req {
    const char *node;
    int64_t now_ms, lease_ms;
    int max, per_webhook;
};

/* The outcome of one attempt: delivered, or retried at next_ms, or given up (failed). Applies
 * only while the delivery is still leased to node at that attempt (else ERR_CONFLICT). */
struct delivery_result {
    int64_t id;
    const char *node;
    int attempt;
    bool delivered, give_up;
    int http_status;   /* 0 = no answer */
    const char *error; /* what went wrong ("" when delivered) */
    int64_t now_ms, next_ms, took_ms;
};

struct store;
struct store_ops {
    const char *name;
    void (*close)(struct store *s);
    /* accounts */
    int (*account_count)(struct store *s, int64_t *out, struct err *e);
    /* The account and its first key pair (a->secret_id, a->secret_key), in one transaction. */
    int (*account_create)(struct store *s, const struct account *a, struct err *e);
    /* The account that may sign with this SecretId: ERR_NOT_FOUND when the key does not exist,
     * is disabled, or its account or that account's root account is disabled (e says which;
     * the Cloud API answers each the same, AuthFailure.SecretIdNotFound). */
    int (*account_by_secret_id)(struct store *s, const char *secret_id, struct account *out,
                                struct err *e);
    int (*account_by_uin)(struct store *s, const char *uin, struct account *out, struct err *e);
    int (*account_set_policy)(struct store *s, const char *uin, const char *policy_json,
                              struct err *e);
    /* Disables (true) or enables an account; a disabled root account disables its
     * sub-accounts too. ERR_NOT_FOUND when there is no such account. */
    int (*account_set_disabled)(struct store *s, const char *uin, bool disabled, struct err *e);
    /* Key pairs (SecretId, SecretKey sealed at rest). key_create adds an enabled key to uin:
     * ERR_NOT_FOUND for no such account, ERR_CONFLICT when it holds max_keys already (decided in
     * the insert's transaction), ERR_ALREADY_EXISTS when the SecretId is taken. */
    int (*account_key_create)(struct store *s, const char *uin, const char *secret_id,
                              const char *secret_key, int max_keys, struct err *e);
    /* [{"SecretId","Status":"enabled"|"disabled","created_ms"}] of uin's keys, oldest first;
     * never a SecretKey. ERR_NOT_FOUND for no such account. *out: caller json_decref()s. */
    int (*account_key_list)(struct store *s, const char *uin, json_t **out, struct err *e);
    /* ERR_NOT_FOUND when uin has no key secret_id. */
    int (*account_key_set_enabled)(struct store *s, const char *uin, const char *secret_id,
                                   bool enabled, struct err *e);
    /* Deletes a disabled key: ERR_NOT_FOUND when uin has no key secret_id, ERR_CONFLICT when it
     * is still enabled (disable it first, as Tencent CAM asks, so a key in use is never deleted
     * by a slip). */
    int (*account_key_delete)(struct store *s, const char *uin, const char *secret_id,
                              struct err *e);
    /* The first root account: the oldest one, or cand, inserted when there is none -- decided in
     * one serialized transaction, so nodes starting together on one store agree. */
    int (*account_first_root)(struct store *s, const struct account *cand, struct account *out,
                              struct err *e);
    /* instances: instance_id alone is the key, across products (an id names one instance);
     * instance_get's product, when given, must also match */
    int (*instance_create)(struct store *s, const struct instance *in, struct err *e);
    int (*instance_get)(struct store *s, const char *product, const char *instance_id,
                        struct instance *out, struct err *e);
    /* status, dsn, reserved (JSON array text): NULL = unchanged */
    int (*instance_update)(struct store *s, const char *instance_id, const char *status,
                           const char *dsn, const char *reserved, struct instance *out,
                           struct err *e);
    int (*instance_list)(struct store *s, const char *product, const char *uin, json_t **out,
                         struct err *e); /* *out: new JSON array, caller json_decref()s */
    /* simulated instances and tasks (sim/sim.h; store_sim.c). instance_sim_state: *out the
     * recorded state of a simulated instance (a new JSON object the caller json_decref()s), NULL
     * for a real one; ERR_NOT_FOUND when there is no such instance. instance_set_sim_state
     * replaces it (JSON object text); ERR_NOT_FOUND when there is no such simulated instance.
     * sim_reset deletes every simulated task (driver "sim") with its steps and events, and every
     * simulated instance, in one transaction; *n_tasks and *n_instances say how many. */
    int (*instance_sim_state)(struct store *s, const char *product, const char *instance_id,
                              json_t **out, struct err *e);
    int (*instance_set_sim_state)(struct store *s, const char *product, const char *instance_id,
                                  const char *state_json, struct err *e);
    int (*sim_reset)(struct store *s, int64_t *n_tasks, int64_t *n_instances, struct err *e);
    /* tasks */
    int (*task_create)(struct store *s, const struct task_new *t, char id_out[STORE_ID_MAX],
                       struct err *e); /* mints the id in the product's format */
    /* n tasks in one transaction: every one is created, or none is. ids_out[i] is the i-th
     * task's id (or, with an Idempotency-Key seen before, the first task's: its idem->replayed
     * is set). On a failure e's message starts with "tasks[i]: " naming the item. */
    int (*task_create_batch)(struct store *s, const struct task_new *ts, size_t n,
                             char (*ids_out)[STORE_ID_MAX], struct err *e);
    int (*task_summary)(struct store *s, const char *product, const char *id,
                        struct task_summary *out, struct err *e);
    /* One task as the typed task (task/task_model.h), its row and what `what` (TASK_READ_*)
     * asks for, from one snapshot; *out: the caller task_free()s it. ERR_NOT_FOUND when none. */
    int (*task_get)(struct store *s, const char *id, unsigned what, struct task **out,
                    struct err *e);
    /* A page of task rows (no steps or events; job_id set), newest first unless oldest_first,
     * and the filter's total, from one snapshot. *out is filled (the caller task_list_clear()s
     * it; left empty on failure). */
    int (*task_list)(struct store *s, const struct task_filter *f, struct task_list *out,
                     int64_t *total, struct err *e);
    int (*task_move)(struct store *s, const struct task_move *m, struct err *e);
    /* [{"product","state","count","oldest_created_ms"}] over every task, for /metrics
     * (oldest_created_ms: the earliest created_ms of the group). */
    int (*task_counts)(struct store *s, json_t **out, struct err *e);
    /* Operator verbs, decided and applied in one transaction (ERR_CONFLICT with the reason when
     * the verb is not allowed from the task's state). */
    int (*task_control)(struct store *s, const char *id, enum task_verb verb, const char *node,
                        const char *message, struct err *e);
    /* engine: claim the oldest runnable task (initial, or running with no live lease and its
     * retry time reached); ERR_NOT_FOUND when there is none. A task with an instance waits
     * while a task of its product and instance created before it is unfinished (initial,
     * running, waiting or paused): one operation at a time per instance, in creation order.
     * `parallel` lists the products exempt from that rule, comma-separated ("mongodb",
     * "cdb,mongodb"); NULL or "" = none. */
    int (*task_claim)(struct store *s, const char *node, int64_t lease_ms, const char *parallel,
                      struct task_claim *out, struct err *e);
    /* One lease, one write. The engine renews by node (node_renew); this stays for the contract
     * tests and as the per-task baseline bench/lease_renew.c measures node_renew against. */
    int (*task_renew)(struct store *s, const char *id, int64_t lease_no, int64_t lease_ms,
                      struct task_lease_state *out, struct err *e);
    int (*task_progress)(struct store *s, const struct task_progress *p, struct err *e);
    /* Batched engine writes (NULL in a backend without them: the wrappers below then make single
     * calls). task_claim_batch: up to max (<= STORE_CLAIM_BATCH_MAX) claims in one transaction,
     * each by task_claim's rules (a batch holds at most one task per instance unless its product
     * is parallel, the oldest), in creation order, each with lease_no + 1; *n how many (0 and
     * ERR_NOT_FOUND when none). task_progress_batch: the n fenced writes ps[] in one transaction,
     * each judged and applied on its own as task_progress would (rcs[i] its outcome, e.g.
     * ERR_CONFLICT, with no effect); returns nonzero only when the transaction itself failed
     * (then every rcs[i] is that error and nothing was written). task_claim_batch's read: 0, or
     * the TASK_READ_* bits of each claimed task to hand over in out[i].task where the store can
     * read them in the claim's transaction for free (SQLite's one writer); each out[i].task is
     * NULL otherwise, and all of them are when the call fails. */
    int (*task_claim_batch)(struct store *s, const char *node, int64_t lease_ms,
                            const char *parallel, size_t max, unsigned read, struct task_claim *out,
                            size_t *n, struct err *e);
    int (*task_progress_batch)(struct store *s, const struct task_progress *ps, size_t n, int *rcs,
                               struct err *e);
    /* Renews, in one statement (one write), the live leases node holds: the task running,
     * lease_node = node, the lease not yet expired by the store's clock; each then runs lease_ms
     * from the store's now. only (n_only of them): just those (id, lease_no), so a lease nobody on
     * the node watches any more is left to expire; NULL = every live lease of node. *out: the
     * renewed ones, a heap array of *n the caller free()s (NULL when none). A lease missing from
     * it is no longer node's: taken over (lease_no bumped), moved on by an operator, or expired. */
    int (*node_renew)(struct store *s, const char *node, int64_t lease_ms,
                      const struct lease_ref *only, size_t n_only, struct lease_renewal **out,
                      size_t *n, struct err *e);
    /* Drops the leases a previous run of this node left (it is starting, so they are stale). */
    int (*release_node_leases)(struct store *s, const char *node, struct err *e);
    /* Step process groups: record one (replacing an earlier record of the same node and pgid),
     * clear one, and list a node's records (*out: heap array of *n, the caller free()s it;
     * NULL when there are none). */
    int (*pgroup_record)(struct store *s, const struct step_pgroup *g, struct err *e);
    int (*pgroup_clear)(struct store *s, const char *node, int64_t pgid, struct err *e);
    int (*pgroup_list)(struct store *s, const char *node, struct step_pgroup **out, size_t *n,
                       struct err *e);
    /* admin tokens: ERR_ALREADY_EXISTS when t's id or hash is taken (revoked ones included, so a
     * revoked hash never comes back) */
    int (*token_create)(struct store *s, const struct token *t, struct err *e);
    /* [{"id","name","scope","created_ms","last_used_ms"}] of the live tokens, oldest first; never
     * the hash. *out: new JSON array, caller json_decref()s */
    int (*token_list)(struct store *s, json_t **out, struct err *e);
    int (*token_revoke)(struct store *s, const char *id, struct err *e); /* ERR_NOT_FOUND */
    /* The live (not revoked) token with this hash; ERR_NOT_FOUND when none. */
    int (*token_by_hash)(struct store *s, const char *hash, struct token *out, struct err *e);
    int (*token_touch)(struct store *s, const char *id, int64_t used_ms, struct err *e);
    /* remote steps (struct remote_handover and below). remote_handover: ERR_CONFLICT when the
     * task is no longer the caller's. remote_take: the result a worker recorded for step/phase
     * (*out: {"outcome":"done"|"failed","message","output","worker"}, caller json_decref()s;
     * NULL when none), cleared in the same fenced transaction so it is used once.
     * worker_claim: *out a JSON array of {"task","step","phase","kind","args","input","name",
     * "attempt","lease_no","lease_expires_ms"} (maybe empty). worker_heartbeat and
     * worker_report: ERR_CONFLICT saying why when the worker's lease is no longer current (the
     * task was killed, paused, taken back, or its lease expired), and nothing changes. */
    int (*remote_handover)(struct store *s, const struct remote_handover *h, struct err *e);
    int (*remote_take)(struct store *s, const char *id, int64_t lease_no, int step,
                       const char *phase, json_t **out, struct err *e);
    int (*worker_claim)(struct store *s, const struct worker_claim_req *r, json_t **out,
                        struct err *e);
    int (*worker_heartbeat)(struct store *s, const char *id, int64_t lease_no, int64_t lease_ms,
                            struct worker_lease *out, struct err *e);
    int (*worker_report)(struct store *s, const struct worker_report *r, struct err *e);
    /* One retention batch (struct purge_req) in one transaction; on PostgreSQL the rows another
     * node is purging at the same moment are skipped. *out is filled on success (zeroed on
     * failure). */
    int (*purge)(struct store *s, const struct purge_req *r, struct purge_result *out,
                 struct err *e);
    /* webhooks (struct webhook and below). webhook_create: ERR_ALREADY_EXISTS for a taken id.
     * webhook_list: *out [{"id","url","events","product","uin","created_ms"}] oldest first, never
     * the secret; webhook_get: one such object with counts of its deliveries by state
     * ("deliveries": {"pending": n, ...}); ERR_NOT_FOUND for no such id. webhook_delete removes
     * it and its deliveries. webhook_deliveries: *out [{"id","event","task","task_state","info",
     * "at_ms","state","attempts","next_ms","last_status","last_error","created_ms",
     * "delivered_ms","attempt_log":[{"at_ms","status","error","took_ms"}]}] of subscription id
     * (and of task only, unless NULL), newest first, at most limit; ERR_NOT_FOUND for no such
     * subscription. state is pending | delivering | delivered | failed. delivery_claim: *out a heap
     * array of *n the caller free()s (NULL when none). delivery_release_node: gives back the leases
     * node holds (it is starting or stopping). */
    int (*webhook_create)(struct store *s, const struct webhook *w, struct err *e);
    int (*webhook_list)(struct store *s, json_t **out, struct err *e);
    int (*webhook_get)(struct store *s, const char *id, json_t **out, struct err *e);
    int (*webhook_delete)(struct store *s, const char *id, struct err *e);
    int (*webhook_deliveries)(struct store *s, const char *id, const char *task, int64_t limit,
                              json_t **out, struct err *e);
    int (*delivery_claim)(struct store *s, const struct delivery_claim_req *r,
                          struct webhook_delivery **out, size_t *n, struct err *e);
    int (*delivery_finish)(struct store *s, const struct delivery_result *r, struct err *e);
    int (*delivery_release_node)(struct store *s, const char *node, struct err *e);
};

struct db_ops;

struct store {
    const struct store_ops *ops;
    /* The backend's primitives (store_db.h) that the shared transactions run on; NULL in a
     * wrapper (store_cache.c), which passes every op through to its inner store. */
    const struct db_ops *db;
};

/* Opens the store named by url: NULL or a path = embedded SQLite in dir `data_dir`.
 * Creates or migrates the schema, then seals (common/secretbox.h, with the key loaded by then)
 * the SecretKeys and DSNs an older asyncd left in clear, in the same transaction, and logs how
 * many. On success *out is an open store the caller closes with store_close. */
int store_open(const char *url, const char *data_dir, struct store **out, struct err *e);
int store_sqlite_open(const char *path, struct store **out, struct err *e);
/* A postgres:// URL (with ?pool=N and ?claim=skip-locked|update, see store_pg.c) on a database
 * that several asyncd nodes share; creates or migrates the schema. ERR_SERVICE_UNAVAILABLE
 * when the server cannot be reached. */
int store_pg_open(const char *url, struct store **out, struct err *e);

/* Which args of a mysql step's template sql (n of them) are passwords: sets secret[i] for those
 * and leaves the others alone. The store seals them at rest and erases them when the task ends;
 * the rule belongs to the template language (exec/mysql_conn.h), which the store does not depend
 * on, so the daemon hands it over once at start, before any store is opened. Until then every
 * arg counts as a password (the store fails closed). */
typedef void (*store_secret_args_fn)(const char *sql, bool *secret, size_t n);
void store_set_secret_args(store_secret_args_fn fn);

static inline void store_close(struct store *s)
{
    if (s)
        s->ops->close(s);
}
static inline int store_account_count(struct store *s, int64_t *n, struct err *e)
{
    return s->ops->account_count(s, n, e);
}
static inline int store_account_create(struct store *s, const struct account *a, struct err *e)
{
    return s->ops->account_create(s, a, e);
}
static inline int store_account_by_secret_id(struct store *s, const char *id, struct account *o,
                                             struct err *e)
{
    return s->ops->account_by_secret_id(s, id, o, e);
}
static inline int store_account_by_uin(struct store *s, const char *uin, struct account *o,
                                       struct err *e)
{
    return s->ops->account_by_uin(s, uin, o, e);
}
static inline int store_account_set_policy(struct store *s, const char *uin, const char *p,
                                           struct err *e)
{
    return s->ops->account_set_policy(s, uin, p, e);
}
static inline int store_account_set_disabled(struct store *s, const char *uin, bool disabled,
                                             struct err *e)
{
    return s->ops->account_set_disabled(s, uin, disabled, e);
}
static inline int store_account_key_create(struct store *s, const char *uin, const char *id,
                                           const char *key, int max_keys, struct err *e)
{
    return s->ops->account_key_create(s, uin, id, key, max_keys, e);
}
static inline int store_account_key_list(struct store *s, const char *uin, json_t **o,
                                         struct err *e)
{
    return s->ops->account_key_list(s, uin, o, e);
}
static inline int store_account_key_set_enabled(struct store *s, const char *uin, const char *id,
                                                bool enabled, struct err *e)
{
    return s->ops->account_key_set_enabled(s, uin, id, enabled, e);
}
static inline int store_account_key_delete(struct store *s, const char *uin, const char *id,
                                           struct err *e)
{
    return s->ops->account_key_delete(s, uin, id, e);
}
static inline int store_account_first_root(struct store *s, const struct account *c,
                                           struct account *o, struct err *e)
{
    return s->ops->account_first_root(s, c, o, e);
}
static inline int store_instance_create(struct store *s, const struct instance *i, struct err *e)
{
    return s->ops->instance_create(s, i, e);
}
static inline int store_instance_get(struct store *s, const char *p, const char *id,
                                     struct instance *o, struct err *e)
{
    return s->ops->instance_get(s, p, id, o, e);
}
static inline int store_instance_update(struct store *s, const char *id, const char *st,
                                        const char *dsn, const char *reserved, struct instance *o,
                                        struct err *e)
{
    return s->ops->instance_update(s, id, st, dsn, reserved, o, e);
}
static inline int store_instance_list(struct store *s, const char *p, const char *uin, json_t **o,
                                      struct err *e)
{
    return s->ops->instance_list(s, p, uin, o, e);
}
static inline int store_instance_sim_state(struct store *s, const char *p, const char *id,
                                           json_t **o, struct err *e)
{
    return s->ops->instance_sim_state(s, p, id, o, e);
}
static inline int store_instance_set_sim_state(struct store *s, const char *p, const char *id,
                                               const char *state_json, struct err *e)
{
    return s->ops->instance_set_sim_state(s, p, id, state_json, e);
}
static inline int store_sim_reset(struct store *s, int64_t *n_tasks, int64_t *n_instances,
                                  struct err *e)
{
    return s->ops->sim_reset(s, n_tasks, n_instances, e);
}
static inline int store_task_create(struct store *s, const struct task_new *t,
                                    char id[STORE_ID_MAX], struct err *e)
{
    return s->ops->task_create(s, t, id, e);
}
static inline int store_task_create_batch(struct store *s, const struct task_new *ts, size_t n,
                                          char (*ids_out)[STORE_ID_MAX], struct err *e)
{
    return s->ops->task_create_batch(s, ts, n, ids_out, e);
}
static inline int store_task_summary(struct store *s, const char *p, const char *id,
                                     struct task_summary *o, struct err *e)
{
    return s->ops->task_summary(s, p, id, o, e);
}
static inline int store_task_get(struct store *s, const char *id, unsigned what, struct task **o,
                                 struct err *e)
{
    return s->ops->task_get(s, id, what, o, e);
}
static inline int store_task_list(struct store *s, const struct task_filter *f, struct task_list *o,
                                  int64_t *total, struct err *e)
{
    return s->ops->task_list(s, f, o, total, e);
}
static inline int store_task_counts(struct store *s, json_t **o, struct err *e)
{
    return s->ops->task_counts(s, o, e);
}
static inline int store_task_control(struct store *s, const char *id, enum task_verb v,
                                     const char *node, const char *msg, struct err *e)
{
    return s->ops->task_control(s, id, v, node, msg, e);
}
/* Every product's instances one operation at a time (the default). */
static inline int store_task_claim(struct store *s, const char *node, int64_t lease_ms,
                                   struct task_claim *o, struct err *e)
{
    return s->ops->task_claim(s, node, lease_ms, NULL, o, e);
}
/* As store_task_claim, the products in `parallel` exempt from one-at-a-time per instance. */
static inline int store_task_claim_with(struct store *s, const char *node, int64_t lease_ms,
                                        const char *parallel, struct task_claim *o, struct err *e)
{
    return s->ops->task_claim(s, node, lease_ms, parallel, o, e);
}
static inline int store_task_renew(struct store *s, const char *id, int64_t lease_no,
                                   int64_t lease_ms, struct task_lease_state *o, struct err *e)
{
    return s->ops->task_renew(s, id, lease_no, lease_ms, o, e);
}
static inline int store_node_renew(struct store *s, const char *node, int64_t lease_ms,
                                   const struct lease_ref *only, size_t n_only,
                                   struct lease_renewal **out, size_t *n, struct err *e)
{
    return s->ops->node_renew(s, node, lease_ms, only, n_only, out, n, e);
}
static inline int store_task_progress(struct store *s, const struct task_progress *p, struct err *e)
{
    return s->ops->task_progress(s, p, e);
}
/* As store_task_claim_batch, and each claimed task as the claim left it (the `read` bits of
 * TASK_READ_*, secrets opened) in o[i].task where the store can hand it over (task_claim_batch's
 * read); the caller then frees them with store_task_claims_free(o, *n). */
static inline int store_task_claim_batch_read(struct store *s, const char *node, int64_t lease_ms,
                                              const char *parallel, size_t max, unsigned read,
                                              struct task_claim *o, size_t *n, struct err *e)
{
    *n = 0;
    if (s->ops->task_claim_batch)
        return s->ops->task_claim_batch(s, node, lease_ms, parallel, max, read, o, n, e);
    o[0].product[0] = '\0';
    int rc = s->ops->task_claim(s, node, lease_ms, parallel, o, e);
    o[0].task = NULL;
    *n = rc == 0 ? 1 : 0;
    return rc;
}
/* No task is handed over (every o[i].task NULL): nothing for the caller to free. */
static inline int store_task_claim_batch(struct store *s, const char *node, int64_t lease_ms,
                                         const char *parallel, size_t max, struct task_claim *o,
                                         size_t *n, struct err *e)
{
    return store_task_claim_batch_read(s, node, lease_ms, parallel, max, 0, o, n, e);
}
/* Frees the tasks claims c[0..n) were handed (store_task_claim_batch_read); each becomes NULL. */
static inline void store_task_claims_free(struct task_claim *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        task_free(c[i].task);
        c[i].task = NULL;
    }
}
static inline int store_task_progress_batch(struct store *s, const struct task_progress *ps,
                                            size_t n, int *rcs, struct err *e)
{
    if (s->ops->task_progress_batch)
        return s->ops->task_progress_batch(s, ps, n, rcs, e);
    for (size_t i = 0; i < n; i++)
        rcs[i] = s->ops->task_progress(s, &ps[i], e);
    return 0;
}
static inline int store_release_node_leases(struct store *s, const char *node, struct err *e)
{
    return s->ops->release_node_leases(s, node, e);
}
static inline int store_pgroup_record(struct store *s, const struct step_pgroup *g, struct err *e)
{
    return s->ops->pgroup_record(s, g, e);
}
static inline int store_pgroup_clear(struct store *s, const char *node, int64_t pgid, struct err *e)
{
    return s->ops->pgroup_clear(s, node, pgid, e);
}
static inline int store_pgroup_list(struct store *s, const char *node, struct step_pgroup **out,
                                    size_t *n, struct err *e)
{
    return s->ops->pgroup_list(s, node, out, n, e);
}
static inline int store_token_create(struct store *s, const struct token *t, struct err *e)
{
    return s->ops->token_create(s, t, e);
}
static inline int store_token_list(struct store *s, json_t **o, struct err *e)
{
    return s->ops->token_list(s, o, e);
}
static inline int store_token_revoke(struct store *s, const char *id, struct err *e)
{
    return s->ops->token_revoke(s, id, e);
}
static inline int store_token_by_hash(struct store *s, const char *hash, struct token *o,
                                      struct err *e)
{
    return s->ops->token_by_hash(s, hash, o, e);
}
static inline int store_token_touch(struct store *s, const char *id, int64_t used_ms, struct err *e)
{
    return s->ops->token_touch(s, id, used_ms, e);
}
/* Shared by the backends. store_account_refuse_unusable: 0 when an account read by SecretId may
 * sign (the key enabled, the account and its root not disabled), else ERR_NOT_FOUND saying why,
 * with a's secrets wiped and a cleared. store_key_delete_refused: the ERR_CONFLICT for deleting
 * an enabled key. */
int store_account_refuse_unusable(struct account *a, bool key_enabled, struct err *e);
int store_key_delete_refused(const char *uin, const char *secret_id, struct err *e);

static inline int store_remote_handover(struct store *s, const struct remote_handover *h,
                                        struct err *e)
{
    return s->ops->remote_handover(s, h, e);
}
static inline int store_remote_take(struct store *s, const char *id, int64_t lease_no, int step,
                                    const char *phase, json_t **out, struct err *e)
{
    return s->ops->remote_take(s, id, lease_no, step, phase, out, e);
}
static inline int store_worker_claim(struct store *s, const struct worker_claim_req *r,
                                     json_t **out, struct err *e)
{
    return s->ops->worker_claim(s, r, out, e);
}
static inline int store_worker_heartbeat(struct store *s, const char *id, int64_t lease_no,
                                         int64_t lease_ms, struct worker_lease *out, struct err *e)
{
    return s->ops->worker_heartbeat(s, id, lease_no, lease_ms, out, e);
}
static inline int store_worker_report(struct store *s, const struct worker_report *r, struct err *e)
{
    return s->ops->worker_report(s, r, e);
}

static inline int store_purge(struct store *s, const struct purge_req *r, struct purge_result *out,
                              struct err *e)
{
    return s->ops->purge(s, r, out, e);
}
static inline int store_webhook_create(struct store *s, const struct webhook *w, struct err *e)
{
    return s->ops->webhook_create(s, w, e);
}
static inline int store_webhook_list(struct store *s, json_t **out, struct err *e)
{
    return s->ops->webhook_list(s, out, e);
}
static inline int store_webhook_get(struct store *s, const char *id, json_t **out, struct err *e)
{
    return s->ops->webhook_get(s, id, out, e);
}
static inline int store_webhook_delete(struct store *s, const char *id, struct err *e)
{
    return s->ops->webhook_delete(s, id, e);
}
static inline int store_webhook_deliveries(struct store *s, const char *id, const char *task,
                                           int64_t limit, json_t **out, struct err *e)
{
    return s->ops->webhook_deliveries(s, id, task, limit, out, e);
}
static inline int store_delivery_claim(struct store *s, const struct delivery_claim_req *r,
                                       struct webhook_delivery **out, size_t *n, struct err *e)
{
    return s->ops->delivery_claim(s, r, out, n, e);
}
static inline int store_delivery_finish(struct store *s, const struct delivery_result *r,
                                        struct err *e)
{
    return s->ops->delivery_finish(s, r, e);
}
static inline int store_delivery_release_node(struct store *s, const char *node, struct err *e)
{
    return s->ops->delivery_release_node(s, node, e);
}

static inline int store_task_move(struct store *s, const struct task_move *m, struct err *e)
{
    return s->ops->task_move(s, m, e);
}

#endif
