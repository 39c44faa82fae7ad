/*
 * sample_vt.c - a correct Connectivity Platform provider written in C for
 * the simulator's virtual time (see cpsim_module.h and docs/c-providers.md).
 *
 * It does what sample.c does, without threads, sleeps or sockets: every
 * wait is a timer (CpsimAfter), every datagram goes over the simulated
 * network (CpsimBind, CpsimSendTo), and its randomness comes from the
 * run's seed (CpsimRandom). It says so with CPSIM_VIRTUAL_TIME_MODULE, so
 * cpsim runs it on the virtual clock: a seed names a run, a failure
 * replays bit for bit and shrinks, and cases take a fraction of a
 * millisecond.
 *
 *   - CpsimProviderStart binds the sample port on the host's node and
 *     creates and registers one instance;
 *   - every callback finishes synchronously (S_OK or E_FAIL);
 *   - the hosts share the directory of sample_directory.h (which instance
 *     holds which transport ID on which node, and whether it is active);
 *   - SEND_BUFFERS copies the buffers into one datagram to the holder's
 *     node and returns S_OK; the receiving copy de-duplicates it and
 *     indicates the bytes if the destination instance is still active;
 *   - after the platform ends a session by itself, a timer deregisters and
 *     destroys the instance and, unless the platform shut down, opens a
 *     new one on the same interface (LIFE-7);
 *   - CpsimProviderStop deregisters and destroys every instance (LIFE-8).
 *
 * vt_*.c include this file with one VT_BUG_* macro defined; the subtle
 * variants (vt_subtle_*.c) with one VT_SUBTLE_* macro, each a single bug
 * that shows only under a rare condition.
 *
 * The same file builds a Windows DLL (mingw-w64: -liphlpapi for the five
 * CPNatfwt* functions, an import library of cpsimrt.def for the
 * facilities); the few lines that differ are under _WIN32.
 */
#define _GNU_SOURCE
#define CPSIM_PROVIDER_MODULE
#include "cpsim_module.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _WIN32
#include <windows.h>
#ifdef VT_WIN_IPHLPAPI
DWORD WINAPI GetNumberOfInterfaces(PDWORD count); /* iphlpapi.h */
#endif
#else
#if defined(VT_BUG_THREAD) || defined(VT_BUG_SNEAKY_THREAD)
#include <dlfcn.h>
#include <pthread.h>
#endif
#ifdef VT_BUG_SLEEP
#include <unistd.h>
#endif
#endif

#include "sample_directory.h"

CPSIM_VIRTUAL_TIME_MODULE;

#define HR_IO_PENDING ((HRESULT)0x800703E5L) /* HRESULT_FROM_WIN32(ERROR_IO_PENDING) */
#define MAX_INST 16
#define MAX_JOBS 64
#define PORT 4100
/* The largest UDP payload. The simulated network carries it with our header
 * in front, so every SEND the platform makes can be carried (a smaller limit
 * fails the largest ones: STATE-6). */
#define MAX_DATAGRAM 65507
#define MSG_MAGIC 0x43505644u /* "CPVD" */
#define SEEN 4096

typedef struct {
    int used;
    CPNATFWT_PROVIDER_INSTANCE handle;
    uint64_t key;
    int registered;
    uint64_t luid;
#ifdef VT_SUBTLE_ESTABLISHED_ONLY
    int established;
#endif
} slot_t;

/* Deferred work, run by a timer: replace an instance whose session the
 * platform ended, or (the COMP-4 variant) complete a call. */
typedef struct {
    int used;
    uint64_t key;
    int reopen;
    PVOID context;
    CPNATFWT_PLATFORM_COMPLETION_ROUTINE routine;
} job_t;

/* A datagram's header: the sender (node, incarnation, number) for
 * de-duplication, then the destination and source IDs. */
struct wire {
    uint32_t magic;
    uint32_t node;
    uint64_t incarnation;
    uint64_t req;
    tid_t dst, src;
};

static slot_t g_slots[MAX_INST];
static job_t g_jobs[MAX_JOBS];
static int g_stopping;
static CPSIM_ADDRESS g_me;
static uint64_t g_incarnation;
static uint64_t g_next_req;
static struct {
    uint32_t node;
    uint64_t incarnation, req;
} g_seen[SEEN];
static int g_seen_next;
static BYTE g_msg[MAX_DATAGRAM + sizeof(struct wire)];

