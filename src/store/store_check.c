/* What every store backend checks and derives the same way: a new task's fields and steps, the
 * task's driver, UTF-8-safe copies. */
#include "store/store_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "store/store_plan.h"

void store_steps_free(struct store_step_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(rows[i].do_json);
        free(rows[i].undo_json);
    }
    free(rows);
}

static int opt_int(json_t *step, const char *key, json_int_t dflt, json_int_t min, size_t i,
                   json_int_t *out, struct err *e)
{
    json_t *v = json_object_get(step, key);
    *out = dflt;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < min)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                       "steps[%zu].%s: expected an integer >= %" JSON_INTEGER_FORMAT, i, key, min);
    *out = json_integer_value(v);
    return 0;
}

static int step_check(json_t *step, size_t i, struct store_step_row *row, struct err *e)
{
    json_t *name = json_object_get(step, "name"), *dov = json_object_get(step, "do");
    json_t *undo = json_object_get(step, "undo");
    int rc = 0;
    if (!json_is_object(step))
        rc = err_set(e, ERR_INVALID_PARAMETER_VALUE, "steps[%zu]: expected an object", i);
    else if (!json_is_string(name) || json_string_length(name) == 0)
        rc = err_set(e, ERR_INVALID_PARAMETER_VALUE,
                     "steps[%zu].name: expected a "
                     "non-empty string",
                     i);
    else if (!json_is_object(dov))
        rc = err_set(e, ERR_INVALID_PARAMETER_VALUE, "steps[%zu].do: expected an object", i);
    else if (undo && !json_is_null(undo) && !json_is_object(undo))
        rc = err_set(e, ERR_INVALID_PARAMETER_VALUE,
                     "steps[%zu].undo: expected an object "
                     "or null",
                     i);
    if (rc == 0)
        rc = opt_int(step, "retries", 0, 0, i, &row->retries, e);
    if (rc == 0)
        rc = opt_int(step, "timeout_s", 3600, 1, i, &row->timeout_s, e);
    if (rc != 0)
        return rc;
    row->name = json_string_value(name);
    row->do_json = json_dumps(dov, JSON_COMPACT);
    row->undo_json = json_is_object(undo) ? json_dumps(undo, JSON_COMPACT) : NULL;
    if (!row->do_json || (json_is_object(undo) && !row->undo_json))
        rc = err_set(e, ERR_INVALID_PARAMETER_VALUE, "steps[%zu]: cannot serialise", i);
    return rc;
}

/* Checks steps (a non-empty array of {name, do, undo?, retries?, timeout_s?}) into *out. */
int store_steps_parse(json_t *steps, struct store_step_row **out, size_t *n, struct err *e)
{
    *out = NULL;
    *n = 0;
    if (!json_is_array(steps) || json_array_size(steps) == 0)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "steps: expected a non-empty array");
    size_t count = json_array_size(steps);
    struct store_step_row *rows = xcalloc(count, sizeof *rows);
    int rc = 0;
    for (size_t i = 0; i < count && rc == 0; i++)
        rc = step_check(json_array_get(steps, i), i, &rows[i], e);
    if (rc != 0) {
        store_steps_free(rows, count);
        return rc;
    }
    *out = rows;
    *n = count;
    return 0;
}

int store_task_new_check(const struct task_new *t, struct err *e)
{
    if (!t->product || (strcmp(t->product, "cdb") != 0 && strcmp(t->product, "mongodb") != 0))
        return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                       "product: expected \"cdb\" or "
                       "\"mongodb\", got \"%s\"",
                       t->product ? t->product : "(none)");
    const char *missing = !t->region || !*t->region ? "region"
                          : !t->uin || !*t->uin     ? "uin"
                          : !t->type || !*t->type   ? "type"
                                                    : NULL;
    if (missing)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "%s: a task needs a non-empty %s", missing,
                       missing);
    const char *of = t->on_failure;
    if (of && strcmp(of, "pause") != 0 && strcmp(of, "undo") != 0 && strcmp(of, "fail") != 0)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                       "on_failure: expected \"pause\", "
                       "\"undo\" or \"fail\", got \"%s\"",
                       of);
    return 0;
}

int store_task_prep(const struct task_new *t, struct store_task_prep *p, struct err *e)
{
    *p = (struct store_task_prep){0};
    int rc = store_task_new_check(t, e);
    if (rc == 0)
        rc = store_steps_seal(t->steps, &p->sealed, e);
    if (rc == 0)
        rc = store_steps_parse(p->sealed, &p->rows, &p->n, e);
    if (rc != 0)
        store_task_prep_free(p);
    return rc;
}

void store_task_prep_free(struct store_task_prep *p)
{
    store_steps_free(p->rows, p->n);
    json_decref(p->sealed);
    *p = (struct store_task_prep){0};
}

int store_batch_item_err(struct err *e, size_t i, int rc)
{
    if (e) {
        char msg[sizeof e->msg];
        snprintf(msg, sizeof msg, "%s", e->msg);
        err_set(e, rc, "tasks[%zu]: %s", i, msg);
    }
    return rc;
}

/* "sim" when a step is simulated ({"sim": {...}}): progression rules move the task (sim/sim.h),
 * never the engine. "external" when a step is run by a remote worker that reports through the
 * admin API's transition call (a remote action without a "kind"): the engine leaves such a task
 * alone.
 * "engine" otherwise -- a remote step with a kind is pulled by workers (/v1/workers/claim) while
 * the engine drives the task. */
const char *store_task_driver(json_t *steps)
{
    size_t i;
    json_t *step;
    json_array_foreach(steps, i, step)
    {
        if (json_object_get(json_object_get(step, "do"), "sim"))
            return "sim";
    }
    json_array_foreach(steps, i, step)
    {
        json_t *remote = json_object_get(json_object_get(step, "do"), "remote");
        if (remote && !json_object_get(remote, "kind"))
            return "external";
    }
    return "engine";
}

/* Copies src into dst (size bytes), cutting at a UTF-8 character boundary when it must cut. */
void store_copy_utf8(char *dst, size_t size, const char *src)
{
    size_t n = strlen(src);
    if (n >= size) {
        n = size - 1;
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
}

int store_idem_decide(struct task_idem *k, bool found, const char *body_hash, int64_t created_ms,
                      int64_t now, struct err *e)
{
    k->replayed = false;
    if (!found || created_ms < now - k->ttl_ms)
        return STORE_IDEM_NEW;
    if (strcmp(body_hash, k->body_hash) != 0)
        return err_set(e, ERR_CONFLICT,
                       "Idempotency-Key \"%s\" was used with another request body; send the "
                       "first body again, or use a new key for a new task",
                       k->key);
    k->replayed = true;
    return STORE_IDEM_REPLAY;
}
