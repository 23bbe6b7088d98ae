/* Sliding-window request limiter per (uin, product, action): a ring of recent admission times. */
#include "cloudapi/ratelimit.h"

#include <assert.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

/* Memory: one entry per key that was admitted within the last second, plus idle ones not yet
 * swept. An entry holds a ring of at most N admission times (grown on demand, so a key costs what
 * its traffic needs, never more than N * 8 bytes). Idle entries -- whose newest admission is a
 * full window old, which makes them indistinguishable from a fresh key -- are freed lazily: when
 * a lookup walks past them in their bucket, and in a sweep of the stripe before it grows. */

#define RL_WINDOW_NS   1000000000LL
#define RL_STRIPES     64 /* power of two; the top bits of the hash pick the stripe */
#define RL_STRIPE_BITS 6
#define RL_MAX_LIMIT   1000000u
_Static_assert(RL_STRIPES == 1 << RL_STRIPE_BITS, "stripe count and bits disagree");
#define RL_NAME_MAX 64

struct rl_rule {
    char product[RL_NAME_MAX + 1]; /* "*" matches any */
    char action[RL_NAME_MAX + 1];
    uint32_t n;
};

struct rl_entry {
    struct rl_entry *next; /* bucket chain */
    uint64_t hash;
    int64_t *times; /* ring of admission times, oldest at head, non-decreasing */
    uint32_t head, count, cap;
    size_t keylen;
    char key[]; /* "uin\0product\0action" */
};

/* Each stripe is an independent hash table under its own mutex, so threads working on different
 * keys rarely contend. The padding keeps two stripes' hot fields off one cache line. */
struct rl_stripe {
    pthread_mutex_t mu;
    struct rl_entry **buckets;
    size_t nbuckets, count; /* nbuckets is a power of two */
    char pad[64];
};

struct ratelimit {
    /* Rules are only added at startup, before any thread calls ratelimit_take, so readers need no
     * lock; changing limits while threads run is not supported. */
    struct rl_rule *rules;
    size_t nrules, caprules;
    struct rl_stripe stripes[RL_STRIPES];
};

struct ratelimit *ratelimit_new(void)
{
    struct ratelimit *rl = xcalloc(1, sizeof *rl);
    for (size_t i = 0; i < RL_STRIPES; i++) {
        pthread_mutex_init(&rl->stripes[i].mu, NULL);
        rl->stripes[i].nbuckets = 16;
        rl->stripes[i].buckets = xcalloc(16, sizeof *rl->stripes[i].buckets);
    }
    static const char *const defaults[] = {"*:*=20", "cdb:DescribeAsyncRequestInfo=40",
                                           "mongodb:DescribeAsyncRequestInfo=20"};
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++) {
        int rc = ratelimit_add_rule(rl, defaults[i], NULL);
        assert(rc == 0);
        (void)rc;
    }
    return rl;
}

static void entry_free(struct rl_entry *en)
{
    free(en->times);
    free(en);
}

void ratelimit_free(struct ratelimit *rl)
{
    if (!rl)
        return;
    for (size_t i = 0; i < RL_STRIPES; i++) {
        struct rl_stripe *st = &rl->stripes[i];
        for (size_t b = 0; b < st->nbuckets; b++) {
            for (struct rl_entry *en = st->buckets[b], *next; en; en = next) {
                next = en->next;
                entry_free(en);
            }
        }
        free(st->buckets);
        pthread_mutex_destroy(&st->mu);
    }
    free(rl->rules);
    free(rl);
}

/* A rule part: "*" or a name of letters, digits, '_' and '-'. */
static bool valid_part(const char *s, size_t len)
{
    if (len == 1 && s[0] == '*')
        return true;
    if (len == 0 || len > RL_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

static bool parse_count(const char *s, uint32_t *out)
{
    uint64_t v = 0;
    if (!*s)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > RL_MAX_LIMIT)
            return false;
    }
    *out = (uint32_t)v;
    return true;
}

int ratelimit_add_rule(struct ratelimit *rl, const char *spec, struct err *e)
{
    const char *eq = spec ? strrchr(spec, '=') : NULL;
    struct rl_rule r = {.product = "*", .action = "*"};
    if (!eq || !parse_count(eq + 1, &r.n))
        return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                       "rate limit \"%.80s\": expected PRODUCT:ACTION=N or *=N with N a whole "
                       "number from 0 (unlimited) to %u",
                       spec ? spec : "", RL_MAX_LIMIT);
    size_t lhs = (size_t)(eq - spec);
    const char *colon = memchr(spec, ':', lhs);
    if (!colon) {
        if (lhs != 1 || spec[0] != '*')
            return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                           "rate limit \"%.80s\": expected PRODUCT:ACTION=N (e.g. "
                           "cdb:DescribeAsyncRequestInfo=40, cdb:*=5) or *=N",
                           spec);
    } else {
        size_t plen = (size_t)(colon - spec), alen = lhs - plen - 1;
        if (!valid_part(spec, plen) || !valid_part(colon + 1, alen))
            return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                           "rate limit \"%.80s\": PRODUCT and ACTION must each be '*' or a name "
                           "of letters, digits, '_' or '-' (at most %d characters)",
                           spec, RL_NAME_MAX);
        memcpy(r.product, spec, plen);
        r.product[plen] = '\0';
        memcpy(r.action, colon + 1, alen);
        r.action[alen] = '\0';
    }
    if (rl->nrules == rl->caprules) {
        rl->caprules = rl->caprules ? rl->caprules * 2 : 8;
        rl->rules = xrealloc(rl->rules, rl->caprules * sizeof *rl->rules);
    }
    rl->rules[rl->nrules++] = r;
    return 0;
}

