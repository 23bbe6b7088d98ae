/* Unit tests' MariaDB fixture: a throw-away server started through scripts/mariadb.sh (or the one
 * ASYNCD_TEST_MYSQL_DSN names) for a group of tests, and admin connections to it. */
#ifndef ASYNCD_MYSQL_FIXTURE_H
#define ASYNCD_MYSQL_FIXTURE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "exec/mysql_conn.h"
#include "fixture.h"

#define MYSQL_SCRIPT "mariadb.sh"

static char g_mysql_dsn[512]; /* the server's DSN, with its administrator account */
static char g_mysql_dir[256]; /* the server's directory when this run started it, else "" */

/* True (said on stdout) when ASYNCD_TEST_MYSQL=0 and no ASYNCD_TEST_MYSQL_DSN: no server here. */
static inline bool mysql_skipped(const char *test)
{
    return !getenv("ASYNCD_TEST_MYSQL_DSN") && fixture_skipped("ASYNCD_TEST_MYSQL", test);
}

/* The server for a group of tests: ASYNCD_TEST_MYSQL_DSN's, or one started now (its start time
 * on stderr). */
static inline int mysql_group_setup(void **state)
{
    (void)state;
    int64_t t0 = fixture_now_ms();
    if (fixture_server_start("ASYNCD_TEST_MYSQL_DSN", MYSQL_SCRIPT, "mysql://", g_mysql_dir,
                             sizeof g_mysql_dir, g_mysql_dsn, sizeof g_mysql_dsn) != 0)
        return -1;
    if (g_mysql_dir[0])
        fprintf(stderr, "MariaDB started in %lld ms\n", (long long)(fixture_now_ms() - t0));
    return 0;
}

/* Stops the server mysql_group_setup started, if it did; -1 when that failed. */
static inline int mysql_group_teardown(void **state)
{
    (void)state;
    if (!g_mysql_dir[0])
        return 0;
    int64_t t0 = fixture_now_ms();
    int rc = fixture_server_stop(MYSQL_SCRIPT, g_mysql_dir);
    fprintf(stderr, "MariaDB stopped in %lld ms\n", (long long)(fixture_now_ms() - t0));
    return rc;
}

/* A connection to the server as its administrator (the caller closes it); fails the test when
 * there is none. */
static inline MYSQL *mysql_admin(void)
{
    MYSQL *m;
    struct err e = {0};
    if (mysql_conn_open(g_mysql_dsn, 10, &m, &e) < 0)
        fail_msg("cannot connect to the test server: %s", e.msg);
    return m;
}

#endif
