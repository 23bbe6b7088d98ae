/* Running one claimed task: its steps in order, retries with backoff, on_failure (pause, undo,
 * fail), the undo phase, operator pause/kill, and self-fencing: a step whose lease the keeper
 * (engine_lease.c) could not renew in time is stopped before anyone else may claim the task. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "common/log.h"
#include "common/metrics.h"
#include "common/timefmt.h"
#include "common/xalloc.h"
#include "engine/engine_int.h"
#include "engine/engine_log.h"
#include "exec/exec.h"
#include "task/task_json.h"

#define BACKOFF_BASE_MS 1000
#define BACKOFF_CAP_MS  60000

/* The task as last read (its row and steps): what the runner decides on. */
struct snapshot {
    struct task *task; /* owned */
    enum task_state state;
    enum task_phase phase;
    enum task_on_failure on_failure;
    int step, n_steps, attempt;
    int64_t lease_no;
    bool pause_requested;
};

/* One claimed task's run, on the heap: while its exec step's child runs it is parked (on the
 * step loop, holding no thread) and a worker continues it when the child has ended. */
struct run {
    struct engine *eng;
    char id[STORE_ID_MAX];
    char product[16];
    int64_t lease_no, lease_ms;
    enum stop_reason stop;
    struct lease_watch watch;
    bool watched;              /* watch is registered with the keeper */
    struct exec_control ctl;   /* the running step's */
    bool ctl_live;             /* a step runs: fenced() may shorten ctl's grace */
    struct step_pgroup pgroup; /* the running exec step's process group (pgid 0: none) */
    /* the step under way: kept while parked */
    struct snapshot snap;   /* the task as read before the step */
    int idx;                /* the step's index */
    bool undo;              /* its undo action runs */
    char *stdin_text;       /* owned: what the child reads */
    struct parked park;     /* the child and, once it ended, its result */
    struct run_link link;   /* in the engine's queue of claimed runs, before it starts */
    struct final_write fin; /* the last write, when it gives the lease up (fin_set) */
    bool fin_set;
    bool announced;             /* its claim's transition is logged (at the first read) */
    struct task *claimed;       /* owned: the task as the claim left it, for the first read */
    enum task_state claim_from; /* the claim's, for the metrics at the first read */
    bool taken_over;
    /* the running step's action, for the step duration histogram; t0 0 = none runs */
    int64_t step_t0_ns;
    int step_type;
    enum metrics_executor step_ex;
};

/* Whether a do/undo phase's step is done with (false), goes on with the next read (true), or
 * waits for its child (parked). */
enum step_next { STEP_END, STEP_AGAIN, STEP_PARKED };

static int64_t backoff_ms(int attempt)
{
    int64_t base = BACKOFF_BASE_MS;
    for (int i = 0; i < attempt && base < BACKOFF_CAP_MS; i++)
        base *= 2;
    if (base > BACKOFF_CAP_MS)
        base = BACKOFF_CAP_MS;
    uint32_t r = 0;
    RAND_bytes((unsigned char *)&r, sizeof r);
    return base / 2 + (int64_t)(r % (uint32_t)(base / 2 + 1)); /* "equal jitter" */
}

/* Step idx of the snapshot; an index the task has no step at (never expected) reads as a step
 * with nothing set, as a missing JSON step once did. */
static const struct task_step *step_of(const struct snapshot *s, int idx)
{
    static const struct task_step none = {.timeout_s = 3600};
    const struct task_step *step = task_step_at(s->task, idx);
    return step ? step : &none;
}

/* Reads the task's row and steps; the first read after the claim also its latest event (the
 * claim's, for the log line and the queue-wait metric). No read needs the event history. The
 * first read is the claim's own when the store handed the task over (engine.c asks for
 * ENGINE_CLAIM_READ), judged by the same fence below. It is as old as the claim's commit, not
 * as the worker's start: the claim takes only as many tasks as there are free workers, so that
 * is the queue's hand-off, and an operator's move in between is met as one just after a read
 * would be (the lease keeper watches the lease from the claim on; the move's fenced write
 * refuses ours). */
