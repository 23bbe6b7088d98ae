/* Clocks and the three time-string formats asyncd speaks. */
#include "common/timefmt.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/errors.h"

int64_t time_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t time_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void time_fmt_local(int64_t ms, char out[20])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(out, 20, "%Y-%m-%d %H:%M:%S", &tm);
}

void time_fmt_iso_utc(int64_t ms, char out[25])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char base[20];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    int frac = (int)(((ms % 1000) + 1000) % 1000);
    memcpy(out, base, 19);
    out[19] = '.';
    out[20] = (char)('0' + frac / 100);
    out[21] = (char)('0' + frac / 10 % 10);
    out[22] = (char)('0' + frac % 10);
    out[23] = 'Z';
    out[24] = '\0';
}

void time_fmt_utc_date(int64_t unix_s, char out[11])
{
    time_t t = (time_t)unix_s;
    struct tm tm;
    /* A year past 9999 does not fit YYYY-MM-DD: an empty string, never an unset buffer. */
    if (!gmtime_r(&t, &tm) || strftime(out, 11, "%Y-%m-%d", &tm) == 0)
        out[0] = '\0';
}

int time_parse_local(const char *s, int64_t *ms)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(s, "%Y-%m-%d %H:%M:%S", &tm);
    if (!end || *end)
        return -1;
    tm.tm_isdst = -1;
    time_t t = mktime(&tm);
    if (t == (time_t)-1)
        return -1;
    *ms = (int64_t)t * 1000;
    return 0;
}

/* glibc silently treats an unknown TZ as UTC, so check the zone file exists first. */
int time_set_zone(const char *zone, char *why, unsigned whylen)
{
    if (!zone || !*zone)
        return 0;
    if (strcmp(zone, "UTC") != 0 && strcmp(zone, "GMT") != 0) {
        char path[512];
        const char *dir = getenv("TZDIR") ? getenv("TZDIR") : "/usr/share/zoneinfo";
        snprintf(path, sizeof path, "%s/%s", dir, zone);
        if (zone[0] == '/' || strstr(zone, "..") || access(path, R_OK) != 0) {
            snprintf(why, whylen, "--tz %s: no such zone in %s (e.g. UTC, Asia/Shanghai)", zone,
                     dir);
            return ERR_INVALID_PARAMETER_VALUE;
        }
    }
    setenv("TZ", zone, 1);
    tzset();
    return 0;
}

/* Reads exactly `digits` decimal digits at *p into *out and moves *p past them. */
static bool take_digits(const char **p, int digits, int *out)
{
    int v = 0;
    for (int i = 0; i < digits; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (c - '0');
    }
    *p += digits;
    *out = v;
    return true;
}

static bool take_char(const char **p, const char *allowed)
{
    if (!**p || !strchr(allowed, **p))
        return false;
    (*p)++;
    return true;
}

/* The zone part of an RFC 3339 time: Z, or +HH:MM / -HH:MM as seconds east of UTC. */
static bool take_zone(const char **p, long *offset_s)
{
    if (take_char(p, "Zz")) {
        *offset_s = 0;
        return true;
    }
    char sign = **p;
    int hh, mm;
    if (!take_char(p, "+-") || !take_digits(p, 2, &hh) || !take_char(p, ":") ||
        !take_digits(p, 2, &mm) || hh > 23 || mm > 59)
        return false;
    *offset_s = (sign == '-' ? -1L : 1L) * (hh * 3600L + mm * 60L);
    return true;
}

int time_parse_rfc3339(const char *s, int64_t *ms)
{
    struct tm tm = {0};
    int Y, M, D, h, m, sec, frac_ms = 0;
    const char *p = s;
    if (!take_digits(&p, 4, &Y) || !take_char(&p, "-") || !take_digits(&p, 2, &M) ||
        !take_char(&p, "-") || !take_digits(&p, 2, &D) || !take_char(&p, "Tt ") ||
        !take_digits(&p, 2, &h) || !take_char(&p, ":") || !take_digits(&p, 2, &m) ||
        !take_char(&p, ":") || !take_digits(&p, 2, &sec))
        return -1;
    if (take_char(&p, ".")) { /* fraction: milliseconds kept, finer digits read and dropped */
        int scale = 100, n = 0;
        for (; *p >= '0' && *p <= '9'; p++, n++, scale /= 10)
            frac_ms += scale * (*p - '0');
        if (n == 0)
            return -1;
    }
    long offset_s;
    if (!take_zone(&p, &offset_s) || *p || M < 1 || M > 12 || D < 1 || h > 23 || m > 59 || sec > 60)
        return -1;
    tm.tm_year = Y - 1900, tm.tm_mon = M - 1, tm.tm_mday = D;
    tm.tm_hour = h, tm.tm_min = m, tm.tm_sec = sec > 59 ? 59 : sec; /* a leap second: :59 */
    time_t t = timegm(&tm);
    if (tm.tm_mday != D || tm.tm_mon != M - 1) /* timegm rolled 31 April over into May */
        return -1;
    *ms = ((int64_t)t - offset_s) * 1000 + frac_ms;
    return 0;
}
