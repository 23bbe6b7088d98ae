/* Admin API: root accounts, sub-accounts, their key pairs and disabled flags, policies and
 * instances. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "admin/admin_int.h"
#include "auth/auth.h"
#include "common/secretbox.h"
#include "common/timefmt.h"
#include "common/xalloc.h"
#include "exec/mysql_conn.h"
#include "products/cdb_guard.h"

/* Each key of a store key list gets "Created" (ISO-8601 UTC) beside its created_ms. */
static void keys_add_times(json_t *keys)
{
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k)
    {
        char at[25];
        time_fmt_iso_utc(json_integer_value(json_object_get(k, "created_ms")), at);
        json_object_set_new(k, "Created", json_string(at));
    }
}

/* The first enabled key's SecretId in keys, or NULL. */
static const char *first_enabled(const json_t *keys)
{
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k)
    {
        if (strcmp(json_string_value(json_object_get(k, "Status")), "enabled") == 0)
            return json_string_value(json_object_get(k, "SecretId"));
    }
    return NULL;
}

/* An account as GET /v1/accounts/{uin} shows it: never a SecretKey. Takes keys (the store's key
 * list). SecretId stays for older clients: the first enabled key, or null. */
static json_t *account_json(const struct account *acc, json_t *keys)
{
    keys_add_times(keys);
    const char *sid = first_enabled(keys);
    json_t *j = json_pack("{s:s, s:s, s:s, s:b, s:o, s:b}", "Uin", acc->uin, "AppId", acc->app_id,
                          "OwnerUin", acc->owner_uin, "IsRoot", acc->is_root, "SecretId",
                          sid ? json_string(sid) : json_null(), "Disabled", acc->disabled);
    if (!acc->is_root)
        json_object_set_new(j, "OwnerDisabled", json_boolean(acc->owner_disabled));
    json_t *policy = acc->policy_json ? json_loads(acc->policy_json, 0, NULL) : NULL;
    json_object_set_new(j, "Policy", policy ? policy : json_null());
    json_object_set_new(j, "Keys", keys);
    return j;
}

int admin_account_create(struct admin *a, struct admin_req *r, json_t **out, int *status,
                         struct err *e)
{
    (void)r;
    struct account acc;
    int rc = auth_create_root(a->cfg.store, &acc, e);
    if (rc)
        return rc;
    *out = json_pack("{s:s, s:s, s:s, s:s}", "AppId", acc.app_id, "Uin", acc.uin, "SecretId",
                     acc.secret_id, "SecretKey", acc.secret_key);
    *status = 201;
    account_clear(&acc);
    return 0;
}

/* The account uin as account_json shows it, into *out. */
static int account_answer(struct admin *a, const char *uin, json_t **out, struct err *e)
{
    struct account acc = {0};
    json_t *keys = NULL;
    int rc = store_account_by_uin(a->cfg.store, uin, &acc, e);
    if (rc == 0)
        rc = store_account_key_list(a->cfg.store, uin, &keys, e);
    if (rc == ERR_NOT_FOUND)
        rc = err_set(e, ERR_NOT_FOUND, "no account with Uin %s", uin);
    if (rc == 0)
        *out = account_json(&acc, keys);
    account_clear(&acc);
    memset(acc.secret_key, 0, sizeof acc.secret_key);
    return rc;
}

int admin_account_show(struct admin *a, struct admin_req *r, json_t **out, int *status,
                       struct err *e)
{
    (void)status;
    return account_answer(a, r->arg[0], out, e);
}

int admin_account_patch(struct admin *a, struct admin_req *r, json_t **out, int *status,
                        struct err *e)
{
    (void)status;
    json_t *v = json_object_get(r->body, "disabled");
    if (!json_is_boolean(v))
        return err_set(e, ERR_BAD_REQUEST,
                       "disabled: expected true (refuse every request the account signs, and "
                       "its sub-accounts' for a root account) or false");
    int rc = store_account_set_disabled(a->cfg.store, r->arg[0], json_is_true(v), e);
    if (rc == ERR_NOT_FOUND)
        return err_set(e, ERR_NOT_FOUND, "no account with Uin %s", r->arg[0]);
    return rc ? rc : account_answer(a, r->arg[0], out, e);
}

