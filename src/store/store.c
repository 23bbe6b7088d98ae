/* Picks the store backend from the --store URL, and the helpers every backend shares. */
#include "store/store.h"

#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "store/store_cache.h"

void account_clear(struct account *a)
{
    if (!a)
        return;
    free(a->policy_json);
    a->policy_json = NULL;
    a->has_policy = false;
}

static bool has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int open_backend(const char *url, const char *data_dir, struct store **out, struct err *e)
{
    *out = NULL;
    if (!url || !*url || strcmp(url, "sqlite:") == 0) {
        if (!data_dir || !*data_dir)
            return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                           "store: no data directory given for the embedded SQLite store");
        char *path = xasprintf("%s/asyncd.db", data_dir);
        int rc = store_sqlite_open(path, out, e);
        free(path);
        return rc;
    }
    if (has_prefix(url, "postgres://") || has_prefix(url, "postgresql://"))
        return store_pg_open(url, out, e); /* options: store_pg.c's opening comment */
    if (has_prefix(url, "sqlite:")) {
        const char *path = url + strlen("sqlite:");
        if (has_prefix(path, "//")) /* sqlite:///abs/file.db, the URL spelling */
            path += 2;
        return store_sqlite_open(path, out, e);
    }
    if (url[0] == '/' || url[0] == '.') /* a file path names the SQLite file */
        return store_sqlite_open(url, out, e);
    return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                   "--store \"%s\": expected sqlite:/path/to/file.db, a path starting with / or ., "
                   "or postgres://USER@HOST:PORT/DB",
                   url);
}

/* Every store is opened behind the cache (store_cache.h): SQLite is owned by this process, so
 * the cache is exact; PostgreSQL is shared with other nodes, so it caches only what cannot change
 * behind our back. */
int store_open(const char *url, const char *data_dir, struct store **out, struct err *e)
{
    struct store *inner = NULL;
    int rc = open_backend(url, data_dir, &inner, e);
    if (rc) {
        *out = NULL;
        return rc;
    }
    bool shared = url && (has_prefix(url, "postgres://") || has_prefix(url, "postgresql://"));
    *out = store_cache_wrap(inner, shared);
    return 0;
}
