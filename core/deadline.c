#include "twin/deadline.h"

#define NS_PER_S 1000000000L

struct timespec timespec_add_ms(struct timespec t, long ms)
{
    t.tv_sec += ms / 1000;
    t.tv_nsec += (ms % 1000) * 1000000L;
    if (t.tv_nsec >= NS_PER_S) {
        t.tv_sec++;
        t.tv_nsec -= NS_PER_S;
    }
    return t;
}

struct timespec deadline_after_ms(long ms)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return timespec_add_ms(now, ms);
}

struct timespec deadline_after_s(double s)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    time_t whole = (time_t)s;
    now.tv_sec += whole;
    now.tv_nsec += (long)((s - (double)whole) * 1e9);
    if (now.tv_nsec >= NS_PER_S) {
        now.tv_sec++;
        now.tv_nsec -= NS_PER_S;
    }
    return now;
}

double monotonic_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
