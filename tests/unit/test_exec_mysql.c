/* Unit tests: the mysql executor and its DSN and templates, against a real MariaDB that the test
 * starts with scripts/mariadb.sh (or the one ASYNCD_TEST_MYSQL_DSN names). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "exec/exec.h"
#include "exec/mysql_conn.h"

#include "mysql_fixture.h"

/* ---- helpers ---- */

static void exec_sql(MYSQL *m, const char *sql)
{
    if (mysql_query(m, sql) != 0)
        fail_msg("%s: %s", sql, mysql_error(m));
    MYSQL_RES *res = mysql_store_result(m);
    mysql_free_result(res);
}

/* Every row of sql's result as its columns joined by '|', one a line, sorted by the server. */
static char *rows_text(MYSQL *m, const char *sql)
{
    if (mysql_query(m, sql) != 0)
        fail_msg("%s: %s", sql, mysql_error(m));
    MYSQL_RES *res = mysql_store_result(m);
    assert_non_null(res);
    size_t cap = 256, len = 0;
    char *out = calloc(1, cap);
    MYSQL_ROW row;
    unsigned cols = mysql_num_fields(res);
    while ((row = mysql_fetch_row(res))) {
        unsigned long *lens = mysql_fetch_lengths(res);
        for (unsigned c = 0; c < cols; c++) {
            size_t need = len + lens[c] + 8;
            if (need > cap)
                out = realloc(out, cap = need * 2);
            memcpy(out + len, row[c] ? row[c] : "NULL", row[c] ? lens[c] : 4);
            len += row[c] ? lens[c] : 4;
            out[len++] = c + 1 < cols ? '|' : '\n';
        }
    }
    out[len] = '\0';
    mysql_free_result(res);
    return out;
}

static long long query_int(MYSQL *m, const char *sql)
{
    char *text = rows_text(m, sql);
    long long v = strtoll(text, NULL, 10);
    free(text);
    return v;
}

/* Runs the action (JSON text) against dsn. */
static int run_json(const char *action_text, const char *dsn, unsigned timeout_s,
                    const json_t *captured, const struct exec_control *ctl, struct exec_result *res)
{
    json_error_t je;
    json_t *action = json_loads(action_text, 0, &je);
    if (!action)
        fail_msg("bad test JSON: %s: %s", je.text, action_text);
    struct exec_job job = {
        .action = action, .timeout_s = timeout_s, .dsn = dsn, .captured = captured};
    struct err e = {0};
    int rc = exec_run(&job, ctl, res, &e);
    json_decref(action);
    return rc;
}

static void run_ok(const char *action_text, struct exec_result *res)
{
    assert_int_equal(run_json(action_text, g_mysql_dsn, 0, NULL, NULL, res), 0);
    if (res->outcome != EXEC_DONE)
        fail_msg("expected done, got %d: %s", res->outcome, res->message);
}

static char *render(MYSQL *m, const char *sql, const char *args_text, struct err *e)
{
    json_t *args = json_loads(args_text, JSON_ALLOW_NUL, NULL);
    assert_non_null(args);
    char *out = NULL;
    int rc = mysql_conn_render(m, sql, args, &out, e);
    json_decref(args);
    assert_true(rc == 0 ? out != NULL : out == NULL);
    return out;
}

static void expect_render(MYSQL *m, const char *sql, const char *args, const char *want)
{
    struct err e = {0};
    char *out = render(m, sql, args, &e);
    if (!out)
        fail_msg("render %s: %s", sql, e.msg);
    assert_string_equal(out, want);
    free(out);
}

static void expect_render_error(MYSQL *m, const char *sql, const char *args, const char *want)
{
    struct err e = {0};
    char *out = render(m, sql, args, &e);
    if (out)
        fail_msg("render %s: expected an error, got %s", sql, out);
    assert_int_equal(e.code, ERR_INVALID_PARAMETER_VALUE);
    if (!strstr(e.msg, want))
        fail_msg("render %s: expected \"%s\" in \"%s\"", sql, want, e.msg);
}

/* ---- DSN ---- */

static void test_dsn_percent_decodes_user_password_and_db(void **state)
{
    (void)state;
    struct mysql_dsn d;
    struct err e = {0};
    assert_int_equal(mysql_dsn_parse("mysql://u%40x:p%3Aw%2F%25@db-1.example:3307/my%20db", &d, &e),
                     0);
    assert_string_equal(d.user, "u@x");
    assert_string_equal(d.password, "p:w/%");
    assert_string_equal(d.host, "db-1.example");
    assert_int_equal(d.port, 3307);
    assert_string_equal(d.db, "my db");
    mysql_dsn_free(&d);
    assert_int_equal(mysql_dsn_parse("mysql://root:p@ss@127.0.0.1", &d, &e), 0);
    assert_string_equal(d.password, "p@ss");
    assert_int_equal(d.port, 3306);
    assert_null(d.db);
    mysql_dsn_free(&d);
}

static void test_dsn_accepts_ipv6_and_no_password(void **state)
{
    (void)state;
    struct mysql_dsn d;
    struct err e = {0};
    assert_int_equal(mysql_dsn_parse("mysql://admin@[::1]:3310/", &d, &e), 0);
    assert_string_equal(d.user, "admin");
    assert_null(d.password);
    assert_string_equal(d.host, "::1");
    assert_int_equal(d.port, 3310);
    assert_null(d.db);
    mysql_dsn_free(&d);
    assert_int_equal(mysql_dsn_parse("MYSQL://a:b@[fe80::1:2]", &d, &e), 0);
    assert_string_equal(d.host, "fe80::1:2");
    assert_int_equal(d.port, 3306);
    mysql_dsn_free(&d);
}

static void test_dsn_malformed_names_the_shape_and_never_the_password(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "http://u:s3cr3t@h:1",      "mysql://u:s3cr3t@",
        "mysql://:s3cr3t@h",        "mysql://u:s3cr3t@h:0",
        "mysql://u:s3cr3t@h:70000", "mysql://u:s3cr3t@h:12ab",
        "mysql://u:s3cr3t%zz@h",    "mysql://u:s3cr3t@[::1",
        "mysql://u:s3cr3t@h#x",     "mysql://u:s3%00cr3t@h",
        "mysql://u:s3cr3t@h h",     "mysql://u:s3cr3t@h:",
        "mysql://u:s3cr3t@[zz::1]", "mysql://u:s3cr3t@h/d%4",
        "mysql://s3cr3t",           "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct mysql_dsn d;
        struct err e = {0};
        MYSQL *m = NULL;
        assert_int_equal(mysql_dsn_parse(bad[i], &d, &e), ERR_INVALID_PARAMETER_VALUE);
        if (!strstr(e.msg, "mysql://USER:PASSWORD@HOST:PORT") || strstr(e.msg, "s3cr3t"))
            fail_msg("%s: %s", bad[i], e.msg);
        assert_null(d.user);
        assert_int_equal(mysql_conn_open(bad[i], 1, &m, &e), ERR_INVALID_PARAMETER_VALUE);
        assert_null(m);
    }
}

