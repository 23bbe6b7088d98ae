/* MySQL connections for the mysql executor: the DSN, connecting, and statement templates whose
 * only substitutions are typed placeholders, so nothing a task supplies can become SQL syntax.
 *
 * Template placeholders (args is a JSON array; N is an index into it):
 *   {N:str}        args[N] as a quoted string literal ('...' escaped by the connection)
 *   {N:ident}      args[N] as a `quoted` identifier, backticks doubled; 1..64 characters
 *   {N:int}        args[N] an integer, or a string of an optional '-' and digits, written bare
 *   {N:val}        a number (-digits[.digits], integer or string) bare, anything else as {N:str}
 *   {N:schema}     args[N] as {N:ident}, refused when it names (or, as GRANT reads `_`, would
 *                  match) a system schema or holds % or \ (cdb_guard_schema)
 *   {N:priv_global}, {N:priv_database}, {N:priv_table}
 *                  args[N] an array of privilege names a tenant may have in that scope
 *                  (cdb_guard.h), joined by ", "
 *   {N:priv_column} args[N] an object {"Column": C, "Privileges": [...]}: "SELECT (`C`), ..."
 *   {N:list_priv}  as {N:priv_global} (the widest tenant list; kept for older templates)
 *   {captured}     the captured value as a string literal (NULL when it is null)
 *   {captured:val} the captured value as {N:val} would write it (NULL when it is null)
 *   {{ and }}      a literal { and }
 * Anything else between braces, a lone '}', an index out of range or an argument of the wrong
 * type is ERR_INVALID_PARAMETER_VALUE with a message naming the placeholder, e.g.
 * "{1:ident}: expected a string, got a number". */
#ifndef ASYNCD_MYSQL_CONN_H
#define ASYNCD_MYSQL_CONN_H

#include <jansson.h>
#include <mysql.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/errors.h"
#include "products/cdb_guard.h"

/* What the DSN's ssl-mode asks for, as the mysql client's --ssl-mode means it. */
enum mysql_dsn_ssl_mode {
    MYSQL_DSN_SSL_UNSET,           /* no ssl-* option: no TLS (libmariadb 3.3's default) */
    MYSQL_DSN_SSL_DISABLED,        /* never TLS */
    MYSQL_DSN_SSL_PREFERRED,       /* TLS when the server offers it, else plain */
    MYSQL_DSN_SSL_REQUIRED,        /* TLS or no connection; the certificate is not checked */
    MYSQL_DSN_SSL_VERIFY_CA,       /* as REQUIRED, and the server's chain must lead to ssl-ca */
    MYSQL_DSN_SSL_VERIFY_IDENTITY, /* as VERIFY_CA, and the certificate must name HOST */
};

/* mysql://USER[:PASSWORD]@HOST[:PORT][/DB][?NAME=VALUE&...]: USER, PASSWORD, DB and option
 * values percent-decoded, HOST a name, an IPv4 address or [an IPv6 address] (kept without the
 * brackets), PORT 3306 when absent. The authority ends at the last '@', so an '@' in an option
 * value is written %40. Options (the mysql client's names; '_' may stand for '-'):
 *   ssl-mode   DISABLED | PREFERRED | REQUIRED | VERIFY_CA | VERIFY_IDENTITY (any case)
 *   ssl-ca     PEM file of the CA that signed the server's certificate (absolute path)
 *   ssl-capath directory of CA certificates (c_rehash'ed, absolute path)
 *   ssl-cert, ssl-key   a client certificate and its key (both or neither)
 * Without ssl-mode a CA means VERIFY_CA and a client certificate REQUIRED; VERIFY_* need a CA;
 * DISABLED with a file option, an unknown or repeated option is an error. */
struct mysql_dsn {
    char *user, *password, *host, *db; /* owned; password and db NULL when absent */
    unsigned port;
    enum mysql_dsn_ssl_mode ssl_mode;
    char *ssl_ca, *ssl_capath, *ssl_cert, *ssl_key; /* owned; NULL when absent */
};

/* Fills *out (free with mysql_dsn_free). A malformed DSN is ERR_INVALID_PARAMETER_VALUE with a
 * message giving the expected shape and what is wrong ("dsn: unknown option \"sslmode\"
 * (expected ssl-mode, ...)"); it never contains the password. *out is left zeroed on failure. */
int mysql_dsn_parse(const char *dsn, struct mysql_dsn *out, struct err *e);
void mysql_dsn_free(struct mysql_dsn *d);

/* "VERIFY_CA" for MYSQL_DSN_SSL_VERIFY_CA...; "unset" for MYSQL_DSN_SSL_UNSET. Static text. */
const char *mysql_dsn_ssl_mode_name(enum mysql_dsn_ssl_mode m);

/* Puts d's TLS options on m (between mysql_init and mysql_real_connect). */
void mysql_dsn_tls_apply(MYSQL *m, const struct mysql_dsn *d);

/* After the connect: -1 with why filled when d's ssl-mode requires TLS and the session is
 * plain (libmariadb falls back silently when the server offers no TLS); else 0. */
