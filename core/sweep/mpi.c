/* Sweeps over MPI ranks (mpi.h says what they promise). On every rank the
 * main thread alone talks MPI (MPI_THREAD_FUNNELED) and polls rather than
 * blocks, since Open MPI's blocking calls spin and would take a core from
 * the cells; a second thread measures cells on the kernel threads, one
 * cell per thread, taking them from a queue. On rank 0 that queue holds
 * every cell left and rank 0's threads measure from it too.
 * The other ranks ask rank 0 for cells, one question at a time, sending
 * the cells they measured with it and saying how many more they can take;
 * rank 0 answers each question at once, with cells from the queue, none,
 * or "stop" once every cell is done. A rank asks at least every second,
 * which says it is alive: one silent for the timeout is taken for dead and
 * its cells go back to the front of the queue. Rank 0 sends a rank nothing
 * but answers to its questions (and one "stop" to a rank it never heard
 * from): after a peer dies, a second message to it can hang Open MPI's TCP
 * transport. */
#include <mpi.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "mpi.h"

enum { TAG_HELLO = 1, TAG_ASK, TAG_WORK };
/* Small enough that every message goes eagerly: a send never waits for
 * its receiver. */
enum { MAX_BATCH = 8, MAX_GIVE = 256 };
enum { STOP = -1 };                   /* the answer once every cell is done */
enum { DONE = -2, QUEUED = -1 };      /* where a cell is, on rank 0; else the rank measuring it */
enum { PREPARING, LIVE, STOPPED, DEAD }; /* a rank, as rank 0 sees it */

/* A rank's first question: who it is, and how many cells it can take. */
typedef struct {
	int32_t ok, slots, cell_bytes, rows, cols, pid;
	double base_ppl;
	char host[64];
	char msg[256];                    /* why it could not prepare */
} hello_msg;

typedef struct {
	int32_t idx;
	sl_sweep_cell cell;
} result_msg;

/* The questions after it: the cells measured since, and room for more. */
typedef struct {
	int32_t want, n;
	result_msg res[MAX_BATCH];
} ask_msg;

/* An answer: n cells, or n = STOP, with how many ranks died. */
typedef struct {
	int32_t n, dead;
	int32_t idx[MAX_GIVE];
} work_msg;

/* Open MPI's finalize waits for every rank, the dead too: after a death
 * the survivors leave without it (mpirun --enable-recovery accepts that). */
static bool skip_finalize;

/* Cells to measure, shared by the measuring threads and the main thread. */
typedef struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int *ring, cap, head, n;
	int busy;                         /* cells being measured (ranks above 0) */
	atomic_int stop;                  /* the threads leave, mid-cell too (the progress below) */
	sl_progress halt;                 /* cancel = &stop, for the cells measured */
	result_msg *out;                  /* measured, not yet sent (ranks above 0) */
	int n_out;
} queue;

typedef struct run run;
struct run {
	sl_sweep *sw;
	queue q;
	int rank, size, total, slots;
	int dead;                         /* rank 0: ranks taken for dead and not back */
	atomic_int left;                  /* rank 0: cells not yet done */
	int *where;                       /* rank 0: per cell, DONE, QUEUED or the rank measuring it */
	void (*deliver)(run *r, int idx, const sl_sweep_cell *c);
	sl_sweep_cell_fn on_cell;
	sl_sweep_note_fn note;
	void *ctx;
	const sl_progress *p;
	double timeout;
};

static void nap(void)
{
	struct timespec ts = {0, 1000000};
	nanosleep(&ts, NULL);
}

static void say(const run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const run *r, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (r->note)
		r->note(r->ctx, msg);
}

/* --- the queue and the measuring threads ------------------------------------ */

static bool queue_init(queue *q, int cap)
{
	memset(q, 0, sizeof *q);
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->cv, NULL);
	q->cap = cap > 0 ? cap : 1;
	q->ring = malloc((size_t)q->cap * sizeof *q->ring);
	q->out = malloc((size_t)q->cap * sizeof *q->out);
	q->halt.cancel = &q->stop;
	return q->ring && q->out;
}

static void queue_free(queue *q)
{
	free(q->ring);
	free(q->out);
	pthread_cond_destroy(&q->cv);
	pthread_mutex_destroy(&q->mu);
}

