/* The release both binaries report with --version (and asyncd in its start-up line). Raise it with
 * every release; the store's schema version is separate (store_sqlite.c, store_pg.c). */
#ifndef ASYNCD_VERSION_H
#define ASYNCD_VERSION_H

#define ASYNCD_VERSION "0.9.0"

#endif
