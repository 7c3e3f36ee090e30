/* SPDX-License-Identifier: ISC */
/* clock.h -- the wall clock and the monotonic clock in ms and us */
#ifndef TR_COMMON_CLOCK_H
#define TR_COMMON_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t
clock_ms(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Milliseconds since the epoch: for what is stored or shown. */
static inline uint64_t
clock_realtime_ms(void)
{
	return clock_ms(CLOCK_REALTIME);
}

/* Milliseconds on a clock no one sets: for timeouts and durations. */
static inline uint64_t
clock_monotonic_ms(void)
{
	return clock_ms(CLOCK_MONOTONIC);
}

static inline uint64_t
clock_monotonic_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

#endif
