/* fixed_ports.c - the sample provider, correct, but each host binds a
 * fixed loopback UDP port (47000 + the first letter of its name) and aborts
 * at the first datagram of another process. With a network per case, cases
 * running at once never meet. */
#define SAMPLE_FIXED_PORTS 1
#include "sample.c"