static slot_t *slot_of(uint64_t key) {
    for (int i = 0; i < MAX_INST; i++)
        if (g_slots[i].used && g_slots[i].key == key)
            return &g_slots[i];
    return NULL;
}

static uint64_t key_of(PVOID ctx) { return (uint64_t)(uintptr_t)ctx; }

static job_t *new_job(void) {
    for (int i = 0; i < MAX_JOBS; i++)
        if (!g_jobs[i].used) {
            memset(&g_jobs[i], 0, sizeof g_jobs[i]);
            g_jobs[i].used = 1;
            return &g_jobs[i];
        }
    return NULL;
}

static const CPNATFWT_PROVIDER_INSTANCE_DISPATCH_TABLE g_table;

/* Creates and registers an instance (on interface `luid`, or a new one). */
static void open_instance(uint64_t luid) {
    slot_t *s = NULL;
    for (int i = 0; i < MAX_INST; i++)
        if (!g_slots[i].used) {
            s = &g_slots[i];
            break;
        }
    if (s == NULL || g_stopping)
        return;
    uint64_t key = dir_new_key();
    CPNATFWT_PROVIDER_INSTANCE h = NULL;
    if (CPNatfwtCreateProviderInstance(&g_table, (PVOID)(uintptr_t)key, &h) != S_OK)
        return;
    /* Recorded before Register: ESTABLISH may arrive inside it. */
    memset(s, 0, sizeof *s);
    s->used = 1;
    s->handle = h;
    s->key = key;
    IF_LUID l;
    l.Value = luid;
    if (CPNatfwtRegisterProviderInstance(h, NULL, &l, 0, NULL) == S_OK) {
        s->registered = 1;
        s->luid = l.Value;
    } else {
        s->used = 0;
        CPNatfwtDestroyProviderInstance(h);
    }
}

/* Deregisters (if registered) and destroys an instance. */
static void close_slot(slot_t *s) {
    CPNATFWT_PROVIDER_INSTANCE h = s->handle;
    int registered = s->registered;
    s->used = 0;
    dir_forget(s->key);
    if (registered)
        CPNatfwtDeregisterProviderInstance(h);
    CPNatfwtDestroyProviderInstance(h);
}

static void replace(PVOID ctx) {
    job_t *job = ctx;
    slot_t *s = g_stopping ? NULL : slot_of(job->key);
    int reopen = job->reopen;
    job->used = 0;
    if (s == NULL)
        return;
    uint64_t luid = s->luid;
    close_slot(s);
    if (reopen)
        open_instance(luid);
}

#ifdef VT_SUBTLE_ONE_REACH
/* REACH is answered after a 1 ms "lookup" timer. The bug: the call being
 * looked up is kept in one variable, so a second REACH pended while the
 * first one's timer runs overwrites it: both timers complete the second
 * call (COMP-4), and the first is never completed. */
static struct {
    uint64_t key;
    tid_t id;
    PVOID context;
    CPNATFWT_PLATFORM_COMPLETION_ROUTINE routine;
    int busy;
} g_reach;

static void reach_looked_up(PVOID ctx) {
    (void)ctx;
    if (!g_reach.routine)
        return;
    g_reach.busy = 0;
    g_reach.routine(g_reach.context,
                    dir_reachable(g_reach.key, &g_reach.id) != 0 ? S_OK : E_FAIL);
}

/* TERMINATE and stop fail a REACH still being looked up. */
static void reach_fail_pending(void) {
    if (g_reach.busy) {
        g_reach.busy = 0;
        g_reach.routine(g_reach.context, E_FAIL);
    }
    g_reach.routine = NULL;
}
#endif

#ifdef VT_BUG_COMP4
static void complete_twice(PVOID ctx) {
    job_t *job = ctx;
    job->used = 0;
    /* The bug: a pended call completed twice (COMP-4). */
    job->routine(job->context, S_OK);
    job->routine(job->context, S_OK);
}
#endif

/* ------------------------------------------------------------------------ */
/* The simulated network                                                     */

static int seen(uint32_t node, uint64_t incarnation, uint64_t req) {
    for (int i = 0; i < SEEN; i++)
        if (g_seen[i].req == req && g_seen[i].node == node &&
            g_seen[i].incarnation == incarnation)
            return 1;
    return 0;
}