static bool load(struct run *r, struct snapshot *s)
{
    struct err e;
    memset(s, 0, sizeof *s);
    unsigned what = r->announced ? TASK_READ_STEPS : ENGINE_CLAIM_READ;
    if (r->claimed) {
        s->task = r->claimed;
        r->claimed = NULL;
    } else if (store_task_get(r->eng->cfg.store, r->id, what, &s->task, &e) != 0) {
        log_warn("engine: reading task %s: %s", r->id, e.msg);
        return false;
    }
    const struct task *t = s->task;
    s->n_steps = (int)t->n_steps;
    s->state = t->state;
    s->phase = t->phase;
    s->on_failure = t->on_failure;
    s->step = (int)t->current_step;
    s->attempt = (int)t->attempt;
    s->lease_no = t->lease_no;
    s->pause_requested = t->pause_requested != 0;
    snprintf(r->product, sizeof r->product, "%s", t->product ? t->product : "");
    return s->state == TASK_RUNNING && s->lease_no == r->lease_no;
}

/* A fenced write; false when the task is no longer ours (or the store failed: the lease then
 * expires and the step runs again, at least once). */
static bool record(struct run *r, struct task_progress *p)
{
    struct err e;
    p->id = r->id;
    p->lease_no = r->lease_no;
    p->node = r->eng->cfg.node;
    /* A write that gives the lease up is the run's last: the flusher writes it with others in
     * one transaction when the run ends (run_end), and the run keeps its lease until then. No
     * caller reads the outcome of such a write: the run ends whatever it was. */
    if (p->release && r->eng->flusher && !r->fin_set) {
        final_write_set(&r->fin, p);
        snprintf(r->fin.product, sizeof r->fin.product, "%s", r->product);
        r->fin.attempt = r->snap.attempt;
        r->fin_set = true;
        return true;
    }
    int rc = store_task_progress(r->eng->cfg.store, p, &e);
    if (rc == 0)
        engine_log_progress(r->id, r->fin.who, r->product, p, r->snap.attempt);
    else if (rc == ERR_CONFLICT)
        log_info("engine: task %s moved on without us: %s", r->id, e.msg);
    else if (rc)
        log_warn("engine: recording progress of task %s: %s", r->id, e.msg);
    return rc == 0;
}

static struct task_progress progress_of(enum task_state to)
{
    return (struct task_progress){.to = to, .step = -1, .next_step = -2, .attempt = -1};
}

/* The lease must still be ours for at least this margin when the step is stopped: a third of it
 * (the renewal interval), less the time the step gets to exit after SIGTERM. */
static int64_t fence_after_ms(const struct run *r) { return r->lease_ms - r->lease_ms / 3; }

static unsigned fence_grace_ms(const struct run *r)
{
    int64_t g = r->lease_ms / 6;
    return (unsigned)(g > 1000 ? 1000 : g < 50 ? 50 : g);
}

/* True (with r->stop set) when the lease has gone unrenewed too long: the store stalled or is cut
 * off, and another node may claim the task once the lease runs out by the store's clock. Judged
 * on the monotonic clock from when the last good renewal was sent, so no clock step fools it. */
static bool fenced(struct run *r)
{
    int64_t age = engine_mono_ms() - atomic_load(&r->watch.last_ok_ms);
    if (age < fence_after_ms(r))
        return false;
    log_warn("engine: task %s: lease %lld not renewed for %lld ms (lease %lld ms); stopping its "
             "step and leaving the task to whoever claims it once the lease runs out",
             r->id, (long long)r->lease_no, (long long)age, (long long)r->lease_ms);
    r->stop = STOP_FENCED;
    if (r->ctl_live)
        r->ctl.kill_grace_ms = fence_grace_ms(r); /* dead before the lease ends */
    return true;
}

