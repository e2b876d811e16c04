/* The CPU kernels' worker threads. One pool serves every parallel loop, and
 * OpenBLAS is held to a single thread so the two never fight over cores:
 * parallelism comes from splitting work across this pool. Decoding a small
 * model runs thousands of loops a second, some of a few microseconds, so
 * the hot path takes no lock: a loop is published in one atomic word
 * (generation and next task), threads claim tasks from it by
 * compare-and-swap, and the caller waits only for the tasks to be done,
 * never for a worker that came late to leave. Idle workers and the waiting
 * caller poll, yielding between polls where another of our threads may
 * need the core, and sleep on a condition variable after a while
 * (YIELD_US, SLEEP_US); the sleepers are counted, so a loop wakes nobody
 * through the kernel while everyone is still polling. */
#ifdef __linux__
#define _GNU_SOURCE /* sched_getcpu */
#endif
#include <cblas.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <math.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "../kernels.h"

/* How a thread with nothing to do waits, by how long it has had nothing to
 * do: it polls (a loop's tasks are microseconds apart while decoding), and
 * after SLEEP_US it sleeps. After YIELD_US it offers its core to other
 * threads between polls where one of ours may be waiting for that core: a
 * caller waiting for a worker's task, a worker on the caller's core (on a
 * busy machine the scheduler may put both on one core, where a polling
 * worker took half of it from the caller that does the work). A worker on
 * a core of its own keeps polling, as it keeps its core. */
#define YIELD_US 30
#define SLEEP_US 1000

/* Lines written by different threads at different moments sit on lines
 * of their own, so a claim does not also move the count of finished tasks
 * or the loop's read-mostly fields between cores. */
#define LINE _Alignas(64)

static struct {
	/* The current loop: generation << 32 | index of the next task to claim. */
	LINE _Atomic uint64_t state;
	/* Its function, argument and task count, written before state publishes them. */
	LINE _Atomic(void (*)(int, void *)) fn;
	_Atomic(void *) arg;
	atomic_int n;
	atomic_int active;   /* threads that take part in loops, the caller included */
	atomic_int caller_cpu; /* the core the caller published the loop from, or -1 */
	LINE atomic_int done; /* tasks of the current loop the workers finished */
	LINE atomic_int sleepers; /* workers asleep on wake */
	atomic_int waiting;  /* a caller asleep on idle */
	pthread_mutex_t mu;
	pthread_cond_t wake, idle;
	pthread_mutex_t submit; /* one parallel loop at a time */
	int n_threads;          /* workers + the calling thread */
	int requested;
} pool = {
	.mu = PTHREAD_MUTEX_INITIALIZER,
	.wake = PTHREAD_COND_INITIALIZER,
	.idle = PTHREAD_COND_INITIALIZER,
	.submit = PTHREAD_MUTEX_INITIALIZER,
};

static _Thread_local int in_pool_task;
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

static inline void relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

static int this_cpu(void)
{
#ifdef __linux__
	return sched_getcpu();
#else
	return -1;
#endif
}

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* A loop's word while its fields are rewritten: no task to claim. */
#define CLOSED UINT32_MAX

/* Claims and runs tasks of generation gen until none is left; returns how
 * many it ran. A task is claimed only while the word still names gen with
 * tasks to spare; the caller closes the word (a new generation, CLOSED)
 * before it rewrites fn, arg and n, so a claim that succeeds read them for
 * gen, and a thread that read an older loop's word claims nothing of a
 * newer one. Workers count what they finish in done; the caller counts
 * its own tasks itself. */
static int run_tasks(uint32_t gen, bool worker)
{
	uint64_t s = atomic_load_explicit(&pool.state, memory_order_acquire);
	void (*fn)(int, void *) = atomic_load_explicit(&pool.fn, memory_order_acquire);
	void *arg = atomic_load_explicit(&pool.arg, memory_order_acquire);
	uint32_t n = (uint32_t)atomic_load_explicit(&pool.n, memory_order_acquire);
	int ran = 0;
	in_pool_task = 1;
	for (;;) {
		if ((uint32_t)(s >> 32) != gen || (uint32_t)s >= n)
			break;
		if (!atomic_compare_exchange_weak_explicit(&pool.state, &s, s + 1, memory_order_acq_rel,
		                                           memory_order_acquire))
			continue;
		fn((int)(uint32_t)s, arg);
		s++;
		ran++;
		if (!worker)
			continue;
		atomic_fetch_add(&pool.done, 1);
		if (atomic_load(&pool.waiting)) {
			pthread_mutex_lock(&pool.mu);
			pthread_cond_broadcast(&pool.idle);
			pthread_mutex_unlock(&pool.mu);
		}
	}
	in_pool_task = 0;
	return ran;
}

