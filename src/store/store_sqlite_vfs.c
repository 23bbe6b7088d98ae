/* A VFS shim that writes a commit's frames to the write-ahead log in one write(2).
 *
 * Why: SQLite writes each WAL frame with two pwrite calls (its 24-byte header, then the page),
 * so a group commit of ~15 one-step tasks made ~70 pwrite calls before its one fdatasync: 2.8 of
 * asyncd's ~13 syscalls a task in bench/tasks.sh (perf record -e raw_syscalls:sys_enter, 20,000
 * no-op tasks, 64 clients), on a 2-core PVM guest where a syscall costs several microseconds of
 * pvm_irq_enable. Here the frames of a commit are gathered in memory and written at once.
 *
 * What makes that safe: a write SQLite asked for only has to be in the file before SQLite, or
 * another connection, can depend on it being there, and every such point passes through this
 * file's methods. The buffer (one contiguous run of the log) is written out:
 * - when a commit's last frame is complete (its header carries the database size, which only a
 *   commit frame has): the frames are then in the file before SQLite publishes them to readers in
 *   the wal-index, whatever the synchronous setting;
 * - before xSync (with synchronous=FULL, every commit), so what is synced is what was asked;
 * - before any read, size, truncate, file control, fetch or close of the log, and before a write
 *   that does not continue the run or would overflow the buffer.
 * An error of the delayed write is the error of the call that wrote it out (xSync at a commit),
 * which makes SQLite roll the transaction back as it would on a failed write. Frames that were
 * never synced are not committed, and recovery ignores them, as before.
 *
 * Only files SQLite opens as a WAL are buffered; the database file, journals and every other
 * file are opened into the same memory by the default VFS and used through its own methods. */
#include "store/store_sqlite_vfs.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define VFS_NAME       "asyncd-walbuf"
#define FRAME_HDR_SIZE 24           /* a WAL frame's header (SQLite file format, section 4.1) */
#define BUF_FIRST      (64 << 10)   /* the buffer's first size; it doubles as commits grow */
#define BUF_MAX        (1u << 20)   /* a longer run is written out and a new one begun */
#define WRITE_MAX      (120u << 10) /* one write(2) of the buffer at most */

struct wal_file {
    sqlite3_file base;  /* pMethods = &wal_methods; first, as SQLite requires */
    sqlite3_file *real; /* the default VFS's file, just past this struct */
    unsigned char *buf; /* buf[0..len) belongs at off in the log */
    size_t len, cap;
    sqlite3_int64 off;
    bool commit_pending; /* the header just taken was a commit frame's: its page ends the commit */
};

/* The real file's storage follows ours, aligned for any object. */
#define REAL_AT ((sizeof(struct wal_file) + 15) & ~(size_t)15)

static sqlite3_vfs *base_vfs;
static sqlite3_vfs walbuf_vfs;
static atomic_ullong asked_writes, real_writes;

static struct wal_file *wf(sqlite3_file *f) { return (struct wal_file *)f; }

/* The default VFS on Unix writes at most 128 KiB a call (seekAndWriteFd masks the length with
 * 0x1ffff), so the buffer goes out in pieces below that. */
static int flush(struct wal_file *w)
{
    int rc = SQLITE_OK;
    for (size_t at = 0; rc == SQLITE_OK && at < w->len; at += WRITE_MAX) {
        size_t n = w->len - at < WRITE_MAX ? w->len - at : WRITE_MAX;
        rc = w->real->pMethods->xWrite(w->real, w->buf + at, (int)n, w->off + (sqlite3_int64)at);
        atomic_fetch_add_explicit(&real_writes, 1, memory_order_relaxed);
    }
    w->len = 0;
    return rc;
}

/* Room for n more bytes in the buffer, growing it up to BUF_MAX; false if there is none. */
static bool room(struct wal_file *w, size_t n)
{
    if (w->len + n <= w->cap)
        return true;
    if (w->len + n > BUF_MAX)
        return false;
    size_t cap = w->cap ? w->cap : BUF_FIRST;
    while (cap < w->len + n)
        cap *= 2;
    unsigned char *p = realloc(w->buf, cap);
    if (!p)
        return false;
    w->buf = p;
    w->cap = cap;
    return true;
}

/* A frame header's second field is the database size in pages after a commit, 0 otherwise. */
static bool is_commit_header(const void *data, int amt)
{
    const unsigned char *h = data;
    return amt == FRAME_HDR_SIZE && (h[4] | h[5] | h[6] | h[7]) != 0;
}

