/* SPDX-License-Identifier: ISC */
/* test_worker.c -- jobs run off the loop, results come back on it, in order */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "common/worker.h"

#define JOBS 200

struct job {
	int n;
	pthread_t ran_on;
	int result;
};

static pthread_t loop_thread;
static int done_order[JOBS];
static int done_count;
static struct event_base *base;

static void
job_work(void *arg)
{
	struct job *j = arg;

	j->ran_on = pthread_self();
	j->result = j->n * j->n;
	if (j->n % 50 == 0)
		usleep(1000);  /* some jobs are slow: order must hold anyway */
}

static void
job_done(void *arg)
{
	struct job *j = arg;

	/* done() runs on the loop thread. */
	assert_true(pthread_equal(pthread_self(), loop_thread));
	assert_int_equal(j->result, j->n * j->n);
	done_order[done_count++] = j->n;
	if (done_count == JOBS)
		event_base_loopbreak(base);
}

static void
test_jobs_round_trip(void **state)
{
	static struct job jobs[JOBS];
	struct worker *w = NULL;

	(void)state;
	loop_thread = pthread_self();
	base = event_base_new();
	assert_non_null(base);
	assert_int_equal(worker_start(base, "test-worker", &w), 0);
	for (int i = 0; i < JOBS; i++) {
		jobs[i].n = i;
		assert_int_equal(worker_submit(w, job_work, job_done, &jobs[i]), 0);
	}
	assert_int_equal(worker_pending(w), JOBS);
	event_base_dispatch(base);
	assert_int_equal(done_count, JOBS);
	assert_int_equal(worker_pending(w), 0);
	for (int i = 0; i < JOBS; i++) {
		assert_int_equal(done_order[i], i);
		/* work() ran on the worker thread, not the loop. */
		assert_false(pthread_equal(jobs[i].ran_on, loop_thread));
	}
	assert_null(worker_stop(w));
	event_base_free(base);
}

/* Stopping with jobs queued runs them all, done() included. */
static void
test_stop_drains(void **state)
{
	static struct job jobs[10];
	struct worker *w = NULL;

	(void)state;
	loop_thread = pthread_self();
	done_count = 0;
	base = event_base_new();
	assert_int_equal(worker_start(base, "test-worker", &w), 0);
	for (int i = 0; i < 10; i++) {
		jobs[i].n = i;
		assert_int_equal(worker_submit(w, job_work, job_done, &jobs[i]), 0);
	}
	assert_null(worker_stop(w));
	assert_int_equal(done_count, 10);
	assert_null(worker_stop(NULL));
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_jobs_round_trip),
		cmocka_unit_test(test_stop_drains),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
