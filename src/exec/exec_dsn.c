/* A step's copy of its instance's DSN: the password goes in a private 0600 file, never in the
 * step's environment or argv (docs/flows.md, "What a step child gets"). */
#include "exec/exec_int.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/xalloc.h"

/* Where the private directory goes when asyncd has no absolute TMPDIR. */
#define DEFAULT_TMPDIR "/tmp"

char *exec_dsn_without_password(const char *dsn)
{
    const char *s = strstr(dsn, "://");
    const char *at = strrchr(dsn, '@');
    s = s ? s + 3 : dsn;
    const char *colon = at && at > s ? memchr(s, ':', (size_t)(at - s)) : NULL;
    if (!colon)
        return xstrdup(dsn);
    return xasprintf("%.*s%s", (int)(colon - dsn), dsn, at);
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st, (void)type, (void)ftw;
    remove(path);
    return 0; /* go on: remove what can be removed */
}

void exec_dsn_file_remove(struct exec_dsn_file *f)
{
    if (f->dir)
        nftw(f->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f->dir);
    free(f->path);
    f->dir = f->path = NULL;
}

/* The directory's parent: asyncd's TMPDIR when it is an absolute path, else /tmp. Read in the
 * parent before any child starts. */
static const char *tmp_parent(void)
{
    const char *tmp = getenv("TMPDIR");
    return tmp && tmp[0] == '/' ? tmp : DEFAULT_TMPDIR;
}

int exec_dsn_file_write(struct exec_dsn_file *f, const char *dsn, char *why, size_t cap)
{
    f->dir = xasprintf("%s/asyncd-step-XXXXXX", tmp_parent());
    f->path = NULL;
    if (!mkdtemp(f->dir)) {
        snprintf(why, cap, "mkdtemp %.300s: %s", f->dir, strerror(errno));
        free(f->dir);
        f->dir = NULL;
        return -1;
    }
    f->path = xasprintf("%s/dsn", f->dir);
    int fd = open(f->path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    int failed = fd < 0 || write_all(fd, dsn, strlen(dsn)) < 0;
    int err = errno;
    if (fd >= 0 && close(fd) < 0 && !failed) {
        failed = 1;
        err = errno;
    }
    if (failed) {
        snprintf(why, cap, "writing %.300s: %s", f->path, strerror(err));
        exec_dsn_file_remove(f);
        return -1;
    }
    return 0;
}
