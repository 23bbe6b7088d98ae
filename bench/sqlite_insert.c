/* Raw SQLite insert rate at asyncd's durability: WAL, synchronous=FULL (the WAL is fsynced before
 * every COMMIT returns). Three runs, each on a fresh database in DIR:
 *   single   one connection, one row per transaction (BEGIN IMMEDIATE; INSERT; COMMIT)
 *   threads  T threads, each on its own connection, one row per transaction: SQLite lets one
 *            writer in at a time, so this is the ceiling under writer contention
 *   batch    one connection, B rows per transaction: what group commit could reach
 * Rows look like a task row (the tasks table's columns, about 200 bytes), primary key only.
 * Usage: sqlite_insert DIR [SECONDS=5] [MAX_ROWS=0 (no cap)] [THREADS=4] [BATCH=100]
 * Prints one line per run: RESULT MODE ROWS COMMITS SECONDS ROWS_PER_S COMMITS_PER_S BUSY
 * (BUSY: BEGIN IMMEDIATE calls that gave up after the 5 s busy timeout and were retried)
 * Build: cc -O2 -std=c17 -o sqlite_insert bench/sqlite_insert.c -lsqlite3 -lpthread */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double secs_limit = 5;
static long max_rows;
static atomic_long next_row; /* row numbers handed out across threads: unique ids */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(sqlite3 *db, const char *what)
{
    fprintf(stderr, "sqlite_insert: %s: %s\n", what, db ? sqlite3_errmsg(db) : "?");
    exit(1);
}

static void exec(sqlite3 *db, const char *sql)
{
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        die(db, sql);
}

static sqlite3 *open_db(const char *path)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK)
        die(db, "open");
    sqlite3_busy_timeout(db, 5000); /* as asyncd */
    exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;");
    return db;
}

static void create_schema(const char *path)
{
    unlink(path);
    char wal[4200], shm[4200];
    snprintf(wal, sizeof wal, "%s-wal", path);
    snprintf(shm, sizeof shm, "%s-shm", path);
    unlink(wal);
    unlink(shm);
    sqlite3 *db = open_db(path);
    exec(db, "CREATE TABLE tasks (id TEXT PRIMARY KEY, product TEXT NOT NULL,"
             " region TEXT NOT NULL, uin TEXT NOT NULL, instance_id TEXT, type TEXT NOT NULL,"
             " on_failure TEXT NOT NULL, state TEXT NOT NULL, info TEXT,"
             " current_step INTEGER NOT NULL DEFAULT 0, created_ms INTEGER NOT NULL,"
             " start_ms INTEGER, end_ms INTEGER, lease_node TEXT, lease_expires_ms INTEGER,"
             " lease_no INTEGER NOT NULL DEFAULT 0, phase TEXT NOT NULL DEFAULT 'do',"
             " attempt INTEGER NOT NULL DEFAULT 0, not_before_ms INTEGER NOT NULL DEFAULT 0,"
             " pause_requested INTEGER NOT NULL DEFAULT 0,"
             " driver TEXT NOT NULL DEFAULT 'engine', payload TEXT)");
    sqlite3_close(db);
}

struct worker {
    const char *path;
    int batch;
    double deadline;
    long rows, commits, busy;
};

