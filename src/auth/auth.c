/* Account minting and allow-policy matching. */
#include "auth/auth.h"

#include <fnmatch.h>
#include <string.h>

#include "common/ids.h"

static void mint_keys(struct account *a)
{
    memcpy(a->secret_id, "AKID", 4);
    ids_alnum(a->secret_id + 4, 32);
    ids_alnum(a->secret_key, 32);
}

void auth_mint(struct account *a, bool root)
{
    ids_decimal(a->uin, 12);
    a->is_root = root;
    if (root) {
        memcpy(a->owner_uin, a->uin, sizeof a->uin);
        ids_decimal(a->app_id, 10);
    }
    mint_keys(a);
}

/* A fresh random Uin; the store refuses duplicates, so retry a few times on a clash. */
static int insert_with_fresh_uin(struct store *s, struct account *a, bool root, struct err *e)
{
    int rc = ERR_INTERNAL;
    for (int tries = 0; tries < 5; tries++) {
        auth_mint(a, root);
        rc = store_account_create(s, a, e);
        if (rc != ERR_ALREADY_EXISTS)
            return rc;
    }
    return rc;
}

int auth_create_root(struct store *s, struct account *out, struct err *e)
{
    memset(out, 0, sizeof *out);
    out->is_root = true;
    return insert_with_fresh_uin(s, out, true, e);
}

int auth_create_sub(struct store *s, const char *owner_uin, struct account *out, struct err *e)
{
    struct account owner = {0};
    int rc = store_account_by_uin(s, owner_uin, &owner, e);
    if (rc == ERR_NOT_FOUND)
        return err_set(e, ERR_NOT_FOUND, "no account with Uin %s", owner_uin);
    if (rc)
        return rc;
    bool root = owner.is_root;
    memset(out, 0, sizeof *out);
    memcpy(out->owner_uin, owner.uin, sizeof out->owner_uin);
    memcpy(out->app_id, owner.app_id, sizeof out->app_id);
    account_clear(&owner);
    if (!root)
        return err_set(e, ERR_BAD_REQUEST,
                       "Uin %s is a sub-account; sub-accounts belong to a root account", owner_uin);
    return insert_with_fresh_uin(s, out, false, e);
}

int auth_key_create(struct store *s, const char *uin, char secret_id[64], char secret_key[64],
                    struct err *e)
{
    struct account a = {0};
    int rc = ERR_INTERNAL;
    /* A fresh random SecretId cannot clash in practice; retry a few times if it does anyway. */
    for (int tries = 0; tries < 5; tries++) {
        mint_keys(&a);
        rc = store_account_key_create(s, uin, a.secret_id, a.secret_key, AUTH_MAX_KEYS, e);
        if (rc != ERR_ALREADY_EXISTS)
            break;
    }
    if (rc == 0) {
        memcpy(secret_id, a.secret_id, sizeof a.secret_id);
        memcpy(secret_key, a.secret_key, sizeof a.secret_key);
    }
    memset(a.secret_key, 0, sizeof a.secret_key);
    return rc;
}

int auth_account_by_secret_id(struct store *s, const char *secret_id, struct account *out,
                              struct err *e)
{
    struct err se = {0};
    int rc = store_account_by_secret_id(s, secret_id, out, &se);
    /* One answer for unknown, disabled and deleted, as Tencent gives: the caller is not yet
     * authenticated, so it learns nothing about which keys exist. */
    if (rc == ERR_NOT_FOUND)
        return err_set(e, ERR_AUTH_SECRETID_NOT_FOUND,
                       "The SecretId %.64s does not exist, or it or its account is disabled or "
                       "deleted; check the key pair (asyncctl account key list UIN)",
                       secret_id);
    if (rc)
        return err_set(e, ERR_INTERNAL, "reading account: %s", se.msg);
    return 0;
}

bool auth_pattern_valid(const char *p)
{
    if (strcmp(p, "*") == 0)
        return true;
    const char *colon = strchr(p, ':');
    if (!colon || colon == p || colon[1] == '\0' || strchr(colon + 1, ':'))
        return false;
    for (const char *c = p; *c; c++)
        if (*c != ':' && *c != '*' && !(*c >= 'A' && *c <= 'Z') && !(*c >= 'a' && *c <= 'z') &&
            !(*c >= '0' && *c <= '9'))
            return false;
    return true;
}

static bool pattern_matches(const char *pattern, const char *product, const char *action)
{
    if (strcmp(pattern, "*") == 0)
        return true;
    const char *colon = strchr(pattern, ':');
    if (!colon)
        return false;
    char prod_pat[64];
    size_t n = (size_t)(colon - pattern);
    if (n >= sizeof prod_pat)
        return false;
    memcpy(prod_pat, pattern, n);
    prod_pat[n] = '\0';
    return fnmatch(prod_pat, product, 0) == 0 && fnmatch(colon + 1, action, 0) == 0;
}

bool auth_allows(const struct account *a, const char *product, const char *action)
{
    if (a->is_root)
        return true;
    if (!a->policy_json)
        return false;
    json_t *arr = json_loads(a->policy_json, 0, NULL);
    bool ok = false;
    size_t i;
    json_t *v;
    if (json_is_array(arr))
        json_array_foreach(arr, i, v) if (json_is_string(v) &&
                                          pattern_matches(json_string_value(v), product, action))
        {
            ok = true;
            break;
        }
    json_decref(arr);
    return ok;
}
