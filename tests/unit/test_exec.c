/* Unit tests: the exec executor (processes, pipes, timeouts, stop, cleanup, what a child
 * inherits) and action checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "exec/exec.h"
#include "exec/exec_int.h"

/* ---- helpers ---- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static json_t *sh_action(const char *script)
{
    return json_pack("{s:[s,s,s]}", "exec", "/bin/sh", "-c", script);
}

static int run_action(json_t *action, const char *stdin_text, unsigned timeout_s,
                      const struct exec_control *ctl, struct exec_result *res)
{
    struct exec_job job = {.action = action, .stdin_text = stdin_text, .timeout_s = timeout_s};
    struct err e = {0};
    int rc = exec_run(&job, ctl, res, &e);
    json_decref(action);
    return rc;
}

static void run_sh(const char *script, const char *stdin_text, struct exec_result *res)
{
    assert_int_equal(run_action(sh_action(script), stdin_text, 0, NULL, res), 0);
}

/* A fresh path under /tmp that does not exist yet (the caller unlinks it). */
static void tmp_path(char *buf, size_t n)
{
    static int seq;
    int k = __atomic_add_fetch(&seq, 1, __ATOMIC_SEQ_CST);
    snprintf(buf, n, "/tmp/asyncd-test-exec-%d-%d", (int)getpid(), k);
    unlink(buf);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    for (size_t r; (r = fread(buf + n, 1, cap - n, f)) > 0;) {
        n += r;
        if (n == cap)
            buf = realloc(buf, (cap *= 2) + 1);
    }
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

/* The pids a script wrote to path, one a line; returns how many. */
static int read_pids(const char *path, pid_t *pids, int max)
{
    char *text = slurp(path, NULL);
    int n = 0;
    for (char *tok = strtok(text, " \n"); tok && n < max; tok = strtok(NULL, " \n"))
        pids[n++] = (pid_t)atoi(tok);
    free(text);
    return n;
}

/* Gone: no such process, or only a zombie waiting for init (it cannot run any more). */
static int process_gone(pid_t pid)
{
    for (int i = 0; i < 100; i++) {
        if (kill(pid, 0) < 0 && errno == ESRCH)
            return 1;
        char path[64], stat[256] = "";
        snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
        FILE *f = fopen(path, "r");
        if (f) {
            size_t n = fread(stat, 1, sizeof stat - 1, f);
            stat[n] = '\0';
            fclose(f);
            char *paren = strrchr(stat, ')');
            if (paren && paren[1] == ' ' && paren[2] == 'Z')
                return 1;
        }
        usleep(10000);
    }
    return 0;
}

static void assert_no_children_left(void)
{
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    for (struct dirent *de; (de = readdir(d));)
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own fd */
}

static bool stop_after_300ms(void *ctx) { return now_ms() - *(int64_t *)ctx >= 300; }

/* ---- results and messages ---- */

static void test_last_stdout_line_becomes_the_message(void **state)
{
    (void)state;
    struct exec_result res;
    int64_t t0 = now_ms();
    run_sh("echo first; echo '  the last line \t'; echo; printf '   \\r\\n'", NULL, &res);
    assert_int_equal(res.outcome, EXEC_DONE);
    assert_int_equal(res.exit_code, 0);
    assert_string_equal(res.message, "  the last line");
    assert_true(now_ms() - t0 < 500); /* the exit is noticed at once, not at a tick */
    assert_no_children_left();
}

static void test_no_stdout_gives_an_empty_message(void **state)
{
    (void)state;
    struct exec_result res;
    run_sh("true", NULL, &res);
    assert_int_equal(res.outcome, EXEC_DONE);
    assert_string_equal(res.message, "");
}

static void test_stdin_receives_the_text(void **state)
{
    (void)state;
    char path[128], script[512];
    tmp_path(path, sizeof path);
    size_t n = 300000; /* more than a pipe holds: written bit by bit as the child reads */
    char *text = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        text[i] = (char)('a' + i % 26);
    text[n] = '\0';
    snprintf(script, sizeof script, "cat > %s; wc -c < %s", path, path);
    struct exec_result res;
    run_sh(script, text, &res);
    assert_int_equal(res.outcome, EXEC_DONE);
    assert_int_equal(atoi(res.message), (int)n);
    size_t got;
    char *copy = slurp(path, &got);
    assert_int_equal(got, n);
    assert_memory_equal(copy, text, n);
    free(copy);
    free(text);
    unlink(path);
}

static void test_child_not_reading_stdin_is_not_a_sigpipe(void **state)
{
    (void)state;
    size_t n = 1 << 20;
    char *text = malloc(n + 1);
    memset(text, 'x', n);
    text[n] = '\0';
    struct exec_result res;
    run_sh("exec 0<&-; echo ignored stdin", text, &res); /* SIGPIPE is at default here */
    assert_int_equal(res.outcome, EXEC_DONE);
    assert_string_equal(res.message, "ignored stdin");
    free(text);
}

static void test_nonzero_exit_uses_the_last_stderr_line(void **state)
{
    (void)state;
    struct exec_result res;
    run_sh("echo out; echo 'err one' >&2; echo 'err two' >&2; exit 2", NULL, &res);
    assert_int_equal(res.outcome, EXEC_FAILED);
    assert_int_equal(res.exit_code, 2);
    assert_string_equal(res.message, "err two");
}

static void test_exit_without_stderr_says_exited_with_status(void **state)
{
    (void)state;
    struct exec_result res;
    run_sh("echo only stdout; exit 3", NULL, &res);
    assert_int_equal(res.outcome, EXEC_FAILED);
    assert_int_equal(res.exit_code, 3);
    assert_string_equal(res.message, "exited with status 3");
}

static void test_killed_by_signal_is_128_plus_signal(void **state)
{
    (void)state;
    struct exec_result res;
    run_sh("kill -KILL $$", NULL, &res);
    assert_int_equal(res.outcome, EXEC_FAILED);
    assert_int_equal(res.exit_code, 128 + SIGKILL);
    assert_string_equal(res.message, "killed by signal 9 (SIGKILL)");
}

static void test_long_line_is_cut_on_a_utf8_boundary(void **state)
{
    (void)state;
    struct exec_result res;
    /* 700 two-byte characters = 1400 bytes, more than the message holds */
    run_sh("i=0; while [ $i -lt 700 ]; do printf '\\303\\251'; i=$((i+1)); done; echo", NULL, &res);
    assert_int_equal(res.outcome, EXEC_DONE);
    size_t n = strlen(res.message);
    assert_int_equal(n, 1022);
    assert_memory_equal(res.message + n - 2, "\xc3\xa9", 2);
}

static void test_invalid_utf8_in_output_becomes_question_marks(void **state)
{
    (void)state;
    struct exec_result res;
    run_sh("printf 'ok \\377\\300 end\\n'", NULL, &res);
    assert_string_equal(res.message, "ok ?? end");
}

/* ---- starting ---- */

static void test_missing_program_fails_with_enoent_and_leaves_no_child(void **state)
{
    (void)state;
    struct exec_result res;
    json_t *a = json_pack("{s:[s]}", "exec", "/nonexistent/asyncd-prog");
    assert_int_equal(run_action(a, "input", 0, NULL, &res), 0);
    assert_int_equal(res.outcome, EXEC_FAILED);
    assert_int_equal(res.exit_code, -1);
    assert_string_equal(res.message,
                        "cannot run /nonexistent/asyncd-prog: No such file or directory");
    assert_no_children_left();

    a = json_pack("{s:[s]}", "exec", "asyncd-no-such-program-on-path");
    assert_int_equal(run_action(a, NULL, 0, NULL, &res), 0);
    assert_string_equal(res.message,
                        "cannot run asyncd-no-such-program-on-path: No such file or directory");
    assert_no_children_left();
}

static void test_program_without_exec_permission_fails_with_eacces(void **state)
{
    (void)state;
    char path[128];
    tmp_path(path, sizeof path);
    FILE *f = fopen(path, "w");
    fputs("#!/bin/sh\necho hi\n", f);
    fclose(f);
    chmod(path, 0644);
    struct exec_result res;
    assert_int_equal(run_action(json_pack("{s:[s]}", "exec", path), NULL, 0, NULL, &res), 0);
    assert_int_equal(res.outcome, EXEC_FAILED);
    assert_int_equal(res.exit_code, -1);
    char want[256];
    snprintf(want, sizeof want, "cannot run %s: Permission denied", path); /* even for root */
    assert_string_equal(res.message, want);
    unlink(path);
}

static void test_bad_cwd_fails_with_cannot_chdir(void **state)
{
    (void)state;
    struct exec_result res;
    json_t *a = json_pack("{s:[s,s,s],s:s}", "exec", "/bin/sh", "-c", "pwd", "cwd",
                          "/nonexistent/asyncd-dir");
    assert_int_equal(run_action(a, NULL, 0, NULL, &res), 0);
    assert_int_equal(res.outcome, EXEC_FAILED);
    assert_int_equal(res.exit_code, -1);
    assert_string_equal(res.message,
                        "cannot chdir to /nonexistent/asyncd-dir: No such file or directory");
    assert_no_children_left();
}

static void test_cwd_is_the_childs_working_directory(void **state)
{
    (void)state;
    struct exec_result res;
    json_t *a = json_pack("{s:[s,s,s],s:s}", "exec", "/bin/sh", "-c", "pwd", "cwd", "/");
    assert_int_equal(run_action(a, NULL, 0, NULL, &res), 0);
    assert_int_equal(res.outcome, EXEC_DONE);
    assert_string_equal(res.message, "/");
}

static void test_env_and_extra_env_are_visible_to_the_child(void **state)
{
    (void)state;
    setenv("ASYNCD_TASK_ID", "from-parent", 1); /* a documented name, but not from asyncd's env */
    const char *extra[] = {"ASYNCD_TASK_ID=extra", "ASYNCD_PHASE=do", "ASYNCD_STEP_NAME=extra",
                           NULL};
    json_t *a = json_pack("{s:[s,s,s],s:{s:s,s:s}}", "exec", "sh", "-c",
                          "echo \"$ASYNCD_TASK_ID $ASYNCD_PHASE $ASYNCD_STEP_NAME $MY_VAR\"", "env",
                          "ASYNCD_STEP_NAME", "action", "MY_VAR", "c=1");
    struct exec_job job = {.action = a, .extra_env = extra};
    struct exec_result res;
    assert_int_equal(exec_run(&job, NULL, &res, NULL), 0);
    assert_int_equal(res.outcome, EXEC_DONE);
    assert_string_equal(res.message, "extra do action c=1");
    json_decref(a);
    unsetenv("ASYNCD_TASK_ID");
}

/* Runs `env` in a child with extra, the daemon's environment as set by the test. */
static char *child_env(const char *const *extra)
{
    char path[128], script[256];
    tmp_path(path, sizeof path);
    snprintf(script, sizeof script, "tr '\\0' '\\n' < /proc/$$/environ > %s", path);
    json_t *a = sh_action(script);
    struct exec_job job = {.action = a, .extra_env = extra};
    struct exec_result res;
    assert_int_equal(exec_run(&job, NULL, &res, NULL), 0);
    assert_int_equal(res.outcome, EXEC_DONE);
    json_decref(a);
    char *text = slurp(path, NULL);
    unlink(path);
    return text;
}

static void test_child_environment_is_the_allow_list_only(void **state)
{
    (void)state;
    static const char *const secrets[] = {
        "PGPASSWORD",      "ASYNCD_ADMIN_TOKEN", "ASYNCD_STORE", "SOME_SECRET", "LD_PRELOAD_X",
        "ASYNCD_TASK_IDX", "LC_SECRET",          "PATHX",        NULL};
    for (const char *const *k = secrets; *k; k++)
        setenv(*k, "topsecret", 1);
    setenv("LANG", "C.UTF-8", 1);
    setenv("LC_TIME", "C", 1);
    setenv("TZ", "Asia/Shanghai", 1);
    setenv("HOME", "/home/asyncd-test", 1);
    const char *extra[] = {"ASYNCD_TASK_ID=t1", "ASYNCD_SECRET=extra-secret",
                           "ASYNCD_INSTANCE_ID=i1", NULL};
    char *env = child_env(extra);
    assert_null(strstr(env, "topsecret"));
    assert_null(strstr(env, "extra-secret"));
    assert_non_null(strstr(env, "\nLANG=C.UTF-8\n"));
    assert_non_null(strstr(env, "\nLC_TIME=C\n"));
    assert_non_null(strstr(env, "\nTZ=Asia/Shanghai\n"));
    assert_non_null(strstr(env, "\nHOME=/home/asyncd-test\n"));
    assert_non_null(strstr(env, "\nASYNCD_TASK_ID=t1\n"));
    assert_non_null(strstr(env, "\nASYNCD_INSTANCE_ID=i1\n"));
    assert_true(strncmp(env, "PATH=", 5) == 0 || strstr(env, "\nPATH=") != NULL);
    free(env);
    for (const char *const *k = secrets; *k; k++)
        unsetenv(*k);
}

static void test_child_without_path_gets_a_default_path(void **state)
{
    (void)state;
    char *saved = strdup(getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
    unsetenv("PATH");
    char *env = child_env(NULL);
    setenv("PATH", saved, 1);
    assert_true(strncmp(env, "PATH=/usr/bin:/bin\n", 19) == 0);
    free(env);
    free(saved);
}

/* ---- the instance's DSN: no password in the environment, the whole DSN in a 0600 file ---- */

static void expect_shown(const char *dsn, const char *shown)
{
    char *s = exec_dsn_without_password(dsn);
    assert_string_equal(s, shown);
    free(s);
}

static void test_dsn_without_password_keeps_everything_but_the_password(void **state)
{
    (void)state;
    expect_shown("mysql://admin:s3cret@127.0.0.1:3306", "mysql://admin@127.0.0.1:3306");
    expect_shown("mysql://admin:p%40ss@db.example:3306/app?ssl-mode=REQUIRED",
                 "mysql://admin@db.example:3306/app?ssl-mode=REQUIRED");
    expect_shown("mysql://admin:@127.0.0.1", "mysql://admin@127.0.0.1");
    expect_shown("mysql://admin@127.0.0.1:3306", "mysql://admin@127.0.0.1:3306");
    expect_shown("mongodb://127.0.0.1:27017/src", "mongodb://127.0.0.1:27017/src");
    expect_shown("mongodb://backup:a:b@c@h1,h2/admin?authSource=admin",
                 "mongodb://backup@h1,h2/admin?authSource=admin");
    expect_shown("", "");
}

/* What a step reported about its DSN: its environment, its file's mode, its directory's mode
 * and content, and the path (read back after the run). */
struct dsn_probe {
    char *env, *modes, *content, file[1024];
};

static void probe_dsn(const char *dsn, const char *extra_script, unsigned timeout_s,
                      struct dsn_probe *out, struct exec_result *res)
{
    char base[128], script[1024];
    tmp_path(base, sizeof base);
    snprintf(script, sizeof script,
             "tr '\\0' '\\n' < /proc/$$/environ > %s.env; f=\"$ASYNCD_INSTANCE_DSN_FILE\"; "
             "if [ -n \"$f\" ]; then stat -c %%a \"$f\" \"$(dirname \"$f\")\" > %s.modes; "
             "cat \"$f\" > %s.content; else : > %s.modes; : > %s.content; fi; %s echo \"$f\"",
             base, base, base, base, base, extra_script);
    const char *extra[] = {"ASYNCD_TASK_ID=t1", NULL, NULL};
    char engine_dsn[512];
    if (dsn) { /* what the engine passes: the daemon never lets it through */
        snprintf(engine_dsn, sizeof engine_dsn, "ASYNCD_INSTANCE_DSN=%s", dsn);
        extra[1] = engine_dsn;
    }
    json_t *a = sh_action(script);
    struct exec_job job = {.action = a, .extra_env = extra, .dsn = dsn, .timeout_s = timeout_s};
    assert_int_equal(exec_run(&job, NULL, res, NULL), 0);
    json_decref(a);
    char path[160];
    snprintf(path, sizeof path, "%s.env", base);
    out->env = slurp(path, NULL);
    unlink(path);
    snprintf(path, sizeof path, "%s.modes", base);
    out->modes = slurp(path, NULL);
    unlink(path);
    snprintf(path, sizeof path, "%s.content", base);
    out->content = slurp(path, NULL);
    unlink(path);
    snprintf(out->file, sizeof out->file, "%s", res->message);
}

static void dsn_probe_free(struct dsn_probe *p)
{
    free(p->env);
    free(p->modes);
    free(p->content);
}

static void expect_gone(const char *file)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", file);
    char *slash = strrchr(dir, '/');
    assert_non_null(slash);
    *slash = '\0';
    struct stat st;
    assert_int_equal(stat(file, &st), -1);
    assert_int_equal(stat(dir, &st), -1);
    assert_int_equal(errno, ENOENT);
}

static void test_step_gets_the_dsn_password_only_in_a_0600_file_removed_after(void **state)
{
    (void)state;
    setenv("TMPDIR", "/tmp", 1); /* where the private directory goes; relative would be ignored */
    const char *dsn = "mysql://admin:Top-s3cret-pw@127.0.0.1:3306/app?ssl-mode=DISABLED";
    struct dsn_probe p;
    struct exec_result res;
    probe_dsn(dsn, "", 0, &p, &res);
    assert_int_equal(res.outcome, EXEC_DONE);
    assert_null(strstr(p.env, "Top-s3cret-pw"));
    assert_non_null(strstr(
        p.env, "\nASYNCD_INSTANCE_DSN=mysql://admin@127.0.0.1:3306/app?ssl-mode=DISABLED\n"));
    assert_non_null(strstr(p.env, "\nASYNCD_INSTANCE_DSN_FILE=/tmp/asyncd-step-"));
    assert_string_equal(p.modes, "600\n700\n");
    assert_string_equal(p.content, dsn);
    assert_true(strncmp(p.file, "/tmp/asyncd-step-", 17) == 0);
    expect_gone(p.file);
    dsn_probe_free(&p);
}

static void test_without_a_dsn_both_variables_are_empty(void **state)
{
    (void)state;
    struct dsn_probe p;
    struct exec_result res;
    probe_dsn(NULL, "", 0, &p, &res);
    assert_int_equal(res.outcome, EXEC_DONE);
    assert_non_null(strstr(p.env, "\nASYNCD_INSTANCE_DSN=\n"));
    assert_non_null(strstr(p.env, "\nASYNCD_INSTANCE_DSN_FILE=\n"));
    assert_string_equal(p.content, "");
    dsn_probe_free(&p);
}

/* A step that fails, times out or leaves files of its own in the directory: all of it goes. */
static void test_dsn_directory_goes_whatever_the_step_did(void **state)
{
    (void)state;
    setenv("TMPDIR", "relative/tmp", 1); /* not absolute: /tmp is used */
    const char *dsn = "mongodb://backup:Pw-2@127.0.0.1:27017/admin";
    struct dsn_probe p;
    struct exec_result res;
    probe_dsn(dsn,
              "d=$(dirname \"$f\"); mkdir \"$d/sub\"; : > \"$d/sub/x\"; ln -s / \"$d/root\"; "
              "echo \"$f\"; exit 3;",
              0, &p, &res);
    assert_int_equal(res.outcome, EXEC_FAILED);
    assert_int_equal(res.exit_code, 3);
    struct stat st;
    assert_int_equal(stat("/tmp", &st), 0); /* the symlink was removed, not followed */
    dsn_probe_free(&p);

    char base[128], script[256];
    tmp_path(base, sizeof base);
    snprintf(script, sizeof script, "echo \"$ASYNCD_INSTANCE_DSN_FILE\" > %s; sleep 30", base);
    json_t *a = sh_action(script);
    struct exec_job job = {.action = a, .dsn = dsn, .timeout_s = 1};
    assert_int_equal(exec_run(&job, NULL, &res, NULL), 0);
    json_decref(a);
    assert_int_equal(res.outcome, EXEC_TIMEOUT);
    char *file = slurp(base, NULL);
    unlink(base);
    file[strcspn(file, "\n")] = '\0';
    assert_true(strncmp(file, "/tmp/asyncd-step-", 17) == 0);
    expect_gone(file);
    free(file);
    unsetenv("TMPDIR");
}

/* ---- descriptors ---- */

/* Leaves descriptors open without close-on-exec, as a library might: a file, a socket, and one
 * far above the others (2000), so a walk that stopped early would miss it. */
static void open_leaky_fds(int fds[4])
{
    int sp[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
    fds[0] = sp[0];
    fds[1] = sp[1];
    fds[2] = open("/dev/null", O_RDONLY);
    assert_true(fds[2] > 2);
    fds[3] = dup2(fds[2], 2000);
    assert_int_equal(fds[3], 2000);
}

static void close_leaky_fds(const int fds[4])
{
    for (int i = 0; i < 4; i++)
        close(fds[i]);
}

/* The descriptors the step's shell holds, as "0 1 2": the glob's own directory descriptor is
 * gone by the time each entry is tested, so it is not counted. soft_limit, when not 0, is the
 * RLIMIT_NOFILE soft limit while the child starts (the leaky descriptors are opened before). */
static void expect_only_stdio_in_child(rlim_t soft_limit)
{
    int leaky[4];
    open_leaky_fds(leaky);
    struct rlimit lim, low;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &lim), 0);
    low = lim;
    low.rlim_cur = soft_limit ? soft_limit : lim.rlim_cur;
    int set = setrlimit(RLIMIT_NOFILE, &low);
    struct exec_result res;
    int rc = run_action(sh_action("fds=''; for f in /proc/$$/fd/*; do [ -e \"$f\" ] && "
                                  "fds=\"$fds ${f##*/}\"; done; echo \"fds:$fds\""),
                        "stdin", 0, NULL, &res);
    setrlimit(RLIMIT_NOFILE, &lim);
    close_leaky_fds(leaky);
    assert_int_equal(set, 0);
    assert_int_equal(rc, 0);
    assert_int_equal(res.outcome, EXEC_DONE);
    assert_string_equal(res.message, "fds: 0 1 2");
}

