/*
 * cpnatfwt.h - the CPNatfwt* provider API of the Windows 7 Connectivity
 * Platform, as reconstructed by the sim-cp project (see docs/CONTRACT.md §1).
 *
 * This header is the project's own reconstruction, written from the
 * contract; it is not a Microsoft header. It declares exactly what the Rust
 * module `cpsim_sim::abi` declares, and the `abi_layout` integration test of
 * sim-cp compiles a C program against it to check that every size and field
 * offset agrees with the Rust side.
 *
 * Portability:
 *   - On Windows (_WIN32) the basic types (HRESULT, WCHAR, ULONG, ...), the
 *     WINAPI/CALLBACK calling conventions and IF_LUID come from <windows.h>
 *     and <ifdef.h>; this header compiles with both the Windows SDK and
 *     mingw-w64.
 *   - Elsewhere the header supplies them itself: WINAPI and CALLBACK are
 *     empty (the platform's default C convention, which is what Rust's
 *     `extern "system"` means outside Windows), HRESULT is int32_t, WCHAR is
 *     a 16-bit UTF-16 code unit (same size and representation as char16_t),
 *     and so on. Define CPNATFWT_NO_BASIC_TYPES before including this file if
 *     your build already provides Windows-style typedefs (for instance Wine's
 *     headers) and CPNATFWT_NO_IF_LUID if it already provides IF_LUID.
 *   - Result-code macros are only defined when not already defined, so the
 *     header can be included before or after <windows.h>.
 */
#ifndef CPNATFWT_H
#define CPNATFWT_H

#include <stddef.h>
#include <stdint.h>

#ifdef _WIN32
#include <windows.h>
#include <ifdef.h> /* NET_LUID / IF_LUID */
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Basic types and calling conventions (non-Windows only)                   */
/* ------------------------------------------------------------------------ */

#ifndef _WIN32

#ifndef WINAPI
#define WINAPI
#endif
#ifndef CALLBACK
#define CALLBACK
#endif
#ifndef VOID
#define VOID void
#endif

#ifndef CPNATFWT_NO_BASIC_TYPES
typedef int32_t HRESULT;  /* signed 32-bit status code */
typedef uint16_t WCHAR;   /* one UTF-16 code unit */
typedef uint32_t ULONG;   /* 32 bits, as on Windows (LLP64) */
typedef uint16_t USHORT;
typedef uint8_t BYTE;
typedef uint64_t UINT64;
typedef void *PVOID;
#endif /* CPNATFWT_NO_BASIC_TYPES */

#endif /* !_WIN32 */

/* ------------------------------------------------------------------------ */
/* Result codes (docs/CONTRACT.md §1.4)                                     */
/* ------------------------------------------------------------------------ */

#ifndef S_OK
#define S_OK ((HRESULT)0x00000000L)
#endif
/* A success code, but the platform reads every value other than S_OK and
 * the pending code below as failure (COMP-1). */
#ifndef S_FALSE
#define S_FALSE ((HRESULT)0x00000001L)
#endif
/* The handle is unknown or was destroyed. */
#ifndef E_HANDLE
#define E_HANDLE ((HRESULT)0x80070006L)
#endif
/* NULL was passed where a pointer is required. */
#ifndef E_POINTER
#define E_POINTER ((HRESULT)0x80004003L)
#endif
/* A malformed argument: bad table size, NULL callback, non-zero flags, bad
 * SDDL string, bad buffer chain. */
#ifndef E_INVALIDARG
#define E_INVALIDARG ((HRESULT)0x80070057L)
#endif
/* Unspecified failure. */
#ifndef E_FAIL
#define E_FAIL ((HRESULT)0x80004005L)
#endif

/* Win32 error codes used with HRESULT_FROM_WIN32. */
#ifndef ERROR_IO_PENDING
#define ERROR_IO_PENDING 997L /* the call is pended and completes later */
#endif
#ifndef ERROR_INVALID_STATE
#define ERROR_INVALID_STATE 5023L /* not allowed in the current state */
#endif
#ifndef ERROR_NOT_FOUND
#define ERROR_NOT_FOUND 1168L /* input LUID not owned by this provider */
#endif

/* Windows always provides HRESULT_FROM_WIN32 (as a macro or, with some
 * toolchains, as an inline function), so it is only defined here elsewhere.
 * Values that are zero or negative pass through; positive Win32 codes become
 * failure HRESULTs of the Win32 facility (7). */
