/* vt_broken_comp4.c - the virtual-time sample with one bug: TRANSITION_ACTIVE
 * returns ERROR_IO_PENDING and a worker task (CpsimSpawn) then completes it
 * twice (COMP-4).
 * Found, shrunk and replayed bit for bit on the virtual clock. */
#define VT_BUG_COMP4 1
#include "sample_vt.c"
