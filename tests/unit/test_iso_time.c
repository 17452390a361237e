/* test_iso_time: the twin's RFC 3339 time strings to UTC seconds and nanoseconds. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "twin/iso_time.h"
#include "unit.h"

/* Expected seconds are known epoch values (e.g. `date -u -d 2026-01-05T09:05:00Z +%s`), not
 * computed by the code under test. */
static const struct {
    const char *s;
    long long sec;
    long nsec;
} good[] = {
    {"1970-01-01T00:00:00Z", 0, 0},
    {"2001-09-09T01:46:40Z", 1000000000, 0},
    {"2009-02-13T23:31:30Z", 1234567890, 0},
    {"2038-01-19T03:14:08Z", 2147483648LL, 0}, /* past 32-bit time_t */
    {"2026-01-05T09:05:00.120Z", 1767603900, 120000000},
    {"2026-01-05t09:05:00.12z", 1767603900, 120000000},
    {"2026-01-05 09:05:00.120Z", 1767603900, 120000000},
    {"2026-01-05T09:05:00Z", 1767603900, 0},
    {"2026-01-05T11:05:00+02:00", 1767603900, 0},
    {"2026-01-05T11:05:00+0200", 1767603900, 0},
    {"2026-01-05T03:35:00-0530", 1767603900, 0},
    {"2026-01-05T03:35:00.5-05:30", 1767603900, 500000000},
    {"2026-01-05T09:05:00-00:00", 1767603900, 0},
    {"2026-01-06T09:04:00+23:59", 1767603900, 0},
    {"2026-01-04T09:06:00-23:59", 1767603900, 0},
    {"1970-01-01T05:30:00+05:30", 0, 0},
    {"1970-01-01T00:00:00-00:01", 60, 0},
    {"2026-03-29T01:30:00Z", 1774747800, 0}, /* a DST change in Europe: no TZ applies */
    /* Fractions: 1 to 9 digits, more are cut, never rounded. */
    {"2026-01-05T09:05:00.1Z", 1767603900, 100000000},
    {"2026-01-05T09:05:00.000000001Z", 1767603900, 1},
    {"2026-01-05T09:05:00.123456789Z", 1767603900, 123456789},
    {"2026-01-05T09:05:00.1234567891Z", 1767603900, 123456789},
    {"2026-01-05T09:05:00.99999999999999999999999999999999Z", 1767603900, 999999999},
    {"2026-01-05T09:05:00.000Z", 1767603900, 0},
    /* Calendar edges. */
    {"2000-02-29T12:00:00Z", 951825600, 0},
    {"1972-02-29T00:00:00Z", 68169600, 0},
    {"2024-02-29T23:59:59Z", 1709251199, 0},
    {"2100-02-28T00:00:00Z", 4107456000LL, 0},
    {"2100-03-01T00:00:00Z", 4107542400LL, 0},
    {"9999-12-31T23:59:59.999999999Z", 253402300799LL, 999999999},
    /* A leap second reads as :59, its fraction kept. */
    {"2016-12-31T23:59:60Z", 1483228799, 0},
    {"2016-12-31T23:59:60.5Z", 1483228799, 500000000},
};

static const char *const bad[] = {
    "",
    "2026-01-05T09:05:00", /* no offset: would depend on a time zone */
    "2026-01-05T09:05:00.120",
    "2026-01-05",
    "2026-01-05T09:05Z",     /* no seconds */
    "2026-01-05T09:05:00Z ", /* trailing garbage */
    "2026-01-05T09:05:00Zx",
    "2026-01-05T09:05:00ZZ",
    "2026-01-05T09:05:00+02:00Z",
    "2026-01-05T09:05:00Z\n",
    " 2026-01-05T09:05:00Z",
    "+2026-01-05T09:05:00Z",
    "2026-13-01T00:00:00Z",
    "2026-00-01T00:00:00Z",
    "2026-01-00T00:00:00Z",
    "2026-01-32T00:00:00Z",
    "2026-02-30T00:00:00Z",
    "2026-04-31T00:00:00Z",
    "2023-02-29T00:00:00Z",
    "2100-02-29T00:00:00Z",
    "2026-01-05T24:00:00Z",
    "2026-01-05T09:60:00Z",
    "2026-01-05T09:05:61Z",
    "2026-1-05T09:05:00Z",
    "26-01-05T09:05:00Z",
    "02026-01-05T09:05:00Z",
    "10000-01-01T00:00:00Z",
    "1969-12-31T23:59:59Z",
    "1970-01-01T00:00:00+00:01", /* before the epoch in UTC */
    "0000-01-01T00:00:00Z",
    "2026-01-05X09:05:00Z",
    "2026-01-05\t09:05:00Z",
    "2026-01-05  09:05:00Z",
    "2026-01-05T9:05:00Z",
    "2026-01-05T09:5:00Z",
    "2026-01-05T09:05:0Z",
    "2026-01-05T09-05-00Z",
    "2026/01/05T09:05:00Z",
    "2026-01-05T09:05:00.Z",  /* a point with no digit */
    "2026-01-05T09:05:00,5Z", /* ISO 8601's comma: the twin never sends it */
    "2026-01-05T09:05:00.-5Z",
    "2026-01-05T09:05:00+02",
    "2026-01-05T09:05:00+2:00",
    "2026-01-05T09:05:00+02:0",
    "2026-01-05T09:05:00+02:000",
    "2026-01-05T09:05:00+020",
    "2026-01-05T09:05:00+24:00",
    "2026-01-05T09:05:00+02:60",
    "2026-01-05T09:05:00 +02:00",
    "2026-01-05T09:05:00UTC",
    "2026-01-0xT09:05:00Z",
    "2026-01-05T09:05:00.12a4Z",
};

