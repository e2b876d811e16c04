/* The storage formats a recipe can name ("q4_k", "int4-g128", "nvfp4",
 * "fp8-e4m3", "f16", ...): their storage type, bits per weight, which rows
 * they can hold, what they fall back to, and how they are exported. */
#ifndef SL_FORMATS_H
#define SL_FORMATS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
	const char *name;      /* as recipes spell it, lower case */
	int dtype;             /* the sl_dtype weights are stored in */
	int bits;              /* nominal bits of one value (16, 8, 4, ...) */
	int group;             /* elements sharing a scale (0: per row or tensor) */
	const char *family;    /* "float", "ggml", "int", "fp8", "fp4" */
	const char *summary;   /* one line for menus and --help */
} sl_format;

int sl_format_count(void);
const sl_format *sl_format_at(int i);
/* NULL when the name is unknown. */
const sl_format *sl_format_find(const char *name);
const sl_format *sl_format_of_dtype(int dtype);
/* Bits per weight of a row of n elements in this format, scales included. */
double sl_format_bpw(const sl_format *f, int64_t n);
/* Whether rows of n elements fit the format's blocks. */
bool sl_format_fits(const sl_format *f, int64_t n);
/* The nearest format that can hold rows of n: f itself when it fits, else
 * one of the same family with a finer block, else the nearest by bits, and
 * f16 at worst. */
const sl_format *sl_format_fallback(const sl_format *f, int64_t n);
/* The GGUF (ggml) type an export writes for this format's values: its own
 * when it is a ggml type, a ggml type holding the same values when there
 * is one (int4-g128 as Q4_0 blocks, see sl_dtype_ggml_twin), else the
 * smallest float type that holds the dequantized values of this tensor
 * exactly (checked, not assumed). */
int sl_format_export_type(const sl_format *f, const float *dequantized, int64_t n);

#endif
