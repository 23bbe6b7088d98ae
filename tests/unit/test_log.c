/* Unit tests: the log's lines as they reach stderr, write by write. stderr is a SOCK_SEQPACKET
 * socket here, so each read returns exactly what one write(2) wrote: the tests see the writes,
 * not only the bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"

#define TS_LEN 24 /* "2026-11-23T04:00:00.000Z" */

struct capture {
    int saved_stderr;
    int reader;
};

static int capture_start(void **state)
{
    static struct capture c;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) != 0)
        return -1;
    int big = 1 << 20;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    c.saved_stderr = dup(STDERR_FILENO);
    dup2(sv[0], STDERR_FILENO);
    close(sv[0]);
    c.reader = sv[1];
    log_set_level(LOG_INFO);
    log_set_format_name("text");
    *state = &c;
    return 0;
}

static int capture_stop(void **state)
{
    struct capture *c = *state;
    dup2(c->saved_stderr, STDERR_FILENO);
    close(c->saved_stderr);
    close(c->reader);
    log_set_level(LOG_INFO);
    log_set_format_name("text");
    return 0;
}

/* The next write's bytes (NUL-terminated) and its length; -1 when nothing more was written. */
static ssize_t next_write(void **state, char *buf, size_t cap)
{
    struct capture *c = *state;
    ssize_t n = recv(c->reader, buf, cap - 1, MSG_DONTWAIT);
    if (n < 0) {
        assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
        return -1;
    }
    buf[n] = '\0';
    return n;
}

static void assert_no_write(void **state)
{
    char buf[8192];
    assert_int_equal(next_write(state, buf, sizeof buf), -1);
}

/* A text line: the ts, then " LEVEL message\n". */
static void assert_text_line(const char *line, size_t n, const char *rest)
{
    assert_true(n > TS_LEN);
    assert_int_equal(line[4], '-');
    assert_int_equal(line[TS_LEN - 1], 'Z');
    assert_int_equal(n, TS_LEN + strlen(rest));
    assert_memory_equal(line + TS_LEN, rest, strlen(rest));
}

static void test_log_a_text_line_is_one_write(void **state)
{
    log_info("hello %d", 5);
    char buf[8192];
    ssize_t n = next_write(state, buf, sizeof buf);
    assert_text_line(buf, (size_t)n, " info hello 5\n");
    log_warn("careful");
    n = next_write(state, buf, sizeof buf);
    assert_text_line(buf, (size_t)n, " warn careful\n");
    assert_no_write(state);
}

static void test_log_level_filter_drops_lines(void **state)
{
    log_set_level(LOG_WARN);
    log_info("not shown");
    log_debug("not shown");
    assert_no_write(state);
    log_error("shown");
    char buf[8192];
    ssize_t n = next_write(state, buf, sizeof buf);
    assert_text_line(buf, (size_t)n, " error shown\n");
    assert_no_write(state);
}

/* The json line of a transition: its bytes after the ts, pinned. */
static const char json_rest[] =
    "\",\"level\":\"info\",\"msg\":\"task t-1 product=cdb from=initial to=running "
    "message=\\\"a \\\\ b\\\"\",\"task\":\"t-1\",\"product\":\"cdb\",\"from\":\"initial\","
    "\"to\":\"running\",\"message\":\"a \\\\ b\"}\n";

static void log_json_transition(void)
{
    log_info("task t-1 product=cdb from=initial to=running message=\"%s\"", "a \\ b");
}

static void assert_json_transition(const char *buf, ssize_t n)
{
    assert_true(n > 7 + TS_LEN);
    assert_memory_equal(buf, "{\"ts\":\"", 7);
    assert_int_equal((size_t)n, 7 + TS_LEN + strlen(json_rest));
    assert_memory_equal(buf + 7 + TS_LEN, json_rest, strlen(json_rest));
}

static void test_log_json_line_has_each_word_as_a_field(void **state)
{
    assert_int_equal(log_set_format_name("json"), 0);
    log_json_transition();
    char buf[8192];
    assert_json_transition(buf, next_write(state, buf, sizeof buf));
    assert_no_write(state);
}

/* A json line of escaped control characters is longer than PIPE_BUF: still one write. */
static void log_long_json_line(void)
{
    char msg[1500];
    memset(msg, '\x01', sizeof msg - 1);
    msg[sizeof msg - 1] = '\0';
    log_info("%s", msg);
}

static void test_log_a_line_over_pipe_buf_is_one_write(void **state)
{
    assert_int_equal(log_set_format_name("json"), 0);
    log_long_json_line();
    char buf[8192];
    ssize_t n = next_write(state, buf, sizeof buf);
    assert_true(n > 4096);
    assert_memory_equal(buf + n - 3, "\"}\n", 3);
    assert_null(memchr(buf, '\n', (size_t)n - 1));
    assert_no_write(state);
}

/* Held lines: none written until the release, then all in one write, in order. */
static void test_log_held_lines_come_out_together_at_release(void **state)
{
    log_hold();
    log_info("one");
    log_info("two %s", "2");
    log_debug("filtered: the level is info");
    assert_no_write(state);
    log_release();
    char buf[8192];
    ssize_t n = next_write(state, buf, sizeof buf);
    assert_int_equal(n, 2 * TS_LEN + strlen(" info one\n") + strlen(" info two 2\n"));
    assert_text_line(buf, TS_LEN + strlen(" info one\n"), " info one\n");
    assert_text_line(buf + TS_LEN + strlen(" info one\n"), TS_LEN + strlen(" info two 2\n"),
                     " info two 2\n");
    assert_no_write(state);
}

