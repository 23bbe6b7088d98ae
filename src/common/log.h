/* Leveled logging to stderr, one line per call, written whole (scripts wait for lines). */
#ifndef ASYNCD_LOG_H
#define ASYNCD_LOG_H

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* The enum log_level of "error", "warn", "info" or "debug"; -1 for another word. */
int log_level_parse(const char *name);
/* "error", "warn", "info" or "debug"; -1 for another word. Safe while other threads log. */
int log_set_level_name(const char *name);
/* "text" (default: "TIME LEVEL message") or "json" (one object per line: ts, level, msg, and
 * each key=value word of msg as a field of its own); -1 for another word. */
int log_set_format_name(const char *name);
void log_set_level(enum log_level level);
int log_enabled(enum log_level level);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The calling thread's lines from log_hold to its matching log_release are written together,
 * in order, in writes of at most PIPE_BUF bytes (whole lines each: atomic on a pipe, so never
 * mixed with another thread's); a line longer than that alone, as without a hold. A warning or an
 * error is written at once, with the lines held before it. Calls nest: the outermost release
 * writes. Hold only across work that never blocks for long (no step, no sleep, no wait): held
 * lines are late by that long, and lost if the process is killed before the release. */
void log_hold(void);
void log_release(void);

/* text made fit for one quoted field of a line: quotes become ', control characters (a step's
 * stderr, an operator's message: newlines would forge lines) become spaces; cut to cap - 1 bytes.
 * Returns buf. */
#include <stddef.h>
const char *log_field(const char *text, char *buf, size_t cap);

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
