/* What a cdb tenant may never reach on the operator's MySQL/MariaDB instance: the reserved
 * accounts, the privileges tenants may hold per scope, and the system schemas. One module, used
 * both when a request is checked (before any task exists) and by the mysql executor just before
 * each statement, so the two can never disagree. Pure logic: no connection, no allocation. */
#ifndef ASYNCD_CDB_GUARD_H
#define ASYNCD_CDB_GUARD_H

#include <jansson.h>
#include <stdbool.h>

#include "common/errors.h"

/* ModifyAccountPrivileges' four scopes, as the SDK's model docs list them. */
enum cdb_scope { CDB_SCOPE_GLOBAL, CDB_SCOPE_DATABASE, CDB_SCOPE_TABLE, CDB_SCOPE_COLUMN };

/* The per-instance rules on top of the built-in ones. Both fields are borrowed and may be NULL. */
struct cdb_guard {
    const char *dsn_user;   /* the user of the instance's admin DSN: every host is refused */
    const json_t *reserved; /* the operator's list: "user" (every host) or "user@host" */
};

/* 0 when a tenant may act on user@host; else ERR_CDB_OPERATION_DENIED with a message naming the
 * account and why (root, mysql.*, mariadb.sys, anonymous, the DSN's user, the operator's list).
 * User names match byte for byte (MySQL compares them case-sensitively), hosts case-insensitively
 * (MySQL stores them in lower case). */
int cdb_guard_account(const struct cdb_guard *g, const char *user, const char *host, struct err *e);

/* The canonical spelling ("CREATE VIEW") of privilege name when tenants may be given it in scope
 * (any case, runs of blanks as one space); NULL when they may not or it is no privilege. */
const char *cdb_guard_privilege(enum cdb_scope scope, const char *name);

/* 0 with *canonical set, or ERR_INVALID_PARAMETER_VALUE naming the privilege and the scope and
 * listing what the scope allows. */
int cdb_guard_check_privilege(enum cdb_scope scope, const char *name, const char **canonical,
                              struct err *e);

/* Whether an account that already holds privilege (as information_schema spells it, e.g.
 * "SUPER", "USAGE") in scope on schema (NULL for global) could have got it from a tenant.
 * False for anything outside the scope's list, for grantable privileges and for any privilege on
 * a schema cdb_guard_schema refuses: such an account belongs to the operator. */
bool cdb_guard_tenant_may_hold(enum cdb_scope scope, const char *privilege, const char *schema,
                               bool grantable);

/* 0 when db may be named by a tenant as a database (in GRANT ... ON db.* its `_` and `%` are
 * wildcards): ERR_INVALID_PARAMETER_VALUE for a system schema (mysql, sys, performance_schema,
 * information_schema, in any case), for `%` or `\` (wildcards and escapes), and for a name whose
 * `_` wildcards would match a system schema (`m_sql`). */
int cdb_guard_schema(const char *db, struct err *e);

/* True for the exact name of a system schema, in any case. */
bool cdb_guard_is_system_schema(const char *name);

/* Checks an operator's reserved_accounts value (admin API): an array of at most 100 strings
 * "user" or "user@host", user 1..80 bytes, host 1..255. ERR_BAD_REQUEST naming the entry. */
int cdb_guard_check_reserved_list(const json_t *list, struct err *e);

#endif
