/* The tenant's limits on a cdb instance: reserved accounts, privileges per scope, system schemas.
 * The privilege lists are the allowed values in the doc comments of the official SDK's
 * cdb 2017-03-20 ModifyAccountPrivilegesRequest (GlobalPrivileges, DatabasePrivileges,
 * TablePrivileges, ColumnPrivileges), tencentcloud-sdk-nodejs cdb_models.d.ts. */
#include "products/cdb_guard.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

enum {
    MAX_USER = 80,  /* MariaDB's limit for a user name (MySQL's is 32) */
    MAX_HOST = 255, /* and for a host */
    MAX_RESERVED = 100,
};

#define END NULL

/* Global privileges are the SDK's list less every privilege that acts on schema objects: granted
 * ON *.*, SELECT, UPDATE, DROP, EXECUTE... reach the mysql schema too (UPDATE mysql.global_priv
 * takes over root), and CREATE USER allows DROP USER and RENAME USER of any account, the
 * operator's included. Those are given per database, table or column instead. */
static const char *const global_privs[] = {
    "PROCESS", "SHOW DATABASES", "RELOAD", "REPLICATION CLIENT", "REPLICATION SLAVE", END};

/* What the SDK documents at the global level but asyncd refuses there (see global_privs), so the
 * refusal can say to grant it per database. */
static const char *const global_only_per_database[] = {
    "SELECT",        "INSERT",     "UPDATE",      "DELETE",      "CREATE",
    "DROP",          "REFERENCES", "INDEX",       "ALTER",       "CREATE TEMPORARY TABLES",
    "LOCK TABLES",   "EXECUTE",    "CREATE VIEW", "SHOW VIEW",   "CREATE ROUTINE",
    "ALTER ROUTINE", "EVENT",      "TRIGGER",     "CREATE USER", END};

static const char *const database_privs[] = {
    "SELECT",        "INSERT",     "UPDATE",      "DELETE",    "CREATE",
    "DROP",          "REFERENCES", "INDEX",       "ALTER",     "CREATE TEMPORARY TABLES",
    "LOCK TABLES",   "EXECUTE",    "CREATE VIEW", "SHOW VIEW", "CREATE ROUTINE",
    "ALTER ROUTINE", "EVENT",      "TRIGGER",     END};

static const char *const table_privs[] = {
    "SELECT", "INSERT", "UPDATE",      "DELETE",    "CREATE",  "DROP", "REFERENCES",
    "INDEX",  "ALTER",  "CREATE VIEW", "SHOW VIEW", "TRIGGER", END};

static const char *const column_privs[] = {"SELECT", "INSERT", "UPDATE", "REFERENCES", END};

static const char *const *const scope_privs[] = {
    [CDB_SCOPE_GLOBAL] = global_privs,
    [CDB_SCOPE_DATABASE] = database_privs,
    [CDB_SCOPE_TABLE] = table_privs,
    [CDB_SCOPE_COLUMN] = column_privs,
};

static const char *const scope_names[] = {
    [CDB_SCOPE_GLOBAL] = "global",
    [CDB_SCOPE_DATABASE] = "database",
    [CDB_SCOPE_TABLE] = "table",
    [CDB_SCOPE_COLUMN] = "column",
};

static const char *const system_schemas[] = {"mysql", "sys", "performance_schema",
                                             "information_schema", END};

/* ---- accounts ---- */

/* Why user is reserved whatever the host, or NULL. */
static const char *builtin_reason(const char *user)
{
    if (user[0] == '\0')
        return "an anonymous account";
    if (strcmp(user, "root") == 0)
        return "the server's superuser";
    if (strncmp(user, "mysql.", 6) == 0 || strcmp(user, "mariadb.sys") == 0)
        return "a system account of the server";
    return NULL;
}

/* Whether an operator's entry ("user" or "user@host") names user@host. */
static bool entry_matches(const char *entry, const char *user, const char *host)
{
    const char *at = strrchr(entry, '@');
    if (!at)
        return strcmp(entry, user) == 0;
    size_t ulen = (size_t)(at - entry);
    return strlen(user) == ulen && memcmp(entry, user, ulen) == 0 && strcasecmp(at + 1, host) == 0;
}

static bool operator_listed(const json_t *reserved, const char *user, const char *host)
{
    size_t i;
    const json_t *v;
    json_array_foreach(reserved, i, v)
    {
        if (json_is_string(v) && entry_matches(json_string_value(v), user, host))
            return true;
    }
    return false;
}

int cdb_guard_account(const struct cdb_guard *g, const char *user, const char *host, struct err *e)
{
    const char *why = builtin_reason(user);
    if (!why && g && g->dsn_user && strcmp(user, g->dsn_user) == 0)
        why = "the account asyncd itself manages the instance with";
    if (!why && g && operator_listed(g->reserved, user, host))
        why = "reserved by the instance's operator";
    if (!why)
        return 0;
    return err_set(e, ERR_CDB_OPERATION_DENIED,
                   "The account %.80s@%.255s is %s; tenants cannot create, change or delete it. "
                   "Use an account of your own",
                   user, host, why);
}

/* ---- privileges ---- */

