/* Which compute backends this build of slimlab has and this machine offers. */
#ifndef SL_BACKEND_H
#define SL_BACKEND_H

#include <stddef.h>

/* One line per backend into buf ("cpu: AVX2+FMA+F16C kernels\ncuda: ..."). */
void sl_backend_describe(char *buf, size_t n);

#endif
