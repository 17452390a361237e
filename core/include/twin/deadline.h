/* deadline: absolute times for the timed waits (pthread_cond_timedwait, pthread_timedjoin_np),
 * which take CLOCK_REALTIME instants, so every module computes them the same way. */
#pragma once
#include <time.h>

/* t plus ms milliseconds (ms >= 0), normalized. */
struct timespec timespec_add_ms(struct timespec t, long ms);

/* Now (CLOCK_REALTIME) plus ms milliseconds. */
struct timespec deadline_after_ms(long ms);

/* Seconds on CLOCK_MONOTONIC, for measuring intervals (timeouts, silence, backoff). */
double monotonic_now_s(void);

/* Now (CLOCK_REALTIME) plus s seconds (s >= 0, fractions kept to the nanosecond). */
struct timespec deadline_after_s(double s);
