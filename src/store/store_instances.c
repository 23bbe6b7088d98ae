/* Instances, once for both dialects: the databases tasks run against, keyed by instance_id
 * (unique across products). The DSN is sealed at rest (common/secretbox.h): sealed here before
 * the transaction (once, not again when PostgreSQL retries it) and opened here as a row is read,
 * so neither dialect handles a DSN in clear. */
#include <stdlib.h>
#include <string.h>

#include "common/secretbox.h"
#include "store/store.h"
#include "store/store_db.h"

struct create_ctx {
    const struct instance *in;
    const char *sealed; /* in->dsn, sealed */
};

static int create_fn(struct db_tx *t, void *ctx, struct err *e)
{
    const struct create_ctx *cx = ctx;
    const struct instance *in = cx->in;
    int rc =
        db_exec(t, DB_INSTANCE_INSERT,
                DB_ARGS(DB_TEXT(in->product), DB_TEXT(in->instance_id), DB_TEXT(in->region),
                        DB_TEXT(in->uin), DB_TEXT(in->status), DB_TEXT(cx->sealed),
                        DB_TEXT(in->reserved_accounts), DB_INT(in->simulated), DB_INT(db_now_ms())),
                "inserting an instance", e);
    /* The key is instance_id alone: the same id under another product is taken too. */
    if (rc == ERR_ALREADY_EXISTS)
        rc = err_set(e, ERR_ALREADY_EXISTS, "instance %s already exists", in->instance_id);
    return rc;
}

int store_db_instance_create(struct store *s, const struct instance *in, struct err *e)
{
    char *sealed;
    int rc = secretbox_seal(in->dsn, &sealed, e);
    if (rc != 0)
        return rc;
    struct create_ctx cx = {in, sealed};
    rc = db_run(s, DB_WRITE_ONE, create_fn, &cx, e);
    free(sealed);
    return rc;
}

/* Fills out from the current DB_INSTANCE_GET row, its DSN opened. */
static int instance_from_row(struct db_tx *t, struct instance *out, struct err *e)
{
    memset(out, 0, sizeof *out);
    db_copy(t, 0, out->product, sizeof out->product);
    db_copy(t, 1, out->instance_id, sizeof out->instance_id);
    db_copy(t, 2, out->region, sizeof out->region);
    db_copy(t, 3, out->uin, sizeof out->uin);
    db_copy(t, 4, out->status, sizeof out->status);
    db_copy(t, 6, out->reserved_accounts, sizeof out->reserved_accounts);
    out->simulated = db_int(t, 7) != 0;
    return secretbox_open_into(db_text(t, 5), out->dsn, sizeof out->dsn, e);
}

/* Reads instance_id in t into out (may be NULL: only whether it is there); product NULL = any.
 * ERR_NOT_FOUND when absent. */
static int instance_read(struct db_tx *t, const char *product, const char *instance_id,
                         struct instance *out, struct err *e)
{
    const char *what = "reading an instance";
    int rc =
        db_exec_row(t, DB_INSTANCE_GET, DB_ARGS(DB_TEXT(instance_id), DB_TEXT(product)), what, e);
    if (rc == 0)
        return product ? err_set(e, ERR_NOT_FOUND, "no %s instance %s", product, instance_id)
                       : err_set(e, ERR_NOT_FOUND, "no instance %s", instance_id);
    if (rc != 1)
        return rc;
    return out ? instance_from_row(t, out, e) : 0;
}

struct instance_op {
    const char *product, *instance_id;
    const char *status, *sealed_dsn, *reserved; /* the update's; NULL = unchanged */
    struct instance *out;                       /* may be NULL */
};

static int get_fn(struct db_tx *t, void *ctx, struct err *e)
{
    const struct instance_op *op = ctx;
    return instance_read(t, op->product, op->instance_id, op->out, e);
}

int store_db_instance_get(struct store *s, const char *product, const char *instance_id,
                          struct instance *out, struct err *e)
{
    struct instance_op op = {.product = product, .instance_id = instance_id, .out = out};
    return db_run(s, DB_READ, get_fn, &op, e);
}

/* The update, then the row as it is now, in one transaction: out is what this update made. */
static int update_fn(struct db_tx *t, void *ctx, struct err *e)
{
    const struct instance_op *op = ctx;
    int rc = db_exec(t, DB_INSTANCE_UPDATE,
                     DB_ARGS(DB_TEXT(op->instance_id), DB_TEXT(op->status), DB_TEXT(op->sealed_dsn),
                             DB_TEXT(op->reserved), DB_INT(db_now_ms())),
                     "updating an instance", e);
    if (rc == 0 && db_changes(t) == 0)
        rc = err_set(e, ERR_NOT_FOUND, "no instance %s", op->instance_id);
    return rc ? rc : instance_read(t, NULL, op->instance_id, op->out, e);
}

int store_db_instance_update(struct store *s, const char *instance_id, const char *status,
                             const char *dsn, const char *reserved, struct instance *out,
                             struct err *e)
{
    char *sealed = NULL;
    int rc = dsn ? secretbox_seal(dsn, &sealed, e) : 0;
    if (rc != 0)
        return rc;
    struct instance_op op = {.instance_id = instance_id,
                             .status = status,
                             .sealed_dsn = sealed,
                             .reserved = reserved,
                             .out = out};
    rc = db_run(s, DB_WRITE, update_fn, &op, e);
    free(sealed);
    return rc;
}

/* The current DB_INSTANCE_LIST row as the admin API's instance object, its DSN opened; NULL
 * when it does not open. */
static json_t *instance_row_json(struct db_tx *t, struct err *e)
{
    static const char *const keys[] = {"product", "instance_id", "region", "uin", "status"};
    const char *stored = db_text(t, 5);
    char *dsn;
    if (secretbox_open(stored ? stored : "", &dsn, e) != 0)
        return NULL;
    json_t *o = json_object();
    for (int i = 0; i < 5; i++)
        json_object_set_new(o, keys[i], db_json_text(t, i));
    json_object_set_new(o, "dsn", json_string(dsn));
    free(dsn);
    const char *reserved = db_text(t, 6);
    json_t *list = reserved && *reserved ? json_loads(reserved, 0, NULL) : NULL;
    json_object_set_new(o, "reserved_accounts", list ? list : json_array());
    json_object_set_new(o, "simulated", json_boolean(db_int(t, 7) != 0));
    return o;
}

struct list_ctx {
    const char *product, *uin; /* NULL = any */
    json_t *out;
};

static int list_fn(struct db_tx *t, void *ctx, struct err *e)
{
    struct list_ctx *cx = ctx;
    const char *what = "listing instances";
    json_decref(cx->out); /* a run again starts from an empty list */
    cx->out = json_array();
    int rc = db_exec(t, DB_INSTANCE_LIST, DB_ARGS(DB_TEXT(cx->product), DB_TEXT(cx->uin)), what, e);
    while (rc == 0 && (rc = db_next(t, what, e)) == 1) {
        json_t *o = instance_row_json(t, e);
        if (!o)
            return ERR_INTERNAL; /* e says which secret did not open */
        json_array_append_new(cx->out, o);
        rc = 0;
    }
    return rc;
}

int store_db_instance_list(struct store *s, const char *product, const char *uin, json_t **out,
                           struct err *e)
{
    struct list_ctx cx = {product, uin, NULL};
    int rc = db_run(s, DB_READ, list_fn, &cx, e);
    if (rc != 0) {
        json_decref(cx.out);
        cx.out = NULL;
    }
    *out = cx.out;
    return rc;
}
