/* The webhook dispatcher: claims due deliveries from the store's outbox, sends them with
 * libcurl's multi interface (one thread, many transfers at once, none blocking another), and
 * records each attempt. See webhooks.h for the guarantees. */
#include "daemon/webhooks.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/metrics.h"
#include "common/sha256.h"
#include "common/timefmt.h"
#include "common/version.h"
#include "common/xalloc.h"
#include "products/product.h"

#define MAX_IN_FLIGHT 32            /* transfers at once on one node */
#define POLL_MS       250           /* how often the outbox is asked when it had nothing due */
#define BACKOFF_CAP   (3600 * 1000) /* no retry waits longer than an hour */
/* A lease outlives the longest exchange (the timeout) by this much, so a live node's delivery
 * is never taken over while it is still being sent. */
#define LEASE_MARGIN_MS 20000

struct transfer {
    CURL *h;
    struct curl_slist *headers;
    char *body;
    struct webhook_delivery d;
    int64_t started_ms;
    char errbuf[CURL_ERROR_SIZE];
};

struct webhooks {
    struct webhooks_config cfg;
    char node[128];
    CURLM *multi;
    pthread_t thread;
    atomic_bool stop;
    struct transfer *inflight[MAX_IN_FLIGHT];
    int n_inflight;
    uint64_t rng;       /* xorshift state for the jitter */
    bool claim_failing; /* the last claim failed (logged once) */
};

void webhooks_signature(const char *secret, int64_t t, const char *body, size_t body_len, char *out,
                        size_t cap)
{
    char *msg = xasprintf("%lld.%.*s", (long long)t, (int)body_len, body);
    unsigned char mac[32];
    char hex[65];
    hmac_sha256(secret, strlen(secret), msg, mac);
    free(msg);
    hex_encode(mac, sizeof mac, hex);
    snprintf(out, cap, "t=%lld,v1=%s", (long long)t, hex);
}

char *webhooks_payload(const struct webhook_delivery *d)
{
    const struct product *p = product_by_name(d->product);
    const char *status =
        p && p->status_words[d->state] ? p->status_words[d->state] : task_state_name(d->state);
    char when[25];
    time_fmt_iso_utc(d->at_ms, when);
    json_t *j = json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "delivery",
                          (json_int_t)d->id, "event", d->event, "AsyncRequestId", d->task_id,
                          "product", d->product, "uin", d->uin, "state", task_state_name(d->state),
                          "status", status, "info", d->info, "time", when);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return text ? text : xstrdup("{}");
}

int64_t webhooks_backoff_ms(int64_t base_ms, int attempt)
{
    int64_t d = base_ms > 0 ? base_ms : 1;
    for (int i = 1; i < attempt && d < BACKOFF_CAP; i++)
        d *= 2;
    return d < BACKOFF_CAP ? d : BACKOFF_CAP;
}

/* The backoff with +-20% jitter, so the retries of many deliveries that failed together (an
 * endpoint that was down) do not all arrive together again. */
static int64_t jittered(struct webhooks *w, int attempt)
{
    w->rng ^= w->rng << 13;
    w->rng ^= w->rng >> 7;
    w->rng ^= w->rng << 17;
    int64_t d = webhooks_backoff_ms(w->cfg.backoff_ms, attempt);
    double f = 0.8 + 0.4 * (double)(w->rng % 10001) / 10000.0;
    return (int64_t)((double)d * f);
}

static size_t discard_body(char *ptr, size_t size, size_t nmemb, void *ctx)
{
    (void)ptr, (void)ctx;
    return size * nmemb;
}

static void transfer_free(struct transfer *t)
{
    if (!t)
        return;
    if (t->h)
        curl_easy_cleanup(t->h);
    curl_slist_free_all(t->headers);
    free(t->body);
    memset(t->d.secret, 0, sizeof t->d.secret);
    free(t);
}

static struct curl_slist *add_header(struct curl_slist *l, const char *name, const char *v)
{
    char line[256];
    snprintf(line, sizeof line, "%s: %s", name, v);
    return curl_slist_append(l, line);
}

