/* vt_subtle_data5_max_payload.c - the virtual-time sample with one subtle
 * bug: it carries datagrams up to the largest UDP payload (65,507 bytes),
 * but its staging buffer keeps one byte for a terminator, so a datagram of
 * exactly the largest size arrives one byte short (DATA-5). Every smaller
 * datagram is carried intact. */
#define VT_SUBTLE_MAX_PAYLOAD 1
#include "sample_vt.c"
