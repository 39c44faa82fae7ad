/* broken_life5.c - the sample provider with one bug: when it closes an
 * instance it calls CPNatfwtDestroyProviderInstance twice. Breaks LIFE-5. */
#define SAMPLE_BUG_LIFE5 1
#include "sample.c"
