/* Remote steps ({"remote": {"kind": "K", "args": {...}}}) in a task the engine drives: the step is
 * done by an external worker that pulls it (POST /v1/workers/claim, admin/admin_workers.c). The
 * first time the engine reaches such a step it hands the task over -- the lease is released and
 * the task waits for a worker of kind K, claimed by no engine node -- much as a sleep step hands
 * its lease back. When the worker has reported, the engine claims the task again and the
 * worker's result stands for the step's exec_result, so retries, backoff, on_failure and the
 * undo phase are the engine's usual ones. */
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "engine/engine_int.h"

/* The kind of a remote step handed to workers, or NULL for any other action. */
static const char *remote_kind(const struct task_step *step, const char *phase)
{
    json_t *action = strcmp(phase, "undo") == 0 ? step->undo_action : step->do_action;
    return json_string_value(json_object_get(json_object_get(action, "remote"), "kind"));
}

/* The worker's result as the executor's: done with its message and output, or failed. */
static void result_of(json_t *result, struct exec_result *res)
{
    memset(res, 0, sizeof *res);
    const char *outcome = json_string_value(json_object_get(result, "outcome"));
    bool done = outcome && strcmp(outcome, "done") == 0;
    res->outcome = done ? EXEC_DONE : EXEC_FAILED;
    res->exit_code = done ? 0 : 1;
    const char *msg = json_string_value(json_object_get(result, "message"));
    snprintf(res->message, sizeof res->message, "%s", msg ? msg : "");
    if (!done && !res->message[0])
        snprintf(res->message, sizeof res->message, "the remote worker reported a failure");
    json_t *output = json_object_get(result, "output");
    res->output = done && json_is_object(output) ? json_incref(output) : NULL;
}

static void hand_over(struct engine *eng, const char *id, int64_t lease_no, const struct task *task,
                      int idx, const char *phase, const char *kind)
{
    const char *name = task->steps[idx].name;
    char msg[400];
    snprintf(msg, sizeof msg, "step %d/%lld %.120s%s waiting for a remote worker of kind %s",
             idx + 1, (long long)task->n_steps, name ? name : "?",
             strcmp(phase, "undo") == 0 ? " (undo)" : "", kind);
    struct remote_handover h = {.id = id,
                                .lease_no = lease_no,
                                .node = eng->cfg.node,
                                .kind = kind,
                                .phase = phase,
                                .step = idx,
                                .message = msg};
    struct err e;
    int rc = store_remote_handover(eng->cfg.store, &h, &e);
    if (rc == ERR_CONFLICT)
        log_info("engine: task %s moved on before its remote step was handed over: %s", id, e.msg);
    else if (rc)
        log_warn("engine: handing task %s over to workers: %s (it is handed over again once its "
                 "lease expires)",
                 id, e.msg);
}

enum remote_step engine_remote_step(struct engine *eng, const char *id, int64_t lease_no,
                                    const struct task *task, int idx, const char *phase,
                                    struct exec_result *res)
{
    const char *kind = remote_kind(&task->steps[idx], phase);
    if (!kind)
        return REMOTE_NOT;
    json_t *result = NULL;
    struct err e;
    int rc = store_remote_take(eng->cfg.store, id, lease_no, idx, phase, &result, &e);
    if (rc) {
        if (rc != ERR_CONFLICT)
            log_warn("engine: reading the remote result of task %s: %s", id, e.msg);
        return REMOTE_HANDED; /* not ours, or the lease expires and the step comes again */
    }
    if (result) {
        result_of(result, res);
        json_decref(result);
        return REMOTE_RESULT;
    }
    hand_over(eng, id, lease_no, task, idx, phase, kind);
    return REMOTE_HANDED;
}
