/* The rules every store backend applies: operator verbs, moves, fenced progress; and the task
 * fields every backend reads for the admin view. */
#include "store/store_plan.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/secretbox.h"
#include "common/xalloc.h"

const char *const store_task_text_fields[STORE_TASK_N_TEXT] = {
    "AsyncRequestId", "product", "region", "uin",   "instance_id", "type",
    "on_failure",     "state",   "info",   "phase", "lease_node",  "driver"};
const char *const store_task_int_fields[STORE_TASK_N_INT] = {
    "current_step",  "created_ms",      "start_ms", "end_ms",           "attempt",
    "not_before_ms", "pause_requested", "lease_no", "lease_expires_ms", "n_steps"};

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

int store_move_args_check(const struct task_move *m, struct err *e)
{
    if (!m->id || !*m->id)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "task_move: no task id");
    if ((unsigned)m->expect >= TASK_STATE_COUNT || (unsigned)m->to >= TASK_STATE_COUNT)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "task_move: not a task state");
    if (m->step_advance && m->step_mark && strcmp(m->step_mark, "done") != 0 &&
        strcmp(m->step_mark, "skipped") != 0)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                       "step_mark: expected \"done\" or "
                       "\"skipped\", got \"%s\"",
                       m->step_mark);
    return 0;
}

int store_move_allowed(const struct task_move *m, enum task_state now, struct err *e)
{
    if (now != m->expect)
        return err_set(e, ERR_CONFLICT, "task %s is %s now, not %s", m->id, task_state_name(now),
                       task_state_name(m->expect));
    /* running -> running is allowed only to record a finished step (the engine's progress). */
    bool progress = m->expect == TASK_RUNNING && m->to == TASK_RUNNING && m->step_advance;
    if (!progress && !task_state_can_move(m->expect, m->to))
        return err_set(e, ERR_CONFLICT, "task %s cannot move from %s to %s", m->id,
                       task_state_name(m->expect), task_state_name(m->to));
    return 0;
}

int store_progress_args_check(const struct task_progress *p, struct err *e)
{
    if (!p->id || (unsigned)p->to >= TASK_STATE_COUNT)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "task_progress: no id or no state");
    return 0;
}

int store_progress_allowed(const struct task_progress *p, const struct task_row *row, struct err *e)
{
    if (row->state != TASK_RUNNING || row->lease_no != p->lease_no)
        return err_set(
            e, ERR_CONFLICT, "task %s is no longer ours: it is %s, lease %lld (ours %lld)", p->id,
            task_state_name(row->state), (long long)row->lease_no, (long long)p->lease_no);
    if (p->to != TASK_RUNNING && !task_state_can_move(TASK_RUNNING, p->to))
        return err_set(e, ERR_CONFLICT, "task %s cannot move from running to %s", p->id,
                       task_state_name(p->to));
    return 0;
}

size_t store_state_names(unsigned mask, const char *out[TASK_STATE_COUNT + 1])
{
    size_t n = 0;
    for (int st = 0; st < TASK_STATE_COUNT; st++)
        if (mask & (1u << st))
            out[n++] = task_state_name((enum task_state)st);
    out[n] = NULL;
    return n;
}

/* ---- step secrets ---- */

/* Set once at start, before any thread runs, and only read afterwards (as secretbox's key). */
static store_secret_args_fn secret_args_fn;

void store_set_secret_args(store_secret_args_fn fn) { secret_args_fn = fn; }

static void find_secret_args(const char *sql, bool *secret, size_t n)
{
    if (secret_args_fn) {
        secret_args_fn(sql, secret, n);
        return;
    }
    /* Nobody said which args are passwords: fail closed, every arg is one. */
    for (size_t i = 0; i < n; i++)
        secret[i] = true;
}

/* Calls fn on each secret arg (a string) of a step action {"mysql": {...}}; stops at an error. */
static int secret_args_foreach(json_t *action, int (*fn)(json_t *args, size_t i, struct err *e),
                               struct err *e)
{
    static const char *const single[] = {"sql", "capture", "done_if"};
    json_t *mysql = json_object_get(action, "mysql");
    json_t *args = json_object_get(mysql, "args");
    size_t n = json_array_size(args), i;
    if (n == 0)
        return 0;
    bool *secret = xcalloc(n, sizeof *secret);
    for (i = 0; i < sizeof single / sizeof single[0]; i++) {
        const char *sql = json_string_value(json_object_get(mysql, single[i]));
        if (sql)
            find_secret_args(sql, secret, n);
    }
    json_t *v;
    json_array_foreach(json_object_get(mysql, "statements"), i, v) if (json_is_string(v))
        find_secret_args(json_string_value(v), secret, n);
    int rc = 0;
    for (i = 0; i < n && rc == 0; i++)
        if (secret[i] && json_is_string(json_array_get(args, i)))
            rc = fn(args, i, e);
    free(secret);
    return rc;
}

