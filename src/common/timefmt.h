/* Clocks and time strings: Unix ms now, the Cloud API's local "YYYY-MM-DD HH:MM:SS" (in the zone
 * chosen with --tz, applied through TZ at start-up) and the admin API's ISO-8601 UTC. */
#ifndef ASYNCD_TIMEFMT_H
#define ASYNCD_TIMEFMT_H
#include <stdint.h>

int64_t time_now_ms(void);  /* CLOCK_REALTIME */
int64_t time_mono_ns(void); /* CLOCK_MONOTONIC */
/* "2026-11-23 12:00:00" in the process's local zone; out needs 20 bytes. */
void time_fmt_local(int64_t ms, char out[20]);
/* "2026-11-23T04:00:00.000Z"; out needs 25 bytes. */
void time_fmt_iso_utc(int64_t ms, char out[25]);
/* "2026-11-23" (UTC) of a Unix time in seconds; out needs 11 bytes. */
void time_fmt_utc_date(int64_t unix_s, char out[11]);
/* Parses "YYYY-MM-DD HH:MM:SS" in the local zone (--tz) into Unix ms; 0, or -1 when malformed. */
int time_parse_local(const char *s, int64_t *ms);
/* Parses an RFC 3339 time ("2026-11-23T04:00:00Z", "2026-11-23T12:00:00.5+08:00") into Unix ms;
 * 0, or -1 when s is not one (a leap second :60 is read as :59). */
int time_parse_rfc3339(const char *s, int64_t *ms);
/* Sets the zone used by time_fmt_local (e.g. "UTC", "Asia/Shanghai"); 0 or
 * ERR_INVALID_PARAMETER_VALUE when no such zone exists in the system's zoneinfo. Call before
 * threads start. */
int time_set_zone(const char *zone, char *why, unsigned whylen);

#endif