static bool part_matches(const char *pattern, const char *s)
{
    return (pattern[0] == '*' && pattern[1] == '\0') || strcmp(pattern, s) == 0;
}

uint32_t ratelimit_limit(const struct ratelimit *rl, const char *product, const char *action)
{
    for (size_t i = rl->nrules; i-- > 0;) /* newest first: later rules win */
        if (part_matches(rl->rules[i].product, product) &&
            part_matches(rl->rules[i].action, action))
            return rl->rules[i].n;
    return 0;
}

static uint64_t fnv1a(const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static int64_t newest(const struct rl_entry *en)
{
    return en->times[(en->head + en->count - 1) % en->cap];
}

/* Drops admissions that left the window (now - 1 s, now]. */
static void expire(struct rl_entry *en, int64_t now_ns)
{
    while (en->count && en->times[en->head] <= now_ns - RL_WINDOW_NS) {
        en->head = (en->head + 1) % en->cap;
        en->count--;
    }
}

static bool idle(struct rl_entry *en, int64_t now_ns)
{
    return en->count == 0 || newest(en) <= now_ns - RL_WINDOW_NS;
}

/* Frees every idle entry of the stripe (called with its lock held). */
static void stripe_sweep(struct rl_stripe *st, int64_t now_ns)
{
    for (size_t b = 0; b < st->nbuckets; b++) {
        for (struct rl_entry **pp = &st->buckets[b]; *pp;) {
            struct rl_entry *en = *pp;
            if (idle(en, now_ns)) {
                *pp = en->next;
                entry_free(en);
                st->count--;
            } else {
                pp = &en->next;
            }
        }
    }
}

static void stripe_grow(struct rl_stripe *st)
{
    size_t nb = st->nbuckets * 2;
    struct rl_entry **buckets = xcalloc(nb, sizeof *buckets);
    for (size_t b = 0; b < st->nbuckets; b++) {
        for (struct rl_entry *en = st->buckets[b], *next; en; en = next) {
            next = en->next;
            en->next = buckets[en->hash & (nb - 1)];
            buckets[en->hash & (nb - 1)] = en;
        }
    }
    free(st->buckets);
    st->buckets = buckets;
    st->nbuckets = nb;
}

/* Finds or creates the entry for key, evicting idle entries met on the way (lock held). */
static struct rl_entry *stripe_get(struct rl_stripe *st, const char *key, size_t keylen,
                                   uint64_t hash, int64_t now_ns)
{
    for (struct rl_entry **pp = &st->buckets[hash & (st->nbuckets - 1)]; *pp;) {
        struct rl_entry *en = *pp;
        if (en->hash == hash && en->keylen == keylen && memcmp(en->key, key, keylen) == 0)
            return en;
        if (idle(en, now_ns)) {
            *pp = en->next;
            entry_free(en);
            st->count--;
        } else {
            pp = &en->next;
        }
    }
    if (st->count >= st->nbuckets) {
        stripe_sweep(st, now_ns);
        if (st->count >= st->nbuckets / 2)
            stripe_grow(st);
    }
    struct rl_entry *en = xcalloc(1, sizeof *en + keylen);
    memcpy(en->key, key, keylen);
    en->keylen = keylen;
    en->hash = hash;
    size_t b = hash & (st->nbuckets - 1);
    en->next = st->buckets[b];
    st->buckets[b] = en;
    st->count++;
    return en;
}

/* Appends t to the ring, growing it (up to limit slots) when full. */
static void ring_push(struct rl_entry *en, int64_t t, uint32_t limit)
{
    if (en->count == en->cap) {
        uint32_t cap = en->cap ? en->cap * 2 : 4;
        if (cap > limit)
            cap = limit;
        int64_t *times = xmalloc(cap * sizeof *times);
        for (uint32_t i = 0; i < en->count; i++)
            times[i] = en->times[(en->head + i) % en->cap];
        free(en->times);
        en->times = times;
        en->cap = cap;
        en->head = 0;
    }
    /* Threads read the clock before taking the lock, so a slightly older time can arrive after a
     * newer one; recording the larger keeps the ring ordered and errs towards refusing. */
    if (en->count && newest(en) > t)
        t = newest(en);
    en->times[(en->head + en->count) % en->cap] = t;
    en->count++;
}

bool ratelimit_take(struct ratelimit *rl, const char *uin, const char *product, const char *action,
                    int64_t now_ns)
{
    uint32_t limit = ratelimit_limit(rl, product, action);
    if (limit == 0)
        return true;
    size_t lu = strlen(uin), lp = strlen(product), la = strlen(action);
    size_t keylen = lu + lp + la + 2;
    char small[256];
    char *key = keylen <= sizeof small ? small : xmalloc(keylen);
    memcpy(key, uin, lu + 1);
    memcpy(key + lu + 1, product, lp + 1);
    memcpy(key + lu + lp + 2, action, la);
    uint64_t hash = fnv1a(key, keylen);
    struct rl_stripe *st = &rl->stripes[hash >> (64 - RL_STRIPE_BITS)];

    pthread_mutex_lock(&st->mu);
    struct rl_entry *en = stripe_get(st, key, keylen, hash, now_ns);
    expire(en, now_ns);
    bool admitted = en->count < limit;
    if (admitted)
        ring_push(en, now_ns, limit);
    pthread_mutex_unlock(&st->mu);

    if (key != small)
        free(key);
    return admitted;
}