static void *worker(void *arg)
{
	int id = (int)(intptr_t)arg;
	uint32_t seen = 0;
	/* Idle since the last task this worker ran, not since the last loop:
	 * loops that go by without a task for it are loops it could not help. */
	uint64_t busy_at = now_us();
	for (;;) {
		for (unsigned i = 1;; i++) {
			if ((uint32_t)(atomic_load_explicit(&pool.state, memory_order_acquire) >> 32) != seen)
				break;
			relax();
			if (i % 64)
				continue;
			uint64_t idle = now_us() - busy_at;
			if (idle > SLEEP_US) {
				pthread_mutex_lock(&pool.mu);
				atomic_fetch_add(&pool.sleepers, 1);
				while ((uint32_t)(atomic_load(&pool.state) >> 32) == seen)
					pthread_cond_wait(&pool.wake, &pool.mu);
				atomic_fetch_sub(&pool.sleepers, 1);
				pthread_mutex_unlock(&pool.mu);
				busy_at = now_us();
				break;
			}
			int cpu = atomic_load_explicit(&pool.caller_cpu, memory_order_relaxed);
			if (idle > YIELD_US && cpu >= 0 && cpu == this_cpu())
				sched_yield();
		}
		seen = (uint32_t)(atomic_load_explicit(&pool.state, memory_order_acquire) >> 32);
		/* Threads beyond the count now asked for sit this loop out. */
		if (id < atomic_load_explicit(&pool.active, memory_order_relaxed) && run_tasks(seen, true))
			busy_at = now_us();
	}
	return NULL;
}

static void pool_start(void)
{
	openblas_set_num_threads(1);
	int n = pool.requested;
	if (n <= 0) {
		long cores = sysconf(_SC_NPROCESSORS_ONLN);
		n = cores > 0 ? (int)cores : 1;
	}
	if (n > 256)
		n = 256;
	pool.n_threads = 1;
	for (int i = 1; i < n; i++) {
		pthread_t t;
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		int rc = pthread_create(&t, &attr, worker, (void *)(intptr_t)i);
		pthread_attr_destroy(&attr);
		if (rc)
			break;
		pool.n_threads++;
	}
}

void sl_kernels_set_threads(int n)
{
	/* Takes effect when the pool starts; later calls can only lower the
	 * thread count used by loops, which sl_parallel_for honours below. */
	pool.requested = n;
}

int sl_kernels_threads(void)
{
	pthread_once(&pool_once, pool_start);
	int n = pool.n_threads;
	if (pool.requested > 0 && pool.requested < n)
		n = pool.requested;
	return n;
}

void sl_parallel_for(int n, void (*fn)(int i, void *arg), void *arg)
{
	if (n <= 0)
		return;
	int threads = in_pool_task ? 1 : sl_kernels_threads();
	if (n == 1 || threads == 1) {
		for (int i = 0; i < n; i++)
			fn(i, arg);
		return;
	}
	pthread_mutex_lock(&pool.submit);
	uint32_t gen = (uint32_t)(atomic_load(&pool.state) >> 32) + 2;
	atomic_store(&pool.state, (uint64_t)(gen - 1) << 32 | CLOSED);
	atomic_store_explicit(&pool.fn, fn, memory_order_release);
	atomic_store_explicit(&pool.arg, arg, memory_order_release);
	atomic_store_explicit(&pool.n, n, memory_order_release);
	atomic_store_explicit(&pool.active, threads, memory_order_relaxed);
	atomic_store_explicit(&pool.caller_cpu, this_cpu(), memory_order_relaxed);
	atomic_store_explicit(&pool.done, 0, memory_order_relaxed);
	atomic_store(&pool.state, (uint64_t)gen << 32);
	if (atomic_load(&pool.sleepers)) {
		pthread_mutex_lock(&pool.mu);
		pthread_cond_broadcast(&pool.wake);
		pthread_mutex_unlock(&pool.mu);
	}

	int others = n - run_tasks(gen, false);

	uint64_t t0 = 0;
	for (unsigned i = 1; atomic_load_explicit(&pool.done, memory_order_acquire) < others; i++) {
		relax();
		if (i % 64)
			continue;
		uint64_t t = now_us();
		if (!t0)
			t0 = t;
		else if (t - t0 > SLEEP_US) {
			pthread_mutex_lock(&pool.mu);
			atomic_store(&pool.waiting, 1);
			while (atomic_load(&pool.done) < others)
				pthread_cond_wait(&pool.idle, &pool.mu);
			atomic_store(&pool.waiting, 0);
			pthread_mutex_unlock(&pool.mu);
			break;
		} else if (t - t0 > YIELD_US) {
			/* A worker holds a task and has lost its core: maybe to us. */
			sched_yield();
		}
	}
	pthread_mutex_unlock(&pool.submit);
}

int sl_rows_per_task(int n_rows, double flops)
{
	/* About four tasks a thread, so that a thread that loses its core
	 * leaves little for the others to wait on, but none under some
	 * microseconds of work (many threads, a small product). */
	double most = flops / 2.5e4;
	int tasks = flops < 2e5 ? 1 : sl_kernels_threads() * 4;
	if (tasks > most)
		tasks = (int)most;
	if (tasks > n_rows)
		tasks = n_rows;
	if (tasks < 2)
		return n_rows > 0 ? n_rows : 1;
	int per = (n_rows + tasks - 1) / tasks;
	return (per + 15) / 16 * 16;
}

