/* The "mysql" executor: runs templated SQL on the task's instance, stoppable with KILL QUERY.
 *
 * {"mysql": {"sql": T | "statements": [T, ...], "args": [...], "message": T, "capture": T,
 *            "ignore_errors": [1396, ...], "parameter": {"name": N, "value": M}}}
 * The templates T are described in mysql_conn.h. The capture, when given, runs first and must
 * return at most one row of one column; its value becomes the step's output {"value": ...}. An
 * action may be a capture alone (no sql): a step of its own records the old value durably before
 * a later step changes it. "parameter" says args[N] is a cdb parameter name and args[M] (when
 * given) the value it is set to: both are checked against the parameter catalogue
 * (products/cdb_params.h) when the task is made and again before the run.
 * "done_if": T, a query of the capture's shape run after it: a value other than NULL, 0 or ''
 * says an earlier run of this very step already did the work (asyncd died before recording its
 * result), so the statements are skipped (still guarded) and the step is done.
 * {captured} refers to job->captured (an undo gets what its do captured), or, when there is none,
 * to this action's own capture. exit_code is 0 when done, the MySQL error number when a
 * statement failed, -1 otherwise. This file is the pure part (validation, the run's plan and its
 * messages); exec_mysql_step.c runs the action on libmariadb's non-blocking API. */
#include "exec/exec_mysql.h"

#include "exec/exec_int.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/json_keys.h"
#include "common/xalloc.h"
#include "exec/mysql_conn.h"
#include "products/cdb_guard.h"
#include "products/cdb_params.h"

/* ---- validation ---- */

static int check_string(const json_t *v, const char *name, struct err *e)
{
    if (!json_is_string(v))
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "mysql.%s: expected a string, got %s", name,
                       json_kind_phrase(v));
    if (strlen(json_string_value(v)) != json_string_length(v))
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "mysql.%s: contains a NUL character", name);
    return 0;
}

/* A template: a string whose placeholders fit args (checked without a connection). */
static int check_template(const json_t *v, const char *name, const json_t *args, int is_sql,
                          struct err *e)
{
    int rc = check_string(v, name, e);
    if (rc < 0)
        return rc;
    if (is_sql && json_string_length(v) == 0)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "mysql.%s: expected SQL, got \"\"", name);
    json_t *dummy = json_pack("{s:s}", "value", "0"); /* the captured value is known only later */
    char *text = NULL;
    struct err sub;
    rc = is_sql ? mysql_conn_render_captured(NULL, json_string_value(v), args, dummy, &text, &sub)
                : mysql_conn_render_text(json_string_value(v), args, dummy, NULL, &text, &sub);
    free(text);
    json_decref(dummy);
    return rc < 0 ? err_set(e, rc, "mysql.%s: %s", name, sub.msg) : 0;
}

static int check_args(const json_t *args, struct err *e)
{
    if (!json_is_array(args))
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "mysql.args: expected an array, got %s",
                       json_kind_phrase(args));
    size_t i, j;
    const json_t *arg, *item;
    json_array_foreach(args, i, arg)
    {
        char name[64];
        snprintf(name, sizeof name, "args[%zu]", i);
        if (json_is_integer(arg) || json_is_object(arg)) /* an object: {N:priv_column} */
            continue;
        if (!json_is_array(arg)) {
            if (!json_is_string(arg))
                return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                               "mysql.%s: expected a string, an integer, an object or an array "
                               "of strings, got %s",
                               name, json_kind_phrase(arg));
            int rc = check_string(arg, name, e);
            if (rc < 0)
                return rc;
            continue;
        }
        json_array_foreach(arg, j, item)
        {
            snprintf(name, sizeof name, "args[%zu][%zu]", i, j);
            int rc = check_string(item, name, e);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

static int check_ignore_errors(const json_t *v, struct err *e)
{
    if (!json_is_array(v))
        return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                       "mysql.ignore_errors: expected an array of MySQL error numbers, got %s",
                       json_kind_phrase(v));
    size_t i;
    const json_t *n;
    json_array_foreach(v, i, n)
    {
        if (!json_is_integer(n) || json_integer_value(n) < 1 || json_integer_value(n) > 65535)
            return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                           "mysql.ignore_errors[%zu]: expected a MySQL error number such as "
                           "1396, got %s",
                           i, json_is_integer(n) ? "one out of range" : json_kind_phrase(n));
    }
    return 0;
}

