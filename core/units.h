/* Numbers for people: byte sizes and counts with SI prefixes, durations.
 * The CLI and the workbench print figures the same way through these. */
#ifndef SL_UNITS_H
#define SL_UNITS_H

#include <stddef.h>

/* "1.23 MB", "512 B" */
void sl_fmt_bytes(double bytes, char *buf, size_t n);
/* "260.1K", "7.24B", "12" */
void sl_fmt_count(double v, char *buf, size_t n);
/* "0:42", "12:05", "3h07m" */
void sl_fmt_duration(double seconds, char *buf, size_t n);

#endif
