/* Executor dispatch: finds the action's executor key in a {name, validate, run} table. */
#include "exec/exec_int.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

/* A remote step is done by an external worker, so there is nothing to run here. With a "kind"
 * ({"remote": {"kind": "backup", "args": {...}}}) the engine hands it to the workers that pull
 * that kind (engine/engine_remote.c, POST /v1/workers/claim); without one (e.g. {"queue":
 * "backups"}) the whole task is driven from outside through the admin API's transition call and
 * the engine never claims it. */
static int remote_validate(const json_t *action, struct err *e)
{
    const json_t *body = json_object_get(action, "remote");
    if (!json_is_object(body))
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "remote: expected an object, got %s",
                       json_kind_phrase(body));
    if (json_object_size(action) != 1)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                       "action: a remote action has only the \"remote\" key");
    const json_t *kind = json_object_get(body, "kind"), *args = json_object_get(body, "args");
    if (kind && (!json_is_string(kind) || !*json_string_value(kind) ||
                 strlen(json_string_value(kind)) > 64))
        return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                       "remote.kind: expected a non-empty string of at most 64 characters");
    if (kind && args && !json_is_object(args))
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "remote.args: expected an object, got %s",
                       json_kind_phrase(args));
    return 0;
}

static int remote_run(const struct exec_job *job, const struct exec_control *ctl,
                      struct exec_result *out, struct err *e)
{
    (void)job;
    (void)ctl;
    (void)e;
    out->outcome = EXEC_FAILED;
    out->exit_code = -1;
    snprintf(out->message, sizeof out->message,
             "a remote step is done by an external worker, not by asyncd's engine");
    return 0;
}

static const struct exec_backend remote_backend = {"remote", remote_validate, remote_run, NULL};

static const struct exec_backend *const executors[] = {
    &exec_proc_backend, &exec_mysql_backend, &remote_backend,
    &exec_noop_backend, &exec_sleep_backend,
};

/* The one executor key in action, or an error naming what is wrong with the keys. */
static int find_executor(const json_t *action, const struct exec_backend **out, struct err *e)
{
    if (!action)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "action: missing");
    if (!json_is_object(action))
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "action: expected an object, got %s",
                       json_kind_phrase(action));
    const struct exec_backend *found = NULL;
    for (size_t i = 0; i < sizeof executors / sizeof executors[0]; i++) {
        if (!json_object_get(action, executors[i]->name))
            continue;
        if (found)
            return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                           "action: more than one executor key (%s and %s)", found->name,
                           executors[i]->name);
        found = executors[i];
    }
    if (!found)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                       "action: expected an executor key such as \"exec\"");
    if (!found->validate || !found->run)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "executor %s is not available yet",
                       found->name);
    *out = found;
    return 0;
}

int exec_validate(const json_t *action, struct err *e)
{
    const struct exec_backend *b;
    int rc = find_executor(action, &b, e);
    return rc < 0 ? rc : b->validate(action, e);
}

/* The opening both entry points share: out reads "failed" until the step runs, and the action
 * must name a known executor (only one that can start, when to_start) whose validate accepts it.
 * On a refusal out->message says why and the error code is returned. */
static int prepare(const struct exec_job *job, bool to_start, struct exec_result *out,
                   const struct exec_backend **b, struct err *e)
{
    memset(out, 0, sizeof *out);
    out->outcome = EXEC_FAILED;
    out->exit_code = -1;
    int rc = find_executor(job->action, b, e);
    if (rc == 0 && to_start && !(*b)->start)
        rc = err_set(e, ERR_INVALID_PARAMETER_VALUE,
                     "action: a %s action does not run on an event loop (only exec and mysql do)",
                     (*b)->name);
    if (rc == 0)
        rc = (*b)->validate(job->action, e);
    if (rc < 0) {
        snprintf(out->message, sizeof out->message, "%s", e->msg);
        exec_utf8_fix(out->message);
        return rc;
    }
    return 0;
}

int exec_run(const struct exec_job *job, const struct exec_control *ctl, struct exec_result *out,
             struct err *e)
{
    struct err local;
    if (!e)
        e = &local;
    const struct exec_backend *b;
    int rc = prepare(job, false, out, &b, e);
    return rc < 0 ? rc : b->run(job, ctl, out, e);
}