static struct transfer *transfer_new(struct webhooks *w, const struct webhook_delivery *d)
{
    struct transfer *t = xcalloc(1, sizeof *t);
    t->d = *d;
    t->body = webhooks_payload(d);
    t->started_ms = time_now_ms();
    char sig[128], id[24];
    webhooks_signature(d->secret, t->started_ms / 1000, t->body, strlen(t->body), sig, sizeof sig);
    snprintf(id, sizeof id, "%lld", (long long)d->id);
    t->headers = curl_slist_append(NULL, "Content-Type: application/json");
    t->headers = add_header(t->headers, "X-Asyncd-Signature", sig);
    t->headers = add_header(t->headers, "X-Asyncd-Delivery", id);
    t->headers = add_header(t->headers, "X-Asyncd-Event", d->event);
    t->headers = curl_slist_append(t->headers, "Expect:"); /* no 100-continue round trip */
    t->h = curl_easy_init();
    if (!t->h) {
        transfer_free(t);
        return NULL;
    }
    curl_easy_setopt(t->h, CURLOPT_URL, d->url);
    curl_easy_setopt(t->h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(t->h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(t->h, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt(t->h, CURLOPT_POSTFIELDS, t->body);
    curl_easy_setopt(t->h, CURLOPT_POSTFIELDSIZE, (long)strlen(t->body));
    curl_easy_setopt(t->h, CURLOPT_TIMEOUT_MS, (long)w->cfg.timeout_ms);
    curl_easy_setopt(t->h, CURLOPT_USERAGENT, "asyncd/" ASYNCD_VERSION);
    curl_easy_setopt(t->h, CURLOPT_WRITEFUNCTION, discard_body);
    curl_easy_setopt(t->h, CURLOPT_ERRORBUFFER, t->errbuf);
    curl_easy_setopt(t->h, CURLOPT_PRIVATE, t);
    return t;
}

/* Records the attempt t ended with (curl result rc). A failure to record it leaves the lease to
 * expire, and the delivery is sent again: at least once. */
static void transfer_done(struct webhooks *w, struct transfer *t, CURLcode rc)
{
    long code = 0;
    curl_easy_getinfo(t->h, CURLINFO_RESPONSE_CODE, &code);
    int64_t now = time_now_ms();
    char why[CURL_ERROR_SIZE + 32];
    bool ok = rc == CURLE_OK && code >= 200 && code < 300;
    if (ok)
        why[0] = '\0';
    else if (rc != CURLE_OK)
        snprintf(why, sizeof why, "%s", t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc));
    else
        snprintf(why, sizeof why, "HTTP %ld", code);
    bool give_up = !ok && t->d.attempt >= w->cfg.max_attempts;
    struct delivery_result r = {.id = t->d.id,
                                .node = w->node,
                                .attempt = t->d.attempt,
                                .delivered = ok,
                                .give_up = give_up,
                                .http_status = rc == CURLE_OK ? (int)code : 0,
                                .error = why,
                                .now_ms = now,
                                .next_ms = ok || give_up ? now : now + jittered(w, t->d.attempt),
                                .took_ms = now - t->started_ms};
    /* Counted per attempt, whatever the store then says: the receiver was called either way. */
    metrics_webhook_delivery(ok ? "delivered" : give_up ? "failed" : "retry");
    struct err e = {0};
    if (store_delivery_finish(w->cfg.store, &r, &e) != 0)
        log_warn("webhook delivery %lld: %s", (long long)t->d.id, e.msg);
    else if (give_up)
        log_warn("webhook delivery %lld to %s failed after %d attempts: %s", (long long)t->d.id,
                 t->d.webhook_id, t->d.attempt, why);
    else if (!ok)
        log_info("webhook delivery %lld to %s: attempt %d: %s; retrying", (long long)t->d.id,
                 t->d.webhook_id, t->d.attempt, why);
    else
        log_debug("webhook delivery %lld to %s delivered (attempt %d)", (long long)t->d.id,
                  t->d.webhook_id, t->d.attempt);
}

static void drop_inflight(struct webhooks *w, struct transfer *t)
{
    for (int i = 0; i < w->n_inflight; i++)
        if (w->inflight[i] == t) {
            w->inflight[i] = w->inflight[--w->n_inflight];
            break;
        }
    curl_multi_remove_handle(w->multi, t->h);
    transfer_free(t);
}

/* Claims what is due (up to the room left) and starts sending it; returns how many. */
static size_t claim_more(struct webhooks *w)
{
    int room = MAX_IN_FLIGHT - w->n_inflight;
    if (room <= 0)
        return 0;
    struct delivery_claim_req rq = {.node = w->node,
                                    .now_ms = time_now_ms(),
                                    .lease_ms = w->cfg.timeout_ms + LEASE_MARGIN_MS,
                                    .max = room,
                                    .per_webhook = w->cfg.per_webhook};
    struct webhook_delivery *ds = NULL;
    size_t n = 0;
    struct err e = {0};
    if (store_delivery_claim(w->cfg.store, &rq, &ds, &n, &e) != 0) {
        /* Once per outage, not four times a second while the store is down. */
        if (!w->claim_failing)
            log_warn("webhooks: claiming deliveries: %s (retrying quietly)", e.msg);
        w->claim_failing = true;
        return 0;
    }
    if (w->claim_failing)
        log_info("webhooks: claiming deliveries again");
    w->claim_failing = false;
    for (size_t i = 0; i < n; i++) {
        struct transfer *t = transfer_new(w, &ds[i]);
        if (!t) {
            log_error("webhooks: cannot start a transfer; delivery %lld waits for its lease",
                      (long long)ds[i].id);
            continue;
        }
        w->inflight[w->n_inflight++] = t;
        curl_multi_add_handle(w->multi, t->h);
    }
    for (size_t i = 0; i < n; i++)
        memset(ds[i].secret, 0, sizeof ds[i].secret);
    free(ds);
    return n;
}

static void reap_finished(struct webhooks *w)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(w->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct transfer *t = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        CURLcode rc = m->data.result;
        transfer_done(w, t, rc);
        drop_inflight(w, t);
    }
}

static void *dispatch_loop(void *arg)
{
    struct webhooks *w = arg;
    pthread_setname_np(pthread_self(), "webhooks");
    int64_t next_claim = 0;
    while (!atomic_load(&w->stop)) {
        int64_t now = time_now_ms();
        if (now >= next_claim) {
            size_t got = claim_more(w);
            /* A full claim may leave more due: ask again at once while there is room. */
            next_claim = got > 0 && w->n_inflight < MAX_IN_FLIGHT ? now : now + POLL_MS;
        }
        int running = 0;
        curl_multi_perform(w->multi, &running);
        reap_finished(w);
        int64_t wait = next_claim - time_now_ms();
        if (wait > POLL_MS)
            wait = POLL_MS;
        if (wait > 0)
            curl_multi_poll(w->multi, NULL, 0, (int)wait, NULL);
    }
    return NULL;
}

int webhooks_start(const struct webhooks_config *cfg, struct webhooks **out, struct err *e)
{
    *out = NULL;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return err_set(e, ERR_INTERNAL, "webhooks: libcurl does not initialise");
    struct webhooks *w = xcalloc(1, sizeof *w);
    w->cfg = *cfg;
    snprintf(w->node, sizeof w->node, "%s", cfg->node);
    w->cfg.node = w->node;
    w->rng = (uint64_t)time_mono_ns() | 1;
    atomic_init(&w->stop, false);
    struct err re = {0};
    /* This node is starting: whatever it held before was being sent by a process now gone. */
    if (store_delivery_release_node(cfg->store, w->node, &re) != 0)
        log_warn("webhooks: releasing this node's earlier deliveries: %s (they wait for their "
                 "leases to expire)",
                 re.msg);
    w->multi = curl_multi_init();
    if (!w->multi || pthread_create(&w->thread, NULL, dispatch_loop, w) != 0) {
        if (w->multi)
            curl_multi_cleanup(w->multi);
        free(w);
        curl_global_cleanup();
        return err_set(e, ERR_INTERNAL, "webhooks: cannot start the dispatcher");
    }
    *out = w;
    return 0;
}

void webhooks_stop(struct webhooks *w)
{
    if (!w)
        return;
    atomic_store(&w->stop, true);
    curl_multi_wakeup(w->multi);
    pthread_join(w->thread, NULL);
    while (w->n_inflight > 0)
        drop_inflight(w, w->inflight[0]);
    struct err e = {0};
    if (store_delivery_release_node(w->cfg.store, w->node, &e) != 0)
        log_warn("webhooks: giving back deliveries in flight: %s", e.msg);
    curl_multi_cleanup(w->multi);
    free(w);
    curl_global_cleanup();
}