static void test_child_has_no_descriptor_above_2(void **state)
{
    (void)state;
    expect_only_stdio_in_child(0);
}

static int close_range_enosys(unsigned first, unsigned last, unsigned flags)
{
    (void)first, (void)last, (void)flags;
    errno = ENOSYS;
    return -1;
}

static void test_without_close_range_the_fd_directory_is_walked(void **state)
{
    (void)state;
    struct exec_fd_closer saved = exec_fd_closer;
    exec_fd_closer.close_range = close_range_enosys;
    /* A soft limit below 2000: should the walk fail, the last-resort loop would stop short of
     * descriptor 2000 and the test would see it. */
    expect_only_stdio_in_child(64);
    /* the status pipe survives the walk: a failed exec is still reported at spawn */
    struct exec_result res;
    assert_int_equal(
        run_action(json_pack("{s:[s]}", "exec", "/nonexistent/asyncd-prog"), NULL, 0, NULL, &res),
        0);
    assert_string_equal(res.message,
                        "cannot run /nonexistent/asyncd-prog: No such file or directory");
    exec_fd_closer = saved;
}

static void test_without_close_range_or_proc_every_descriptor_is_closed(void **state)
{
    (void)state;
    struct exec_fd_closer saved = exec_fd_closer;
    exec_fd_closer.close_range = close_range_enosys;
    exec_fd_closer.fd_dir = "/nonexistent/asyncd-fd-dir";
    expect_only_stdio_in_child(0);
    struct exec_result res;
    json_t *a = json_pack("{s:[s],s:s}", "exec", "/bin/true", "cwd", "/nonexistent/asyncd-dir");
    assert_int_equal(run_action(a, NULL, 0, NULL, &res), 0);
    assert_string_equal(res.message,
                        "cannot chdir to /nonexistent/asyncd-dir: No such file or directory");
    exec_fd_closer = saved;
}

