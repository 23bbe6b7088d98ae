/* store_cache: a store that answers the hot reads (account by SecretId or Uin, task summary,
 * instance, and in exclusive mode admin token) from memory and passes everything else to the
 * backend it wraps. Every write op of struct store_ops goes through it and invalidates what it may
 * change, before and after the backend runs it, so a reader that starts after a write returns never
 * sees the state before it.
 *
 * Modes (chosen by store_open from the backend):
 * - exclusive (SQLite: one process owns the file): every task summary, account and instance is
 *   cached and kept exact by write-through invalidation.
 * - shared (PostgreSQL: several nodes write one database): only task summaries in a final state
 *   are cached (final states never change, DESIGN.md 4); a non-final state is always read from
 *   the store, so no node ever answers an older state than the store holds and a final state is
 *   seen as soon as the store has it (staleness bound 0). Admin tokens are not cached: a
 *   revocation through another node holds here at the next request. Accounts and instances are
 * cached for STORE_CACHE_SHARED_TTL_MS: a policy, key or instance status change made through
 *   another node is honoured here within that bound (at once for writes through this node);
 *   so is a key pair or an account disabled or deleted there. A refused lookup (unknown,
 *   disabled or deleted SecretId) is never cached, in either mode.
 */
#ifndef ASYNCD_STORE_CACHE_H
#define ASYNCD_STORE_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

#define STORE_CACHE_SHARED_TTL_MS 1000

/* Wraps inner (ownership moves to the result: store_close closes both). shared: other nodes
 * write the same store. Never fails. */
struct store *store_cache_wrap(struct store *inner, bool shared);

/* Hit and miss counts since the wrap, for tests and /metrics; zero for a store not wrapped. */
struct store_cache_stats {
    unsigned long long task_hits, task_misses, account_hits, account_misses;
    unsigned long long instance_hits, instance_misses;
};
void store_cache_stats(struct store *s, struct store_cache_stats *out);

/* Tells the cache the --retention (ms; 0 = forever): a cached task that ended longer ago counts
 * as a miss, so a node never answers a task another node purged (a purge through this node
 * drops its entries at once). No effect on a store not wrapped. */
void store_cache_set_retention(struct store *s, int64_t retention_ms);

#endif
