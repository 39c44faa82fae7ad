/* hostile_ctor_exit.c - a module whose initialiser calls exit(0) when the
 * library is loaded. Were it loaded in the harness, cpsim would exit 0
 * with no report; each case must report CRASH-1 instead. */
#define CPSIM_PROVIDER_MODULE
#include "cpnatfwt.h"

#include <stdlib.h>

__attribute__((constructor)) static void on_load(void) { exit(0); }

CPSIM_PROVIDER_EXPORT HRESULT CpsimProviderStart(const char *hostName, const char *configJson) {
    (void)hostName;
    (void)configJson;
    return E_FAIL;
}

CPSIM_PROVIDER_EXPORT void CpsimProviderStop(void) {}
