/* The SQLite store's sealing of the secrets an older asyncd left in clear (SecretKeys, instance
 * DSNs): it runs inside this dialect's schema migration, on the writer. The accounts themselves
 * and their key pairs are store_accounts.c, once for both dialects. */
#include <stdlib.h>

#include "common/xalloc.h"
#include "store/store_plan.h"
#include "store/store_sqlite_int.h"

struct clear_row {
    char *key, *clear, *sealed; /* heap */
};

struct clear_rows {
    struct clear_row *v; /* heap, n of them */
    size_t n, cap;
};

static void clear_rows_free(struct clear_rows *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->v[i].key);
        free(r->v[i].clear);
        free(r->v[i].sealed);
    }
    free(r->v);
}

/* Reads col's clear values and seals each into r; all are read before any is written, as a
 * table changed under a running SELECT may or may not show the change to it. */
static int clear_rows_read(struct sq_conn *c, const struct store_secret_column *col,
                           struct clear_rows *r, struct err *e)
{
    char *sql = store_reseal_select_sql(col);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) == SQLITE_OK
                 ? 0
                 : sq_fail(c, e, "reading the secrets to seal");
    free(sql);
    int step = SQLITE_DONE;
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *clear = (const char *)sqlite3_column_text(st, 1);
        char *sealed;
        rc = store_reseal_value(clear, &sealed, e);
        if (rc <= 0) /* 0: no key loaded, nothing can be sealed */
            break;
        rc = 0;
        if (r->n == r->cap)
            r->v = xrealloc(r->v, (r->cap = r->cap ? 2 * r->cap : 16) * sizeof *r->v);
        r->v[r->n++] = (struct clear_row){.key = xstrdup((const char *)sqlite3_column_text(st, 0)),
                                          .clear = xstrdup(clear),
                                          .sealed = sealed};
    }
    if (rc == 0 && step != SQLITE_ROW && step != SQLITE_DONE)
        rc = sq_fail(c, e, "reading the secrets to seal");
    sqlite3_finalize(st);
    return rc;
}

/* Writes r's sealed values over the clear ones of col. */
static int clear_rows_write(struct sq_conn *c, const struct store_secret_column *col,
                            const struct clear_rows *r, struct err *e)
{
    if (r->n == 0)
        return 0;
    char *sql = store_reseal_update_sql(col, '?');
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) == SQLITE_OK
                 ? 0
                 : sq_fail(c, e, "sealing the secrets stored in clear");
    free(sql);
    for (size_t i = 0; rc == 0 && i < r->n; i++) {
        sqlite3_reset(st);
        sq_bind_text(st, 1, r->v[i].sealed);
        sq_bind_text(st, 2, r->v[i].key);
        sq_bind_text(st, 3, r->v[i].clear);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = sq_fail(c, e, "sealing the secrets stored in clear");
    }
    sqlite3_finalize(st);
    return rc;
}

int sq_reseal_secrets(struct sq_conn *c, struct err *e)
{
    size_t sealed[STORE_SECRET_COLUMNS] = {0};
    int rc = 0;
    for (int i = 0; rc == 0 && i < STORE_SECRET_COLUMNS; i++) {
        struct clear_rows r = {0};
        rc = clear_rows_read(c, &store_secret_columns[i], &r, e);
        if (rc == 0)
            rc = clear_rows_write(c, &store_secret_columns[i], &r, e);
        sealed[i] = r.n;
        clear_rows_free(&r);
    }
    if (rc == 0)
        store_reseal_log(sealed);
    return rc;
}
