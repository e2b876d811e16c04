/* Human-readable sizes, counts and durations. */
#include "units.h"

#include <stdio.h>

static void fmt_si(double v, double step, const char *const *units, const char *sep, char *buf, size_t n)
{
	int u = 0;
	while (v >= step && u < 4) {
		v /= step;
		u++;
	}
	snprintf(buf, n, u ? "%.2f%s%s" : "%.0f%s%s", v, sep, units[u]);
}

void sl_fmt_bytes(double bytes, char *buf, size_t n)
{
	static const char *const units[] = {"B", "KB", "MB", "GB", "TB"};
	fmt_si(bytes, 1000.0, units, " ", buf, n);
}

void sl_fmt_count(double v, char *buf, size_t n)
{
	static const char *const units[] = {"", "K", "M", "B", "T"};
	fmt_si(v, 1000.0, units, "", buf, n);
}

void sl_fmt_duration(double seconds, char *buf, size_t n)
{
	if (!(seconds >= 0) || seconds > 1e7) {
		snprintf(buf, n, "--:--");
		return;
	}
	long s = (long)(seconds + 0.5);
	if (s >= 3600)
		snprintf(buf, n, "%ldh%02ldm", s / 3600, s / 60 % 60);
	else
		snprintf(buf, n, "%ld:%02ld", s / 60, s % 60);
}