/* Called by the executor about every 100 ms (on the step loop's thread while the run is
 * parked): notice a lost lease, kill/pause, drain. Never touches the store (the keeper does), so
 * a stalled store cannot keep a step running. */
static bool should_stop(void *ctx)
{
    struct run *r = ctx;
    if (engine_drain_over(r->eng)) {
        r->stop = STOP_DRAIN;
        return true;
    }
    int found = atomic_load(&r->watch.stop);
    if (found != STOP_NONE) {
        r->stop = (enum stop_reason)found;
        return true;
    }
    return fenced(r);
}

/* The exec child started: record its process group durably (through the keeper, so a stalled
 * store never delays the step's fencing), for the sweep of a restart after a crash. */
static void step_started(void *ctx, int pid)
{
    struct run *r = ctx;
    memset(&r->pgroup, 0, sizeof r->pgroup);
    snprintf(r->pgroup.node, sizeof r->pgroup.node, "%s", r->eng->cfg.node);
    snprintf(r->pgroup.task_id, sizeof r->pgroup.task_id, "%s", r->id);
    r->pgroup.pgid = pid;
    engine_pgroup_identify(&r->pgroup, pid);
    lease_keeper_pgroup(r->eng, &r->pgroup, false);
}

/* The task as the step's stdin: everything but the event history, plus what is running. */
static char *stdin_for(const struct snapshot *s, int step, const char *phase)
{
    struct task_json_opts o = {.no_events = true};
    json_t *t = task_json(s->task, &o);
    json_object_set_new(t, "running_step", json_integer(step));
    json_object_set_new(t, "running_phase", json_string(phase));
    char *text = json_dumps(t, JSON_COMPACT);
    json_decref(t);
    return text;
}

/* The DSN of the task's instance (looked up at run time, so a changed DSN applies), or NULL. */
static const char *instance_dsn(struct run *r, const struct snapshot *s, struct instance *in)
{
    const char *id = s->task->instance_id;
    struct err e;
    if (!id || store_instance_get(r->eng->cfg.store, r->product, id, in, &e) != 0 || !in->dsn[0])
        return NULL;
    return in->dsn;
}

/* The step's action is over (its result in r->park.res): its process group is gone. */
static void action_end(struct run *r)
{
    if (r->step_t0_ns) {
        metrics_step_observe(r->step_type, r->step_ex, time_mono_ns() - r->step_t0_ns);
        r->step_t0_ns = 0;
    }
    r->ctl_live = false;
    if (r->pgroup.pgid > 0) /* the group is gone once the child is finished */
        lease_keeper_pgroup(r->eng, &r->pgroup, true);
    free(r->stdin_text);
    r->stdin_text = NULL;
}

/* The executor an action names: its key that is one (executors may add keys beside it). */
static enum metrics_executor step_executor(json_t *action)
{
    const char *key;
    json_t *v;
    json_object_foreach(action, key, v)
    {
        enum metrics_executor ex = metrics_executor_of(key);
        if (ex != METRICS_EXEC_OTHER)
            return ex;
    }
    return METRICS_EXEC_OTHER;
}

/* Starts the step's do or undo action. True when the run is parked: an exec child or a mysql
 * session runs on the step loop and r belongs to it (not to be touched here any more). Otherwise
 * the action is over and its outcome and message are in r->park.res. */
