/* Task, step and event rows into the typed task, shared by the SQLite and PostgreSQL reads. */
#include "store/store_task_rows.h"

#include <stdlib.h>

#include "common/xalloc.h"
#include "store/store_db.h"
#include "store/store_plan.h"

_Static_assert(STORE_TASK_N_COLS == STORE_TASK_N_TEXT + STORE_TASK_N_INT + 1,
               "STORE_TASK_N_COLS counts STORE_TASK_COLS");

static struct db_tx *tx_of(const struct store_cols *c) { return (struct db_tx *)c->res; }
static const char *db_col_text(const struct store_cols *c, int col)
{
    return db_text(tx_of(c), c->base + col);
}
static bool db_col_is_null(const struct store_cols *c, int col)
{
    return db_is_null(tx_of(c), c->base + col);
}
static int64_t db_col_int(const struct store_cols *c, int col)
{
    return db_int(tx_of(c), c->base + col);
}

struct store_cols store_cols_db(struct db_tx *t, int base)
{
    return (struct store_cols){.res = t,
                               .base = base,
                               .text = db_col_text,
                               .is_null = db_col_is_null,
                               .integer = db_col_int};
}

static char *col_str(const struct store_cols *c, int col)
{
    const char *s = c->text(c, col);
    return s ? xstrdup(s) : NULL;
}

static int64_t col_ms(const struct store_cols *c, int col)
{
    return c->is_null(c, col) ? TASK_MS_NONE : c->integer(c, col);
}

/* A stored JSON text column as a value; null when NULL (or, never expected, unparsable). */
static json_t *col_json(const struct store_cols *c, int col)
{
    const char *s = c->text(c, col);
    json_t *v = s ? json_loads(s, JSON_DECODE_ANY, NULL) : NULL;
    return v ? v : json_null();
}

void store_task_from_cols(const struct store_cols *c, struct task *t)
{
    char **texts[] = {&t->id, &t->product, &t->region, &t->uin, &t->instance_id, &t->type};
    int col = 0;
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        *texts[i] = col_str(c, col++);
    if (task_on_failure_parse(c->text(c, col++), &t->on_failure) != 0)
        t->on_failure = ON_FAILURE_PAUSE;
    const char *state = c->text(c, col++);
    if (!state || task_state_parse(state, &t->state) != 0)
        t->state = TASK_FAILED; /* never expected: a word no asyncd writes reads as an end */
    t->info = col_str(c, col++);
    if (task_phase_parse(c->text(c, col++), &t->phase) != 0)
        t->phase = PHASE_DO;
    t->lease_node = col_str(c, col++);
    t->driver = col_str(c, col++);
    t->current_step = c->integer(c, col++);
    t->created_ms = c->integer(c, col++);
    t->start_ms = col_ms(c, col++);
    t->end_ms = col_ms(c, col++);
    t->attempt = c->integer(c, col++);
    t->not_before_ms = c->integer(c, col++);
    t->pause_requested = c->integer(c, col++);
    t->lease_no = c->integer(c, col++);
    t->lease_expires_ms = col_ms(c, col++);
    t->n_steps = c->integer(c, col++);
    json_decref(t->input);
    t->input = col_json(c, col++);
}

void store_step_from_cols(const struct store_cols *c, struct task_step *s)
{
    s->index = c->integer(c, 0);
    s->name = col_str(c, 1);
    json_decref(s->do_action);
    s->do_action = col_json(c, 2);
    json_decref(s->undo_action);
    s->undo_action = col_json(c, 3);
    s->retries = c->integer(c, 4);
    s->timeout_s = c->integer(c, 5);
    if (task_step_state_parse(c->text(c, 6), &s->state) != 0)
        s->state = STEP_PENDING;
    s->message = col_str(c, 7);
    json_decref(s->output);
    s->output = col_json(c, 8);
}

void store_event_from_cols(const struct store_cols *c, struct task_event *ev)
{
    ev->seq = c->integer(c, 0);
    ev->at_ms = c->integer(c, 1);
    enum task_state st;
    const char *from = c->text(c, 2), *to = c->text(c, 3);
    ev->from = from && task_state_parse(from, &st) == 0 ? (int)st : -1;
    if (!to || task_state_parse(to, &ev->to) != 0)
        ev->to = TASK_FAILED;
    ev->node = col_str(c, 4);
    ev->message = col_str(c, 5);
}

int store_task_open_steps(struct task *t, struct err *e)
{
    /* store_steps_open walks steps as the admin view has them; the actions are shared, so the
     * secrets it opens are opened in t's own actions. */
    json_t *view = json_array();
    for (int64_t i = 0; t->has_steps && i < t->n_steps; i++)
        json_array_append_new(view, json_pack("{s:O, s:O}", "do", t->steps[i].do_action, "undo",
                                              t->steps[i].undo_action));
    int rc = store_steps_open(view, e);
    json_decref(view);
    return rc;
}
