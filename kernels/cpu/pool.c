/* The CPU kernels' worker threads. One pool serves every parallel loop, and
 * OpenBLAS is held to a single thread so the two never fight over cores:
 * parallelism comes from splitting work across this pool. Decoding a small
 * model runs a few hundred short loops a second, so waking a sleeping
 * thread for each would cost more than the work: idle workers and the
 * waiting caller spin a little (SPIN polls) before they sleep. */
#include <cblas.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "../kernels.h"

static struct {
	pthread_mutex_t mu;
	pthread_cond_t wake, idle;
	pthread_mutex_t submit; /* one parallel loop at a time */
	pthread_t *threads;
	int n_threads;           /* workers + the calling thread */
	uint64_t generation;
	void (*fn)(int, void *);
	void *arg;
	int n;
	atomic_int next;
	atomic_int done;
	atomic_int busy;         /* workers still inside the current loop */
	atomic_uint_fast64_t published; /* pool.generation, readable without the lock */
	int requested;
} pool = {
	.mu = PTHREAD_MUTEX_INITIALIZER,
	.wake = PTHREAD_COND_INITIALIZER,
	.idle = PTHREAD_COND_INITIALIZER,
	.submit = PTHREAD_MUTEX_INITIALIZER,
};

static _Thread_local int in_pool_task;

/* Polls before sleeping: some tens of microseconds. */
#ifndef SPIN
#define SPIN 20000
#endif

static inline void relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

static void run_tasks(void (*fn)(int, void *), void *arg, int n)
{
	in_pool_task = 1;
	for (;;) {
		int i = atomic_fetch_add(&pool.next, 1);
		if (i >= n)
			break;
		fn(i, arg);
		atomic_fetch_add(&pool.done, 1);
	}
	in_pool_task = 0;
}

static void *worker(void *unused)
{
	(void)unused;
	uint64_t seen = 0;
	for (;;) {
		for (int i = 0; i < SPIN && atomic_load_explicit(&pool.published, memory_order_acquire) == seen; i++)
			relax();
		pthread_mutex_lock(&pool.mu);
		while (pool.generation == seen)
			pthread_cond_wait(&pool.wake, &pool.mu);
		seen = pool.generation;
		void (*fn)(int, void *) = pool.fn;
		void *arg = pool.arg;
		int n = pool.n;
		atomic_fetch_add(&pool.busy, 1);
		pthread_mutex_unlock(&pool.mu);
		run_tasks(fn, arg, n);
		pthread_mutex_lock(&pool.mu);
		if (atomic_fetch_sub(&pool.busy, 1) == 1)
			pthread_cond_broadcast(&pool.idle);
		pthread_mutex_unlock(&pool.mu);
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
	pool.threads = calloc((size_t)n, sizeof(pthread_t));
	pool.n_threads = 1;
	if (!pool.threads)
		return;
	for (int i = 1; i < n; i++) {
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		int rc = pthread_create(&pool.threads[i], &attr, worker, NULL);
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
	if (n == 1 || in_pool_task || sl_kernels_threads() == 1) {
		for (int i = 0; i < n; i++)
			fn(i, arg);
		return;
	}
	pthread_mutex_lock(&pool.submit);
	pthread_mutex_lock(&pool.mu);
	/* A worker that woke late for the previous loop must leave it before
	 * the task counter is reset under it. */
	while (atomic_load(&pool.busy) > 0)
		pthread_cond_wait(&pool.idle, &pool.mu);
	pool.fn = fn;
	pool.arg = arg;
	pool.n = n;
	atomic_store(&pool.next, 0);
	atomic_store(&pool.done, 0);
	pool.generation++;
	atomic_store_explicit(&pool.published, pool.generation, memory_order_release);
	pthread_cond_broadcast(&pool.wake);
	pthread_mutex_unlock(&pool.mu);

	run_tasks(fn, arg, n);

	for (int i = 0; i < SPIN && (atomic_load(&pool.busy) > 0 || atomic_load(&pool.done) < n); i++)
		relax();
	pthread_mutex_lock(&pool.mu);
	while (atomic_load(&pool.busy) > 0 || atomic_load(&pool.done) < n)
		pthread_cond_wait(&pool.idle, &pool.mu);
	pthread_mutex_unlock(&pool.mu);
	pthread_mutex_unlock(&pool.submit);
}

int sl_rows_per_task(int n_rows, double flops)
{
	int tasks = flops < 2e5 ? 1 : sl_kernels_threads() * 4;
	if (tasks > n_rows)
		tasks = n_rows;
	if (tasks < 1)
		tasks = 1;
	int per = (n_rows + tasks - 1) / tasks;
	if (tasks > 1)
		per = (per + 15) / 16 * 16;
	return per > 0 ? per : 1;
}
