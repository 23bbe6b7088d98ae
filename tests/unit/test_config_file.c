/* Unit tests for daemon/config_file and options: --config lines through the flag table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/config_file.h"
#include "daemon/options.h"

static char *write_temp(const char *text)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/asyncd-conf-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

struct seen {
    char lines[8][96];
    int n;
};

static int record(void *ctx, const char *name, const char *value, struct err *e)
{
    (void)e;
    struct seen *s = ctx;
    snprintf(s->lines[s->n++], sizeof s->lines[0], "%s|%s", name, value ? value : "(none)");
    return 0;
}

static void test_config_lines_take_every_form(void **state)
{
    (void)state;
    char *path = write_temp("# comment\n\n  listen = 127.0.0.1:1  \nworkers 3\r\nmax-body=2048\n"
                            "   # indented comment\nflag\nempty =\nrate-limit *=0");
    struct seen s = {0};
    char *text;
    struct err e = {0};
    assert_int_equal(config_file_read(path, record, &s, &text, &e), 0);
    free(text);
    unlink(path);
    assert_int_equal(s.n, 6);
    assert_string_equal(s.lines[0], "listen|127.0.0.1:1");
    assert_string_equal(s.lines[1], "workers|3");
    assert_string_equal(s.lines[2], "max-body|2048");
    assert_string_equal(s.lines[3], "flag|(none)");
    assert_string_equal(s.lines[4], "empty|");
    assert_string_equal(s.lines[5], "rate-limit|*=0");
}

static void test_dashes_are_refused_with_file_and_line(void **state)
{
    (void)state;
    char *path = write_temp("workers 1\n--workers 2\n");
    struct seen s = {0};
    char *text, want[128];
    struct err e = {0};
    assert_int_not_equal(config_file_read(path, record, &s, &text, &e), 0);
    free(text);
    snprintf(want, sizeof want, "%s:2: --workers: write flag names without --", path);
    unlink(path);
    assert_string_equal(e.msg, want);
}

static void test_command_line_wins_over_file(void **state)
{
    (void)state;
    char *path = write_temp("workers = 7\nlease-s = 9\nrate-limit = cdb:*=5\n");
    char conf[64];
    snprintf(conf, sizeof conf, "%s", path);
    char *argv[] = {"asyncd", "--workers", "2", "--config", conf, "--rate-limit", "*=0", NULL};
    struct options o;
    struct err e = {0};
    assert_int_equal(options_parse(7, argv, &o, &e), 0);
    unlink(conf);
    assert_int_equal(o.workers, 2);
    assert_int_equal(o.lease_s, 9);
    assert_int_equal(o.n_rate_limits, 2); /* the file's first, so the command line's wins */
    assert_string_equal(o.rate_limits[0], "cdb:*=5");
    assert_string_equal(o.rate_limits[1], "*=0");
    options_free(&o);
}

static void test_options_diff_sorts_live_from_restart(void **state)
{
    (void)state;
    char *a[] = {"asyncd", "--log-level", "info", "--workers", "2", NULL};
    char *b[] = {"asyncd", "--log-level", "debug", "--workers", "3", "--rate-limit", "*=0", NULL};
    struct options x, y;
    struct err e = {0};
    assert_int_equal(options_parse(5, a, &x, &e), 0);
    assert_int_equal(options_parse(7, b, &y, &e), 0);
    char live[128], restart[128];
    options_diff(&x, &y, live, restart, sizeof live);
    assert_string_equal(live, "log-level");
    assert_string_equal(restart, "workers rate-limit");
    options_diff(&x, &x, live, restart, sizeof live);
    assert_string_equal(live, "");
    assert_string_equal(restart, "");
    options_free(&x);
    options_free(&y);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_lines_take_every_form),
        cmocka_unit_test(test_dashes_are_refused_with_file_and_line),
        cmocka_unit_test(test_command_line_wins_over_file),
        cmocka_unit_test(test_options_diff_sorts_live_from_restart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
