/* SPDX-License-Identifier: ISC */
/* worker.c -- a helper thread for blocking work, results back on the loop */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/worker.h"

struct worker_job {
	struct worker_job *next;
	worker_fn work, done;
	void *arg;
};

struct worker_queue {
	struct worker_job *head, *tail;
};

struct worker {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct worker_queue todo;       /* loop -> thread */
	struct worker_queue finished;   /* thread -> loop */
	size_t pending;                 /* loop only */
	bool stop;
	int efd;
	struct event *ev;
};

static void
queue_push(struct worker_queue *q, struct worker_job *j)
{
	j->next = NULL;
	if (q->tail)
		q->tail->next = j;
	else
		q->head = j;
	q->tail = j;
}

static struct worker_job *
queue_take_all(struct worker_queue *q)
{
	struct worker_job *j = q->head;

	q->head = q->tail = NULL;
	return j;
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	pthread_mutex_lock(&w->lock);
	for (;;) {
		struct worker_job *j;

		while (w->todo.head == NULL && !w->stop)
			pthread_cond_wait(&w->cond, &w->lock);
		if (w->todo.head == NULL && w->stop)
			break;
		j = w->todo.head;
		w->todo.head = j->next;
		if (w->todo.head == NULL)
			w->todo.tail = NULL;
		pthread_mutex_unlock(&w->lock);

		j->work(j->arg);

		pthread_mutex_lock(&w->lock);
		queue_push(&w->finished, j);
		{
			uint64_t one = 1;
			/* A full counter still wakes the loop: ignore EAGAIN. */
			(void)!write(w->efd, &one, sizeof(one));
		}
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* On the loop: run done() for every finished job. */
static void
worker_collect(struct worker *w)
{
	struct worker_job *j, *next;
	uint64_t n;

	(void)!read(w->efd, &n, sizeof(n));
	pthread_mutex_lock(&w->lock);
	j = queue_take_all(&w->finished);
	pthread_mutex_unlock(&w->lock);
	for (; j; j = next) {
		next = j->next;
		w->pending--;
		if (j->done)
			j->done(j->arg);
		free(j);
	}
}

static void
worker_eventcb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	worker_collect(arg);
}

int
worker_start(struct event_base *base, const char *name, struct worker **ret_w)
{
	struct worker *w = calloc(1, sizeof(*w));
	int r;

	if (w == NULL)
		return -ENOMEM;
	w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->efd < 0) {
		r = -errno;
		free(w);
		return r;
	}
	w->ev = event_new(base, w->efd, EV_READ | EV_PERSIST, worker_eventcb, w);
	if (w->ev == NULL || event_add(w->ev, NULL) < 0) {
		if (w->ev)
			event_free(w->ev);
		close(w->efd);
		free(w);
		return -ENOMEM;
	}
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	r = pthread_create(&w->thread, NULL, worker_main, w);
	if (r != 0) {
		event_free(w->ev);
		close(w->efd);
		pthread_mutex_destroy(&w->lock);
		pthread_cond_destroy(&w->cond);
		free(w);
		return -r;
	}
	pthread_setname_np(w->thread, name);
	*ret_w = w;
	return 0;
}

int
worker_submit(struct worker *w, worker_fn work, worker_fn done, void *arg)
{
	struct worker_job *j;

	if (w->stop)
		return -ESHUTDOWN;
	j = calloc(1, sizeof(*j));
	if (j == NULL)
		return -ENOMEM;
	j->work = work;
	j->done = done;
	j->arg = arg;
	pthread_mutex_lock(&w->lock);
	queue_push(&w->todo, j);
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	w->pending++;
	return 0;
}

size_t
worker_pending(const struct worker *w)
{
	return w->pending;
}

struct worker *
worker_stop(struct worker *w)
{
	if (w == NULL)
		return NULL;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	/* Every job has run: hand their results back before freeing. */
	worker_collect(w);
	event_free(w->ev);
	close(w->efd);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	free(w);
	return NULL;
}
