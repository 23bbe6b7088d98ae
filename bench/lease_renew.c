/* What one lease renewal round costs: N running tasks of one node, renewed by node (one
 * store_node_renew call, the lease keeper's way since issue 11) and per task (N store_task_renew
 * calls, the old way), on the embedded SQLite store and on PostgreSQL.
 *
 * Usage: lease_renew [POSTGRES_URL] [N...]  (default N: 1 100 10000)
 *   Without a URL: SQLite, a fresh file per N in a temp dir. With one: that database, which this
 *   program empties of tasks (give it a throw-away one).
 * Prints one line per (N, mode): RESULT STORE N MODE rounds= ms_per_round= renewed= WRITES
 *   WRITES: store writes per round: commits (each one fsync: SQLite's WAL with synchronous=FULL,
 *   PostgreSQL's WAL at commit), as counted from the calls, beside what was written: SQLite the
 *   write(2) calls this process made (/proc/self/io syscw), PostgreSQL the WAL bytes the server
 *   wrote (pg_current_wal_lsn).
 * Build: make build/bench/lease_renew */
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/xalloc.h"
#include "store/store.h"

#define NODE     "node-a"
#define LEASE_MS 15000

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

_Noreturn static void die(const char *what, const char *why)
{
    fprintf(stderr, "lease_renew: %s: %s\n", what, why);
    exit(1);
}

/* The write(2) calls this process made so far (Linux /proc/self/io). */
static long long syscw(void)
{
    FILE *f = fopen("/proc/self/io", "r");
    char line[128];
    long long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "syscw: %lld", &v) == 1)
            break;
    if (f)
        fclose(f);
    return v;
}

/* Makes a template task through the store, then n-1 copies of it by SQL (n claims through the
 * store would take minutes on SQLite), all running under a live lease of NODE, lease_no 1. */
static const char *const clone_sqlite =
    "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < ?2)"
    " INSERT INTO tasks (id, product, region, uin, type, on_failure, state, created_ms, lease_node,"
    " lease_expires_ms, lease_no) SELECT t.id || '-' || k.i, product, region, uin, type,"
    " on_failure, 'running', created_ms + k.i, lease_node, lease_expires_ms, 1"
    " FROM tasks t, k WHERE t.id = ?1";
static const char *const clone_pg =
    "INSERT INTO tasks (id, product, region, uin, type, on_failure, state, created_ms, lease_node,"
    " lease_expires_ms, lease_no) SELECT t.id || '-' || k.i, product, region, uin, type,"
    " on_failure, 'running', created_ms + k.i, lease_node, lease_expires_ms, 1"
    " FROM tasks t, generate_series(1, $2::int - 1) k(i) WHERE t.id = $1::text";

static void make_template(struct store *s, char id[STORE_ID_MAX])
{
    json_t *steps = json_pack("[{s:s, s:{s:[s]}}]", "name", "step", "do", "exec", "/bin/true");
    struct task_new t = {.product = "cdb",
                         .region = "ap-guangzhou",
                         .uin = "100000000001",
                         .type = "CreateAccounts",
                         .steps = steps,
                         .node = NODE};
    struct err e = {0};
    if (store_task_create(s, &t, id, &e) != 0)
        die("task_create", e.msg);
    json_decref(steps);
    struct task_claim c;
    if (store_task_claim(s, NODE, LEASE_MS * 100, &c, &e) != 0 || c.lease_no != 1)
        die("task_claim", e.msg);
}

