/* Accounts and their key pairs, once for both dialects. A SecretKey is sealed at rest
 * (common/secretbox.h): sealed here before the transaction (once, not again when PostgreSQL runs
 * it again after a serialization failure) and opened here as a row is read, so neither dialect
 * handles a SecretKey in clear. The sealing of secrets an older asyncd left in clear stays in
 * each dialect's file (store_sqlite_accounts.c, store_pg_accounts.c): it runs inside that
 * dialect's schema migration. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/secretbox.h"
#include "common/xalloc.h"
#include "store/store.h"
#include "store/store_db.h"

static int count_fn(struct db_tx *t, void *ctx, struct err *e)
{
    int rc = db_exec_row(t, DB_ACCOUNT_COUNT, DB_NO_ARGS, "counting accounts", e);
    if (rc == 1)
        *(int64_t *)ctx = db_int(t, 0);
    return rc == 1 ? 0 : rc;
}

int store_db_account_count(struct store *s, int64_t *out, struct err *e)
{
    return db_run(s, DB_READ, count_fn, out, e);
}

/* Adds an enabled key pair (its SecretKey sealed already) to uin in t's write transaction. */
static int key_insert(struct db_tx *t, const char *uin, const char *secret_id,
                      const char *sealed_key, int64_t now, struct err *e)
{
    int rc = db_exec(t, DB_KEY_INSERT,
                     DB_ARGS(DB_TEXT(secret_id), DB_TEXT(uin), DB_TEXT(sealed_key), DB_INT(now)),
                     "inserting a key pair", e);
    /* SecretIds are unique across accounts: the key is secret_id alone. */
    if (rc == ERR_ALREADY_EXISTS)
        rc = err_set(e, ERR_ALREADY_EXISTS, "SecretId %s is already taken by another account",
                     secret_id);
    return rc;
}

/* Runs fn as one write transaction with *sealed_key set to secret_key sealed: sealed once here,
 * not again when PostgreSQL runs fn again. */
static int write_sealed(struct store *s, const char *secret_key, const char **sealed_key,
                        int (*fn)(struct db_tx *t, void *ctx, struct err *e), void *ctx,
                        struct err *e)
{
    char *sealed;
    int rc = secretbox_seal(secret_key, &sealed, e);
    if (rc != 0)
        return rc;
    *sealed_key = sealed;
    rc = db_run(s, DB_WRITE, fn, ctx, e);
    *sealed_key = NULL;
    free(sealed);
    return rc;
}

/* An account to insert with its first key pair, the SecretKey sealed. */
struct account_new {
    const struct account *a;
    const char *sealed_key;
};

/* The account and its first key pair, in t's write transaction: both or neither. */
static int account_insert(struct db_tx *t, const struct account_new *n, struct err *e)
{
    const struct account *a = n->a;
    int64_t now = db_now_ms();
    int rc = db_exec(t, DB_ACCOUNT_INSERT,
                     DB_ARGS(DB_TEXT(a->uin), DB_TEXT(a->owner_uin), DB_TEXT(a->app_id),
                             DB_INT(a->is_root), DB_TEXT(a->has_policy ? a->policy_json : NULL),
                             DB_INT(a->disabled), DB_INT(now)),
                     "inserting an account", e);
    if (rc == ERR_ALREADY_EXISTS)
        return err_set(e, ERR_ALREADY_EXISTS, "account %s already exists", a->uin);
    return rc ? rc : key_insert(t, a->uin, a->secret_id, n->sealed_key, now, e);
}

static int create_fn(struct db_tx *t, void *ctx, struct err *e)
{
    return account_insert(t, ctx, e);
}

int store_db_account_create(struct store *s, const struct account *a, struct err *e)
{
    if (!a->uin[0] || !a->owner_uin[0] || !a->secret_id[0] || !a->secret_key[0])
        return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                       "an account needs a uin, owner_uin, SecretId and SecretKey");
    struct account_new n = {a, NULL};
    return write_sealed(s, a->secret_key, &n.sealed_key, create_fn, &n, e);
}

/* Fills out from the current DB_ACCOUNT_BY_* row, its SecretKey opened; an account without a
 * key has secret_id "" and secret_key "". */
static int account_from_row(struct db_tx *t, struct account *out, struct err *e)
{
    memset(out, 0, sizeof *out);
    db_copy(t, 0, out->uin, sizeof out->uin);
    db_copy(t, 1, out->owner_uin, sizeof out->owner_uin);
    db_copy(t, 2, out->app_id, sizeof out->app_id);
    db_copy(t, 3, out->secret_id, sizeof out->secret_id);
    const char *sealed = db_text(t, 4);
    int rc = sealed ? secretbox_open_into(sealed, out->secret_key, sizeof out->secret_key, e) : 0;
    if (rc != 0)
        return rc;
    out->is_root = db_int(t, 5) != 0;
    const char *policy = db_text(t, 6);
    out->policy_json = policy ? xstrdup(policy) : NULL;
    out->has_policy = policy != NULL;
    out->disabled = db_int(t, 7) != 0;
    out->owner_disabled = db_int(t, 8) != 0;
    return 0;
}

