/* What a simulated task that succeeded changes on its instance, as the real product would: a
 * table keyed by product and action, each row an effect kind and the input it reads. The state
 * is a JSON object {"accounts":[...], "params":{...}, "backups":[...], "instance":{...}} (store:
 * sim_state); "instance" holds DescribeDBInstances fields an action changed (Vip, EngineVersion).
 */
#include <stdio.h>
#include <string.h>

#include "common/timefmt.h"
#include "sim/sim_int.h"

enum effect_kind {
    FX_ACCOUNTS_CREATE,
    FX_ACCOUNTS_DELETE,
    FX_ACCOUNTS_PASSWORD,
    FX_ACCOUNTS_PRIVILEGES,
    FX_ACCOUNT_HOST,
    FX_PARAMS,
    FX_BACKUP,
    FX_STATUS,
    FX_FIELDS, /* request parameters become DescribeDBInstances fields (state "instance") */
};

struct effect {
    const char *product, *action;
    enum effect_kind kind;
    const char *status; /* FX_STATUS: the instance's new status; FX_FIELDS: "Param=Field,..." */
};

static const struct effect effects[] = {
    {"cdb", "CreateAccounts", FX_ACCOUNTS_CREATE, NULL},
    {"cdb", "DeleteAccounts", FX_ACCOUNTS_DELETE, NULL},
    {"cdb", "ModifyAccountPassword", FX_ACCOUNTS_PASSWORD, NULL},
    {"cdb", "ModifyAccountPrivileges", FX_ACCOUNTS_PRIVILEGES, NULL},
    {"cdb", "ModifyAccountHost", FX_ACCOUNT_HOST, NULL},
    {"cdb", "ModifyInstanceParam", FX_PARAMS, NULL},
    {"cdb", "CreateBackup", FX_BACKUP, NULL},
    {"mongodb", "CreateBackupDBInstance", FX_BACKUP, NULL},
    {"cdb", "IsolateDBInstance", FX_STATUS, "isolated"},
    {"cdb", "OfflineIsolatedDBInstances", FX_STATUS, "offline"},
    {"cdb", "ReleaseIsolatedDBInstances", FX_STATUS, "running"},
    {"mongodb", "IsolateDBInstance", FX_STATUS, "isolated"},
    {"mongodb", "OfflineIsolatedDBInstance", FX_STATUS, "offline"},
    {"mongodb", "ReleaseIsolatedDBInstances", FX_STATUS, "running"},
    {"mongodb", "ReleaseIsolatedDBInstance", FX_STATUS, "running"},
    /* network, version and size changes, as DescribeDBInstances shows them afterwards */
    {"cdb", "ModifyDBInstanceVipVport", FX_FIELDS,
     "DstIp=Vip,DstPort=Vport,UniqVpcId=UniqVpcId,UniqSubnetId=UniqSubnetId"},
    {"cdb", "UpgradeDBInstanceEngineVersion", FX_FIELDS, "EngineVersion=EngineVersion"},
    {"cdb", "UpgradeDBInstance", FX_FIELDS,
     "Memory=Memory,Volume=Volume,Cpu=Cpu,EngineVersion=EngineVersion,DeviceType=DeviceType"},
    {"mongodb", "ModifyDBInstanceNetworkAddress", FX_FIELDS,
     "NewUniqVpcId=VpcId,NewUniqSubnetId=SubnetId"},
    {"mongodb", "UpgradeDbInstanceVersion", FX_FIELDS, "MongoVersion=MongoVersion"},

};

static json_t *member(json_t *state, const char *key, bool array)
{
    json_t *v = json_object_get(state, key);
    if (array ? !json_is_array(v) : !json_is_object(v)) {
        v = array ? json_array() : json_object();
        json_object_set_new(state, key, v);
    }
    return v;
}

/* The index of User@Host in accounts, or -1. */
static long account_index(json_t *accounts, const char *user, const char *host)
{
    size_t i;
    json_t *a;
    json_array_foreach(accounts, i, a)
    {
        const char *u = json_string_value(json_object_get(a, "User"));
        const char *h = json_string_value(json_object_get(a, "Host"));
        if (u && h && strcmp(u, user) == 0 && strcmp(h, host) == 0)
            return (long)i;
    }
    return -1;
}

static json_t *input_str(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? v : NULL;
}

static bool account_create(json_t *accounts, const json_t *input, const json_t *item,
                           const char *now)
{
    const char *user = json_string_value(input_str(item, "User"));
    const char *host = json_string_value(input_str(item, "Host"));
    if (!user || !host || account_index(accounts, user, host) >= 0)
        return false;
    json_t *notes = input_str(input, "Description");
    json_t *maxc = json_object_get(input, "MaxUserConnections");
    json_array_append_new(
        accounts, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:{}}", "User", user, "Host", host,
                            "Notes", notes ? json_string_value(notes) : "", "CreateTime", now,
                            "ModifyTime", now, "ModifyPasswordTime", now, "MaxUserConnections",
                            (json_int_t)(json_is_integer(maxc) ? json_integer_value(maxc) : 0),
                            "Privileges"));
    return true;
}