/* ---- stopping ---- */

static void test_timeout_stops_the_child_after_timeout_s(void **state)
{
    (void)state;
    char path[128], script[512];
    tmp_path(path, sizeof path);
    snprintf(script, sizeof script, "sleep 60 & echo $! > %s; wait", path);
    struct exec_result res;
    int64_t t0 = now_ms();
    assert_int_equal(run_action(sh_action(script), NULL, 1, NULL, &res), 0);
    int64_t took = now_ms() - t0;
    assert_int_equal(res.outcome, EXEC_TIMEOUT);
    assert_string_equal(res.message, "timed out after 1 s");
    assert_true(took >= 950 && took < 1800);
    pid_t pid;
    assert_int_equal(read_pids(path, &pid, 1), 1);
    assert_true(process_gone(pid));
    assert_no_children_left();
    unlink(path);
}

static void test_poll_returning_true_stops_the_child(void **state)
{
    (void)state;
    int64_t t0 = now_ms();
    struct exec_control ctl = {stop_after_300ms, &t0, 0};
    struct exec_result res;
    assert_int_equal(run_action(sh_action("sleep 60"), NULL, 0, &ctl, &res), 0);
    int64_t took = now_ms() - t0;
    assert_int_equal(res.outcome, EXEC_STOPPED);
    assert_string_equal(res.message, "stopped by request");
    assert_true(took >= 300 && took < 900);
    assert_no_children_left();
}

