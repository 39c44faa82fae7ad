/* vt_sleep.c - says it runs on virtual time, but sleeps (usleep) inside
 * TRANSITION_ACTIVE. cpsim refuses it before any case, naming usleep. */
#define VT_BUG_SLEEP 1
#include "sample_vt.c"
