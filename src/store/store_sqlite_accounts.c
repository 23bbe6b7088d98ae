/* The SQLite store's accounts and their key pairs (instances are store_instances.c, once for
 * both dialects). SecretKeys are sealed at rest (common/secretbox.h): written sealed, opened as
 * they are read. The sealing of secrets an older asyncd left in clear, DSNs among them, stays
 * here: it runs inside this dialect's schema migration. */
#include <stdlib.h>
#include <string.h>

#include "common/secretbox.h"
#include "common/xalloc.h"
#include "store/store_plan.h"
#include "store/store_sqlite_int.h"

/* An account row with the key pair it is read with (k), and its root account (o) for the
 * disabled flag a root passes on to its sub-accounts. */
#define ACCOUNT_SELECT                                                                             \
    "SELECT a.uin, a.owner_uin, a.app_id, k.secret_id, k.secret_key, a.is_root, a.policy_json,"    \
    " a.disabled, COALESCE(o.disabled, 0), k.status FROM accounts a"                               \
    " LEFT JOIN accounts o ON o.uin = a.owner_uin AND o.uin <> a.uin "

static bool is_constraint(struct sq_conn *c, int extended)
{
    return sqlite3_extended_errcode(c->db) == extended;
}

int store_sqlite_account_count(struct store *s, int64_t *out, struct err *e)
{
    struct sq_conn *c = sq_reader_acquire(sq_of(s));
    sqlite3_stmt *st;
    int rc = sq_stmt(c, SQ_ACCOUNT_COUNT, "SELECT count(*) FROM accounts", &st, e);
    if (rc == 0) {
        if (sqlite3_step(st) == SQLITE_ROW)
            *out = sqlite3_column_int64(st, 0);
        else
            rc = sq_fail(c, e, "counting accounts");
    }
    sq_done(st);
    sq_release(c);
    return rc;
}

/* Adds an enabled key pair to uin in the caller's write transaction; the SecretKey is sealed. */
static int key_insert(struct sq_conn *c, const char *uin, const char *secret_id,
                      const char *secret_key, int64_t now, struct err *e)
{
    sqlite3_stmt *st;
    char *key = NULL;
    int rc = secretbox_seal(secret_key, &key, e);
    if (rc == 0)
        rc = sq_stmt(c, SQ_KEY_INSERT,
                     "INSERT INTO account_keys(secret_id, uin, secret_key, status, created_ms)"
                     " VALUES(?1, ?2, ?3, 'enabled', ?4)",
                     &st, e);
    if (rc != 0) {
        free(key);
        return rc;
    }
    sq_bind_text(st, 1, secret_id);
    sq_bind_text(st, 2, uin);
    sq_bind_text(st, 3, key);
    sqlite3_bind_int64(st, 4, now);
    if (sqlite3_step(st) != SQLITE_DONE) {
        if (is_constraint(c, SQLITE_CONSTRAINT_PRIMARYKEY))
            rc = err_set(e, ERR_ALREADY_EXISTS, "SecretId %s is already taken by another account",
                         secret_id);
        else
            rc = sq_fail(c, e, "inserting a key pair");
    }
    sq_done(st);
    free(key);
    return rc;
}

/* The account and its first key pair, in the caller's write transaction. */
static int account_insert(struct sq_conn *c, const struct account *a, struct err *e)
{
    sqlite3_stmt *st;
    int64_t now = sq_now_ms();
    int rc = sq_stmt(c, SQ_ACCOUNT_INSERT,
                     "INSERT INTO accounts(uin, owner_uin, app_id, is_root, policy_json,"
                     " created_ms, disabled) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                     &st, e);
    if (rc != 0)
        return rc;
    sq_bind_text(st, 1, a->uin);
    sq_bind_text(st, 2, a->owner_uin);
    sq_bind_text(st, 3, a->app_id);
    sqlite3_bind_int(st, 4, a->is_root);
    sq_bind_text(st, 5, a->has_policy ? a->policy_json : NULL);
    sqlite3_bind_int64(st, 6, now);
    sqlite3_bind_int(st, 7, a->disabled);
    if (sqlite3_step(st) != SQLITE_DONE) {
        if (is_constraint(c, SQLITE_CONSTRAINT_PRIMARYKEY))
            rc = err_set(e, ERR_ALREADY_EXISTS, "account %s already exists", a->uin);
        else
            rc = sq_fail(c, e, "inserting an account");
    }
    sq_done(st);
    return rc ? rc : key_insert(c, a->uin, a->secret_id, a->secret_key, now, e);
}

static int account_create_tx(struct sq_conn *c, const void *in, void *out, struct err *e)
{
    (void)out;
    return account_insert(c, in, e);
}

int store_sqlite_account_create(struct store *s, const struct account *a, struct err *e)
{
    if (!a->uin[0] || !a->owner_uin[0] || !a->secret_id[0] || !a->secret_key[0])
        return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                       "an account needs a uin, owner_uin, SecretId and SecretKey");
    return sq_write_tx(s, account_create_tx, a, NULL, e);
}

