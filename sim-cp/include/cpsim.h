/*
 * cpsim.h - the simulator as a C library (crate `cpsim-capi`, built as
 * libcpsim_capi.so / cpsim_capi.dll).
 *
 * The library exports the five CPNatfwt* functions of cpnatfwt.h with their
 * exact ABI, so a program written against that header runs on it unchanged,
 * as it would on Windows 7's iphlpapi.dll. A simulated platform needs a
 * world to run in, which these functions make and drive:
 *
 *   CpsimWorld *w = CpsimWorldCreate("{\"hosts\": [\"A\", \"B\"]}");
 *   CpsimWorldUseHost(w, "A");           // this thread's Creates go to A
 *   ... CPNatfwtCreateProviderInstance / Register ...
 *   CpsimWorldSchedule(w, 50, "{\"do\": \"listen\", \"host\": \"A\", \"on\": true}");
 *   ... the platform calls the provider's callbacks from its own thread ...
 *   ... Deregister / Destroy everything ...
 *   char *outcome = CpsimWorldFinish(w); // JSON: violations and trace
 *   CpsimFree(outcome);
 *
 * A world runs in real time on a thread of its own, which is where the
 * platform's callbacks come from. Every host runs an empty provider: the
 * provider is the program itself.
 *
 * Configuration (JSON, every field optional):
 *   hosts             host names (default ["local"])
 *   seed              the run's seed (default 0)
 *   limits            time limits per callback kind (TIME-1), as in scenario files
 *   faults            deliberate platform bugs, e.g. ["wrong-user-context"]
 *                     (only to test a checker of platform behaviour)
 *   drain_ms          real time before the final checks (default 200)
 *   idle_dormancy_ms  idle time before the platform sends an instance dormant
 *   watchdog_ms       how long a callback may run before TIME-1 is reported
 *
 * Actions are the JSON form of cpsim_sim::Action ("do": start_provider,
 * stop_provider, listen, send, address_add, address_remove,
 * duplicate_address, dormant, shutdown, communication_error, partition,
 * heal, net_faults, task_timing, advance), the same steps scenario files
 * use, without "at_ms".
 */
#ifndef CPSIM_H
#define CPSIM_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct CpsimWorld CpsimWorld;

/* Makes a world and starts it; NULL if the configuration is bad. */
CpsimWorld *CpsimWorldCreate(const char *configJson);

/* Schedules an action `atMs` milliseconds after the world's start (a time
 * in the past means now). 0 on success, -1 on error. */
int32_t CpsimWorldSchedule(CpsimWorld *world, uint64_t atMs, const char *actionJson);

/* From now on, CPNatfwtCreateProviderInstance called on this thread creates
 * on `host`. 0 on success, -1 on error. */
int32_t CpsimWorldUseHost(CpsimWorld *world, const char *host);

/* Milliseconds since the world started. */
uint64_t CpsimWorldNowMs(CpsimWorld *world);

/* The last error of a call on this world (NULL if none). */
const char *CpsimWorldLastError(CpsimWorld *world);

/* Drains, stops every host (LIFE-8 is checked), runs the platform checker,
 * frees the world and returns the outcome as JSON (free with CpsimFree). */
char *CpsimWorldFinish(CpsimWorld *world);

void CpsimFree(char *s);

#ifdef __cplusplus
}
#endif

#endif /* CPSIM_H */