static int check_statements(const json_t *list, const json_t *args, struct err *e)
{
    if (!json_is_array(list) || json_array_size(list) == 0)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                       "mysql.statements: expected a non-empty array of strings, got %s",
                       json_is_array(list) ? "an empty array" : json_kind_phrase(list));
    size_t i;
    const json_t *t;
    json_array_foreach(list, i, t)
    {
        char name[48];
        snprintf(name, sizeof name, "statements[%zu]", i);
        int rc = check_template(t, name, args, 1, e);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static const char *const body_keys[] = {
    "sql",           "statements",        "args",      "message", "capture",
    "ignore_errors", "reserved_accounts", "parameter", "done_if"};

static int check_keys(const json_t *action, const json_t *body, struct err *e)
{
    if (!json_is_object(body))
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "mysql: expected an object, got %s",
                       json_kind_phrase(body));
    if (json_object_size(action) != 1)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                       "action: a mysql action has only the \"mysql\" key");
    size_t n = sizeof body_keys / sizeof body_keys[0];
    const char *key = json_keys_unknown(body, body_keys, n);
    if (key) {
        char known[256];
        json_keys_join(body_keys, n, known, sizeof known);
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "mysql.%s: unknown key (expected %s)", key,
                       known);
    }
    int has_sql = json_object_get(body, "sql") != NULL;
    int has_statements = json_object_get(body, "statements") != NULL;
    if (!has_sql && !has_statements && json_object_get(body, "capture"))
        return 0; /* a capture alone */
    if (has_sql == has_statements)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                       has_sql ? "mysql: expected \"sql\" or \"statements\", not both"
                               : "mysql: expected \"sql\" (a string) or \"statements\" (an array)");
    return 0;
}

/* The string args[key's index], or NULL with e filled. */
static const char *parameter_arg(const json_t *spec, const char *key, const json_t *args,
                                 struct err *e)
{
    const json_t *at = json_object_get(spec, key);
    const json_t *arg =
        json_is_integer(at) ? json_array_get(args, (size_t)json_integer_value(at)) : NULL;
    if (!json_is_string(arg))
        err_set(e, ERR_INVALID_PARAMETER_VALUE,
                "mysql.parameter.%s: expected the index of a string in args", key);
    return json_string_value(arg);
}

/* "parameter": {"name": N, "value": M}: the catalogue decides what a tenant may set. The
 * catalogue's message names the parameter and what it takes; it is the tenant's to read. */
static int check_parameter(const json_t *spec, const json_t *args, struct err *e)
{
    if (!json_is_object(spec) || !json_object_get(spec, "name") ||
        json_object_size(spec) != 1u + (json_object_get(spec, "value") != NULL))
        return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                       "mysql.parameter: expected {\"name\": N, \"value\": M} (indexes into args; "
                       "value optional)");
    const char *name = parameter_arg(spec, "name", args, e);
    const char *value = NULL;
    if (name && json_object_get(spec, "value"))
        value = parameter_arg(spec, "value", args, e);
    if (!name || (json_object_get(spec, "value") && !value))
        return e->code;
    return cdb_params_check(name, value, e);
}

static int mysql_validate(const json_t *action, struct err *e)
{
    const json_t *body = json_object_get(action, "mysql");
    int rc = check_keys(action, body, e);
    if (rc < 0)
        return rc;
    json_t *empty = json_array();
    const json_t *args = json_object_get(body, "args");
    const json_t *v;
    if (args)
        rc = check_args(args, e);
    else
        args = empty;
    if (rc == 0 && (v = json_object_get(body, "sql")))
        rc = check_template(v, "sql", args, 1, e);
    if (rc == 0 && (v = json_object_get(body, "statements")))
        rc = check_statements(v, args, e);
    if (rc == 0 && (v = json_object_get(body, "capture")))
        rc = check_template(v, "capture", args, 1, e);
    if (rc == 0 && (v = json_object_get(body, "done_if")))
        rc = check_template(v, "done_if", args, 1, e);
    if (rc == 0 && (v = json_object_get(body, "message")))
        rc = check_template(v, "message", args, 0, e);
    if (rc == 0 && (v = json_object_get(body, "ignore_errors")))
        rc = check_ignore_errors(v, e);
    if (rc == 0 && (v = json_object_get(body, "parameter")))
        rc = check_parameter(v, args, e);
    struct err ge;
    if (rc == 0 && (v = json_object_get(body, "reserved_accounts")) &&
        cdb_guard_check_reserved_list(v, &ge) < 0)
        rc = err_set(e, ERR_INVALID_PARAMETER_VALUE, "mysql.%s", ge.msg);
    json_decref(empty);
    return rc;
}

