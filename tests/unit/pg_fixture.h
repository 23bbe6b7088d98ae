/* Unit tests' PostgreSQL fixture: a throw-away cluster started through scripts/postgres.sh (or the
 * server ASYNCD_TEST_PG_URL names), and a fresh database per test. Included by the store tests. */
#ifndef ASYNCD_PG_FIXTURE_H
#define ASYNCD_PG_FIXTURE_H

#include <arpa/inet.h>
#include <ftw.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_pg_dir[64];  /* the cluster's directory when this run started it */
static char g_pg_url[512]; /* a database of the server, to create the tests' ones from */

static inline int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static inline const char *pg_script(void)
{
    static char path[512];
    const char *src = getenv("ASYNCD_SRC_DIR");
    snprintf(path, sizeof path, "%s/scripts/postgres.sh", src ? src : ".");
    return path;
}

static inline int pg_group_setup(void **state)
{
    (void)state;
    const char *env = getenv("ASYNCD_TEST_PG_URL");
    if (env && *env) {
        snprintf(g_pg_url, sizeof g_pg_url, "%s", env);
        return 0;
    }
    snprintf(g_pg_dir, sizeof g_pg_dir, "/tmp/asyncd-test-pg-XXXXXX");
    if (!mkdtemp(g_pg_dir))
        return -1;
    char cmd[1024], line[512];
    snprintf(cmd, sizeof cmd, "bash %s start %s %d", pg_script(), g_pg_dir, free_port());
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    g_pg_url[0] = '\0';
    while (fgets(line, sizeof line, p))
        if (strncmp(line, "postgres://", 11) == 0)
            snprintf(g_pg_url, sizeof g_pg_url, "%.*s", (int)strcspn(line, "\n"), line);
    if (pclose(p) != 0 || !g_pg_url[0]) {
        fprintf(stderr, "`%s` failed\n", cmd);
        return -1;
    }
    return 0;
}

static inline int rm_any(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static inline int pg_group_teardown(void **state)
{
    (void)state;
    if (g_pg_dir[0]) {
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "bash %s stop %s", pg_script(), g_pg_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "`%s` failed\n", cmd);
        nftw(g_pg_dir, rm_any, 8, FTW_DEPTH | FTW_PHYS);
    }
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