static void on_datagram(PVOID ctx, const CPSIM_ADDRESS *from, const BYTE *data, ULONG size) {
    (void)ctx;
    (void)from;
    struct wire w;
    if (size < sizeof w)
        return;
    memcpy(&w, data, sizeof w);
    if (w.magic != MSG_MAGIC || w.dst.len > 16 || w.src.len > 16 || g_stopping)
        return;
    if (seen(w.node, w.incarnation, w.req))
        return; /* a duplicate the network made */
    for (int i = 0; i < MAX_INST; i++) {
        slot_t *s = &g_slots[i];
        if (!s->used || !dir_holds_active(s->key, &w.dst))
            continue;
        CPNATFWT_TRANSPORT_ID local = {w.dst.len, w.dst.b};
        CPNATFWT_TRANSPORT_ID remote = {w.src.len, w.src.b};
        CPNATFWT_BUFFER chain = {NULL, size - (ULONG)sizeof w, (BYTE *)data + sizeof w};
        if (CPNatfwtIndicateReceivedBuffers(s->handle, &local, &remote, &chain, NULL, NULL) ==
            S_OK) {
            g_seen[g_seen_next].node = w.node;
            g_seen[g_seen_next].incarnation = w.incarnation;
            g_seen[g_seen_next].req = w.req;
            g_seen_next = (g_seen_next + 1) % SEEN;
        }
        break;
    }
}

/* ------------------------------------------------------------------------ */
/* The dispatch table                                                        */

static VOID CALLBACK establish(CPNATFWT_PROVIDER_INSTANCE h, PVOID ctx) {
    (void)h;
    (void)ctx; /* the instance starts dormant and holds nothing */
#ifdef VT_SUBTLE_ESTABLISHED_ONLY
    slot_t *s = slot_of(key_of(ctx));
    if (s != NULL)
        s->established = 1;
#endif
}

static VOID CALLBACK terminate(CPNATFWT_PROVIDER_INSTANCE h, PVOID ctx,
                               CPNATFWT_SESSION_TERMINATION_REASON reason) {
    (void)h;
    dir_forget(key_of(ctx));
#ifdef VT_SUBTLE_ONE_REACH
    if (g_reach.busy && g_reach.key == key_of(ctx))
        reach_fail_pending();
#endif
    slot_t *s = slot_of(key_of(ctx));
    if (s == NULL || reason == CPNATFWT_SESSION_TERMINATION_PROVIDER_REQUEST || g_stopping)
        return;
    /* Deregister from a timer, never from inside TERMINATE (LIFE-7). */
    job_t *job = new_job();
    if (job == NULL)
        return;
    job->key = s->key;
    job->reopen = reason != CPNATFWT_SESSION_TERMINATION_PLATFORM_SHUTDOWN;
    if (CpsimAfter(1000000, replace, job) != S_OK)
        job->used = 0;
}

static HRESULT CALLBACK transition_active(CPNATFWT_PROVIDER_INSTANCE h, PVOID ctx, PVOID cctx,
                                          CPNATFWT_PLATFORM_COMPLETION_ROUTINE routine) {
    (void)h;
#ifdef VT_BUG_SLEEP
#ifdef _WIN32
    SleepEx(1, FALSE); /* the bug: a real sleep in a virtual-time module */
#else
    usleep(1000); /* the bug: a real sleep in a virtual-time module */
#endif
#endif
    dir_set_active(key_of(ctx), 1);
#ifdef VT_BUG_COMP4
    job_t *job = new_job();
    if (job == NULL)
        return E_FAIL;
    job->context = cctx;
    job->routine = routine;
    /* A worker task: the harness picks when it runs. */
    CpsimSpawn(complete_twice, job);
    return HR_IO_PENDING;
#else
    (void)cctx;
    (void)routine;
    return S_OK;
#endif
}

static HRESULT CALLBACK transition_dormant(CPNATFWT_PROVIDER_INSTANCE h, PVOID ctx, PVOID cctx,
                                           CPNATFWT_PLATFORM_COMPLETION_ROUTINE routine) {
    (void)h;
    (void)cctx;
    (void)routine;
    dir_set_active(key_of(ctx), 0);
    return S_OK;
}

