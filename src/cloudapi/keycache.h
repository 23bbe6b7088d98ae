/* A cache of TC3 signing keys. kSigning depends only on the SecretKey, the UTC date and the
 * service, so it is derived once per account, day and service rather than on every request. */
#ifndef ASYNCD_KEYCACHE_H
#define ASYNCD_KEYCACHE_H

struct keycache;

/* A fixed-size cache (a few hundred keys; older entries are overwritten). Free with
 * keycache_free. */
struct keycache *keycache_new(void);
void keycache_free(struct keycache *kc);

/* out = sign_tc3_signing_key(secret_key, date, service), from the cache when it holds it. Safe
 * from any thread. kc NULL derives every time. An entry matches only the exact SecretKey, so a
 * rotated key never meets an old entry. It is asked only with a SecretKey the store has just
 * handed out for an enabled key of an enabled account (store_account_by_secret_id refuses the
 * others), so it needs no invalidation when a key or an account is disabled or deleted: an entry
 * of such a key is never reached again, and is overwritten in time. */
void keycache_tc3_signing_key(struct keycache *kc, const char *secret_key, const char *date,
                              const char *service, unsigned char out[32]);

#endif
