/* hostile_ctor_hang.c - a module whose initialiser never returns. Each case
 * must report TIME-1 (stuck while loading) within its limit, and the
 * harness must finish. */
#define CPSIM_PROVIDER_MODULE
#include "cpnatfwt.h"

#include <unistd.h>

__attribute__((constructor)) static void on_load(void) {
    for (;;)
        pause();
}

CPSIM_PROVIDER_EXPORT HRESULT CpsimProviderStart(const char *hostName, const char *configJson) {
    (void)hostName;
    (void)configJson;
    return E_FAIL;
}

CPSIM_PROVIDER_EXPORT void CpsimProviderStop(void) {}
