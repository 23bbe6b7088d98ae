/* The PostgreSQL store's record of running exec steps' process groups (schema 6), kept so that a
 * node's next start kills what a crash left behind. Rare statements (one at a step's start, one
 * at its end): not prepared. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "store/store_pg_int.h"

static int record_fn(struct pg_conn *c, void *ctx, struct err *e)
{
    const struct step_pgroup *g = ctx;
    struct pg_params p = {0};
    pp_text(&p, g->node);
    pp_int(&p, g->pgid);
    pp_text(&p, g->task_id);
    pp_text(&p, g->boot_id);
    pp_int(&p, g->start_ticks);
    pp_int(&p, pg_now_ms());
    return pg_exec_sql(c,
                       "INSERT INTO step_pgroups(node, pgid, task_id, boot_id, start_ticks,"
                       " created_ms) VALUES($1::text, $2::bigint, $3::text, $4::text,"
                       " $5::bigint, $6::bigint) ON CONFLICT (node, pgid) DO UPDATE SET"
                       " task_id = excluded.task_id, boot_id = excluded.boot_id,"
                       " start_ticks = excluded.start_ticks, created_ms = excluded.created_ms",
                       &p, NULL, "recording a step's process group", e);
}

int store_pg_pgroup_record(struct store *s, const struct step_pgroup *g, struct err *e)
{
    return pg_run(s, PG_TX_NONE, record_fn, (void *)g, e);
}

static int clear_fn(struct pg_conn *c, void *ctx, struct err *e)
{
    const struct step_pgroup *g = ctx;
    struct pg_params p = {0};
    pp_text(&p, g->node);
    pp_int(&p, g->pgid);
    return pg_exec_sql(c, "DELETE FROM step_pgroups WHERE node = $1::text AND pgid = $2::bigint",
                       &p, NULL, "clearing a step's process group", e);
}

int store_pg_pgroup_clear(struct store *s, const char *node, int64_t pgid, struct err *e)
{
    struct step_pgroup g = {.pgid = pgid};
    snprintf(g.node, sizeof g.node, "%s", node);
    return pg_run(s, PG_TX_NONE, clear_fn, &g, e);
}

struct list_ctx {
    const char *node;
    struct step_pgroup *rows;
    size_t n;
};

static int list_fn(struct pg_conn *c, void *ctx, struct err *e)
{
    struct list_ctx *l = ctx;
    struct pg_params p = {0};
    pp_text(&p, l->node);
    PGresult *r;
    int rc = pg_exec_sql(c,
                         "SELECT pgid, task_id, boot_id, start_ticks FROM step_pgroups"
                         " WHERE node = $1::text ORDER BY created_ms",
                         &p, &r, "listing this node's step process groups", e);
    if (rc != 0)
        return rc;
    l->n = (size_t)PQntuples(r);
    l->rows = l->n ? xcalloc(l->n, sizeof *l->rows) : NULL;
    for (size_t i = 0; i < l->n; i++) {
        struct step_pgroup *g = &l->rows[i];
        snprintf(g->node, sizeof g->node, "%s", l->node);
        g->pgid = pg_int(r, (int)i, 0);
        pg_copy(g->task_id, sizeof g->task_id, pg_str(r, (int)i, 1));
        pg_copy(g->boot_id, sizeof g->boot_id, pg_str(r, (int)i, 2));
        g->start_ticks = pg_int(r, (int)i, 3);
    }
    PQclear(r);
    return 0;
}

int store_pg_pgroup_list(struct store *s, const char *node, struct step_pgroup **out, size_t *n,
                         struct err *e)
{
    struct list_ctx l = {.node = node};
    int rc = pg_run(s, PG_TX_NONE, list_fn, &l, e);
    *out = rc == 0 ? l.rows : NULL;
    *n = rc == 0 ? l.n : 0;
    if (rc != 0)
        free(l.rows);
    return rc;
}
