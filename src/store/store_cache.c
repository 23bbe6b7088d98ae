/* store_cache: account-by-SecretId and task summaries served from memory in front of a backend.
 *
 * Why: with the SQLite store every DescribeAsyncRequestInfo made two read transactions (account,
 * task): about 3.2 fcntl (WAL locks) and 3.2 futex (SQLite's mutexes) per request on top of the
 * one recv and one send (strace -c -f, wrk 32 connections, 2-core VM), where each syscall costs
 * ~14 us of mostly pvm_irq_enable (36% of asyncd's samples in perf record -g).
 *
 * Correctness (see store_cache.h for what each mode caches): a read that misses snapshots a
 * ticket (the write epoch and the count of writes in progress, per shard and global) before it
 * asks the backend, and fills the cache only if no write began or ended meanwhile; a write
 * drops the entry before and after it runs. So a value read before a write can never be stored
 * after it, and once a write returns every later read sees it. */
#include "store/store_cache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/xalloc.h"

#define TASK_SLOTS     8192 /* direct-mapped by id; a collision replaces. Power of two. */
#define TASK_SHARDS    64   /* one lock per TASK_SLOTS / TASK_SHARDS slots */
#define ACCOUNT_SLOTS  256
#define INSTANCE_SLOTS 256
#define TOKEN_SLOTS    64

/* What a write in progress or just finished means to a fill that began before it. */
struct gate {
    pthread_rwlock_t lock;
    uint64_t epoch;   /* bumped when a write ends; under lock */
    unsigned pending; /* writes begun and not ended; under lock */
    atomic_ullong hits, misses;
};

struct ticket {
    uint64_t epoch, global_epoch;
    bool ok; /* no write was in progress when the read began */
};

struct account_entry {
    struct account a; /* a.policy_json owned by the entry */
    int64_t filled_ms;
};

struct instance_entry {
    struct instance in;
    int64_t filled_ms;
};

struct cache_store {
    struct store base; /* first: the ops table sees a struct store */
    struct store *inner;
    bool shared;
    struct gate shards[TASK_SHARDS];
    struct task_summary *tasks[TASK_SLOTS]; /* heap entries, under their shard's lock */
    /* Writes that may touch tasks not known in advance (a claim, releasing a node's leases). */
    atomic_uint global_pending;
    atomic_ullong global_epoch;
    /* --retention in ms (0 = forever): a final entry that ended longer ago is a miss, since
     * another node may have purged it (store_cache_set_retention) */
    atomic_llong retention_ms;
    struct gate accounts_gate;
    struct account_entry *accounts[ACCOUNT_SLOTS];     /* by SecretId */
    struct account_entry *accounts_uin[ACCOUNT_SLOTS]; /* by Uin; under accounts_gate too */
    struct gate tokens_gate; /* exclusive mode only (see the tokens below) */
    struct token *tokens[TOKEN_SLOTS];
    struct gate instances_gate;
    struct instance_entry *instances[INSTANCE_SLOTS];
};

static const struct store_ops cache_ops;

static struct cache_store *cs_of(struct store *s) { return (struct cache_store *)s; }