/* ---- the run's plan and its messages ---- */

void exec_mysql_plan_init(struct exec_mysql_plan *p, const struct exec_job *job)
{
    memset(p, 0, sizeof *p);
    p->action = json_deep_copy(job->action);
    p->body = json_object_get(p->action, "mysql");
    p->args = json_object_get(p->body, "args");
    if (!p->args)
        p->args = p->empty_args = json_array();
    p->nargs = json_array_size(p->args);
    p->secret = xcalloc(p->nargs + 1, sizeof *p->secret);
    const json_t *t;
    size_t i;
    static const char *const single[] = {"sql", "capture", "done_if"};
    for (i = 0; i < sizeof single / sizeof single[0]; i++)
        if ((t = json_object_get(p->body, single[i])))
            mysql_conn_secret_args(json_string_value(t), p->secret, p->nargs);
    json_array_foreach(json_object_get(p->body, "statements"), i, t)
        mysql_conn_secret_args(json_string_value(t), p->secret, p->nargs);
    mysql_conn_guard_rules(p->body, job->dsn, &p->dsn, &p->guard);
    p->job_captured = job->captured ? json_deep_copy(job->captured) : NULL;
    p->captured = p->job_captured;
}

void exec_mysql_plan_free(struct exec_mysql_plan *p)
{
    json_decref(p->own_capture);
    json_decref(p->job_captured);
    json_decref(p->empty_args);
    json_decref(p->action);
    mysql_dsn_free(&p->dsn);
    free(p->secret);
    memset(p, 0, sizeof *p);
}

const char *exec_mysql_plan_template(const struct exec_mysql_plan *p, const char *key)
{
    return json_string_value(json_object_get(p->body, key));
}

const char *exec_mysql_plan_statement(const struct exec_mysql_plan *p, size_t i, char *name,
                                      size_t cap)
{
    const json_t *sql = json_object_get(p->body, "sql");
    if (sql) {
        snprintf(name, cap, "sql");
        return i == 0 ? json_string_value(sql) : NULL;
    }
    snprintf(name, cap, "statements[%zu]", i);
    return json_string_value(json_array_get(json_object_get(p->body, "statements"), i));
}

bool exec_mysql_plan_ignorable(const struct exec_mysql_plan *p, unsigned errnum)
{
    size_t i;
    const json_t *n;
    json_array_foreach(json_object_get(p->body, "ignore_errors"), i, n)
    {
        if (json_integer_value(n) == (json_int_t)errnum)
            return true;
    }
    return false;
}

/* Replaces each occurrence of needle in msg with "***". */
static void scrub(char *msg, size_t cap, const char *needle)
{
    size_t n = strlen(needle);
    if (n == 0 || !strstr(msg, needle))
        return;
    char *copy = xstrdup(msg), *p = copy, *hit;
    msg[0] = '\0';
    while ((hit = strstr(p, needle))) {
        snprintf(msg + strlen(msg), cap - strlen(msg), "%.*s***", (int)(hit - p), p);
        p = hit + n;
    }
    snprintf(msg + strlen(msg), cap - strlen(msg), "%s", p);
    free(copy);
}

