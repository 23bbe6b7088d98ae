/* secretbox: AES-256-GCM sealing of secrets at rest under one key file, and DSN redaction. */
#include "common/secretbox.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/hex.h"
#include "common/xalloc.h"

enum { NONCE_LEN = 12, TAG_LEN = 16, PREFIX_LEN = sizeof SECRETBOX_PREFIX - 1 };

/* Set once at start (secretbox_load), before the threads that read it exist. */
static uint8_t g_key[SECRETBOX_KEY_LEN];
static bool g_have_key;
static char g_key_path[512] = "the secret key"; /* for messages: which file could not open */

void secretbox_set_key(const uint8_t key[SECRETBOX_KEY_LEN])
{
    memcpy(g_key, key, sizeof g_key);
    g_have_key = true;
}

void secretbox_forget(void)
{
    OPENSSL_cleanse(g_key, sizeof g_key);
    g_have_key = false;
}

bool secretbox_is_sealed(const char *text)
{
    return text && strncmp(text, SECRETBOX_PREFIX, PREFIX_LEN) == 0;
}

/* ---- the key file ---- */

/* The key from a file's bytes: 32 raw bytes, or 64 hex digits and trailing white space. */
static int key_parse(const char *path, const uint8_t *buf, size_t n, uint8_t key[], struct err *e)
{
    if (n == SECRETBOX_KEY_LEN) {
        memcpy(key, buf, SECRETBOX_KEY_LEN);
        return 0;
    }
    while (n > 2 * SECRETBOX_KEY_LEN &&
           (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' || buf[n - 1] == '\t'))
        n--;
    bool ok = n == 2 * SECRETBOX_KEY_LEN;
    for (size_t i = 0; ok && i < SECRETBOX_KEY_LEN; i++) {
        int hi = hex_digit_value((char)buf[2 * i]), lo = hex_digit_value((char)buf[2 * i + 1]);
        ok = hi >= 0 && lo >= 0;
        key[i] = ok ? (uint8_t)(hi << 4 | lo) : 0;
    }
    if (ok)
        return 0;
    return err_set(e, ERR_INVALID_PARAMETER_VALUE,
                   "secret key file %s: expected 64 hex digits (openssl rand -hex 32) or 32 bytes",
                   path);
}

static int key_read(const char *path, uint8_t key[], struct err *e)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "secret key file %s: %s", path,
                       strerror(errno));
    struct stat st;
    uint8_t buf[2 * SECRETBOX_KEY_LEN + 8];
    ssize_t n = -1;
    int rc = 0;
    if (fstat(fd, &st) != 0 || (n = read(fd, buf, sizeof buf)) < 0)
        rc = err_set(e, ERR_INVALID_PARAMETER_VALUE, "secret key file %s: %s", path,
                     strerror(errno));
    else if (st.st_mode & 077) /* a key others can read protects nothing */
        rc = err_set(e, ERR_INVALID_PARAMETER_VALUE,
                     "secret key file %s is readable by group or others (mode %03o): chmod 600 it",
                     path, (unsigned)(st.st_mode & 0777));
    else
        rc = key_parse(path, buf, (size_t)n, key, e);
    OPENSSL_cleanse(buf, sizeof buf);
    close(fd);
    return rc;
}

/* Writes a fresh key to path through a temporary file, fsync and rename, then fsyncs the
 * directory: sealed rows reach the disk after this, and must never outlive their key. */
static int key_create(const char *path, const char *dir, uint8_t key[], struct err *e)
{
    char hex[2 * SECRETBOX_KEY_LEN + 2];
    if (RAND_bytes(key, SECRETBOX_KEY_LEN) != 1)
        return err_set(e, ERR_INTERNAL, "cannot create %s: no random bytes from libcrypto", path);
    for (int i = 0; i < SECRETBOX_KEY_LEN; i++)
        snprintf(hex + 2 * i, 3, "%02x", key[i]);
    hex[2 * SECRETBOX_KEY_LEN] = '\n';
    char *tmp = xasprintf("%s.tmp", path);
    int rc = 0, fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, hex, 2 * SECRETBOX_KEY_LEN + 1) != 2 * SECRETBOX_KEY_LEN + 1 ||
        fsync(fd) != 0 || rename(tmp, path) != 0)
        rc = err_set(e, ERR_INTERNAL, "cannot create %s: %s", path, strerror(errno));
    if (fd >= 0)
        close(fd);
    int dfd = rc ? -1 : open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (!rc && (dfd < 0 || fsync(dfd) != 0))
        rc = err_set(e, ERR_INTERNAL, "cannot sync %s after creating %s: %s", dir, path,
                     strerror(errno));
    if (dfd >= 0)
        close(dfd);
    if (rc)
        unlink(tmp);
    free(tmp);
    OPENSSL_cleanse(hex, sizeof hex);
    return rc;
}

int secretbox_load(const char *key_file, const char *data_dir, struct err *e)
{
    uint8_t key[SECRETBOX_KEY_LEN];
    char *path = key_file ? xstrdup(key_file) : xasprintf("%s/" SECRETBOX_KEY_FILE, data_dir);
    int rc;
    if (!key_file && access(path, F_OK) != 0 && errno == ENOENT)
        rc = key_create(path, data_dir, key, e);
    else
        rc = key_read(path, key, e);
    if (rc == 0) {
        secretbox_set_key(key);
        snprintf(g_key_path, sizeof g_key_path, "%s", path);
    }
    OPENSSL_cleanse(key, sizeof key);
    free(path);
    return rc;
}

