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
 * statement failed, -1 otherwise. The connect itself blocks (up to 5 s, without ctl->poll);
 * statements run through the non-blocking API so a stop or the timeout can interrupt them. */
#include "exec/exec_int.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/json_keys.h"
#include "common/xalloc.h"
#include "exec/mysql_conn.h"
#include "products/cdb_guard.h"
#include "products/cdb_params.h"

enum {
    TICK_MS = 100,      /* how often ctl->poll is called */
    KILL_TIMEOUT_S = 5, /* connect, read and write limit of the connection that sends KILL */
    DRAIN_MS = 5000,    /* after KILL QUERY, how long the statement gets to end */
};

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

/* ---- one connection, driven with the non-blocking API ---- */

struct session {
    MYSQL *m;
    const struct exec_job *job;
    const struct exec_control *ctl;
    int64_t deadline, next_poll;
    enum exec_outcome why; /* EXEC_DONE while running; EXEC_STOPPED or EXEC_TIMEOUT once ended */
    int64_t drain_deadline;
    int busy;            /* a statement is in flight (KILL QUERY has something to stop) */
    int abandoned;       /* the statement outlived DRAIN_MS: its socket was shut down */
    unsigned last_errno; /* of the last failed statement */
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Interrupts the running statement from a second connection. Best effort: if that connection
 * fails too, DRAIN_MS later the socket is shut down instead. */
static void kill_query(struct session *s)
{
    MYSQL *k;
    struct err ignored;
    if (mysql_conn_open(s->job->dsn, KILL_TIMEOUT_S, &k, &ignored) < 0)
        return;
    char sql[64];
    snprintf(sql, sizeof sql, "KILL QUERY %lu", mysql_thread_id(s->m));
    mysql_query(k, sql); /* "unknown thread" when it ended meanwhile: nothing to do */
    mysql_close(k);
}

/* Calls ctl->poll when a tick is due; on the first stop request or at the deadline, sends
 * KILL QUERY and starts the drain. The poll keeps being called while draining: it renews the
 * caller's lease. */
static void session_check(struct session *s)
{
    int64_t now = now_ms();
    int stop = 0;
    if (s->ctl && s->ctl->poll && now >= s->next_poll) {
        s->next_poll = now + TICK_MS;
        stop = s->ctl->poll(s->ctl->ctx);
    }
    if (s->why != EXEC_DONE)
        return;
    if (now >= s->deadline)
        s->why = EXEC_TIMEOUT;
    else if (stop)
        s->why = EXEC_STOPPED;
    if (s->why == EXEC_DONE || !s->busy)
        return;
    kill_query(s);
    s->drain_deadline = now_ms() + DRAIN_MS;
}

/* Waits for what the library's status asks for; returns the status for its _cont call. */
static int session_wait(struct session *s, int status)
{
    int fd = mysql_get_socket(s->m);
    int64_t lib_deadline = INT64_MAX;
    if (status & MYSQL_WAIT_TIMEOUT)
        lib_deadline = now_ms() + mysql_get_timeout_value_ms(s->m);
    struct pollfd pfd = {fd, 0, 0};
    pfd.events = (short)((status & MYSQL_WAIT_READ ? POLLIN : 0) |
                         (status & MYSQL_WAIT_WRITE ? POLLOUT : 0) |
                         (status & MYSQL_WAIT_EXCEPT ? POLLPRI : 0));
    for (;;) {
        session_check(s);
        int64_t now = now_ms();
        if (now >= lib_deadline)
            return MYSQL_WAIT_TIMEOUT;
        if (s->why != EXEC_DONE && !s->abandoned && now >= s->drain_deadline) {
            shutdown(fd, SHUT_RDWR); /* the library now reads EOF and ends with an error */
            s->abandoned = 1;
        }
        int64_t until = now + TICK_MS;
        if (s->why == EXEC_DONE && s->deadline < until)
            until = s->deadline;
        if (lib_deadline < until)
            until = lib_deadline;
        int r = poll(&pfd, 1, until > now ? (int)(until - now) : 0);
        if (r < 0 && errno != EINTR)
            return status & (MYSQL_WAIT_READ | MYSQL_WAIT_WRITE | MYSQL_WAIT_EXCEPT);
        if (r <= 0)
            continue;
        if (pfd.revents & (POLLERR | POLLHUP | POLLNVAL)) /* let the library see the error */
            return status & (MYSQL_WAIT_READ | MYSQL_WAIT_WRITE | MYSQL_WAIT_EXCEPT);
        return (pfd.revents & POLLIN ? MYSQL_WAIT_READ : 0) |
               (pfd.revents & POLLOUT ? MYSQL_WAIT_WRITE : 0) |
               (pfd.revents & POLLPRI ? MYSQL_WAIT_EXCEPT : 0);
    }
}

/* {"value": <the single value of res as a string, or null>}, or NULL with msg filled. */
static json_t *take_value(MYSQL_RES *res, char *msg, size_t cap)
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

/* Reads every result of the statement just run; with value, keeps the first one's value. */
static int read_results(struct session *s, json_t **value, char *msg, size_t cap)
{
    for (int first = 1;; first = 0) {
        if (mysql_field_count(s->m) > 0) {
            MYSQL_RES *res;
            int status = mysql_store_result_start(&res, s->m);
            while (status)
                status = mysql_store_result_cont(&res, s->m, session_wait(s, status));
            if (!res)
                return -1;
            if (first && value && !(*value = take_value(res, msg, cap))) {
                mysql_free_result(res);
                return -2;
            }
            mysql_free_result(res);
        } else if (first && value) {
            snprintf(msg, cap, "capture: expected a SELECT returning one value");
            return -2;
        }
        if (!mysql_more_results(s->m))
            return 0;
        int rc, status = mysql_next_result_start(&rc, s->m);
        while (status)
            status = mysql_next_result_cont(&rc, s->m, session_wait(s, status));
        if (rc > 0)
            return -1;
        if (rc < 0)
            return 0;
    }
}

/* Runs one statement to its end. 0; -1 for a MySQL error (s->last_errno, the connection's
 * error); -2 with msg filled for a capture of the wrong shape. */
static int session_query(struct session *s, const char *sql, json_t **value, char *msg, size_t cap)
{
    s->busy = 1;
    int failed, rc = -1, status = mysql_real_query_start(&failed, s->m, sql, strlen(sql));
    while (status)
        status = mysql_real_query_cont(&failed, s->m, session_wait(s, status));
    if (!failed)
        rc = read_results(s, value, msg, cap);
    s->busy = 0;
    s->last_errno = rc == -1 ? mysql_errno(s->m) : 0;
    return rc;
}

/* ---- the run ---- */

struct run {
    struct session s;
    const json_t *body, *args;
    json_t *empty_args;
    const json_t *captured; /* what {captured} means: job->captured, else own_capture */
    json_t *own_capture;
    bool *secret;           /* args that are passwords: never shown */
    struct mysql_dsn dsn;   /* the instance's DSN, parsed: the guard's dsn_user */
    struct cdb_guard guard; /* the tenant's limits on this instance */
    size_t nargs;
    size_t ran, ignored;
    unsigned ignored_errno;
};

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

static void fail_mysql(struct run *r, struct exec_result *out)
{
    MYSQL *m = r->s.m;
    out->outcome = EXEC_FAILED;
    out->exit_code = (int)mysql_errno(m);
    snprintf(out->message, sizeof out->message, "MySQL error %u (%s): %s", mysql_errno(m),
             mysql_sqlstate(m), mysql_error(m));
    for (size_t i = 0; i < r->nargs; i++) {
        const json_t *arg = json_array_get(r->args, i);
        if (!r->secret[i] || !json_is_string(arg))
            continue;
        const char *raw = json_string_value(arg);
        char *escaped = xmalloc(2 * strlen(raw) + 1);
        mysql_real_escape_string(m, escaped, raw, (unsigned long)strlen(raw));
        scrub(out->message, sizeof out->message, escaped);
        scrub(out->message, sizeof out->message, raw);
        free(escaped);
    }
}

static bool ignorable(const struct run *r, unsigned errnum)
{
    size_t i;
    const json_t *n;
    json_array_foreach(json_object_get(r->body, "ignore_errors"), i,
                       n) if (json_integer_value(n) == (json_int_t)errnum) return true;
    return false;
}

/* ---- the tenant guard, just before each statement ---- */

/* Runs a query to its end and keeps its result (freed by the caller); -1 on a MySQL error. */
static int session_select(struct session *s, const char *sql, MYSQL_RES **res)
{
    *res = NULL;
    s->busy = 1;
    int failed, status = mysql_real_query_start(&failed, s->m, sql, strlen(sql));
    while (status)
        status = mysql_real_query_cont(&failed, s->m, session_wait(s, status));
    if (!failed) {
        status = mysql_store_result_start(res, s->m);
        while (status)
            status = mysql_store_result_cont(res, s->m, session_wait(s, status));
    }
    s->busy = 0;
    s->last_errno = *res ? 0 : mysql_errno(s->m);
    return *res ? 0 : -1;
}

static int denied(struct exec_result *out, const char *user, const char *host, const char *what)
{
    snprintf(
        out->message, sizeof out->message,
        "%s: The account %.80s@%.255s %.400s; it belongs to the instance's operator, so tenants "
        "cannot create, change or delete it. Nothing was changed",
        err_tencent_code(ERR_CDB_OPERATION_DENIED), user, host, what);
    return -1;
}

/* Fails closed: an account we cannot look at is not acted on. */
static int unverifiable(struct run *r, const char *user, const char *host, struct exec_result *out)
{
    char what[600];
    snprintf(what, sizeof what, "could not be checked (MySQL error %u: %s)", mysql_errno(r->s.m),
             mysql_error(r->s.m));
    return denied(out, user, host, what);
}

/* The first privilege of res (rows of mysql_conn_privileges_query) no tenant could hold. */
static MYSQL_ROW operator_privilege(MYSQL_RES *res)
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

/* MariaDB roles: a tenant never grants one, so an account holding any is the operator's. */
static int check_roles(struct run *r, const char *user, const char *host, struct exec_result *out)
{
    char *sql = mysql_conn_roles_query(r->s.m, user, host);
    MYSQL_RES *res = NULL;
    int rc = sql ? session_select(&r->s, sql, &res) : -1;
    free(sql);
    if (rc < 0)
        return r->s.last_errno == 1146 ? 0 : unverifiable(r, user, host, out); /* no such table */
    MYSQL_ROW row = mysql_fetch_row(res);
    char what[160];
    if (row)
        snprintf(what, sizeof what, "holds the role %.64s", row[0] ? row[0] : "");
    mysql_free_result(res);
    return row ? denied(out, user, host, what) : 0;
}

/* What the server says user@host holds, now: an account with SUPER, FILE, GRANT OPTION, any
 * privilege on a system schema... was not made by a tenant. */
static int check_account_live(struct run *r, const char *user, const char *host,
                              struct exec_result *out)
{
    char *sql = mysql_conn_privileges_query(r->s.m, user, host);
    MYSQL_RES *res = NULL;
    int rc = sql ? session_select(&r->s, sql, &res) : -1;
    free(sql);
    if (rc < 0)
        return r->s.why != EXEC_DONE ? -1 : unverifiable(r, user, host, out);
    MYSQL_ROW row = operator_privilege(res);
    if (row) {
        char what[300];
        snprintf(what, sizeof what, "holds %.40s%s%.64s%s, which tenants cannot have",
                 row[2] ? row[2] : "", row[1] ? " on " : "", row[1] ? row[1] : "",
                 row[3] && strcmp(row[3], "YES") == 0 ? " WITH GRANT OPTION" : "");
        rc = denied(out, user, host, what);
    }
    mysql_free_result(res);
    return rc < 0 ? rc : check_roles(r, user, host, out);
}

/* The guard's rules (reserved names, system schemas), then each account's live privileges. */
static int guard_template(struct run *r, const char *tmpl, struct exec_result *out)
{
    struct err e;
    json_t *accounts = json_array();
    int rc = mysql_conn_guard(tmpl, r->args, &r->guard, accounts, &e);
    if (rc < 0)
        snprintf(out->message, sizeof out->message, "%s: %s", err_tencent_code(e.code), e.msg);
    size_t i;
    const json_t *a;
    json_array_foreach(accounts, i, a)
    {
        if (rc == 0)
            rc = check_account_live(r, json_string_value(json_array_get(a, 0)),
                                    json_string_value(json_array_get(a, 1)), out);
    }
    json_decref(accounts);
    return rc < 0 ? -1 : 0;
}

/* Test hook (docs/flows.md): with ASYNCD_TEST_CRASH_AFTER_SQL=TEXT in asyncd's environment, the
 * daemon dies at once, as kill -9 would leave it, right after a statement containing TEXT
 * succeeded and before its result is recorded, so tests can prove that running the step again
 * is safe. Read only here, after a statement, so it costs nothing when unset. */
static void crash_hook(const char *sql)
{
    const char *text = getenv("ASYNCD_TEST_CRASH_AFTER_SQL");
    if (text && *text && strstr(sql, text)) {
        fprintf(stderr, "ASYNCD_TEST_CRASH_AFTER_SQL: exiting after the statement\n");
        _exit(137);
    }
}

/* Renders and runs one template; fills out and returns -1 when the run must end. */
static int run_template(struct run *r, const char *tmpl, const char *name, json_t **value,
                        struct exec_result *out)
{
    char *sql;
    struct err e;
    if (guard_template(r, tmpl, out) < 0)
        return -1;
    if (mysql_conn_render_captured(r->s.m, tmpl, r->args, r->captured, &sql, &e) < 0) {
        snprintf(out->message, sizeof out->message, "mysql.%s: %s", name, e.msg);
        return -1;
    }
    int rc = session_query(&r->s, sql, value, out->message, sizeof out->message);
    if (rc == 0 && !value)
        crash_hook(sql);
    free(sql);
    if (r->s.why != EXEC_DONE)
        return -1;
    if (rc == -1 && !value && ignorable(r, r->s.last_errno)) {
        r->ignored++;
        r->ignored_errno = r->s.last_errno;
        rc = 0;
    }
    if (rc == -1)
        fail_mysql(r, out);
    if (rc == 0)
        r->ran += !value;
    return rc < 0 ? -1 : 0;
}

static void describe_done(struct run *r, struct exec_result *out)
{
    const json_t *message = json_object_get(r->body, "message");
    char *text = NULL;
    struct err e;
    out->outcome = EXEC_DONE;
    out->exit_code = 0;
    if (message && mysql_conn_render_text(json_string_value(message), r->args, r->captured,
                                          r->secret, &text, &e) == 0) {
        snprintf(out->message, sizeof out->message, "%s", text);
        free(text);
        return;
    }
    int n = snprintf(out->message, sizeof out->message, "ran %zu statement%s", r->ran,
                     r->ran == 1 ? "" : "s");
    if (r->ignored)
        snprintf(out->message + n, sizeof out->message - (size_t)n, "; ignored MySQL error %u%s",
                 r->ignored_errno, r->ignored > 1 ? " and others" : "");
}

static void run_init(struct run *r, const struct exec_job *job, const struct exec_control *ctl)
{
    memset(r, 0, sizeof *r);
    r->body = json_object_get(job->action, "mysql");
    r->args = json_object_get(r->body, "args");
    if (!r->args)
        r->args = r->empty_args = json_array();
    r->nargs = json_array_size(r->args);
    r->secret = xcalloc(r->nargs + 1, sizeof *r->secret);
    const json_t *t;
    size_t i;
    static const char *const single[] = {"sql", "capture", "done_if"};
    for (i = 0; i < sizeof single / sizeof single[0]; i++)
        if ((t = json_object_get(r->body, single[i])))
            mysql_conn_secret_args(json_string_value(t), r->secret, r->nargs);
    json_array_foreach(json_object_get(r->body, "statements"), i, t)
        mysql_conn_secret_args(json_string_value(t), r->secret, r->nargs);
    mysql_conn_guard_rules(r->body, job->dsn, &r->dsn, &r->guard);
    r->captured = job->captured;
    r->s.job = job;
    r->s.ctl = ctl;
    r->s.why = EXEC_DONE;
    r->s.next_poll = now_ms() + TICK_MS;
    r->s.deadline = job->timeout_s ? now_ms() + (int64_t)job->timeout_s * 1000 : INT64_MAX;
}

/* done_if's answer: 1 when an earlier run did the step's work, 0 when not, -1 with out filled
 * when the run must end. The statements are guarded even when skipped, so a template cannot
 * report success on an account the tenant may not touch. */
static int already_done(struct run *r, struct exec_result *out)
{
    const json_t *done_if = json_object_get(r->body, "done_if");
    json_t *v = NULL;
    if (!done_if)
        return 0;
    if (run_template(r, json_string_value(done_if), "done_if", &v, out) < 0)
        return -1;
    const char *text = json_string_value(json_object_get(v, "value"));
    int done = text && *text && strcmp(text, "0") != 0;
    json_decref(v);
    const json_t *sql = json_object_get(r->body, "sql"), *t;
    size_t i;
    if (done && sql && guard_template(r, json_string_value(sql), out) < 0)
        return -1;
    json_array_foreach(json_object_get(r->body, "statements"), i, t)
    {
        if (done && guard_template(r, json_string_value(t), out) < 0)
            return -1;
    }
    return done;
}

/* Runs the capture, done_if, then the statements, stopping at the first failure or stop
 * request. */
static void run_all(struct run *r, struct exec_result *out)
{
    const json_t *capture = json_object_get(r->body, "capture");
    if (capture) {
        if (run_template(r, json_string_value(capture), "capture", &r->own_capture, out) < 0)
            return;
        if (!r->captured)
            r->captured = r->own_capture;
    }
    int done = already_done(r, out);
    if (done < 0)
        return;
    const json_t *sql = done ? NULL : json_object_get(r->body, "sql");
    if (sql && run_template(r, json_string_value(sql), "sql", NULL, out) < 0)
        return;
    size_t i;
    const json_t *t;
    json_array_foreach(done ? NULL : json_object_get(r->body, "statements"), i, t)
    {
        char name[48];
        snprintf(name, sizeof name, "statements[%zu]", i);
        session_check(&r->s);
        if (r->s.why != EXEC_DONE || run_template(r, json_string_value(t), name, NULL, out) < 0)
            return;
    }
    describe_done(r, out);
    out->output = r->own_capture;
    r->own_capture = NULL;
}

static int mysql_run(const struct exec_job *job, const struct exec_control *ctl,
                     struct exec_result *out, struct err *e)
{
    (void)e; /* the action was validated; everything from here on is an outcome */
    struct run r;
    struct err ce;
    out->outcome = EXEC_FAILED;
    out->exit_code = -1;
    if (!job->dsn || strncasecmp(job->dsn, "mysql://", 8) != 0) {
        snprintf(out->message, sizeof out->message,
                 "this step needs an instance with a mysql:// DSN");
        return 0;
    }
    run_init(&r, job, ctl);
    if (mysql_conn_open(job->dsn, 0, &r.s.m, &ce) < 0) {
        snprintf(out->message, sizeof out->message, "%s", ce.msg);
    } else {
        run_all(&r, out);
        mysql_close(r.s.m);
    }
    if (r.s.why != EXEC_DONE) {
        out->outcome = r.s.why;
        out->exit_code = -1;
        if (r.s.why == EXEC_TIMEOUT)
            snprintf(out->message, sizeof out->message, "timed out after %u s", job->timeout_s);
        else
            snprintf(out->message, sizeof out->message, "stopped by request");
    }
    exec_utf8_fix(out->message);
    json_decref(r.own_capture);
    json_decref(r.empty_args);
    mysql_dsn_free(&r.dsn);
    free(r.secret);
    return 0;
}

const struct exec_backend exec_mysql_backend = {"mysql", mysql_validate, mysql_run};
