/* iso_time: RFC 3339 time strings to UTC (twin/iso_time.h). */
#include "twin/iso_time.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Reads exactly n digits at *p (advancing it). -1 when one of them is no digit. */
static int digits(const char **p, int n)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (!is_digit((*p)[i]))
            return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    return v;
}

/* Reads the number of n digits at *p, then checks it lies in [lo, hi] and that the character
 * after it is sep (none when sep is 0). -1 otherwise. */
static int field(const char **p, int n, int lo, int hi, char sep)
{
    int v = digits(p, n);

    if (v < lo || v > hi)
        return -1;
    if (sep) {
        if (**p != sep)
            return -1;
        (*p)++;
    }
    return v;
}

static bool is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

    return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (y >= 1): the civil-day
 * count of the shifted year that starts in March, so Feb 29 is the last day of its year. */
static int64_t days_from_civil(int y, int m, int d)
{
    int64_t yy = m <= 2 ? y - 1 : y;
    int64_t era = yy / 400, yoe = yy - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

    return era * 146097 + doe - 719468;
}

/* Reads ".f" at *p if there is one: at least one digit, the first 9 kept as nanoseconds. */
static long fraction(const char **p)
{
    long ns = 0;
    int n = 0;

    if (**p != '.')
        return 0;
    (*p)++;
    if (!is_digit(**p))
        return -1;
    for (; is_digit(**p); (*p)++, n++)
        if (n < 9)
            ns = ns * 10 + (**p - '0');
    for (; n < 9; n++)
        ns *= 10;
    return ns;
}

/* Reads the offset at *p, which must end the string: its seconds east of UTC into *ret.
 * -1 when it is not one. */
static int offset(const char *p, int *ret)
{
    int sign, hh, mm;

    if ((*p == 'Z' || *p == 'z') && p[1] == '\0') {
        *ret = 0;
        return 0;
    }
    if (*p != '+' && *p != '-')
        return -1;
    sign = *p++ == '-' ? -1 : 1;
    hh = field(&p, 2, 0, 23, 0);
    if (hh < 0)
        return -1;
    if (*p == ':')
        p++;
    mm = field(&p, 2, 0, 59, 0);
    if (mm < 0 || *p != '\0')
        return -1;
    *ret = sign * (hh * 3600 + mm * 60);
    return 0;
}

int iso_time_parse(const char *s, struct timespec *ret)
{
    const char *p = s;
    int y, mo, d, h, mi, sec, off;
    long ns;
    int64_t t;

    if (!s || !ret)
        return -EINVAL;
    y = field(&p, 4, 1970, 9999, '-');
    mo = y < 0 ? -1 : field(&p, 2, 1, 12, '-');
    d = mo < 0 ? -1 : field(&p, 2, 1, days_in_month(y, mo), 0);
    if (d < 0 || (*p != 'T' && *p != 't' && *p != ' '))
        return -EINVAL;
    p++;
    h = field(&p, 2, 0, 23, ':');
    mi = h < 0 ? -1 : field(&p, 2, 0, 59, ':');
    sec = mi < 0 ? -1 : field(&p, 2, 0, 60, 0);
    if (sec < 0)
        return -EINVAL;
    ns = fraction(&p);
    if (ns < 0 || offset(p, &off) < 0)
        return -EINVAL;
    if (sec == 60)
        sec = 59;
    t = days_from_civil(y, mo, d) * 86400 + (int64_t)h * 3600 + (int64_t)mi * 60 + sec - off;
    if (t < 0)
        return -EINVAL;
    ret->tv_sec = (time_t)t;
    ret->tv_nsec = ns;
    return 0;
}
