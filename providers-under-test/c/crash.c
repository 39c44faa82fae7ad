/* crash.c - the sample provider crashing the process inside
 * TRANSITION_ACTIVE: SIGSEGV, or SIGABRT when its configuration JSON
 * contains "abort". cpsim must report CRASH-1 and go on with the next case. */
#define SAMPLE_BUG_CRASH 1
#include "sample.c"
