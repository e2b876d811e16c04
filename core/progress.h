/* Long work reports progress and honours cancellation through this. The
 * workbench runs such work on a worker thread and raises cancel; the CLI
 * draws a bar on stderr. */
#ifndef SL_PROGRESS_H
#define SL_PROGRESS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

typedef struct sl_progress {
	/* frac in [0, 1]; stage names what is being done ("chunk 3/40"). */
	void (*fn)(void *ctx, double frac, const char *stage);
	void *ctx;
	const atomic_int *cancel;
} sl_progress;

/* Seconds on the monotonic clock, for durations, rates and ETAs. */
static inline double sl_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static inline bool sl_cancelled(const sl_progress *p)
{
	return p && p->cancel && atomic_load(p->cancel);
}

static inline void sl_report(const sl_progress *p, double frac, const char *stage)
{
	if (p && p->fn)
		p->fn(p->ctx, frac, stage);
}

/* Work done in stages reports each stage as a slice [lo, hi] of the
 * whole: the stage's own 0..1 maps onto that slice of the parent's bar,
 * and the parent's cancel flag still applies. */
typedef struct {
	sl_progress p;
	const sl_progress *parent;
	double lo, hi;
} sl_progress_slice;

static inline void sl_progress_slice_report(void *ctx, double frac, const char *stage)
{
	sl_progress_slice *s = (sl_progress_slice *)ctx;
	sl_report(s->parent, s->lo + frac * (s->hi - s->lo), stage);
}

static inline const sl_progress *sl_progress_slice_init(sl_progress_slice *s, const sl_progress *parent, double lo,
                                                        double hi)
{
	s->parent = parent;
	s->lo = lo;
	s->hi = hi;
	s->p.fn = sl_progress_slice_report;
	s->p.ctx = s;
	s->p.cancel = parent ? parent->cancel : NULL;
	return &s->p;
}

#endif
