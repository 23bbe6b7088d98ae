/* Lease renewal and release, once for both dialects (store_db.h). A renewal is one fenced
 * UPDATE ... RETURNING: by task (the holder's lease_no must match), or by node, where one
 * statement renews every live lease the node holds (or the listed ones), so a renewal round
 * costs one write however many tasks the node runs. Expiry is judged by the database's clock on
 * PostgreSQL (DESIGN.md 5) and by this node's on SQLite, which has one node: the node's "now" is
 * passed last and PostgreSQL's SQL leaves it out. */
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "store/store.h"
#include "store/store_db.h"

/* --- by task --- */

struct renew_op {
    const char *id;
    int64_t lease_no, lease_ms;
    struct task_lease_state *out;
};

static int renew_fn(struct db_tx *t, void *ctx, struct err *e)
{
    struct renew_op *op = ctx;
    const char *what = "renewing a lease";
    memset(op->out, 0, sizeof *op->out); /* PostgreSQL may run this again */
    int rc = db_exec_row(
        t, DB_LEASE_RENEW,
        DB_ARGS(DB_TEXT(op->id), DB_INT(op->lease_no), DB_INT(op->lease_ms), DB_INT(db_now_ms())),
        what, e);
    if (rc != 1)
        return rc;
    op->out->held = true;
    op->out->pause_requested = db_int(t, 0) != 0;
    return 0;
}

int store_db_task_renew(struct store *s, const char *id, int64_t lease_no, int64_t lease_ms,
                        struct task_lease_state *out, struct err *e)
{
    struct renew_op op = {id, lease_no, lease_ms, out};
    int rc = db_run(s, DB_WRITE_ONE, renew_fn, &op, e);
    if (rc != 0)
        memset(out, 0, sizeof *out);
    return rc;
}

/* --- by node --- */

struct node_renew_op {
    const char *node;
    int64_t lease_ms;
    const char *only_json; /* [[id, lease_no], ...]; NULL: every live lease of node */
    size_t cap_hint;       /* the most rows the answer can have when only is given, else 0 */
    struct lease_renewal *v;
    size_t n, cap;
};

static void renewal_push(struct node_renew_op *op, struct db_tx *t)
{
    if (op->n == op->cap) {
        op->cap = op->cap ? op->cap * 2 : 64;
        op->v = xrealloc(op->v, op->cap * sizeof *op->v);
    }
    struct lease_renewal *r = &op->v[op->n++];
    memset(r, 0, sizeof *r);
    db_copy(t, 0, r->id, sizeof r->id);
    r->lease_no = db_int(t, 1);
    r->pause_requested = db_int(t, 2) != 0;
}

static int node_renew_fn(struct db_tx *t, void *ctx, struct err *e)
{
    struct node_renew_op *op = ctx;
    const char *what = "renewing this node's leases";
    op->n = 0; /* the answer is read afresh on every run (PostgreSQL may retry) */
    if (op->cap_hint && !op->v) {
        op->cap = op->cap_hint;
        op->v = xcalloc(op->cap, sizeof *op->v);
    }
    int64_t now = db_now_ms();
    int rc = op->only_json
                 ? db_exec(t, DB_NODE_RENEW_ONLY,
                           DB_ARGS(DB_TEXT(op->node), DB_INT(op->lease_ms), DB_TEXT(op->only_json),
                                   DB_INT(now)),
                           what, e)
                 : db_exec(t, DB_NODE_RENEW,
                           DB_ARGS(DB_TEXT(op->node), DB_INT(op->lease_ms), DB_INT(now)), what, e);
    while (rc == 0 && (rc = db_next(t, what, e)) == 1) {
        renewal_push(op, t);
        rc = 0;
    }
    return rc;
}

/* [[id, lease_no], ...]: the list as one bound parameter, whatever its length. */
static char *refs_json(const struct lease_ref *only, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_pack("[s, I]", only[i].id, (json_int_t)only[i].lease_no));
    char *text = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    return text;
}

int store_db_node_renew(struct store *s, const char *node, int64_t lease_ms,
                        const struct lease_ref *only, size_t n_only, struct lease_renewal **out,
                        size_t *n, struct err *e)
{
    *out = NULL;
    *n = 0;
    if (only && n_only == 0)
        return 0; /* nothing to renew: no write */
    struct node_renew_op op = {.node = node, .lease_ms = lease_ms, .cap_hint = only ? n_only : 0};
    if (only && !(op.only_json = refs_json(only, n_only)))
        return err_set(e, ERR_INTERNAL, "store: out of memory listing %zu leases to renew", n_only);
    int rc = db_run(s, DB_WRITE_ONE, node_renew_fn, &op, e);
    free((char *)op.only_json);
    if (rc != 0 || op.n == 0) {
        free(op.v);
        return rc;
    }
    *out = op.v;
    *n = op.n;
    return 0;
}

static int release_fn(struct db_tx *t, void *ctx, struct err *e)
{
    return db_exec(t, DB_RELEASE_NODE, DB_ARGS(DB_TEXT(ctx)), "releasing this node's old leases",
                   e);
}

int store_db_release_node_leases(struct store *s, const char *node, struct err *e)
{
    return db_run(s, DB_WRITE_ONE, release_fn, (void *)node, e);
}