static void test_open_unreachable_server_is_service_unavailable(void **state)
{
    (void)state;
    char dsn[128], want[64];
    int port = free_port();
    snprintf(dsn, sizeof dsn, "mysql://u:s3cr3t@127.0.0.1:%d", port);
    snprintf(want, sizeof want, "cannot connect to MySQL at 127.0.0.1:%d: ", port);
    MYSQL *m = NULL;
    struct err e = {0};
    assert_int_equal(mysql_conn_open(dsn, 2, &m, &e), ERR_SERVICE_UNAVAILABLE);
    assert_null(m);
    if (!strstr(e.msg, want) || strstr(e.msg, "s3cr3t"))
        fail_msg("%s", e.msg);
}

static void test_open_wrong_password_is_refused_without_echo(void **state)
{
    (void)state;
    struct mysql_dsn d;
    struct err e = {0};
    assert_int_equal(mysql_dsn_parse(g_mysql_dsn, &d, &e), 0);
    char dsn[512];
    snprintf(dsn, sizeof dsn, "mysql://%s:wr0ngpass@127.0.0.1:%u", d.user, d.port);
    mysql_dsn_free(&d);
    MYSQL *m = NULL;
    assert_int_equal(mysql_conn_open(dsn, 5, &m, &e), ERR_SERVICE_UNAVAILABLE);
    if (!strstr(e.msg, "Access denied") || strstr(e.msg, "wr0ngpass"))
        fail_msg("%s", e.msg);
}

static void test_dsn_reads_ssl_options_by_the_mysql_clients_names(void **state)
{
    (void)state;
    struct mysql_dsn d;
    struct err e = {0};
    assert_int_equal(mysql_dsn_parse("mysql://u:p?w@h:3307/db?ssl-mode=verify_identity&ssl_ca=/"
                                     "etc/c%40a.pem&ssl-cert=/c.pem&ssl-key=/k.pem",
                                     &d, &e),
                     0);
    assert_string_equal(d.password, "p?w");
    assert_string_equal(d.db, "db");
    assert_int_equal(d.port, 3307);
    assert_int_equal(d.ssl_mode, MYSQL_DSN_SSL_VERIFY_IDENTITY);
    assert_string_equal(d.ssl_ca, "/etc/c@a.pem");
    assert_string_equal(d.ssl_cert, "/c.pem");
    assert_string_equal(d.ssl_key, "/k.pem");
    assert_null(d.ssl_capath);
    mysql_dsn_free(&d);
    static const struct {
        const char *dsn;
        enum mysql_dsn_ssl_mode mode;
    } modes[] = {
        {"mysql://u:p@h", MYSQL_DSN_SSL_UNSET},
        {"mysql://u:p@h?ssl-mode=DISABLED", MYSQL_DSN_SSL_DISABLED},
        {"mysql://u:p@h:1?ssl-mode=Preferred", MYSQL_DSN_SSL_PREFERRED},
        {"mysql://u:p@h/?ssl-mode=REQUIRED", MYSQL_DSN_SSL_REQUIRED},
        {"mysql://u:p@h?ssl-ca=/ca.pem", MYSQL_DSN_SSL_VERIFY_CA},
        {"mysql://u:p@h?ssl-capath=/etc/ssl/certs", MYSQL_DSN_SSL_VERIFY_CA},
        {"mysql://u:p@h?ssl-cert=/c.pem&ssl-key=/k.pem", MYSQL_DSN_SSL_REQUIRED},
        {"mysql://u:p@[::1]:5?ssl-mode=REQUIRED&ssl-ca=/ca.pem", MYSQL_DSN_SSL_REQUIRED},
    };
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        if (mysql_dsn_parse(modes[i].dsn, &d, &e) < 0)
            fail_msg("%s: %s", modes[i].dsn, e.msg);
        if (d.ssl_mode != modes[i].mode)
            fail_msg("%s: got %s", modes[i].dsn, mysql_dsn_ssl_mode_name(d.ssl_mode));
        mysql_dsn_free(&d);
    }
}