static bool action_start(struct run *r, const struct snapshot *s, int idx, const char *phase)
{
    const struct task_step *step = step_of(s, idx);
    json_t *action = strcmp(phase, "undo") == 0 ? step->undo_action : step->do_action;
    char env[5][160];
    snprintf(env[0], sizeof env[0], "ASYNCD_TASK_ID=%s", r->id);
    snprintf(env[1], sizeof env[1], "ASYNCD_STEP_INDEX=%d", idx);
    snprintf(env[2], sizeof env[2], "ASYNCD_STEP_NAME=%.120s", step->name ? step->name : "");
    snprintf(env[3], sizeof env[3], "ASYNCD_PHASE=%s", phase);
    snprintf(env[4], sizeof env[4], "ASYNCD_ATTEMPT=%d", s->attempt + 1);
    /* The DSN goes to the executor only as job.dsn, never into an environment string: exec
     * makes ASYNCD_INSTANCE_DSN (without the password) and ASYNCD_INSTANCE_DSN_FILE from it. */
    char inst_env[2][600];
    struct instance in_row;
    const char *dsn = instance_dsn(r, s, &in_row);
    snprintf(inst_env[0], sizeof inst_env[0], "ASYNCD_INSTANCE_ID=%s",
             dsn ? in_row.instance_id : "");
    snprintf(inst_env[1], sizeof inst_env[1], "ASYNCD_DATA_DIR=%s",
             r->eng->cfg.data_dir ? r->eng->cfg.data_dir : "");
    const char *const extra[] = {env[0], env[1],      env[2],      env[3],
                                 env[4], inst_env[0], inst_env[1], NULL};
    bool undo = strcmp(phase, "undo") == 0;
    /* Only a child reads it: a built-in or mysql step is spared the task's copy and dump. */
    r->stdin_text = exec_is_child(action) ? stdin_for(s, idx, phase) : NULL;
    r->idx = idx;
    r->undo = undo;
    json_t *captured = undo ? step->output : NULL;
    struct exec_job job = {.action = action,
                           .stdin_text = r->stdin_text,
                           .extra_env = extra,
                           .timeout_s = (unsigned)step->timeout_s,
                           .dsn = dsn,
                           .captured = json_is_object(captured) ? captured : NULL,
                           .started = step_started,
                           .started_ctx = r};
    r->ctl = (struct exec_control){.poll = should_stop, .ctx = r, .kill_grace_ms = 1000};
    r->ctl_live = true;
    r->pgroup.pgid = 0;
    struct exec_result *res = &r->park.res;
    struct err e;
    r->step_type = metrics_task_type(r->product, s->task->type ? s->task->type : "");
    r->step_ex = step_executor(action);
    r->step_t0_ns = time_mono_ns();
    if (should_stop(r)) { /* e.g. fenced already: the step must not start */
        memset(res, 0, sizeof *res);
        r->step_t0_ns = 0; /* not run: not timed */
        res->outcome = EXEC_STOPPED;
        res->exit_code = -1;
        snprintf(res->message, sizeof res->message, "stopped by request");
    } else if (exec_is_async(action) && r->eng->loop) {
        r->park.child = exec_start(&job, &r->ctl, res, &e);
        if (r->park.child) {
            step_loop_add(r->eng, &r->park);
            return true;
        }
    } else if (exec_run(&job, &r->ctl, res, &e) != 0) {
        res->outcome = EXEC_FAILED;
        res->exit_code = -1;
        snprintf(res->message, sizeof res->message, "%s", e.msg);
    }
    action_end(r);
    return false;
}

/* The step was stopped by us: after a kill/pause/lost lease nothing is ours to write; on drain the
 * lease is handed back so the step runs again (here after a restart, or on another node). */
static void stopped(struct run *r, int idx)
{
    if (r->stop != STOP_DRAIN)
        return;
    struct task_progress p = progress_of(TASK_RUNNING);
    char msg[128];
    snprintf(msg, sizeof msg, "node %s stopping: step %d will run again", r->eng->cfg.node,
             idx + 1);
    p.message = msg;
    p.release = true;
    p.event = true;
    record(r, &p);
}

static const char *step_name(const struct snapshot *s, int idx)
{
    const char *name = step_of(s, idx)->name;
    return name ? name : "?";
}

