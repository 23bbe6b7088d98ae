/* The SQLite store's accounts and instances. SecretKeys and DSNs are sealed at rest
 * (common/secretbox.h): written sealed, opened as they are read. */
#include <stdlib.h>
#include <string.h>

#include "common/secretbox.h"
#include "common/xalloc.h"
#include "store/store_sqlite_int.h"

#define ACCOUNT_COLS  "uin, owner_uin, app_id, secret_id, secret_key, is_root, policy_json"
#define INSTANCE_COLS "product, instance_id, region, uin, status, dsn, reserved_accounts"

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

static int account_insert(struct sq_conn *c, const struct account *a, struct err *e)
{
    sqlite3_stmt *st;
    char *key = NULL;
    int rc = secretbox_seal(a->secret_key, &key, e);
    if (rc == 0)
        rc = sq_stmt(c, SQ_ACCOUNT_INSERT,
                     "INSERT INTO accounts(" ACCOUNT_COLS ", created_ms)"
                     " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                     &st, e);
    if (rc != 0) {
        free(key);
        return rc;
    }
    sq_bind_text(st, 1, a->uin);
    sq_bind_text(st, 2, a->owner_uin);
    sq_bind_text(st, 3, a->app_id);
    sq_bind_text(st, 4, a->secret_id);
    sq_bind_text(st, 5, key);
    sqlite3_bind_int(st, 6, a->is_root);
    sq_bind_text(st, 7, a->has_policy ? a->policy_json : NULL);
    sqlite3_bind_int64(st, 8, sq_now_ms());
    if (sqlite3_step(st) != SQLITE_DONE) {
        if (is_constraint(c, SQLITE_CONSTRAINT_PRIMARYKEY))
            rc = err_set(e, ERR_ALREADY_EXISTS, "account %s already exists", a->uin);
        else if (is_constraint(c, SQLITE_CONSTRAINT_UNIQUE))
            rc = err_set(e, ERR_ALREADY_EXISTS, "SecretId %s is already taken by another account",
                         a->secret_id);
        else
            rc = sq_fail(c, e, "inserting an account");
    }
    sq_done(st);
    free(key);
    return rc;
}

int store_sqlite_account_create(struct store *s, const struct account *a, struct err *e)
{
    if (!a->uin[0] || !a->owner_uin[0] || !a->secret_id[0] || !a->secret_key[0])
        return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                       "an account needs a uin, owner_uin, SecretId and SecretKey");
    struct sq_conn *c = sq_writer_acquire(sq_of(s));
    int rc = sq_begin_write(c, e);
    if (rc == 0)
        rc = account_insert(c, a, e);
    return sq_end_write(c, rc, e);
}

static int account_from_row(sqlite3_stmt *st, struct account *out, struct err *e)
{
    memset(out, 0, sizeof *out);
    sq_copy(out->uin, sizeof out->uin, sqlite3_column_text(st, 0));
    sq_copy(out->owner_uin, sizeof out->owner_uin, sqlite3_column_text(st, 1));
    sq_copy(out->app_id, sizeof out->app_id, sqlite3_column_text(st, 2));
    sq_copy(out->secret_id, sizeof out->secret_id, sqlite3_column_text(st, 3));
    int rc = secretbox_open_into((const char *)sqlite3_column_text(st, 4), out->secret_key,
                                 sizeof out->secret_key, e);
    if (rc != 0)
        return rc;
    out->is_root = sqlite3_column_int(st, 5) != 0;
    const unsigned char *policy = sqlite3_column_text(st, 6);
    out->policy_json = policy ? xstrdup((const char *)policy) : NULL;
    out->has_policy = policy != NULL;
    return 0;
}

/* One account by key (uin or SecretId): ERR_NOT_FOUND when absent. */
static int account_lookup(struct store *s, enum sq_slot slot, const char *sql, const char *key,
                          const char *what, struct account *out, struct err *e)
{
    struct sq_conn *c = sq_reader_acquire(sq_of(s));
    sqlite3_stmt *st;
    int rc = sq_stmt(c, slot, sql, &st, e);
    if (rc == 0) {
        sq_bind_text(st, 1, key);
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW)
            rc = account_from_row(st, out, e);
        else if (step == SQLITE_DONE)
            rc = err_set(e, ERR_NOT_FOUND, "no account with %s %s", what, key);
        else
            rc = sq_fail(c, e, "reading an account");
    }
    sq_done(st);
    sq_release(c);
    return rc;
}

int store_sqlite_account_by_secret_id(struct store *s, const char *secret_id, struct account *out,
                                      struct err *e)
{
    return account_lookup(s, SQ_ACCOUNT_BY_SECRET,
                          "SELECT " ACCOUNT_COLS " FROM accounts WHERE secret_id = ?1", secret_id,
                          "SecretId", out, e);
}