/* Many held lines: writes of whole lines, at most PIPE_BUF each, that add up to every line in
 * order. */
static void test_log_held_lines_are_written_in_whole_lines_of_at_most_4096_bytes(void **state)
{
    enum { LINES = 200 };
    log_hold();
    for (int i = 0; i < LINES; i++)
        log_info("line %03d %s", i, "..............................................");
    log_release();
    char buf[8192];
    int line = 0, writes = 0;
    ssize_t n;
    while ((n = next_write(state, buf, sizeof buf)) >= 0) {
        writes++;
        assert_true(n <= 4096);
        assert_int_equal(buf[n - 1], '\n');
        for (char *at = buf; at < buf + n; line++) {
            char *end = memchr(at, '\n', (size_t)(buf + n - at));
            assert_non_null(end);
            char want[128];
            snprintf(want, sizeof want, " info line %03d %s\n", line,
                     "..............................................");
            assert_text_line(at, (size_t)(end + 1 - at), want);
            at = end + 1;
        }
    }
    assert_int_equal(line, LINES);
    /* 86-byte lines: 47 to a write (4042 bytes; a 48th would pass 4096), so 5 writes */
    assert_int_equal(writes, (LINES + 46) / 47);
}

/* A line too long for one atomic write is written alone, after the lines held before it. */
static void test_log_a_held_line_over_4096_bytes_is_written_alone(void **state)
{
    assert_int_equal(log_set_format_name("json"), 0);
    log_hold();
    log_json_transition();
    log_long_json_line();
    log_json_transition();
    log_release();
    char buf[8192];
    assert_json_transition(buf, next_write(state, buf, sizeof buf));
    ssize_t n = next_write(state, buf, sizeof buf);
    assert_true(n > 4096);
    assert_null(memchr(buf, '\n', (size_t)n - 1));
    assert_json_transition(buf, next_write(state, buf, sizeof buf));
    assert_no_write(state);
}

static void test_log_release_with_nothing_held_writes_nothing(void **state)
{
    log_hold();
    log_release();
    log_release(); /* an unmatched release is harmless */
    assert_no_write(state);
    log_set_level(LOG_ERROR);
    log_hold();
    log_info("filtered");
    log_warn("filtered");
    log_release();
    assert_no_write(state);
}

/* A warning (or an error) does not wait for the release: it goes out at once, after the lines
 * held before it and in the same write. */
static void test_log_a_held_warning_is_written_at_once_with_the_lines_before_it(void **state)
{
    log_hold();
    log_info("before");
    log_warn("now");
    char buf[8192];
    ssize_t n = next_write(state, buf, sizeof buf);
    size_t first = TS_LEN + strlen(" info before\n");
    assert_int_equal(n, first + TS_LEN + strlen(" warn now\n"));
    assert_text_line(buf, first, " info before\n");
    assert_text_line(buf + first, (size_t)n - first, " warn now\n");
    log_info("after");
    assert_no_write(state);
    log_release();
    n = next_write(state, buf, sizeof buf);
    assert_text_line(buf, (size_t)n, " info after\n");
}

/* Holds nest: only the outermost release writes. */
static void test_log_only_the_outermost_release_writes(void **state)
{
    log_hold();
    log_hold();
    log_info("inner");
    log_release();
    assert_no_write(state);
    log_release();
    char buf[8192];
    ssize_t n = next_write(state, buf, sizeof buf);
    assert_text_line(buf, (size_t)n, " info inner\n");
}

/* A held json line is the same bytes as one written at once. */
static void test_log_a_held_json_line_is_unchanged(void **state)
{
    assert_int_equal(log_set_format_name("json"), 0);
    log_hold();
    log_json_transition();
    log_json_transition();
    log_release();
    char buf[8192];
    ssize_t n = next_write(state, buf, sizeof buf);
    assert_int_equal(n % 2, 0);
    assert_json_transition(buf, n / 2);
    assert_json_transition(buf + n / 2, n / 2);
    assert_no_write(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_log_a_text_line_is_one_write, capture_start,
                                        capture_stop),
        cmocka_unit_test_setup_teardown(test_log_level_filter_drops_lines, capture_start,
                                        capture_stop),
        cmocka_unit_test_setup_teardown(test_log_json_line_has_each_word_as_a_field, capture_start,
                                        capture_stop),
        cmocka_unit_test_setup_teardown(test_log_a_line_over_pipe_buf_is_one_write, capture_start,
                                        capture_stop),
        cmocka_unit_test_setup_teardown(test_log_held_lines_come_out_together_at_release,
                                        capture_start, capture_stop),
        cmocka_unit_test_setup_teardown(
            test_log_held_lines_are_written_in_whole_lines_of_at_most_4096_bytes, capture_start,
            capture_stop),
        cmocka_unit_test_setup_teardown(test_log_a_held_line_over_4096_bytes_is_written_alone,
                                        capture_start, capture_stop),
        cmocka_unit_test_setup_teardown(test_log_release_with_nothing_held_writes_nothing,
                                        capture_start, capture_stop),
        cmocka_unit_test_setup_teardown(
            test_log_a_held_warning_is_written_at_once_with_the_lines_before_it, capture_start,
            capture_stop),
        cmocka_unit_test_setup_teardown(test_log_only_the_outermost_release_writes, capture_start,
                                        capture_stop),
        cmocka_unit_test_setup_teardown(test_log_a_held_json_line_is_unchanged, capture_start,
                                        capture_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