static int wal_write(sqlite3_file *f, const void *data, int amt, sqlite3_int64 ofst)
{
    struct wal_file *w = wf(f);
    atomic_fetch_add_explicit(&asked_writes, 1, memory_order_relaxed);
    bool continues = w->len > 0 && ofst == w->off + (sqlite3_int64)w->len;
    if (!continues || !room(w, (size_t)amt)) {
        int rc = flush(w);
        if (rc != SQLITE_OK)
            return rc;
        if (amt > (int)WRITE_MAX || !room(w, (size_t)amt)) { /* as large as a piece: as asked */
            atomic_fetch_add_explicit(&real_writes, 1, memory_order_relaxed);
            return w->real->pMethods->xWrite(w->real, data, amt, ofst);
        }
        w->off = ofst;
    }
    memcpy(w->buf + w->len, data, (size_t)amt);
    w->len += (size_t)amt;
    if (w->commit_pending && amt != FRAME_HDR_SIZE) {
        w->commit_pending = false;
        return flush(w); /* the commit frame is whole: into the file before readers can see it */
    }
    w->commit_pending = is_commit_header(data, amt);
    return SQLITE_OK;
}

static int wal_close(sqlite3_file *f)
{
    struct wal_file *w = wf(f);
    int rc = flush(w);
    int crc = w->real->pMethods ? w->real->pMethods->xClose(w->real) : SQLITE_OK;
    free(w->buf);
    w->buf = NULL;
    w->cap = 0;
    return rc != SQLITE_OK ? rc : crc;
}

static int wal_read(sqlite3_file *f, void *out, int amt, sqlite3_int64 ofst)
{
    struct wal_file *w = wf(f);
    int rc = flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xRead(w->real, out, amt, ofst);
}

static int wal_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    struct wal_file *w = wf(f);
    int rc = flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xTruncate(w->real, size);
}

static int wal_sync(sqlite3_file *f, int flags)
{
    struct wal_file *w = wf(f);
    int rc = flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xSync(w->real, flags);
}

static int wal_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    struct wal_file *w = wf(f);
    int rc = flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xFileSize(w->real, size);
}

static int wal_lock(sqlite3_file *f, int level)
{
    return wf(f)->real->pMethods->xLock(wf(f)->real, level);
}

static int wal_unlock(sqlite3_file *f, int level)
{
    return wf(f)->real->pMethods->xUnlock(wf(f)->real, level);
}

static int wal_check_reserved(sqlite3_file *f, int *out)
{
    return wf(f)->real->pMethods->xCheckReservedLock(wf(f)->real, out);
}

static int wal_file_control(sqlite3_file *f, int op, void *arg)
{
    struct wal_file *w = wf(f);
    int rc = flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xFileControl(w->real, op, arg);
}

static int wal_sector_size(sqlite3_file *f)
{
    return wf(f)->real->pMethods->xSectorSize(wf(f)->real);
}

static int wal_device(sqlite3_file *f)
{
    return wf(f)->real->pMethods->xDeviceCharacteristics(wf(f)->real);
}

/* SQLite keeps the shared memory on the database file, not on the log; these only forward. */
static int wal_shm_map(sqlite3_file *f, int pg, int pgsz, int extend, void volatile **pp)
{
    sqlite3_file *r = wf(f)->real;
    if (r->pMethods->iVersion < 2)
        return SQLITE_IOERR_SHMMAP;
    return r->pMethods->xShmMap(r, pg, pgsz, extend, pp);
}

static int wal_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
    sqlite3_file *r = wf(f)->real;
    return r->pMethods->iVersion < 2 ? SQLITE_IOERR_SHMLOCK
                                     : r->pMethods->xShmLock(r, offset, n, flags);
}

static void wal_shm_barrier(sqlite3_file *f)
{
    sqlite3_file *r = wf(f)->real;
    if (r->pMethods->iVersion >= 2)
        r->pMethods->xShmBarrier(r);
}

static int wal_shm_unmap(sqlite3_file *f, int delete_flag)
{
    sqlite3_file *r = wf(f)->real;
    return r->pMethods->iVersion < 2 ? SQLITE_OK : r->pMethods->xShmUnmap(r, delete_flag);
}

static int wal_fetch(sqlite3_file *f, sqlite3_int64 ofst, int amt, void **pp)
{
    struct wal_file *w = wf(f);
    *pp = NULL;
    int rc = flush(w);
    if (rc != SQLITE_OK || w->real->pMethods->iVersion < 3)
        return rc;
    return w->real->pMethods->xFetch(w->real, ofst, amt, pp);
}

static int wal_unfetch(sqlite3_file *f, sqlite3_int64 ofst, void *p)
{
    sqlite3_file *r = wf(f)->real;
    return r->pMethods->iVersion < 3 ? SQLITE_OK : r->pMethods->xUnfetch(r, ofst, p);
}

