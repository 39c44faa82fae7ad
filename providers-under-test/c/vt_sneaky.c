/* vt_sneaky.c - says it runs on virtual time, and hides from the import
 * check: it finds pthread_create at run time (dlsym) and starts a thread
 * that calls into cpsim. cpsim notices the call from a thread it does not
 * run and stops with an error instead of reporting results. */
#define VT_BUG_SNEAKY_THREAD 1
#include "sample_vt.c"