#if !defined(_WIN32) && !defined(HRESULT_FROM_WIN32)
#define HRESULT_FROM_WIN32(x)                                                  \
    ((HRESULT)(x) <= 0                                                         \
         ? ((HRESULT)(x))                                                      \
         : ((HRESULT)(((uint32_t)(x)&0x0000FFFFu) | (7u << 16) | 0x80000000u)))
#endif

/* ------------------------------------------------------------------------ */
/* Types (docs/CONTRACT.md §1.1)                                            */
/* ------------------------------------------------------------------------ */

/* Longest interface friendly name, in WCHARs, not counting the NUL.
 * Longer names given to CPNatfwtRegisterProviderInstance are cut (REG-3). */
#define CPNATFWT_MAX_INTERFACE_NAME_LENGTH 256

/* A provider instance, as handed out by CPNatfwtCreateProviderInstance. The
 * handle is opaque: never dereference it, only pass it back. */
typedef struct _CPNATFWT_PROVIDER_INSTANCE *CPNATFWT_PROVIDER_INSTANCE;

/* A transport ID: the bytes of an IPv4 (4 bytes) or IPv6 (16 bytes) address.
 * Only the platform makes them; a provider that keeps one past the call that
 * delivered it must copy the bytes (TID-3). */
typedef struct _CPNATFWT_TRANSPORT_ID {
    USHORT size;       /* number of bytes at transportId */
    BYTE *transportId; /* the address bytes */
} CPNATFWT_TRANSPORT_ID;

/* One link of a chain of data buffers. A well-formed chain ends in NULL, has
 * no cycle, and every link with size > 0 has a non-NULL buffer (DATA-2). */
typedef struct _CPNATFWT_BUFFER {
    struct _CPNATFWT_BUFFER *next; /* following link, NULL on the last one */
    ULONG size;                    /* number of bytes at buffer */
    BYTE *buffer;                  /* the data */
} CPNATFWT_BUFFER;

/* Why the platform ended a session (the argument of the TERMINATE
 * callback). The values are fixed: 0 to 4 in this order. */
typedef enum _CPNATFWT_SESSION_TERMINATION_REASON {
    /* the provider asked for it by deregistering the instance */
    CPNATFWT_SESSION_TERMINATION_PROVIDER_REQUEST = 0,
    /* the platform is shutting down */
    CPNATFWT_SESSION_TERMINATION_PLATFORM_SHUTDOWN = 1,
    /* a provider call did not finish within its time limit */
    CPNATFWT_SESSION_TERMINATION_PROVIDER_TIMEOUT = 2,
    /* the provider failed in another way (a failed TRANSITION_ACTIVE, ...) */
    CPNATFWT_SESSION_TERMINATION_PROVIDER_OTHER_FAILURE = 3,
    /* a fault outside the provider */
    CPNATFWT_SESSION_TERMINATION_OTHER_COMMUNICATION_ERROR = 4
} CPNATFWT_SESSION_TERMINATION_REASON;

/* The 64-bit identifier of a network interface. On Windows this is the
 * system's NET_LUID union; elsewhere a struct whose only member is the whole
 * 64-bit value, which is all the simulator uses. */
#if !defined(_WIN32) && !defined(CPNATFWT_NO_IF_LUID)
typedef struct _CPNATFWT_IF_LUID {
    UINT64 Value;
} IF_LUID;
#endif

/* ------------------------------------------------------------------------ */
/* Completion routines                                                      */
/* ------------------------------------------------------------------------ */

/* Handed by the platform to each callback that may pend. A callback that
 * returns HRESULT_FROM_WIN32(ERROR_IO_PENDING) must later call it exactly
 * once (COMP-4), from any thread, with the completionContext it was given
 * (COMP-5) and a final status: S_OK or a failure, never the pending code
 * (COMP-6). After any other return value it must never call it (COMP-3). */
typedef VOID(WINAPI *CPNATFWT_PLATFORM_COMPLETION_ROUTINE)(
    PVOID completionContext, HRESULT status);

/* Optionally handed by the provider to CPNatfwtIndicateReceivedBuffers. When
 * that call returns the pending code, the platform calls this routine once,
 * after it is done with the buffers (DATA-3, DATA-4). */
typedef VOID(CALLBACK *CPNATFWT_PROVIDER_COMPLETION_ROUTINE)(
    PVOID completionContext, HRESULT status);

