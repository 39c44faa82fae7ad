/*
 * router.c - the process-wide home of the five CPNatfwt* symbols that C
 * provider modules import.
 *
 * cpsim loads this small shared library once per process with
 * RTLD_NOW | RTLD_GLOBAL, before any provider module. A module is an
 * ordinary shared library compiled against cpnatfwt.h: its references to
 * the CPNatfwt* functions are undefined symbols, which the dynamic linker
 * resolves in the process's global scope, that is, here.
 *
 * Each function below notes which loaded object called it (the object
 * holding its return address, found with dladdr) and forwards the call,
 * with that object's load address, to the simulator through a table of
 * function pointers that the Rust side installs with cpsim_router_install.
 * Every simulated host runs its own private copy of a module, mapped at
 * its own address, so the caller's load address names the host: this is
 * how calls made from a module's own threads reach the right host.
 *
 * The facilities of cpsim_module.h (clock, randomness, timers and tasks,
 * datagrams on the simulated network) are routed the same way.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>

#include "cpsim_module.h"

#define ROUTER_EXPORT __attribute__((visibility("default")))

/* What the simulator provides. `caller` is the load address of the object
 * that made the call (NULL when unknown). Plain C calling convention. */
typedef struct cpsim_router_table {
    unsigned int size; /* sizeof(cpsim_router_table) */
    HRESULT (*create)(void *caller,
                      const CPNATFWT_PROVIDER_INSTANCE_DISPATCH_TABLE *table,
                      PVOID userContext,
                      CPNATFWT_PROVIDER_INSTANCE *instance);
    HRESULT (*register_)(void *caller, CPNATFWT_PROVIDER_INSTANCE instance,
                         WCHAR *name, IF_LUID *luid, ULONG flags, WCHAR *sddl);
    HRESULT (*deregister)(void *caller, CPNATFWT_PROVIDER_INSTANCE instance);
    void (*destroy)(void *caller, CPNATFWT_PROVIDER_INSTANCE instance);
    HRESULT (*indicate)(void *caller, CPNATFWT_PROVIDER_INSTANCE instance,
                        CPNATFWT_TRANSPORT_ID *local,
                        CPNATFWT_TRANSPORT_ID *remote,
                        CPNATFWT_BUFFER *chain, PVOID completionContext,
                        CPNATFWT_PROVIDER_COMPLETION_ROUTINE routine);
    /* cpsim_module.h */
    UINT64 (*now)(void *caller);
    UINT64 (*random)(void *caller);
    HRESULT (*after)(void *caller, UINT64 delay_ns, CPSIM_TASK_ROUTINE routine,
                     PVOID context);
    HRESULT (*spawn)(void *caller, CPSIM_TASK_ROUTINE routine, PVOID context);
    HRESULT (*bind)(void *caller, USHORT port, CPSIM_RECEIVE_ROUTINE routine,
                    PVOID context);
    void (*unbind)(void *caller, USHORT port);
    HRESULT (*address_of)(void *caller, const char *host, USHORT port,
                          CPSIM_ADDRESS *address);
    HRESULT (*send_to)(void *caller, USHORT from_port, const CPSIM_ADDRESS *to,
                       const VOID *data, ULONG size);
} cpsim_router_table;

static const cpsim_router_table *volatile g_table;

/* Installs the simulator's table (once per process; later calls replace it).
 * Returns 0, or -1 if the table has the wrong size. */
ROUTER_EXPORT int cpsim_router_install(const cpsim_router_table *table) {
    if (table == NULL || table->size != sizeof(cpsim_router_table))
        return -1;
    __atomic_store_n(&g_table, table, __ATOMIC_RELEASE);
    return 0;
}

static const cpsim_router_table *table(void) {
    return __atomic_load_n(&g_table, __ATOMIC_ACQUIRE);
}

/* The load address of the object containing `ret`, or NULL. */
static void *caller_base(void *ret) {
    Dl_info info;
    if (ret != NULL && dladdr(ret, &info) != 0)
        return info.dli_fbase;
    return NULL;
}

#define CALLER caller_base(__builtin_extract_return_addr(__builtin_return_address(0)))

