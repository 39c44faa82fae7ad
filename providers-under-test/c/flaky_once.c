/* flaky_once.c - the sample provider with a bug that strikes once: the
 * first TRANSITION_ACTIVE ever (across every run, marked by the file named by
 * its configuration's "once_file") calls the completion routine after
 * returning S_OK (COMP-3). A failure that does not recur when rerun. */
#define SAMPLE_BUG_ONCE 1
#include "sample.c"