int store_sqlite_account_by_uin(struct store *s, const char *uin, struct account *out,
                                struct err *e)
{
    return account_lookup(s, SQ_ACCOUNT_BY_UIN,
                          "SELECT " ACCOUNT_COLS " FROM accounts WHERE uin = ?1", uin, "uin", out,
                          e);
}

int store_sqlite_account_set_policy(struct store *s, const char *uin, const char *policy_json,
                                    struct err *e)
{
    struct sq_conn *c = sq_writer_acquire(sq_of(s));
    sqlite3_stmt *st = NULL;
    int rc = sq_begin_write(c, e);
    if (rc == 0)
        rc = sq_stmt(c, SQ_ACCOUNT_SET_POLICY,
                     "UPDATE accounts SET policy_json = ?2 WHERE uin = ?1", &st, e);
    if (rc == 0) {
        sq_bind_text(st, 1, uin);
        sq_bind_text(st, 2, policy_json);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = sq_fail(c, e, "setting an account's policy");
        else if (sqlite3_changes(c->db) == 0)
            rc = err_set(e, ERR_NOT_FOUND, "no account with uin %s", uin);
    }
    sq_done(st);
    return sq_end_write(c, rc, e);
}

int store_sqlite_instance_create(struct store *s, const struct instance *in, struct err *e)
{
    char *dsn;
    int rc = secretbox_seal(in->dsn, &dsn, e);
    if (rc != 0)
        return rc;
    struct sq_conn *c = sq_writer_acquire(sq_of(s));
    sqlite3_stmt *st = NULL;
    rc = sq_begin_write(c, e);
    if (rc == 0)
        rc = sq_stmt(c, SQ_INSTANCE_INSERT,
                     "INSERT INTO instances(" INSTANCE_COLS ", created_ms,"
                     " updated_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?8, ?7, ?7)",
                     &st, e);
    if (rc == 0) {
        sq_bind_text(st, 1, in->product);
        sq_bind_text(st, 2, in->instance_id);
        sq_bind_text(st, 3, in->region);
        sq_bind_text(st, 4, in->uin);
        sq_bind_text(st, 5, in->status);
        sq_bind_text(st, 6, dsn);
        sqlite3_bind_int64(st, 7, sq_now_ms());
        sq_bind_text(st, 8, in->reserved_accounts);
        if (sqlite3_step(st) == SQLITE_DONE)
            rc = 0;
        else if (is_constraint(c, SQLITE_CONSTRAINT_PRIMARYKEY))
            rc = err_set(e, ERR_ALREADY_EXISTS, "instance %s already exists", in->instance_id);
        else
            rc = sq_fail(c, e, "inserting an instance");
    }
    sq_done(st);
    free(dsn);
    return sq_end_write(c, rc, e);
}

static int instance_from_row(sqlite3_stmt *st, struct instance *out, struct err *e)
{
    memset(out, 0, sizeof *out);
    sq_copy(out->product, sizeof out->product, sqlite3_column_text(st, 0));
    sq_copy(out->instance_id, sizeof out->instance_id, sqlite3_column_text(st, 1));
    sq_copy(out->region, sizeof out->region, sqlite3_column_text(st, 2));
    sq_copy(out->uin, sizeof out->uin, sqlite3_column_text(st, 3));
    sq_copy(out->status, sizeof out->status, sqlite3_column_text(st, 4));
    sq_copy(out->reserved_accounts, sizeof out->reserved_accounts, sqlite3_column_text(st, 6));
    return secretbox_open_into((const char *)sqlite3_column_text(st, 5), out->dsn, sizeof out->dsn,
                               e);
}

/* Reads instance_id on c into out (may be NULL); product NULL = any. ERR_NOT_FOUND if absent. */
static int instance_read(struct sq_conn *c, const char *product, const char *instance_id,
                         struct instance *out, struct err *e)
{
    sqlite3_stmt *st;
    int rc = sq_stmt(c, SQ_INSTANCE_GET,
                     "SELECT " INSTANCE_COLS " FROM instances"
                     " WHERE instance_id = ?1 AND (?2 IS NULL OR product = ?2)",
                     &st, e);
    if (rc != 0)
        return rc;
    sq_bind_text(st, 1, instance_id);
    sq_bind_text(st, 2, product);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        if (out)
            rc = instance_from_row(st, out, e);
    } else if (step == SQLITE_DONE) {
        rc = product ? err_set(e, ERR_NOT_FOUND, "no %s instance %s", product, instance_id)
                     : err_set(e, ERR_NOT_FOUND, "no instance %s", instance_id);
    } else {
        rc = sq_fail(c, e, "reading an instance");
    }
    sq_done(st);
    return rc;
}