/* ---- sealing ---- */

/* AES-256-GCM over in[n] into out (n bytes) with the prefix as additional data; seal or open. */
static bool gcm(bool seal, const uint8_t nonce[NONCE_LEN], const uint8_t *in, int n, uint8_t *out,
                uint8_t tag[TAG_LEN])
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int len = 0, fin = 0, enc = seal ? 1 : 0;
    bool ok =
        ctx && EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, g_key, nonce, enc) == 1 &&
        EVP_CipherUpdate(ctx, NULL, &len, (const uint8_t *)SECRETBOX_PREFIX, PREFIX_LEN) == 1 &&
        EVP_CipherUpdate(ctx, out, &len, in, n) == 1;
    if (ok && !seal) /* the tag must be in place before Final checks it */
        ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) == 1;
    ok = ok && EVP_CipherFinal_ex(ctx, out + len, &fin) == 1;
    if (ok && seal)
        ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) == 1;
    EVP_CIPHER_CTX_free(ctx);
    return ok;
}

int secretbox_seal(const char *plain, char **out, struct err *e)
{
    size_t n = strlen(plain);
    if (!g_have_key || n == 0) {
        *out = xstrdup(plain);
        return 0;
    }
    if (n > (size_t)1 << 20)
        return err_set(e, ERR_INTERNAL, "secretbox: a secret of %zu bytes is too long", n);
    size_t raw_len = NONCE_LEN + n + TAG_LEN;
    uint8_t *raw = xmalloc(raw_len);
    *out = NULL;
    int rc = 0;
    if (RAND_bytes(raw, NONCE_LEN) != 1 ||
        !gcm(true, raw, (const uint8_t *)plain, (int)n, raw + NONCE_LEN, raw + NONCE_LEN + n)) {
        rc = err_set(e, ERR_INTERNAL, "secretbox: libcrypto could not seal a secret");
    } else {
        *out = xmalloc(PREFIX_LEN + 4 * ((raw_len + 2) / 3) + 1);
        memcpy(*out, SECRETBOX_PREFIX, PREFIX_LEN);
        EVP_EncodeBlock((uint8_t *)*out + PREFIX_LEN, raw, (int)raw_len);
    }
    free(raw);
    return rc;
}

/* base64 b64 (no line breaks) into *raw (heap) and *n; false when it is not base64. */
static bool b64_decode(const char *b64, uint8_t **raw, size_t *n)
{
    size_t len = strlen(b64);
    if (len == 0 || len % 4 != 0 || len > (size_t)2 << 20)
        return false;
    *raw = xmalloc(len / 4 * 3 + 1);
    int got = EVP_DecodeBlock(*raw, (const uint8_t *)b64, (int)len);
    if (got < 0) {
        free(*raw);
        return false;
    }
    /* EVP_DecodeBlock counts the bytes the '=' padding stands for. */
    size_t pad = (b64[len - 1] == '=') + (b64[len - 2] == '=');
    *n = (size_t)got - pad;
    return true;
}

int secretbox_open(const char *text, char **out, struct err *e)
{
    *out = NULL;
    if (!secretbox_is_sealed(text)) {
        *out = xstrdup(text);
        return 0;
    }
    if (!g_have_key)
        return err_set(e, ERR_INTERNAL, "secretbox: a sealed secret, and no key loaded");
    uint8_t *raw = NULL;
    size_t n = 0;
    if (!b64_decode(text + PREFIX_LEN, &raw, &n) || n < NONCE_LEN + TAG_LEN) {
        free(raw);
        return err_set(e, ERR_INTERNAL, "secretbox: a sealed secret is malformed");
    }
    size_t plain_len = n - NONCE_LEN - TAG_LEN;
    char *plain = xmalloc(plain_len + 1);
    int rc = 0;
    if (!gcm(false, raw, raw + NONCE_LEN, (int)plain_len, (uint8_t *)plain,
             raw + NONCE_LEN + plain_len) ||
        memchr(plain, '\0', plain_len)) {
        OPENSSL_cleanse(plain, plain_len);
        free(plain);
        rc = err_set(e, ERR_INTERNAL,
                     "secretbox: %s does not open a secret in the store: it was sealed under "
                     "another key (every node sharing a store needs the same key file, "
                     "--secret-key-file)",
                     g_key_path);
    } else {
        plain[plain_len] = '\0';
        *out = plain;
    }
    free(raw);
    return rc;
}

int secretbox_open_into(const char *text, char *dst, size_t size, struct err *e)
{
    char *plain;
    int rc = secretbox_open(text ? text : "", &plain, e);
    if (rc == 0) {
        snprintf(dst, size, "%s", plain);
        OPENSSL_cleanse(plain, strlen(plain));
        free(plain);
    }
    return rc;
}

/* ---- redaction ---- */

void secretbox_redact_dsn(const char *dsn, char *out, size_t cap)
{
    if (!cap)
        return;
    const char *start = strstr(dsn, "://");
    /* The last '@', as mysql_dsn_parse reads it: a password may hold an unescaped '@'. */
    const char *at = strrchr(dsn, '@');
    const char *colon =
        start ? memchr(start + 3, ':', at && at > start ? (size_t)(at - start - 3) : 0) : NULL;
    if (!colon) {
        snprintf(out, cap, "%s", dsn);
        return;
    }
    snprintf(out, cap, "%.*s***%s", (int)(colon + 1 - dsn), dsn, at);
}