/* Under q->mu. front: a dead rank's cells go first. */
static void queue_put(queue *q, int idx, bool front)
{
	if (q->n == q->cap)
		return;
	if (front) {
		q->head = (q->head + q->cap - 1) % q->cap;
		q->ring[q->head] = idx;
	} else {
		q->ring[(q->head + q->n) % q->cap] = idx;
	}
	q->n++;
	pthread_cond_signal(&q->cv);
}

/* Under q->mu: the next cell, or -1 when there is none now. */
static int queue_take(queue *q)
{
	if (!q->n)
		return -1;
	int idx = q->ring[q->head];
	q->head = (q->head + 1) % q->cap;
	q->n--;
	return idx;
}

static void queue_stop(queue *q)
{
	pthread_mutex_lock(&q->mu);
	atomic_store(&q->stop, 1);
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->mu);
}

static void slot_task(int i, void *arg)
{
	run *r = arg;
	queue *q = &r->q;
	for (;;) {
		pthread_mutex_lock(&q->mu);
		int idx;
		while ((idx = queue_take(q)) < 0 && !atomic_load(&q->stop))
			pthread_cond_wait(&q->cv, &q->mu);
		if (idx >= 0) {
			q->busy++;
			if (r->where)
				r->where[idx] = 0;
		}
		pthread_mutex_unlock(&q->mu);
		if (idx < 0)
			return;
		sl_sweep_cell c;
		if (sl_sweep_measure_cell(r->sw, idx / r->sw->n_opts, idx % r->sw->n_opts, &c, &q->halt))
			return;
		r->deliver(r, idx, &c);
	}
}

static void *measurer(void *arg)
{
	sl_parallel_for(((run *)arg)->slots, slot_task, arg);
	return NULL;
}

static bool start_measuring(run *r, pthread_t *th)
{
	r->slots = sl_kernels_threads();
	return r->sw && !pthread_create(th, NULL, measurer, r);
}

static void stop_measuring(run *r, pthread_t th, bool measuring)
{
	queue_stop(&r->q);
	if (measuring)
		pthread_join(th, NULL);
}

static double timeout_seconds(void)
{
	const char *s = getenv("SLIMLAB_MPI_TIMEOUT");
	double t = s ? atof(s) : 0;
	return t > 0 ? t : 30;
}

/* --- rank 0 ------------------------------------------------------------------ */

typedef struct {
	int state, pid;
	double heard;
	char host[64];
} peer;

/* A finished cell, from this rank's threads or another rank; a cell
 * already done (by a rank taken for dead that was only slow) is not kept
 * twice. */
static void keep(run *r, int idx, const sl_sweep_cell *c)
{
	pthread_mutex_lock(&r->q.mu);
	bool fresh = r->where[idx] != DONE;
	if (fresh) {
		r->where[idx] = DONE;
		atomic_fetch_sub(&r->left, 1);
	}
	pthread_mutex_unlock(&r->q.mu);
	if (fresh)
		sl_sweep_keep(r->sw, idx / r->sw->n_opts, idx % r->sw->n_opts, c, r->on_cell, r->ctx, r->p);
}

/* Answers rank k: up to want cells from the queue, or STOP when none is
 * left (or k cannot take part). */
static void answer(run *r, peer *pe, int k, int want)
{
	work_msg w = {0};
	if (pe->state != LIVE || atomic_load(&r->left) == 0) {
		w.n = STOP;
		w.dead = r->dead;
		pe->state = STOPPED;
	} else {
		pthread_mutex_lock(&r->q.mu);
		int idx;
		while (w.n < want && w.n < MAX_GIVE && (idx = queue_take(&r->q)) >= 0) {
			r->where[idx] = k;
			w.idx[w.n++] = idx;
		}
		pthread_mutex_unlock(&r->q.mu);
	}
	MPI_Send(&w, (int)(offsetof(work_msg, idx) + (w.n > 0 ? (size_t)w.n : 0) * sizeof w.idx[0]), MPI_BYTE, k,
	         TAG_WORK, MPI_COMM_WORLD);
}

