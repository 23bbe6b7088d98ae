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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
