/* Fuzz target: the --store URL (store_open's choice of backend, the PostgreSQL URL options
 * pool= and claim=), with libpq's connect replaced so nothing touches the network. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "fuzz_util.h"
#include "store/store.h"

static int connects;

/* Replaces libpq's for this binary: records that store_pg_open reached the connect with what
 * parse_url left for libpq, and fails like an unreachable server (a NULL PGconn, which every
 * PQ* function store_pg.c then calls accepts). */
PGconn *PQconnectdbParams(const char *const *keywords, const char *const *values, int expand_dbname)
{
    (void)expand_dbname;
    for (size_t i = 0; keywords[i]; i++) {
        if (strcmp(keywords[i], "dbname") != 0)
            continue;
        /* our own options never reach libpq */
        const char *q = strchr(values[i], '?');
        for (const char *kv = q; kv; kv = strchr(kv + 1, '&'))
            if (strncmp(kv + 1, "pool=", 5) == 0 || strncmp(kv + 1, "claim=", 6) == 0)
                abort();
    }
    connects++;
    return NULL;
}

static bool has_prefix(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FUZZ_MAX_INPUT)
        return -1;
    char *url = fuzz_strndup(data, size);
    struct store *s = NULL;
    struct err e;
    if (store_pg_open(url, &s, &e) == 0)
        abort(); /* no server can answer */
    /* store_open itself only where it cannot create a file: the sqlite: and path spellings open
     * (and create) the file they name */
    if (has_prefix(url, "postgres://") || has_prefix(url, "postgresql://") || !*url ||
        strcmp(url, "sqlite:") == 0) {
        if (store_open(url, NULL, &s, &e) == 0)
            abort();
    }
    free(url);
    return 0;
}
