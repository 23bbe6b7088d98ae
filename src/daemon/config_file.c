/* --config FILE: splits lines into flag names and values for the command line's own parser. */
#include "daemon/config_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

/* Larger than any config a person writes; a bigger file is a mistake (a database, a log). */
#define CONFIG_MAX_BYTES (1 << 20)

static int slurp(const char *path, char **text, struct err *e)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "--config %s: %s", path, strerror(errno));
    char *buf = xmalloc(CONFIG_MAX_BYTES + 1);
    size_t n = fread(buf, 1, CONFIG_MAX_BYTES + 1, f);
    int bad = ferror(f);
    fclose(f);
    *text = buf;
    if (bad)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "--config %s: read error", path);
    if (n > CONFIG_MAX_BYTES)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "--config %s: larger than %d bytes", path,
                       CONFIG_MAX_BYTES);
    buf[n] = '\0';
    if (memchr(buf, '\0', n))
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "--config %s: not a text file", path);
    return 0;
}

static int is_blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

static char *trim(char *s)
{
    while (is_blank(*s))
        s++;
    size_t n = strlen(s);
    while (n && is_blank(s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* Cuts one line (NUL-terminated in place) into name and value; the value is NULL when the line
 * is a bare name. */
static int split_line(char *line, const char **name, const char **value, struct err *e)
{
    char *s = trim(line);
    size_t len = strcspn(s, " \t=");
    if (len == 0)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "expected `name = value`, got \"%.64s\"", s);
    char *rest = s + len;
    int had_eq = *rest == '=';
    if (*rest)
        *rest++ = '\0';
    rest = trim(rest);
    if (!had_eq && *rest == '=') {
        had_eq = 1;
        rest = trim(rest + 1);
    }
    if (strncmp(s, "--", 2) == 0)
        return err_set(e, ERR_INVALID_PARAMETER_VALUE, "%s: write flag names without --", s);
    *name = s;
    *value = *rest || had_eq ? rest : NULL;
    return 0;
}

int config_file_read(const char *path, config_flag_fn fn, void *ctx, char **text, struct err *e)
{
    *text = NULL;
    int rc = slurp(path, text, e);
    unsigned lineno = 0;
    for (char *line = *text, *next; !rc && line && *line; line = next) {
        lineno++;
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        const char *s = line + strspn(line, " \t\r");
        if (*s == '\0' || *s == '#')
            continue;
        const char *name = NULL, *value = NULL;
        struct err le = {0};
        rc = split_line(line, &name, &value, &le);
        if (!rc)
            rc = fn(ctx, name, value, &le);
        if (rc)
            err_set(e, rc, "%s:%u: %s", path, lineno, le.msg);
    }
    return rc;
}
