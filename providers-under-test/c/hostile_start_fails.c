/* hostile_start_fails.c - a module whose CpsimProviderStart fails on host B
 * only (a file it needs is missing there, say). B runs nothing of it; the
 * certification must say why, not only that rules went unexercised. */
#define CPSIM_PROVIDER_MODULE
#include "cpnatfwt.h"
#include <string.h>

HRESULT CpsimProviderStart(const char *hostName, const char *configJson)
{
    (void)configJson;
    if (strcmp(hostName, "B") == 0)
        return E_FAIL;
    return S_OK;
}

void CpsimProviderStop(void) {}