static const sqlite3_io_methods wal_methods = {
    .iVersion = 3,
    .xClose = wal_close,
    .xRead = wal_read,
    .xWrite = wal_write,
    .xTruncate = wal_truncate,
    .xSync = wal_sync,
    .xFileSize = wal_file_size,
    .xLock = wal_lock,
    .xUnlock = wal_unlock,
    .xCheckReservedLock = wal_check_reserved,
    .xFileControl = wal_file_control,
    .xSectorSize = wal_sector_size,
    .xDeviceCharacteristics = wal_device,
    .xShmMap = wal_shm_map,
    .xShmLock = wal_shm_lock,
    .xShmBarrier = wal_shm_barrier,
    .xShmUnmap = wal_shm_unmap,
    .xFetch = wal_fetch,
    .xUnfetch = wal_unfetch,
};

/* A log is opened inside our wrapper; anything else straight into f by the default VFS, which
 * then is that file's only layer (f is at least as large as the default VFS asks for). */
static int vfs_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags)
{
    (void)vfs;
    if (!(flags & SQLITE_OPEN_WAL))
        return base_vfs->xOpen(base_vfs, name, f, flags, out_flags);
    struct wal_file *w = wf(f);
    memset(w, 0, sizeof *w);
    w->real = (sqlite3_file *)((char *)f + REAL_AT);
    int rc = base_vfs->xOpen(base_vfs, name, w->real, flags, out_flags);
    /* A failed open that set methods still gets its xClose (the VFS contract). */
    w->base.pMethods = w->real->pMethods ? &wal_methods : NULL;
    return rc;
}

/* The rest is the default VFS's, called as itself. */
static int vfs_delete(sqlite3_vfs *v, const char *name, int sync_dir)
{
    (void)v;
    return base_vfs->xDelete(base_vfs, name, sync_dir);
}

static int vfs_access(sqlite3_vfs *v, const char *name, int flags, int *out)
{
    (void)v;
    return base_vfs->xAccess(base_vfs, name, flags, out);
}

static int vfs_full_pathname(sqlite3_vfs *v, const char *name, int n, char *out)
{
    (void)v;
    return base_vfs->xFullPathname(base_vfs, name, n, out);
}

static void *vfs_dl_open(sqlite3_vfs *v, const char *name)
{
    (void)v;
    return base_vfs->xDlOpen(base_vfs, name);
}

static void vfs_dl_error(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    base_vfs->xDlError(base_vfs, n, out);
}

static void (*vfs_dl_sym(sqlite3_vfs *v, void *h, const char *sym))(void)
{
    (void)v;
    return base_vfs->xDlSym(base_vfs, h, sym);
}

static void vfs_dl_close(sqlite3_vfs *v, void *h)
{
    (void)v;
    base_vfs->xDlClose(base_vfs, h);
}

static int vfs_randomness(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    return base_vfs->xRandomness(base_vfs, n, out);
}

static int vfs_sleep(sqlite3_vfs *v, int us)
{
    (void)v;
    return base_vfs->xSleep(base_vfs, us);
}

static int vfs_current_time(sqlite3_vfs *v, double *out)
{
    (void)v;
    return base_vfs->xCurrentTime(base_vfs, out);
}

static int vfs_last_error(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    return base_vfs->xGetLastError(base_vfs, n, out);
}

static int vfs_current_time_int64(sqlite3_vfs *v, sqlite3_int64 *out)
{
    (void)v;
    if (base_vfs->iVersion >= 2 && base_vfs->xCurrentTimeInt64)
        return base_vfs->xCurrentTimeInt64(base_vfs, out);
    double d = 0;
    int rc = base_vfs->xCurrentTime(base_vfs, &d);
    *out = (sqlite3_int64)(d * 86400000.0);
    return rc;
}

static bool registered;

static void register_once(void)
{
    base_vfs = sqlite3_vfs_find(NULL);
    if (!base_vfs)
        return;
    walbuf_vfs = (sqlite3_vfs){
        .iVersion = 2,
        .szOsFile = (int)(REAL_AT + (size_t)base_vfs->szOsFile),
        .mxPathname = base_vfs->mxPathname,
        .zName = VFS_NAME,
        .xOpen = vfs_open,
        .xDelete = vfs_delete,
        .xAccess = vfs_access,
        .xFullPathname = vfs_full_pathname,
        .xDlOpen = vfs_dl_open,
        .xDlError = vfs_dl_error,
        .xDlSym = vfs_dl_sym,
        .xDlClose = vfs_dl_close,
        .xRandomness = vfs_randomness,
        .xSleep = vfs_sleep,
        .xCurrentTime = vfs_current_time,
        .xGetLastError = vfs_last_error,
        .xCurrentTimeInt64 = vfs_current_time_int64,
    };
    registered = sqlite3_vfs_register(&walbuf_vfs, 0) == SQLITE_OK;
}

const char *sq_vfs_walbuf_name(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, register_once);
    return registered ? VFS_NAME : NULL;
}

void sq_vfs_walbuf_stats(struct sq_vfs_stats *out)
{
    out->asked = atomic_load(&asked_writes);
    out->written = atomic_load(&real_writes);
}