static HRESULT CALLBACK add_transport_id(CPNATFWT_PROVIDER_INSTANCE h, PVOID ctx,
                                         CPNATFWT_TRANSPORT_ID *t, PVOID cctx,
                                         CPNATFWT_PLATFORM_COMPLETION_ROUTINE routine) {
    (void)h;
    (void)cctx;
    (void)routine;
    tid_t id;
    if (!tid_copy(&id, t))
        return E_INVALIDARG;
    /* Where the holder is reached: its node, plus one (0 means nowhere). */
    return dir_add(key_of(ctx), (uint16_t)(g_me.node + 1), &id) ? S_OK : E_FAIL;
}

static HRESULT CALLBACK remove_transport_id(CPNATFWT_PROVIDER_INSTANCE h, PVOID ctx,
                                            CPNATFWT_TRANSPORT_ID *t, PVOID cctx,
                                            CPNATFWT_PLATFORM_COMPLETION_ROUTINE routine) {
    (void)h;
    (void)cctx;
    (void)routine;
    tid_t id;
    if (!tid_copy(&id, t))
        return E_INVALIDARG;
    dir_remove(key_of(ctx), &id);
    return S_OK;
}

static HRESULT CALLBACK reach_transport_id(CPNATFWT_PROVIDER_INSTANCE h, PVOID ctx,
                                           CPNATFWT_TRANSPORT_ID *t, PVOID cctx,
                                           CPNATFWT_PLATFORM_COMPLETION_ROUTINE routine) {
    (void)h;
#ifndef VT_SUBTLE_ONE_REACH
    (void)cctx;
    (void)routine;
#endif
    tid_t id;
    if (!tid_copy(&id, t))
        return E_INVALIDARG;
#ifdef VT_SUBTLE_ONE_REACH
    g_reach.key = key_of(ctx);
    g_reach.id = id;
    g_reach.context = cctx;
    g_reach.routine = routine;
    g_reach.busy = 1;
    if (CpsimAfter(1000000, reach_looked_up, NULL) != S_OK) {
        g_reach.busy = 0;
        return E_FAIL;
    }
    return HR_IO_PENDING;
#else
    return dir_reachable(key_of(ctx), &id) != 0 ? S_OK : E_FAIL;
#endif
}

static HRESULT CALLBACK send_buffers(CPNATFWT_PROVIDER_INSTANCE h, PVOID ctx,
                                     CPNATFWT_TRANSPORT_ID *local, CPNATFWT_TRANSPORT_ID *remote,
                                     UINT64 endpointLuid, CPNATFWT_BUFFER *chain, PVOID cctx,
                                     CPNATFWT_PLATFORM_COMPLETION_ROUTINE routine) {
    (void)h;
    (void)endpointLuid;
    (void)cctx;
    (void)routine;
    struct wire w;
    memset(&w, 0, sizeof w);
    w.magic = MSG_MAGIC;
    w.node = g_me.node;
    w.incarnation = g_incarnation;
    w.req = ++g_next_req;
    if (!tid_copy(&w.dst, remote) || !tid_copy(&w.src, local))
        return E_INVALIDARG;
    /* Everything is copied before returning (COMP-7). */
    size_t len = sizeof w;
    int hops = 0;
    for (CPNATFWT_BUFFER *b = chain; b != NULL; b = b->next) {
        if (++hops > 4096 || (b->size > 0 && b->buffer == NULL))
            return E_INVALIDARG;
        if (len + b->size > sizeof g_msg)
            return E_FAIL;
        ULONG take = b->size;
#ifdef VT_SUBTLE_MAX_PAYLOAD
        /* The bug: one byte of the staging buffer is kept for a terminator
         * (for a debug dump), so a datagram of the largest size loses its
         * last byte. */
        if (len + take > sizeof g_msg - 1)
            take = (ULONG)(sizeof g_msg - 1 - len);
#endif
        if (take > 0)
            memcpy(g_msg + len, b->buffer, take);
        len += take;
    }
    memcpy(g_msg, &w, sizeof w);
    uint16_t where = dir_reachable(key_of(ctx), &w.dst);
    if (where == 0)
        return E_FAIL;
    CPSIM_ADDRESS to = {(USHORT)(where - 1), PORT};
    return CpsimSendTo(PORT, &to, g_msg, (ULONG)len);
}

static const CPNATFWT_PROVIDER_INSTANCE_DISPATCH_TABLE g_table = {
    sizeof(CPNATFWT_PROVIDER_INSTANCE_DISPATCH_TABLE),
    establish,
    terminate,
    transition_active,
    transition_dormant,
    add_transport_id,
    remove_transport_id,
    reach_transport_id,
    send_buffers,
};

