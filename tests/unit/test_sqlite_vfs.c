/* Unit tests for the VFS that gathers a commit's WAL writes (store_sqlite_vfs.c): a commit's
 * frames reach the file in a few writes, every commit is whole in the file before another
 * connection can read it (with and without a sync at the commit), a transaction larger than the
 * buffer is intact, and a database written through it reopens clean. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store_sqlite_vfs.h"

struct fixture {
    char dir[64];
    char path[96];
    sqlite3 *w; /* through the VFS */
    sqlite3 *r; /* the default VFS, as the store's readers */
};

static void exec_ok(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fprintf(stderr, "%s: %s\n", sql, msg ? msg : "?");
    sqlite3_free(msg);
    assert_int_equal(rc, SQLITE_OK);
}

static long long one_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    long long v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void integrity_ok(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
}

static void open_writer(struct fixture *f, const char *synchronous)
{
    const char *vfs = sq_vfs_walbuf_name();
    assert_non_null(vfs);
    assert_int_equal(
        sqlite3_open_v2(f->path, &f->w, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs),
        SQLITE_OK);
    char sql[128];
    snprintf(sql, sizeof sql, "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s;", synchronous);
    exec_ok(f->w, sql);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test_sqlite_vfs.XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof f->path, "%s/t.db", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    sqlite3_close(f->r);
    sqlite3_close(f->w);
    char p[128];
    static const char *const suffix[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", f->path, suffix[i]);
        unlink(p);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

/* One transaction of n rows with a 200-byte value each (a few pages). */
static void insert_rows(sqlite3 *db, int first, int n)
{
    exec_ok(db, "BEGIN");
    for (int i = 0; i < n; i++) {
        char sql[160];
        snprintf(sql, sizeof sql, "INSERT INTO t(k, v) VALUES(%d, zeroblob(200))", first + i);
        exec_ok(db, sql);
    }
    exec_ok(db, "COMMIT");
}

static void test_a_commit_is_a_few_writes(void **state)
{
    struct fixture *f = *state;
    open_writer(f, "FULL");
    exec_ok(f->w, "CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)");
    struct sq_vfs_stats a, b;
    sq_vfs_walbuf_stats(&a);
    insert_rows(f->w, 0, 200); /* ~12 pages of rows: ~14 frames, 28 writes asked */
    sq_vfs_walbuf_stats(&b);
    unsigned long long asked = b.asked - a.asked, written = b.written - a.written;
    assert_true(asked >= 20);
    assert_true(written >= 1);
    assert_true(written <= 2);
}

/* Each commit is read back whole by a reader of the default VFS right after it, as the store's
 * readers do; with synchronous=OFF no xSync comes, so only the commit frame's flush puts the
 * frames in the file before SQLite publishes them. */
static void readers_see_every_commit(struct fixture *f, const char *synchronous)
{
    open_writer(f, synchronous);
    exec_ok(f->w, "CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)");
    assert_int_equal(sqlite3_open_v2(f->path, &f->r, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    for (int round = 0; round < 50; round++) {
        insert_rows(f->w, round * 30, 30);
        assert_int_equal(one_int(f->r, "SELECT count(*) FROM t"), (round + 1) * 30);
        assert_int_equal(one_int(f->r, "SELECT sum(length(v)) FROM t"), (round + 1) * 30 * 200);
    }
    integrity_ok(f->r);
}

static void test_readers_see_every_commit_synced(void **state)
{
    readers_see_every_commit(*state, "FULL");
}

static void test_readers_see_every_commit_unsynced(void **state)
{
    readers_see_every_commit(*state, "OFF");
}

/* A transaction of several MiB passes the buffer's limit and its pieces' size. */
static void test_a_large_transaction_is_intact(void **state)
{
    struct fixture *f = *state;
    open_writer(f, "FULL");
    exec_ok(f->w, "PRAGMA cache_size = 100"); /* spills to the log before the commit */
    exec_ok(f->w, "CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)");
    exec_ok(f->w, "BEGIN");
    exec_ok(f->w, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)"
                  " INSERT INTO t(k, v) SELECT i, randomblob(1500) FROM n");
    exec_ok(f->w, "UPDATE t SET v = zeroblob(1500) WHERE k % 2 = 0");
    exec_ok(f->w, "COMMIT");
    assert_int_equal(sqlite3_open_v2(f->path, &f->r, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(one_int(f->r, "SELECT count(*) FROM t"), 3000);
    assert_int_equal(one_int(f->r, "SELECT count(*) FROM t WHERE v = zeroblob(1500)"), 1500);
}

/* Closed without a checkpoint (the log is kept), then opened by the default VFS: the log
 * recovers every commit, so nothing was left in a buffer or written out of place. */
static void test_the_log_recovers_after_close(void **state)
{
    struct fixture *f = *state;
    open_writer(f, "FULL");
    int persist = 1;
    assert_int_equal(sqlite3_file_control(f->w, "main", SQLITE_FCNTL_PERSIST_WAL, &persist),
                     SQLITE_OK);
    exec_ok(f->w, "PRAGMA wal_autocheckpoint = 0");
    exec_ok(f->w, "CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)");
    for (int round = 0; round < 20; round++)
        insert_rows(f->w, round * 25, 25);
    char wal[128];
    snprintf(wal, sizeof wal, "%s-wal", f->path);
    char copy_cmd[1024];
    /* what the log holds at a crash: copy it aside before the close checkpoints it */
    snprintf(copy_cmd, sizeof copy_cmd, "cp '%s' '%s.db2-wal' && cp '%s' '%s.db2'", wal, f->path,
             f->path, f->path);
    assert_int_equal(system(copy_cmd), 0);
    char db2[128];
    snprintf(db2, sizeof db2, "%s.db2", f->path);
    sqlite3 *c = NULL;
    assert_int_equal(sqlite3_open_v2(db2, &c, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(one_int(c, "SELECT count(*) FROM t"), 500);
    integrity_ok(c);
    sqlite3_close(c);
    char rm_cmd[1024];
    snprintf(rm_cmd, sizeof rm_cmd, "rm -f '%s' '%s-wal' '%s-shm'", db2, db2, db2);
    assert_int_equal(system(rm_cmd), 0);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_a_commit_is_a_few_writes),          T(test_readers_see_every_commit_synced),
        T(test_readers_see_every_commit_unsynced), T(test_a_large_transaction_is_intact),
        T(test_the_log_recovers_after_close),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
