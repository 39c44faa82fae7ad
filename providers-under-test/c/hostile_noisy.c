/* hostile_noisy.c - the sample provider writing megabytes of output in
 * CpsimProviderStart, nearly all of it one line ("noise_mib", default 64),
 * then aborting. cpsim must keep only a bounded part of it, in memory and
 * in the CRASH-1 finding. */
#define SAMPLE_BUG_NOISE 1
#include "sample.c"
