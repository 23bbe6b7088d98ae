/* The SQLite store's record of running exec steps' process groups (schema 6), kept so that a
 * node's next start kills what a crash left behind. Two writes per exec step (one at its start,
 * one at its end), group-committed with the rest; the list, read once at start, is prepared per
 * call. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "store/store_sqlite_int.h"

struct pgroup_write {
    enum sq_slot slot;
    const char *sql, *what;
    const struct step_pgroup *g;
};

/* Runs one write statement with (node, pgid) and, for a record, the rest bound. */
static int pgroup_write_tx(struct sq_conn *c, const void *inp, void *out, struct err *e)
{
    (void)out;
    const struct pgroup_write *in = inp;
    const struct step_pgroup *g = in->g;
    sqlite3_stmt *st;
    int rc = sq_stmt(c, in->slot, in->sql, &st, e);
    if (rc != 0)
        return rc;
    sq_bind_text(st, 1, g->node);
    sqlite3_bind_int64(st, 2, g->pgid);
    if (sqlite3_bind_parameter_count(st) > 2) {
        sq_bind_text(st, 3, g->task_id);
        sq_bind_text(st, 4, g->boot_id);
        sqlite3_bind_int64(st, 5, g->start_ticks);
        sqlite3_bind_int64(st, 6, sq_now_ms());
    }
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = sq_fail(c, e, in->what);
    sq_done(st);
    return rc;
}

int store_sqlite_pgroup_record(struct store *s, const struct step_pgroup *g, struct err *e)
{
    struct pgroup_write in = {SQ_PGROUP_RECORD,
                              "INSERT OR REPLACE INTO step_pgroups(node, pgid, task_id, boot_id,"
                              " start_ticks, created_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
                              "recording a step's process group", g};
    return sq_write_tx(s, pgroup_write_tx, &in, NULL, e);
}

int store_sqlite_pgroup_clear(struct store *s, const char *node, int64_t pgid, struct err *e)
{
    struct step_pgroup g = {.pgid = pgid};
    snprintf(g.node, sizeof g.node, "%s", node);
    struct pgroup_write in = {SQ_PGROUP_CLEAR,
                              "DELETE FROM step_pgroups WHERE node = ?1 AND pgid = ?2",
                              "clearing a step's process group", &g};
    return sq_write_tx(s, pgroup_write_tx, &in, NULL, e);
}

int store_sqlite_pgroup_list(struct store *s, const char *node, struct step_pgroup **out, size_t *n,
                             struct err *e)
{
    *out = NULL;
    *n = 0;
    struct sq_conn *c = sq_reader_acquire(sq_of(s));
    sqlite3_stmt *st = NULL;
    int rc = 0;
    if (sqlite3_prepare_v2(c->db,
                           "SELECT pgid, task_id, boot_id, start_ticks FROM step_pgroups"
                           " WHERE node = ?1 ORDER BY created_ms",
                           -1, &st, NULL) != SQLITE_OK)
        rc = sq_fail(c, e, "listing this node's step process groups");
    if (rc == 0)
        sq_bind_text(st, 1, node);
    size_t cap = 0;
    int r;
    while (rc == 0 && (r = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            *out = xrealloc(*out, cap * sizeof **out);
        }
        struct step_pgroup *g = &(*out)[(*n)++];
        memset(g, 0, sizeof *g);
        snprintf(g->node, sizeof g->node, "%s", node);
        g->pgid = sqlite3_column_int64(st, 0);
        sq_copy(g->task_id, sizeof g->task_id, sqlite3_column_text(st, 1));
        sq_copy(g->boot_id, sizeof g->boot_id, sqlite3_column_text(st, 2));
        g->start_ticks = sqlite3_column_int64(st, 3);
    }
    if (rc == 0 && r != SQLITE_DONE)
        rc = sq_fail(c, e, "listing this node's step process groups");
    sqlite3_finalize(st);
    sq_release(c);
    if (rc != 0) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return rc;
}