static void take_hello(run *r, peer *pe, int k, const hello_msg *h)
{
	const sl_sweep *sw = r->sw;
	snprintf(pe->host, sizeof pe->host, "%.63s", h->host);
	pe->pid = h->pid;
	pe->state = STOPPED;
	if (!h->ok) {
		say(r, "rank %d (%s) could not prepare the sweep, the others go on without it: %.256s", k, pe->host,
		    h->msg);
	} else if (h->cell_bytes != (int)sizeof(sl_sweep_cell) || h->rows != sw->n_rows || h->cols != sw->n_opts) {
		say(r, "rank %d (%s) runs another build of slimlab or swept another grid (%d x %d cells of %d bytes, "
		       "here %d x %d of %zu); the others go on without it",
		    k, pe->host, h->rows, h->cols, h->cell_bytes, sw->n_rows, sw->n_opts, sizeof(sl_sweep_cell));
	} else {
		pe->state = LIVE;
		if (memcmp(&h->base_ppl, &sw->base_ppl, sizeof(double)))
			say(r, "rank %d (%s) computes another base perplexity (%.17g, here %.17g): a machine that computes "
			       "differently; its cells may differ in their last digits",
			    k, pe->host, h->base_ppl, sw->base_ppl);
	}
	answer(r, pe, k, h->slots);
}

/* Reads one question and answers it; false when MPI failed. */
static bool take_question(run *r, peer *peers, const MPI_Status *probe)
{
	int k = probe->MPI_SOURCE;
	peer *pe = &peers[k];
	pe->heard = sl_now();
	if (probe->MPI_TAG == TAG_HELLO) {
		hello_msg h;
		if (MPI_Recv(&h, sizeof h, MPI_BYTE, k, TAG_HELLO, MPI_COMM_WORLD, MPI_STATUS_IGNORE))
			return false;
		h.host[sizeof h.host - 1] = h.msg[sizeof h.msg - 1] = 0;
		take_hello(r, pe, k, &h);
		return true;
	}
	static ask_msg a;
	if (MPI_Recv(&a, sizeof a, MPI_BYTE, k, probe->MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE))
		return false;
	if (probe->MPI_TAG != TAG_ASK)
		return true;
	for (int i = 0; i < a.n && i < MAX_BATCH; i++)
		if (a.res[i].idx >= 0 && a.res[i].idx < r->total)
			keep(r, a.res[i].idx, &a.res[i].cell);
	if (pe->state == DEAD) {
		say(r, "rank %d (%s) answers again; it takes part again", k, pe->host);
		pe->state = LIVE;
		r->dead--;
	}
	if (pe->state != STOPPED)
		answer(r, pe, k, a.want);
	return true;
}

/* A rank silent for longer than the timeout is taken for dead: its cells
 * go back to the front of the queue. */
static void bury_silent(run *r, peer *peers)
{
	double t = sl_now();
	for (int k = 1; k < r->size; k++) {
		peer *pe = &peers[k];
		if (pe->state != LIVE || t - pe->heard < r->timeout)
			continue;
		pe->state = DEAD;
		r->dead++;
		int n = 0;
		pthread_mutex_lock(&r->q.mu);
		for (int i = 0; i < r->total; i++)
			if (r->where[i] == k) {
				r->where[i] = QUEUED;
				queue_put(&r->q, i, true);
				n++;
			}
		pthread_mutex_unlock(&r->q.mu);
		say(r, "rank %d (%s, pid %d) has not answered for %.0f s and is taken for dead; its %d unfinished "
		       "cell%s go%s to the other ranks",
		    k, pe->host, pe->pid, t - pe->heard, n, n == 1 ? "" : "s", n == 1 ? "es" : "");
	}
}

/* Until every cell is done and every rank that is alive has been told to
 * stop (ranks never heard from are told once, unasked). */