static void clone_sqlite_tasks(const char *path, const char *id, int n)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    if (sqlite3_open(path, &db) != SQLITE_OK ||
        sqlite3_prepare_v2(db, clone_sqlite, -1, &st, NULL) != SQLITE_OK)
        die("sqlite clone", sqlite3_errmsg(db));
    sqlite3_busy_timeout(db, 5000);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, n - 1);
    if (n > 1 && sqlite3_step(st) != SQLITE_DONE)
        die("sqlite clone", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static PGconn *pg_connect(const char *url)
{
    PGconn *c = PQconnectdb(url);
    if (PQstatus(c) != CONNECTION_OK)
        die("postgres", PQerrorMessage(c));
    return c;
}

static void pg_cmd(PGconn *c, const char *sql, int np, const char *const *p)
{
    PGresult *r = PQexecParams(c, sql, np, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        die(sql, PQerrorMessage(c));
    PQclear(r);
}

/* The server's WAL position in bytes: what a round made it write (and fsync at commit). */
static long long pg_wal_bytes(PGconn *c)
{
    PGresult *r = PQexec(c, "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn");
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        die("pg_current_wal_lsn", PQerrorMessage(c));
    long long v = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

struct target {
    const char *kind; /* "sqlite" | "postgres" */
    struct store *s;
    PGconn *pg; /* postgres: our own connection for counting */
    struct lease_ref *refs;
    int n;
    int64_t lease_ms, round; /* this round's lease length: LEASE_MS and the round's number */
};

static void round_by_node(struct target *t, bool listed, size_t *renewed)
{
    struct lease_renewal *got = NULL;
    size_t n = 0;
    struct err e = {0};
    if (store_node_renew(t->s, NODE, t->lease_ms, listed ? t->refs : NULL,
                         listed ? (size_t)t->n : 0, &got, &n, &e) != 0)
        die("node_renew", e.msg);
    free(got);
    *renewed = n;
}

static void round_per_task(struct target *t, size_t *renewed)
{
    size_t held = 0;
    for (int i = 0; i < t->n; i++) {
        struct task_lease_state ls;
        struct err e = {0};
        if (store_task_renew(t->s, t->refs[i].id, t->refs[i].lease_no, t->lease_ms, &ls, &e) != 0)
            die("task_renew", e.msg);
        held += ls.held;
    }
    *renewed = held;
}

enum mode { BY_NODE_LISTED, BY_NODE_ALL, PER_TASK };
static const char *const mode_name[] = {"node_renew(listed)", "node_renew(all)", "per-task"};

static void measure(struct target *t, enum mode m, int rounds)
{
    if (t->pg) /* each mode starts without the dead rows the one before left */
        pg_cmd(t->pg, "VACUUM tasks", 0, NULL);
    long long wal0 = t->pg ? pg_wal_bytes(t->pg) : 0, w0 = syscw();
    size_t renewed = 0;
    double start = now_ms();
    for (int r = 0; r < rounds; r++) {
        /* a new expiry every round, as rounds a third of a lease apart get: SQLite writes no
         * page for an UPDATE that leaves the row as it was */
        t->lease_ms = LEASE_MS + ++t->round;
        if (m == PER_TASK)
            round_per_task(t, &renewed);
        else
            round_by_node(t, m == BY_NODE_LISTED, &renewed);
    }
    double per = (now_ms() - start) / rounds;
    long long w1 = syscw(), wal1 = t->pg ? pg_wal_bytes(t->pg) : 0;
    long long commits = m == PER_TASK ? t->n : 1;
    if (t->pg)
        printf("RESULT %s %d %s rounds=%d ms_per_round=%.2f renewed=%zu commits_per_round=%lld"
               " wal_kb_per_round=%.1f\n",
               t->kind, t->n, mode_name[m], rounds, per, renewed, commits,
               (double)(wal1 - wal0) / 1024 / rounds);
    else
        printf("RESULT %s %d %s rounds=%d ms_per_round=%.2f renewed=%zu commits_per_round=%lld"
               " write_syscalls_per_round=%.1f\n",
               t->kind, t->n, mode_name[m], rounds, per, renewed, commits,
               (double)(w1 - w0) / rounds);
    fflush(stdout);
}

static void refs_fill(struct target *t, const char *id)
{
    t->refs = xcalloc((size_t)t->n, sizeof *t->refs);
    snprintf(t->refs[0].id, sizeof t->refs[0].id, "%s", id);
    for (int i = 1; i < t->n; i++)
        snprintf(t->refs[i].id, sizeof t->refs[i].id, "%.40s-%d", id, i);
    for (int i = 0; i < t->n; i++)
        t->refs[i].lease_no = 1;
}

static int rounds_for(int n, enum mode m)
{
    if (m != PER_TASK)
        return n >= 10000 ? 5 : 20;
    return n >= 10000 ? 1 : n >= 100 ? 3 : 20;
}

static void run_one(const char *url, int n)
{
    struct target t = {.kind = url ? "postgres" : "sqlite", .n = n};
    char dir[] = "/tmp/lease_renew.XXXXXX", path[64];
    struct err e = {0};
    if (url) {
        if (store_open(url, NULL, &t.s, &e) != 0) /* creates the schema of a new database */
            die("store_open", e.msg);
        t.pg = pg_connect(url);
        pg_cmd(t.pg, "DELETE FROM tasks", 0, NULL);
    } else {
        if (!mkdtemp(dir))
            die("mkdtemp", "failed");
        snprintf(path, sizeof path, "%s/asyncd.db", dir);
        if (store_open(NULL, dir, &t.s, &e) != 0)
            die("store_open", e.msg);
    }
    char id[STORE_ID_MAX];
    make_template(t.s, id);
    if (url) {
        char nbuf[16];
        snprintf(nbuf, sizeof nbuf, "%d", n);
        const char *p[] = {id, nbuf};
        if (n > 1)
            pg_cmd(t.pg, clone_pg, 2, p);
        pg_cmd(t.pg, "ANALYZE tasks", 0, NULL);
    } else {
        clone_sqlite_tasks(path, id, n);
    }
    refs_fill(&t, id);
    for (enum mode m = BY_NODE_LISTED; m <= PER_TASK; m++)
        measure(&t, m, rounds_for(n, m));
    store_close(t.s);
    if (t.pg) {
        pg_cmd(t.pg, "DELETE FROM tasks", 0, NULL);
        PQfinish(t.pg);
    } else {
        char cmd[96];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "lease_renew: could not remove %s\n", dir);
    }
    free(t.refs);
}

int main(int argc, char **argv)
{
    const char *url = NULL;
    int first = 1;
    if (argc > 1 && strncmp(argv[1], "postgres", 8) == 0)
        url = argv[1], first = 2;
    int ns[16], nn = 0;
    for (int i = first; i < argc && nn < 16; i++)
        ns[nn++] = atoi(argv[i]);
    if (nn == 0)
        ns[0] = 1, ns[1] = 100, ns[2] = 10000, nn = 3;
    for (int i = 0; i < nn; i++)
        run_one(url, ns[i]);
    return 0;
}