int admin_key_list(struct admin *a, struct admin_req *r, json_t **out, int *status, struct err *e)
{
    (void)status;
    json_t *keys = NULL;
    int rc = store_account_key_list(a->cfg.store, r->arg[0], &keys, e);
    if (rc == ERR_NOT_FOUND)
        return err_set(e, ERR_NOT_FOUND, "no account with Uin %s", r->arg[0]);
    if (rc)
        return rc;
    keys_add_times(keys);
    *out = json_pack("{s:s, s:o}", "Uin", r->arg[0], "Keys", keys);
    return 0;
}

int admin_key_create(struct admin *a, struct admin_req *r, json_t **out, int *status, struct err *e)
{
    char sid[64], key[64];
    int rc = auth_key_create(a->cfg.store, r->arg[0], sid, key, e);
    if (rc == ERR_NOT_FOUND)
        return err_set(e, ERR_NOT_FOUND, "no account with Uin %s", r->arg[0]);
    if (rc == ERR_CONFLICT)
        return err_set(e, ERR_CONFLICT,
                       "account %s already has %d key pairs, the most an account may hold; "
                       "disable and delete one it no longer uses (asyncctl account key list %s)",
                       r->arg[0], AUTH_MAX_KEYS, r->arg[0]);
    if (rc)
        return rc;
    *out = json_pack("{s:s, s:s}", "SecretId", sid, "SecretKey", key);
    memset(key, 0, sizeof key);
    *status = 201;
    return 0;
}

/* The key secret_id of uin's key list as an object, into *out; ERR_NOT_FOUND when absent. */
static int key_answer(struct admin *a, const char *uin, const char *secret_id, json_t **out,
                      struct err *e)
{
    json_t *keys = NULL;
    int rc = store_account_key_list(a->cfg.store, uin, &keys, e);
    if (rc)
        return rc;
    keys_add_times(keys);
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k)
    {
        if (strcmp(json_string_value(json_object_get(k, "SecretId")), secret_id) == 0) {
            json_object_set_new(k, "Uin", json_string(uin));
            *out = json_incref(k);
            break;
        }
    }
    json_decref(keys);
    return *out ? 0 : err_set(e, ERR_NOT_FOUND, "account %s has no key pair %s", uin, secret_id);
}

int admin_key_patch(struct admin *a, struct admin_req *r, json_t **out, int *status, struct err *e)
{
    (void)status;
    const char *st;
    int rc = admin_body_string(r, "status", true, &st, e);
    if (rc)
        return rc;
    if (strcmp(st, "enabled") != 0 && strcmp(st, "disabled") != 0)
        return err_set(e, ERR_BAD_REQUEST,
                       "status: expected \"enabled\" or \"disabled\", got %.32s", st);
    rc = store_account_key_set_enabled(a->cfg.store, r->arg[0], r->arg[1],
                                       strcmp(st, "enabled") == 0, e);
    return rc ? rc : key_answer(a, r->arg[0], r->arg[1], out, e);
}

int admin_key_delete(struct admin *a, struct admin_req *r, json_t **out, int *status, struct err *e)
{
    (void)status;
    int rc = store_account_key_delete(a->cfg.store, r->arg[0], r->arg[1], e);
    if (rc)
        return rc;
    *out = json_pack("{s:s, s:s, s:b}", "Uin", r->arg[0], "SecretId", r->arg[1], "deleted", 1);
    return 0;
}

int admin_subaccount_create(struct admin *a, struct admin_req *r, json_t **out, int *status,
                            struct err *e)
{
    struct account acc;
    int rc = auth_create_sub(a->cfg.store, r->arg[0], &acc, e);
    if (rc)
        return rc;
    *out = json_pack("{s:s, s:s, s:s, s:s}", "Uin", acc.uin, "OwnerUin", acc.owner_uin, "SecretId",
                     acc.secret_id, "SecretKey", acc.secret_key);
    *status = 201;
    account_clear(&acc);
    return 0;
}

static int check_allow_list(const json_t *allow, struct err *e)
{
    if (!json_is_array(allow))
        return err_set(e, ERR_BAD_REQUEST,
                       "allow: expected an array of \"product:Action\" patterns, e.g. [\"cdb:*\"]");
    size_t i;
    json_t *v;
    json_array_foreach(allow, i, v)
    {
        if (!json_is_string(v) || !auth_pattern_valid(json_string_value(v)))
            return err_set(e, ERR_BAD_REQUEST,
                           "allow[%zu]: expected \"PRODUCT:ACTION\" of letters, digits and '*', "
                           "e.g. \"mongodb:DescribeAsyncRequestInfo\"",
                           i);
    }
    return 0;
}