/* Fills out from an ACCOUNT_SELECT row; an account without a key has secret_id "". */
static int account_from_row(sqlite3_stmt *st, struct account *out, struct err *e)
{
    memset(out, 0, sizeof *out);
    sq_copy(out->uin, sizeof out->uin, sqlite3_column_text(st, 0));
    sq_copy(out->owner_uin, sizeof out->owner_uin, sqlite3_column_text(st, 1));
    sq_copy(out->app_id, sizeof out->app_id, sqlite3_column_text(st, 2));
    sq_copy(out->secret_id, sizeof out->secret_id, sqlite3_column_text(st, 3));
    const char *sealed = (const char *)sqlite3_column_text(st, 4);
    int rc = sealed ? secretbox_open_into(sealed, out->secret_key, sizeof out->secret_key, e) : 0;
    if (rc != 0)
        return rc;
    out->is_root = sqlite3_column_int(st, 5) != 0;
    const unsigned char *policy = sqlite3_column_text(st, 6);
    out->policy_json = policy ? xstrdup((const char *)policy) : NULL;
    out->has_policy = policy != NULL;
    out->disabled = sqlite3_column_int(st, 7) != 0;
    out->owner_disabled = sqlite3_column_int(st, 8) != 0;
    return 0;
}

/* One account by key (uin or SecretId): ERR_NOT_FOUND when absent. *key_enabled (may be NULL)
 * tells whether the key pair read with it is enabled. */
static int account_lookup(struct store *s, enum sq_slot slot, const char *sql, const char *key,
                          const char *what, struct account *out, bool *key_enabled, struct err *e)
{
    struct sq_conn *c = sq_reader_acquire(sq_of(s));
    sqlite3_stmt *st;
    int rc = sq_stmt(c, slot, sql, &st, e);
    if (rc == 0) {
        sq_bind_text(st, 1, key);
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW) {
            rc = account_from_row(st, out, e);
            const char *status = (const char *)sqlite3_column_text(st, 9);
            if (key_enabled)
                *key_enabled = status && strcmp(status, "enabled") == 0;
        } else if (step == SQLITE_DONE) {
            rc = err_set(e, ERR_NOT_FOUND, "no account with %s %s", what, key);
        } else {
            rc = sq_fail(c, e, "reading an account");
        }
    }
    sq_done(st);
    sq_release(c);
    return rc;
}

int store_sqlite_account_by_secret_id(struct store *s, const char *secret_id, struct account *out,
                                      struct err *e)
{
    bool enabled = false;
    int rc = account_lookup(s, SQ_ACCOUNT_BY_SECRET,
                            ACCOUNT_SELECT "JOIN account_keys k ON k.uin = a.uin"
                                           " WHERE k.secret_id = ?1",
                            secret_id, "SecretId", out, &enabled, e);
    if (rc == 0)
        rc = store_account_refuse_unusable(out, enabled, e);
    return rc;
}

/* The first enabled key pair (else the first one) comes with it: main.c opens its SecretKey to
 * check the secret key file. */
int store_sqlite_account_by_uin(struct store *s, const char *uin, struct account *out,
                                struct err *e)
{
    return account_lookup(s, SQ_ACCOUNT_BY_UIN,
                          ACCOUNT_SELECT "LEFT JOIN account_keys k ON k.secret_id ="
                                         " (SELECT secret_id FROM account_keys WHERE uin = a.uin"
                                         " ORDER BY status = 'enabled' DESC, created_ms, secret_id"
                                         " LIMIT 1) WHERE a.uin = ?1",
                          uin, "uin", out, NULL, e);
}

struct write_one_in {
    enum sq_slot slot;
    const char *sql, *p1, *p2, *p3, *what;
};

/* One write statement of up to three text parameters; out (int) gets the rows it touched. */
static int write_one_tx(struct sq_conn *c, const void *inp, void *out, struct err *e)
{
    const struct write_one_in *in = inp;
    sqlite3_stmt *st;
    int rc = sq_stmt(c, in->slot, in->sql, &st, e);
    if (rc != 0)
        return rc;
    sq_bind_text(st, 1, in->p1);
    sq_bind_text(st, 2, in->p2);
    sq_bind_text(st, 3, in->p3);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = sq_fail(c, e, in->what);
    else
        *(int *)out = sqlite3_changes(c->db);
    sq_done(st);
    return rc;
}