static sl_status coordinate(run *r, sl_error *err)
{
	peer *peers = calloc((size_t)r->size, sizeof *peers);
	if (!peers)
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory");
	pthread_t th;
	bool measuring = start_measuring(r, &th);
	sl_status st = SL_OK;
	for (;;) {
		bool busy = false;
		int flag = 0;
		MPI_Status probe;
		while (!MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &probe) && flag) {
			if (!take_question(r, peers, &probe)) {
				st = sl_errorf(err, SL_ERR_IO, "MPI failed while receiving from rank %d", probe.MPI_SOURCE);
				break;
			}
			busy = true;
		}
		if (st || sl_cancelled(r->p))
			break;
		bury_silent(r, peers);
		bool waiting = false;
		for (int k = 1; k < r->size && !atomic_load(&r->left); k++) {
			if (peers[k].state == PREPARING)
				answer(r, &peers[k], k, 0);
			waiting |= peers[k].state == LIVE;
		}
		if (!atomic_load(&r->left) && !waiting)
			break;
		if (!busy)
			nap();
	}
	stop_measuring(r, th, measuring);
	free(peers);
	skip_finalize = r->dead > 0;
	return st ? st : sl_sweep_stopped(r->sw, r->p, err);
}

/* --- the other ranks ---------------------------------------------------------- */

/* A measured cell waits in the queue for the main thread to send it. */
static void stash(run *r, int idx, const sl_sweep_cell *c)
{
	pthread_mutex_lock(&r->q.mu);
	if (r->q.n_out < r->q.cap)
		r->q.out[r->q.n_out++] = (result_msg){idx, *c};
	r->q.busy--;
	pthread_mutex_unlock(&r->q.mu);
}

static void send_hello(const run *r, const sl_error *prep)
{
	hello_msg h;
	memset(&h, 0, sizeof h);
	h.ok = r->sw != NULL;
	h.slots = r->sw ? r->slots : 0;
	h.cell_bytes = (int)sizeof(sl_sweep_cell);
	h.pid = (int)getpid();
	gethostname(h.host, sizeof h.host - 1);
	if (r->sw) {
		h.rows = r->sw->n_rows;
		h.cols = r->sw->n_opts;
		h.base_ppl = r->sw->base_ppl;
	} else {
		snprintf(h.msg, sizeof h.msg, "%.255s", prep && prep->msg[0] ? prep->msg : "no reason given");
	}
	MPI_Send(&h, sizeof h, MPI_BYTE, 0, TAG_HELLO, MPI_COMM_WORLD);
}

/* The next question: the cells measured since the last one (up to a
 * batch) and how many more this rank's threads can take. */
static int send_ask(run *r)
{
	static ask_msg a;
	pthread_mutex_lock(&r->q.mu);
	a.n = r->q.n_out < MAX_BATCH ? r->q.n_out : MAX_BATCH;
	memcpy(a.res, r->q.out, (size_t)a.n * sizeof a.res[0]);
	memmove(r->q.out, r->q.out + a.n, (size_t)(r->q.n_out - a.n) * sizeof a.res[0]);
	r->q.n_out -= a.n;
	a.want = r->slots - r->q.busy - r->q.n;
	pthread_mutex_unlock(&r->q.mu);
	MPI_Send(&a, (int)(offsetof(ask_msg, res) + (size_t)a.n * sizeof a.res[0]), MPI_BYTE, 0, TAG_ASK,
	         MPI_COMM_WORLD);
	return a.n;
}