/* One account effect on each account of input's Accounts list. */
static bool each_account(enum effect_kind kind, const json_t *input, json_t *state, const char *now)
{
    json_t *accounts = member(state, "accounts", true);
    bool changed = false;
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(input, "Accounts"), i, item)
    {
        if (kind == FX_ACCOUNTS_CREATE) {
            changed |= account_create(accounts, input, item, now);
            continue;
        }
        const char *user = json_string_value(input_str(item, "User"));
        const char *host = json_string_value(input_str(item, "Host"));
        long at = user && host ? account_index(accounts, user, host) : -1;
        if (at < 0)
            continue;
        json_t *a = json_array_get(accounts, (size_t)at);
        changed = true;
        if (kind == FX_ACCOUNTS_DELETE) {
            json_array_remove(accounts, (size_t)at);
        } else if (kind == FX_ACCOUNTS_PASSWORD) { /* no password is kept, only when it changed */
            json_object_set_new(a, "ModifyPasswordTime", json_string(now));
        } else {
            static const char *const keys[] = {"GlobalPrivileges", "DatabasePrivileges",
                                               "TablePrivileges", "ColumnPrivileges"};
            json_t *priv = json_object();
            for (size_t k = 0; k < 4; k++) {
                json_t *v = json_object_get(input, keys[k]);
                json_object_set_new(priv, keys[k], v ? json_deep_copy(v) : json_array());
            }
            json_object_set_new(a, "Privileges", priv);
            json_object_set_new(a, "ModifyTime", json_string(now));
        }
    }
    return changed;
}

static bool account_host(const json_t *input, json_t *state, const char *now)
{
    json_t *accounts = member(state, "accounts", true);
    const char *user = json_string_value(input_str(input, "User"));
    const char *host = json_string_value(input_str(input, "Host"));
    json_t *new_host = input_str(input, "NewHost");
    long at = user && host && new_host ? account_index(accounts, user, host) : -1;
    if (at < 0)
        return false;
    json_t *a = json_array_get(accounts, (size_t)at);
    json_object_set(a, "Host", new_host);
    json_object_set_new(a, "ModifyTime", json_string(now));
    return true;
}

static bool params_set(const json_t *input, json_t *state)
{
    json_t *params = member(state, "params", false);
    bool changed = false;
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(input, "ParamList"), i, p)
    {
        json_t *name = input_str(p, "Name"), *value = input_str(p, "CurrentValue");
        if (name && value) {
            json_object_set(params, json_string_value(name), value);
            changed = true;
        }
    }
    return changed;
}

static bool backup_add(const json_t *input, json_t *state, const char *now)
{
    json_t *backups = member(state, "backups", true);
    json_t *b = input ? json_deep_copy(input) : json_object();
    json_object_set_new(b, "StartTime", json_string(now));
    json_object_set_new(b, "EndTime", json_string(now));
    json_array_append_new(backups, b);
    return true;
}

/* Copies each named request parameter the task was given into state's "instance" object under
 * its DescribeDBInstances name (map: "Param=Field,..."); what the request left out stays. */
static bool fields_set(const json_t *input, json_t *state, const char *map)
{
    json_t *fields = member(state, "instance", false);
    bool changed = false;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", map);
    char *save = NULL;
    for (char *pair = strtok_r(buf, ",", &save); pair; pair = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(pair, '=');
        json_t *v = eq ? json_object_get(input, (*eq = '\0', pair)) : NULL;
        if (v && (json_is_string(v) || json_is_integer(v))) {
            json_object_set(fields, eq + 1, v);
            changed = true;
        }
    }
    return changed;
}

bool sim_effect_apply(const char *product, const char *action, const json_t *input, json_t *state,
                      const char **status, int64_t now_ms)
{
    *status = NULL;
    char now[20];
    time_fmt_local(now_ms, now);
    for (size_t i = 0; i < sizeof effects / sizeof effects[0]; i++) {
        const struct effect *fx = &effects[i];
        if (strcmp(fx->product, product) != 0 || strcmp(fx->action, action) != 0)
            continue;
        switch (fx->kind) {
        case FX_ACCOUNT_HOST:
            return account_host(input, state, now);
        case FX_PARAMS:
            return params_set(input, state);
        case FX_BACKUP:
            return backup_add(input, state, now);
        case FX_STATUS:
            *status = fx->status;
            return false;
        case FX_FIELDS:
            return fields_set(input, state, fx->status);
        default:
            return each_account(fx->kind, input, state, now);
        }
    }
    return false;
}