/* write_one_tx in its own transaction; *changes gets the rows it touched. */
static int write_one(struct store *s, enum sq_slot slot, const char *sql, const char *p1,
                     const char *p2, const char *p3, const char *what, int *changes, struct err *e)
{
    struct write_one_in in = {slot, sql, p1, p2, p3, what};
    return sq_write_tx(s, write_one_tx, &in, changes, e);
}

int store_sqlite_account_set_policy(struct store *s, const char *uin, const char *policy_json,
                                    struct err *e)
{
    int n = 0;
    int rc =
        write_one(s, SQ_ACCOUNT_SET_POLICY, "UPDATE accounts SET policy_json = ?2 WHERE uin = ?1",
                  uin, policy_json, NULL, "setting an account's policy", &n, e);
    return rc == 0 && n == 0 ? err_set(e, ERR_NOT_FOUND, "no account with uin %s", uin) : rc;
}

int store_sqlite_account_set_disabled(struct store *s, const char *uin, bool disabled,
                                      struct err *e)
{
    int n = 0;
    int rc = write_one(s, SQ_ACCOUNT_SET_DISABLED,
                       "UPDATE accounts SET disabled = CAST(?2 AS INTEGER) WHERE uin = ?1", uin,
                       disabled ? "1" : "0", NULL, "disabling an account", &n, e);
    return rc == 0 && n == 0 ? err_set(e, ERR_NOT_FOUND, "no account with uin %s", uin) : rc;
}

/* Whether uin exists (*exists) and how many keys it holds (*keys), on c. */
static int account_key_count(struct sq_conn *c, const char *uin, bool *exists, int64_t *keys,
                             struct err *e)
{
    sqlite3_stmt *st;
    int rc = sq_stmt(c, SQ_ACCOUNT_EXISTS,
                     "SELECT (SELECT count(*) FROM accounts WHERE uin = ?1),"
                     " (SELECT count(*) FROM account_keys WHERE uin = ?1)",
                     &st, e);
    if (rc != 0)
        return rc;
    sq_bind_text(st, 1, uin);
    if (sqlite3_step(st) == SQLITE_ROW) {
        *exists = sqlite3_column_int64(st, 0) > 0;
        *keys = sqlite3_column_int64(st, 1);
    } else {
        rc = sq_fail(c, e, "counting an account's keys");
    }
    sq_done(st);
    return rc;
}

struct key_create_in {
    const char *uin, *secret_id, *secret_key;
    int max_keys;
};

static int key_create_tx(struct sq_conn *c, const void *inp, void *out, struct err *e)
{
    (void)out;
    const struct key_create_in *in = inp;
    const char *uin = in->uin;
    int max_keys = in->max_keys;
    bool exists = false;
    int64_t keys = 0;
    /* Counted and inserted in one closure on the one writer, where closures run one after
     * another (each sees the ones before it): two creates cannot both pass. */
    int rc = account_key_count(c, uin, &exists, &keys, e);
    if (rc == 0 && !exists)
        rc = err_set(e, ERR_NOT_FOUND, "no account with uin %s", uin);
    else if (rc == 0 && keys >= max_keys)
        rc = err_set(e, ERR_CONFLICT,
                     "account %s already has %lld key pairs, the most it may hold; delete one "
                     "(disable it first) before creating another",
                     uin, (long long)keys);
    if (rc == 0)
        rc = key_insert(c, uin, in->secret_id, in->secret_key, sq_now_ms(), e);
    return rc;
}

int store_sqlite_account_key_create(struct store *s, const char *uin, const char *secret_id,
                                    const char *secret_key, int max_keys, struct err *e)
{
    struct key_create_in in = {uin, secret_id, secret_key, max_keys};
    return sq_write_tx(s, key_create_tx, &in, NULL, e);
}

int store_sqlite_account_key_list(struct store *s, const char *uin, json_t **out, struct err *e)
{
    *out = NULL;
    struct sq_conn *c = sq_reader_acquire(sq_of(s));
    sqlite3_stmt *st;
    int rc = sq_stmt(c, SQ_KEY_LIST,
                     "SELECT k.secret_id, k.status, k.created_ms FROM accounts a"
                     " LEFT JOIN account_keys k ON k.uin = a.uin WHERE a.uin = ?1"
                     " ORDER BY k.created_ms, k.secret_id",
                     &st, e);
    if (rc == 0) {
        sq_bind_text(st, 1, uin);
        json_t *arr = json_array();
        int step, rows = 0;
        while ((step = sqlite3_step(st)) == SQLITE_ROW) {
            rows++;
            if (sqlite3_column_type(st, 0) == SQLITE_NULL)
                continue; /* the account, without a key */
            json_array_append_new(
                arr, json_pack("{s:o, s:o, s:o}", "SecretId", sq_col_json_text(st, 0), "Status",
                               sq_col_json_text(st, 1), "created_ms", sq_col_json_int(st, 2)));
        }
        if (step != SQLITE_DONE)
            rc = sq_fail(c, e, "listing an account's keys");
        else if (rows == 0)
            rc = err_set(e, ERR_NOT_FOUND, "no account with uin %s", uin);
        if (rc == 0)
            *out = arr;
        else
            json_decref(arr);
    }
    sq_done(st);
    sq_release(c);
    return rc;
}

