/* Executors: what runs one step's action (its `do` or `undo`). An action is a JSON object whose
 * single key names the executor: {"exec": [argv...], "env": {...}, "cwd": "..."} runs a process,
 * "mysql" runs SQL, "remote" is an external worker's, and the built-in "noop" and "sleep" start
 * no child. exec_run blocks the calling thread; it calls back `poll` about every 100 ms so the
 * caller can ask the run to stop (kill, lost lease). An exec or mysql action can also run
 * without a thread of its own: exec_start, then an event loop watches its descriptors and timers
 * (exec_child_*): an exec child's pidfd and pipes, a mysql step's sockets (libmariadb's
 * non-blocking API). */
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

/* ---- a step watched by the caller's event loop: an exec child or a mysql session ---- */

struct exec_child;

/* Whether action is an exec action (a child process, which reads the task on its stdin). */
bool exec_is_child(const json_t *action);

/* Whether action runs through exec_start: an exec or a mysql action. */
bool exec_is_async(const json_t *action);

/* Starts job's child (or mysql session: it connects without waiting) and returns it (freed by
 * exec_child_finish), or NULL with *out filled when the outcome is known at once: a child that
 * cannot start, a mysql step without a mysql:// DSN (EXEC_FAILED, as exec_run reports it), or an
 * action that is neither (also e, ERR_INVALID_PARAMETER_VALUE). job->started is called (exec)
 * before it returns. ctl and job->stdin_text are borrowed until exec_child_finish; the rest of
 * job is not kept. */
struct exec_child *exec_start(const struct exec_job *job, const struct exec_control *ctl,
                              struct exec_result *out, struct err *e);

/* Adds c's descriptors (its pidfd, its stdin, stdout and stderr pipes; a mysql step's socket,
 * and its KILL connection's while it runs) to the epoll set epfd, level-triggered, each with
 * data.ptr = tag; each leaves the set before c closes it. A mysql step changes what it watches
 * in the set as the library asks (call every exec_child_* on the loop's thread). 0, or -1 with
 * errno (nothing added): c then works unwatched, read by every exec_child_tick. */
int exec_child_attach(struct exec_child *c, int epfd, void *tag);

/* One of c's descriptors is ready: reads, writes, notices the exit. Never blocks. True once c is
 * done (call exec_child_finish). */
bool exec_child_on_event(struct exec_child *c);

/* The time passes: the timeout, SIGTERM's grace (KILL QUERY's drain), the pipes' short drain
 * after the exit, the library's own timeouts; with
 * poll, ctl->poll is asked whether to stop (call it every ~100 ms). Never blocks. True once c is
 * done. */
bool exec_child_tick(struct exec_child *c, bool poll);

/* CLOCK_MONOTONIC ms by which c needs exec_child_tick even without an event or a poll
 * (INT64_MAX: none, 0: now). */
int64_t exec_child_due_ms(const struct exec_child *c);

/* Ends c: what the pipes still hold is read, whatever is left of its process group is killed, the
 * child is reaped, its DSN file removed (a mysql session not done yet is stopped as a kill
 * stops it, here, and closed), c freed; *out says how the step went. */
void exec_child_finish(struct exec_child *c, struct exec_result *out);

#endif