static void test_dsn_refuses_unknown_and_contradictory_ssl_options(void **state)
{
    (void)state;
    static const struct {
        const char *dsn, *want;
    } bad[] = {
        {"mysql://u:s3cr3t@h?sslmode=REQUIRED", "unknown option \"sslmode\" (expected ssl-mode, "},
        {"mysql://u:s3cr3t@h?ssl-mode=REQUIRED&tls=1", "unknown option \"tls\""},
        {"mysql://u:s3cr3t@h?ssl-mode=ON", "ssl-mode: expected DISABLED, PREFERRED, REQUIRED"},
        {"mysql://u:s3cr3t@h?ssl-mode=REQUIRED&ssl-mode=DISABLED", "ssl-mode given twice"},
        {"mysql://u:s3cr3t@h?ssl-mode=VERIFY_CA", "ssl-mode=VERIFY_CA needs ssl-ca"},
        {"mysql://u:s3cr3t@h?ssl-mode=VERIFY_IDENTITY", "VERIFY_IDENTITY needs ssl-ca"},
        {"mysql://u:s3cr3t@h?ssl-mode=DISABLED&ssl-ca=/ca.pem", "ssl-mode=DISABLED contradicts"},
        {"mysql://u:s3cr3t@h?ssl-cert=/c.pem", "ssl-cert needs ssl-key too"},
        {"mysql://u:s3cr3t@h?ssl-key=/k.pem", "ssl-key needs ssl-cert too"},
        {"mysql://u:s3cr3t@h?ssl-ca=ca.pem", "ssl-ca: expected an absolute path"},
        {"mysql://u:s3cr3t@h?ssl-ca=", "empty value"},
        {"mysql://u:s3cr3t@h?ssl-ca", "expected NAME=VALUE"},
        {"mysql://u:s3cr3t@h?", "nothing after '?'"},
        {"mysql://u:s3cr3t@h?ssl-ca=/a%zz", "bad %-escape"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct mysql_dsn d;
        struct err e = {0};
        MYSQL *m = NULL;
        assert_int_equal(mysql_dsn_parse(bad[i].dsn, &d, &e), ERR_INVALID_PARAMETER_VALUE);
        if (!strstr(e.msg, bad[i].want) || strstr(e.msg, "s3cr3t"))
            fail_msg("%s: %s", bad[i].dsn, e.msg);
        assert_null(d.user);
        assert_int_equal(mysql_conn_open(bad[i].dsn, 1, &m, &e), ERR_INVALID_PARAMETER_VALUE);
        assert_null(m);
    }
}

/* The test server has no TLS: REQUIRED must not quietly fall back to a plain session (which
 * libmariadb would do), PREFERRED and DISABLED must connect. */
static void test_tls_required_refuses_a_server_without_tls(void **state)
{
    (void)state;
    char dsn[640];
    MYSQL *m = NULL;
    struct err e = {0};
    snprintf(dsn, sizeof dsn, "%s?ssl-mode=REQUIRED", g_mysql_dsn);
    assert_int_equal(mysql_conn_open(dsn, 5, &m, &e), ERR_SERVICE_UNAVAILABLE);
    assert_null(m);
    if (!strstr(e.msg, "with ssl-mode=REQUIRED: ssl-mode=REQUIRED, but the server does not offer "
                       "TLS"))
        fail_msg("%s", e.msg);
    static const char *const modes[] = {"PREFERRED", "DISABLED"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(dsn, sizeof dsn, "%s?ssl-mode=%s", g_mysql_dsn, modes[i]);
        if (mysql_conn_open(dsn, 5, &m, &e) < 0)
            fail_msg("%s: %s", modes[i], e.msg);
        assert_null(mysql_get_ssl_cipher(m));
        mysql_close(m);
    }
}

/* ---- templates ---- */

static void test_render_each_placeholder_kind(void **state)
{
    (void)state;
    MYSQL *m = mysql_admin();
    expect_render(m, "SELECT {0:str}", "[\"it's \\\\ \\\"x\\\"\"]",
                  "SELECT 'it\\'s \\\\ \\\"x\\\"'");
    expect_render(m, "SELECT {0:str}", "[42]", "SELECT '42'");
    expect_render(m, "DROP TABLE {0:ident}.{1:ident}", "[\"db\", \"a`b\"]",
                  "DROP TABLE `db`.`a``b`");
    expect_render(m, "LIMIT {0:int}, {1:int}", "[42, \"-17\"]", "LIMIT 42, -17");
    expect_render(m, "SELECT 1-{0:int}", "[\"-1\"]", "SELECT 1- -1");
    expect_render(m, "SET GLOBAL x = {0:val}", "[\"200\"]", "SET GLOBAL x = 200");
    expect_render(m, "SET GLOBAL x = {0:val}", "[\"1.5\"]", "SET GLOBAL x = 1.5");
    expect_render(m, "SET GLOBAL x = {0:val}", "[7]", "SET GLOBAL x = 7");
    expect_render(m, "SET GLOBAL x = {0:val}", "[\"ON\"]", "SET GLOBAL x = 'ON'");
    expect_render(m, "SET GLOBAL x = {0:val}", "[\"1e5\"]", "SET GLOBAL x = '1e5'");
    expect_render(m, "GRANT {0:list_priv} ON *.*",
                  "[[\"process\", \" show   databases \", \"REPLICATION "
                  "CLIENT\"]]",
                  "GRANT PROCESS, SHOW DATABASES, REPLICATION CLIENT ON *.*");
    expect_render(m, "SELECT '{{0:str}}' {{}}", "[]", "SELECT '{0:str}' {}");
    char ident64[65];
    memset(ident64, 'x', 64);
    ident64[64] = '\0';
    char args[128], want[128];
    snprintf(args, sizeof args, "[\"%s\"]", ident64);
    snprintf(want, sizeof want, "USE `%s`", ident64);
    expect_render(m, "USE {0:ident}", args, want);
    expect_render(m, "USE {0:ident}", "[\"\\u540d\\u5b57\"]", "USE `\xe5\x90\x8d\xe5\xad\x97`");
    mysql_close(m);
}

static void test_render_refuses_what_does_not_fit(void **state)
{
    (void)state;
    MYSQL *m = mysql_admin();
    expect_render_error(m, "USE {0:ident}", "[\"\"]", "{0:ident}: an identifier must be 1 to 64");
    expect_render_error(m, "USE {0:ident}",
                        "[\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"]",
                        "{0:ident}: an identifier must be 1 to 64");
    expect_render_error(m, "USE {0:ident}", "[\"a\\u0000b\"]", "{0:ident}");
    expect_render_error(m, "USE {0:ident}", "[5]", "{0:ident}: expected a string");
    expect_render_error(m, "SELECT {0:str}", "[\"a\\u0000b\"]", "{0:str}: contains a NUL");
    expect_render_error(m, "SELECT {0:str}", "[null]", "{0:str}: expected a string or an integer");
    expect_render_error(m, "SELECT {0:str}", "[[\"a\"]]", "{0:str}: expected a string");
    expect_render_error(m, "LIMIT {0:int}", "[\"1; DROP TABLE x\"]",
                        "{0:int}: expected an integer");
    expect_render_error(m, "LIMIT {0:int}", "[\"1.5\"]", "{0:int}: expected an integer");
    expect_render_error(m, "LIMIT {0:int}", "[\"-\"]", "{0:int}: expected an integer");
    expect_render_error(m, "LIMIT {0:int}", "[1.5]", "{0:int}: expected an integer, got a number");
    expect_render_error(m, "SET x = {0:val}", "[true]", "{0:val}: expected a string or an integer");
    expect_render_error(m, "GRANT {0:list_priv}", "[[\"SELECT; DROP USER x\"]]",
                        "{0:list_priv}: item 0 is not a privilege name");
    expect_render_error(m, "GRANT {0:list_priv}", "[[\"PROCESS\", 1]]",
                        "{0:list_priv}: item 1 is not a privilege name");
    expect_render_error(m, "GRANT {0:list_priv}", "[[]]", "{0:list_priv}: expected a non-empty");
    expect_render_error(m, "GRANT {0:list_priv}", "[\"SELECT\"]",
                        "{0:list_priv}: expected a non-empty");
    expect_render_error(m, "SELECT {1:str}", "[\"a\"]", "{1:str}: args has 1 item");
    expect_render_error(m, "SELECT {0}", "[\"a\"]", "{0}: a placeholder in SQL needs a kind");
    expect_render_error(m, "SELECT {0:sql}", "[\"a\"]", "{0:sql}: unknown kind");
    expect_render_error(m, "SELECT {x}", "[]", "{x}: not a placeholder");
    expect_render_error(m, "SELECT {}", "[]", "{}: not a placeholder");
    expect_render_error(m, "SELECT {captured}", "[]", "{captured}: there is no captured value");
    expect_render_error(m, "SELECT }", "[]", "a lone '}'");
    expect_render_error(m, "SELECT {0:str", "[\"a\"]", "a '{' without a closing '}'");
    expect_render_error(m, "SELECT {{0:str}", "[\"a\"]", "a lone '}'");
    mysql_close(m);
}

/* A template repeating a long value thousands of times is refused at 16 MiB, the same with and
 * without a connection handle and for the text a person reads (the fuzzer once rendered 700 MB). */