int store_sqlite_account_key_set_enabled(struct store *s, const char *uin, const char *secret_id,
                                         bool enabled, struct err *e)
{
    int n = 0;
    int rc = write_one(s, SQ_KEY_SET_STATUS,
                       "UPDATE account_keys SET status = ?3 WHERE uin = ?1 AND secret_id = ?2", uin,
                       secret_id, enabled ? "enabled" : "disabled", "changing a key pair's status",
                       &n, e);
    if (rc == 0 && n == 0)
        rc = err_set(e, ERR_NOT_FOUND, "account %s has no key pair %s", uin, secret_id);
    return rc;
}

/* The status of uin's key secret_id on c into status[16]; ERR_NOT_FOUND when it has none. */
static int key_status(struct sq_conn *c, const char *uin, const char *secret_id, char status[16],
                      struct err *e)
{
    sqlite3_stmt *st;
    int rc = sq_stmt(c, SQ_KEY_STATUS,
                     "SELECT status FROM account_keys WHERE uin = ?1 AND secret_id = ?2", &st, e);
    if (rc != 0)
        return rc;
    sq_bind_text(st, 1, uin);
    sq_bind_text(st, 2, secret_id);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        sq_copy(status, 16, sqlite3_column_text(st, 0));
    else if (step == SQLITE_DONE)
        rc = err_set(e, ERR_NOT_FOUND, "account %s has no key pair %s", uin, secret_id);
    else
        rc = sq_fail(c, e, "reading a key pair");
    sq_done(st);
    return rc;
}

struct key_ref {
    const char *uin, *secret_id;
};

static int key_delete_tx(struct sq_conn *c, const void *inp, void *out, struct err *e)
{
    (void)out;
    const struct key_ref *in = inp;
    const char *uin = in->uin, *secret_id = in->secret_id;
    sqlite3_stmt *st = NULL;
    char status[16] = "";
    int rc = key_status(c, uin, secret_id, status, e);
    if (rc == 0 && strcmp(status, "disabled") != 0)
        rc = store_key_delete_refused(uin, secret_id, e);
    if (rc == 0)
        rc = sq_stmt(c, SQ_KEY_DELETE, "DELETE FROM account_keys WHERE secret_id = ?1", &st, e);
    if (rc == 0) {
        sq_bind_text(st, 1, secret_id);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = sq_fail(c, e, "deleting a key pair");
    }
    sq_done(st);
    return rc;
}

int store_sqlite_account_key_delete(struct store *s, const char *uin, const char *secret_id,
                                    struct err *e)
{
    struct key_ref in = {uin, secret_id};
    return sq_write_tx(s, key_delete_tx, &in, NULL, e);
}

/* The uin of the oldest root account in the caller's transaction, or "" when there is none. */
static int oldest_root(struct sq_conn *c, char uin[24], struct err *e)
{
    sqlite3_stmt *st = NULL;
    int rc = 0;
    uin[0] = '\0';
    if (sqlite3_prepare_v2(c->db,
                           "SELECT uin FROM accounts WHERE is_root = 1"
                           " ORDER BY created_ms, rowid LIMIT 1",
                           -1, &st, NULL) != SQLITE_OK)
        return sq_fail(c, e, "preparing the root account lookup");
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW)
        sq_copy(uin, 24, sqlite3_column_text(st, 0));
    else if (r != SQLITE_DONE)
        rc = sq_fail(c, e, "looking for the root account");
    sqlite3_finalize(st);
    return rc;
}

/* The oldest root account's uin into out (char[24]), inserting cand when there is none. */
static int first_root_tx(struct sq_conn *c, const void *inp, void *out, struct err *e)
{
    const struct account *cand = inp;
    char *uin = out;
    int rc = oldest_root(c, uin, e);
    if (rc == 0 && !uin[0]) {
        rc = account_insert(c, cand, e);
        snprintf(uin, 24, "%s", cand->uin);
    }
    return rc;
}

int store_sqlite_account_first_root(struct store *s, const struct account *cand,
                                    struct account *out, struct err *e)
{
    char uin[24];
    int rc = sq_write_tx(s, first_root_tx, cand, uin, e);
    return rc ? rc : store_sqlite_account_by_uin(s, uin, out, e);
}

/* ---- secrets an older asyncd left in clear ---- */

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