static void test_child_ignoring_sigterm_is_killed_after_the_grace(void **state)
{
    (void)state;
    char path[128], script[512];
    tmp_path(path, sizeof path);
    snprintf(script, sizeof script, "trap '' TERM; echo $$ > %s; sleep 60 & echo $! >> %s; wait",
             path, path);
    int64_t t0 = now_ms();
    struct exec_control ctl = {stop_after_300ms, &t0, 0}; /* default grace: 1000 ms */
    struct exec_result res;
    assert_int_equal(run_action(sh_action(script), NULL, 0, &ctl, &res), 0);
    int64_t took = now_ms() - t0;
    assert_int_equal(res.outcome, EXEC_STOPPED);
    assert_int_equal(res.exit_code, 128 + SIGKILL);
    assert_true(took >= 1250 && took < 2000);
    pid_t pids[2];
    assert_int_equal(read_pids(path, pids, 2), 2);
    assert_true(process_gone(pids[0]));
    assert_true(process_gone(pids[1]));
    assert_no_children_left();
    unlink(path);
}

static void test_kill_grace_ms_is_honoured(void **state)
{
    (void)state;
    int64_t t0 = now_ms();
    struct exec_control ctl = {stop_after_300ms, &t0, 200};
    struct exec_result res;
    assert_int_equal(run_action(sh_action("trap '' TERM; sleep 60; sleep 60"), NULL, 0, &ctl, &res),
                     0);
    int64_t took = now_ms() - t0;
    assert_int_equal(res.outcome, EXEC_STOPPED);
    assert_true(took >= 450 && took < 900);
}