int admin_policy_set(struct admin *a, struct admin_req *r, json_t **out, int *status, struct err *e)
{
    (void)status;
    json_t *allow = json_object_get(r->body, "allow");
    int rc = check_allow_list(allow, e);
    if (rc)
        return rc;
    struct account acc = {0};
    if ((rc = store_account_by_uin(a->cfg.store, r->arg[0], &acc, e)))
        return rc == ERR_NOT_FOUND ? err_set(e, ERR_NOT_FOUND, "no account with Uin %s", r->arg[0])
                                   : rc;
    bool root = acc.is_root;
    account_clear(&acc);
    if (root)
        return err_set(e, ERR_BAD_REQUEST,
                       "Uin %s is a root account; root accounts may do everything, policies are "
                       "for sub-accounts",
                       r->arg[0]);
    char *text = json_dumps(allow, JSON_COMPACT);
    rc = store_account_set_policy(a->cfg.store, r->arg[0], text, e);
    free(text);
    if (rc)
        return rc;
    *out = json_pack("{s:s, s:O}", "Uin", r->arg[0], "allow", allow);
    return 0;
}

static bool status_word_ok(const char *s)
{
    return strcmp(s, "running") == 0 || strcmp(s, "isolated") == 0 || strcmp(s, "offline") == 0;
}

/* Answers never show a DSN's password (DESIGN.md 7): it reads "***". */
static void redact_dsn(json_t *instance)
{
    const char *dsn = json_string_value(json_object_get(instance, "dsn"));
    if (!dsn)
        return;
    char shown[sizeof((struct instance *)0)->dsn + 8];
    secretbox_redact_dsn(dsn, shown, sizeof shown);
    json_object_set_new(instance, "dsn", json_string(shown));
}

static json_t *instance_json(const struct instance *in)
{
    json_t *reserved = in->reserved_accounts[0] ? json_loads(in->reserved_accounts, 0, NULL) : NULL;
    json_t *j =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o}", "product", in->product, "region",
                  in->region, "uin", in->uin, "instance_id", in->instance_id, "status", in->status,
                  "dsn", in->dsn, "reserved_accounts", reserved ? reserved : json_array());
    json_object_set_new(j, "simulated", json_boolean(in->simulated));
    redact_dsn(j);
    return j;
}

/* The optional reserved_accounts of a cdb instance as compact JSON text in out[cap]; *given is
 * false (and out "") when the body has none. */
static int reserved_from_body(struct admin_req *r, const char *product, char *out, size_t cap,
                              bool *given, struct err *e)
{
    const json_t *list = json_object_get(r->body, "reserved_accounts");
    out[0] = '\0';
    *given = list != NULL;
    if (!list)
        return 0;
    if (strcmp(product, "cdb") != 0)
        return err_set(e, ERR_BAD_REQUEST, "reserved_accounts: only cdb instances have accounts");
    int rc = cdb_guard_check_reserved_list(list, e);
    if (rc)
        return rc;
    char *text = json_dumps(list, JSON_COMPACT);
    if (strlen(text) >= cap)
        rc = err_set(e, ERR_BAD_REQUEST, "reserved_accounts: at most %zu bytes of JSON", cap - 1);
    else
        memcpy(out, text, strlen(text) + 1);
    free(text);
    return rc;
}

/* The files a mysql DSN's ssl-* options name must be readable by asyncd now: a typo found at
 * registration, not as a failed step hours later. */
static int check_tls_files(const struct mysql_dsn *d, struct err *e)
{
    const char *names[] = {"ssl-ca", "ssl-capath", "ssl-cert", "ssl-key"};
    const char *paths[] = {d->ssl_ca, d->ssl_capath, d->ssl_cert, d->ssl_key};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (paths[i] && access(paths[i], R_OK) != 0)
            return err_set(e, ERR_BAD_REQUEST, "dsn: %s: cannot read %.300s: %s", names[i],
                           paths[i], strerror(errno));
    return 0;
}

