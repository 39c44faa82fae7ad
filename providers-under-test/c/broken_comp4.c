/* broken_comp4.c - the sample provider with one bug: TRANSITION_ACTIVE
 * returns ERROR_IO_PENDING and then completes the call twice. Breaks COMP-4
 * (a pended call is completed exactly once). */
#define SAMPLE_BUG_COMP4 1
#include "sample.c"
