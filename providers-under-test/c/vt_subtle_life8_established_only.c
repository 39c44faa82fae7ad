/* vt_subtle_life8_established_only.c - the virtual-time sample with one
 * subtle bug: at stop, an instance whose ESTABLISH has not arrived yet is
 * taken to need no teardown. ESTABLISH may come after Register returns
 * (the platform chooses); only a stop in that window (the same instant as
 * a start) leaves the instance registered and undestroyed (LIFE-8). */
#define VT_SUBTLE_ESTABLISHED_ONLY 1
#include "sample_vt.c"
