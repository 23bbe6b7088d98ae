/* Start-up set-up: the store URL, data directory and lock; root account, credentials.json and its
 * AdminToken's place among the store's admin tokens. */
#include "daemon/bootstrap.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/auth.h"
#include "common/sha256.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/secretbox.h"
#include "common/timefmt.h"
#include "common/xalloc.h"

/* ---- the store URL ---- */

#define STORE_FILE_MAX 4096 /* a URL with every libpq option fits many times over */

/* Whether url carries a password: in its user-info (postgres://USER:PASSWORD@...) or as libpq's
 * password= option in its query string. */
static bool url_has_password(const char *url)
{
    size_t cap = strlen(url) + 8;
    char *shown = xmalloc(cap);
    secretbox_redact_dsn(url, shown, cap);
    bool has = strcmp(shown, url) != 0;
    free(shown);
    const char *q = strchr(url, '?');
    for (const char *p = q; p && !has; p = strchr(p + 1, '&'))
        has = strncmp(p + 1, "password=", 9) == 0;
    return has;
}

/* Reads the whole of the open file fd (at most STORE_FILE_MAX bytes) into *text (heap). */
static int read_small(int fd, const char *path, char **text, struct err *e)
{
    char *buf = xmalloc(STORE_FILE_MAX + 1);
    size_t len = 0;
    ssize_t n = 0;
    while (len <= STORE_FILE_MAX && (n = read(fd, buf + len, STORE_FILE_MAX + 1 - len)) > 0)
        len += (size_t)n;
    int rc = 0;
    if (n < 0)
        rc = err_set(e, ERR_INVALID_PARAMETER_VALUE, "--store-file %s: %s", path, strerror(errno));
    else if (len > STORE_FILE_MAX)
        rc = err_set(e, ERR_INVALID_PARAMETER_VALUE,
                     "--store-file %s: longer than %d bytes; it holds one store URL", path,
                     STORE_FILE_MAX);
    buf[len > STORE_FILE_MAX ? STORE_FILE_MAX : len] = '\0';
    if (rc) {
        explicit_bzero(buf, STORE_FILE_MAX + 1);
        free(buf);
        buf = NULL;
    }
    *text = buf;
    return rc;
}

/* Opens path for reading when it is a regular file that only its owner may read or write. */
static int open_private(const char *path, int *fd, struct err *e)
{
    *fd = open(path, O_RDONLY | O_CLOEXEC);
    if (*fd < 0)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "--store-file %s: %s", path,
                       strerror(errno));
    struct stat st;
    int rc = 0;
    if (fstat(*fd, &st) != 0)
        rc = err_set(e, ERR_INVALID_PARAMETER_VALUE, "--store-file %s: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        rc = err_set(e, ERR_INVALID_PARAMETER_VALUE, "--store-file %s: not a regular file", path);
    else if (st.st_mode & 077)
        rc = err_set(e, ERR_INVALID_PARAMETER_VALUE,
                     "--store-file %s: mode %04o gives group or others access to the store's "
                     "password; make it private (chmod 600 %s) and start again",
                     path, (unsigned)(st.st_mode & 07777), path);
    if (rc) {
        close(*fd);
        *fd = -1;
    }
    return rc;
}

/* The store URL in the file: surrounding blanks and line ends go, one line must remain. */
static int read_store_file(const char *path, char **url, struct err *e)
{
    int fd;
    char *text = NULL;
    int rc = open_private(path, &fd, e);
    if (rc == 0) {
        rc = read_small(fd, path, &text, e);
        close(fd);
    }
    if (rc)
        return rc;
    size_t start = strspn(text, " \t\r\n"), end = strlen(text);
    while (end > start && strchr(" \t\r\n", text[end - 1]))
        end--;
    if (end == start)
        rc = err_set(e, ERR_INVALID_PARAMETER_VALUE,
                     "--store-file %s is empty; write the store URL in it "
                     "(postgres://USER:PASSWORD@HOST:PORT/DB)",
                     path);
    else if (memchr(text + start, '\n', end - start))
        rc = err_set(e, ERR_INVALID_PARAMETER_VALUE,
                     "--store-file %s: expected one line, the store URL; it has several", path);
    else
        *url = xasprintf("%.*s", (int)(end - start), text + start);
    explicit_bzero(text, STORE_FILE_MAX + 1);
    free(text);
    return rc;
}

int bootstrap_store_url(const char *store, const char *store_file, char **url, struct err *e)
{
    *url = NULL;
    if (store_file)
        return read_store_file(store_file, url, e);
    if (!store)
        return 0;
    if (url_has_password(store))
        log_warn("the --store URL holds a password, which every local user can read (ps, "
                 "/proc/PID/cmdline): leave it out of the URL (libpq then reads ~/.pgpass or "
                 "PGPASSFILE) or give the URL in a private file with --store-file FILE");
    *url = xstrdup(store);
    return 0;
}

void bootstrap_store_url_free(char *url)
{
    if (!url)
        return;
    explicit_bzero(url, strlen(url));
    free(url);
}

/* ---- the data directory ---- */

int bootstrap_data_dir(const char *dir, struct err *e)
{
    char *path = xstrdup(dir);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST) {
            err_set(e, ERR_INTERNAL, "cannot create %s: %s", path, strerror(errno));
            free(path);
            return ERR_INTERNAL;
        }
        *p = '/';
    }
    int rc = 0;
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        rc = err_set(e, ERR_INTERNAL, "cannot create data directory %s: %s", path, strerror(errno));
    free(path);
    return rc;
}

