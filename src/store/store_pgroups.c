/* The record of running exec steps' process groups (schema 6), once for both dialects, kept so
 * that a node's next start kills what a crash left behind. Two writes per exec step (one at its
 * start, one at its end): on SQLite group-committed with the rest, on PostgreSQL one statement
 * each without BEGIN; the list is read once at start. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "store/store.h"
#include "store/store_db.h"

static int record_fn(struct db_tx *t, void *ctx, struct err *e)
{
    const struct step_pgroup *g = ctx;
    return db_exec(t, DB_PGROUP_RECORD,
                   DB_ARGS(DB_TEXT(g->node), DB_INT(g->pgid), DB_TEXT(g->task_id),
                           DB_TEXT(g->boot_id), DB_INT(g->start_ticks), DB_INT(db_now_ms())),
                   "recording a step's process group", e);
}

int store_db_pgroup_record(struct store *s, const struct step_pgroup *g, struct err *e)
{
    return db_run(s, DB_WRITE_ONE, record_fn, (void *)g, e);
}

static int clear_fn(struct db_tx *t, void *ctx, struct err *e)
{
    const struct step_pgroup *g = ctx;
    return db_exec(t, DB_PGROUP_CLEAR, DB_ARGS(DB_TEXT(g->node), DB_INT(g->pgid)),
                   "clearing a step's process group", e);
}

int store_db_pgroup_clear(struct store *s, const char *node, int64_t pgid, struct err *e)
{
    struct step_pgroup g = {.pgid = pgid};
    snprintf(g.node, sizeof g.node, "%s", node);
    return db_run(s, DB_WRITE_ONE, clear_fn, &g, e);
}

struct list_ctx {
    const char *node;
    struct step_pgroup *rows;
    size_t n, cap;
};

static int list_fn(struct db_tx *t, void *ctx, struct err *e)
{
    struct list_ctx *l = ctx;
    const char *what = "listing this node's step process groups";
    l->n = 0;
    int rc = db_exec(t, DB_PGROUP_LIST, DB_ARGS(DB_TEXT(l->node)), what, e);
    while (rc == 0 && (rc = db_next(t, what, e)) == 1) {
        if (l->n == l->cap) {
            l->cap = l->cap ? l->cap * 2 : 8;
            l->rows = xrealloc(l->rows, l->cap * sizeof *l->rows);
        }
        struct step_pgroup *g = &l->rows[l->n++];
        memset(g, 0, sizeof *g);
        snprintf(g->node, sizeof g->node, "%s", l->node);
        g->pgid = db_int(t, 0);
        db_copy(t, 1, g->task_id, sizeof g->task_id);
        db_copy(t, 2, g->boot_id, sizeof g->boot_id);
        g->start_ticks = db_int(t, 3);
        rc = 0;
    }
    return rc;
}

int store_db_pgroup_list(struct store *s, const char *node, struct step_pgroup **out, size_t *n,
                         struct err *e)
{
    struct list_ctx l = {.node = node};
    int rc = db_run(s, DB_READ, list_fn, &l, e);
    if (rc != 0 || l.n == 0) {
        free(l.rows);
        l.rows = NULL;
        l.n = 0;
    }
    *out = l.rows;
    *n = l.n;
    return rc;
}