bool exec_is_child(const json_t *action)
{
    return json_is_object(action) && json_object_get(action, "exec") != NULL;
}

bool exec_is_async(const json_t *action)
{
    return json_is_object(action) &&
           (json_object_get(action, "exec") || json_object_get(action, "mysql"));
}

struct exec_child *exec_start(const struct exec_job *job, const struct exec_control *ctl,
                              struct exec_result *out, struct err *e)
{
    struct err local;
    if (!e)
        e = &local;
    const struct exec_backend *b;
    if (prepare(job, true, out, &b, e) < 0)
        return NULL;
    return b->start(job, ctl, out);
}

int exec_child_attach(struct exec_child *c, int epfd, void *tag)
{
    return c->ops->attach(c, epfd, tag);
}

bool exec_child_on_event(struct exec_child *c) { return c->ops->on_event(c); }

bool exec_child_tick(struct exec_child *c, bool poll) { return c->ops->tick(c, poll); }

int64_t exec_child_due_ms(const struct exec_child *c) { return c->ops->due_ms(c); }

void exec_child_finish(struct exec_child *c, struct exec_result *out) { c->ops->finish(c, out); }

/* Length of the valid UTF-8 sequence at p (n bytes left), or 0 when it is invalid or NUL. */
static size_t utf8_seq_len(const unsigned char *p, size_t n)
{
    unsigned char c = p[0], lo = 0x80, hi = 0xBF;
    size_t len;
    if (c >= 0x01 && c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        lo = c == 0xE0 ? 0xA0 : 0x80; /* no overlong forms */
        hi = c == 0xED ? 0x9F : 0xBF; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        lo = c == 0xF0 ? 0x90 : 0x80;
        hi = c == 0xF4 ? 0x8F : 0xBF; /* nothing past U+10FFFF */
    } else {
        return 0;
    }
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    return len;
}

void exec_utf8_fix(char *s)
{
    unsigned char *p = (unsigned char *)s;
    size_t n = strlen(s);
    while (n > 0) {
        size_t k = utf8_seq_len(p, n);
        if (k == 0) {
            *p = '?';
            k = 1;
        }
        p += k;
        n -= k;
    }
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static int is_continuation(char c) { return ((unsigned char)c & 0xC0) == 0x80; }

void exec_last_line(const char *text, size_t len, int cut, char *out, size_t cap)
{
    size_t end = len, start, n;
    while (end > 0 && is_blank(text[end - 1]))
        end--;
    start = end;
    while (start > 0 && text[start - 1] != '\n')
        start--;
    if (start == 0 && cut)
        while (start < end && is_continuation(text[start]))
            start++;
    n = end - start;
    if (n > cap - 1) {
        n = cap - 1;
        while (n > 0 && is_continuation(text[start + n]))
            n--;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = text[start + i] ? text[start + i] : '?';
    out[n] = '\0';
    exec_utf8_fix(out);
}

struct signal_name {
    int sig;
    const char *name;
};

static const struct signal_name signal_names[] = {
    {SIGHUP, "SIGHUP"},   {SIGINT, "SIGINT"},   {SIGQUIT, "SIGQUIT"}, {SIGILL, "SIGILL"},
    {SIGTRAP, "SIGTRAP"}, {SIGABRT, "SIGABRT"}, {SIGBUS, "SIGBUS"},   {SIGFPE, "SIGFPE"},
    {SIGKILL, "SIGKILL"}, {SIGUSR1, "SIGUSR1"}, {SIGSEGV, "SIGSEGV"}, {SIGUSR2, "SIGUSR2"},
    {SIGPIPE, "SIGPIPE"}, {SIGALRM, "SIGALRM"}, {SIGTERM, "SIGTERM"}, {SIGXCPU, "SIGXCPU"},
    {SIGXFSZ, "SIGXFSZ"}, {SIGSYS, "SIGSYS"},
};

const char *exec_signal_name(int sig)
{
    for (size_t i = 0; i < sizeof signal_names / sizeof signal_names[0]; i++)
        if (signal_names[i].sig == sig)
            return signal_names[i].name;
    return NULL;
}
