/* Unit tests' store fixture: a store per test, on SQLite in a temporary directory or on a fresh
 * PostgreSQL database (pg_fixture.h), closed and removed after. For the tests that run the same
 * cases on both stores and each PostgreSQL claim statement. */
#ifndef ASYNCD_STORE_FIXTURE_H
#define ASYNCD_STORE_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "store/store.h"

#include "pg_fixture.h"

struct store_fixture {
    char dir[64];
    struct store *s;
    char db[32]; /* the PostgreSQL database, "" on SQLite */
};

/* Opens *state's store: name prefixes the temporary directory; pg picks PostgreSQL, with opts
 * ("" or "?claim=update") appended to the database's URL. */
static inline int store_fixture_open(void **state, const char *name, bool pg, const char *opts)
{
    struct store_fixture *f = calloc(1, sizeof *f);
    struct err e = {0};
    char *url = NULL;
    int rc = fixture_mkdtemp(f->dir, sizeof f->dir, name);
    if (rc == 0 && pg)
        rc = pg_fresh_db(f->db, opts, &url);
    if (rc == 0)
        rc = store_open(url, pg ? NULL : f->dir, &f->s, &e);
    free(url);
    if (rc != 0) {
        fprintf(stderr, "store_open: %s\n", e.msg);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static inline int store_fixture_close(void **state)
{
    struct store_fixture *f = *state;
    store_close(f->s);
    fixture_rm_tree(f->dir);
    if (f->db[0])
        pg_drop_db(f->db);
    free(f);
    return 0;
}

/* Runs a test file's groups: sqlite[n_sqlite], then (unless ASYNCD_TEST_PG=0 leaves PostgreSQL
 * out) pg[n_pg] and pg_update[n_update] (claim=update; may be empty) on one cluster that this
 * call starts and stops when ASYNCD_TEST_PG_URL names none. The failed tests' count, one more
 * when the cluster cannot start. */
static inline int store_fixture_run(const char *test, const struct CMUnitTest *sqlite,
                                    size_t n_sqlite, const struct CMUnitTest *pg, size_t n_pg,
                                    const struct CMUnitTest *pg_update, size_t n_update)
{
    int failed = _cmocka_run_group_tests("sqlite", sqlite, n_sqlite, NULL, NULL);
    if (pg_skipped(test))
        return failed;
    if (pg_group_setup(NULL) != 0)
        return failed + 1;
    failed += _cmocka_run_group_tests("postgres (claim=skip-locked)", pg, n_pg, NULL, NULL);
    if (n_update)
        failed +=
            _cmocka_run_group_tests("postgres (claim=update)", pg_update, n_update, NULL, NULL);
    pg_group_teardown(NULL);
    return failed;
}

#define STORE_FIXTURE_N(a) (sizeof(a) / sizeof *(a))
/* The SQLite group and the PostgreSQL one. */
#define STORE_FIXTURE_RUN(test, sqlite, pg)                                                        \
    store_fixture_run(test, sqlite, STORE_FIXTURE_N(sqlite), pg, STORE_FIXTURE_N(pg), NULL, 0)
/* The same and a PostgreSQL group with the claim=update statement. */
#define STORE_FIXTURE_RUN_CLAIMS(test, sqlite, pg, pg_update)                                      \
    store_fixture_run(test, sqlite, STORE_FIXTURE_N(sqlite), pg, STORE_FIXTURE_N(pg), pg_update,   \
                      STORE_FIXTURE_N(pg_update))

#endif
