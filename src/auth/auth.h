/* Accounts and permissions: minting root and sub-accounts with their keys, and deciding whether
 * a caller's policy allows "product:Action". */
#ifndef ASYNCD_AUTH_H
#define ASYNCD_AUTH_H

#include <stdbool.h>

#include "common/errors.h"
#include "store/store.h"

/* Creates a root account with a fresh AppId, Uin, SecretId ("AKID" + 32) and SecretKey (32).
 * *out is filled (caller account_clear()s it). */
int auth_create_root(struct store *s, struct account *out, struct err *e);
/* Fills a with a fresh Uin (and AppId for a root account) and a fresh key pair, without storing
 * it. owner_uin and app_id of a sub-account are the caller's to set. */
void auth_mint(struct account *a, bool root);
/* Creates a sub-account of root account owner_uin (ERR_NOT_FOUND, or ERR_BAD_REQUEST when
 * owner_uin is itself a sub-account). The new account has no policy. */
int auth_create_sub(struct store *s, const char *owner_uin, struct account *out, struct err *e);

/* The key pairs an account may hold at once (Tencent CAM's limit): one in use and one being
 * rolled in, so a key rotates without downtime. */
#define AUTH_MAX_KEYS 2

/* Mints a key pair and adds it, enabled, to account uin; secret_id and secret_key get it (the
 * only time the SecretKey leaves the store in clear). ERR_NOT_FOUND for no such account,
 * ERR_CONFLICT when it holds AUTH_MAX_KEYS already. */
int auth_key_create(struct store *s, const char *uin, char secret_id[64], char secret_key[64],
                    struct err *e);
/* The Cloud API's caller by SecretId: ERR_AUTH_SECRETID_NOT_FOUND, with one message, when the key
 * does not exist, is disabled, or its account (or a sub-account's root) is disabled; ERR_INTERNAL
 * when the store cannot say. *out: caller account_clear()s it. */
int auth_account_by_secret_id(struct store *s, const char *secret_id, struct account *out,
                              struct err *e);

/* True when policy_json (a JSON array of "PRODUCT:ACTION" patterns, '*' wildcards) allows the
 * call. A root account is always allowed; a NULL or empty policy allows nothing. */
bool auth_allows(const struct account *a, const char *product, const char *action);
/* Checks one pattern's shape: "*", or PRODUCT:ACTION of [A-Za-z0-9*]+ each. */
bool auth_pattern_valid(const char *pattern);

#endif
