/* iso_time: the twin's time strings (RFC 3339, the ISO 8601 profile it sends) as UTC seconds
 * and nanoseconds since the epoch.
 *
 * Accepted: "YYYY-MM-DDThh:mm:ss[.f]OFFSET" where
 *   - the separator is 'T', 't' or one space;
 *   - the fraction has 1 or more digits after '.': the first 9 are kept, further ones are cut
 *     (never rounded: a time never moves into the next second);
 *   - OFFSET is 'Z', 'z', "+hh:mm", "-hh:mm", "+hhmm" or "-hhmm" (hh 00..23, mm 00..59);
 *     "-00:00" is UTC. A time with no offset is refused: it would depend on a time zone.
 * The year is 1970..9999, the date a real one (no Feb 30; Feb 29 only in leap years), hour
 * 00..23, minute 00..59, second 00..59. A leap second ":60" is read as ":59" with its fraction:
 * POSIX time has no leap seconds, and an event stamped during one still gets a time near its
 * true one. A time that falls before the epoch once its offset is applied is refused, as is
 * anything else around or after the string (spaces, a second offset).
 *
 * The parse is pure arithmetic: no locale, no TZ, no static state, so it is thread-safe. */
#pragma once
#include <time.h>

/* Parses s into *ret (untouched on failure). Returns 0, or -EINVAL for NULL or a string that
 * is not such a time. */
int iso_time_parse(const char *s, struct timespec *ret);