/* Products of a few tokens (decoding) are over in microseconds and read
 * their weights from memory, a row after the other. Each thread takes one
 * share of the rows, a contiguous run, and streams it from start to end:
 * its reads stay one stream, which the hardware's prefetchers and the
 * kernels' own prefetches (the rows after a call's) follow. Threads that
 * claimed small tasks in turn from all the rows read runs that the other
 * threads' runs interrupt, and paid for each restart. A thread claims its
 * share in pieces: a part 1 / (2 * threads) of what is left of it, between
 * a least (SPLIT_UNIT rows and some microseconds of work) and an equal
 * task's size (sl_rows_per_task). A thread done with its share takes
 * pieces from the end of the share with the most left, so the threads
 * finish within a piece of each other, the last pieces one unit, however
 * late a thread came or long it lost its core. Two threads, a model of
 * the 374M shape in 8-bit blocks: 16.8-17.3 ms a token, against 17.6-18.2
 * with tapered tasks claimed in turn from all the rows. */
#define SPLIT_UNIT 16

typedef struct {
	_Alignas(64) _Atomic uint64_t span; /* next unit << 32 | end unit of a share */
} rows_share;

typedef struct {
	rows_share *share;
	int n_shares, least, most, n_rows;
	void (*fn)(int r0, int r1, void *arg);
	void *arg;
} rows_args;

/* A piece of share s, from its start (its owner) or its end (a thread
 * done with its own); false when nothing is left. */
static bool rows_claim(const rows_args *r, rows_share *s, bool from_end, int *u0, int *u1)
{
	uint64_t v = atomic_load_explicit(&s->span, memory_order_relaxed);
	for (;;) {
		uint32_t lo = (uint32_t)(v >> 32), hi = (uint32_t)v;
		if (lo >= hi)
			return false;
		uint32_t c = (hi - lo) / (2u * (uint32_t)r->n_shares);
		c = c < (uint32_t)r->least ? (uint32_t)r->least : c > (uint32_t)r->most ? (uint32_t)r->most : c;
		if (c > hi - lo)
			c = hi - lo;
		uint64_t next = from_end ? (uint64_t)lo << 32 | (hi - c) : (uint64_t)(lo + c) << 32 | hi;
		if (atomic_compare_exchange_weak_explicit(&s->span, &v, next, memory_order_relaxed, memory_order_relaxed)) {
			*u0 = (int)(from_end ? hi - c : lo);
			*u1 = *u0 + (int)c;
			return true;
		}
	}
}

static void rows_piece(const rows_args *r, int u0, int u1)
{
	int r1 = u1 * SPLIT_UNIT;
	r->fn(u0 * SPLIT_UNIT, r1 < r->n_rows ? r1 : r->n_rows, r->arg);
}

/* Task k: share k from its start, then pieces of the others from their
 * ends until every share is claimed. */
static void rows_task(int k, void *p)
{
	const rows_args *r = p;
	int u0, u1;
	while (rows_claim(r, &r->share[k], false, &u0, &u1))
		rows_piece(r, u0, u1);
	for (;;) {
		int most = -1;
		uint32_t left = 0;
		for (int j = 0; j < r->n_shares; j++) {
			uint64_t v = atomic_load_explicit(&r->share[j].span, memory_order_relaxed);
			uint32_t lo = (uint32_t)(v >> 32), hi = (uint32_t)v;
			if (hi > lo && hi - lo > left) {
				left = hi - lo;
				most = j;
			}
		}
		if (most < 0)
			return;
		if (rows_claim(r, &r->share[most], true, &u0, &u1))
			rows_piece(r, u0, u1);
	}
}

void sl_parallel_rows(int n_rows, double flops, void (*fn)(int r0, int r1, void *arg), void *arg)
{
	if (n_rows <= 0)
		return;
	int per = sl_rows_per_task(n_rows, flops);
	int threads = in_pool_task ? 1 : sl_kernels_threads();
	if (per >= n_rows || threads < 2) {
		fn(0, n_rows, arg);
		return;
	}
	int units = (n_rows + SPLIT_UNIT - 1) / SPLIT_UNIT;
	double unit_flops = flops / n_rows * SPLIT_UNIT;
	int least = unit_flops >= 2.5e4 ? 1 : (int)ceil(2.5e4 / unit_flops);
	int most = per / SPLIT_UNIT > least ? per / SPLIT_UNIT : least;
	int n = threads < units ? threads : units;
	rows_share *share = aligned_alloc(64, sizeof *share * (size_t)n);
	if (!share)
		abort();
	for (int k = 0; k < n; k++)
		atomic_init(&share[k].span, (uint64_t)((int64_t)units * k / n) << 32 | (uint32_t)((int64_t)units * (k + 1) / n));
	rows_args r = {share, n, least, most, n_rows, fn, arg};
	sl_parallel_for(n, rows_task, &r);
	free(share);
}