static void test_backgrounded_grandchild_does_not_keep_the_run_waiting(void **state)
{
    (void)state;
    char path[128], script[512];
    tmp_path(path, sizeof path);
    snprintf(script, sizeof script, "sleep 30 & echo $! > %s; echo done", path);
    int64_t t0 = now_ms();
    struct exec_result res;
    run_sh(script, NULL, &res);
    assert_true(now_ms() - t0 < 1000);
    assert_int_equal(res.outcome, EXEC_DONE);
    assert_string_equal(res.message, "done");
    pid_t pid;
    assert_int_equal(read_pids(path, &pid, 1), 1);
    assert_true(process_gone(pid));
    assert_no_children_left();
    unlink(path);
}

/* ---- volume, threads, leaks ---- */

static void test_ten_megabytes_of_output_do_not_deadlock(void **state)
{
    (void)state;
    struct exec_result res;
    run_sh("head -c 10000000 /dev/zero | tr '\\000' x; head -c 10000000 /dev/zero >&2; "
           "echo; echo end",
           NULL, &res);
    assert_int_equal(res.outcome, EXEC_DONE);
    assert_string_equal(res.message, "end");
}

#define THREAD_RUNS 10

struct thread_arg {
    int id;
    int ok;
    int64_t start_ms[THREAD_RUNS], end_ms[THREAD_RUNS]; /* each run's span */
};

