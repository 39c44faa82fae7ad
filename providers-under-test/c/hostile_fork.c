/* hostile_fork.c - the sample provider forking, in CpsimProviderStart, a
 * grandchild process that lives a minute holding the runner's output pipes
 * (its pid is appended to the file named by "pid_file"). Cases must not wait
 * for it, and it must not outlive certification. */
#define SAMPLE_BUG_FORK 1
#include "sample.c"
