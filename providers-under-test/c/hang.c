/* hang.c - the sample provider whose TRANSITION_ACTIVE never returns.
 * cpsim must report TIME-1 and go on with the next case. */
#define SAMPLE_BUG_HANG 1
#include "sample.c"