int mysql_dsn_tls_check(MYSQL *m, const struct mysql_dsn *d, char *why, size_t cap);

/* Connects over TCP with utf8mb4, LOAD DATA LOCAL off, non-blocking calls enabled and the DSN's
 * TLS options.
 * timeout_s bounds the connect and each network read and write (0: a 5 s connect and no read or
 * write limit). On success *out is the connection (the caller mysql_close()s it). Errors:
 * ERR_INVALID_PARAMETER_VALUE for a malformed DSN, ERR_SERVICE_UNAVAILABLE when the server cannot
 * be reached, refuses us or fails the TLS the DSN asks for ("cannot connect to MySQL at
 * HOST:PORT with ssl-mode=VERIFY_CA: TLS/SSL error: self-signed certificate in certificate
 * chain"). */
int mysql_conn_open(const char *dsn, unsigned timeout_s, MYSQL **out, struct err *e);

/* mysql_conn_open in two halves, for a caller that connects with mysql_real_connect_start/_cont
 * (d's host, user, password and db must then live until the connect ends). prepare: a new
 * connection (the caller mysql_close()s it) with the options above, not connected yet.
 * connected: after the connect, with whether it returned the connection: 0, or the error
 * mysql_conn_open would give (the caller then closes m). */
MYSQL *mysql_conn_prepare(const struct mysql_dsn *d, unsigned timeout_s);
int mysql_conn_connected(MYSQL *m, bool connected, const struct mysql_dsn *d, struct err *e);

/* Renders template sql with args into *out (a NUL-terminated heap string the caller frees).
 * String literals are escaped by m, so they are right for its character set and sql_mode (render
 * just before running). {captured} is an error here; see mysql_conn_render_captured. */
int mysql_conn_render(MYSQL *m, const char *sql, const json_t *args, char **out, struct err *e);

/* The same, with {captured} and {captured:val} taken from captured's "value" (a string, a number
 * or null); a NULL captured, or one without "value", makes them an error. With m NULL it only
 * checks the template and args (*out is then set to NULL). */
int mysql_conn_render_captured(MYSQL *m, const char *sql, const json_t *args,
                               const json_t *captured, char **out, struct err *e);

/* The text a person reads: {N} and {N:kind} become args[N]'s raw text (an array's items joined
 * by ", ", "***" where secret[N] is true), {captured} the captured value ("NULL" when null, an
 * error when there is none); {{ and }} are braces. secret may be NULL. *out as above. */
int mysql_conn_render_text(const char *tmpl, const json_t *args, const json_t *captured,
                           const bool *secret, char **out, struct err *e);

/* Sets secret[N] (for N < n) when template sql passes args[N] as a password: a {N:str} or
 * {N:val} right after IDENTIFIED BY, PASSWORD( or USING. Leaves the other entries alone. */
void mysql_conn_secret_args(const char *sql, bool *secret, size_t n);

/* The tenant guard over template sql with args: every account written USER@HOST with a
 * placeholder for the user ({N:str}@{M:str}, {N:ident}@'%', ...) must pass cdb_guard_account,
 * and every identifier placeholder that names a database (db.*, db.table, {N:schema}) or equals
 * a system schema must pass cdb_guard_schema. The accounts found are appended to accounts as
 * [user, host] pairs when accounts is not NULL, for a live check on the server. Errors:
 * ERR_CDB_OPERATION_DENIED (a reserved account), ERR_INVALID_PARAMETER_VALUE (a schema, a
 * malformed template). */
int mysql_conn_guard(const char *sql, const json_t *args, const struct cdb_guard *g,
                     json_t *accounts, struct err *e);

/* The guard's rules for a mysql action body run on the instance with this DSN: g->dsn_user
 * borrows from *d (mysql_dsn_free it), g->reserved from the body's "reserved_accounts". */
void mysql_conn_guard_rules(const json_t *body, const char *dsn, struct mysql_dsn *d,
                            struct cdb_guard *g);

/* mysql_conn_guard over every template of a {"mysql": {...}} action (sql, statements, capture,
 * done_if) with the rules above; 0 for an action of another executor. Used before a task exists.
 * The accounts the templates name are appended to accounts as [user, host] pairs (repeats
 * included), for the live check on the server before the task is created; accounts may be NULL. */
int mysql_conn_guard_action(const json_t *action, const char *dsn, json_t *accounts, struct err *e);

/* The query that lists what user@host holds, one row per privilege: scope (0 global, 1 database,
 * 2 table, 3 column), schema (NULL for global), PRIVILEGE_TYPE, IS_GRANTABLE. Literals escaped by
 * m; the caller frees it. NULL when the name cannot be escaped. */
char *mysql_conn_privileges_query(MYSQL *m, const char *user, const char *host);

/* MariaDB's roles granted to user@host (one Role per row; the table does not exist on MySQL:
 * error 1146). Freed by the caller; NULL when a name cannot be escaped. */
char *mysql_conn_roles_query(MYSQL *m, const char *user, const char *host);

#endif
