/* The remote-step calls (DESIGN.md 5, docs/workers.md): external workers pull the steps whose
 * action is {"remote": {"kind": K, ...}} with POST /v1/workers/claim (a long-poll), keep them with
 * heartbeat and report them with complete or fail. A claim is a lease on the task, and its token
 * carries the task id and lease number: every call with it is fenced by that number, so a worker
 * whose lease expired, was claimed again or was taken back by an operator gets 409 and changes
 * nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin/admin_int.h"
#include "common/hex.h"
#include "common/timefmt.h"

#define CLAIM_MAX_STEPS  100
#define CLAIM_MAX_KINDS  32
#define CLAIM_MAX_WAIT_S 60 /* a long-poll holds a thread of the admin listener */
#define LEASE_DEFAULT_S  30
#define LEASE_MAX_S      600
#define CLAIM_POLL_MS    100 /* the store is polled, so steps handed over on any node are seen */
#define TOKEN_PREFIX     "w1."
#define WORKER_NAME_MAX  128

/* ---- the claim token: "w1.<lease_no>.<task id in hex>", opaque to workers ---- */

static json_t *token_of(const char *id, int64_t lease_no)
{
    char text[2 * STORE_ID_MAX + 48];
    int n = snprintf(text, sizeof text, TOKEN_PREFIX "%lld.", (long long)lease_no);
    for (const char *p = id; *p && n + 3 < (int)sizeof text; p++)
        n += snprintf(text + n, sizeof text - (size_t)n, "%02x", (unsigned char)*p);
    return json_string(text);
}

static int token_parse(const char *token, char id[STORE_ID_MAX], int64_t *lease_no, struct err *e)
{
    const char *bad = "token: not a claim token of POST /v1/workers/claim";
    if (!token || strncmp(token, TOKEN_PREFIX, strlen(TOKEN_PREFIX)) != 0)
        return err_set(e, ERR_BAD_REQUEST, "%s", bad);
    char *end;
    long long no = strtoll(token + strlen(TOKEN_PREFIX), &end, 10);
    if (no <= 0 || *end != '.')
        return err_set(e, ERR_BAD_REQUEST, "%s", bad);
    const char *hex = end + 1;
    size_t len = strlen(hex);
    if (len == 0 || len % 2 || len / 2 >= STORE_ID_MAX)
        return err_set(e, ERR_BAD_REQUEST, "%s", bad);
    for (size_t i = 0; i < len / 2; i++) {
        int hi = hex_digit_value(hex[2 * i]), lo = hex_digit_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
            return err_set(e, ERR_BAD_REQUEST, "%s", bad);
        id[i] = (char)(hi * 16 + lo);
    }
    id[len / 2] = '\0';
    *lease_no = no;
    return 0;
}

/* ---- body fields ---- */

static int body_int(const struct admin_req *r, const char *key, int64_t dflt, int64_t lo,
                    int64_t hi, int64_t *out, struct err *e)
{
    json_t *v = json_object_get(r->body, key);
    *out = dflt;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return err_set(e, ERR_BAD_REQUEST, "%s: expected an integer %lld..%lld", key, (long long)lo,
                       (long long)hi);
    *out = json_integer_value(v);
    return 0;
}

static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > WORKER_NAME_MAX)
        return false;
    for (; *s; s++)
        if (!(*s >= 'a' && *s <= 'z') && !(*s >= 'A' && *s <= 'Z') && !(*s >= '0' && *s <= '9') &&
            !strchr("._:@-", *s))
            return false;
    return true;
}

/* kinds: a non-empty array of non-empty strings, borrowed from the body into kinds[]. */
static int body_kinds(const struct admin_req *r, const char **kinds, size_t *n, struct err *e)
{
    json_t *arr = json_object_get(r->body, "kinds");
    size_t i;
    json_t *k;
    if (!json_is_array(arr) || json_array_size(arr) == 0 || json_array_size(arr) > CLAIM_MAX_KINDS)
        return err_set(e, ERR_BAD_REQUEST,
                       "kinds: expected an array of 1..%d step kinds (the \"kind\" of remote "
                       "actions), e.g. [\"backup\"]",
                       CLAIM_MAX_KINDS);
    json_array_foreach(arr, i, k)
    {
        if (!json_is_string(k) || !*json_string_value(k) || json_string_length(k) > 64)
            return err_set(e, ERR_BAD_REQUEST, "kinds[%zu]: expected a non-empty string", i);
        kinds[i] = json_string_value(k);
    }
    *n = json_array_size(arr);
    return 0;
}

struct claim_args {
    struct worker_claim_req req;
    const char *kinds[CLAIM_MAX_KINDS];
    int64_t wait_ms;
};