void exec_mysql_plan_fail(const struct exec_mysql_plan *p, MYSQL *m, struct exec_result *out)
{
    out->outcome = EXEC_FAILED;
    out->exit_code = (int)mysql_errno(m);
    snprintf(out->message, sizeof out->message, "MySQL error %u (%s): %s", mysql_errno(m),
             mysql_sqlstate(m), mysql_error(m));
    for (size_t i = 0; i < p->nargs; i++) {
        const json_t *arg = json_array_get(p->args, i);
        if (!p->secret[i] || !json_is_string(arg))
            continue;
        const char *raw = json_string_value(arg);
        char *escaped = xmalloc(2 * strlen(raw) + 1);
        mysql_real_escape_string(m, escaped, raw, (unsigned long)strlen(raw));
        scrub(out->message, sizeof out->message, escaped);
        scrub(out->message, sizeof out->message, raw);
        free(escaped);
    }
}

void exec_mysql_plan_done(struct exec_mysql_plan *p, struct exec_result *out)
{
    const json_t *message = json_object_get(p->body, "message");
    char *text = NULL;
    struct err e;
    out->outcome = EXEC_DONE;
    out->exit_code = 0;
    out->output = p->own_capture;
    p->own_capture = NULL;
    if (message && mysql_conn_render_text(json_string_value(message), p->args, p->captured,
                                          p->secret, &text, &e) == 0) {
        snprintf(out->message, sizeof out->message, "%s", text);
        free(text);
        return;
    }
    int n = snprintf(out->message, sizeof out->message, "ran %zu statement%s", p->ran,
                     p->ran == 1 ? "" : "s");
    if (p->ignored)
        snprintf(out->message + n, sizeof out->message - (size_t)n, "; ignored MySQL error %u%s",
                 p->ignored_errno, p->ignored > 1 ? " and others" : "");
}

json_t *exec_mysql_take_value(MYSQL_RES *res, char *msg, size_t cap)
{
    unsigned cols = mysql_num_fields(res);
    uint64_t rows = mysql_num_rows(res);
    if (cols != 1 || rows > 1) {
        snprintf(msg, cap, "capture: expected one value, got %" PRIu64 " row%s of %u column%s",
                 rows, rows == 1 ? "" : "s", cols, cols == 1 ? "" : "s");
        return NULL;
    }
    MYSQL_ROW row = mysql_fetch_row(res);
    unsigned long *len = row ? mysql_fetch_lengths(res) : NULL;
    json_t *v = row && row[0] ? json_stringn(row[0], len[0]) : json_null();
    if (!v) {
        snprintf(msg, cap, "capture: the value is not UTF-8 text");
        return NULL;
    }
    return json_pack("{s:o}", "value", v);
}

MYSQL_ROW exec_mysql_operator_privilege(MYSQL_RES *res)
{
    MYSQL_ROW row;
    while ((row = mysql_fetch_row(res))) {
        int scope = row[0] ? atoi(row[0]) : CDB_SCOPE_GLOBAL;
        bool grantable = row[3] && strcmp(row[3], "YES") == 0;
        if (!cdb_guard_tenant_may_hold((enum cdb_scope)scope, row[2] ? row[2] : "", row[1],
                                       grantable))
            return row;
    }
    return NULL;
}

void exec_mysql_denied(struct exec_result *out, const char *user, const char *host,
                       const char *what)
{
    snprintf(
        out->message, sizeof out->message,
        "%s: The account %.80s@%.255s %.400s; it belongs to the instance's operator, so tenants "
        "cannot create, change or delete it. Nothing was changed",
        err_tencent_code(ERR_CDB_OPERATION_DENIED), user, host, what);
}

void exec_mysql_unverifiable(MYSQL *m, const char *user, const char *host, struct exec_result *out)
{
    char what[600];
    snprintf(what, sizeof what, "could not be checked (MySQL error %u: %s)", mysql_errno(m),
             mysql_error(m));
    exec_mysql_denied(out, user, host, what);
}

void exec_mysql_crash_hook(const char *sql)
{
    const char *text = getenv("ASYNCD_TEST_CRASH_AFTER_SQL");
    if (text && *text && strstr(sql, text)) {
        fprintf(stderr, "ASYNCD_TEST_CRASH_AFTER_SQL: exiting after the statement\n");
        _exit(137);
    }
}

const struct exec_backend exec_mysql_backend = {"mysql", mysql_validate, exec_mysql_run,
                                                exec_mysql_start};