static uint32_t fnv1a(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void gate_init(struct gate *g)
{
    pthread_rwlock_init(&g->lock, NULL);
    g->epoch = 0;
    g->pending = 0;
    atomic_init(&g->hits, 0);
    atomic_init(&g->misses, 0);
}

static struct ticket gate_ticket(struct cache_store *cs, struct gate *g)
{
    struct ticket t;
    t.ok = atomic_load(&cs->global_pending) == 0;
    t.global_epoch = atomic_load(&cs->global_epoch);
    pthread_rwlock_rdlock(&g->lock);
    t.epoch = g->epoch;
    t.ok = t.ok && g->pending == 0;
    pthread_rwlock_unlock(&g->lock);
    return t;
}

/* With g's write lock held: a write on g begins (begin) or ends. A fill whose ticket saw
 * neither is refused (gate_still_open). */
static void gate_mark_locked(struct gate *g, bool begin)
{
    if (begin) {
        g->pending++;
    } else {
        g->pending--;
        g->epoch++;
    }
}

/* With g's write lock held: may a value read under ticket t be stored now? */
static bool gate_still_open(struct cache_store *cs, const struct gate *g, struct ticket t)
{
    return t.ok && g->pending == 0 && g->epoch == t.epoch &&
           atomic_load(&cs->global_pending) == 0 &&
           atomic_load(&cs->global_epoch) == t.global_epoch;
}

/* --- task summaries --- */

static size_t task_slot(const char *id) { return fnv1a(id) & (TASK_SLOTS - 1); }
static struct gate *task_gate(struct cache_store *cs, size_t slot)
{
    return &cs->shards[slot % TASK_SHARDS];
}

/* With the slot's write lock held. */
static void task_drop_locked(struct cache_store *cs, size_t slot, const char *id)
{
    struct task_summary *t = cs->tasks[slot];
    if (t && (!id || strcmp(t->id, id) == 0)) {
        free(t);
        cs->tasks[slot] = NULL;
    }
}

/* A finished task past the retention may be gone from the store at any moment (purged here, or
 * by another node of a shared store): the store decides, never the cache. */
static bool task_expired(struct cache_store *cs, const struct task_summary *t)
{
    int64_t keep = atomic_load(&cs->retention_ms);
    return keep > 0 && task_state_is_final(t->state) && t->end_ms < wall_ms() - keep;
}

static bool task_lookup(struct cache_store *cs, const char *product, const char *id,
                        struct task_summary *out)
{
    size_t slot = task_slot(id);
    struct gate *g = task_gate(cs, slot);
    pthread_rwlock_rdlock(&g->lock);
    const struct task_summary *t = cs->tasks[slot];
    bool hit =
        t && strcmp(t->id, id) == 0 && strcmp(t->product, product) == 0 && !task_expired(cs, t);
    if (hit)
        *out = *t;
    pthread_rwlock_unlock(&g->lock);
    atomic_fetch_add_explicit(hit ? &g->hits : &g->misses, 1, memory_order_relaxed);
    return hit;
}

/* A final state is never replaced by an earlier one, whatever the tickets say. */
static bool task_may_replace(const struct task_summary *old, const struct task_summary *t)
{
    return !old || strcmp(old->id, t->id) != 0 || !task_state_is_final(old->state) ||
           task_state_is_final(t->state);
}

static void task_fill(struct cache_store *cs, struct ticket tk, const struct task_summary *t)
{
    if (cs->shared && !task_state_is_final(t->state))
        return; /* another node may move it at any time: always ask the store */
    size_t slot = task_slot(t->id);
    struct gate *g = task_gate(cs, slot);
    pthread_rwlock_wrlock(&g->lock);
    if (task_expired(cs, t))
        task_drop_locked(cs, slot, t->id);
    else if (gate_still_open(cs, g, tk) && task_may_replace(cs->tasks[slot], t)) {
        if (!cs->tasks[slot])
            cs->tasks[slot] = xmalloc(sizeof *t);
        *cs->tasks[slot] = *t;
    }
    pthread_rwlock_unlock(&g->lock);
}

static void task_write_begin(struct cache_store *cs, const char *id)
{
    size_t slot = task_slot(id);
    struct gate *g = task_gate(cs, slot);
    pthread_rwlock_wrlock(&g->lock);
    task_drop_locked(cs, slot, id);
    g->pending++;
    pthread_rwlock_unlock(&g->lock);
}

static void task_write_end(struct cache_store *cs, const char *id)
{
    size_t slot = task_slot(id);
    struct gate *g = task_gate(cs, slot);
    pthread_rwlock_wrlock(&g->lock);
    g->pending--;
    g->epoch++;
    task_drop_locked(cs, slot, id);
    pthread_rwlock_unlock(&g->lock);
}

/* Ends a write whose tasks were unknown when it began: drops id's entry ("" none), or every
 * entry (NULL). */
static void global_write_end(struct cache_store *cs, const char *id)
{
    if (id && !*id) {
        /* nothing to drop */
    } else if (id) {
        size_t slot = task_slot(id);
        struct gate *g = task_gate(cs, slot);
        pthread_rwlock_wrlock(&g->lock);
        task_drop_locked(cs, slot, id);
        pthread_rwlock_unlock(&g->lock);
    } else {
        for (size_t sh = 0; sh < TASK_SHARDS; sh++) {
            pthread_rwlock_wrlock(&cs->shards[sh].lock);
            for (size_t slot = sh; slot < TASK_SLOTS; slot += TASK_SHARDS)
                task_drop_locked(cs, slot, NULL);
            pthread_rwlock_unlock(&cs->shards[sh].lock);
        }
    }
    atomic_fetch_add(&cs->global_epoch, 1);
    atomic_fetch_sub(&cs->global_pending, 1);
}

static int c_task_summary(struct store *s, const char *product, const char *id,
                          struct task_summary *out, struct err *e)
{
    struct cache_store *cs = cs_of(s);
    if (task_lookup(cs, product, id, out))
        return 0;
    struct ticket tk = gate_ticket(cs, task_gate(cs, task_slot(id)));
    int rc = store_task_summary(cs->inner, product, id, out, e);
    if (rc == 0 && strcmp(out->id, id) == 0)
        task_fill(cs, tk, out);
    return rc;
}

static int c_task_move(struct store *s, const struct task_move *m, struct err *e)
{
    struct cache_store *cs = cs_of(s);
    task_write_begin(cs, m->id);
    int rc = store_task_move(cs->inner, m, e);
    task_write_end(cs, m->id);
    return rc;
}

static int c_task_control(struct store *s, const char *id, enum task_verb verb, const char *node,
                          const char *message, struct err *e)
{
    struct cache_store *cs = cs_of(s);
    task_write_begin(cs, id);
    int rc = store_task_control(cs->inner, id, verb, node, message, e);
    task_write_end(cs, id);
    return rc;
}

static int c_task_progress(struct store *s, const struct task_progress *p, struct err *e)
{
    struct cache_store *cs = cs_of(s);
    task_write_begin(cs, p->id);
    int rc = store_task_progress(cs->inner, p, e);
    task_write_end(cs, p->id);
    return rc;
}

static int c_task_renew(struct store *s, const char *id, int64_t lease_no, int64_t lease_ms,
                        struct task_lease_state *out, struct err *e)
{
    struct cache_store *cs = cs_of(s);
    task_write_begin(cs, id);
    int rc = store_task_renew(cs->inner, id, lease_no, lease_ms, out, e);
    task_write_end(cs, id);
    return rc;
}

/* A renewal moves only lease_expires_ms, which no cached value holds (task summaries carry the
 * state and lease_no, both unchanged by it): passed through, so the summaries the lease keeper
 * reads for kill/pause stay cached across its renewal rounds. */
static int c_node_renew(struct store *s, const char *node, int64_t lease_ms,
                        const struct lease_ref *only, size_t n_only, struct lease_renewal **out,
                        size_t *n, struct err *e)
{
    return store_node_renew(cs_of(s)->inner, node, lease_ms, only, n_only, out, n, e);
}

static int c_task_claim(struct store *s, const char *node, int64_t lease_ms, const char *parallel,
                        struct task_claim *out, struct err *e)
{
    struct cache_store *cs = cs_of(s);
    atomic_fetch_add(&cs->global_pending, 1);
    int rc = store_task_claim_with(cs->inner, node, lease_ms, parallel, out, e);
    /* A failed claim changed no task (its transaction rolled back; on PostgreSQL an unknown
     * outcome could only touch a non-final task, never cached there), so only the in-flight
     * fills are turned away. Dropping every entry here instead cost 10k instructions on each of
     * the engine's idle polls (callgrind). */
    global_write_end(cs, rc == 0 ? out->id : "");
    return rc;
}

/* As c_task_claim, for each task of the batch. A task the claim hands over (read) was read in
 * the claim's own transaction, not through this cache, and is not put in it: the entries the
 * claim changed are turned away below as without it. */
static int c_task_claim_batch(struct store *s, const char *node, int64_t lease_ms,
                              const char *parallel, size_t max, unsigned read,
                              struct task_claim *out, size_t *n, struct err *e)
{
    struct cache_store *cs = cs_of(s);
    atomic_fetch_add(&cs->global_pending, 1);
    int rc = store_task_claim_batch_read(cs->inner, node, lease_ms, parallel, max, read, out, n, e);
    for (size_t i = 1; rc == 0 && i < *n; i++) {
        atomic_fetch_add(&cs->global_pending, 1);
        global_write_end(cs, out[i].id);
    }
    global_write_end(cs, rc == 0 && *n ? out[0].id : "");
    return rc;
}

static int c_task_progress_batch(struct store *s, const struct task_progress *ps, size_t n,
                                 int *rcs, struct err *e)
{
    struct cache_store *cs = cs_of(s);
    for (size_t i = 0; i < n; i++)
        task_write_begin(cs, ps[i].id);
    int rc = store_task_progress_batch(cs->inner, ps, n, rcs, e);
    for (size_t i = 0; i < n; i++)
        task_write_end(cs, ps[i].id);
    return rc;
}

static int c_release_node_leases(struct store *s, const char *node, struct err *e)
{
    struct cache_store *cs = cs_of(s);
    atomic_fetch_add(&cs->global_pending, 1);
    int rc = store_release_node_leases(cs->inner, node, e);
    global_write_end(cs, NULL);
    return rc;
}

/* Remote steps (store_workers.c): each changes one known task's lease (a worker's claim, some
 * unknown ones, like the engine's claim). */
static int c_remote_handover(struct store *s, const struct remote_handover *h, struct err *e)
{
    struct cache_store *cs = cs_of(s);
    task_write_begin(cs, h->id);
    int rc = store_remote_handover(cs->inner, h, e);
    task_write_end(cs, h->id);
    return rc;
}

static int c_remote_take(struct store *s, const char *id, int64_t lease_no, int step,
                         const char *phase, json_t **out, struct err *e)
{
    struct cache_store *cs = cs_of(s);
    task_write_begin(cs, id);
    int rc = store_remote_take(cs->inner, id, lease_no, step, phase, out, e);
    task_write_end(cs, id);
    return rc;
}

static int c_worker_claim(struct store *s, const struct worker_claim_req *r, json_t **out,
                          struct err *e)
{
    struct cache_store *cs = cs_of(s);
    atomic_fetch_add(&cs->global_pending, 1);
    int rc = store_worker_claim(cs->inner, r, out, e);
    global_write_end(cs, rc == 0 && json_array_size(*out) > 0 ? NULL : "");
    return rc;
}

static int c_worker_heartbeat(struct store *s, const char *id, int64_t lease_no, int64_t lease_ms,
                              struct worker_lease *out, struct err *e)
{
    struct cache_store *cs = cs_of(s);
    task_write_begin(cs, id);
    int rc = store_worker_heartbeat(cs->inner, id, lease_no, lease_ms, out, e);
    task_write_end(cs, id);
    return rc;
}

static int c_worker_report(struct store *s, const struct worker_report *r, struct err *e)
{
    struct cache_store *cs = cs_of(s);
    task_write_begin(cs, r->id);
    int rc = store_worker_report(cs->inner, r, e);
    task_write_end(cs, r->id);
    return rc;
}

/* A purge deletes tasks nobody named in advance: a global write, whose end drops the entries of
 * the tasks it removed (a fill that began before it is refused by the global epoch). */
static int c_purge(struct store *s, const struct purge_req *r, struct purge_result *out,
                   struct err *e)
{
    struct cache_store *cs = cs_of(s);
    atomic_fetch_add(&cs->global_pending, 1);
    int rc = store_purge(cs->inner, r, out, e);
    for (size_t i = 0; rc == 0 && i < out->n_tasks; i++) {
        size_t slot = task_slot(out->ids[i]);
        struct gate *g = task_gate(cs, slot);
        pthread_rwlock_wrlock(&g->lock);
        task_drop_locked(cs, slot, out->ids[i]);
        pthread_rwlock_unlock(&g->lock);
    }
    global_write_end(cs, "");
    return rc;
}

/* Step process groups touch no cached row (tasks, accounts, instances): passed through. */
static int c_pgroup_record(struct store *s, const struct step_pgroup *g, struct err *e)
{
    return store_pgroup_record(cs_of(s)->inner, g, e);
}

static int c_pgroup_clear(struct store *s, const char *node, int64_t pgid, struct err *e)
{
    return store_pgroup_clear(cs_of(s)->inner, node, pgid, e);
}

static int c_pgroup_list(struct store *s, const char *node, struct step_pgroup **out, size_t *n,
                         struct err *e)
{
    return store_pgroup_list(cs_of(s)->inner, node, out, n, e);
}

/* --- accounts --- */

static size_t account_slot(const char *secret_id) { return fnv1a(secret_id) & (ACCOUNT_SLOTS - 1); }

static void account_entry_free(struct account_entry *a)
{
    if (!a)
        return;
    account_clear(&a->a);
    memset(a, 0, sizeof *a); /* it held a SecretKey */
    free(a);
}

static void account_copy(struct account *dst, const struct account *src)
{
    *dst = *src;
    dst->policy_json = src->policy_json ? xstrdup(src->policy_json) : NULL;
}

/* The key an account is found by in one of the two tables: its SecretId or its Uin. */
static const char *account_key(const struct cache_store *cs, struct account_entry *const *table,
                               const struct account *a)
{
    return table == cs->accounts ? a->secret_id : a->uin;
}

static bool account_lookup(struct cache_store *cs, struct account_entry **table, const char *key,
                           struct account *out)
{
    struct gate *g = &cs->accounts_gate;
    pthread_rwlock_rdlock(&g->lock);
    const struct account_entry *a = table[account_slot(key)];
    bool hit = a && strcmp(account_key(cs, table, &a->a), key) == 0 &&
               (!cs->shared || mono_ms() - a->filled_ms < STORE_CACHE_SHARED_TTL_MS);
    if (hit)
        account_copy(out, &a->a);
    pthread_rwlock_unlock(&g->lock);
    atomic_fetch_add_explicit(hit ? &g->hits : &g->misses, 1, memory_order_relaxed);
    return hit;
}

static void account_fill(struct cache_store *cs, struct account_entry **table, struct ticket tk,
                         const struct account *a)
{
    struct gate *g = &cs->accounts_gate;
    size_t slot = account_slot(account_key(cs, table, a));
    struct account_entry *fresh = xcalloc(1, sizeof *fresh);
    account_copy(&fresh->a, a);
    fresh->filled_ms = mono_ms();
    pthread_rwlock_wrlock(&g->lock);
    if (gate_still_open(cs, g, tk)) {
        account_entry_free(table[slot]);
        table[slot] = fresh;
        fresh = NULL;
    }
    pthread_rwlock_unlock(&g->lock);
    account_entry_free(fresh);
}

/* Account writes are rare (operators), and a policy or key names no SecretId we could hash on
 * in every op: each one drops the whole table. */
static void accounts_write_mark(struct cache_store *cs, bool begin)
{
    struct gate *g = &cs->accounts_gate;
    pthread_rwlock_wrlock(&g->lock);
    gate_mark_locked(g, begin);
    for (size_t i = 0; i < ACCOUNT_SLOTS; i++) {
        account_entry_free(cs->accounts[i]);
        account_entry_free(cs->accounts_uin[i]);
        cs->accounts[i] = cs->accounts_uin[i] = NULL;
    }
    pthread_rwlock_unlock(&g->lock);
}

static int c_account_by_secret_id(struct store *s, const char *secret_id, struct account *out,
                                  struct err *e)
{
    struct cache_store *cs = cs_of(s);
    if (account_lookup(cs, cs->accounts, secret_id, out))
        return 0;
    struct ticket tk = gate_ticket(cs, &cs->accounts_gate);
    int rc = store_account_by_secret_id(cs->inner, secret_id, out, e);
    if (rc == 0 && strcmp(out->secret_id, secret_id) == 0)
        account_fill(cs, cs->accounts, tk, out);
    return rc;
}

/* Every task creation checks its owner by Uin: on SQLite that read was 12% of the create path's
 * CPU (perf, bench/tasks.sh creates alone), the reader's page cache being dropped by each write
 * before it. Cached under the same rules as by SecretId (every account write drops both). */
static int c_account_by_uin(struct store *s, const char *uin, struct account *out, struct err *e)
{
    struct cache_store *cs = cs_of(s);
    if (account_lookup(cs, cs->accounts_uin, uin, out))
        return 0;
    struct ticket tk = gate_ticket(cs, &cs->accounts_gate);
    int rc = store_account_by_uin(cs->inner, uin, out, e);
    if (rc == 0 && strcmp(out->uin, uin) == 0)
        account_fill(cs, cs->accounts_uin, tk, out);
    return rc;
}

static int c_account_create(struct store *s, const struct account *a, struct err *e)
{
    struct cache_store *cs = cs_of(s);
    accounts_write_mark(cs, true);
    int rc = store_account_create(cs->inner, a, e);
    accounts_write_mark(cs, false);
    return rc;
}

static int c_account_set_policy(struct store *s, const char *uin, const char *policy_json,
                                struct err *e)
{
    struct cache_store *cs = cs_of(s);
    accounts_write_mark(cs, true);
    int rc = store_account_set_policy(cs->inner, uin, policy_json, e);
    accounts_write_mark(cs, false);
    return rc;
}

static int c_account_first_root(struct store *s, const struct account *cand, struct account *out,
                                struct err *e)
{
    struct cache_store *cs = cs_of(s);
    accounts_write_mark(cs, true);
    int rc = store_account_first_root(cs->inner, cand, out, e);
    accounts_write_mark(cs, false);
    return rc;
}

/* Disabling an account or changing its keys drops every cached account here, at once; another
 * node sharing the store drops its entries within STORE_CACHE_SHARED_TTL_MS. A refused lookup
 * (disabled, deleted) is never cached, so re-enabling is seen at the next request. */
static int c_account_set_disabled(struct store *s, const char *uin, bool disabled, struct err *e)
{
    struct cache_store *cs = cs_of(s);
    accounts_write_mark(cs, true);
    int rc = store_account_set_disabled(cs->inner, uin, disabled, e);
    accounts_write_mark(cs, false);
    return rc;
}

static int c_account_key_create(struct store *s, const char *uin, const char *secret_id,
                                const char *secret_key, int max_keys, struct err *e)
{
    struct cache_store *cs = cs_of(s);
    accounts_write_mark(cs, true);
    int rc = store_account_key_create(cs->inner, uin, secret_id, secret_key, max_keys, e);
    accounts_write_mark(cs, false);
    return rc;
}

static int c_account_key_set_enabled(struct store *s, const char *uin, const char *secret_id,
                                     bool enabled, struct err *e)
{
    struct cache_store *cs = cs_of(s);
    accounts_write_mark(cs, true);
    int rc = store_account_key_set_enabled(cs->inner, uin, secret_id, enabled, e);
    accounts_write_mark(cs, false);
    return rc;
}

static int c_account_key_delete(struct store *s, const char *uin, const char *secret_id,
                                struct err *e)
{
    struct cache_store *cs = cs_of(s);
    accounts_write_mark(cs, true);
    int rc = store_account_key_delete(cs->inner, uin, secret_id, e);
    accounts_write_mark(cs, false);
    return rc;
}

/* --- instances (mongodb's DescribeAsyncRequestInfo checks the task's instance status) --- */

static size_t instance_slot(const char *product, const char *id)
{
    return (fnv1a(product) ^ fnv1a(id)) & (INSTANCE_SLOTS - 1);
}

static bool instance_lookup(struct cache_store *cs, const char *product, const char *id,
                            struct instance *out)
{
    struct gate *g = &cs->instances_gate;
    pthread_rwlock_rdlock(&g->lock);
    const struct instance_entry *x = cs->instances[instance_slot(product, id)];
    bool hit = x && strcmp(x->in.instance_id, id) == 0 && strcmp(x->in.product, product) == 0 &&
               (!cs->shared || mono_ms() - x->filled_ms < STORE_CACHE_SHARED_TTL_MS);
    if (hit)
        *out = x->in;
    pthread_rwlock_unlock(&g->lock);
    atomic_fetch_add_explicit(hit ? &g->hits : &g->misses, 1, memory_order_relaxed);
    return hit;
}

static void instance_fill(struct cache_store *cs, struct ticket tk, const char *product,
                          const struct instance *in)
{
    struct gate *g = &cs->instances_gate;
    size_t slot = instance_slot(product, in->instance_id);
    pthread_rwlock_wrlock(&g->lock);
    if (gate_still_open(cs, g, tk)) {
        if (!cs->instances[slot])
            cs->instances[slot] = xmalloc(sizeof *cs->instances[slot]);
        cs->instances[slot]->in = *in;
        cs->instances[slot]->filled_ms = mono_ms();
    }
    pthread_rwlock_unlock(&g->lock);
}

/* Instance writes are operators' too, and an update names no product: each drops the table. */
static void instances_write_mark(struct cache_store *cs, bool begin)
{
    struct gate *g = &cs->instances_gate;
    pthread_rwlock_wrlock(&g->lock);
    gate_mark_locked(g, begin);
    for (size_t i = 0; i < INSTANCE_SLOTS; i++) {
        free(cs->instances[i]); /* a DSN password: not zeroed, as the backend's copies are not */
        cs->instances[i] = NULL;
    }
    pthread_rwlock_unlock(&g->lock);
}

static int c_instance_get(struct store *s, const char *product, const char *id,
                          struct instance *out, struct err *e)
{
    struct cache_store *cs = cs_of(s);
    if (instance_lookup(cs, product, id, out))
        return 0;
    struct ticket tk = gate_ticket(cs, &cs->instances_gate);
    int rc = store_instance_get(cs->inner, product, id, out, e);
    if (rc == 0 && strcmp(out->instance_id, id) == 0 && strcmp(out->product, product) == 0)
        instance_fill(cs, tk, product, out);
    return rc;
}

static int c_instance_create(struct store *s, const struct instance *in, struct err *e)
{
    struct cache_store *cs = cs_of(s);
    instances_write_mark(cs, true);
    int rc = store_instance_create(cs->inner, in, e);
    instances_write_mark(cs, false);
    return rc;
}

static int c_instance_update(struct store *s, const char *id, const char *status, const char *dsn,
                             const char *reserved, struct instance *out, struct err *e)
{
    struct cache_store *cs = cs_of(s);
    instances_write_mark(cs, true);
    int rc = store_instance_update(cs->inner, id, status, dsn, reserved, out, e);
    instances_write_mark(cs, false);
    return rc;
}

/* --- everything else goes straight to the backend --- */

static int c_account_count(struct store *s, int64_t *out, struct err *e)
{
    return store_account_count(cs_of(s)->inner, out, e);
}
static int c_account_key_list(struct store *s, const char *uin, json_t **out, struct err *e)
{
    return store_account_key_list(cs_of(s)->inner, uin, out, e);
}
static int c_instance_list(struct store *s, const char *product, const char *uin, json_t **out,
                           struct err *e)
{
    return store_instance_list(cs_of(s)->inner, product, uin, out, e);
}
/* The sim state is not cached (struct instance holds only whether there is one): passed
 * through. A reset deletes instances and tasks nobody named: every entry goes. */
static int c_instance_sim_state(struct store *s, const char *product, const char *id, json_t **out,
                                struct err *e)
{
    return store_instance_sim_state(cs_of(s)->inner, product, id, out, e);
}
static int c_instance_set_sim_state(struct store *s, const char *product, const char *id,
                                    const char *state_json, struct err *e)
{
    return store_instance_set_sim_state(cs_of(s)->inner, product, id, state_json, e);
}
static int c_sim_reset(struct store *s, int64_t *n_tasks, int64_t *n_instances, struct err *e)
{
    struct cache_store *cs = cs_of(s);
    instances_write_mark(cs, true);
    atomic_fetch_add(&cs->global_pending, 1);
    int rc = store_sim_reset(cs->inner, n_tasks, n_instances, e);
    global_write_end(cs, NULL);
    instances_write_mark(cs, false);
    return rc;
}
/* A new id has no entry (misses are not cached), so a create needs no invalidation. */
static int c_task_create(struct store *s, const struct task_new *t, char id_out[STORE_ID_MAX],
                         struct err *e)
{
    return store_task_create(cs_of(s)->inner, t, id_out, e);
}
static int c_task_create_batch(struct store *s, const struct task_new *ts, size_t n,
                               char (*ids_out)[STORE_ID_MAX], struct err *e)
{
    return store_task_create_batch(cs_of(s)->inner, ts, n, ids_out, e);
}
static int c_task_get(struct store *s, const char *id, unsigned what, struct task **out,
                      struct err *e)
{
    return store_task_get(cs_of(s)->inner, id, what, out, e);
}
static int c_task_list(struct store *s, const struct task_filter *f, struct task_list *out,
                       int64_t *total, struct err *e)
{
    return store_task_list(cs_of(s)->inner, f, out, total, e);
}
static int c_task_counts(struct store *s, json_t **out, struct err *e)
{
    return store_task_counts(cs_of(s)->inner, out, e);
}
/* --- admin tokens ---
 * Cached in exclusive mode only, kept exact by write-through invalidation like the accounts: a
 * revocation holds at the next request. Uncached, the lookup was one indexed read per admin
 * request, ~15 us sequentially but 6.5% of the create path's CPU under concurrent creates on
 * SQLite (perf, bench/tasks.sh creates alone: each write drops the reader's page cache). In
 * shared mode another node may revoke a token, and a revocation must hold on every node at
 * its next request, not within a TTL: there every lookup goes to the store. */

static size_t token_slot(const char *hash) { return fnv1a(hash) & (TOKEN_SLOTS - 1); }

static void tokens_write_mark(struct cache_store *cs, bool begin)
{
    struct gate *g = &cs->tokens_gate;
    pthread_rwlock_wrlock(&g->lock);
    gate_mark_locked(g, begin);
    for (size_t i = 0; i < TOKEN_SLOTS; i++) {
        free(cs->tokens[i]);
        cs->tokens[i] = NULL;
    }
    pthread_rwlock_unlock(&g->lock);
}

static bool token_lookup(struct cache_store *cs, const char *hash, struct token *out)
{
    struct gate *g = &cs->tokens_gate;
    pthread_rwlock_rdlock(&g->lock);
    const struct token *t = cs->tokens[token_slot(hash)];
    bool hit = t && strcmp(t->hash, hash) == 0;
    if (hit)
        *out = *t;
    pthread_rwlock_unlock(&g->lock);
    return hit;
}

static void token_fill(struct cache_store *cs, struct ticket tk, const struct token *t)
{
    struct gate *g = &cs->tokens_gate;
    size_t slot = token_slot(t->hash);
    struct token *fresh = xmalloc(sizeof *fresh);
    *fresh = *t;
    pthread_rwlock_wrlock(&g->lock);
    if (gate_still_open(cs, g, tk)) {
        free(cs->tokens[slot]);
        cs->tokens[slot] = fresh;
        fresh = NULL;
    }
    pthread_rwlock_unlock(&g->lock);
    free(fresh);
}

static int c_token_create(struct store *s, const struct token *t, struct err *e)
{
    struct cache_store *cs = cs_of(s);
    tokens_write_mark(cs, true);
    int rc = store_token_create(cs->inner, t, e);
    tokens_write_mark(cs, false);
    return rc;
}
static int c_token_list(struct store *s, json_t **out, struct err *e)
{
    return store_token_list(cs_of(s)->inner, out, e);
}
static int c_token_revoke(struct store *s, const char *id, struct err *e)
{
    struct cache_store *cs = cs_of(s);
    tokens_write_mark(cs, true);
    int rc = store_token_revoke(cs->inner, id, e);
    tokens_write_mark(cs, false);
    return rc;
}
static int c_token_by_hash(struct store *s, const char *hash, struct token *out, struct err *e)
{
    struct cache_store *cs = cs_of(s);
    if (cs->shared)
        return store_token_by_hash(cs->inner, hash, out, e);
    if (token_lookup(cs, hash, out))
        return 0;
    struct ticket tk = gate_ticket(cs, &cs->tokens_gate);
    int rc = store_token_by_hash(cs->inner, hash, out, e);
    if (rc == 0 && strcmp(out->hash, hash) == 0)
        token_fill(cs, tk, out);
    return rc;
}
/* Drops the cached tokens too: the next lookup reads last_used_ms afresh, so a token is
 * touched once per TOKEN_TOUCH_EVERY_MS (admin_tokens.c), not at every request. */
static int c_token_touch(struct store *s, const char *id, int64_t used_ms, struct err *e)
{
    struct cache_store *cs = cs_of(s);
    tokens_write_mark(cs, true);
    int rc = store_token_touch(cs->inner, id, used_ms, e);
    tokens_write_mark(cs, false);
    return rc;
}

/* Webhooks are not cached: subscriptions and deliveries are read by operators and the
 * dispatcher, never on the Cloud API's hot path, and touch no cached task summary. */
static int c_webhook_create(struct store *s, const struct webhook *w, struct err *e)
{
    return store_webhook_create(cs_of(s)->inner, w, e);
}
static int c_webhook_list(struct store *s, json_t **out, struct err *e)
{
    return store_webhook_list(cs_of(s)->inner, out, e);
}
static int c_webhook_get(struct store *s, const char *id, json_t **out, struct err *e)
{
    return store_webhook_get(cs_of(s)->inner, id, out, e);
}
static int c_webhook_delete(struct store *s, const char *id, struct err *e)
{
    return store_webhook_delete(cs_of(s)->inner, id, e);
}
static int c_webhook_deliveries(struct store *s, const char *id, const char *task, int64_t limit,
                                json_t **out, struct err *e)
{
    return store_webhook_deliveries(cs_of(s)->inner, id, task, limit, out, e);
}
static int c_delivery_claim(struct store *s, const struct delivery_claim_req *r,
                            struct webhook_delivery **out, size_t *n, struct err *e)
{
    return store_delivery_claim(cs_of(s)->inner, r, out, n, e);
}
static int c_delivery_finish(struct store *s, const struct delivery_result *r, struct err *e)
{
    return store_delivery_finish(cs_of(s)->inner, r, e);
}
static int c_delivery_release_node(struct store *s, const char *node, struct err *e)
{
    return store_delivery_release_node(cs_of(s)->inner, node, e);
}

static void c_close(struct store *s)
{
    struct cache_store *cs = cs_of(s);
    store_close(cs->inner);
    for (size_t i = 0; i < TASK_SLOTS; i++)
        free(cs->tasks[i]);
    for (size_t i = 0; i < ACCOUNT_SLOTS; i++) {
        account_entry_free(cs->accounts[i]);
        account_entry_free(cs->accounts_uin[i]);
    }
    for (size_t i = 0; i < TOKEN_SLOTS; i++)
        free(cs->tokens[i]);
    for (size_t i = 0; i < INSTANCE_SLOTS; i++)
        free(cs->instances[i]);
    for (size_t i = 0; i < TASK_SHARDS; i++)
        pthread_rwlock_destroy(&cs->shards[i].lock);
    pthread_rwlock_destroy(&cs->accounts_gate.lock);
    pthread_rwlock_destroy(&cs->tokens_gate.lock);
    pthread_rwlock_destroy(&cs->instances_gate.lock);
    free(cs);
}

/* A new op in struct store_ops must be sorted into "writes" (invalidate) or "reads" here: this
 * fails to compile until the table below is updated with it. */
_Static_assert(sizeof(struct store_ops) == sizeof(const char *) + 56 * sizeof(void (*)(void)),
               "store_ops changed: teach store_cache.c what the new op reads or writes");

static const struct store_ops cache_ops = {
    .name = "cache",
    .close = c_close,
    .account_count = c_account_count,
    .account_create = c_account_create,
    .account_by_secret_id = c_account_by_secret_id,
    .account_by_uin = c_account_by_uin,
    .account_set_policy = c_account_set_policy,
    .account_first_root = c_account_first_root,
    .account_set_disabled = c_account_set_disabled,
    .account_key_create = c_account_key_create,
    .account_key_list = c_account_key_list,
    .account_key_set_enabled = c_account_key_set_enabled,
    .account_key_delete = c_account_key_delete,
    .instance_create = c_instance_create,
    .instance_get = c_instance_get,
    .instance_update = c_instance_update,
    .instance_list = c_instance_list,
    .instance_sim_state = c_instance_sim_state,
    .instance_set_sim_state = c_instance_set_sim_state,
    .sim_reset = c_sim_reset,
    .task_create = c_task_create,
    .task_create_batch = c_task_create_batch,
    .task_summary = c_task_summary,
    .task_get = c_task_get,
    .task_list = c_task_list,
    .task_move = c_task_move,
    .task_counts = c_task_counts,
    .task_control = c_task_control,
    .task_claim = c_task_claim,
    .task_renew = c_task_renew,
    .node_renew = c_node_renew,
    .task_progress = c_task_progress,
    .task_claim_batch = c_task_claim_batch,
    .task_progress_batch = c_task_progress_batch,
    .release_node_leases = c_release_node_leases,
    .pgroup_record = c_pgroup_record,
    .pgroup_clear = c_pgroup_clear,
    .pgroup_list = c_pgroup_list,
    .token_create = c_token_create,
    .token_list = c_token_list,
    .token_revoke = c_token_revoke,
    .token_by_hash = c_token_by_hash,
    .token_touch = c_token_touch,
    .remote_handover = c_remote_handover,
    .remote_take = c_remote_take,
    .worker_claim = c_worker_claim,
    .worker_heartbeat = c_worker_heartbeat,
    .worker_report = c_worker_report,
    .purge = c_purge,
    .webhook_create = c_webhook_create,
    .webhook_list = c_webhook_list,
    .webhook_get = c_webhook_get,
    .webhook_delete = c_webhook_delete,
    .webhook_deliveries = c_webhook_deliveries,
    .delivery_claim = c_delivery_claim,
    .delivery_finish = c_delivery_finish,
    .delivery_release_node = c_delivery_release_node,
};

struct store *store_cache_wrap(struct store *inner, bool shared)
{
    struct cache_store *cs = xcalloc(1, sizeof *cs);
    cs->base.ops = &cache_ops;
    cs->inner = inner;
    cs->shared = shared;
    for (size_t i = 0; i < TASK_SHARDS; i++)
        gate_init(&cs->shards[i]);
    gate_init(&cs->accounts_gate);
    gate_init(&cs->tokens_gate);
    gate_init(&cs->instances_gate);
    atomic_init(&cs->global_pending, 0);
    atomic_init(&cs->global_epoch, 0);
    atomic_init(&cs->retention_ms, 0);
    return &cs->base;
}

void store_cache_stats(struct store *s, struct store_cache_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!s || s->ops != &cache_ops)
        return;
    struct cache_store *cs = cs_of(s);
    for (size_t i = 0; i < TASK_SHARDS; i++) {
        out->task_hits += atomic_load(&cs->shards[i].hits);
        out->task_misses += atomic_load(&cs->shards[i].misses);
    }
    out->account_hits = atomic_load(&cs->accounts_gate.hits);
    out->account_misses = atomic_load(&cs->accounts_gate.misses);
    out->instance_hits = atomic_load(&cs->instances_gate.hits);
    out->instance_misses = atomic_load(&cs->instances_gate.misses);
}

void store_cache_set_retention(struct store *s, int64_t retention_ms)
{
    if (s && s->ops == &cache_ops)
        atomic_store(&cs_of(s)->retention_ms, retention_ms > 0 ? retention_ms : 0);
}