int store_sqlite_instance_get(struct store *s, const char *product, const char *instance_id,
                              struct instance *out, struct err *e)
{
    struct sq_conn *c = sq_reader_acquire(sq_of(s));
    int rc = instance_read(c, product, instance_id, out, e);
    sq_release(c);
    return rc;
}

int store_sqlite_instance_update(struct store *s, const char *instance_id, const char *status,
                                 const char *dsn, const char *reserved, struct instance *out,
                                 struct err *e)
{
    char *sealed = NULL;
    int rc = dsn ? secretbox_seal(dsn, &sealed, e) : 0;
    if (rc != 0)
        return rc;
    struct sq_conn *c = sq_writer_acquire(sq_of(s));
    sqlite3_stmt *st = NULL;
    rc = sq_begin_write(c, e);
    if (rc == 0)
        rc = sq_stmt(c, SQ_INSTANCE_UPDATE,
                     "UPDATE instances SET status = COALESCE(?2, status),"
                     " dsn = COALESCE(?3, dsn), updated_ms = ?4,"
                     " reserved_accounts = COALESCE(?5, reserved_accounts) WHERE instance_id = ?1",
                     &st, e);
    if (rc == 0) {
        sq_bind_text(st, 1, instance_id);
        sq_bind_text(st, 2, status);
        sq_bind_text(st, 3, sealed);
        sqlite3_bind_int64(st, 4, sq_now_ms());
        sq_bind_text(st, 5, reserved);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = sq_fail(c, e, "updating an instance");
        else if (sqlite3_changes(c->db) == 0)
            rc = err_set(e, ERR_NOT_FOUND, "no instance %s", instance_id);
    }
    sq_done(st);
    free(sealed);
    if (rc == 0)
        rc = instance_read(c, NULL, instance_id, out, e);
    return sq_end_write(c, rc, e);
}

/* The row as the admin API's instance object, its DSN opened; NULL when it does not open. */
static json_t *instance_row_json(sqlite3_stmt *st, struct err *e)
{
    static const char *const keys[] = {"product", "instance_id", "region", "uin", "status"};
    const char *stored = (const char *)sqlite3_column_text(st, 5);
    char *dsn;
    if (secretbox_open(stored ? stored : "", &dsn, e) != 0)
        return NULL;
    json_t *o = json_object();
    for (int i = 0; i < 5; i++)
        json_object_set_new(o, keys[i], sq_col_json_text(st, i));
    json_object_set_new(o, "dsn", json_string(dsn));
    free(dsn);
    const char *reserved = (const char *)sqlite3_column_text(st, 6);
    json_t *list = reserved && *reserved ? json_loads(reserved, 0, NULL) : NULL;
    json_object_set_new(o, "reserved_accounts", list ? list : json_array());
    return o;
}

int store_sqlite_instance_list(struct store *s, const char *product, const char *uin, json_t **out,
                               struct err *e)
{
    *out = NULL;
    struct sq_conn *c = sq_reader_acquire(sq_of(s));
    sqlite3_stmt *st;
    int rc = sq_stmt(c, SQ_INSTANCE_LIST,
                     "SELECT " INSTANCE_COLS " FROM instances"
                     " WHERE (?1 IS NULL OR product = ?1) AND (?2 IS NULL OR uin = ?2)"
                     " ORDER BY created_ms, instance_id",
                     &st, e);
    if (rc == 0) {
        sq_bind_text(st, 1, product);
        sq_bind_text(st, 2, uin);
        json_t *arr = json_array(), *o = NULL;
        int step;
        while ((step = sqlite3_step(st)) == SQLITE_ROW && (o = instance_row_json(st, e)))
            json_array_append_new(arr, o);
        if (step == SQLITE_DONE) {
            *out = arr;
        } else {
            json_decref(arr);
            rc = step == SQLITE_ROW ? ERR_INTERNAL : sq_fail(c, e, "listing instances");
        }
    }
    sq_done(st);
    sq_release(c);
    return rc;
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

int store_sqlite_account_first_root(struct store *s, const struct account *cand,
                                    struct account *out, struct err *e)
{
    char uin[24];
    struct sq_conn *c = sq_writer_acquire(sq_of(s));
    int rc = sq_begin_write(c, e);
    if (rc == 0)
        rc = oldest_root(c, uin, e);
    if (rc == 0 && !uin[0]) {
        rc = account_insert(c, cand, e);
        snprintf(uin, sizeof uin, "%s", cand->uin);
    }
    rc = sq_end_write(c, rc, e);
    return rc ? rc : store_sqlite_account_by_uin(s, uin, out, e);
}
