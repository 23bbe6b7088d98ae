/* secretbox: secrets sealed at rest (SecretKeys, DSNs, tenant passwords kept with running tasks)
 * with AES-256-GCM under one process-wide key, and the DSN redaction every answer and log uses.
 *
 * A sealed value is text, so it fits the store's existing text columns:
 *   "enc:v1:" base64(nonce[12] | ciphertext | tag[16])
 * with a fresh random nonce per value and the prefix as additional authenticated data. A value
 * without the prefix is plaintext written before sealing existed: secretbox_open returns it as
 * is, so a store upgrades in place (each value is sealed when it is next written).
 *
 * The key is loaded once at start, before any thread uses it, and only read afterwards. Until
 * a key is loaded, secretbox_seal returns the plaintext (unit tests of the store run without
 * one); the daemon always loads one before it opens the store. */
#ifndef ASYNCD_SECRETBOX_H
#define ASYNCD_SECRETBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/errors.h"

#define SECRETBOX_KEY_LEN  32
#define SECRETBOX_PREFIX   "enc:v1:"
#define SECRETBOX_KEY_FILE "secret.key" /* in the data directory, unless --secret-key-file */

/* Loads the key from key_file when given (it must exist), else from DATA_DIR/secret.key, which
 * is created (32 random bytes as 64 hex digits, mode 0600) when absent. A key file holds 64 hex
 * digits (a trailing newline is fine) or 32 raw bytes, and must not be readable by group or
 * others. ERR_INVALID_PARAMETER_VALUE naming the file when it is missing, malformed or too
 * open; ERR_INTERNAL when it cannot be created. The key itself is never logged. */
int secretbox_load(const char *key_file, const char *data_dir, struct err *e);
/* Uses key (copied) from now on; for tests. */
void secretbox_set_key(const uint8_t key[SECRETBOX_KEY_LEN]);
/* Wipes the key; secretbox_seal passes plaintext through again. */
void secretbox_forget(void);
/* Whether text is a sealed value (starts with the prefix). NULL is not. */
bool secretbox_is_sealed(const char *text);

/* Seals plain into *out (heap, the caller frees). "" stays "" (nothing to hide), and with no key
 * loaded *out is a copy of plain. ERR_INTERNAL only when libcrypto fails. */
int secretbox_seal(const char *plain, char **out, struct err *e);
/* Opens text into *out (heap, the caller frees): a sealed value is decrypted and checked, any
 * other text is copied as is. ERR_INTERNAL with a message naming the key file when the value is
 * malformed or was sealed under another key (*out is then NULL). */
int secretbox_open(const char *text, char **out, struct err *e);
/* secretbox_open into dst[size] (truncated to fit); NULL text reads as "". */
int secretbox_open_into(const char *text, char *dst, size_t size, struct err *e);

/* dsn with the password of its user-info ("scheme://USER:PASSWORD@HOST...") replaced by "***",
 * into out[cap] (truncated to fit). A DSN without a password is copied unchanged. */
void secretbox_redact_dsn(const char *dsn, char *out, size_t cap);

#endif
