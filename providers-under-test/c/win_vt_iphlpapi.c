/* win_vt_iphlpapi.c - Windows only: the virtual-time sample, which also
 * calls another iphlpapi.dll function (GetNumberOfInterfaces) in
 * CpsimProviderStart and fails to start if it fails. Its iphlpapi.dll
 * imports are bound to cpsim's router like the five CPNatfwt* ones, so the
 * router must forward this one to the system's iphlpapi.dll. */
#define VT_WIN_IPHLPAPI 1
#include "sample_vt.c"
