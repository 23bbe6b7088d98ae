/* The PostgreSQL store's sealing of the secrets an older asyncd left in clear (SecretKeys,
 * instance DSNs): it runs inside this dialect's schema migration, under its lock. The accounts
 * themselves and their key pairs are store_accounts.c, once for both dialects. */
#include <stdlib.h>

#include "store/store_pg_int.h"
#include "store/store_plan.h"

/* Seals col's clear values; *n counts them. The result holds every row before the first write. */
static int reseal_column(struct pg_conn *c, const struct store_secret_column *col, size_t *n,
                         struct err *e)
{
    char *select = store_reseal_select_sql(col), *update = store_reseal_update_sql(col, '$');
    PGresult *r = NULL;
    int rc = pg_exec_sql(c, select, NULL, &r, "reading the secrets to seal", e);
    for (int row = 0; rc == 0 && row < (r ? PQntuples(r) : 0); row++) {
        const char *clear = pg_str(r, row, 1);
        char *sealed;
        int got = store_reseal_value(clear, &sealed, e);
        if (got <= 0) { /* 0: no key loaded, nothing can be sealed */
            rc = got;
            break;
        }
        struct pg_params p = {0};
        pp_text(&p, sealed);
        pp_text(&p, pg_str(r, row, 0));
        pp_text(&p, clear);
        rc = pg_exec_sql(c, update, &p, NULL, "sealing the secrets stored in clear", e);
        free(sealed);
        *n += rc == 0;
    }
    PQclear(r);
    free(select);
    free(update);
    return rc;
}

int pg_reseal_secrets(struct pg_conn *c, struct err *e)
{
    size_t sealed[STORE_SECRET_COLUMNS] = {0};
    int rc = 0;
    for (int i = 0; rc == 0 && i < STORE_SECRET_COLUMNS; i++)
        rc = reseal_column(c, &store_secret_columns[i], &sealed[i], e);
    if (rc == 0)
        store_reseal_log(sealed);
    return rc;
}
