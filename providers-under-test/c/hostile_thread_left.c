/* hostile_thread_left.c - the sample provider starting, in
 * CpsimProviderStart, a keep-alive thread that CpsimProviderStop neither
 * stops nor joins: it outlives the module's stop (LIFE-8: nothing of the
 * module may run after CpsimProviderStop returns; a real platform would
 * unload the module under it). Linux only. */
#define SAMPLE_BUG_THREAD_LEFT 1
#include "sample.c"
