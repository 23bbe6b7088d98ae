/* Internal to src/exec: the mysql executor's pure part (exec_mysql.c), shared with its driver
 * (exec_mysql_step.c): what one run of an action needs to know, and the messages it gives. No
 * function here waits for the server. */
#ifndef ASYNCD_EXEC_MYSQL_H
#define ASYNCD_EXEC_MYSQL_H

#include <jansson.h>
#include <mysql.h>
#include <stdbool.h>
#include <stddef.h>

#include "exec/exec.h"
#include "exec/mysql_conn.h"
#include "products/cdb_guard.h"

/* One run of a validated {"mysql": {...}} action. */
struct exec_mysql_plan {
    json_t *action;         /* owned: a copy of the job's */
    const json_t *body;     /* borrowed from action: its "mysql" object */
    const json_t *args;     /* body's "args", or empty_args */
    json_t *empty_args;     /* owned */
    json_t *job_captured;   /* owned: a copy of the job's captured, or NULL */
    const json_t *captured; /* what {captured} means: job_captured, else own_capture */
    json_t *own_capture;    /* owned: what this action's capture returned, or NULL */
    bool *secret;           /* owned: args that are passwords, never shown */
    size_t nargs;
    struct mysql_dsn dsn;   /* the instance's DSN, parsed: the guard's dsn_user */
    struct cdb_guard guard; /* the tenant's limits on this instance */
    size_t ran, ignored;    /* statements run; failures ignore_errors let pass */
    unsigned ignored_errno;
};

/* Fills p for job (its action, captured and DSN are copied: job is not kept). */
void exec_mysql_plan_init(struct exec_mysql_plan *p, const struct exec_job *job);
void exec_mysql_plan_free(struct exec_mysql_plan *p);

/* The body's template under key ("capture", "done_if"), or NULL when it has none. */
const char *exec_mysql_plan_template(const struct exec_mysql_plan *p, const char *key);

/* The i-th of the statements the action runs ("sql" is the only one; else "statements"), its
 * name ("sql", "statements[2]") in name[cap]; NULL past the last. */
const char *exec_mysql_plan_statement(const struct exec_mysql_plan *p, size_t i, char *name,
                                      size_t cap);

/* Whether ignore_errors lists errnum. */
bool exec_mysql_plan_ignorable(const struct exec_mysql_plan *p, unsigned errnum);

/* m's last error as the step's failure: "MySQL error N (STATE): text", exit_code N, with every
 * password arg (raw and as m escapes it) shown as "***". */
void exec_mysql_plan_fail(const struct exec_mysql_plan *p, MYSQL *m, struct exec_result *out);

/* The run is done: out says so with the action's message (or "ran N statements..."), and its
 * output is the capture (moved out of p). */
void exec_mysql_plan_done(struct exec_mysql_plan *p, struct exec_result *out);

/* {"value": <the single value of res as a string, or null>}, or NULL with msg filled. */
json_t *exec_mysql_take_value(MYSQL_RES *res, char *msg, size_t cap);

/* The first privilege of res (rows of mysql_conn_privileges_query) no tenant could hold. */
MYSQL_ROW exec_mysql_operator_privilege(MYSQL_RES *res);

/* user@host is the operator's: out->message says so (what: why, e.g. "holds the role r"). */
void exec_mysql_denied(struct exec_result *out, const char *user, const char *host,
                       const char *what);

/* user@host could not be looked at (m's last error): the guard fails closed, as denied. */
void exec_mysql_unverifiable(MYSQL *m, const char *user, const char *host, struct exec_result *out);

/* Test hook (docs/flows.md): with ASYNCD_TEST_CRASH_AFTER_SQL=TEXT in asyncd's environment, the
 * daemon dies at once, as kill -9 would leave it, right after a statement containing TEXT
 * succeeded and before its result is recorded, so tests can prove that running the step again
 * is safe. Call it after each successful statement; it costs nothing when unset. */
void exec_mysql_crash_hook(const char *sql);

#endif
