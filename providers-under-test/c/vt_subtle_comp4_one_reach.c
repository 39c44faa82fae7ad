/* vt_subtle_comp4_one_reach.c - the virtual-time sample with one subtle bug:
 * REACH_TRANSPORT_ID is pended and answered by a 1 ms lookup timer, and the
 * call being looked up is kept in a single variable. Only when two REACHes
 * are pended on one host at once (a host sending to two new peers, or to a
 * peer's IPv4 and IPv6 IDs, within a millisecond) does the second overwrite
 * the first: both timers complete the second call (COMP-4) and the first is
 * never completed. */
#define VT_SUBTLE_ONE_REACH 1
#include "sample_vt.c"