static int steps_foreach(json_t *steps, int (*fn)(json_t *args, size_t i, struct err *e),
                         struct err *e)
{
    size_t i;
    json_t *step;
    int rc = 0;
    json_array_foreach(steps, i, step)
    {
        if (rc == 0)
            rc = secret_args_foreach(json_object_get(step, "do"), fn, e);
        if (rc == 0)
            rc = secret_args_foreach(json_object_get(step, "undo"), fn, e);
    }
    return rc;
}

static int seal_arg(json_t *args, size_t i, struct err *e)
{
    const char *plain = json_string_value(json_array_get(args, i));
    if (secretbox_is_sealed(plain))
        return 0;
    char *sealed;
    int rc = secretbox_seal(plain, &sealed, e);
    if (rc == 0)
        json_array_set_new(args, i, json_string(sealed));
    free(sealed);
    return rc;
}

static int open_arg(json_t *args, size_t i, struct err *e)
{
    const char *text = json_string_value(json_array_get(args, i));
    if (!secretbox_is_sealed(text))
        return 0;
    char *plain;
    int rc = secretbox_open(text, &plain, e);
    if (rc == 0)
        json_array_set_new(args, i, json_string(plain));
    free(plain);
    return rc;
}

static int erase_arg(json_t *args, size_t i, struct err *e)
{
    (void)e;
    if (strcmp(json_string_value(json_array_get(args, i)), "***") == 0)
        return 0;
    json_array_set_new(args, i, json_string("***"));
    return 1; /* not an error: tells the caller something changed */
}

int store_steps_seal(json_t *steps, json_t **out, struct err *e)
{
    *out = json_deep_copy(steps);
    int rc = *out ? steps_foreach(*out, seal_arg, e) : 0;
    if (rc != 0) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}

int store_steps_open(json_t *steps, struct err *e) { return steps_foreach(steps, open_arg, e); }

char *store_step_json_erased(const char *action_json)
{
    /* Most steps run no mysql action: skip them without parsing. */
    if (!action_json || !strstr(action_json, "\"mysql\""))
        return NULL;
    json_t *action = json_loads(action_json, 0, NULL);
    bool changed = false;
    /* erase_arg stops a walk at each change (1): walk again until a walk changes nothing. */
    while (action && secret_args_foreach(action, erase_arg, NULL) == 1)
        changed = true;
    char *text = changed ? json_dumps(action, JSON_COMPACT) : NULL;
    json_decref(action);
    return text;
}

/* ---- secrets left in clear by an older asyncd ---- */

const struct store_secret_column store_secret_columns[STORE_SECRET_COLUMNS] = {
    {"account_keys", "secret_id", "secret_key", "SecretKeys"},
    {"instances", "instance_id", "dsn", "instance DSNs"},
};

char *store_reseal_select_sql(const struct store_secret_column *col)
{
    /* substr and length mean the same in SQLite and PostgreSQL (LIKE ignores case in SQLite). */
    return xasprintf("SELECT %s, %s FROM %s WHERE %s <> ''"
                     " AND substr(%s, 1, length('" SECRETBOX_PREFIX "')) <> '" SECRETBOX_PREFIX
                     "' ORDER BY %s",
                     col->key, col->column, col->table, col->column, col->column, col->key);
}

char *store_reseal_update_sql(const struct store_secret_column *col, char mark)
{
    return xasprintf("UPDATE %s SET %s = %c1 WHERE %s = %c2 AND %s = %c3", col->table, col->column,
                     mark, col->key, mark, col->column, mark);
}

int store_reseal_value(const char *clear, char **sealed, struct err *e)
{
    *sealed = NULL;
    char *out = NULL;
    int rc = secretbox_seal(clear, &out, e);
    if (rc != 0)
        return rc;
    if (!secretbox_is_sealed(out)) { /* no key: secretbox_seal passed it through */
        free(out);
        return 0;
    }
    *sealed = out;
    return 1;
}

void store_reseal_log(const size_t sealed[STORE_SECRET_COLUMNS])
{
    size_t total = 0;
    for (int i = 0; i < STORE_SECRET_COLUMNS; i++)
        total += sealed[i];
    if (total == 0)
        return;
    log_info("store: sealed %zu secret%s an older asyncd had stored in clear (%s: %zu, %s: %zu)",
             total, total == 1 ? "" : "s", store_secret_columns[0].what, sealed[0],
             store_secret_columns[1].what, sealed[1]);
}