int bootstrap_lock(const char *dir, int *fd, struct err *e)
{
    char *path = xasprintf("%s/asyncd.lock", dir);
    int rc = 0;
    *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (*fd < 0) {
        rc = err_set(e, ERR_INTERNAL, "cannot open %s: %s", path, strerror(errno));
    } else if (fcntl(*fd, F_SETLK, &(struct flock){.l_type = F_WRLCK, .l_whence = SEEK_SET}) != 0) {
        char pid[32] = "";
        ssize_t n = pread(*fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        rc = err_set(e, ERR_INTERNAL,
                     "another asyncd (pid %s) is using the data directory %s; stop it, or give "
                     "this one its own --data",
                     *pid ? pid : "?", dir);
        close(*fd);
        *fd = -1;
    } else {
        char pid[32];
        int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
        if (ftruncate(*fd, 0) != 0 || pwrite(*fd, pid, (size_t)len, 0) != len)
            log_warn("cannot write the pid into %s: %s", path, strerror(errno));
    }
    free(path);
    return rc;
}

/* Writes text to path through a temporary file, fsync and rename, so the file is whole or absent.
 */
static int write_file_durably(const char *path, const char *text, struct err *e)
{
    char *tmp = xasprintf("%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int rc = 0;
    if (fd < 0) {
        rc = err_set(e, ERR_INTERNAL, "cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    size_t len = strlen(text);
    if (write(fd, text, len) != (ssize_t)len || fsync(fd) != 0)
        rc = err_set(e, ERR_INTERNAL, "cannot write %s: %s", tmp, strerror(errno));
    close(fd);
    if (!rc && rename(tmp, path) != 0)
        rc = err_set(e, ERR_INTERNAL, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
out:
    free(tmp);
    return rc;
}

/* Puts the hash of credentials.json's AdminToken in the store as an admin token, unless a token
 * with that hash is there already -- live (another node with a copy of the file, or an earlier
 * start) or revoked (an operator withdrew it: it stays withdrawn). So an upgraded data dir, whose
 * store had no tokens, keeps its AdminToken, and every node's AdminToken works on every node. */
static int register_admin_token(struct store *s, const char *admin_token, struct err *e)
{
    struct token t = {.created_ms = time_now_ms()};
    memcpy(t.id, "tok-", 4);
    ids_hex(t.id + 4, 8);
    snprintf(t.name, sizeof t.name, "credentials.json AdminToken");
    snprintf(t.scope, sizeof t.scope, "admin");
    sha256_hex(admin_token, strlen(admin_token), t.hash);
    int rc = store_token_create(s, &t, e);
    if (rc == 0)
        log_info("the AdminToken of credentials.json is admin token %s", t.id);
    return rc == ERR_ALREADY_EXISTS ? 0 : rc;
}

/* Writes credentials.json for the store's first root account (creating it when the store has
 * none) and a fresh admin token. Nodes that start together on one shared store agree on the root
 * account (store_account_first_root); each node keeps its own admin token. */
static int create_credentials(struct store *s, const char *path, char **token, struct err *e)
{
    char admin_token[65];
    ids_hex(admin_token, 32);
    struct account cand = {0}, root = {0};
    auth_mint(&cand, true);
    int rc = store_account_first_root(s, &cand, &root, e);
    /* In the store before the file: a token written to credentials.json always works. */
    if (!rc)
        rc = register_admin_token(s, admin_token, e);
    if (rc) {
        account_clear(&cand);
        account_clear(&root);
        return rc;
    }
    bool created = strcmp(cand.uin, root.uin) == 0;
    json_t *j =
        json_pack("{s:s, s:s, s:s, s:s, s:s}", "AppId", root.app_id, "Uin", root.uin, "SecretId",
                  root.secret_id, "SecretKey", root.secret_key, "AdminToken", admin_token);
    char *text = json_dumps(j, JSON_INDENT(2));
    char *with_nl = xasprintf("%s\n", text);
    /* A crash before the file is whole only means the next start writes it again. */
    rc = write_file_durably(path, with_nl, e);
    free(with_nl);
    free(text);
    json_decref(j);
    account_clear(&root);
    account_clear(&cand);
    if (rc)
        return rc;
    log_info("%s; credentials written to %s",
             created ? "first start: created the root account" : "wrote the root account's keys",
             path);
    *token = xstrdup(admin_token);
    return 0;
}

static int read_token(const char *path, char **token, struct err *e)
{
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j)
        return err_set(e, ERR_INTERNAL,
                       "%s cannot be read (%s); move it away to have it written "
                       "again",
                       path, je.text);
    const char *t = json_string_value(json_object_get(j, "AdminToken"));
    int rc = 0;
    if (!t || strlen(t) < 16)
        rc = err_set(e, ERR_INTERNAL, "%s has no AdminToken of at least 16 characters", path);
    else
        *token = xstrdup(t);
    json_decref(j);
    return rc;
}

int bootstrap_credentials(struct store *s, const char *dir, char **token, struct err *e)
{
    char *path = xasprintf("%s/credentials.json", dir);
    int rc = 0;
    if (access(path, F_OK) != 0) {
        rc = create_credentials(s, path, token, e);
    } else {
        rc = read_token(path, token, e);
        if (!rc)
            rc = register_admin_token(s, *token, e);
        if (rc) {
            free(*token);
            *token = NULL;
        }
    }
    free(path);
    return rc;
}