ROUTER_EXPORT HRESULT WINAPI CPNatfwtCreateProviderInstance(
    const CPNATFWT_PROVIDER_INSTANCE_DISPATCH_TABLE *dispatchTable,
    PVOID providerInstanceUserContext,
    CPNATFWT_PROVIDER_INSTANCE *providerInstance) {
    const cpsim_router_table *t = table();
    if (t == NULL)
        return E_FAIL;
    return t->create(CALLER, dispatchTable, providerInstanceUserContext,
                     providerInstance);
}

ROUTER_EXPORT HRESULT WINAPI CPNatfwtRegisterProviderInstance(
    CPNATFWT_PROVIDER_INSTANCE providerInstance, WCHAR *interfaceFriendlyName,
    IF_LUID *interfaceLuid, ULONG flags, WCHAR *sddl) {
    const cpsim_router_table *t = table();
    if (t == NULL)
        return E_FAIL;
    return t->register_(CALLER, providerInstance, interfaceFriendlyName,
                        interfaceLuid, flags, sddl);
}

ROUTER_EXPORT HRESULT WINAPI CPNatfwtDeregisterProviderInstance(
    CPNATFWT_PROVIDER_INSTANCE providerInstance) {
    const cpsim_router_table *t = table();
    if (t == NULL)
        return E_FAIL;
    return t->deregister(CALLER, providerInstance);
}

ROUTER_EXPORT VOID WINAPI CPNatfwtDestroyProviderInstance(
    CPNATFWT_PROVIDER_INSTANCE providerInstance) {
    const cpsim_router_table *t = table();
    if (t != NULL)
        t->destroy(CALLER, providerInstance);
}

ROUTER_EXPORT HRESULT WINAPI CPNatfwtIndicateReceivedBuffers(
    CPNATFWT_PROVIDER_INSTANCE providerInstance,
    CPNATFWT_TRANSPORT_ID *localTransportId,
    CPNATFWT_TRANSPORT_ID *remoteTransportId, CPNATFWT_BUFFER *bufferChain,
    PVOID completionContext,
    CPNATFWT_PROVIDER_COMPLETION_ROUTINE completionRoutine) {
    const cpsim_router_table *t = table();
    if (t == NULL)
        return E_FAIL;
    return t->indicate(CALLER, providerInstance, localTransportId,
                       remoteTransportId, bufferChain, completionContext,
                       completionRoutine);
}

/* ------------------------------------------------------------------------ */
/* cpsim_module.h                                                            */

ROUTER_EXPORT UINT64 CpsimNow(void) {
    const cpsim_router_table *t = table();
    return t == NULL ? 0 : t->now(CALLER);
}

ROUTER_EXPORT UINT64 CpsimRandom(void) {
    const cpsim_router_table *t = table();
    return t == NULL ? 0 : t->random(CALLER);
}

ROUTER_EXPORT HRESULT CpsimAfter(UINT64 delayNs, CPSIM_TASK_ROUTINE routine,
                                 PVOID context) {
    const cpsim_router_table *t = table();
    return t == NULL ? E_FAIL : t->after(CALLER, delayNs, routine, context);
}

ROUTER_EXPORT HRESULT CpsimSpawn(CPSIM_TASK_ROUTINE routine, PVOID context) {
    const cpsim_router_table *t = table();
    return t == NULL ? E_FAIL : t->spawn(CALLER, routine, context);
}

ROUTER_EXPORT HRESULT CpsimBind(USHORT port, CPSIM_RECEIVE_ROUTINE routine,
                                PVOID context) {
    const cpsim_router_table *t = table();
    return t == NULL ? E_FAIL : t->bind(CALLER, port, routine, context);
}

ROUTER_EXPORT VOID CpsimUnbind(USHORT port) {
    const cpsim_router_table *t = table();
    if (t != NULL)
        t->unbind(CALLER, port);
}

ROUTER_EXPORT HRESULT CpsimAddressOf(const char *hostName, USHORT port,
                                     CPSIM_ADDRESS *address) {
    const cpsim_router_table *t = table();
    return t == NULL ? E_FAIL : t->address_of(CALLER, hostName, port, address);
}

ROUTER_EXPORT HRESULT CpsimSendTo(USHORT fromPort, const CPSIM_ADDRESS *to,
                                  const VOID *data, ULONG size) {
    const cpsim_router_table *t = table();
    return t == NULL ? E_FAIL : t->send_to(CALLER, fromPort, to, data, size);
}