static void test_render_is_bounded(void **state)
{
    (void)state;
    MYSQL *m = mysql_admin();
    size_t reps = 1000, vlen = 22000;
    char *sql = malloc(reps * 8 + 16), *args = malloc(vlen + 8);
    strcpy(sql, "SELECT ");
    for (size_t i = 0; i < reps; i++)
        strcat(sql, "{0:str},");
    strcat(sql, "1");
    args[0] = '[';
    args[1] = '"';
    memset(args + 2, 'x', vlen);
    strcpy(args + 2 + vlen, "\"]");
    expect_render_error(m, sql, args, "would pass 16 MiB");
    json_t *a = json_loads(args, 0, NULL);
    struct err e = {0};
    char *out = NULL;
    assert_int_equal(mysql_conn_render_captured(NULL, sql, a, NULL, &out, &e),
                     ERR_INVALID_PARAMETER_VALUE);
    assert_null(out);
    assert_non_null(strstr(e.msg, "would pass 16 MiB"));
    assert_int_equal(mysql_conn_render_text(sql, a, NULL, NULL, &out, &e),
                     ERR_INVALID_PARAMETER_VALUE);
    assert_null(out);
    sql[reps / 2 * 8 + 7] = '\0'; /* 500 of them, about 22 MB at most: still too much */
    expect_render_error(m, sql, args, "would pass 16 MiB");
    sql[100 * 8 + 7] = '\0'; /* 100, 4.4 MB at most: fine */
    out = render(m, sql, args, &e);
    assert_non_null(out);
    free(out);
    json_decref(a);
    free(sql);
    free(args);
    mysql_close(m);
}

static void test_render_captured_value(void **state)
{
    (void)state;
    MYSQL *m = mysql_admin();
    json_t *args = json_array();
    json_t *cap = json_pack("{s:s}", "value", "151");
    json_t *cap_null = json_pack("{s:n}", "value");
    char *out;
    struct err e = {0};
    assert_int_equal(mysql_conn_render_captured(m, "SET GLOBAL x = {captured:val}, y = {captured}",
                                                args, cap, &out, &e),
                     0);
    assert_string_equal(out, "SET GLOBAL x = 151, y = '151'");
    free(out);
    assert_int_equal(mysql_conn_render_captured(m, "SET x = {captured:val}, y = {captured}", args,
                                                cap_null, &out, &e),
                     0);
    assert_string_equal(out, "SET x = NULL, y = NULL");
    free(out);
    assert_int_equal(
        mysql_conn_render_captured(m, "USE {captured:ident}", args, cap_null, &out, &e),
        ERR_INVALID_PARAMETER_VALUE);
    assert_non_null(strstr(e.msg, "{captured:ident}: expected a string"));
    assert_null(out);
    json_decref(args);
    json_decref(cap);
    json_decref(cap_null);
    mysql_close(m);
}

static void test_render_text_shows_raw_args_but_hides_passwords(void **state)
{
    (void)state;
    json_t *args = json_loads("[\"bob\", \"s3cr3t\", [\"SELECT\", \"INSERT\"], 5]", 0, NULL);
    bool secret[4] = {false, false, false, false};
    mysql_conn_secret_args("CREATE USER {0:str}@'%' IDENTIFIED BY {1:str}", secret, 4);
    assert_false(secret[0]);
    assert_true(secret[1]);
    mysql_conn_secret_args("SET PASSWORD FOR x = PASSWORD ( {3:val} )", secret, 4);
    assert_true(secret[3]);
    char *out;
    struct err e = {0};
    assert_int_equal(mysql_conn_render_text("user {0} pw {1:str} privs {2} n {3} {{ok}}", args,
                                            NULL, secret, &out, &e),
                     0);
    assert_string_equal(out, "user bob pw *** privs SELECT, INSERT n *** {ok}");
    free(out);
    json_decref(args);
}

/* ---- injection: whatever the args hold, the server gets exactly that name ---- */

static const char *const nasty[] = {
    "'; DROP TABLE canary.t; --",
    "x' OR '1'='1",
    "a`b``c",
    "`; DROP DATABASE canary; --",
    "back\\slash",
    "ends\\",
    "\\'",
    "semi;colon",
    "new\nline\r\nx",
    "quote\"d",
    "/* c */ --",
    "tab\tx",
    "\xe5\x90\x8d\xe5\xad\x97",
    "{0:str}",
};

