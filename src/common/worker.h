/* SPDX-License-Identifier: ISC */
/* worker.h -- a helper thread for blocking work, results back on the loop */
#ifndef TR_WORKER_H
#define TR_WORKER_H

#include <stddef.h>

#include <event2/event.h>

/*
 * Jobs run in order on one thread; each job's done() runs later on the
 * loop thread (an eventfd wakes it). work() must not touch loop state;
 * done() must not block. Used for password hashing (scrypt).
 */
struct worker;

typedef void (*worker_fn)(void *arg);

int worker_start(struct event_base *base, const char *name,
    struct worker **ret_w);
/* Finish every queued job (done() callbacks included), stop, free. NULL-safe. */
struct worker *worker_stop(struct worker *w);
/* Queue a job. 0, -ENOMEM, -ESHUTDOWN. */
int worker_submit(struct worker *w, worker_fn work, worker_fn done, void *arg);
size_t worker_pending(const struct worker *w);

#endif
