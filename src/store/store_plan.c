/* The operator verbs' rules, shared by every store backend. */
#include "store/store_plan.h"

#include <string.h>

/* Decides the verb from the task's row; ERR_CONFLICT with the reason when it is not allowed. */
int store_control_plan(const struct control_in *in, const struct task_row *row, int64_t now,
                       struct control_plan *p, struct err *e)
{
    const char *why = NULL;
    enum task_state to;
    if (task_verb_target(in->verb, row->state, &to, &why) != 0)
        return err_set(e, ERR_CONFLICT, "cannot %s task %s: it is %s, and %s",
                       task_verb_name(in->verb), in->id, task_state_name(row->state), why);
    memset(p, 0, sizeof *p);
    p->to = to;
    p->release = true;
    switch (in->verb) {
    case VERB_PAUSE:
        /* A worker holds it: it pauses at the next step boundary. Nobody does: pause now. */
        if (row->lease_expires_ms > now) {
            p->to = TASK_RUNNING;
            p->release = false;
            p->pause_requested = 1;
            p->what = "pause requested; the task pauses at the next step boundary";
        } else { /* a worker that stalled past its lease must not write after a resume */
            p->lease_bump = 1;
            p->what = "paused";
        }
        break;
    case VERB_RESUME:
        p->reset_attempt = true;
        p->step_state = "pending", p->step_only_if = "failed";
        p->what = "resumed: the failed step runs again";
        break;
    case VERB_SKIP:
        p->reset_attempt = true;
        p->step_state = "skipped", p->step_delta = 1;
        p->what = "skipped the current step";
        break;
    case VERB_UNDO:
        if (row->external) { /* its worker compensates; we record the outcome */
            p->to = TASK_UNDOED;
            p->what = "undone (reported for an externally driven task)";
            break;
        }
        if (row->undoing && row->state == TASK_RUNNING)
            return err_set(e, ERR_CONFLICT, "cannot undo task %s: it is being undone already",
                           in->id);
        p->reset_attempt = true;
        p->lease_bump = 1;
        if (row->undoing) { /* paused in the undo phase: go on from the step being undone */
            p->what = "undo: the undo phase goes on";
            break;
        }
        /* The engine runs the undo phase; a step in flight is stopped first. */
        p->phase = "undo", p->step_delta = -1;
        p->step_state = "failed", p->step_only_if = "pending";
        p->what = "undo: the done steps are undone in reverse";
        break;
    case VERB_KILL:
        /* A running task's current step was cut short; a paused one's has failed already. */
        p->lease_bump = 1;
        p->step_state = "failed", p->step_only_if = "pending";
        p->what = "killed";
        break;
    default:
        p->what = "removed before it started";
        break;
    }
    return 0;
}
