/* A SQLite VFS over the default one that gathers the writes of a commit to the write-ahead log
 * into one write(2) (store_sqlite_vfs.c). Only the store's writer connection opens its database
 * through it; every other file, and every other connection, is the default VFS's as before. */
#ifndef ASYNCD_STORE_SQLITE_VFS_H
#define ASYNCD_STORE_SQLITE_VFS_H

#include <stddef.h>

/* The name to pass to sqlite3_open_v2; registered on first call (thread-safe), NULL if SQLite
 * has no default VFS to wrap (then open with the default: nothing changes but the syscalls). */
const char *sq_vfs_walbuf_name(void);

/* What the VFS did since the process started, for tests and benchmarks: the log writes SQLite
 * asked for, and the write(2) calls that carried them. */
struct sq_vfs_stats {
    unsigned long long asked, written;
};
void sq_vfs_walbuf_stats(struct sq_vfs_stats *out);

#endif
