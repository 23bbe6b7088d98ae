/* The PostgreSQL store's accounts and their key pairs (instances are store_instances.c, once for
 * both dialects). SecretKeys are sealed at rest (common/secretbox.h): written sealed, opened as
 * they are read. The sealing of secrets an older asyncd left in clear, DSNs among them, stays
 * here: it runs inside this dialect's schema migration. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/secretbox.h"
#include "common/xalloc.h"
#include "store/store_pg_int.h"
#include "store/store_plan.h"

/* ---- accounts ---- */

static int count_fn(struct pg_conn *c, void *ctx, struct err *e)
{
    PGresult *r;
    int rc = pg_exec(c, PG_ACCOUNT_COUNT, NULL, &r, "counting accounts", e);
    if (rc == 0)
        *(int64_t *)ctx = pg_int(r, 0, 0);
    PQclear(r);
    return rc;
}

int store_pg_account_count(struct store *s, int64_t *out, struct err *e)
{
    return pg_run(s, PG_TX_NONE, count_fn, out, e);
}

/* Adds an enabled key pair to uin in the caller's transaction; the SecretKey is sealed. */
static int key_insert(struct pg_conn *c, const char *uin, const char *secret_id,
                      const char *secret_key, int64_t now, struct err *e)
{
    char *key;
    int rc = secretbox_seal(secret_key, &key, e);
    if (rc != 0)
        return rc;
    struct pg_params p = {0};
    pp_text(&p, secret_id);
    pp_text(&p, uin);
    pp_text(&p, key);
    pp_int(&p, now);
    rc = pg_exec(c, PG_KEY_INSERT, &p, NULL, "inserting a key pair", e);
    free(key);
    if (rc == ERR_ALREADY_EXISTS)
        rc = err_set(e, ERR_ALREADY_EXISTS, "SecretId %s is already taken by another account",
                     secret_id);
    return rc;
}

/* The account and its first key pair, in the caller's transaction. */
static int account_insert_fn(struct pg_conn *c, void *ctx, struct err *e)
{
    const struct account *a = ctx;
    int64_t now = pg_now_ms();
    struct pg_params p = {0};
    pp_text(&p, a->uin);
    pp_text(&p, a->owner_uin);
    pp_text(&p, a->app_id);
    pp_int(&p, a->is_root);
    pp_text(&p, a->has_policy ? a->policy_json : NULL);
    pp_int(&p, now);
    pp_int(&p, a->disabled);
    int rc = pg_exec(c, PG_ACCOUNT_INSERT, &p, NULL, "inserting an account", e);
    if (rc == ERR_ALREADY_EXISTS)
        return err_set(e, ERR_ALREADY_EXISTS, "account %s already exists", a->uin);
    return rc ? rc : key_insert(c, a->uin, a->secret_id, a->secret_key, now, e);
}

int store_pg_account_create(struct store *s, const struct account *a, struct err *e)
{
    if (!a->uin[0] || !a->owner_uin[0] || !a->secret_id[0] || !a->secret_key[0])
        return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                       "an account needs a uin, owner_uin, SecretId and SecretKey");
    return pg_run(s, PG_TX_WRITE, account_insert_fn, (void *)a, e);
}

struct account_lookup {
    enum pg_stmt stmt;
    const char *key, *what;
    struct account *out;
    bool key_enabled; /* the key pair read with it is enabled */
};

static int account_from_row(const PGresult *r, struct account *out, struct err *e)
{
    memset(out, 0, sizeof *out);
    pg_copy(out->uin, sizeof out->uin, pg_str(r, 0, 0));
    pg_copy(out->owner_uin, sizeof out->owner_uin, pg_str(r, 0, 1));
    pg_copy(out->app_id, sizeof out->app_id, pg_str(r, 0, 2));
    pg_copy(out->secret_id, sizeof out->secret_id, pg_str(r, 0, 3));
    const char *sealed = pg_str(r, 0, 4); /* NULL: an account without a key */
    int rc = sealed ? secretbox_open_into(sealed, out->secret_key, sizeof out->secret_key, e) : 0;
    out->is_root = pg_int(r, 0, 5) != 0;
    const char *policy = pg_str(r, 0, 6);
    out->policy_json = policy && rc == 0 ? xstrdup(policy) : NULL;
    out->has_policy = policy != NULL;
    out->disabled = pg_int(r, 0, 7) != 0;
    out->owner_disabled = pg_int(r, 0, 8) != 0;
    return rc;
}