/* ------------------------------------------------------------------------ */
/* Callbacks a provider implements (docs/CONTRACT.md §1.2)                  */
/*                                                                          */
/* Every callback receives the instance handle and the user context given   */
/* to CPNatfwtCreateProviderInstance, unchanged (SESS-6).                   */
/* ------------------------------------------------------------------------ */

/* A session was established for a freshly registered instance, which is now
 * dormant. May run before CPNatfwtRegisterProviderInstance has returned, and
 * must return promptly. */
typedef VOID(CALLBACK *CPNATFWT_PROVIDER_ESTABLISH_SESSION_INDICATION)(
    CPNATFWT_PROVIDER_INSTANCE providerInstance,
    PVOID providerInstanceUserContext);

/* The session ended; no further callback for it follows. Unless the reason
 * is PROVIDER_REQUEST, the provider must then deregister the instance. */
typedef VOID(CALLBACK *CPNATFWT_PROVIDER_TERMINATE_SESSION_INDICATION)(
    CPNATFWT_PROVIDER_INSTANCE providerInstance,
    PVOID providerInstanceUserContext,
    CPNATFWT_SESSION_TERMINATION_REASON terminationReason);

/* The platform needs the instance to carry traffic: go active. Returns S_OK,
 * the pending code, or a failure (which ends the session). */
typedef HRESULT(CALLBACK *CPNATFWT_PROVIDER_TRANSITION_ACTIVE)(
    CPNATFWT_PROVIDER_INSTANCE providerInstance,
    PVOID providerInstanceUserContext, PVOID completionContext,
    CPNATFWT_PLATFORM_COMPLETION_ROUTINE completionRoutine);

/* The counterpart of TRANSITION_ACTIVE: the instance may go dormant. */
typedef HRESULT(CALLBACK *CPNATFWT_PROVIDER_TRANSITION_DORMANT)(
    CPNATFWT_PROVIDER_INSTANCE providerInstance,
    PVOID providerInstanceUserContext, PVOID completionContext,
    CPNATFWT_PLATFORM_COMPLETION_ROUTINE completionRoutine);

/* A local address now belongs to the instance. */
typedef HRESULT(CALLBACK *CPNATFWT_PROVIDER_ADD_TRANSPORT_ID)(
    CPNATFWT_PROVIDER_INSTANCE providerInstance,
    PVOID providerInstanceUserContext, CPNATFWT_TRANSPORT_ID *transportId,
    PVOID completionContext,
    CPNATFWT_PLATFORM_COMPLETION_ROUTINE completionRoutine);

/* A local address no longer belongs to the instance. */
typedef HRESULT(CALLBACK *CPNATFWT_PROVIDER_REMOVE_TRANSPORT_ID)(
    CPNATFWT_PROVIDER_INSTANCE providerInstance,
    PVOID providerInstanceUserContext, CPNATFWT_TRANSPORT_ID *transportId,
    PVOID completionContext,
    CPNATFWT_PLATFORM_COMPLETION_ROUTINE completionRoutine);

/* Can the instance reach this remote address, unambiguously? Success means
 * yes; the platform then may send to it. */
typedef HRESULT(CALLBACK *CPNATFWT_PROVIDER_REACH_TRANSPORT_ID)(
    CPNATFWT_PROVIDER_INSTANCE providerInstance,
    PVOID providerInstanceUserContext, CPNATFWT_TRANSPORT_ID *transportId,
    PVOID completionContext,
    CPNATFWT_PLATFORM_COMPLETION_ROUTINE completionRoutine);

/* Send a chain of buffers from a local address of the instance to a remote
 * one. The chain and the IDs stay valid until the call completes, and not
 * a moment longer (COMP-7, DATA-6). */
typedef HRESULT(CALLBACK *CPNATFWT_PROVIDER_SEND_BUFFERS)(
    CPNATFWT_PROVIDER_INSTANCE providerInstance,
    PVOID providerInstanceUserContext,
    CPNATFWT_TRANSPORT_ID *localTransportId,  /* source: this instance */
    CPNATFWT_TRANSPORT_ID *remoteTransportId, /* destination: the peer */
    UINT64 endpointLuid,                      /* opaque to the provider */
    CPNATFWT_BUFFER *bufferChain, PVOID completionContext,
    CPNATFWT_PLATFORM_COMPLETION_ROUTINE completionRoutine);