struct account_lookup {
    enum db_stmt st; /* DB_ACCOUNT_BY_SECRET or DB_ACCOUNT_BY_UIN */
    const char *key, *what;
    struct account *out;
    bool key_enabled; /* the key pair read with it is enabled */
};

/* One account by key (uin or SecretId): ERR_NOT_FOUND when absent. */
static int lookup_fn(struct db_tx *t, void *ctx, struct err *e)
{
    struct account_lookup *l = ctx;
    int rc = db_exec_row(t, l->st, DB_ARGS(DB_TEXT(l->key)), "reading an account", e);
    if (rc == 0)
        return err_set(e, ERR_NOT_FOUND, "no account with %s %s", l->what, l->key);
    if (rc != 1)
        return rc;
    const char *status = db_text(t, 9);
    l->key_enabled = status && strcmp(status, "enabled") == 0;
    return account_from_row(t, l->out, e);
}

int store_db_account_by_secret_id(struct store *s, const char *secret_id, struct account *out,
                                  struct err *e)
{
    struct account_lookup l = {DB_ACCOUNT_BY_SECRET, secret_id, "SecretId", out, false};
    int rc = db_run(s, DB_READ, lookup_fn, &l, e);
    return rc ? rc : store_account_refuse_unusable(out, l.key_enabled, e);
}

/* The first enabled key pair (else the first one) comes with it: main.c opens its SecretKey to
 * check the secret key file. */
int store_db_account_by_uin(struct store *s, const char *uin, struct account *out, struct err *e)
{
    struct account_lookup l = {DB_ACCOUNT_BY_UIN, uin, "uin", out, false};
    return db_run(s, DB_READ, lookup_fn, &l, e);
}

/* One UPDATE of an account or a key by (uin[, secret_id]); ERR_NOT_FOUND when it touched none. */
struct account_update {
    enum db_stmt st;
    const char *uin, *secret_id; /* secret_id NULL: an account's UPDATE */
    struct db_arg value;
    const char *what;
};

static int update_fn(struct db_tx *t, void *ctx, struct err *e)
{
    const struct account_update *u = ctx;
    int rc = u->secret_id
                 ? db_exec(t, u->st, DB_ARGS(DB_TEXT(u->uin), DB_TEXT(u->secret_id), u->value),
                           u->what, e)
                 : db_exec(t, u->st, DB_ARGS(DB_TEXT(u->uin), u->value), u->what, e);
    if (rc != 0 || db_changes(t) > 0)
        return rc;
    return u->secret_id
               ? err_set(e, ERR_NOT_FOUND, "account %s has no key pair %s", u->uin, u->secret_id)
               : err_set(e, ERR_NOT_FOUND, "no account with uin %s", u->uin);
}

int store_db_account_set_policy(struct store *s, const char *uin, const char *policy_json,
                                struct err *e)
{
    struct account_update u = {DB_ACCOUNT_SET_POLICY, uin, NULL, DB_TEXT(policy_json),
                               "setting an account's policy"};
    return db_run(s, DB_WRITE_ONE, update_fn, &u, e);
}

int store_db_account_set_disabled(struct store *s, const char *uin, bool disabled, struct err *e)
{
    struct account_update u = {DB_ACCOUNT_SET_DISABLED, uin, NULL, DB_INT(disabled),
                               "disabling an account"};
    return db_run(s, DB_WRITE_ONE, update_fn, &u, e);
}

int store_db_account_key_set_enabled(struct store *s, const char *uin, const char *secret_id,
                                     bool enabled, struct err *e)
{
    struct account_update u = {DB_KEY_SET_STATUS, uin, secret_id,
                               DB_TEXT(enabled ? "enabled" : "disabled"),
                               "changing a key pair's status"};
    return db_run(s, DB_WRITE_ONE, update_fn, &u, e);
}

struct key_create {
    const char *uin, *secret_id, *sealed_key;
    int max_keys;
};

/* Counted and inserted in one write transaction, after the account's row is locked (PostgreSQL;
 * SQLite's one writer runs transactions one after another): of two creates for one account the
 * second waits, then counts the first one's key, so both cannot pass the limit. The count is a
 * statement of its own, after the lock: one taken in the locking statement would be of the
 * snapshot from before the wait. */
static int key_create_fn(struct db_tx *t, void *ctx, struct err *e)
{
    const struct key_create *k = ctx;
    int rc = db_exec_row(t, DB_ACCOUNT_LOCK, DB_ARGS(DB_TEXT(k->uin)), "locking an account", e);
    if (rc == 0)
        return err_set(e, ERR_NOT_FOUND, "no account with uin %s", k->uin);
    if (rc != 1)
        return rc;
    const char *what = "counting an account's keys";
    rc = db_exec_row(t, DB_KEY_COUNT, DB_ARGS(DB_TEXT(k->uin)), what, e);
    if (rc == 0)
        rc = err_set(e, ERR_INTERNAL, "store: %s: no row", what);
    if (rc != 1)
        return rc;
    int64_t keys = db_int(t, 0);
    if (keys >= k->max_keys)
        return err_set(e, ERR_CONFLICT,
                       "account %s already has %lld key pairs, the most it may hold; delete one "
                       "(disable it first) before creating another",
                       k->uin, (long long)keys);
    return key_insert(t, k->uin, k->secret_id, k->sealed_key, db_now_ms(), e);
}