static int account_lookup_fn(struct pg_conn *c, void *ctx, struct err *e)
{
    struct account_lookup *l = ctx;
    struct pg_params p = {0};
    pp_text(&p, l->key);
    PGresult *r;
    int rc = pg_exec(c, l->stmt, &p, &r, "reading an account", e);
    if (rc != 0)
        return rc;
    if (PQntuples(r) == 0) {
        rc = err_set(e, ERR_NOT_FOUND, "no account with %s %s", l->what, l->key);
    } else {
        rc = account_from_row(r, l->out, e);
        const char *status = pg_str(r, 0, 9);
        l->key_enabled = status && strcmp(status, "enabled") == 0;
    }
    PQclear(r);
    return rc;
}

int store_pg_account_by_secret_id(struct store *s, const char *secret_id, struct account *out,
                                  struct err *e)
{
    struct account_lookup l = {PG_ACCOUNT_BY_SECRET, secret_id, "SecretId", out, false};
    int rc = pg_run(s, PG_TX_NONE, account_lookup_fn, &l, e);
    return rc ? rc : store_account_refuse_unusable(out, l.key_enabled, e);
}

int store_pg_account_by_uin(struct store *s, const char *uin, struct account *out, struct err *e)
{
    struct account_lookup l = {PG_ACCOUNT_BY_UIN, uin, "uin", out, false};
    return pg_run(s, PG_TX_NONE, account_lookup_fn, &l, e);
}

/* One UPDATE of up to three text parameters; ERR_NOT_FOUND with missing when it touched none. */
struct update_one {
    enum pg_stmt stmt;
    const char *p[3];
    int np;
    const char *what, *missing;
};

static int update_fn(struct pg_conn *c, void *ctx, struct err *e)
{
    struct update_one *u = ctx;
    struct pg_params p = {0};
    for (int i = 0; i < u->np; i++)
        pp_text(&p, u->p[i]);
    PGresult *r;
    int rc = pg_exec(c, u->stmt, &p, &r, u->what, e);
    if (rc == 0 && strcmp(PQcmdTuples(r), "0") == 0)
        rc = err_set(e, ERR_NOT_FOUND, "%s", u->missing);
    PQclear(r);
    return rc;
}

static int update_one(struct store *s, struct update_one *u, struct err *e)
{
    return pg_run(s, PG_TX_WRITE, update_fn, u, e);
}

int store_pg_account_set_policy(struct store *s, const char *uin, const char *policy_json,
                                struct err *e)
{
    char missing[64];
    snprintf(missing, sizeof missing, "no account with uin %.30s", uin);
    struct update_one u = {
        PG_ACCOUNT_SET_POLICY, {uin, policy_json}, 2, "setting an account's policy", missing};
    return update_one(s, &u, e);
}

int store_pg_account_set_disabled(struct store *s, const char *uin, bool disabled, struct err *e)
{
    char missing[64];
    snprintf(missing, sizeof missing, "no account with uin %.30s", uin);
    struct update_one u = {
        PG_ACCOUNT_SET_DISABLED, {uin, disabled ? "1" : "0"}, 2, "disabling an account", missing};
    return update_one(s, &u, e);
}

struct key_op {
    const char *uin, *secret_id, *secret_key;
    int max_keys;
    json_t **out;
};

static int key_create_fn(struct pg_conn *c, void *ctx, struct err *e)
{
    struct key_op *k = ctx;
    struct pg_params p = {0};
    pp_text(&p, k->uin);
    PGresult *r = NULL;
    /* The account's row stays locked until commit: a concurrent create for it waits, then
     * counts this one's key. */
    int rc = pg_exec(c, PG_ACCOUNT_LOCK, &p, &r, "locking an account", e);
    if (rc == 0 && PQntuples(r) == 0)
        rc = err_set(e, ERR_NOT_FOUND, "no account with uin %s", k->uin);
    PQclear(r);
    r = NULL;
    if (rc == 0)
        rc = pg_exec(c, PG_KEY_COUNT, &p, &r, "counting an account's keys", e);
    int64_t keys = rc == 0 ? pg_int(r, 0, 0) : 0;
    PQclear(r);
    if (rc == 0 && keys >= k->max_keys)
        rc = err_set(e, ERR_CONFLICT,
                     "account %s already has %lld key pairs, the most it may hold; delete one "
                     "(disable it first) before creating another",
                     k->uin, (long long)keys);
    return rc ? rc : key_insert(c, k->uin, k->secret_id, k->secret_key, pg_now_ms(), e);
}

int store_pg_account_key_create(struct store *s, const char *uin, const char *secret_id,
                                const char *secret_key, int max_keys, struct err *e)
{
    struct key_op k = {uin, secret_id, secret_key, max_keys, NULL};
    return pg_run(s, PG_TX_WRITE, key_create_fn, &k, e);
}