/* A cdb DSN is parsed as the executor will (its shape, its ssl-* options), so what cannot be
 * used is refused here with the reason. */
static int check_dsn(const char *product, const char *dsn, struct err *e)
{
    const char *want = strcmp(product, "cdb") == 0 ? "mysql://" : "mongodb://";
    if (strncmp(dsn, want, strlen(want)) != 0 &&
        !(strcmp(product, "mongodb") == 0 && strncmp(dsn, "mongodb+srv://", 14) == 0))
        return err_set(e, ERR_BAD_REQUEST, "dsn: a %s instance needs a %s... DSN", product, want);
    if (strcmp(product, "cdb") != 0)
        return 0;
    struct mysql_dsn d;
    struct err pe;
    if (mysql_dsn_parse(dsn, &d, &pe) < 0)
        return err_set(e, ERR_BAD_REQUEST, "%s", pe.msg);
    int rc = check_tls_files(&d, e);
    mysql_dsn_free(&d);
    return rc;
}

/* Copies src into dst[size], refusing what does not fit. */
static int copy_field(char *dst, size_t size, const char *name, const char *src, struct err *e)
{
    if (strlen(src) >= size)
        return err_set(e, ERR_BAD_REQUEST, "%s: at most %zu characters", name, size - 1);
    memcpy(dst, src, strlen(src) + 1);
    return 0;
}

static int instance_from_body(struct admin_req *r, struct instance *in, struct err *e)
{
    const char *product, *region, *uin, *id, *st, *dsn;
    int rc;
    if ((rc = admin_body_string(r, "product", true, &product, e)) ||
        (rc = admin_body_string(r, "region", true, &region, e)) ||
        (rc = admin_body_string(r, "uin", true, &uin, e)) ||
        (rc = admin_body_string(r, "instance_id", true, &id, e)) ||
        (rc = admin_body_string(r, "status", false, &st, e)) ||
        (rc = admin_body_string(r, "dsn", false, &dsn, e)))
        return rc;
    if (strcmp(product, "cdb") != 0 && strcmp(product, "mongodb") != 0)
        return err_set(e, ERR_BAD_REQUEST, "product: expected cdb or mongodb, got %.32s", product);
    st = st ? st : "running";
    if (!status_word_ok(st))
        return err_set(e, ERR_BAD_REQUEST, "status: expected running, isolated or offline");
    json_t *sim = json_object_get(r->body, "simulated");
    if (sim && !json_is_boolean(sim))
        return err_set(e, ERR_BAD_REQUEST, "simulated: expected true or false");
    if (json_is_true(sim) && dsn)
        return err_set(e, ERR_BAD_REQUEST,
                       "dsn: a simulated instance has no server, so it takes no dsn; leave out "
                       "either dsn or \"simulated\": true");
    if (dsn && *dsn && (rc = check_dsn(product, dsn, e)))
        return rc;
    memset(in, 0, sizeof *in);
    in->simulated = json_is_true(sim);
    if ((rc = copy_field(in->product, sizeof in->product, "product", product, e)) ||
        (rc = copy_field(in->region, sizeof in->region, "region", region, e)) ||
        (rc = copy_field(in->uin, sizeof in->uin, "uin", uin, e)) ||
        (rc = copy_field(in->instance_id, sizeof in->instance_id, "instance_id", id, e)) ||
        (rc = copy_field(in->status, sizeof in->status, "status", st, e)) ||
        (rc = copy_field(in->dsn, sizeof in->dsn, "dsn", dsn ? dsn : "", e)))
        return rc;
    bool given;
    return reserved_from_body(r, product, in->reserved_accounts, sizeof in->reserved_accounts,
                              &given, e);
}

/* The owner must be an existing root account. */
static int check_owner(struct admin *a, const char *uin, struct err *e)
{
    struct account acc = {0};
    int rc = store_account_by_uin(a->cfg.store, uin, &acc, e);
    if (rc == ERR_NOT_FOUND)
        return err_set(e, ERR_BAD_REQUEST, "uin: no account with Uin %s", uin);
    if (rc)
        return rc;
    bool root = acc.is_root;
    account_clear(&acc);
    if (!root)
        return err_set(e, ERR_BAD_REQUEST, "uin: %s is a sub-account; name its root account", uin);
    return 0;
}

