/* vt_thread.c - says it runs on virtual time, but imports pthread_create
 * (and starts a thread in CpsimProviderStart). cpsim refuses it before any
 * case, naming the function. */
#define VT_BUG_THREAD 1
#include "sample_vt.c"