/* A failed attempt with retries left: hand the lease back and come again after the backoff. */
static void retry_later(struct run *r, const struct snapshot *s, int idx, const char *phase,
                        const struct exec_result *res)
{
    int64_t delay = backoff_ms(s->attempt);
    int retries = (int)step_of(s, idx)->retries;
    char msg[1400];
    snprintf(msg, sizeof msg, "step %d/%d %s%s failed (attempt %d of %d): %s; retrying in %lld ms",
             idx + 1, s->n_steps, step_name(s, idx), strcmp(phase, "undo") == 0 ? " (undo)" : "",
             s->attempt + 1, retries + 1, res->message, (long long)delay);
    struct task_progress p = progress_of(TASK_RUNNING);
    p.message = msg;
    p.attempt = s->attempt + 1;
    p.not_before_ms = time_now_ms() + delay;
    p.release = true;
    p.event = true;
    record(r, &p);
}

/* A sleep step whose wake time is still ahead: the task goes back to the store with
 * not_before_ms = that time, so no worker waits for it, and is claimed again when it is due.
 * The wake time is written into the step's output the first time (one event says so), so a
 * restart, a pause or another node wakes it at the same moment. A kill, pause or undo reaches
 * it as any task whose lease nobody holds. True when the task was handed back. */
static bool sleep_handed_back(struct run *r, const struct snapshot *s, int idx, const char *phase)
{
    const struct task_step *step = step_of(s, idx);
    bool undo = strcmp(phase, "undo") == 0;
    const char *key = undo ? "undo_wake_ms" : "wake_ms";
    json_t *output = step->output;
    json_t *kept = json_object_get(output, key);
    int64_t now = time_now_ms(), wake;
    if (json_is_integer(kept))
        wake = json_integer_value(kept);
    else if (!exec_sleep_wake_ms(undo ? step->undo_action : step->do_action, now, &wake))
        return false;
    if (wake <= now)
        return false;
    json_t *merged = json_is_object(output) ? json_deep_copy(output) : json_object();
    json_object_set_new(merged, key, json_integer(wake));
    char *text = json_dumps(merged, JSON_COMPACT);
    json_decref(merged);
    char at[25], msg[300];
    time_fmt_iso_utc(wake, at);
    snprintf(msg, sizeof msg, "step %d/%d %s%s sleeping until %s", idx + 1, s->n_steps,
             step_name(s, idx), undo ? " (undo)" : "", at);
    struct task_progress p = progress_of(TASK_RUNNING);
    p.step = idx;
    p.step_state = task_step_state_name(step->state); /* unchanged: only the output is new */
    p.step_output = text;
    p.not_before_ms = wake;
    p.release = true;
    if (!kept) { /* the first time only: a later early claim hands it back silently */
        p.message = msg;
        p.event = true;
    }
    record(r, &p);
    free(text);
    return true;
}

/* Retries spent: the task's on_failure decides. Returns true when the runner goes on (undo). */
static bool do_step_failed(struct run *r, const struct snapshot *s, int idx,
                           const struct exec_result *res)
{
    char msg[1400];
    snprintf(msg, sizeof msg, "step %d/%d %s failed: %s", idx + 1, s->n_steps, step_name(s, idx),
             res->message);
    struct task_progress p = progress_of(TASK_PAUSED);
    p.step = idx;
    p.step_state = "failed";
    p.message = msg;
    p.info = msg;
    p.release = true;
    if (s->on_failure == ON_FAILURE_FAIL) {
        p.to = TASK_FAILED;
    } else if (s->on_failure == ON_FAILURE_UNDO) {
        p.to = TASK_RUNNING;
        p.phase = "undo";
        p.next_step = idx - 1;
        p.attempt = 0;
        p.release = false;
        p.event = true;
        return record(r, &p);
    }
    record(r, &p);
    return false;
}

/* The message of the latest done step before idx, or "" (Info cleared) when none said anything. */
static const char *last_done_message(const struct snapshot *s, int idx)
{
    for (int i = idx - 1; i >= 0; i--) {
        const struct task_step *step = step_of(s, i);
        if (step->state == STEP_DONE && step->message && *step->message)
            return step->message;
    }
    return "";
}

