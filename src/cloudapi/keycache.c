/* keycache: TC3 signing keys in a direct-mapped table of slots, each behind its own mutex.
 *
 * Why: deriving kSigning is three HMAC-SHA256 calls, 4.6 us on the 2-core test VM (OpenSSL 3's
 * one-shot HMAC sets up a fresh context each time): about as much as the rest of the signature
 * check together. Keyed by FNV-1a of the three strings; a collision just overwrites. */
#include "cloudapi/keycache.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cloudapi/sign.h"
#include "common/xalloc.h"

#define SLOTS 256 /* a power of two */

struct slot {
    pthread_mutex_t mu;
    bool used;
    char secret_key[80];
    char date[16];
    char service[64];
    unsigned char key[32];
};

struct keycache {
    struct slot slots[SLOTS];
};

struct keycache *keycache_new(void)
{
    struct keycache *kc = xcalloc(1, sizeof *kc);
    for (size_t i = 0; i < SLOTS; i++)
        pthread_mutex_init(&kc->slots[i].mu, NULL);
    return kc;
}

void keycache_free(struct keycache *kc)
{
    if (!kc)
        return;
    for (size_t i = 0; i < SLOTS; i++)
        pthread_mutex_destroy(&kc->slots[i].mu);
    /* the slots held secrets */
    memset(kc->slots, 0, sizeof kc->slots);
    free(kc);
}

static uint32_t fnv1a(uint32_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return (h ^ 0xff) * 16777619u; /* a separator, so ("ab","c") and ("a","bc") differ */
}

static bool fits(const char *s, size_t cap) { return strlen(s) < cap; }

static bool slot_matches(const struct slot *sl, const char *secret_key, const char *date,
                         const char *service)
{
    return sl->used && strcmp(sl->secret_key, secret_key) == 0 && strcmp(sl->date, date) == 0 &&
           strcmp(sl->service, service) == 0;
}

void keycache_tc3_signing_key(struct keycache *kc, const char *secret_key, const char *date,
                              const char *service, unsigned char out[32])
{
    struct slot *sl = NULL;
    if (kc && fits(secret_key, sizeof sl->secret_key) && fits(date, sizeof sl->date) &&
        fits(service, sizeof sl->service)) {
        uint32_t h = fnv1a(fnv1a(fnv1a(2166136261u, secret_key), date), service);
        sl = &kc->slots[h & (SLOTS - 1)];
        pthread_mutex_lock(&sl->mu);
        bool hit = slot_matches(sl, secret_key, date, service);
        if (hit)
            memcpy(out, sl->key, 32);
        pthread_mutex_unlock(&sl->mu);
        if (hit)
            return;
    }
    sign_tc3_signing_key(secret_key, date, service, out);
    if (!sl)
        return;
    pthread_mutex_lock(&sl->mu);
    sl->used = true;
    strcpy(sl->secret_key, secret_key);
    strcpy(sl->date, date);
    strcpy(sl->service, service);
    memcpy(sl->key, out, 32);
    pthread_mutex_unlock(&sl->mu);
}
