/* Picks the store backend from the --store URL, and the helpers every backend shares. */
#include "store/store.h"

#include <stdlib.h>
#include <string.h>

#include "common/secretbox.h"
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

int store_account_refuse_unusable(struct account *a, bool key_enabled, struct err *e)
{
    int rc = 0;
    if (!key_enabled)
        rc = err_set(e, ERR_NOT_FOUND, "SecretId %s of account %s is disabled", a->secret_id,
                     a->uin);
    else if (a->disabled)
        rc =
            err_set(e, ERR_NOT_FOUND, "account %s (SecretId %s) is disabled", a->uin, a->secret_id);
    else if (a->owner_disabled)
        rc =
            err_set(e, ERR_NOT_FOUND, "root account %s of sub-account %s (SecretId %s) is disabled",
                    a->owner_uin, a->uin, a->secret_id);
    if (rc) {
        account_clear(a);
        memset(a->secret_key, 0, sizeof a->secret_key); /* never handed to a caller it refuses */
    }
    return rc;
}

int store_key_delete_refused(const char *uin, const char *secret_id, struct err *e)
{
    return err_set(e, ERR_CONFLICT,
                   "key pair %s of account %s is enabled; disable it first (PATCH "
                   "/v1/accounts/%s/keys/%s {\"status\":\"disabled\"}), check that no client "
                   "still uses it, then delete it",
                   secret_id, uin, uin, secret_id);
}

static bool has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The message shows the URL without its password: errors are logged. */
static int refuse_url(const char *url, struct err *e)
{
    char shown[256];
    secretbox_redact_dsn(url, shown, sizeof shown);
    return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                   "--store \"%s\": expected sqlite:/path/to/file.db, a path starting with / or ., "
                   "or postgres://USER@HOST:PORT/DB",
                   shown);
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
    return refuse_url(url, e);
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
