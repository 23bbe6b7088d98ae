/* Unit tests' PostgreSQL fixture: a throw-away cluster started through scripts/postgres.sh (or the
 * server ASYNCD_TEST_PG_URL names), and a fresh database per test. Included by the store tests. */
#ifndef ASYNCD_PG_FIXTURE_H
#define ASYNCD_PG_FIXTURE_H

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"

#define PG_SCRIPT "postgres.sh"

static char g_pg_dir[64];  /* the cluster's directory when this run started it, else "" */
static char g_pg_url[512]; /* a database of the server, to create the tests' ones from */

static inline const char *pg_script(void) { return fixture_script(PG_SCRIPT); }

/* True (said on stdout) when ASYNCD_TEST_PG=0 leaves PostgreSQL out of this run. */
static inline bool pg_skipped(const char *test) { return fixture_skipped("ASYNCD_TEST_PG", test); }

/* The cluster for a group of tests: ASYNCD_TEST_PG_URL's server, or one started now. */
static inline int pg_group_setup(void **state)
{
    (void)state;
    return fixture_server_start("ASYNCD_TEST_PG_URL", PG_SCRIPT, "postgres://", g_pg_dir,
                                sizeof g_pg_dir, g_pg_url, sizeof g_pg_url);
}

/* Stops the cluster pg_group_setup started, if it did; a failure to stop is only said. */
static inline int pg_group_teardown(void **state)
{
    (void)state;
    fixture_server_stop(PG_SCRIPT, g_pg_dir);
    return 0;
}

/* Runs one SQL command on the server's g_pg_url database; 0 when it worked. */
static inline int pg_admin(const char *sql)
{
    PGconn *c = PQconnectdb(g_pg_url);
    PGresult *r = PQexec(c, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        fprintf(stderr, "%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    return ok ? 0 : -1;
}

/* Creates a fresh database; *url (heap) names it, with opts ("" or "?pool=2...") appended. */
static inline int pg_fresh_db(char name[32], const char *opts, char **url)
{
    static int serial;
    snprintf(name, 32, "t%d_%d", (int)getpid(), ++serial);
    char sql[96];
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
    if (pg_admin(sql) != 0)
        return -1;
    const char *host = strstr(g_pg_url, "://");
    host = host ? host + 3 : g_pg_url;
    size_t base = (size_t)(host - g_pg_url) + strcspn(host, "/?");
    const char *query = strchr(g_pg_url, '?');
    size_t n = base + strlen(name) + strlen(opts) + (query ? strlen(query) : 0) + 2;
    *url = malloc(n);
    snprintf(*url, n, "%.*s/%s%s%s", (int)base, g_pg_url, name, query ? query : "",
             query && *opts == '?' ? "&" : "");
    if (query && *opts == '?')
        strcat(*url, opts + 1);
    else
        strcat(*url, opts);
    return 0;
}

static inline void pg_drop_db(const char *name)
{
    char sql[96];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
    pg_admin(sql);
}

#endif
