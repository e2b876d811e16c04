/* Long work runs here, one job at a time on a worker thread, so the screen
 * stays live. The worker reports progress into the job under a mutex and
 * wakes the main loop through the self-pipe (at most every 30 ms, so a
 * fast loop cannot flood it); everything that touches the application
 * state (start, update, done) runs on the main thread, called through the
 * job's kind: the runner itself knows nothing above it and says what went
 * wrong in an sl_error. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/progress.h"
#include "tui.h"

struct sl_job {
	const sl_job_kind *kind;
	void *ctx;
	pthread_t thread;
	pthread_mutex_t mu;
	atomic_int cancel;
	atomic_bool finished;
	bool posted;             /* update() is due */
	double frac, t_start, last_wake;
	char stage[64];
	sl_progress progress;
	sl_status st;
	sl_error err;
	int wake_fd;
};

static void wake(int fd)
{
	char b = 'j';
	/* A full pipe already holds a wake-up; losing this one is harmless. */
	while (write(fd, &b, 1) < 0 && errno == EINTR)
		;
}

/* Called with the mutex held. */
static void wake_soon(sl_job *j, bool force)
{
	double t = sl_now();
	if (force || t - j->last_wake > 0.03) {
		j->last_wake = t;
		wake(j->wake_fd);
	}
}

static void on_progress(void *ctx, double frac, const char *stage)
{
	sl_job *j = ctx;
	pthread_mutex_lock(&j->mu);
	j->frac = frac;
	snprintf(j->stage, sizeof j->stage, "%s", stage ? stage : "");
	wake_soon(j, false);
	pthread_mutex_unlock(&j->mu);
}

static void *worker(void *arg)
{
	sl_job *j = arg;
	j->st = j->kind->run(j->ctx, j, &j->progress, &j->err);
	if (j->st == SL_OK && atomic_load(&j->cancel))
		j->st = sl_errorf(&j->err, SL_ERR_CANCELLED, "%s cancelled", j->kind->name);
	atomic_store(&j->finished, true);
	pthread_mutex_lock(&j->mu);
	wake_soon(j, true);
	pthread_mutex_unlock(&j->mu);
	return NULL;
}

void sl_job_lock(sl_job *j)
{
	pthread_mutex_lock(&j->mu);
}

void sl_job_unlock(sl_job *j)
{
	pthread_mutex_unlock(&j->mu);
}

void sl_job_post(sl_job *j)
{
	pthread_mutex_lock(&j->mu);
	j->posted = true;
	wake_soon(j, false);
	pthread_mutex_unlock(&j->mu);
}

void sl_jobs_init(sl_jobs *q, int wake_fd)
{
	memset(q, 0, sizeof *q);
	q->wake_fd = wake_fd;
}

bool sl_jobs_busy(const sl_jobs *q)
{
	return q->cur || q->n_queued;
}

static void free_req(const sl_job_kind *k, void *ctx)
{
	if (k->free)
		k->free(ctx);
}

sl_status sl_jobs_submit(sl_jobs *q, const sl_job_kind *k, void *ctx, sl_error *err)
{
	if (q->n_queued == SL_JOB_QUEUE) {
		free_req(k, ctx);
		return sl_errorf(err, SL_ERR_ARG, "%d jobs are waiting already; let them finish or press Esc", SL_JOB_QUEUE);
	}
	q->queue[q->n_queued++] = (sl_job_req){k, ctx};
	wake(q->wake_fd); /* the loop starts it */
	return SL_OK;
}

/* A job that cannot start is dropped with its problem in err (the last
 * one, when several cannot). */
static sl_status start_next(sl_jobs *q, sl_tui *t, sl_error *err)
{
	sl_status st = SL_OK;
	while (!q->cur && q->n_queued) {
		sl_job_req r = q->queue[0];
		memmove(q->queue, q->queue + 1, (size_t)--q->n_queued * sizeof *q->queue);
		if (r.kind->start && !r.kind->start(t, r.ctx)) {
			free_req(r.kind, r.ctx);
			continue;
		}
		sl_job *j = calloc(1, sizeof *j);
		if (!j) {
			free_req(r.kind, r.ctx);
			st = sl_errorf(err, SL_ERR_NOMEM, "out of memory for a job");
			continue;
		}
		j->kind = r.kind;
		j->ctx = r.ctx;
		j->wake_fd = q->wake_fd;
		j->t_start = sl_now();
		j->progress = (sl_progress){on_progress, j, &j->cancel};
		snprintf(j->stage, sizeof j->stage, "starting");
		pthread_mutex_init(&j->mu, NULL);
		if (pthread_create(&j->thread, NULL, worker, j) != 0) {
			pthread_mutex_destroy(&j->mu);
			free(j);
			st = sl_errorf(err, SL_ERR_NOMEM, "cannot start a thread for %s", r.kind->name);
			free_req(r.kind, r.ctx);
			continue;
		}
		q->cur = j;
	}
	return st;
}

static void finish(sl_jobs *q, sl_tui *t)
{
	sl_job *j = q->cur;
	pthread_join(j->thread, NULL);
	q->cur = NULL;
	if (j->posted && j->kind->update)
		j->kind->update(t, j->ctx, j);
	j->kind->done(t, j->ctx, j->st, &j->err);
	free_req(j->kind, j->ctx);
	pthread_mutex_destroy(&j->mu);
	free(j);
}

sl_status sl_jobs_poll(sl_jobs *q, sl_tui *t, sl_error *err)
{
	if (q->cur && atomic_load(&q->cur->finished))
		finish(q, t);
	sl_status st = start_next(q, t, err);
	sl_app *a = &t->app;
	a->job.active = q->cur != NULL;
	a->job.queued = q->n_queued;
	if (!q->cur)
		return st;
	sl_job *j = q->cur;
	bool posted;
	pthread_mutex_lock(&j->mu);
	posted = j->posted;
	j->posted = false;
	a->job.frac = j->frac;
	snprintf(a->job.stage, sizeof a->job.stage, "%s", j->stage);
	pthread_mutex_unlock(&j->mu);
	snprintf(a->job.name, sizeof a->job.name, "%s", j->kind->name);
	a->job.elapsed = sl_now() - j->t_start;
	a->job.eta = a->job.frac > 0.01 && a->job.elapsed > 0.5 ? a->job.elapsed * (1 - a->job.frac) / a->job.frac : -1;
	if (posted && j->kind->update)
		j->kind->update(t, j->ctx, j);
	return st;
}

bool sl_jobs_cancel(sl_jobs *q)
{
	if (!q->cur)
		return false;
	atomic_store(&q->cur->cancel, 1);
	return true;
}

void sl_jobs_shutdown(sl_jobs *q, sl_tui *t)
{
	while (q->n_queued) {
		sl_job_req r = q->queue[--q->n_queued];
		free_req(r.kind, r.ctx);
	}
	if (q->cur) {
		atomic_store(&q->cur->cancel, 1);
		finish(q, t);
	}
}