/* The do phase after step idx's action: its outcome recorded. True when the runner should go
 * on with the next step. */
static bool do_end(struct run *r, const struct snapshot *s, int idx)
{
    struct exec_result res = r->park.res;
    if (res.outcome != EXEC_DONE) {
        json_decref(res.output);
        res.output = NULL;
    }
    if (res.outcome == EXEC_STOPPED) {
        stopped(r, idx);
        return false;
    }
    if (res.outcome != EXEC_DONE) {
        if (s->attempt < step_of(s, idx)->retries) {
            retry_later(r, s, idx, "do", &res);
            return false;
        }
        return do_step_failed(r, s, idx, &res);
    }
    bool last = idx + 1 >= s->n_steps;
    char msg[1400];
    snprintf(msg, sizeof msg, "step %d/%d %s done%s%s", idx + 1, s->n_steps, step_name(s, idx),
             res.message[0] ? ": " : "", res.message);
    struct task_progress p = progress_of(last ? TASK_SUCCESS : TASK_RUNNING);
    p.step = idx;
    p.step_state = "done";
    /* A silent step clears an earlier failure's message; Info stays the last thing a step said. */
    char *output = res.output ? json_dumps(res.output, JSON_COMPACT) : NULL;
    json_decref(res.output);
    p.step_output = output;
    p.message = res.message;
    p.event_message = msg;
    p.info = res.message[0] ? res.message : last_done_message(s, idx);
    p.next_step = idx + 1;
    p.attempt = 0;
    p.release = last;
    p.event = true;
    bool ok = record(r, &p);
    free(output);
    return ok && !last;
}

/* One step of the do phase, up to its action (and past it unless the run parks). */
static enum step_next do_begin(struct run *r, const struct snapshot *s)
{
    int idx = s->step;
    if (idx >= s->n_steps) { /* the last step was skipped: a skipped failure does not speak */
        struct task_progress p = progress_of(TASK_SUCCESS);
        p.message = "every step done";
        p.info = last_done_message(s, idx);
        p.release = true;
        record(r, &p);
        return STEP_END;
    }
    if (sleep_handed_back(r, s, idx, "do"))
        return STEP_END;
    /* A remote step: a worker's recorded result stands for the action, or the task goes to one. */
    enum remote_step remote =
        engine_remote_step(r->eng, r->id, r->lease_no, s->task, idx, "do", &r->park.res);
    if (remote == REMOTE_HANDED)
        return STEP_END;
    if (remote == REMOTE_NOT && action_start(r, s, idx, "do"))
        return STEP_PARKED;
    return do_end(r, s, idx) ? STEP_AGAIN : STEP_END;
}

/* The next step to undo at or below idx: done, with an undo action. -1 when none is left. */
static int next_undoable(const struct snapshot *s, int idx)
{
    for (; idx >= 0; idx--) {
        const struct task_step *step = step_of(s, idx);
        if (step->state == STEP_DONE && json_is_object(step->undo_action))
            return idx;
    }
    return -1;
}

/* The undo phase after step idx's undo action. True when the runner should go on. */
static bool undo_end(struct run *r, const struct snapshot *s, int idx)
{
    struct snapshot at = *s;
    at.step = idx;
    struct exec_result res = r->park.res;
    json_decref(res.output); /* an undo's output has no later use */
    res.output = NULL;
    if (res.outcome == EXEC_STOPPED) {
        stopped(r, idx);
        return false;
    }
    char msg[1400];
    struct task_progress p = progress_of(TASK_RUNNING);
    p.step = idx;
    if (res.outcome == EXEC_DONE) {
        snprintf(msg, sizeof msg, "undid step %d/%d %s%s%s", idx + 1, s->n_steps, step_name(s, idx),
                 res.message[0] ? ": " : "", res.message);
        p.step_state = "undone";
        p.next_step = idx - 1;
        p.attempt = 0;
        p.event = true;
    } else if (s->attempt < step_of(s, idx)->retries) {
        retry_later(r, &at, idx, "undo", &res);
        return false;
    } else {
        snprintf(msg, sizeof msg, "undo of step %d/%d %s failed: %s", idx + 1, s->n_steps,
                 step_name(s, idx), res.message);
        p.to = TASK_FAILED;
        p.step_state = "undo_failed";
        p.info = msg;
        p.release = true;
    }
    p.message = msg;
    return record(r, &p) && p.to == TASK_RUNNING;
}