/* exec_job.started: the child runs from now on (its span starts here, not while queued). */
static void run_started(void *ctx, int pid)
{
    (void)pid;
    *(int64_t *)ctx = now_ms();
}

static void *thread_main(void *p)
{
    struct thread_arg *arg = p;
    for (int i = 0; i < THREAD_RUNS; i++) {
        char want[64];
        snprintf(want, sizeof want, "thread %d run %d", arg->id, i);
        json_t *a = json_pack("{s:[s,s,s]}", "exec", "/bin/sh", "-c", "sleep 0.05; cat");
        struct exec_job job = {.action = a,
                               .stdin_text = want,
                               .timeout_s = 5,
                               .started = run_started,
                               .started_ctx = &arg->start_ms[i]};
        struct exec_result res;
        if (exec_run(&job, NULL, &res, NULL) == 0 && res.outcome == EXEC_DONE &&
            strcmp(res.message, want) == 0)
            arg->ok++;
        arg->end_ms[i] = now_ms();
        json_decref(a);
    }
    return NULL;
}

/* The most runs of different threads in flight at one instant (spans are half-open). */
static int most_at_once(const struct thread_arg *args, int n)
{
    int most = 0;
    for (int a = 0; a < n; a++) {
        for (int i = 0; i < THREAD_RUNS; i++) {
            int64_t t = args[a].start_ms[i];
            int at = 0;
            for (int b = 0; b < n; b++)
                for (int j = 0; j < THREAD_RUNS; j++)
                    at += args[b].start_ms[j] <= t && t < args[b].end_ms[j];
            most = at > most ? at : most;
        }
    }
    return most;
}

/* Runs on eight threads overlap: exec_run serialises nothing. Asserted on the children's own
 * spans (started callback to return) rather than the total time, which a loaded machine
 * stretches (seen failing at load average 11). */
static void test_eight_threads_run_at_once(void **state)
{
    (void)state;
    pthread_t th[8];
    static struct thread_arg args[8];
    for (int i = 0; i < 8; i++) {
        args[i] = (struct thread_arg){.id = i};
        assert_int_equal(pthread_create(&th[i], NULL, thread_main, &args[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].ok, THREAD_RUNS);
    }
    /* Runs taken one at a time could show 2 only in the instant between one's end and the
     * next's stamp; a child lasts >= 50 ms. */
    int most = most_at_once(args, 8);
    if (most < 3)
        fail_msg("runs did not overlap: at most %d in flight at once", most);
    assert_no_children_left();
}

static void test_no_fd_is_left_after_200_runs(void **state)
{
    (void)state;
    int before = count_fds();
    for (int i = 0; i < 200; i++) {
        struct exec_result res;
        json_t *a;
        switch (i % 4) {
        case 0:
            a = sh_action("echo ok");
            break;
        case 1:
            a = sh_action("echo bad >&2; exit 1");
            break;
        case 2:
            a = json_pack("{s:[s]}", "exec", "/nonexistent/prog");
            break;
        default:
            a = json_pack("{s:[s],s:s}", "exec", "/bin/true", "cwd", "/nonexistent");
            break;
        }
        assert_int_equal(run_action(a, "stdin", 0, NULL, &res), 0);
    }
    assert_int_equal(count_fds(), before);
    assert_no_children_left();
}

/* ---- an exec child on the caller's event loop (exec_start, exec_child_*) ---- */

/* Runs kids[0..n) to their end on one epoll set, as the engine's step loop does: each event
 * handled, a 100 ms tick asking ctl->poll, the due times kept. attach = false leaves them
 * unwatched (read by every tick). res[i] gets kids[i]'s result; kids[] ends all NULL. */
static void loop_run(struct exec_child **kids, int n, bool attach, struct exec_result *res)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    assert_true(ep >= 0);
    for (int i = 0; attach && i < n; i++)
        assert_int_equal(exec_child_attach(kids[i], ep, &kids[i]), 0);
    int left = n;
    int64_t next_tick = now_ms() + 100;
    while (left > 0) {
        int64_t due = next_tick;
        for (int i = 0; i < n; i++)
            if (kids[i] && exec_child_due_ms(kids[i]) < due)
                due = exec_child_due_ms(kids[i]);
        int64_t wait = due - now_ms();
        struct epoll_event ev[64];
        int k = epoll_wait(ep, ev, 64, wait > 0 ? (int)wait : 0);
        for (int j = 0; j < k; j++) {
            struct exec_child **slot = ev[j].data.ptr;
            if (*slot && exec_child_on_event(*slot)) {
                exec_child_finish(*slot, &res[slot - kids]);
                *slot = NULL;
                left--;
            }
        }
        int64_t now = now_ms();
        bool tick = now >= next_tick;
        if (tick)
            next_tick = now + 100;
        for (int i = 0; i < n; i++)
            if (kids[i] && (tick || exec_child_due_ms(kids[i]) <= now) &&
                exec_child_tick(kids[i], tick)) {
                exec_child_finish(kids[i], &res[i]);
                kids[i] = NULL;
                left--;
            }
    }
    close(ep);
}