int store_db_account_key_create(struct store *s, const char *uin, const char *secret_id,
                                const char *secret_key, int max_keys, struct err *e)
{
    struct key_create k = {uin, secret_id, NULL, max_keys};
    return write_sealed(s, secret_key, &k.sealed_key, key_create_fn, &k, e);
}

struct key_list {
    const char *uin;
    json_t **out; /* set only when the list is whole */
};

/* The account's rows joined with its keys: no row at all is no account, a row without a
 * SecretId is the account without a key. */
static int key_list_fn(struct db_tx *t, void *ctx, struct err *e)
{
    const struct key_list *l = ctx;
    const char *what = "listing an account's keys";
    json_t *keys = json_array();
    int rows = 0, rc = db_exec(t, DB_KEY_LIST, DB_ARGS(DB_TEXT(l->uin)), what, e);
    for (; rc == 0 && (rc = db_next(t, what, e)) == 1; rc = 0, rows++)
        if (!db_is_null(t, 0))
            json_array_append_new(keys, json_pack("{s:o, s:o, s:o}", "SecretId", db_json_text(t, 0),
                                                  "Status", db_json_text(t, 1), "created_ms",
                                                  db_json_int(t, 2)));
    if (rc == 0 && rows == 0)
        rc = err_set(e, ERR_NOT_FOUND, "no account with uin %s", l->uin);
    if (rc == 0)
        *l->out = keys;
    else
        json_decref(keys);
    return rc;
}

int store_db_account_key_list(struct store *s, const char *uin, json_t **out, struct err *e)
{
    *out = NULL;
    struct key_list l = {uin, out};
    return db_run(s, DB_READ, key_list_fn, &l, e);
}

struct key_ref {
    const char *uin, *secret_id;
};

/* The key's status read (its row locked on PostgreSQL) and checked, then the delete, in one
 * write transaction: a key enabled meanwhile is not deleted. */
static int key_delete_fn(struct db_tx *t, void *ctx, struct err *e)
{
    const struct key_ref *k = ctx;
    const char *what = "reading a key pair";
    int rc =
        db_exec_row(t, DB_KEY_STATUS, DB_ARGS(DB_TEXT(k->uin), DB_TEXT(k->secret_id)), what, e);
    if (rc == 0)
        return err_set(e, ERR_NOT_FOUND, "account %s has no key pair %s", k->uin, k->secret_id);
    if (rc != 1)
        return rc;
    const char *status = db_text(t, 0);
    if (!status || strcmp(status, "disabled") != 0)
        return store_key_delete_refused(k->uin, k->secret_id, e);
    return db_exec(t, DB_KEY_DELETE, DB_ARGS(DB_TEXT(k->secret_id)), "deleting a key pair", e);
}

int store_db_account_key_delete(struct store *s, const char *uin, const char *secret_id,
                                struct err *e)
{
    struct key_ref k = {uin, secret_id};
    return db_run(s, DB_WRITE, key_delete_fn, &k, e);
}

struct first_root {
    struct account_new cand;
    char uin[24]; /* the first root's */
};

/* The oldest root account's uin, the candidate inserted when there is none. Nodes starting
 * together on one PostgreSQL take a transaction-scoped lock first, so they agree on one root;
 * SQLite's one writer runs one first start at a time without it. */
static int first_root_fn(struct db_tx *t, void *ctx, struct err *e)
{
    struct first_root *fr = ctx;
    fr->uin[0] = '\0'; /* PostgreSQL may run this again */
    int rc = db_has(t, DB_CAP_ONE_WRITER)
                 ? 0
                 : db_exec(t, DB_ACCOUNT_ROOT_LOCK, DB_NO_ARGS, "locking the first-start", e);
    if (rc == 0)
        rc = db_exec_row(t, DB_ACCOUNT_FIRST_ROOT, DB_NO_ARGS, "looking for the root account", e);
    if (rc == 1) {
        db_copy(t, 0, fr->uin, sizeof fr->uin);
        return 0;
    }
    if (rc == 0) {
        rc = account_insert(t, &fr->cand, e);
        snprintf(fr->uin, sizeof fr->uin, "%s", fr->cand.a->uin);
    }
    return rc;
}

int store_db_account_first_root(struct store *s, const struct account *cand, struct account *out,
                                struct err *e)
{
    struct first_root fr = {.cand = {cand, NULL}};
    int rc = write_sealed(s, cand->secret_key, &fr.cand.sealed_key, first_root_fn, &fr, e);
    return rc ? rc : store_db_account_by_uin(s, fr.uin, out, e);
}
