/* Leveled stderr logging: timestamped lines, written whole by one write() so lines never mix.
 * A thread may hold its lines a moment (log_hold) and write them together: one write of at most
 * PIPE_BUF bytes, which a pipe (systemd, docker) keeps whole, so no other thread's line lands
 * inside it. The engine's flusher logs a line per task of its batch: one write for the batch. */
#include "common/log.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/timefmt.h"

/* _Atomic: SIGHUP changes the level while every thread logs (main.c, reload). */
static _Atomic int current = LOG_INFO;
static int json_lines; /* --log-format json */
static const char *const names[] = {"error", "warn", "info", "debug"};

/* A thread's held lines: whole lines only, never more than one atomic pipe write. */
struct held {
    int depth; /* log_hold calls not yet released */
    size_t n;
    char buf[PIPE_BUF];
};
static _Thread_local struct held held;

static void write_out(const char *buf, size_t n)
{
    ssize_t w = write(STDERR_FILENO, buf, n);
    (void)w; /* nowhere to report a failed log write */
}

static void held_flush(void)
{
    if (held.n)
        write_out(held.buf, held.n);
    held.n = 0;
}

void log_hold(void) { held.depth++; }

void log_release(void)
{
    if (held.depth > 0 && --held.depth == 0)
        held_flush();
}

/* Writes line[0..n) (whole lines): into the held buffer while the thread holds, unless the line
 * would not fit in one atomic write at all (then alone, after what was held). A warning or an
 * error goes out at once, with what was held before it (still one write when all fits): an
 * operator sees it even if the process dies next. */
static void emit(enum log_level level, const char *line, size_t n)
{
    if (held.depth == 0) {
        write_out(line, n);
        return;
    }
    if (held.n + n > sizeof held.buf)
        held_flush();
    if (n > sizeof held.buf) {
        write_out(line, n);
        return;
    }
    memcpy(held.buf + held.n, line, n);
    held.n += n;
    if (level <= LOG_WARN)
        held_flush();
}

int log_level_parse(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, names[i]) == 0)
            return i;
    return -1;
}

int log_set_level_name(const char *name)
{
    int level = log_level_parse(name);
    if (level < 0)
        return -1;
    current = level;
    return 0;
}

int log_set_format_name(const char *name)
{
    if (strcmp(name, "text") != 0 && strcmp(name, "json") != 0)
        return -1;
    json_lines = strcmp(name, "json") == 0;
    return 0;
}

void log_set_level(enum log_level level) { current = (int)level; }
int log_enabled(enum log_level level) { return (int)level <= current; }

/* Appends s[0..n) as JSON string content (quotes, backslashes, control characters escaped). */
static size_t json_escape(char *out, size_t at, size_t cap, const char *s, size_t n)
{
    for (size_t i = 0; i < n && at + 7 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            out[at++] = '\\';
            out[at++] = (char)c;
        } else if (c < 0x20) {
            at += (size_t)snprintf(out + at, cap - at, "\\u%04x", c);
        } else {
            out[at++] = (char)c;
        }
    }
    return at;
}

static size_t json_pair(char *out, size_t at, size_t cap, const char *k, size_t kn, const char *v,
                        size_t vn)
{
    if (at + kn + 8 >= cap)
        return at;
    out[at++] = ',';
    out[at++] = '"';
    at = json_escape(out, at, cap, k, kn);
    memcpy(out + at, "\":\"", 3);
    at = json_escape(out, at + 3, cap, v, vn);
    if (at + 1 < cap)
        out[at++] = '"';
    return at;
}

/* The key=value (or key="...") words of a message as fields of their own, so a transition line
 * (engine/engine_log.h) is queryable; "task ID" at the start gives the field task. */
static size_t json_fields(char *out, size_t at, size_t cap, const char *msg)
{
    const char *p = msg;
    if (strncmp(p, "task ", 5) == 0) {
        size_t n = strcspn(p + 5, " ");
        at = json_pair(out, at, cap, "task", 4, p + 5, n);
    }
    for (; *p; p++) {
        if (p != msg && p[-1] != ' ')
            continue;
        size_t kn = strspn(p, "abcdefghijklmnopqrstuvwxyz_");
        if (kn == 0 || p[kn] != '=')
            continue;
        const char *v = p + kn + 1;
        size_t vn;
        if (*v == '"') {
            v++;
            const char *end = strchr(v, '"');
            vn = end ? (size_t)(end - v) : strlen(v);
        } else {
            vn = strcspn(v, " ");
        }
        at = json_pair(out, at, cap, p, kn, v, vn);
        p = v + vn - 1;
    }
    return at;
}

static size_t json_line(char *out, size_t cap, const char *ts, const char *level, const char *msg)
{
    size_t at = (size_t)snprintf(out, cap, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"", ts, level);
    at = json_escape(out, at, cap - 3, msg, strlen(msg));
    out[at++] = '"';
    at = json_fields(out, at, cap - 3, msg);
    out[at++] = '}';
    return at;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if ((int)level > current)
        return;
    char msg[2048], line[6144];
    char ts[25];
    time_fmt_iso_utc(time_now_ms(), ts);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t n;
    if (json_lines) {
        n = json_line(line, sizeof line - 1, ts, names[level], msg);
    } else {
        int w = snprintf(line, sizeof line - 1, "%s %s %s", ts, names[level], msg);
        n = w < 0 ? 0 : ((size_t)w > sizeof line - 2 ? sizeof line - 2 : (size_t)w);
    }
    line[n++] = '\n';
    emit(level, line, n);
}

const char *log_field(const char *text, char *buf, size_t cap)
{
    size_t n = 0;
    for (const char *c = text ? text : ""; *c && n + 1 < cap; c++)
        buf[n++] = *c == '"' ? '\'' : ((unsigned char)*c < 0x20 ? ' ' : *c);
    buf[n] = '\0';
    return buf;
}
