/* Internal to src/exec: the table entry each executor backend provides, and message helpers. */
#ifndef ASYNCD_EXEC_INT_H
#define ASYNCD_EXEC_INT_H

#include <stddef.h>

#include "common/json_kind.h"
#include "exec/exec.h"

/* One executor, named by its action key. validate and run are NULL for an executor that is
 * planned but not built yet (the action is then refused as "not available yet"). run and start
 * are only called on an action its validate accepted. start is NULL for an executor whose run
 * never waits (the built-ins, remote); otherwise it is exec_start for its actions. */
struct exec_backend {
    const char *name;
    int (*validate)(const json_t *action, struct err *e);
    int (*run)(const struct exec_job *job, const struct exec_control *ctl, struct exec_result *out,
               struct err *e);
    struct exec_child *(*start)(const struct exec_job *job, const struct exec_control *ctl,
                                struct exec_result *out);
};

/* What an event loop's step is, behind the exec_child_* calls of exec.h: a child process
 * (exec_child.c) or a MySQL session (exec_mysql_step.c). Each backend's struct puts this first. */
struct exec_child_ops {
    int (*attach)(struct exec_child *c, int epfd, void *tag);
    bool (*on_event)(struct exec_child *c);
    bool (*tick)(struct exec_child *c, bool poll);
    int64_t (*due_ms)(const struct exec_child *c);
    void (*finish)(struct exec_child *c, struct exec_result *out);
};

struct exec_child {
    const struct exec_child_ops *ops;
};

extern const struct exec_backend exec_proc_backend;  /* "exec": a child process (exec_proc.c) */
extern const struct exec_backend exec_mysql_backend; /* "mysql": SQL (exec_mysql.c) */
extern const struct exec_backend exec_noop_backend;  /* "noop": done at once (exec_builtin.c) */
extern const struct exec_backend
    exec_sleep_backend; /* "sleep": the engine waits (exec_builtin.c) */

/* How a step child closes its descriptors above 2 between vfork and exec (exec_proc.c): through
 * close_range, else by walking fd_dir, else by closing every number below the descriptor limit.
 * Both members are swappable so tests can force each fallback (a close_range that fails with
 * ENOSYS, a fd_dir that does not exist); whatever is put here runs in the child and must be
 * async-signal-safe. Defaults: the close_range system call and "/proc/self/fd". */
struct exec_fd_closer {
    int (*close_range)(unsigned first, unsigned last, unsigned flags);
    const char *fd_dir;
};
extern struct exec_fd_closer exec_fd_closer;

/* A step's private copy of its instance's DSN (exec_dsn.c): a directory of its own (mode 0700,
 * made by mkdtemp under asyncd's TMPDIR, else /tmp) holding "dsn" (mode 0600): exactly the DSN,
 * no newline. Both paths are owned, NULL when there is none. */
struct exec_dsn_file {
    char *dir;
    char *path;
};

/* Makes f with dsn in it (f is overwritten: remove an earlier one first). -1 with why[cap] saying
 * what failed ("mkdtemp /tmp/asyncd-step-XXXXXX: No space left on device"); whatever was made
 * is removed again and f holds none. */
int exec_dsn_file_write(struct exec_dsn_file *f, const char *dsn, char *why, size_t cap);

/* Removes f's directory with whatever the step left in it (symlinks removed, never followed) and
 * frees the paths; nothing when f holds none. Call it once the step's process group is gone. */
void exec_dsn_file_remove(struct exec_dsn_file *f);

/* dsn without the password of its user-info, for a step's environment: "scheme://user@host..."
 * for "scheme://user:password@host...". The user-info ends at the last '@', as mysql_dsn reads
 * it, so nothing between the first ':' after "://" and that '@' is kept. The caller frees it. */
char *exec_dsn_without_password(const char *dsn);

/* Copies the last non-empty line of text[0..len) into out (size cap, always terminated): trailing
 * whitespace stripped, cut to fit on a UTF-8 boundary, invalid UTF-8 and NUL bytes made '?'.
 * Writes "" when there is no such line. `cut` says text starts mid-stream (a kept tail), so a
 * partial UTF-8 character at its start is skipped. */
void exec_last_line(const char *text, size_t len, int cut, char *out, size_t cap);

/* Replaces invalid UTF-8 (including a sequence cut short at the end) in s with '?', in place. */
void exec_utf8_fix(char *s);

/* "SIGKILL" for 9 and the other common signals; NULL when we have no name for it. */
const char *exec_signal_name(int sig);

/* ---- exec_proc.c: what an exec step's child needs, and starting it ---- */

/* Prepared before vfork, as the child may not allocate. */
struct exec_plan {
    /* array owned, strings borrowed from the action: read only until exec_spawn returns */
    char **argv;
    char **sh_argv; /* {"/bin/sh", <candidate>, argv[1..], NULL}: execvp's ENOEXEC fallback */
    char **envp;    /* array and strings owned */
    size_t envc, envcap;
    char **paths; /* the files to try, in PATH order; array and strings owned */
    size_t npaths;
    const char *cwd; /* borrowed like argv, may be NULL */
    int fd_limit;    /* descriptors are below this (the last-resort close loop's bound) */
    struct exec_dsn_file dsn_file; /* the step's private DSN file, when the task has a DSN */
};

/* Everything the child of job (a validated exec action) needs. -1 with why when the step's DSN
 * file cannot be made; exec_plan_free cleans up either way. */
int exec_plan_init(struct exec_plan *p, const struct exec_job *job, char *why, size_t why_cap);
/* Frees p and removes its DSN file: call it once the child's process group is gone. */
void exec_plan_free(struct exec_plan *p);

/* A started child: its pid (= its process group id) and our ends of its pipes (non-blocking,
 * close-on-exec); pidfd is -1 when the kernel has no pidfd_open. */
struct exec_spawned {
    int pid, pidfd, in_fd, out_fd, err_fd;
};

/* Starts p's child in a process group of its own. 0, or -1 with msg[cap] saying why it could not
 * run ("cannot run foo: No such file or directory"); then nothing is left open or unreaped. */
int exec_spawn(const struct exec_plan *p, struct exec_spawned *s, char *msg, size_t cap);

/* ---- exec_child.c: watching a running exec child ---- */

/* The exec backend's blocking run: exec_start, then a poll loop until the child is done. */
int exec_proc_run(const struct exec_job *job, const struct exec_control *ctl,
                  struct exec_result *out, struct err *e);
/* exec_start for a validated exec action. */
struct exec_child *exec_proc_start(const struct exec_job *job, const struct exec_control *ctl,
                                   struct exec_result *out);

/* ---- exec_mysql_step.c: a mysql action as a state machine on the non-blocking API ---- */

/* exec_start for a validated mysql action: connects (without waiting) and returns the session,
 * or NULL with *out filled when it fails at once (no mysql:// DSN, a malformed one). job's
 * action, captured and dsn are copied; ctl is borrowed until exec_child_finish. */
struct exec_child *exec_mysql_start(const struct exec_job *job, const struct exec_control *ctl,
                                    struct exec_result *out);
/* The mysql backend's blocking run: exec_mysql_start, then a poll loop until the session ends. */
int exec_mysql_run(const struct exec_job *job, const struct exec_control *ctl,
                   struct exec_result *out, struct err *e);

#endif
