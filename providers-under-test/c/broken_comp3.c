/* broken_comp3.c - the sample provider with one bug: TRANSITION_ACTIVE
 * returns S_OK (a synchronous result) and then calls the completion routine
 * all the same, from its maintenance thread. Breaks COMP-3. */
#define SAMPLE_BUG_COMP3 1
#include "sample.c"