static int claim_args_parse(const struct admin_req *r, struct claim_args *c, struct err *e)
{
    const char *worker;
    int64_t max, wait_s, lease_s;
    int rc;
    if ((rc = admin_body_string(r, "worker", true, &worker, e)))
        return rc;
    if (!name_ok(worker))
        return err_set(e, ERR_BAD_REQUEST,
                       "worker: expected 1..%d letters, digits or ._:@- (a name for this worker, "
                       "shown in the task's events)",
                       WORKER_NAME_MAX);
    if ((rc = body_kinds(r, c->kinds, &c->req.n_kinds, e)) ||
        (rc = body_int(r, "max", 1, 1, CLAIM_MAX_STEPS, &max, e)) ||
        (rc = body_int(r, "wait_s", 0, 0, CLAIM_MAX_WAIT_S, &wait_s, e)) ||
        (rc = body_int(r, "lease_s", LEASE_DEFAULT_S, 1, LEASE_MAX_S, &lease_s, e)))
        return rc;
    c->req.worker = worker;
    c->req.kinds = c->kinds;
    c->req.max = (int)max;
    c->req.lease_ms = lease_s * 1000;
    c->wait_ms = wait_s * 1000;
    return 0;
}

/* Each claimed step gets its token; the lease number stays inside it. */
static void add_tokens(json_t *steps)
{
    size_t i;
    json_t *s;
    json_array_foreach(steps, i, s)
    {
        const char *id = json_string_value(json_object_get(s, "task"));
        int64_t no = json_integer_value(json_object_get(s, "lease_no"));
        json_object_set_new(s, "token", token_of(id ? id : "", no));
        json_object_del(s, "lease_no");
    }
}

int admin_worker_claim(struct admin *a, struct admin_req *r, json_t **out, int *status,
                       struct err *e)
{
    (void)status;
    struct claim_args c = {0};
    int rc = claim_args_parse(r, &c, e);
    if (rc)
        return rc;
    int64_t deadline = time_now_ms() + c.wait_ms;
    json_t *steps = NULL;
    for (;;) {
        if ((rc = store_worker_claim(a->cfg.store, &c.req, &steps, e)))
            return rc;
        if (json_array_size(steps) > 0 || time_now_ms() >= deadline)
            break;
        json_decref(steps);
        steps = NULL;
        struct timespec nap = {0, CLAIM_POLL_MS * 1000000L};
        nanosleep(&nap, NULL);
    }
    add_tokens(steps);
    *out = json_pack("{s:o, s:I}", "steps", steps, "lease_s", (json_int_t)(c.req.lease_ms / 1000));
    return 0;
}

static int body_token(const struct admin_req *r, char id[STORE_ID_MAX], int64_t *lease_no,
                      struct err *e)
{
    const char *token;
    int rc = admin_body_string(r, "token", true, &token, e);
    return rc ? rc : token_parse(token, id, lease_no, e);
}

int admin_worker_heartbeat(struct admin *a, struct admin_req *r, json_t **out, int *status,
                           struct err *e)
{
    (void)status;
    char id[STORE_ID_MAX];
    int64_t lease_no, lease_s;
    int rc = body_token(r, id, &lease_no, e);
    if (!rc)
        rc = body_int(r, "lease_s", LEASE_DEFAULT_S, 1, LEASE_MAX_S, &lease_s, e);
    if (rc)
        return rc;
    struct worker_lease lease;
    if ((rc = store_worker_heartbeat(a->cfg.store, id, lease_no, lease_s * 1000, &lease, e)))
        return rc;
    /* A pause waits for the step boundary: the worker may finish and report, or stop and let
     * its lease run out (the engine then pauses the task). */
    *out = json_pack("{s:s, s:I, s:b, s:b}", "task", id, "lease_expires_ms",
                     (json_int_t)lease.expires_ms, "pause_requested", lease.pause_requested,
                     "killed", 0);
    return 0;
}

static int report(struct admin *a, struct admin_req *r, bool done, json_t **out, struct err *e)
{
    char id[STORE_ID_MAX];
    int64_t lease_no;
    const char *message;
    int rc = body_token(r, id, &lease_no, e);
    if (!rc)
        rc = admin_body_string(r, "message", false, &message, e);
    if (rc)
        return rc;
    json_t *output = json_object_get(r->body, "output");
    if (output && !json_is_null(output) && (!done || !json_is_object(output)))
        return err_set(e, ERR_BAD_REQUEST,
                       done ? "output: expected a JSON object (kept for the step's undo)"
                            : "output: only complete takes an output");
    char *output_text = json_is_object(output) ? json_dumps(output, JSON_COMPACT) : NULL;
    struct worker_report rep = {.id = id,
                                .lease_no = lease_no,
                                .done = done,
                                .message = message,
                                .output_json = output_text};
    rc = store_worker_report(a->cfg.store, &rep, e);
    free(output_text);
    if (rc)
        return rc;
    if (a->cfg.on_change) /* the engine goes on with the task now */
        a->cfg.on_change(a->cfg.on_change_ctx);
    *out = json_pack("{s:s, s:s}", "task", id, "recorded", done ? "done" : "failed");
    return 0;
}

int admin_worker_complete(struct admin *a, struct admin_req *r, json_t **out, int *status,
                          struct err *e)
{
    (void)status;
    return report(a, r, true, out, e);
}

int admin_worker_fail(struct admin *a, struct admin_req *r, json_t **out, int *status,
                      struct err *e)
{
    (void)status;
    return report(a, r, false, out, e);
}
