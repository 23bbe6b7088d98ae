/* Unit tests' store fixture: a store per test, on SQLite in a temporary directory or on a fresh
 * PostgreSQL database (pg_fixture.h), closed and removed after. For the tests that run the same
 * cases on both stores and each PostgreSQL claim statement. */
#ifndef ASYNCD_STORE_FIXTURE_H
#define ASYNCD_STORE_FIXTURE_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

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

#endif
