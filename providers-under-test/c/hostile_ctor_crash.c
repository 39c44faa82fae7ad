/* hostile_ctor_crash.c - a module whose initialiser (a constructor, run
 * when the library is loaded) crashes with SIGSEGV. No code of it may ever
 * run in the harness's own process: each case reports CRASH-1, naming the
 * loading, and certification ends with a report. */
#define CPSIM_PROVIDER_MODULE
#include "cpnatfwt.h"

#include <stdint.h>

__attribute__((constructor)) static void on_load(void) {
    volatile uintptr_t nowhere = 16; /* an address never mapped */
    *(volatile int *)nowhere = 1;
}

CPSIM_PROVIDER_EXPORT HRESULT CpsimProviderStart(const char *hostName, const char *configJson) {
    (void)hostName;
    (void)configJson;
    return E_FAIL;
}

CPSIM_PROVIDER_EXPORT void CpsimProviderStop(void) {}