static void test_injection_attempts_create_exactly_the_literal_names(void **state)
{
    (void)state;
    MYSQL *m = mysql_admin();
    exec_sql(m, "CREATE DATABASE IF NOT EXISTS canary");
    exec_sql(m, "CREATE TABLE IF NOT EXISTS canary.t (id INT)");
    char *dbs_before = rows_text(m, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA "
                                    "ORDER BY SCHEMA_NAME");
    char *users_before = rows_text(m, "SELECT User, Host FROM mysql.user ORDER BY User, Host");
    char *privs_before = rows_text(m, "SELECT Db, User, Host, Select_priv, Show_view_priv, "
                                      "Insert_priv, Drop_priv FROM mysql.db");
    long long tables_before = query_int(m, "SELECT COUNT(*) FROM information_schema.TABLES");
    for (size_t i = 0; i < sizeof nasty / sizeof nasty[0]; i++) {
        for (int mode = 0; mode < 2; mode++) { /* default sql_mode, then NO_BACKSLASH_ESCAPES */
            json_t *action = json_pack(
                "{s:{s:[s,s,s,s], s:[s,s,[s,s],s], s:s}}", "mysql", "statements",
                mode ? "SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES'" : "DO 0",
                "CREATE DATABASE {0:ident}", "CREATE USER {1:str}@{3:str} IDENTIFIED BY {1:str}",
                "GRANT {2:priv_database} ON {0:ident}.* TO {1:str}@{3:str}", "args", nasty[i],
                nasty[i], "select", "show view", "%", "message", "made {0}");
            /* GRANT reads \ and % in db.* as an escape and a wildcard: the guard refuses those
             * names there (test_reserved.c), so they are only created */
            bool wild = strpbrk(nasty[i], "\\%") != NULL;
            if (wild)
                json_array_remove(json_object_get(json_object_get(action, "mysql"), "statements"),
                                  3);
            struct exec_job job = {.action = action, .dsn = g_mysql_dsn};
            struct exec_result res;
            struct err e = {0};
            assert_int_equal(exec_run(&job, NULL, &res, &e), 0);
            if (res.outcome != EXEC_DONE)
                fail_msg("name %zu mode %d: %s", i, mode, res.message);
            assert_true(strncmp(res.message, "made ", 5) == 0);
            /* exactly one new schema and one new user, with exactly these names */
            char *dbs = rows_text(m, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA "
                                     "ORDER BY SCHEMA_NAME");
            char *users = rows_text(m, "SELECT User, Host FROM mysql.user ORDER BY User, Host");
            char *privs = rows_text(m, "SELECT Db, User, Host, Select_priv, Show_view_priv, "
                                       "Insert_priv, Drop_priv FROM mysql.db");
            size_t want_len = strlen(nasty[i]);
            char line[256];
            snprintf(line, sizeof line, "%s\n", nasty[i]);
            assert_int_equal(strlen(dbs), strlen(dbs_before) + want_len + 1);
            assert_non_null(strstr(dbs, line));
            snprintf(line, sizeof line, "%s|%%\n", nasty[i]);
            assert_int_equal(strlen(users), strlen(users_before) + strlen(line));
            assert_non_null(strstr(users, line));
            snprintf(line, sizeof line, "%s|%s|%%|Y|Y|N|N\n", nasty[i], nasty[i]);
            assert_int_equal(strlen(privs), strlen(privs_before) + (wild ? 0 : strlen(line)));
            assert_true(wild || strstr(privs, line));
            /* the password went in literally too: log in with it */
            MYSQL *as_user = NULL;
            struct mysql_dsn d;
            assert_int_equal(mysql_dsn_parse(g_mysql_dsn, &d, &e), 0);
            char dsn[1024];
            int n = snprintf(dsn, sizeof dsn, "mysql://");
            for (int part = 0; part < 2; part++) {
                for (const unsigned char *c = (const unsigned char *)nasty[i]; *c; c++)
                    n += snprintf(dsn + n, sizeof dsn - (size_t)n, "%%%02X", *c);
                n += snprintf(dsn + n, sizeof dsn - (size_t)n, part ? "@" : ":");
            }
            snprintf(dsn + n, sizeof dsn - (size_t)n, "127.0.0.1:%u", d.port);
            mysql_dsn_free(&d);
            if (mysql_conn_open(dsn, 5, &as_user, &e) < 0)
                fail_msg("name %zu: cannot log in as the new user: %s", i, e.msg);
            mysql_close(as_user);
            /* clean up with the executor too */
            json_t *drop = json_pack("{s:{s:[s,s], s:[s,s]}}", "mysql", "statements",
                                     "DROP DATABASE {0:ident}", "DROP USER {0:str}@{1:str}", "args",
                                     nasty[i], "%");
            struct exec_job job2 = {.action = drop, .dsn = g_mysql_dsn};
            assert_int_equal(exec_run(&job2, NULL, &res, &e), 0);
            if (res.outcome != EXEC_DONE)
                fail_msg("drop %zu: %s", i, res.message);
            char *dbs_after = rows_text(m, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA "
                                           "ORDER BY SCHEMA_NAME");
            char *users_after = rows_text(m, "SELECT User, Host FROM mysql.user ORDER BY User, "
                                             "Host");
            assert_string_equal(dbs_after, dbs_before);
            assert_string_equal(users_after, users_before);
            free(dbs_after);
            free(users_after);
            free(dbs);
            free(users);
            free(privs);
            json_decref(drop);
            json_decref(action);
        }
    }
    assert_int_equal(query_int(m, "SELECT COUNT(*) FROM information_schema.TABLES"), tables_before);
    assert_int_equal(query_int(m, "SELECT COUNT(*) FROM canary.t"), 0);
    exec_sql(m, "DROP DATABASE canary");
    free(dbs_before);
    free(users_before);
    free(privs_before);
    mysql_close(m);
}

/* ---- outcomes ---- */

static void test_statements_run_in_order_and_results_are_consumed(void **state)
{
    (void)state;
    struct exec_result res;
    run_ok("{\"mysql\": {\"statements\": [\"CREATE DATABASE IF NOT EXISTS t_order\", "
           "\"SELECT 1 UNION SELECT 2\", \"CREATE TABLE t_order.t (v INT)\", "
           "\"INSERT INTO t_order.t VALUES ({0:int}), ({1:val})\", \"SELECT * FROM t_order.t\", "
           "\"DROP DATABASE t_order\"], \"args\": [3, \"4\"]}}",
           &res);
    assert_string_equal(res.message, "ran 6 statements");
    assert_int_equal(res.exit_code, 0);
    assert_null(res.output);
    run_ok("{\"mysql\": {\"sql\": \"DO {0:int}\", \"args\": [1], \"message\": \"did {0}\"}}", &res);
    assert_string_equal(res.message, "did 1");
}

static void test_failing_statement_reports_mysql_errno_and_sqlstate(void **state)
{
    (void)state;
    struct exec_result res;
    assert_int_equal(run_json("{\"mysql\": {\"statements\": [\"DO 1\", "
                              "\"DROP USER {0:str}@'%'\", \"CREATE DATABASE never_made\"], "
                              "\"args\": [\"asyncd_nobody\"]}}",
                              g_mysql_dsn, 0, NULL, NULL, &res),
                     0);
    assert_int_equal(res.outcome, EXEC_FAILED);
    assert_int_equal(res.exit_code, 1396);
    assert_string_equal(res.message, "MySQL error 1396 (HY000): Operation DROP USER failed for "
                                     "'asyncd_nobody'@'%'");
    MYSQL *m = mysql_admin();
    assert_int_equal(query_int(m, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE "
                                  "SCHEMA_NAME = 'never_made'"),
                     0);
    mysql_close(m);
}

static void test_ignore_errors_treats_listed_errnos_as_success(void **state)
{
    (void)state;
    struct exec_result res;
    run_ok("{\"mysql\": {\"statements\": [\"DROP USER {0:str}@'%'\", \"DO 1\"], "
           "\"args\": [\"asyncd_nobody\"], \"ignore_errors\": [1064, 1396]}}",
           &res);
    assert_string_equal(res.message, "ran 2 statements; ignored MySQL error 1396");
}

static void test_syntax_error_message_hides_the_password(void **state)
{
    (void)state;
    struct exec_result res;
    assert_int_equal(run_json("{\"mysql\": {\"sql\": \"CREATE USER {0:str} IDENTIFIED BY {1:str}, "
                              "oops {1:str}\", \"args\": [\"eve\", \"it's-s3cr3t\"]}}",
                              g_mysql_dsn, 0, NULL, NULL, &res),
                     0);
    assert_int_equal(res.outcome, EXEC_FAILED);
    assert_int_equal(res.exit_code, 1064);
    assert_true(strncmp(res.message, "MySQL error 1064 (42000): ", 26) == 0);
    if (strstr(res.message, "s3cr3t"))
        fail_msg("password in %s", res.message);
    if (!strstr(res.message, "***"))
        fail_msg("%s", res.message);
}