/* The provider's callbacks, handed to CPNatfwtCreateProviderInstance. size
 * must be sizeof(CPNATFWT_PROVIDER_INSTANCE_DISPATCH_TABLE) and no entry may
 * be NULL (LIFE-9). */
typedef struct _CPNATFWT_PROVIDER_INSTANCE_DISPATCH_TABLE {
    ULONG size;
    CPNATFWT_PROVIDER_ESTABLISH_SESSION_INDICATION establishSessionIndication;
    CPNATFWT_PROVIDER_TERMINATE_SESSION_INDICATION terminateSessionIndication;
    CPNATFWT_PROVIDER_TRANSITION_ACTIVE transitionActive;
    CPNATFWT_PROVIDER_TRANSITION_DORMANT transitionDormant;
    CPNATFWT_PROVIDER_ADD_TRANSPORT_ID addTransportId;
    CPNATFWT_PROVIDER_REMOVE_TRANSPORT_ID removeTransportId;
    CPNATFWT_PROVIDER_REACH_TRANSPORT_ID reachTransportId;
    CPNATFWT_PROVIDER_SEND_BUFFERS sendBuffers;
} CPNATFWT_PROVIDER_INSTANCE_DISPATCH_TABLE;

/* ------------------------------------------------------------------------ */
/* Functions the platform exports (docs/CONTRACT.md §1.3)                   */
/* ------------------------------------------------------------------------ */

/* Creates an instance from a dispatch table. providerInstanceUserContext
 * (may be NULL) is handed back in every callback; *providerInstance receives
 * the new handle. */
HRESULT WINAPI CPNatfwtCreateProviderInstance(
    const CPNATFWT_PROVIDER_INSTANCE_DISPATCH_TABLE *dispatchTable,
    PVOID providerInstanceUserContext,
    CPNATFWT_PROVIDER_INSTANCE *providerInstance);

/* Registers a created instance, which gives it a network interface and
 * starts its session (ESTABLISH may be called before this returns).
 *   interfaceFriendlyName  optional; NULL picks a default name, a duplicate
 *                          gets a numeric suffix, a long one is cut
 *   interfaceLuid          optional, in/out: a non-zero input asks for an
 *                          interface this provider had before; on success
 *                          it receives the interface's LUID
 *   flags                  must be 0
 *   sddl                   optional security descriptor, in SDDL form
 * The platform never writes to the two strings. A failed registration leaves
 * the instance usable (it may be registered again, or destroyed). */
HRESULT WINAPI CPNatfwtRegisterProviderInstance(
    CPNATFWT_PROVIDER_INSTANCE providerInstance, WCHAR *interfaceFriendlyName,
    IF_LUID *interfaceLuid, ULONG flags, WCHAR *sddl);

/* Ends the registration of an instance (and its session, if any). Required
 * before destroying a registered instance, and after the platform ended a
 * session on its own. */
HRESULT WINAPI CPNatfwtDeregisterProviderInstance(
    CPNATFWT_PROVIDER_INSTANCE providerInstance);

/* Frees an instance. Called once; the handle is invalid afterwards. */
VOID WINAPI CPNatfwtDestroyProviderInstance(
    CPNATFWT_PROVIDER_INSTANCE providerInstance);

/* Hands the platform data that arrived for an active instance.
 *   localTransportId   destination: an ID added to this instance
 *   remoteTransportId  source: an ID the platform made
 *   completionContext, completionRoutine  both optional; without a routine
 *                      the platform is done with the buffers when it
 *                      returns, with one it may return the pending code and
 *                      call the routine once it is done */
HRESULT WINAPI CPNatfwtIndicateReceivedBuffers(
    CPNATFWT_PROVIDER_INSTANCE providerInstance,
    CPNATFWT_TRANSPORT_ID *localTransportId,
    CPNATFWT_TRANSPORT_ID *remoteTransportId, CPNATFWT_BUFFER *bufferChain,
    PVOID completionContext,
    CPNATFWT_PROVIDER_COMPLETION_ROUTINE completionRoutine);

/* The same five functions as pointer types, for looking them up at run time
 * (GetProcAddress, dlsym). */
typedef HRESULT(WINAPI *PFN_CPNatfwtCreateProviderInstance)(
    const CPNATFWT_PROVIDER_INSTANCE_DISPATCH_TABLE *dispatchTable,
    PVOID providerInstanceUserContext,
    CPNATFWT_PROVIDER_INSTANCE *providerInstance);
