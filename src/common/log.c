/* Leveled stderr logging: timestamped lines, each written with one write() so lines never mix. */
#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/timefmt.h"

static enum log_level current = LOG_INFO;
static const char *const names[] = {"error", "warn", "info", "debug"};

int log_set_level_name(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, names[i]) == 0) {
            current = (enum log_level)i;
            return 0;
        }
    return -1;
}

void log_set_level(enum log_level level) { current = level; }
int log_enabled(enum log_level level) { return level <= current; }

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (level > current)
        return;
    char line[2048];
    char ts[25];
    time_fmt_iso_utc(time_now_ms(), ts);
    int n = snprintf(line, sizeof line, "%s %s ", ts, names[level]);
    va_list ap;
    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}

const char *log_field(const char *text, char *buf, size_t cap)
{
    size_t n = 0;
    for (const char *c = text ? text : ""; *c && n + 1 < cap; c++)
        buf[n++] = *c == '"' ? '\'' : ((unsigned char)*c < 0x20 ? ' ' : *c);
    buf[n] = '\0';
    return buf;
}