static void test_capture_then_undo_restores_max_connections(void **state)
{
    (void)state;
    MYSQL *m = mysql_admin();
    long long before = query_int(m, "SELECT @@GLOBAL.max_connections");
    long long target = before == 200 ? 201 : 200;
    char action[512];
    snprintf(action, sizeof action,
             "{\"mysql\": {\"capture\": \"SELECT @@GLOBAL.{0:ident}\", "
             "\"sql\": \"SET GLOBAL {0:ident} = {1:val}\", \"args\": [\"max_connections\", "
             "\"%lld\"], \"message\": \"{0} was {captured}, now {1}\"}}",
             target);
    struct exec_result res;
    run_ok(action, &res);
    char want[128];
    snprintf(want, sizeof want, "max_connections was %lld, now %lld", before, target);
    assert_string_equal(res.message, want);
    assert_non_null(res.output);
    snprintf(want, sizeof want, "%lld", before);
    assert_string_equal(json_string_value(json_object_get(res.output, "value")), want);
    assert_int_equal(query_int(m, "SELECT @@GLOBAL.max_connections"), target);
    json_t *captured = res.output;
    struct exec_result undo;
    assert_int_equal(run_json("{\"mysql\": {\"sql\": \"SET GLOBAL {0:ident} = {captured:val}\", "
                              "\"args\": [\"max_connections\"]}}",
                              g_mysql_dsn, 0, captured, NULL, &undo),
                     0);
    assert_int_equal(undo.outcome, EXEC_DONE);
    assert_string_equal(undo.message, "ran 1 statement");
    assert_null(undo.output);
    assert_int_equal(query_int(m, "SELECT @@GLOBAL.max_connections"), before);
    json_decref(captured);
    /* an undo whose do captured nothing fails clearly instead of guessing */
    assert_int_equal(run_json("{\"mysql\": {\"sql\": \"SET GLOBAL {0:ident} = {captured:val}\", "
                              "\"args\": [\"max_connections\"]}}",
                              g_mysql_dsn, 0, NULL, NULL, &undo),
                     0);
    assert_int_equal(undo.outcome, EXEC_FAILED);
    assert_non_null(strstr(undo.message, "mysql.sql: {captured:val}: there is no captured value"));
    mysql_close(m);
}

static void test_capture_must_return_one_value(void **state)
{
    (void)state;
    struct exec_result res;
    assert_int_equal(run_json("{\"mysql\": {\"capture\": \"SELECT 1, 2\", \"sql\": \"DO 1\"}}",
                              g_mysql_dsn, 0, NULL, NULL, &res),
                     0);
    assert_int_equal(res.outcome, EXEC_FAILED);
    assert_string_equal(res.message, "capture: expected one value, got 1 row of 2 columns");
    assert_null(res.output);
    run_ok("{\"mysql\": {\"capture\": \"SELECT NULL\", \"sql\": \"DO 1\"}}", &res);
    assert_true(json_is_null(json_object_get(res.output, "value")));
    json_decref(res.output);
    run_ok("{\"mysql\": {\"capture\": \"SELECT 1 FROM DUAL WHERE 0\", \"sql\": \"DO 1\"}}", &res);
    assert_true(json_is_null(json_object_get(res.output, "value")));
    json_decref(res.output);
}

struct stopper {
    int64_t start;
    int calls;
};

static bool stop_after_300ms(void *ctx)
{
    struct stopper *s = ctx;
    s->calls++;
    return fixture_now_ms() - s->start >= 300;
}

static long long running_sleeps(MYSQL *m)
{
    return query_int(m, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE "
                        "INFO LIKE 'SELECT SLEEP%' AND ID <> CONNECTION_ID()");
}

static void test_stop_sends_kill_query(void **state)
{
    (void)state;
    struct stopper s = {fixture_now_ms(), 0};
    struct exec_control ctl = {stop_after_300ms, &s, 0};
    struct exec_result res;
    assert_int_equal(run_json("{\"mysql\": {\"statements\": [\"SELECT SLEEP(30)\", "
                              "\"CREATE DATABASE not_after_stop\"]}}",
                              g_mysql_dsn, 0, NULL, &ctl, &res),
                     0);
    int64_t took = fixture_now_ms() - s.start;
    assert_int_equal(res.outcome, EXEC_STOPPED);
    assert_string_equal(res.message, "stopped by request");
    assert_true(took >= 300 && took < 1500);
    assert_true(s.calls >= 2);
    MYSQL *m = mysql_admin();
    assert_int_equal(running_sleeps(m), 0);
    assert_int_equal(query_int(m, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE "
                                  "SCHEMA_NAME = 'not_after_stop'"),
                     0);
    mysql_close(m);
}

static void test_timeout_sends_kill_query(void **state)
{
    (void)state;
    struct exec_result res;
    int64_t t0 = fixture_now_ms();
    assert_int_equal(
        run_json("{\"mysql\": {\"sql\": \"SELECT SLEEP(30)\"}}", g_mysql_dsn, 1, NULL, NULL, &res),
        0);
    int64_t took = fixture_now_ms() - t0;
    assert_int_equal(res.outcome, EXEC_TIMEOUT);
    assert_string_equal(res.message, "timed out after 1 s");
    assert_true(took >= 1000 && took < 2500);
    MYSQL *m = mysql_admin();
    assert_int_equal(running_sleeps(m), 0);
    mysql_close(m);
}

/* ---- a mysql step on the caller's event loop (exec_start, exec_child_*) ---- */

/* Runs steps[0..n) to their end on one epoll set, as the engine's step loop does: each event
 * handled, a 100 ms tick asking ctl->poll, the due times kept. attach = false leaves them
 * unwatched (read by every tick). res[i] gets steps[i]'s result. */
static void loop_run(struct exec_child **steps, int n, bool attach, struct exec_result *res)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    assert_true(ep >= 0);
    for (int i = 0; attach && i < n; i++)
        assert_int_equal(exec_child_attach(steps[i], ep, &steps[i]), 0);
    int left = n;
    int64_t next_tick = fixture_now_ms() + 100;
    while (left > 0) {
        int64_t due = next_tick;
        for (int i = 0; i < n; i++)
            if (steps[i] && exec_child_due_ms(steps[i]) < due)
                due = exec_child_due_ms(steps[i]);
        int64_t wait = due - fixture_now_ms();
        struct epoll_event ev[64];
        int k = epoll_wait(ep, ev, 64, wait > 0 ? (int)wait : 0);
        for (int j = 0; j < k; j++) {
            struct exec_child **slot = ev[j].data.ptr;
            if (*slot && exec_child_on_event(*slot)) {
                exec_child_finish(*slot, &res[slot - steps]);
                *slot = NULL;
                left--;
            }
        }
        int64_t now = fixture_now_ms();
        bool tick = now >= next_tick;
        if (tick)
            next_tick = now + 100;
        for (int i = 0; i < n; i++)
            if (steps[i] && (tick || exec_child_due_ms(steps[i]) <= now) &&
                exec_child_tick(steps[i], tick)) {
                exec_child_finish(steps[i], &res[i]);
                steps[i] = NULL;
                left--;
            }
    }
    close(ep);
}

