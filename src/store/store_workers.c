/* Remote steps: the rules both backends share (store_workers.h). */
#include "store/store_workers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int store_worker_lease_check(const char *id, int64_t lease_no, const struct worker_row *row,
                             int64_t now, struct err *e)
{
    if (!row->found)
        return err_set(e, ERR_CONFLICT, "task %s no longer exists", id);
    if (row->state != TASK_RUNNING)
        return err_set(e, ERR_CONFLICT,
                       "task %s is %s now (an operator or the engine moved it): stop working on "
                       "its step",
                       id, task_state_name(row->state));
    if (row->lease_no != lease_no)
        return err_set(e, ERR_CONFLICT,
                       "lease %lld of task %s is no longer current (it is at lease %lld: the step "
                       "was claimed again or taken back): stop working on it",
                       (long long)lease_no, id, (long long)row->lease_no);
    if (!row->held_by_worker)
        return err_set(e, ERR_CONFLICT,
                       "task %s is not held by a worker under lease %lld (its result was "
                       "recorded already)",
                       id, (long long)lease_no);
    if (row->lease_expires_ms <= now)
        return err_set(e, ERR_CONFLICT,
                       "lease %lld of task %s expired %lld ms ago; the step may be claimed again "
                       "(heartbeat sooner)",
                       (long long)lease_no, id, (long long)(now - row->lease_expires_ms));
    return 0;
}

static json_t *parsed_or_null(const char *text)
{
    json_t *j = text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
    return j ? j : json_null();
}

json_t *store_worker_step_json(const char *id, int step, const char *phase, const char *name,
                               const char *action_json, const char *input_json, int attempt,
                               int64_t lease_no, int64_t expires_ms)
{
    json_t *action = parsed_or_null(action_json);
    json_t *remote = json_object_get(action, "remote");
    json_t *args = json_object_get(remote, "args");
    json_t *o = json_object();
    json_object_set_new(o, "task", json_string(id));
    json_object_set_new(o, "step", json_integer(step));
    json_object_set_new(o, "phase", json_string(phase));
    json_object_set_new(o, "kind", json_incref(json_object_get(remote, "kind")));
    json_object_set_new(o, "args", args ? json_incref(args) : json_object());
    json_object_set_new(o, "input", parsed_or_null(input_json));
    json_object_set_new(o, "name", json_string(name ? name : ""));
    json_object_set_new(o, "attempt", json_integer(attempt + 1));
    json_object_set_new(o, "lease_no", json_integer(lease_no));
    json_object_set_new(o, "lease_expires_ms", json_integer(expires_ms));
    json_decref(action);
    return o;
}

char *store_worker_result_text(const struct worker_report *r, int step, const char *phase)
{
    json_t *o = json_object();
    json_object_set_new(o, "outcome", json_string(r->done ? "done" : "failed"));
    json_object_set_new(o, "message", json_string(r->message ? r->message : ""));
    json_t *output = r->done && r->output_json ? json_loads(r->output_json, 0, NULL) : NULL;
    json_object_set_new(o, "output", output ? output : json_null());
    json_object_set_new(o, "worker", json_string(r->worker ? r->worker : ""));
    json_object_set_new(o, "step", json_integer(step));
    json_object_set_new(o, "phase", json_string(phase ? phase : "do"));
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return text;
}

void store_worker_result_parse(const char *text, int step, const char *phase, json_t **out)
{
    *out = NULL;
    json_t *j = text ? json_loads(text, 0, NULL) : NULL;
    const char *p = json_string_value(json_object_get(j, "phase"));
    if (json_integer_value(json_object_get(j, "step")) == step && p && strcmp(p, phase) == 0)
        *out = j;
    else
        json_decref(j);
}

int store_worker_claim_check(const struct worker_claim_req *r, struct err *e)
{
    if (!r->worker || !*r->worker)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "worker_claim: no worker name");
    if (r->n_kinds == 0 || !r->kinds)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "worker_claim: no kinds");
    if (r->max < 1 || r->lease_ms < 1)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "worker_claim: max and lease must be > 0");
    return 0;
}
