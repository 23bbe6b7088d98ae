/* Start-up: the store URL (--store-file), the data directory and its lock; on the first start the
 * root account and DIR/credentials.json (mode 0600). */
#ifndef ASYNCD_BOOTSTRAP_H
#define ASYNCD_BOOTSTRAP_H

#include "common/errors.h"
#include "store/store.h"

/* Creates dir (mode 0700) and its parents when missing. */
int bootstrap_data_dir(const char *dir, struct err *e);

/* Takes DIR/asyncd.lock (a POSIX record lock, which a step's child between fork and exec does not
 * share, unlike flock) for the life of the process, so a second asyncd on the same
 * data directory refuses to start instead of sharing the embedded store. *fd stays open. */
int bootstrap_lock(const char *dir, int *fd, struct err *e);

/* The store URL to open: store (--store) as given, or the one line of store_file
 * (--store-file), which must be a regular file no one but its owner may read or write (mode 0600
 * or stricter; it may name a symlink to one), since it holds the password. A password in --store
 * itself is visible to every local user (ps, /proc/PID/cmdline): that is allowed, with a warning
 * naming --store-file. *url is heap text (NULL when neither is given: the embedded store) to
 * free with bootstrap_store_url_free. ERR_INVALID_PARAMETER_VALUE naming the file and what to
 * change when it is missing, too open, empty or more than one line. */
int bootstrap_store_url(const char *store, const char *store_file, char **url, struct err *e);
/* Wipes (it may hold a password) and frees url; NULL is fine. */
void bootstrap_store_url_free(char *url);

/* Reads the admin token from DIR/credentials.json; without that file, writes it (durably) with
 * the store's root account -- created on an empty store -- and a fresh admin token, and says so
 * on stderr. Either way the token's SHA-256 is stored as an `admin` token (valid on every node of
 * a shared store) unless that hash is there already, live or revoked. *admin_token is a heap
 * string the caller frees; NULL on failure. */
int bootstrap_credentials(struct store *s, const char *dir, char **admin_token, struct err *e);

#endif