int admin_instance_create(struct admin *a, struct admin_req *r, json_t **out, int *status,
                          struct err *e)
{
    struct instance in;
    int rc = instance_from_body(r, &in, e);
    if (rc || (rc = check_owner(a, in.uin, e)))
        return rc;
    rc = store_instance_create(a->cfg.store, &in, e);
    if (rc == ERR_ALREADY_EXISTS)
        return err_set(e, ERR_ALREADY_EXISTS, "instance %s already exists", in.instance_id);
    if (rc)
        return rc;
    *out = instance_json(&in);
    *status = 201;
    return 0;
}

int admin_instance_list(struct admin *a, struct admin_req *r, json_t **out, int *status,
                        struct err *e)
{
    (void)status;
    const char *product = admin_query(r, "product");
    if (product && strcmp(product, "cdb") != 0 && strcmp(product, "mongodb") != 0)
        return err_set(e, ERR_BAD_REQUEST, "product: expected cdb or mongodb, got %.32s", product);
    json_t *list = NULL;
    int rc = store_instance_list(a->cfg.store, admin_query(r, "product"), admin_query(r, "uin"),
                                 &list, e);
    if (rc)
        return rc;
    size_t i;
    json_t *in;
    json_array_foreach(list, i, in) redact_dsn(in);
    *out = json_pack("{s:o}", "instances", list);
    return 0;
}

int admin_instance_show(struct admin *a, struct admin_req *r, json_t **out, int *status,
                        struct err *e)
{
    (void)status;
    struct instance in;
    /* Ids are unique across products; the cached lookup needs the product, so try each. */
    int rc = store_instance_get(a->cfg.store, "cdb", r->arg[0], &in, e);
    if (rc == ERR_NOT_FOUND)
        rc = store_instance_get(a->cfg.store, "mongodb", r->arg[0], &in, e);
    if (rc == ERR_NOT_FOUND)
        return err_set(e, ERR_NOT_FOUND, "no instance %s", r->arg[0]);
    if (rc)
        return rc;
    *out = instance_json(&in);
    json_t *state = NULL;
    struct err se;
    /* A simulated instance shows what its tasks recorded (accounts, parameters, backups). */
    if (in.simulated &&
        store_instance_sim_state(a->cfg.store, in.product, in.instance_id, &state, &se) == 0 &&
        state)
        json_object_set_new(*out, "sim_state", state);
    return 0;
}

int admin_instance_patch(struct admin *a, struct admin_req *r, json_t **out, int *status,
                         struct err *e)
{
    (void)status;
    const char *st, *dsn;
    int rc;
    if ((rc = admin_body_string(r, "status", false, &st, e)) ||
        (rc = admin_body_string(r, "dsn", false, &dsn, e)))
        return rc;
    if (!st && !dsn && !json_object_get(r->body, "reserved_accounts"))
        return err_set(e, ERR_BAD_REQUEST, "give status, dsn and/or reserved_accounts to change");
    if (st && !status_word_ok(st))
        return err_set(e, ERR_BAD_REQUEST, "status: expected running, isolated or offline");
    if (dsn && strlen(dsn) >= sizeof((struct instance *)0)->dsn)
        return err_set(e, ERR_BAD_REQUEST, "dsn: too long");
    struct instance in;
    rc = store_instance_get(a->cfg.store, "cdb", r->arg[0], &in, e);
    if (rc == ERR_NOT_FOUND)
        rc = store_instance_get(a->cfg.store, "mongodb", r->arg[0], &in, e);
    if (rc == ERR_NOT_FOUND)
        return err_set(e, ERR_NOT_FOUND, "no instance %s", r->arg[0]);
    if (rc == 0 && dsn && in.simulated)
        return err_set(e, ERR_BAD_REQUEST, "dsn: %s is simulated: it has no server, so no dsn",
                       in.instance_id);
    if (rc || (dsn && *dsn && (rc = check_dsn(in.product, dsn, e))))
        return rc;
    char reserved[sizeof in.reserved_accounts];
    bool given;
    if ((rc = reserved_from_body(r, in.product, reserved, sizeof reserved, &given, e)))
        return rc;
    if ((rc = store_instance_update(a->cfg.store, r->arg[0], st, dsn, given ? reserved : NULL, &in,
                                    e)))
        return rc;
    *out = instance_json(&in);
    return 0;
}
