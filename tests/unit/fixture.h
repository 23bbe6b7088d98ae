/* Unit tests' shared fixture pieces: temp directories, free ports, and a throw-away database
 * server started by one of scripts/ (pg_fixture.h and mysql_fixture.h build on these). */
#ifndef ASYNCD_FIXTURE_H
#define ASYNCD_FIXTURE_H

#include <arpa/inet.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Milliseconds on the monotonic clock, for deadlines and timings. */
static inline int64_t fixture_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A port on 127.0.0.1 that nothing listens on right now; -1 when none could be had. */
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

/* Makes a fresh directory /tmp/NAME.XXXXXX and writes its path to dir; 0, or -1 (also when the
 * path does not fit in size; dir is then not a directory of ours). */
static inline int fixture_mkdtemp(char *dir, size_t size, const char *name)
{
    int n = snprintf(dir, size, "/tmp/%s.XXXXXX", name);
    return n > 0 && (size_t)n < size && mkdtemp(dir) ? 0 : -1;
}

static inline int fixture_rm_entry(const char *path, const struct stat *sb, int flag,
                                   struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

/* Removes dir and everything below it (links are removed, not followed). */
static inline void fixture_rm_tree(const char *dir)
{
    nftw(dir, fixture_rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* True when the environment variable env is "0": `make check` sets ASYNCD_TEST_PG=0 or
 * ASYNCD_TEST_MYSQL=0 when it has no server to give; then test says so on stdout. */
static inline bool fixture_skipped(const char *env, const char *test)
{
    const char *want = getenv(env);
    if (!want || strcmp(want, "0") != 0)
        return false;
    printf("%s: skipped (%s=0)\n", test, env);
    return true;
}

/* The path of scripts/NAME, below $ASYNCD_SRC_DIR or the current directory; static storage. */
static inline const char *fixture_script(const char *name)
{
    static char path[512];
    const char *src = getenv("ASYNCD_SRC_DIR");
    snprintf(path, sizeof path, "%s/scripts/%s", src ? src : ".", name);
    return path;
}

/* The server of the environment variable env when it names one: url is a copy and dir "".
 * Otherwise starts one: `bash scripts/SCRIPT start DIR PORT` in a new directory DIR
 * (/tmp/asyncd-test-NAME.XXXXXX, written to dir) on a free port, url being the line of its
 * output that starts with scheme. 0, or -1 with the failing command on stderr. */
static inline int fixture_server_start(const char *env, const char *script, const char *scheme,
                                       char *dir, size_t dir_size, char *url, size_t url_size)
{
    const char *given = getenv(env);
    dir[0] = '\0';
    if (given && *given) {
        snprintf(url, url_size, "%s", given);
        return 0;
    }
    char name[32];
    snprintf(name, sizeof name, "asyncd-test-%.*s", (int)strcspn(script, "."), script);
    if (fixture_mkdtemp(dir, dir_size, name) != 0)
        return -1;
    char cmd[1024], line[512];
    snprintf(cmd, sizeof cmd, "bash %s start %s %d", fixture_script(script), dir, free_port());
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    url[0] = '\0';
    while (fgets(line, sizeof line, p))
        if (strncmp(line, scheme, strlen(scheme)) == 0)
            snprintf(url, url_size, "%.*s", (int)strcspn(line, "\n"), line);
    if (pclose(p) != 0 || !url[0]) {
        fprintf(stderr, "`%s` failed\n", cmd);
        return -1;
    }
    return 0;
}

/* Stops the server fixture_server_start started in dir (nothing when dir is "") and removes
 * dir; 0, or -1 when the script failed (said on stderr). */
static inline int fixture_server_stop(const char *script, const char *dir)
{
    if (!dir[0])
        return 0;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "bash %s stop %s", fixture_script(script), dir);
    int rc = system(cmd);
    if (rc != 0)
        fprintf(stderr, "`%s` failed\n", cmd);
    fixture_rm_tree(dir);
    return rc == 0 ? 0 : -1;
}

#endif
