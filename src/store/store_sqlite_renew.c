/* The SQLite store's renewal by node: one UPDATE ... RETURNING in one write transaction renews
 * every live lease a node holds (or the listed ones), so a renewal round costs one commit (one
 * WAL fsync) however many tasks the node runs, where renewing per task cost one commit each.
 * Expiry is judged by this node's clock: an SQLite file has one node. */
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "store/store_sqlite_int.h"

/* The update, the conditions a live lease of ?1 meets at ?2 (now), the columns it returns. */
#define RENEW_SET     "UPDATE tasks SET lease_expires_ms = ?2 + ?3"
#define RENEW_LIVE    " lease_node = ?1 AND state = 'running' AND lease_expires_ms > ?2"
#define RENEW_RETURNS " RETURNING id, lease_no, pause_requested"

/* Every live lease of the node: the tasks_state index finds the running tasks. */
static const char *const renew_all_sql = RENEW_SET " WHERE" RENEW_LIVE RENEW_RETURNS;
/* Only the leases listed in ?4, a JSON array of [id, lease_no]. The list is built once into a
 * temporary index (the row-value IN) that each running task probes; a join on json_each instead
 * would scan the list once per task. */
static const char *const renew_only_sql =
    RENEW_SET " WHERE (id, lease_no) IN (SELECT j.value ->> 0, j.value ->> 1 FROM json_each(?4) j)"
              " AND" RENEW_LIVE RENEW_RETURNS;

struct renew_in {
    const char *node;
    int64_t lease_ms;
    const char *only_json; /* NULL: every live lease of node */
    size_t cap_hint;       /* the most rows the answer can have when only is given, else 0 */
};

struct renew_out {
    struct lease_renewal *v;
    size_t n, cap;
};

static void out_push(struct renew_out *o, sqlite3_stmt *st)
{
    if (o->n == o->cap) {
        o->cap = o->cap ? o->cap * 2 : 64;
        o->v = xrealloc(o->v, o->cap * sizeof *o->v);
    }
    struct lease_renewal *r = &o->v[o->n++];
    memset(r, 0, sizeof *r);
    sq_copy(r->id, sizeof r->id, sqlite3_column_text(st, 0));
    r->lease_no = sqlite3_column_int64(st, 1);
    r->pause_requested = sqlite3_column_int(st, 2) != 0;
}

/* Prepared per round, not cached on the connection: a round comes every third of a lease, and
 * preparing costs microseconds beside the commit. */
static int renew_tx(struct sq_conn *c, const void *inp, void *outp, struct err *e)
{
    const struct renew_in *in = inp;
    struct renew_out *o = outp;
    sqlite3_stmt *st = NULL;
    const char *sql = in->only_json ? renew_only_sql : renew_all_sql;
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK)
        return sq_fail(c, e, "preparing to renew this node's leases");
    sq_bind_text(st, 1, in->node);
    sqlite3_bind_int64(st, 2, sq_now_ms());
    sqlite3_bind_int64(st, 3, in->lease_ms);
    if (in->only_json)
        sqlite3_bind_text(st, 4, in->only_json, -1, SQLITE_STATIC);
    if (in->cap_hint) {
        o->cap = in->cap_hint;
        o->v = xcalloc(o->cap, sizeof *o->v);
    }
    int r, rc = 0;
    while ((r = sqlite3_step(st)) == SQLITE_ROW)
        out_push(o, st);
    if (r != SQLITE_DONE)
        rc = sq_fail(c, e, "renewing this node's leases");
    sqlite3_finalize(st);
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

int store_sqlite_node_renew(struct store *s, const char *node, int64_t lease_ms,
                            const struct lease_ref *only, size_t n_only, struct lease_renewal **out,
                            size_t *n, struct err *e)
{
    *out = NULL;
    *n = 0;
    if (only && n_only == 0)
        return 0; /* nothing to renew: no write */
    struct renew_in in = {node, lease_ms, NULL, only ? n_only : 0};
    if (only && !(in.only_json = refs_json(only, n_only)))
        return err_set(e, ERR_INTERNAL, "store: out of memory listing %zu leases to renew", n_only);
    struct renew_out o = {0};
    int rc = sq_write_tx(s, renew_tx, &in, &o, e);
    free((char *)in.only_json);
    if (rc != 0 || o.n == 0) {
        free(o.v);
        return rc;
    }
    *out = o.v;
    *n = o.n;
    return 0;
}