static struct exec_child *start_json(const char *action_text, unsigned timeout_s,
                                     const struct exec_control *ctl)
{
    json_t *action = json_loads(action_text, 0, NULL);
    assert_non_null(action);
    struct exec_job job = {.action = action, .timeout_s = timeout_s, .dsn = g_mysql_dsn};
    struct exec_result res;
    struct err e = {0};
    struct exec_child *c = exec_start(&job, ctl, &res, &e);
    json_decref(action); /* exec_start keeps nothing of the job */
    if (!c)
        fail_msg("exec_start: %s", res.message);
    return c;
}

static void test_one_thread_runs_mysql_steps_at_once(void **state)
{
    (void)state;
    enum { SLEEPERS = 6, N = SLEEPERS + 4 };
    struct stopper stop = {fixture_now_ms(), 0};
    struct exec_control ctl = {stop_after_300ms, &stop, 0};
    struct exec_child *steps[N];
    struct exec_result res[N];
    int64_t t0 = fixture_now_ms();
    for (int i = 0; i < SLEEPERS; i++)
        steps[i] = start_json("{\"mysql\": {\"sql\": \"SELECT SLEEP(1)\", \"message\": \"slept\"}}",
                              0, NULL);
    steps[SLEEPERS] = start_json("{\"mysql\": {\"capture\": \"SELECT 41 + 1\", \"sql\": \"DO 1\", "
                                 "\"message\": \"got {captured}\"}}",
                                 0, NULL);
    steps[SLEEPERS + 1] = start_json(
        "{\"mysql\": {\"sql\": \"DROP USER {0:str}@'%'\", \"args\": [\"asyncd_nobody\"]}}", 0,
        NULL);
    steps[SLEEPERS + 2] = start_json("{\"mysql\": {\"statements\": [\"SELECT SLEEP(30)\", "
                                     "\"CREATE DATABASE not_after_loop_stop\"]}}",
                                     0, &ctl);
    steps[SLEEPERS + 3] = start_json("{\"mysql\": {\"sql\": \"SELECT SLEEP(30)\"}}", 1, NULL);
    loop_run(steps, N, true, res);
    int64_t took = fixture_now_ms() - t0;
    if (took < 1000 || took > 2500)
        fail_msg("%d steps of 1 s on one loop took %lld ms", N, (long long)took);
    for (int i = 0; i < SLEEPERS; i++) {
        assert_int_equal(res[i].outcome, EXEC_DONE);
        assert_string_equal(res[i].message, "slept");
    }
    assert_int_equal(res[SLEEPERS].outcome, EXEC_DONE);
    assert_string_equal(res[SLEEPERS].message, "got 42");
    assert_string_equal(json_string_value(json_object_get(res[SLEEPERS].output, "value")), "42");
    json_decref(res[SLEEPERS].output);
    assert_int_equal(res[SLEEPERS + 1].outcome, EXEC_FAILED);
    assert_int_equal(res[SLEEPERS + 1].exit_code, 1396);
    assert_int_equal(res[SLEEPERS + 2].outcome, EXEC_STOPPED);
    assert_string_equal(res[SLEEPERS + 2].message, "stopped by request");
    assert_int_equal(res[SLEEPERS + 3].outcome, EXEC_TIMEOUT);
    assert_string_equal(res[SLEEPERS + 3].message, "timed out after 1 s");
    MYSQL *m = mysql_admin();
    assert_int_equal(running_sleeps(m), 0);
    assert_int_equal(query_int(m, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE "
                                  "SCHEMA_NAME = 'not_after_loop_stop'"),
                     0);
    mysql_close(m);
}

static void test_unattached_mysql_step_is_moved_on_by_the_tick(void **state)
{
    (void)state;
    struct exec_child *steps[2] = {
        start_json("{\"mysql\": {\"statements\": [\"DO 1\", \"SELECT 1 UNION SELECT 2\"]}}", 0,
                   NULL),
        start_json("{\"mysql\": {\"sql\": \"SELECT SLEEP(30)\"}}", 1, NULL),
    };
    struct exec_result res[2];
    loop_run(steps, 2, false, res);
    assert_int_equal(res[0].outcome, EXEC_DONE);
    assert_string_equal(res[0].message, "ran 2 statements");
    assert_int_equal(res[1].outcome, EXEC_TIMEOUT);
    MYSQL *m = mysql_admin();
    assert_int_equal(running_sleeps(m), 0);
    mysql_close(m);
}

static void test_missing_or_foreign_dsn_fails(void **state)
{
    (void)state;
    struct exec_result res;
    assert_int_equal(run_json("{\"mysql\": {\"sql\": \"DO 1\"}}", NULL, 0, NULL, NULL, &res), 0);
    assert_int_equal(res.outcome, EXEC_FAILED);
    assert_string_equal(res.message, "this step needs an instance with a mysql:// DSN");
    assert_int_equal(
        run_json("{\"mysql\": {\"sql\": \"DO 1\"}}", "mongodb://a:b@h", 0, NULL, NULL, &res), 0);
    assert_string_equal(res.message, "this step needs an instance with a mysql:// DSN");
}

static void test_unreachable_server_fails_with_a_clear_message(void **state)
{
    (void)state;
    char dsn[128], want[96];
    int port = free_port();
    snprintf(dsn, sizeof dsn, "mysql://root:s3cr3t@127.0.0.1:%d", port);
    snprintf(want, sizeof want, "cannot connect to MySQL at 127.0.0.1:%d: ", port);
    struct exec_result res;
    assert_int_equal(run_json("{\"mysql\": {\"sql\": \"DO 1\"}}", dsn, 0, NULL, NULL, &res), 0);
    assert_int_equal(res.outcome, EXEC_FAILED);
    assert_int_equal(res.exit_code, -1);
    if (strncmp(res.message, want, strlen(want)) != 0 || strstr(res.message, "s3cr3t"))
        fail_msg("%s", res.message);
}

/* ---- validation ---- */

static void expect_invalid(const char *text, const char *want)
{
    json_t *action = json_loads(text, JSON_ALLOW_NUL, NULL);
    assert_non_null(action);
    struct err e = {0};
    assert_int_equal(exec_validate(action, &e), ERR_INVALID_PARAMETER_VALUE);
    if (strcmp(e.msg, want) != 0 && !strstr(e.msg, want))
        fail_msg("%s: expected \"%s\", got \"%s\"", text, want, e.msg);
    json_decref(action);
}

static void test_validate_accepts_well_formed_actions(void **state)
{
    (void)state;
    static const char *const good[] = {
        "{\"mysql\": {\"sql\": \"DO 1\"}}",
        "{\"mysql\": {\"statements\": [\"CREATE USER {0:str}@{1:str} IDENTIFIED BY {2:str}\", "
        "\"GRANT {3:priv_database} ON {4:ident}.* TO {0:str}@{1:str}\"], \"args\": [\"bob\", "
        "\"%\", "
        "\"pw\", [\"SELECT\"], \"db\"], \"message\": \"created {0}\", \"ignore_errors\": [1396]}}",
        "{\"mysql\": {\"capture\": \"SELECT @@GLOBAL.{0:ident}\", \"sql\": \"SET GLOBAL "
        "{0:ident} = {captured:val}\", \"args\": [\"max_connections\"]}}",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        json_t *action = json_loads(good[i], 0, NULL);
        struct err e = {0};
        if (exec_validate(action, &e) != 0)
            fail_msg("%s: %s", good[i], e.msg);
        json_decref(action);
    }
}