/* One step of the undo phase, up to its action (and past it unless the run parks). */
static enum step_next undo_begin(struct run *r, const struct snapshot *s)
{
    int idx = next_undoable(s, s->step < s->n_steps ? s->step : s->n_steps - 1);
    if (idx < 0) {
        struct task_progress p = progress_of(TASK_UNDOED);
        p.message = "undo complete: every done step was undone";
        p.next_step = -1;
        p.release = true;
        record(r, &p);
        return STEP_END;
    }
    if (sleep_handed_back(r, s, idx, "undo"))
        return STEP_END;
    struct snapshot at = *s;
    at.step = idx;
    enum remote_step remote =
        engine_remote_step(r->eng, r->id, r->lease_no, s->task, idx, "undo", &r->park.res);
    if (remote == REMOTE_HANDED)
        return STEP_END;
    if (remote == REMOTE_NOT && action_start(r, &at, idx, "undo"))
        return STEP_PARKED;
    return undo_end(r, s, idx) ? STEP_AGAIN : STEP_END;
}

/* Pause requested by an operator: the task stops here, between steps. */
static void pause_here(struct run *r, const struct snapshot *s)
{
    char msg[128];
    snprintf(msg, sizeof msg, "paused before step %d/%d as requested", s->step + 1, s->n_steps);
    struct task_progress p = progress_of(TASK_PAUSED);
    p.message = msg;
    p.release = true;
    record(r, &p);
}

/* Stopping: the lease goes back at a step boundary so the task goes on elsewhere or later. */
static void hand_back(struct run *r)
{
    struct task_progress p = progress_of(TASK_RUNNING);
    p.release = true;
    /* Drain names what it gives up: the task stays running with no lease, and the next claim
     * (another node, or this one's next start) goes on from its current step. */
    log_info("task %s %s handed back by draining node %s at step %d", r->id, r->fin.who,
             r->eng->cfg.node, r->snap.step + 1);
    record(r, &p);
}

/* From the first read on (the product is known then) the keeper renews the lease. */
static void watch_start(struct run *r)
{
    if (r->watched)
        return;
    struct lease_watch *w = &r->watch;
    snprintf(w->id, sizeof w->id, "%s", r->id);
    snprintf(w->product, sizeof w->product, "%s", r->product);
    w->lease_no = r->lease_no;
    w->lease_ms = r->lease_ms;
    lease_watch_add(r->eng, w);
    r->watched = true;
}

static void run_free(struct run *r)
{
    struct engine *eng = r->eng;
    metrics_running_add(-1);
    if (r->watched)
        lease_watch_remove(eng, &r->watch);
    task_free(r->claimed); /* NULL once read */
    free(r);
    engine_run_ended(eng);
}

/* The flusher committed (or failed) the run's last write: now the run is over. */
static void final_done(struct engine *eng, struct final_write *w, int rc)
{
    (void)eng;
    (void)rc; /* logged by the flusher; a failed write leaves the lease to expire */
    struct run *r = (struct run *)((char *)w - offsetof(struct run, fin));
    final_write_clear(w);
    run_free(r);
}

static void run_end(struct run *r)
{
    if (!r->fin_set) {
        run_free(r);
        return;
    }
    r->fin.done = final_done;
    flusher_push(r->eng, &r->fin); /* r is the flusher's from here */
}