/* ------------------------------------------------------------------------ */
/* The module interface                                                      */

#if defined(VT_BUG_THREAD) || defined(VT_BUG_SNEAKY_THREAD)
static void *sneaky(void *arg) {
    (void)arg;
    (void)CpsimRandom(); /* a call into cpsim from a thread of its own */
    return NULL;
}
#ifdef _WIN32
static DWORD WINAPI sneaky_win(LPVOID arg) {
    sneaky(arg);
    return 0;
}
#endif
#endif

CPSIM_PROVIDER_EXPORT HRESULT CpsimProviderStart(const char *hostName, const char *configJson) {
    (void)hostName;
    (void)configJson;
    static int started;
    if (started)
        return E_FAIL;
    started = 1;
#if defined(VT_BUG_THREAD) && defined(_WIN32)
    /* The bug: a thread, in a module that says it has none. */
    {
        HANDLE t = CreateThread(NULL, 0, sneaky_win, NULL, 0, NULL);
        if (t != NULL) {
            WaitForSingleObject(t, INFINITE);
            CloseHandle(t);
        }
    }
#elif defined(VT_BUG_THREAD)
    /* The bug: a thread, in a module that says it has none. */
    {
        pthread_t t;
        if (pthread_create(&t, NULL, sneaky, NULL) == 0)
            pthread_join(t, NULL);
    }
#endif
#if defined(VT_BUG_SNEAKY_THREAD) && defined(_WIN32)
    /* The bug, hidden from the import check: CreateThread (and the wait)
     * found at run time, and a thread that calls into cpsim. */
    {
        typedef HANDLE(WINAPI * create_fn)(LPSECURITY_ATTRIBUTES, SIZE_T, LPTHREAD_START_ROUTINE,
                                           LPVOID, DWORD, LPDWORD);
        typedef DWORD(WINAPI * wait_fn)(HANDLE, DWORD);
        HMODULE k = GetModuleHandleA("kernel32.dll");
        create_fn create = (create_fn)(void (*)(void))GetProcAddress(k, "CreateThread");
        wait_fn wait = (wait_fn)(void (*)(void))GetProcAddress(k, "WaitForSingleObject");
        HANDLE t = create != NULL && wait != NULL ? create(NULL, 0, sneaky_win, NULL, 0, NULL)
                                                  : NULL;
        if (t != NULL) {
            wait(t, INFINITE);
            CloseHandle(t);
        }
    }
#elif defined(VT_BUG_SNEAKY_THREAD)
    /* The bug, hidden from the import check: pthread_create found at run
     * time, and a thread that calls into cpsim. */
    {
        typedef int (*create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
        typedef int (*join_fn)(pthread_t, void **);
        create_fn create = (create_fn)dlsym(RTLD_DEFAULT, "pthread_create");
        join_fn join = (join_fn)dlsym(RTLD_DEFAULT, "pthread_join");
        pthread_t t;
        if (create != NULL && join != NULL && create(&t, NULL, sneaky, NULL) == 0)
            join(t, NULL);
    }
#endif
#if defined(VT_WIN_IPHLPAPI) && defined(_WIN32)
    /* Another iphlpapi.dll function: cpsim's router forwards it. */
    {
        DWORD n = 0;
        if (GetNumberOfInterfaces(&n) != NO_ERROR)
            return E_FAIL;
    }
#endif
    if (!dir_open())
        return E_FAIL;
    if (CpsimAddressOf(NULL, PORT, &g_me) != S_OK || CpsimBind(PORT, on_datagram, NULL) != S_OK) {
        dir_close();
        return E_FAIL;
    }
    g_incarnation = CpsimRandom();
    open_instance(0);
    return S_OK;
}

CPSIM_PROVIDER_EXPORT void CpsimProviderStop(void) {
    g_stopping = 1;
#ifdef VT_SUBTLE_ONE_REACH
    reach_fail_pending();
#endif
    for (int i = 0; i < MAX_INST; i++) {
#ifdef VT_SUBTLE_ESTABLISHED_ONLY
        /* The bug: an instance whose session has not begun is taken to
         * need no teardown, but it was registered (and created). */
        if (g_slots[i].used && !g_slots[i].established)
            continue;
#endif
        if (g_slots[i].used)
            close_slot(&g_slots[i]);
    }
    CpsimUnbind(PORT);
    dir_close();
}
