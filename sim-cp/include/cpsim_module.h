/*
 * cpsim_module.h - the simulator's facilities for C provider modules:
 * timers and tasks, datagrams on the simulated network, the clock, and
 * seeded randomness.
 *
 * Include it after cpnatfwt.h (it includes it itself) in a provider module
 * (see cpnatfwt.h, CPSIM_PROVIDER_MODULE). Like the CPNatfwt* functions,
 * these functions are left undefined in the module and provided by cpsim
 * when it loads the module; each call acts on the simulated host whose
 * copy of the module made it.
 *
 * A module that does all of its waiting, timing, networking and random
 * choices through these functions, and starts no threads of its own, can
 * say so with CPSIM_VIRTUAL_TIME_MODULE (once, at file scope). cpsim then
 * runs it on the simulator's virtual clock instead of the wall clock: a
 * seed names a run, a failure replays bit for bit and shrinks like a Rust
 * provider's, and thousands of cases run per second. cpsim checks the
 * promise: a module with the marker that imports thread, sleep, wall-clock,
 * OS-randomness or socket functions is refused with their names, and one
 * that starts a thread anyway is reported.
 *
 * Without the marker a module runs in real time and may still use these
 * functions (timers then fire on the wall clock).
 *
 * Rules of use:
 *   - Call them only from the module's own code while it runs for cpsim
 *     (CpsimProviderStart/Stop, a callback, a task or receive routine).
 *   - Routines (tasks, timers, receive routines) run later on the
 *     simulator's thread, one at a time, never inside another callback.
 *   - When CpsimProviderStop returns, the host's pending tasks and timers
 *     of this module are dropped without being called, and its ports are
 *     closed.
 *
 * See docs/c-providers.md.
 */
#ifndef CPSIM_MODULE_H
#define CPSIM_MODULE_H

#include "cpnatfwt.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The version of these facilities; the marker carries it. */
#define CPSIM_MODULE_FACILITIES_VERSION 1u

/* The marker: this module uses only the facilities below for time,
 * waiting, networking and randomness, and starts no threads. */
#define CPSIM_VIRTUAL_TIME_MODULE                                              \
    CPSIM_PROVIDER_EXPORT const unsigned int CpsimModuleVirtualTime =         \
        CPSIM_MODULE_FACILITIES_VERSION

/* A node of the simulated network and a port on it. */
typedef struct _CPSIM_ADDRESS {
    USHORT node;
    USHORT port;
} CPSIM_ADDRESS;

/* A task or timer routine. */
typedef VOID (*CPSIM_TASK_ROUTINE)(PVOID context);

/* A receive routine: a datagram for a bound port. `data` is valid only
 * during the call. */
typedef VOID (*CPSIM_RECEIVE_ROUTINE)(PVOID context, const CPSIM_ADDRESS *from,
                                      const BYTE *data, ULONG size);

/* The simulated clock: nanoseconds since the run began. */
UINT64 CpsimNow(void);

/* A random number from the run's seed. */
UINT64 CpsimRandom(void);

/* Runs `routine(context)` after `delayNs` of simulated time. */
HRESULT CpsimAfter(UINT64 delayNs, CPSIM_TASK_ROUTINE routine, PVOID context);

/* Runs `routine(context)` as a worker task. When it runs is the harness's
 * choice, as for a Rust provider's tasks: right after the current callback
 * returns, before its return is seen, late, after a time limit has passed,
 * or never. Use it for work whose timing must not matter (a pended call's
 * completion, say); use CpsimAfter for work that must happen. */
HRESULT CpsimSpawn(CPSIM_TASK_ROUTINE routine, PVOID context);

/* Binds `port` on this host's node: its datagrams go to `routine`.
 * Fails if the port is bound already. */
HRESULT CpsimBind(USHORT port, CPSIM_RECEIVE_ROUTINE routine, PVOID context);

/* Closes a port bound with CpsimBind. */
VOID CpsimUnbind(USHORT port);

/* The address of `port` on the host named `hostName` (NULL: this host;
 * "infra": the infrastructure node every world has). E_INVALIDARG for an
 * unknown host. */
HRESULT CpsimAddressOf(const char *hostName, USHORT port,
                       CPSIM_ADDRESS *address);

/* Sends a datagram from this host's `fromPort` to `to` over the simulated
 * network (its loss, delay, duplication, reordering and partitions apply).
 * The bytes are copied before it returns. */
HRESULT CpsimSendTo(USHORT fromPort, const CPSIM_ADDRESS *to, const VOID *data,
                    ULONG size);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* CPSIM_MODULE_H */