static sl_status serve(run *r, const sl_error *prep, sl_error *err)
{
	pthread_t th;
	bool measuring = start_measuring(r, &th);
	send_hello(r, prep);
	const char *die = getenv("SLIMLAB_MPI_TEST_DIE");
	/* Rank 0 may still be preparing when this rank first asks: only once
	 * it has answered is a long silence taken for its death. */
	bool asking = true, answered = false, starved = false, stopped = false;
	double asked = sl_now();
	int sent = 0;
	while (!stopped && !sl_cancelled(r->p)) {
		int flag = 0;
		if (asking && !MPI_Iprobe(0, TAG_WORK, MPI_COMM_WORLD, &flag, MPI_STATUS_IGNORE) && flag) {
			static work_msg w;
			if (MPI_Recv(&w, sizeof w, MPI_BYTE, 0, TAG_WORK, MPI_COMM_WORLD, MPI_STATUS_IGNORE))
				break;
			asking = false;
			answered = true;
			stopped = w.n == STOP;
			skip_finalize = stopped && w.dead > 0;
			pthread_mutex_lock(&r->q.mu);
			for (int i = 0; i < w.n && i < MAX_GIVE; i++)
				if (w.idx[i] >= 0 && w.idx[i] < r->total)
					queue_put(&r->q, w.idx[i], false);
			starved = r->slots - r->q.busy - r->q.n > 0;
			pthread_mutex_unlock(&r->q.mu);
			continue;
		}
		if (asking && answered && sl_now() - asked > 2 * r->timeout) {
			stop_measuring(r, th, measuring);
			return sl_errorf(err, SL_ERR_IO, "rank 0 has not answered rank %d for %.0f s; rank %d stops", r->rank,
			                 sl_now() - asked, r->rank);
		}
		pthread_mutex_lock(&r->q.mu);
		bool news = r->q.n_out > 0 || (!starved && r->slots - r->q.busy - r->q.n > 0);
		pthread_mutex_unlock(&r->q.mu);
		if (!asking && (news || sl_now() - asked >= 1)) {
			sent += send_ask(r);
			asking = true;
			asked = sl_now();
			if (sent && die && atoi(die) == r->rank)
				raise(SIGKILL);
			continue;
		}
		nap();
	}
	stop_measuring(r, th, measuring);
	if (!r->sw)
		return sl_errorf(err, SL_ERR_ARG, "%s", prep && prep->msg[0] ? prep->msg : "the sweep was not prepared");
	return stopped ? SL_OK : sl_errorf(err, SL_ERR_CANCELLED, "rank %d cancelled", r->rank);
}

/* --- the world ------------------------------------------------------------------ */

sl_status sl_mpi_init(int *rank, int *size, sl_error *err)
{
	int provided = 0;
	if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
		return sl_errorf(err, SL_ERR_IO, "MPI could not start (MPI_Init_thread failed)");
	if (provided < MPI_THREAD_FUNNELED) {
		MPI_Finalize();
		return sl_errorf(err, SL_ERR_IO, "this MPI cannot be used by a program with threads");
	}
	/* Errors come back as statuses: a dead peer must not end the run. */
	MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
	MPI_Comm_rank(MPI_COMM_WORLD, rank);
	MPI_Comm_size(MPI_COMM_WORLD, size);
	return SL_OK;
}

void sl_mpi_finalize(void)
{
	if (!skip_finalize)
		MPI_Finalize();
}

sl_status sl_sweep_run_mpi(sl_sweep *sw, const sl_error *prep, sl_sweep_cell_fn on_cell, sl_sweep_note_fn note,
                           void *ctx, const sl_progress *p, sl_error *err)
{
	run r = {.sw = sw, .on_cell = on_cell, .note = note, .ctx = ctx, .p = p, .timeout = timeout_seconds()};
	MPI_Comm_rank(MPI_COMM_WORLD, &r.rank);
	MPI_Comm_size(MPI_COMM_WORLD, &r.size);
	r.total = sw ? sw->n_rows * sw->n_opts : 0;
	if (!queue_init(&r.q, r.total)) {
		queue_free(&r.q);
		return sl_errorf(err, SL_ERR_NOMEM, "out of memory");
	}
	sl_status st;
	if (r.rank) {
		r.deliver = stash;
		st = serve(&r, prep, err);
	} else if (!sw) {
		/* Nothing to hand out: every rank is told to stop, unasked. */
		work_msg stop = {STOP, 0, {0}};
		for (int k = 1; k < r.size; k++)
			MPI_Send(&stop, (int)offsetof(work_msg, idx), MPI_BYTE, k, TAG_WORK, MPI_COMM_WORLD);
		st = sl_errorf(err, SL_ERR_ARG, "%s", prep && prep->msg[0] ? prep->msg : "the sweep was not prepared");
	} else if (!(r.where = malloc((size_t)r.total * sizeof *r.where))) {
		st = sl_errorf(err, SL_ERR_NOMEM, "out of memory");
	} else {
		r.deliver = keep;
		/* Rows in order, options within a row: the heatmap fills top to bottom. */
		for (int i = 0; i < r.total; i++) {
			r.where[i] = sw->cells[i].done ? DONE : QUEUED;
			if (!sw->cells[i].done) {
				queue_put(&r.q, i, false);
				atomic_fetch_add(&r.left, 1);
			}
		}
		st = coordinate(&r, err);
	}
	free(r.where);
	queue_free(&r.q);
	return st;
}