static void test_validate_names_the_bad_field(void **state)
{
    (void)state;
    expect_invalid("{\"mysql\": \"DO 1\"}", "mysql: expected an object, got a string");
    expect_invalid("{\"mysql\": {}}", "mysql: expected \"sql\" (a string) or \"statements\"");
    expect_invalid("{\"mysql\": {\"sql\": \"DO 1\", \"statements\": [\"DO 2\"]}}",
                   "mysql: expected \"sql\" or \"statements\", not both");
    expect_invalid("{\"mysql\": {\"sql\": \"DO 1\"}, \"env\": {}}",
                   "action: a mysql action has only the \"mysql\" key");
    expect_invalid("{\"mysql\": {\"sql\": \"DO 1\", \"db\": \"x\"}}", "mysql.db: unknown key");
    expect_invalid("{\"mysql\": {\"sql\": 5}}", "mysql.sql: expected a string, got a number");
    expect_invalid("{\"mysql\": {\"sql\": \"\"}}", "mysql.sql: expected SQL, got \"\"");
    expect_invalid("{\"mysql\": {\"sql\": \"DO 1\\u0000\"}}", "mysql.sql: contains a NUL");
    expect_invalid("{\"mysql\": {\"statements\": []}}",
                   "mysql.statements: expected a non-empty array of strings, got an empty array");
    expect_invalid("{\"mysql\": {\"statements\": [\"DO 1\", 2]}}",
                   "mysql.statements[1]: expected a string, got a number");
    expect_invalid("{\"mysql\": {\"sql\": \"DO 1\", \"args\": {}}}",
                   "mysql.args: expected an array, got an object");
    expect_invalid("{\"mysql\": {\"sql\": \"DO 1\", \"args\": [1.5]}}",
                   "mysql.args[0]: expected a string, an integer, an object or an array of "
                   "strings, got a number");
    expect_invalid("{\"mysql\": {\"sql\": \"DO 1\", \"args\": [\"a\", [\"b\", 1]]}}",
                   "mysql.args[1][1]: expected a string, got a number");
    expect_invalid("{\"mysql\": {\"sql\": \"DO 1\", \"message\": 5}}",
                   "mysql.message: expected a string, got a number");
    expect_invalid("{\"mysql\": {\"sql\": \"DO 1\", \"capture\": [\"x\"]}}",
                   "mysql.capture: expected a string, got an array");
    expect_invalid("{\"mysql\": {\"sql\": \"DO 1\", \"ignore_errors\": [\"1396\"]}}",
                   "mysql.ignore_errors[0]: expected a MySQL error number");
    expect_invalid("{\"mysql\": {\"sql\": \"DO 1\", \"ignore_errors\": 1396}}",
                   "mysql.ignore_errors: expected an array");
    expect_invalid("{\"mysql\": {\"sql\": \"SELECT {1:str}\", \"args\": [\"a\"]}}",
                   "mysql.sql: {1:str}: args has 1 item");
    expect_invalid("{\"mysql\": {\"sql\": \"USE {0:ident}\", \"args\": [5]}}",
                   "mysql.sql: {0:ident}: expected a string (an identifier), got a number");
    expect_invalid("{\"mysql\": {\"sql\": \"SELECT {0}\", \"args\": [\"a\"]}}",
                   "mysql.sql: {0}: a placeholder in SQL needs a kind");
    expect_invalid("{\"mysql\": {\"statements\": [\"DO 1\", \"SELECT {0:raw}\"], \"args\": [1]}}",
                   "mysql.statements[1]: {0:raw}: unknown kind");
    expect_invalid("{\"mysql\": {\"sql\": \"DO 1\", \"message\": \"{2}\"}}",
                   "mysql.message: {2}: args has 0 items");
    expect_invalid("{\"mysql\": {\"sql\": \"DO 1\", \"capture\": \"SELECT }\"}}",
                   "mysql.capture: a lone '}'");
    expect_invalid("{\"mysql\": {\"sql\": \"GRANT {0:list_priv} ON *.* TO x\", "
                   "\"args\": [[\"DROP; x\"]]}}",
                   "mysql.sql: {0:list_priv}: item 0 is not a privilege name");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dsn_percent_decodes_user_password_and_db),
        cmocka_unit_test(test_dsn_accepts_ipv6_and_no_password),
        cmocka_unit_test(test_dsn_malformed_names_the_shape_and_never_the_password),
        cmocka_unit_test(test_open_unreachable_server_is_service_unavailable),
        cmocka_unit_test(test_open_wrong_password_is_refused_without_echo),
        cmocka_unit_test(test_dsn_reads_ssl_options_by_the_mysql_clients_names),
        cmocka_unit_test(test_dsn_refuses_unknown_and_contradictory_ssl_options),
        cmocka_unit_test(test_tls_required_refuses_a_server_without_tls),
        cmocka_unit_test(test_render_each_placeholder_kind),
        cmocka_unit_test(test_render_refuses_what_does_not_fit),
        cmocka_unit_test(test_render_is_bounded),
        cmocka_unit_test(test_render_captured_value),
        cmocka_unit_test(test_render_text_shows_raw_args_but_hides_passwords),
        cmocka_unit_test(test_injection_attempts_create_exactly_the_literal_names),
        cmocka_unit_test(test_statements_run_in_order_and_results_are_consumed),
        cmocka_unit_test(test_failing_statement_reports_mysql_errno_and_sqlstate),
        cmocka_unit_test(test_ignore_errors_treats_listed_errnos_as_success),
        cmocka_unit_test(test_syntax_error_message_hides_the_password),
        cmocka_unit_test(test_capture_then_undo_restores_max_connections),
        cmocka_unit_test(test_capture_must_return_one_value),
        cmocka_unit_test(test_stop_sends_kill_query),
        cmocka_unit_test(test_timeout_sends_kill_query),
        cmocka_unit_test(test_one_thread_runs_mysql_steps_at_once),
        cmocka_unit_test(test_unattached_mysql_step_is_moved_on_by_the_tick),
        cmocka_unit_test(test_missing_or_foreign_dsn_fails),
        cmocka_unit_test(test_unreachable_server_fails_with_a_clear_message),
        cmocka_unit_test(test_validate_accepts_well_formed_actions),
        cmocka_unit_test(test_validate_names_the_bad_field),
    };
    if (mysql_skipped("test_exec_mysql"))
        return 0;
    return cmocka_run_group_tests(tests, mysql_group_setup, mysql_group_teardown);
}
