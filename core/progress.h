/* Long work reports progress and honours cancellation through this. The
 * workbench runs such work on a worker thread and raises cancel; the CLI
 * draws a bar on stderr. */
#ifndef SL_PROGRESS_H
#define SL_PROGRESS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct sl_progress {
	/* frac in [0, 1]; stage names what is being done ("chunk 3/40"). */
	void (*fn)(void *ctx, double frac, const char *stage);
	void *ctx;
	const atomic_int *cancel;
} sl_progress;

static inline bool sl_cancelled(const sl_progress *p)
{
	return p && p->cancel && atomic_load(p->cancel);
}

static inline void sl_report(const sl_progress *p, double frac, const char *stage)
{
	if (p && p->fn)
		p->fn(p->ctx, frac, stage);
}

#endif
