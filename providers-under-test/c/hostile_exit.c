/* hostile_exit.c - the sample provider calling exit(3) inside
 * TRANSITION_ACTIVE. cpsim must report CRASH-1 naming the exit code and the
 * callback. */
#define SAMPLE_BUG_EXIT 1
#include "sample.c"
