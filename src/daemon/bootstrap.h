/* First start: the data directory, the root account and DIR/credentials.json (mode 0600). */
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

/* Reads the admin token from DIR/credentials.json; without that file, writes it (durably) with
 * the store's root account -- created on an empty store -- and a fresh admin token, and says so
 * on stderr. Either way the token's SHA-256 is stored as an `admin` token (valid on every node of
 * a shared store) unless that hash is there already, live or revoked. *admin_token is a heap
 * string the caller frees; NULL on failure. */
int bootstrap_credentials(struct store *s, const char *dir, char **admin_token, struct err *e);

#endif