/* The claim's metrics, at the first read (the task's product and type known then): a first claim
 * is the task's move to running and ends its wait in the queue, timed by the store's clock from
 * its creation to the claim's event; a takeover is counted as one. */
static void claim_counted(struct run *r, const struct task *t)
{
    if (r->taken_over)
        metrics_lease_takeover(r->product);
    if (r->claim_from != TASK_INITIAL)
        return;
    metrics_transition(r->product, TASK_RUNNING);
    const struct task_event *claim = task_last_event(t);
    int64_t claimed_ms = claim ? claim->at_ms : time_now_ms();
    metrics_queue_wait_observe(metrics_task_type(r->product, task_text_or(t->type, "")),
                               claimed_ms - t->created_ms);
}

/* The claim's transition line and metrics, from the run's first read of the task. */
static void announce(struct run *r, const struct task *t)
{
    engine_log_who(r->fin.who, sizeof r->fin.who, t);
    engine_log_claimed(r->id, r->fin.who, t, r->eng->cfg.node);
    claim_counted(r, t);
    r->announced = true;
}

/* Runs r's steps from a fresh read each, until the run ends or parks (then r is the step
 * loop's, and this thread lets go of it). */
static void run_drive(struct run *r, enum step_next next)
{
    while (next == STEP_AGAIN) {
        struct snapshot *s = &r->snap;
        if (!load(r, s)) {
            next = STEP_END;
        } else {
            watch_start(r);
            if (!r->announced)
                announce(r, s->task);
            if (s->pause_requested) {
                pause_here(r, s);
                next = STEP_END;
            } else if (engine_stopping(r->eng)) {
                hand_back(r);
                next = STEP_END;
            } else {
                next = s->phase == PHASE_UNDO ? undo_begin(r, s) : do_begin(r, s);
            }
        }
        if (next == STEP_PARKED)
            return; /* the snapshot stays with the run */
        task_free(s->task);
        s->task = NULL;
    }
    run_end(r);
}

struct run_link *engine_run_new(struct engine *eng, struct task_claim *claim, int64_t claimed_ms)
{
    struct run *r = xcalloc(1, sizeof *r);
    r->eng = eng;
    r->claimed = claim->task;
    claim->task = NULL;
    r->lease_no = claim->lease_no;
    r->lease_ms = (int64_t)eng->cfg.lease_s * 1000;
    snprintf(r->id, sizeof r->id, "%s", claim->id);
    r->claim_from = claim->from;
    r->taken_over = claim->taken_over;
    metrics_running_add(1);
    atomic_init(&r->watch.last_ok_ms, claimed_ms);
    atomic_init(&r->watch.stop, STOP_NONE);
    /* Renewed from the claim on, while it waits in the queue for a worker too. */
    if (claim->product[0]) {
        snprintf(r->product, sizeof r->product, "%s", claim->product);
        watch_start(r);
    }
    /* A task the claim handed over is the run's first read (load takes it, by the same fence):
     * its line is made here, so the claimer writes the lines of its whole batch at once
     * (claim_and_run holds them), not one write(2) a task as each run starts. */
    const struct task *t = r->claimed;
    if (t && t->state == TASK_RUNNING && t->lease_no == r->lease_no) {
        snprintf(r->product, sizeof r->product, "%s", t->product ? t->product : "");
        announce(r, t);
    }
    return &r->link;
}

void engine_run_go(struct engine *eng, struct run_link *l)
{
    (void)eng;
    run_drive((struct run *)((char *)l - offsetof(struct run, link)), STEP_AGAIN);
}

void engine_run_resume(struct engine *eng, struct parked *p)
{
    struct run *r = (struct run *)((char *)p - offsetof(struct run, park));
    (void)eng;
    action_end(r);
    bool go_on = r->undo ? undo_end(r, &r->snap, r->idx) : do_end(r, &r->snap, r->idx);
    task_free(r->snap.task);
    r->snap.task = NULL;
    run_drive(r, go_on ? STEP_AGAIN : STEP_END);
}