static void test_good(void)
{
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        struct timespec ts = {-1, -1};
        int r = iso_time_parse(good[i].s, &ts);

        if (r != 0 || ts.tv_sec != good[i].sec || ts.tv_nsec != good[i].nsec)
            fprintf(stderr, "wrong: %s\n", good[i].s);
        CHECK_INT_EQ(r, 0);
        CHECK_INT_EQ(ts.tv_sec, good[i].sec);
        CHECK_INT_EQ(ts.tv_nsec, good[i].nsec);
    }
}

static void test_bad(void)
{
    struct timespec ts = {-7, -7};

    CHECK_INT_EQ(iso_time_parse(NULL, &ts), -EINVAL);
    CHECK_INT_EQ(iso_time_parse("2026-01-05T09:05:00Z", NULL), -EINVAL);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int r = iso_time_parse(bad[i], &ts);

        if (r != -EINVAL)
            fprintf(stderr, "accepted: \"%s\"\n", bad[i]);
        CHECK_INT_EQ(r, -EINVAL);
        /* Untouched on failure. */
        CHECK_INT_EQ(ts.tv_sec, -7);
        CHECK_INT_EQ(ts.tv_nsec, -7);
    }
}

/* Random valid and invalid dates against glibc's timegm, an independent calendar: a date is
 * valid when timegm does not have to normalize it. */
static void test_against_timegm(void)
{
    int accepted = 0, refused = 0;

    for (int round = 0; round < 200000; round++) {
        struct tm tm = {0};
        char s[64];
        int off_h = (int)unit_rand(24), off_m = (int)unit_rand(60);
        int sign = unit_rand(2) ? 1 : -1;
        time_t utc;
        struct timespec ts;
        bool valid;
        int r;

        tm.tm_year = (round % 4 ? 1970 + (int)unit_rand(130) : 1970 + (int)unit_rand(8030)) - 1900;
        tm.tm_mon = (int)unit_rand(12);
        tm.tm_mday = 1 + (int)unit_rand(31);
        tm.tm_hour = (int)unit_rand(24);
        tm.tm_min = (int)unit_rand(60);
        tm.tm_sec = (int)unit_rand(60);
        snprintf(s, sizeof(s), "%04d-%02d-%02dT%02d:%02d:%02d.%03d%c%02d:%02d", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)unit_rand(1000),
                 sign > 0 ? '+' : '-', off_h, off_m);
        {
            struct tm copy = tm;

            utc = timegm(&copy);
            valid = copy.tm_mday == tm.tm_mday && copy.tm_mon == tm.tm_mon;
        }
        utc -= sign * (off_h * 3600 + off_m * 60);
        r = iso_time_parse(s, &ts);
        if (valid && utc >= 0) {
            if (r != 0)
                fprintf(stderr, "refused: %s\n", s);
            CHECK_INT_EQ(r, 0);
            CHECK_INT_EQ(ts.tv_sec, utc);
            accepted++;
        } else {
            if (r != -EINVAL)
                fprintf(stderr, "accepted: %s\n", s);
            CHECK_INT_EQ(r, -EINVAL);
            refused++;
        }
    }
    CHECK(accepted > 100000);
    CHECK(refused > 1000);
}

/* Random strings, mostly near a valid one: the parser never reads past the NUL (ASan checks),
 * and what it accepts is in range. */
static void test_random(void)
{
    static const char base[] = "2024-02-29T23:59:60.123456789+05:30";
    static const char alphabet[] = "0123456789-:T tZz+.,x\xff";
    char s[64];
    int accepted = 0;

    for (int round = 0; round < 300000; round++) {
        size_t len;
        struct timespec ts;

        if (round % 8 == 0) {
            len = unit_rand(sizeof(s) - 1);
            for (size_t i = 0; i < len; i++)
                s[i] = (char)(1 + unit_rand(255));
        } else {
            memcpy(s, base, sizeof(base));
            len = sizeof(base) - 1;
            for (int m = 1 + (int)unit_rand(3); m > 0; m--) {
                size_t at = unit_rand(len);
                char c = alphabet[unit_rand(sizeof(alphabet) - 1)];

                if (unit_rand(3) == 0 && len > 1) { /* delete */
                    memmove(s + at, s + at + 1, len - at);
                    len--;
                } else if (unit_rand(2) == 0 && len < sizeof(s) - 2) { /* insert */
                    memmove(s + at + 1, s + at, len - at + 1);
                    s[at] = c;
                    len++;
                } else {
                    s[at] = c;
                }
            }
        }
        s[len] = '\0';
        /* A heap copy of exactly len + 1 bytes: ASan sees any read past the NUL. */
        {
            char *h = strndup(s, len);
            int r;

            CHECK(h != NULL);
            r = iso_time_parse(h, &ts);
            free(h);
            if (r == 0) {
                accepted++;
                CHECK(ts.tv_sec >= 0 && ts.tv_sec <= 253402300799LL + 86400);
                CHECK(ts.tv_nsec >= 0 && ts.tv_nsec < 1000000000L);
            } else {
                CHECK_INT_EQ(r, -EINVAL);
            }
        }
    }
    CHECK(accepted > 1000);
}

int main(void)
{
    RUN(test_good);
    RUN(test_bad);
    RUN(test_against_timegm);
    RUN(test_random);
    return 0;
}