typedef HRESULT(WINAPI *PFN_CPNatfwtRegisterProviderInstance)(
    CPNATFWT_PROVIDER_INSTANCE providerInstance, WCHAR *interfaceFriendlyName,
    IF_LUID *interfaceLuid, ULONG flags, WCHAR *sddl);
typedef HRESULT(WINAPI *PFN_CPNatfwtDeregisterProviderInstance)(
    CPNATFWT_PROVIDER_INSTANCE providerInstance);
typedef VOID(WINAPI *PFN_CPNatfwtDestroyProviderInstance)(
    CPNATFWT_PROVIDER_INSTANCE providerInstance);
typedef HRESULT(WINAPI *PFN_CPNatfwtIndicateReceivedBuffers)(
    CPNATFWT_PROVIDER_INSTANCE providerInstance,
    CPNATFWT_TRANSPORT_ID *localTransportId,
    CPNATFWT_TRANSPORT_ID *remoteTransportId, CPNATFWT_BUFFER *bufferChain,
    PVOID completionContext,
    CPNATFWT_PROVIDER_COMPLETION_ROUTINE completionRoutine);

/* ------------------------------------------------------------------------ */
/* CPSIM_PROVIDER_MODULE: the simulator's provider-module interface         */
/* ------------------------------------------------------------------------ */
/*
 * Not part of the Windows API: this is how the simulator loads a provider
 * written in C (or anything with a C ABI). A provider module is a shared
 * library (.so / .dylib / .dll) that exports the two functions below, with
 * the plain C calling convention (not WINAPI), under exactly these names.
 * Define CPSIM_PROVIDER_MODULE before including this header when building
 * such a module, so that the two functions are marked for export.
 *
 * CpsimProviderStart(hostName, configJson)
 *   Called once when the simulator starts the module. hostName names the
 *   simulated host the module runs on; configJson is the module's
 *   configuration as a JSON text (may be "{}"). Both are NUL-terminated
 *   UTF-8 strings, valid only during the call: copy what you keep.
 *   The module creates and registers its provider instances with the
 *   CPNatfwt* functions above, either during this call or later from
 *   threads of its own. Returns S_OK on success; on a failure HRESULT the
 *   module must already have undone whatever it started, and Stop is not
 *   called.
 *
 * CpsimProviderStop()
 *   Called once, after a successful Start, when the simulator stops the
 *   module. Before returning the module must have deregistered and
 *   destroyed every instance it created, completed every call it pended,
 *   and stopped and joined every thread it started (LIFE-8); nothing of the
 *   module may run after it returns.
 *
 * The environment a module runs in:
 *   - Every simulated host that starts the module gets a private copy of
 *     the library, so every global variable exists once per host; a
 *     restarted host gets a fresh copy.
 *   - The CPNatfwt* functions and the completion routines may be called
 *     from any thread, the module's own included; each call reaches the
 *     host whose copy made it.
 *   - Runs use the wall clock (a module may block and run threads), unless
 *     the module uses only the facilities of cpsim_module.h and says so
 *     (CPSIM_VIRTUAL_TIME_MODULE): then the simulator's virtual clock.
 *   - Cases run in child processes, each with a network of its own: a
 *     crash or an exit is reported as CRASH-1, a hang as TIME-1.
 * See docs/c-providers.md.
 */
#ifndef CPSIM_PROVIDER_EXPORT
#if defined(CPSIM_PROVIDER_MODULE) && defined(_WIN32)
#define CPSIM_PROVIDER_EXPORT __declspec(dllexport)
#elif defined(CPSIM_PROVIDER_MODULE) && defined(__GNUC__)
#define CPSIM_PROVIDER_EXPORT __attribute__((visibility("default")))
#else
#define CPSIM_PROVIDER_EXPORT
#endif
#endif /* CPSIM_PROVIDER_EXPORT */

CPSIM_PROVIDER_EXPORT HRESULT CpsimProviderStart(const char *hostName,
                                                 const char *configJson);
CPSIM_PROVIDER_EXPORT void CpsimProviderStop(void);

/* The two module entry points as pointer types, for the loader. */
typedef HRESULT (*PFN_CpsimProviderStart)(const char *hostName,
                                          const char *configJson);
typedef void (*PFN_CpsimProviderStop)(void);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* CPNATFWT_H */