static struct exec_child *start_sh(const char *script, const char *stdin_text, unsigned timeout_s,
                                   const struct exec_control *ctl)
{
    json_t *action = sh_action(script);
    struct exec_job job = {.action = action, .stdin_text = stdin_text, .timeout_s = timeout_s};
    struct exec_result res;
    struct err e = {0};
    struct exec_child *c = exec_start(&job, ctl, &res, &e);
    json_decref(action); /* exec_start keeps nothing of the action */
    assert_non_null(c);
    return c;
}

static void test_one_thread_runs_forty_children_at_once(void **state)
{
    (void)state;
    enum { N = 40 };
    int before = count_fds();
    struct exec_child *kids[N];
    struct exec_result res[N];
    char in[N][32];
    int64_t t0 = now_ms();
    for (int i = 0; i < N; i++) {
        snprintf(in[i], sizeof in[i], "hello %d\n", i);
        kids[i] = start_sh("read x; sleep 1; echo \"got $x\"", in[i], 0, NULL);
    }
    loop_run(kids, N, true, res);
    int64_t took = now_ms() - t0;
    if (took > 3000)
        fail_msg("40 children of 1 s on one loop took %lld ms", (long long)took);
    for (int i = 0; i < N; i++) {
        char want[48];
        snprintf(want, sizeof want, "got hello %d", i);
        assert_int_equal(res[i].outcome, EXEC_DONE);
        assert_string_equal(res[i].message, want);
    }
    assert_int_equal(count_fds(), before);
    assert_no_children_left();
}

static void test_loop_child_is_stopped_timed_out_and_killed_as_exec_run_does(void **state)
{
    (void)state;
    int64_t t0 = now_ms();
    struct exec_control stop = {stop_after_300ms, &t0, 0};
    struct exec_control stop_fast = {stop_after_300ms, &t0, 200};
    struct exec_child *kids[4] = {
        start_sh("sleep 60", NULL, 0, &stop),
        start_sh("sleep 60", NULL, 1, NULL),
        start_sh("trap '' TERM; sleep 60; sleep 60", NULL, 0, &stop_fast),
        start_sh("echo '{\"message\":\"captured\",\"n\":1}'", NULL, 0, &stop),
    };
    struct exec_result res[4];
    loop_run(kids, 4, true, res);
    int64_t took = now_ms() - t0;
    assert_int_equal(res[0].outcome, EXEC_STOPPED);
    assert_string_equal(res[0].message, "stopped by request");
    assert_int_equal(res[1].outcome, EXEC_TIMEOUT);
    assert_string_equal(res[1].message, "timed out after 1 s");
    assert_int_equal(res[2].outcome, EXEC_STOPPED);
    assert_int_equal(res[2].exit_code, 128 + SIGKILL); /* SIGTERM ignored: killed after 200 ms */
    assert_int_equal(res[3].outcome, EXEC_DONE);
    assert_string_equal(res[3].message, "captured");
    assert_non_null(res[3].output);
    json_decref(res[3].output);
    assert_true(took >= 950 && took < 1800);
    assert_no_children_left();
}

static void test_unattached_child_is_read_by_the_tick(void **state)
{
    (void)state;
    struct exec_child *kids[1] = {start_sh("cat; echo bad >&2; exit 3", "in\n", 0, NULL)};
    struct exec_result res[1];
    loop_run(kids, 1, false, res);
    assert_int_equal(res[0].outcome, EXEC_FAILED);
    assert_int_equal(res[0].exit_code, 3);
    assert_string_equal(res[0].message, "bad");
    assert_no_children_left();
}

static void test_exec_start_reports_what_cannot_start(void **state)
{
    (void)state;
    struct exec_result res;
    struct err e = {0};
    json_t *noop = json_pack("{s:{}}", "noop");
    struct exec_job job = {.action = noop};
    assert_false(exec_is_child(noop));
    assert_null(exec_start(&job, NULL, &res, &e));
    assert_int_equal(e.code, ERR_INVALID_PARAMETER_VALUE);
    assert_int_equal(res.outcome, EXEC_FAILED);
    json_decref(noop);
    json_t *missing = json_pack("{s:[s]}", "exec", "/nonexistent/prog");
    job.action = missing;
    assert_true(exec_is_child(missing));
    assert_null(exec_start(&job, NULL, &res, &e));
    assert_int_equal(res.outcome, EXEC_FAILED);
    assert_int_equal(res.exit_code, -1);
    assert_non_null(strstr(res.message, "cannot run /nonexistent/prog"));
    json_decref(missing);
    assert_no_children_left();
}

/* ---- validation ---- */

