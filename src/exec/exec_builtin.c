/* Built-in actions that start no child: {"noop": {}} and {"sleep": {"s": N}} or
 * {"sleep": {"until": "RFC 3339 time"}}. A sleep's waiting is the engine's (engine_run.c hands
 * the task back with not_before_ms = its wake time, so no thread waits); by the time it runs
 * here its wake time has come and it is done at once. */
#include "exec/exec_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/json_keys.h"
#include "common/timefmt.h"

#define SLEEP_MAX_S 31536000 /* one year */

/* The action is exactly {NAME: {...}} and its body's keys are among names[0..n). */
static int check_body(const json_t *action, const char *name, const char *const *names, size_t n,
                      struct err *e)
{
    const json_t *body = json_object_get(action, name);
    if (!json_is_object(body))
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "%s: expected an object, got %s", name,
                       json_kind_phrase(body));
    if (json_object_size(action) != 1)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                       "action: a %s action has only the \"%s\" key", name, name);
    if (n == 0 && json_object_size(body) > 0)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                       "%s: unknown field \"%.64s\" (a %s action takes no fields: {})", name,
                       json_object_iter_key(json_object_iter((json_t *)body)), name);
    return json_keys_check(body, names, n, name, e);
}

static int noop_validate(const json_t *action, struct err *e)
{
    return check_body(action, "noop", NULL, 0, e);
}

static int done_at_once(const struct exec_job *job, const struct exec_control *ctl,
                        struct exec_result *out, struct err *e)
{
    (void)job;
    (void)ctl;
    (void)e;
    out->outcome = EXEC_DONE;
    out->exit_code = 0;
    out->message[0] = '\0'; /* silent: the task's Info stays what an earlier step said */
    return 0;
}

const struct exec_backend exec_noop_backend = {"noop", noop_validate, done_at_once, NULL};

static const char *const sleep_keys[] = {"s", "until"};

static int sleep_validate(const json_t *action, struct err *e)
{
    int rc = check_body(action, "sleep", sleep_keys, 2, e);
    if (rc < 0)
        return rc;
    const json_t *body = json_object_get(action, "sleep");
    const json_t *s = json_object_get(body, "s"), *until = json_object_get(body, "until");
    if (!s == !until)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                       "sleep: expected \"s\" (seconds) or \"until\" (an RFC 3339 time), %s",
                       s ? "not both" : "got neither");
    if (s) {
        double v = json_number_value(s);
        if (!json_is_number(s) || !isfinite(v) || v < 0 || v > SLEEP_MAX_S)
            return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                           "sleep.s: expected a number of seconds 0..%d (one year), got %s",
                           SLEEP_MAX_S,
                           json_is_number(s) ? "a number out of range" : json_kind_phrase(s));
        return 0;
    }
    int64_t ms;
    if (!json_is_string(until) || time_parse_rfc3339(json_string_value(until), &ms) != 0)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                       "sleep.until: expected an RFC 3339 time such as "
                       "\"2026-11-23T04:00:00Z\" or \"2026-11-23T12:00:00+08:00\", got %s%.64s%s",
                       json_is_string(until) ? "\"" : json_kind_phrase(until),
                       json_is_string(until) ? json_string_value(until) : "",
                       json_is_string(until) ? "\"" : "");
    return 0;
}

const struct exec_backend exec_sleep_backend = {"sleep", sleep_validate, done_at_once, NULL};

bool exec_sleep_wake_ms(const json_t *action, int64_t from_ms, int64_t *wake_ms)
{
    const json_t *body = json_object_get(action, "sleep");
    struct err ignored;
    if (!body || sleep_validate(action, &ignored) != 0)
        return false;
    const json_t *until = json_object_get(body, "until");
    if (until)
        return time_parse_rfc3339(json_string_value(until), wake_ms) == 0;
    *wake_ms = from_ms + (int64_t)(json_number_value(json_object_get(body, "s")) * 1000.0 + 0.5);
    return true;
}