/* Inserts until the deadline or max_rows: `batch` rows per BEGIN IMMEDIATE ... COMMIT. */
static void *work(void *arg)
{
    struct worker *w = arg;
    sqlite3 *db = open_db(w->path);
    sqlite3_stmt *ins, *begin, *commit;
    const char *sql = "INSERT INTO tasks(id, product, region, uin, instance_id, type,"
                      " on_failure, state, created_ms, lease_node, payload)"
                      " VALUES(?1, 'cdb', 'ap-guangzhou', '100000000001', NULL, 'Bench',"
                      " 'pause', 'initial', ?2, 'node-1', ?3)";
    if (sqlite3_prepare_v2(db, sql, -1, &ins, NULL) != SQLITE_OK)
        die(db, "prepare insert");
    if (sqlite3_prepare_v2(db, "BEGIN IMMEDIATE", -1, &begin, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "COMMIT", -1, &commit, NULL) != SQLITE_OK)
        die(db, "prepare begin/commit");
    /* Stands in for the step JSON and event text that travel with a task. */
    static const char payload[] = "{\"name\":\"noop\",\"do\":{\"exec\":[\"/bin/true\"]}}"
                                  " step 1/1 noop done; created by bench";
    while (now_s() < w->deadline) {
        if (max_rows && atomic_load(&next_row) >= max_rows)
            break;
        int rc = sqlite3_step(begin);
        sqlite3_reset(begin);
        if ((rc & 0xff) == SQLITE_BUSY) { /* starved past the busy timeout: try again */
            w->busy++;
            continue;
        }
        if (rc != SQLITE_DONE)
            die(db, "BEGIN IMMEDIATE");
        int n = 0;
        for (; n < w->batch; n++) {
            long k = atomic_fetch_add(&next_row, 1);
            char id[48];
            snprintf(id, sizeof id, "bench-%012ld-0123456789abcdef", k);
            sqlite3_bind_text(ins, 1, id, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(ins, 2, (sqlite3_int64)(now_s() * 1000));
            sqlite3_bind_text(ins, 3, payload, -1, SQLITE_STATIC);
            if (sqlite3_step(ins) != SQLITE_DONE)
                die(db, "INSERT");
            sqlite3_reset(ins);
        }
        if (sqlite3_step(commit) != SQLITE_DONE)
            die(db, "COMMIT");
        sqlite3_reset(commit);
        w->rows += n;
        w->commits++;
    }
    sqlite3_finalize(ins);
    sqlite3_finalize(begin);
    sqlite3_finalize(commit);
    sqlite3_close(db);
    return NULL;
}

static void run(const char *dir, const char *mode, int threads, int batch)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/insert-%s.db", dir, mode);
    create_schema(path);
    atomic_store(&next_row, 0);
    struct worker *w = calloc((size_t)threads, sizeof *w);
    pthread_t *t = calloc((size_t)threads, sizeof *t);
    double start = now_s();
    for (int i = 0; i < threads; i++) {
        w[i] = (struct worker){.path = path, .batch = batch, .deadline = start + secs_limit};
        if (pthread_create(&t[i], NULL, work, &w[i]) != 0) {
            fprintf(stderr, "sqlite_insert: cannot start a thread\n");
            exit(1);
        }
    }
    long rows = 0, commits = 0, busy = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(t[i], NULL);
        rows += w[i].rows;
        commits += w[i].commits;
        busy += w[i].busy;
    }
    double took = now_s() - start;
    printf("RESULT %s %ld %ld %.3f %.1f %.1f %ld\n", mode, rows, commits, took, rows / took,
           commits / took, busy);
    fflush(stdout);
    free(w);
    free(t);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR [SECONDS=5] [MAX_ROWS=0] [THREADS=4] [BATCH=100]\n",
                argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    if (argc > 2)
        secs_limit = atof(argv[2]);
    if (argc > 3)
        max_rows = atol(argv[3]);
    int threads = argc > 4 ? atoi(argv[4]) : 4;
    int batch = argc > 5 ? atoi(argv[5]) : 100;
    if (secs_limit <= 0 || threads < 1 || batch < 1) {
        fprintf(stderr, "sqlite_insert: SECONDS, THREADS and BATCH must be positive\n");
        return 2;
    }
    fprintf(stderr, "sqlite_insert: SQLite %s, WAL, synchronous=FULL, %g s per run, in %s\n",
            sqlite3_libversion(), secs_limit, dir);
    run(dir, "single", 1, 1);
    run(dir, "threads", threads, 1);
    run(dir, "batch", 1, batch);
    return 0;
}