static void expect_invalid(const char *json, const char *message)
{
    json_t *a = json_loads(json, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    assert_non_null(a);
    struct err e = {0};
    assert_int_equal(exec_validate(a, &e), ERR_INVALID_PARAMETER_VALUE);
    assert_string_equal(e.msg, message);
    struct exec_job job = {.action = a};
    struct exec_result res;
    assert_int_equal(exec_run(&job, NULL, &res, &e), ERR_INVALID_PARAMETER_VALUE);
    assert_int_equal(res.outcome, EXEC_FAILED);
    json_decref(a);
}

static void test_validate_accepts_well_formed_actions(void **state)
{
    (void)state;
    const char *ok[] = {
        "{\"exec\": [\"ls\"]}",
        "{\"exec\": [\"/bin/ls\", \"-l\", \"\"], \"env\": {\"A\": \"1\", \"B\": \"\"}, \"cwd\": "
        "\"/tmp\"}",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        json_t *a = json_loads(ok[i], 0, NULL);
        struct err e = {0};
        assert_int_equal(exec_validate(a, &e), 0);
        json_decref(a);
    }
}

static void test_validate_names_the_bad_field(void **state)
{
    (void)state;
    expect_invalid("{\"exec\": []}",
                   "exec: expected a non-empty array of strings, got an empty array");
    expect_invalid("{\"exec\": \"ls -l\"}",
                   "exec: expected a non-empty array of strings, got a string");
    expect_invalid("{\"exec\": [\"ls\", 1]}", "exec[1]: expected a string, got a number");
    expect_invalid("{\"exec\": [\"\"]}", "exec[0]: expected a program, got \"\"");
    expect_invalid("{\"exec\": [\"ls\"], \"env\": {\"A\": 1}}",
                   "env.A: expected a string, got a number");
    expect_invalid("{\"exec\": [\"ls\"], \"env\": [\"A=1\"]}",
                   "env: expected an object, got an array");
    expect_invalid("{\"exec\": [\"ls\"], \"env\": {\"A=B\": \"1\"}}",
                   "env: \"A=B\" is not a variable name (empty or has '=')");
    expect_invalid("{\"exec\": [\"ls\"], \"cwd\": 5}", "cwd: expected a string, got a number");
    expect_invalid("{\"exec\": [\"ls\"], \"timeout\": 5}",
                   "timeout: unknown key in an exec action (expected exec, env, cwd)");
    expect_invalid("{\"exec\": [\"a\\u0000b\"]}", "exec[0]: contains a NUL character");
}

static void test_validate_wants_exactly_one_known_executor(void **state)
{
    (void)state;
    expect_invalid("{\"remote\": []}", "remote: expected an object, got an array");
    expect_invalid("{\"remote\": {}, \"env\": {}}",
                   "action: a remote action has only the \"remote\" key");
    expect_invalid("{\"exec\": [\"ls\"], \"mysql\": {}}",
                   "action: more than one executor key (exec and mysql)");
    expect_invalid("{\"env\": {}}", "action: expected an executor key such as \"exec\"");
    expect_invalid("[\"ls\"]", "action: expected an object, got an array");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_last_stdout_line_becomes_the_message),
        cmocka_unit_test(test_no_stdout_gives_an_empty_message),
        cmocka_unit_test(test_stdin_receives_the_text),
        cmocka_unit_test(test_child_not_reading_stdin_is_not_a_sigpipe),
        cmocka_unit_test(test_nonzero_exit_uses_the_last_stderr_line),
        cmocka_unit_test(test_exit_without_stderr_says_exited_with_status),
        cmocka_unit_test(test_killed_by_signal_is_128_plus_signal),
        cmocka_unit_test(test_long_line_is_cut_on_a_utf8_boundary),
        cmocka_unit_test(test_invalid_utf8_in_output_becomes_question_marks),
        cmocka_unit_test(test_missing_program_fails_with_enoent_and_leaves_no_child),
        cmocka_unit_test(test_program_without_exec_permission_fails_with_eacces),
        cmocka_unit_test(test_bad_cwd_fails_with_cannot_chdir),
        cmocka_unit_test(test_cwd_is_the_childs_working_directory),
        cmocka_unit_test(test_env_and_extra_env_are_visible_to_the_child),
        cmocka_unit_test(test_child_environment_is_the_allow_list_only),
        cmocka_unit_test(test_child_without_path_gets_a_default_path),
        cmocka_unit_test(test_dsn_without_password_keeps_everything_but_the_password),
        cmocka_unit_test(test_step_gets_the_dsn_password_only_in_a_0600_file_removed_after),
        cmocka_unit_test(test_without_a_dsn_both_variables_are_empty),
        cmocka_unit_test(test_dsn_directory_goes_whatever_the_step_did),
        cmocka_unit_test(test_child_has_no_descriptor_above_2),
        cmocka_unit_test(test_without_close_range_the_fd_directory_is_walked),
        cmocka_unit_test(test_without_close_range_or_proc_every_descriptor_is_closed),
        cmocka_unit_test(test_timeout_stops_the_child_after_timeout_s),
        cmocka_unit_test(test_poll_returning_true_stops_the_child),
        cmocka_unit_test(test_child_ignoring_sigterm_is_killed_after_the_grace),
        cmocka_unit_test(test_kill_grace_ms_is_honoured),
        cmocka_unit_test(test_backgrounded_grandchild_does_not_keep_the_run_waiting),
        cmocka_unit_test(test_ten_megabytes_of_output_do_not_deadlock),
        cmocka_unit_test(test_eight_threads_run_at_once),
        cmocka_unit_test(test_no_fd_is_left_after_200_runs),
        cmocka_unit_test(test_one_thread_runs_forty_children_at_once),
        cmocka_unit_test(test_loop_child_is_stopped_timed_out_and_killed_as_exec_run_does),
        cmocka_unit_test(test_unattached_child_is_read_by_the_tick),
        cmocka_unit_test(test_exec_start_reports_what_cannot_start),
        cmocka_unit_test(test_validate_accepts_well_formed_actions),
        cmocka_unit_test(test_validate_names_the_bad_field),
        cmocka_unit_test(test_validate_wants_exactly_one_known_executor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