/* name in upper case with runs of blanks as one space, trimmed; false when it does not fit. */
static bool normalise(const char *name, char *out, size_t cap)
{
    size_t n = 0;
    for (; *name; name++) {
        bool blank = *name == ' ' || *name == '\t';
        if (blank && (n == 0 || out[n - 1] == ' '))
            continue;
        if (n + 1 >= cap)
            return false;
        out[n++] = blank ? ' ' : (char)toupper((unsigned char)*name);
    }
    if (n > 0 && out[n - 1] == ' ')
        n--;
    out[n] = '\0';
    return true;
}

static const char *find(const char *const *list, const char *s)
{
    for (; *list; list++)
        if (strcmp(*list, s) == 0)
            return *list;
    return NULL;
}

const char *cdb_guard_privilege(enum cdb_scope scope, const char *name)
{
    char norm[40];
    if ((unsigned)scope > CDB_SCOPE_COLUMN || !normalise(name, norm, sizeof norm))
        return NULL;
    return find(scope_privs[scope], norm);
}

static void join(const char *const *list, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    for (; *list && n < cap; list++)
        n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? ", " : "", *list);
}

int cdb_guard_check_privilege(enum cdb_scope scope, const char *name, const char **canonical,
                              struct err *e)
{
    if ((*canonical = cdb_guard_privilege(scope, name)))
        return 0;
    char allowed[400], norm[40];
    join(scope_privs[scope], allowed, sizeof allowed);
    if (scope == CDB_SCOPE_GLOBAL && normalise(name, norm, sizeof norm) &&
        find(global_only_per_database, norm))
        return err_set(
            e, ERR_INVALID_PARAMETER_VALUE,
            "The privilege \"%.40s\" cannot be given at the global level here: on *.* it "
            "would reach the server's own mysql schema. Give it per database "
            "(DatabasePrivileges); globally tenants may have %s",
            name, allowed);
    return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                   "The privilege \"%.40s\" cannot be given at the %s level; tenants may have %s",
                   name, scope_names[scope], allowed);
}

bool cdb_guard_tenant_may_hold(enum cdb_scope scope, const char *privilege, const char *schema,
                               bool grantable)
{
    char norm[40];
    if (grantable || (unsigned)scope > CDB_SCOPE_COLUMN ||
        !normalise(privilege, norm, sizeof norm) || (schema && cdb_guard_schema(schema, NULL)))
        return false;
    /* USAGE is "no privileges"; MariaDB 10.5+ shows REPLICATION CLIENT as BINLOG MONITOR */
    if (strcmp(norm, "USAGE") == 0 ||
        (scope == CDB_SCOPE_GLOBAL && strcmp(norm, "BINLOG MONITOR") == 0))
        return true;
    return find(scope_privs[scope], norm) != NULL;
}

/* ---- schemas ---- */

bool cdb_guard_is_system_schema(const char *name)
{
    for (const char *const *s = system_schemas; *s; s++)
        if (strcasecmp(name, *s) == 0)
            return true;
    return false;
}

/* Whether pattern, read as GRANT reads a database name (`_` any one character), matches name in
 * any case. Callers refuse `%` and `\` before asking. */
static bool like_matches(const char *pattern, const char *name)
{
    for (; *pattern && *name; pattern++, name++)
        if (*pattern != '_' && tolower((unsigned char)*pattern) != tolower((unsigned char)*name))
            return false;
    return *pattern == '\0' && *name == '\0';
}

int cdb_guard_schema(const char *db, struct err *e)
{
    if (strpbrk(db, "%\\"))
        return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                       "The database name \"%.64s\" contains %% or \\, which MySQL reads as a "
                       "wildcard or an escape; name one database exactly",
                       db);
    for (const char *const *s = system_schemas; *s; s++)
        if (like_matches(db, *s))
            return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                           "The database \"%.64s\" %s the system schema %s, which tenants cannot "
                           "be given privileges on; name a database of your own",
                           db, strcasecmp(db, *s) == 0 ? "is" : "would match", *s);
    return 0;
}

/* ---- the operator's list ---- */

static int check_entry(size_t i, const json_t *v, struct err *e)
{
    const char *s = json_string_value(v);
    if (!s || strlen(s) != json_string_length(v))
        return err_set(e, ERR_BAD_REQUEST,
                       "reserved_accounts[%zu]: expected a string \"user\" or \"user@host\"", i);
    const char *at = strrchr(s, '@');
    size_t ulen = at ? (size_t)(at - s) : strlen(s);
    size_t hlen = at ? strlen(at + 1) : 1;
    if (ulen == 0 || ulen > MAX_USER || hlen == 0 || hlen > MAX_HOST)
        return err_set(e, ERR_BAD_REQUEST,
                       "reserved_accounts[%zu]: expected \"user\" or \"user@host\" (user 1..%d "
                       "bytes, host 1..%d), got \"%.100s\"",
                       i, MAX_USER, MAX_HOST, s);
    return 0;
}

int cdb_guard_check_reserved_list(const json_t *list, struct err *e)
{
    if (!json_is_array(list) || json_array_size(list) > MAX_RESERVED)
        return err_set(e, ERR_BAD_REQUEST,
                       "reserved_accounts: expected an array of at most %d account names such as "
                       "\"ops\" or \"ops@10.0.0.%%\"",
                       MAX_RESERVED);
    size_t i;
    const json_t *v;
    json_array_foreach(list, i, v)
    {
        int rc = check_entry(i, v, e);
        if (rc)
            return rc;
    }
    return 0;
}