static int key_list_fn(struct pg_conn *c, void *ctx, struct err *e)
{
    struct key_op *k = ctx;
    struct pg_params p = {0};
    pp_text(&p, k->uin);
    PGresult *r;
    int rc = pg_exec(c, PG_KEY_LIST, &p, &r, "listing an account's keys", e);
    if (rc != 0)
        return rc;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return err_set(e, ERR_NOT_FOUND, "no account with uin %s", k->uin);
    }
    json_t *arr = json_array();
    for (int row = 0; row < PQntuples(r); row++)
        if (!PQgetisnull(r, row, 0)) /* else the account, without a key */
            json_array_append_new(
                arr, json_pack("{s:o, s:o, s:o}", "SecretId", pg_json_text(r, row, 0), "Status",
                               pg_json_text(r, row, 1), "created_ms", pg_json_int(r, row, 2)));
    PQclear(r);
    *k->out = arr;
    return 0;
}

int store_pg_account_key_list(struct store *s, const char *uin, json_t **out, struct err *e)
{
    *out = NULL;
    struct key_op k = {.uin = uin, .out = out};
    return pg_run(s, PG_TX_NONE, key_list_fn, &k, e);
}

int store_pg_account_key_set_enabled(struct store *s, const char *uin, const char *secret_id,
                                     bool enabled, struct err *e)
{
    char missing[128];
    snprintf(missing, sizeof missing, "account %.30s has no key pair %.64s", uin, secret_id);
    struct update_one u = {PG_KEY_SET_STATUS,
                           {uin, secret_id, enabled ? "enabled" : "disabled"},
                           3,
                           "changing a key pair's status",
                           missing};
    return update_one(s, &u, e);
}

static int key_delete_fn(struct pg_conn *c, void *ctx, struct err *e)
{
    struct key_op *k = ctx;
    struct pg_params p = {0};
    pp_text(&p, k->uin);
    pp_text(&p, k->secret_id);
    PGresult *r;
    int rc = pg_exec(c, PG_KEY_STATUS, &p, &r, "reading a key pair", e); /* locks the row */
    if (rc != 0)
        return rc;
    if (PQntuples(r) == 0)
        rc = err_set(e, ERR_NOT_FOUND, "account %s has no key pair %s", k->uin, k->secret_id);
    else if (strcmp(pg_str(r, 0, 0), "disabled") != 0)
        rc = store_key_delete_refused(k->uin, k->secret_id, e);
    PQclear(r);
    if (rc != 0)
        return rc;
    struct pg_params d = {0};
    pp_text(&d, k->secret_id);
    return pg_exec(c, PG_KEY_DELETE, &d, NULL, "deleting a key pair", e);
}

int store_pg_account_key_delete(struct store *s, const char *uin, const char *secret_id,
                                struct err *e)
{
    struct key_op k = {.uin = uin, .secret_id = secret_id};
    return pg_run(s, PG_TX_WRITE, key_delete_fn, &k, e);
}

struct first_root {
    const struct account *cand;
    char uin[24];
};

/* Under a transaction-scoped advisory lock, so nodes starting together agree on one root. */
static int first_root_fn(struct pg_conn *c, void *ctx, struct err *e)
{
    struct first_root *fr = ctx;
    PGresult *r = NULL;
    int rc = pg_exec_sql(c, "SELECT pg_advisory_xact_lock(7305911)", NULL, &r,
                         "locking the first-start", e);
    PQclear(r);
    if (rc == 0)
        rc = pg_exec_sql(c,
                         "SELECT uin FROM accounts WHERE is_root = 1"
                         " ORDER BY created_ms, uin LIMIT 1",
                         NULL, &r, "looking for the root account", e);
    if (rc == 0 && PQntuples(r) > 0)
        pg_copy(fr->uin, sizeof fr->uin, pg_str(r, 0, 0));
    PQclear(r);
    if (rc == 0 && !fr->uin[0]) {
        rc = account_insert_fn(c, (void *)fr->cand, e);
        pg_copy(fr->uin, sizeof fr->uin, fr->cand->uin);
    }
    return rc;
}

int store_pg_account_first_root(struct store *s, const struct account *cand, struct account *out,
                                struct err *e)
{
    struct first_root fr = {.cand = cand};
    int rc = pg_run(s, PG_TX_WRITE, first_root_fn, &fr, e);
    return rc ? rc : store_pg_account_by_uin(s, fr.uin, out, e);
}

/* ---- secrets an older asyncd left in clear ---- */

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
