/* The retention sweeper: one thread, a sweep every few seconds, each sweep batches of
 * store_purge until nothing is left, with a short pause between batches so that the store's one
 * writer (SQLite) keeps serving the engine and the APIs in between. */
#include "daemon/retention.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/metrics.h"
#include "common/xalloc.h"
#include "store/store_cache.h"

#define RETENTION_MIN_EVERY_MS 1000
#define RETENTION_PAUSE_MS     50 /* between two batches of one sweep */

struct retention {
    struct retention_config cfg;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t wake; /* signalled by retention_stop */
    bool stopping;       /* under mu */
};

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits ms or until retention_stop; true when stopping. */
static bool pause_ms(struct retention *r, int64_t ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&r->mu);
    while (!r->stopping && pthread_cond_timedwait(&r->wake, &r->mu, &until) != ETIMEDOUT) {
    }
    bool stopping = r->stopping;
    pthread_mutex_unlock(&r->mu);
    return stopping;
}

/* One sweep: batches until one comes back short. */
static void sweep(struct retention *r)
{
    int64_t now = wall_ms();
    struct purge_req req = {
        .tasks_before_ms = r->cfg.retention_ms > 0 ? now - r->cfg.retention_ms : 0,
        .keys_before_ms = now - RETENTION_KEYS_TTL_MS,
        .max = r->cfg.batch,
    };
    size_t tasks = 0;
    int64_t keys = 0;
    for (;;) {
        struct purge_result res;
        struct err e = {0};
        if (store_purge(r->cfg.store, &req, &res, &e) != 0) {
            log_warn("retention: %s (trying again at the next sweep)", e.msg);
            break;
        }
        free(res.ids);
        metrics_retention_purged(res.n_tasks, (uint64_t)res.n_keys);
        tasks += res.n_tasks;
        keys += res.n_keys;
        if ((res.n_tasks < req.max && (size_t)res.n_keys < req.max) ||
            pause_ms(r, RETENTION_PAUSE_MS))
            break;
    }
    if (tasks > 0 || keys > 0)
        log_info("retention: purged %zu finished tasks and %lld idempotency keys", tasks,
                 (long long)keys);
}

static void *retention_main(void *arg)
{
    struct retention *r = arg;
    pthread_setname_np(pthread_self(), "retention");
    do
        sweep(r);
    while (!pause_ms(r, r->cfg.every_ms));
    return NULL;
}

static int64_t default_every_ms(int64_t retention_ms)
{
    int64_t every = retention_ms > 0 ? retention_ms / 10 : RETENTION_MAX_EVERY_MS;
    if (every < RETENTION_MIN_EVERY_MS)
        every = RETENTION_MIN_EVERY_MS;
    return every > RETENTION_MAX_EVERY_MS ? RETENTION_MAX_EVERY_MS : every;
}

int retention_start(const struct retention_config *cfg, struct retention **out, struct err *e)
{
    struct retention *r = xcalloc(1, sizeof *r);
    r->cfg = *cfg;
    if (r->cfg.every_ms <= 0)
        r->cfg.every_ms = default_every_ms(cfg->retention_ms);
    if (r->cfg.batch == 0)
        r->cfg.batch = RETENTION_BATCH;
    pthread_mutex_init(&r->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->wake, &ca);
    pthread_condattr_destroy(&ca);
    store_cache_set_retention(cfg->store, cfg->retention_ms);
    int err = pthread_create(&r->thread, NULL, retention_main, r);
    if (err != 0) {
        pthread_cond_destroy(&r->wake);
        pthread_mutex_destroy(&r->mu);
        free(r);
        return err_set(e, ERR_INTERNAL, "retention: cannot start its thread: %s", strerror(err));
    }
    if (cfg->retention_ms > 0)
        log_info("retention: finished tasks are kept %lld s; sweeping every %lld ms",
                 (long long)(cfg->retention_ms / 1000), (long long)r->cfg.every_ms);
    else
        log_info("retention: off, finished tasks are kept forever");
    *out = r;
    return 0;
}

void retention_stop(struct retention *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->stopping = true;
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    pthread_cond_destroy(&r->wake);
    pthread_mutex_destroy(&r->mu);
    free(r);
}
