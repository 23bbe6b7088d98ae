/* Executors: what runs one step's action (its `do` or `undo`). An action is a JSON object whose
 * single key names the executor: {"exec": [argv...], "env": {...}, "cwd": "..."} runs a process,
 * "mysql" runs SQL, "remote" is an external worker's, and the built-in "noop" and "sleep" start
 * no child. A run blocks the calling worker thread; it calls back `poll` about
 * every 100 ms so the caller can renew its lease and ask the run to stop (kill, lost lease). */
#ifndef ASYNCD_EXEC_H
#define ASYNCD_EXEC_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/errors.h"

enum exec_outcome {
    EXEC_DONE,    /* the action succeeded */
    EXEC_FAILED,  /* it ran and failed (non-zero exit, signal, cannot start) */
    EXEC_TIMEOUT, /* it ran past timeout_s and was stopped */
    EXEC_STOPPED, /* the caller asked it to stop (poll returned true) and it was stopped */
};

struct exec_job {
    const json_t *action;   /* borrowed: {"exec": [...], "env": {...}, "cwd": "..."} */
    const char *stdin_text; /* given on the child's stdin (the task as JSON); may be NULL */
    unsigned timeout_s;     /* 0 = none */
    /* NULL-terminated "K=V" added to the environment, may be NULL. Only the ASYNCD_* names
     * docs/flows.md documents for steps pass; any other is dropped, ASYNCD_INSTANCE_DSN too (it
     * is made from dsn). Of asyncd's own environment the child gets PATH, HOME, LANG, LC_* and
     * TZ only. */
    const char *const *extra_env;
    /* The task's instance DSN (mysql://... / mongodb://...), or NULL. An exec child gets it as
     * ASYNCD_INSTANCE_DSN without the password and, whole, in the 0600 file named by
     * ASYNCD_INSTANCE_DSN_FILE, removed when the step ends. */
    const char *dsn;
    const json_t *captured; /* undo only: what the step's do captured (its output), or NULL */
    /* exec only: called once the child runs, with started_ctx and its pid (= its process group
     * id: every process the step starts is in it, and it is killed whole when the step ends,
     * before exec_run returns). May be NULL. */
    void (*started)(void *ctx, int pid);
    void *started_ctx;
};

struct exec_control {
    /* Called about every 100 ms while the action runs; true = stop it now. May be NULL. */
    bool (*poll)(void *ctx);
    void *ctx;
    unsigned kill_grace_ms; /* SIGTERM, then SIGKILL after this long (default 1000); poll may
                               lower it before it returns true */
};

struct exec_result {
    enum exec_outcome outcome;
    int exit_code;      /* exit status, or 128+signal, or -1 when it never started */
    char message[1024]; /* DONE: the last non-empty stdout line; otherwise why it failed
                           (the last non-empty stderr line, or a sentence of ours) */
    json_t *output;     /* DONE: what the step produced for later use (exec: the last stdout
                           line when it is a JSON object; mysql: its capture), or NULL.
                           The caller json_decref()s it. */
};

/* Runs job to its end. Returns 0 with *out filled whatever the outcome; a negative ERR_* only
 * when the action itself is malformed (ERR_INVALID_PARAMETER_VALUE, e.g. "exec: expected a
 * non-empty array of strings") -- a program that cannot be started is EXEC_FAILED, not an error. */
int exec_run(const struct exec_job *job, const struct exec_control *ctl, struct exec_result *out,
             struct err *e);

/* Checks an action's shape without running it (used when tasks are created). */
int exec_validate(const json_t *action, struct err *e);

/* For a valid {"sleep": ...} action: true with *wake_ms its wake time in Unix ms ("until" as
 * written; "s" counted from from_ms). False for any other action. exec_run does not wait: it
 * finds a sleep done at once, so the caller runs one only once its wake time has come. */
bool exec_sleep_wake_ms(const json_t *action, int64_t from_ms, int64_t *wake_ms);

/* Parses an RFC 3339 time ("2026-11-23T04:00:00Z", "2026-11-23T12:00:00.5+08:00") into Unix ms;
 * 0, or -1 when s is not one (a leap second :60 is read as :59). */
int exec_parse_rfc3339(const char *s, int64_t *ms);

#endif
