/*
 * sample.c - a correct Connectivity Platform provider written in C, as a
 * cpsim provider module (see docs/c-providers.md).
 *
 * What it does (the C counterpart of the Rust `sync-raw` provider):
 *   - CpsimProviderStart creates and registers one instance;
 *   - every callback finishes synchronously (S_OK or E_FAIL);
 *   - the hosts of one process share a small *directory* in named shared
 *     memory: which instance holds which transport ID, on which UDP port,
 *     and whether it is active. ADD fails for an ID another instance holds,
 *     REACH and SEND succeed only towards an ID that another active
 *     instance holds;
 *   - SEND_BUFFERS copies the buffers into one UDP datagram to the holder's
 *     port on 127.0.0.1 and returns S_OK; a receiver thread of the holding
 *     module indicates the bytes with CPNatfwtIndicateReceivedBuffers, if the
 *     destination instance is still active;
 *   - after the platform ends a session by itself, a maintenance thread
 *     deregisters and destroys the instance and, unless the platform shut
 *     down, opens a new one on the same interface (LIFE-7);
 *   - CpsimProviderStop joins both threads, then deregisters and destroys
 *     every instance (LIFE-8).
 *
 * Every simulated host runs its own copy of this module, so everything
 * `static` below exists once per host. The directory (sample_directory.h)
 * is the only state the copies share; it is named after the process, and a
 * cpsim case runner runs one case at a time (the last copy to stop removes
 * it).
 *
 * The broken_*.c, crash.c, hang.c and hostile_*.c modules include this
 * file with one SAMPLE_BUG_* macro defined, each turning on exactly one
 * defect; fixed_ports.c (SAMPLE_FIXED_PORTS) is correct, but binds fixed
 * loopback ports and stops at the first datagram from another case.
 *
 * The same file builds as a Windows DLL with mingw-w64 (the _WIN32 parts:
 * winsock2, a named file mapping for the directory, winpthreads linked
 * statically); its CPNatfwt* calls are then imports from iphlpapi.dll.
 */
#define _GNU_SOURCE
#define CPSIM_PROVIDER_MODULE
#ifdef _WIN32
#include <winsock2.h> /* before <windows.h>, which cpnatfwt.h includes */
#include <ws2tcpip.h>
#endif
#include "cpnatfwt.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#ifdef _WIN32
#undef E_PENDING /* <winerror.h>'s is another code */
typedef SOCKET sock_t;
#define NO_SOCKET INVALID_SOCKET
#define close_socket closesocket
#else
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
typedef int sock_t;
#define NO_SOCKET (-1)
#define close_socket close
#endif

#define E_PENDING ((HRESULT)0x800703E5L) /* HRESULT_FROM_WIN32(ERROR_IO_PENDING) */
#define MAX_INST 16
#define MAX_JOBS 64
#define MAX_DATAGRAM 65000
#define MSG_MAGIC 0x43505344u /* "CPSD" */

#include "sample_directory.h"

/* ------------------------------------------------------------------------ */
/* This host's state                                                         */

typedef struct {
    int used;
    CPNATFWT_PROVIDER_INSTANCE handle;
    uint64_t key;
    int registered;
    uint64_t luid;
    int active;
} slot_t;

typedef enum { JOB_REPLACE, JOB_COMPLETE } job_kind;

typedef struct {
    job_kind kind;
    uint64_t key;
    int reopen;
    PVOID context;
    CPNATFWT_PLATFORM_COMPLETION_ROUTINE routine;
    int times;
} job_t;

/* Recursive: the platform may call a callback (TERMINATE, ESTABLISH) on the
 * thread that is inside Register or Deregister while holding it. */
static pthread_mutex_t g_lock;
static pthread_cond_t g_wake = PTHREAD_COND_INITIALIZER;
static slot_t g_slots[MAX_INST];
static job_t g_jobs[MAX_JOBS];
static int g_njobs;
static int g_stopping;
static sock_t g_sock = NO_SOCKET;
static uint16_t g_port;
static pthread_t g_rx, g_maint;
static char g_host[128];
#ifdef SAMPLE_BUG_CRASH
static int g_crash_abort;
#endif

#if defined(SAMPLE_BUG_ONCE) || defined(SAMPLE_BUG_FORK) || defined(SAMPLE_BUG_NOISE)
/* The string value of "key" in the configuration JSON (no escapes). */
static int config_string(const char *json, const char *key, char *out, size_t size) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    const char *p = json ? strstr(json, pat) : NULL;
    if (p == NULL)
        return 0;
    p = strchr(p + strlen(pat), '"');
    if (p == NULL)
        return 0;
    const char *e = strchr(p + 1, '"');
    if (e == NULL || (size_t)(e - p - 1) >= size)
        return 0;
    memcpy(out, p + 1, (size_t)(e - p - 1));
    out[e - p - 1] = 0;
    return 1;
}
#endif

#ifdef SAMPLE_BUG_ONCE
static char g_once_file[512];
/* True the first time any copy, in any process, asks: the marker file. */
static int first_time(void) {
    if (g_once_file[0] == 0)
        return 0;
    int fd = open(g_once_file, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0)
        return 0;
    close(fd);
    return 1;
}
#endif

static slot_t *slot_of(uint64_t key) {
    for (int i = 0; i < MAX_INST; i++)
        if (g_slots[i].used && g_slots[i].key == key)
            return &g_slots[i];
    return NULL;
}

static uint64_t key_of(PVOID ctx) { return (uint64_t)(uintptr_t)ctx; }

static void post_job(job_t job) {
    pthread_mutex_lock(&g_lock);
    if (g_njobs < MAX_JOBS)
        g_jobs[g_njobs++] = job;
    pthread_cond_signal(&g_wake);
    pthread_mutex_unlock(&g_lock);
}

static const CPNATFWT_PROVIDER_INSTANCE_DISPATCH_TABLE g_table;

/* Creates and registers an instance (on interface `luid`, or a new one).
 * Called with g_lock held. */
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
    HRESULT hr = CPNatfwtCreateProviderInstance(&g_table, (PVOID)(uintptr_t)key, &h);
    if (hr != S_OK)
        return;
    /* Recorded before Register: ESTABLISH may arrive inside it. */
    memset(s, 0, sizeof *s);
    s->used = 1;
    s->handle = h;
    s->key = key;
    IF_LUID l;
    l.Value = luid;
    hr = CPNatfwtRegisterProviderInstance(h, NULL, &l, 0, NULL);
    if (hr == S_OK) {
        s->registered = 1;
        s->luid = l.Value;
    } else {
        s->used = 0;
        CPNatfwtDestroyProviderInstance(h);
    }
}

/* Deregisters (if registered) and destroys an instance. g_lock held. */
static void close_slot(slot_t *s) {
    CPNATFWT_PROVIDER_INSTANCE h = s->handle;
    int registered = s->registered;
    s->used = 0;
    dir_forget(s->key);
    if (registered)
        CPNatfwtDeregisterProviderInstance(h);
    CPNatfwtDestroyProviderInstance(h);
#ifdef SAMPLE_BUG_LIFE5
    /* The bug: the handle is destroyed a second time (LIFE-5). */
    CPNatfwtDestroyProviderInstance(h);
#endif
}

/* ------------------------------------------------------------------------ */
/* Threads                                                                   */

/* Carries out deferred work: replacing instances whose session the
 * platform ended (never from inside TERMINATE itself). */
static void *maintenance(void *arg) {
    (void)arg;
    pthread_mutex_lock(&g_lock);
    for (;;) {
        while (g_njobs == 0 && !g_stopping)
            pthread_cond_wait(&g_wake, &g_lock);
        if (g_njobs == 0 && g_stopping)
            break;
        job_t job = g_jobs[0];
        memmove(&g_jobs[0], &g_jobs[1], (size_t)(g_njobs - 1) * sizeof(job_t));
        g_njobs--;
        if (job.kind == JOB_COMPLETE) {
            pthread_mutex_unlock(&g_lock);
            usleep(2000); /* well after the callback has returned */
            for (int i = 0; i < job.times; i++)
                job.routine(job.context, S_OK);
            pthread_mutex_lock(&g_lock);
            continue;
        }
        slot_t *s = slot_of(job.key);
        if (s == NULL || g_stopping)
            continue;
        uint64_t luid = s->luid;
        close_slot(s);
        if (job.reopen)
            open_instance(luid);
    }
    pthread_mutex_unlock(&g_lock);
    return NULL;
}

struct wire {
    uint32_t magic;
#ifdef SAMPLE_FIXED_PORTS
    int32_t pid; /* the sending process: its case */
#endif
    tid_t dst, src;
};

/* Receives peers' datagrams and indicates them to the instance holding the
 * destination ID, if it is active. */
static void *receiver(void *arg) {
    (void)arg;
    static BYTE buf[MAX_DATAGRAM + sizeof(struct wire)];
    for (;;) {
        pthread_mutex_lock(&g_lock);
        int stop = g_stopping;
        pthread_mutex_unlock(&g_lock);
        if (stop)
            break;
        ssize_t n = recv(g_sock, (char *)buf, sizeof buf, 0);
        if (n < (ssize_t)sizeof(struct wire))
            continue; /* timeout (SO_RCVTIMEO) or runt */
        struct wire w;
        memcpy(&w, buf, sizeof w);
        if (w.magic != MSG_MAGIC || w.dst.len > 16 || w.src.len > 16)
            continue;
#ifdef SAMPLE_FIXED_PORTS
        if (w.pid != (int32_t)getpid()) {
            /* Another case's datagram on our fixed port: cases share a
             * network, which must not happen. */
            fprintf(stderr, "fixed_ports: host %s got a datagram of another case (process %d)\n",
                    g_host, (int)w.pid);
            abort();
        }
#endif
        pthread_mutex_lock(&g_lock);
        for (int i = 0; i < MAX_INST; i++) {
            slot_t *s = &g_slots[i];
            if (!s->used || !s->active || !dir_holds_active(s->key, &w.dst))
                continue;
            CPNATFWT_TRANSPORT_ID local = {w.dst.len, w.dst.b};
            CPNATFWT_TRANSPORT_ID remote = {w.src.len, w.src.b};
            CPNATFWT_BUFFER chain = {NULL, (ULONG)(n - (ssize_t)sizeof w), buf + sizeof w};
            /* No completion routine: the platform is done with the
             * buffers when it returns. */
            HRESULT hr = CPNatfwtIndicateReceivedBuffers(s->handle, &local, &remote,
                                                         &chain, NULL, NULL);
            (void)hr;
            break;
        }
        pthread_mutex_unlock(&g_lock);
    }
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* The dispatch table                                                        */

static VOID CALLBACK establish(CPNATFWT_PROVIDER_INSTANCE h, PVOID ctx) {
    (void)h;
    (void)ctx; /* the instance starts dormant and holds nothing */
}

static VOID CALLBACK terminate(CPNATFWT_PROVIDER_INSTANCE h, PVOID ctx,
                               CPNATFWT_SESSION_TERMINATION_REASON reason) {
    (void)h;
    pthread_mutex_lock(&g_lock);
    slot_t *s = slot_of(key_of(ctx));
    dir_forget(key_of(ctx));
    if (s != NULL) {
        s->active = 0;
        if (reason != CPNATFWT_SESSION_TERMINATION_PROVIDER_REQUEST && !g_stopping) {
            job_t job = {JOB_REPLACE, s->key,
                         reason != CPNATFWT_SESSION_TERMINATION_PLATFORM_SHUTDOWN, NULL,
                         NULL, 0};
            post_job(job);
        }
    }
    pthread_mutex_unlock(&g_lock);
}

static HRESULT CALLBACK transition_active(CPNATFWT_PROVIDER_INSTANCE h, PVOID ctx,
                                          PVOID cctx,
                                          CPNATFWT_PLATFORM_COMPLETION_ROUTINE routine) {
    (void)h;
#ifdef SAMPLE_BUG_CRASH
    /* The bug: the module crashes the process (SIGSEGV, or SIGABRT when its
     * configuration says "abort"). */
    if (g_crash_abort)
        abort();
    volatile uintptr_t nowhere = 16; /* an address never mapped */
    *(volatile int *)nowhere = 1;
#endif
#ifdef SAMPLE_BUG_HANG
    for (;;)
#ifdef _WIN32
        Sleep(INFINITE); /* never returns (TIME-1) */
#else
        pause(); /* never returns (TIME-1) */
#endif
#endif
#ifdef SAMPLE_BUG_EXIT
    exit(3); /* ends the process from inside a callback */
#endif
    pthread_mutex_lock(&g_lock);
    slot_t *s = slot_of(key_of(ctx));
    if (s != NULL)
        s->active = 1;
    dir_set_active(key_of(ctx), 1);
    pthread_mutex_unlock(&g_lock);
#if defined(SAMPLE_BUG_ONCE)
    /* The bug, the first time only (across every run): COMP-3. A failure
     * that does not recur when the case is run again. */
    if (first_time()) {
        job_t job = {JOB_COMPLETE, 0, 0, cctx, routine, 1};
        post_job(job);
        return S_OK;
    }
    return S_OK;
#elif defined(SAMPLE_BUG_COMP3)
    /* The bug: a synchronous success, and the completion routine is called
     * afterwards all the same (COMP-3). */
    job_t job = {JOB_COMPLETE, 0, 0, cctx, routine, 1};
    post_job(job);
    return S_OK;
#elif defined(SAMPLE_BUG_COMP4)
    /* The bug: the call is pended, then completed twice (COMP-4). */
    job_t job = {JOB_COMPLETE, 0, 0, cctx, routine, 2};
    post_job(job);
    return E_PENDING;
#else
    (void)cctx;
    (void)routine;
    return S_OK;
#endif
}

static HRESULT CALLBACK transition_dormant(CPNATFWT_PROVIDER_INSTANCE h, PVOID ctx,
                                           PVOID cctx,
                                           CPNATFWT_PLATFORM_COMPLETION_ROUTINE routine) {
    (void)h;
    (void)cctx;
    (void)routine;
    pthread_mutex_lock(&g_lock);
    slot_t *s = slot_of(key_of(ctx));
    if (s != NULL)
        s->active = 0;
    dir_set_active(key_of(ctx), 0);
    pthread_mutex_unlock(&g_lock);
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
    return dir_add(key_of(ctx), g_port, &id) ? S_OK : E_FAIL;
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
    (void)cctx;
    (void)routine;
    tid_t id;
    if (!tid_copy(&id, t))
        return E_INVALIDARG;
    return dir_reachable(key_of(ctx), &id) != 0 ? S_OK : E_FAIL;
}

static HRESULT CALLBACK send_buffers(CPNATFWT_PROVIDER_INSTANCE h, PVOID ctx,
                                     CPNATFWT_TRANSPORT_ID *local,
                                     CPNATFWT_TRANSPORT_ID *remote, UINT64 endpointLuid,
                                     CPNATFWT_BUFFER *chain, PVOID cctx,
                                     CPNATFWT_PLATFORM_COMPLETION_ROUTINE routine) {
    (void)h;
    (void)endpointLuid;
    (void)cctx;
    (void)routine;
    static __thread BYTE msg[MAX_DATAGRAM + sizeof(struct wire)];
    struct wire w;
    memset(&w, 0, sizeof w);
    w.magic = MSG_MAGIC;
#ifdef SAMPLE_FIXED_PORTS
    w.pid = (int32_t)getpid();
#endif
    if (!tid_copy(&w.dst, remote) || !tid_copy(&w.src, local))
        return E_INVALIDARG;
    /* Everything is copied before returning (COMP-7). */
    size_t len = sizeof w;
    int hops = 0;
    for (CPNATFWT_BUFFER *b = chain; b != NULL; b = b->next) {
        if (++hops > 4096 || (b->size > 0 && b->buffer == NULL))
            return E_INVALIDARG;
        if (len + b->size > sizeof msg)
            return E_FAIL;
        if (b->size > 0)
            memcpy(msg + len, b->buffer, b->size);
        len += b->size;
    }
    memcpy(msg, &w, sizeof w);
    uint16_t port = dir_reachable(key_of(ctx), &w.dst);
    if (port == 0)
        return E_FAIL;
    struct sockaddr_in to;
    memset(&to, 0, sizeof to);
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ssize_t sent = sendto(g_sock, (const char *)msg, len, 0, (struct sockaddr *)&to, sizeof to);
    return sent == (ssize_t)len ? S_OK : E_FAIL;
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

static int open_socket(void) {
#ifdef _WIN32
    WSADATA wsa;
    if (WSAStartup(MAKEWORD(2, 2), &wsa) != 0)
        return 0;
    g_sock = socket(AF_INET, SOCK_DGRAM, 0);
    DWORD tv = 20; /* SO_RCVTIMEO in milliseconds */
#else
    g_sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {0, 20 * 1000};
#endif
    if (g_sock == NO_SOCKET)
        return 0;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
#ifdef SAMPLE_FIXED_PORTS
    /* A fixed port per host name: 47000 + its first letter. */
    a.sin_port = htons((uint16_t)(47000 + (unsigned char)g_host[0]));
#endif
    socklen_t alen = sizeof a;
    int big = 4 << 20;
    if (bind(g_sock, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(g_sock, (struct sockaddr *)&a, &alen) != 0 ||
        setsockopt(g_sock, SOL_SOCKET, SO_RCVTIMEO, (const char *)&tv, sizeof tv) != 0) {
#ifdef SAMPLE_FIXED_PORTS
        fprintf(stderr, "fixed_ports: host %s cannot bind 127.0.0.1:%d: %s\n", g_host,
                47000 + (unsigned char)g_host[0], strerror(errno));
        abort();
#endif
        close_socket(g_sock);
        g_sock = NO_SOCKET;
        return 0;
    }
    setsockopt(g_sock, SOL_SOCKET, SO_RCVBUF, (const char *)&big, sizeof big);
    g_port = ntohs(a.sin_port);
    return 1;
}

#ifdef SAMPLE_BUG_THREAD_LEFT
/* The bug's thread: a keep-alive that nobody stops or joins. */
static void *keep_alive(void *arg) {
    (void)arg;
    for (int i = 0; i < 600; i++)
        usleep(100 * 1000);
    return NULL;
}
#endif

CPSIM_PROVIDER_EXPORT HRESULT CpsimProviderStart(const char *hostName, const char *configJson) {
    /* Each host runs a fresh copy of this module: a copy started twice
     * would mean two hosts share these globals. */
    static int started;
    if (started)
        return E_FAIL;
    started = 1;
    snprintf(g_host, sizeof g_host, "%s", hostName ? hostName : "");
#ifdef SAMPLE_BUG_CRASH
    g_crash_abort = configJson != NULL && strstr(configJson, "abort") != NULL;
#elif defined(SAMPLE_BUG_ONCE)
    config_string(configJson, "once_file", g_once_file, sizeof g_once_file);
#elif defined(SAMPLE_BUG_FORK) && defined(_WIN32)
    /* The bug on Windows: a grandchild process that would live a minute
     * (ping.exe, 61 pings a second apart), inheriting the runner's
     * handles; its process ID goes to "pid_file". */
    {
        char pid_file[512], cmd[] = "ping.exe -n 61 127.0.0.1";
        STARTUPINFOA si;
        PROCESS_INFORMATION pi;
        memset(&si, 0, sizeof si);
        si.cb = sizeof si;
        if (CreateProcessA(NULL, cmd, NULL, NULL, TRUE, CREATE_NO_WINDOW, NULL, NULL, &si, &pi)) {
            if (config_string(configJson, "pid_file", pid_file, sizeof pid_file)) {
                FILE *f = fopen(pid_file, "a");
                if (f != NULL) {
                    fprintf(f, "%lu\n", (unsigned long)pi.dwProcessId);
                    fclose(f);
                }
            }
            CloseHandle(pi.hThread);
            CloseHandle(pi.hProcess);
        }
    }
#elif defined(SAMPLE_BUG_FORK)
    /* The bug: a grandchild process that outlives the case, holding the
     * runner's stdout and stderr open; its pid goes to "pid_file". */
    {
        char pid_file[512];
        pid_t child = fork();
        if (child == 0) {
            for (int i = 0; i < 600; i++)
                usleep(100 * 1000);
            _exit(0);
        }
        if (child > 0 && config_string(configJson, "pid_file", pid_file, sizeof pid_file)) {
            FILE *f = fopen(pid_file, "a");
            if (f != NULL) {
                fprintf(f, "%d\n", (int)child);
                fclose(f);
            }
        }
    }
#elif defined(SAMPLE_BUG_NOISE)
    /* The bug: megabytes of output, most of it one line ("noise_mib",
     * default 64), then an abort. */
    {
        char mib[32];
        long n = config_string(configJson, "noise_mib", mib, sizeof mib) ? atol(mib) : 64;
        static char chunk[1 << 16];
        memset(chunk, 'x', sizeof chunk);
        fprintf(stderr, "noisy: first line\n");
        for (long i = 0; i < n * 16; i++)
            if (fwrite(chunk, 1, sizeof chunk, stderr) != sizeof chunk)
                break;
        fprintf(stderr, "\nnoisy: last line\n");
        abort(); /* so that the output lands in a finding */
    }
#elif defined(SAMPLE_BUG_THREAD_LEFT)
    /* The bug: a thread CpsimProviderStop neither stops nor joins. */
    (void)configJson;
    {
        pthread_t t;
        if (pthread_create(&t, NULL, keep_alive, NULL) == 0)
            pthread_detach(t);
    }
#else
    (void)configJson;
#endif
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&g_lock, &attr);
    pthread_mutexattr_destroy(&attr);
    memset(g_slots, 0, sizeof g_slots);
    g_njobs = 0;
    g_stopping = 0;
    if (!dir_open())
        return E_FAIL;
    if (!open_socket()) {
        dir_close();
        return E_FAIL;
    }
    if (pthread_create(&g_rx, NULL, receiver, NULL) != 0) {
        close_socket(g_sock);
        dir_close();
        return E_FAIL;
    }
    if (pthread_create(&g_maint, NULL, maintenance, NULL) != 0) {
        pthread_mutex_lock(&g_lock);
        g_stopping = 1;
        pthread_mutex_unlock(&g_lock);
        pthread_join(g_rx, NULL);
        close_socket(g_sock);
        dir_close();
        return E_FAIL;
    }
    pthread_mutex_lock(&g_lock);
    open_instance(0);
    pthread_mutex_unlock(&g_lock);
    return S_OK;
}

CPSIM_PROVIDER_EXPORT void CpsimProviderStop(void) {
    pthread_mutex_lock(&g_lock);
    g_stopping = 1;
    pthread_cond_broadcast(&g_wake);
    pthread_mutex_unlock(&g_lock);
    pthread_join(g_maint, NULL);
    pthread_join(g_rx, NULL);
    pthread_mutex_lock(&g_lock);
    for (int i = 0; i < MAX_INST; i++)
        if (g_slots[i].used)
            close_slot(&g_slots[i]);
    pthread_mutex_unlock(&g_lock);
    close_socket(g_sock);
    g_sock = NO_SOCKET;
#ifdef _WIN32
    WSACleanup();
#endif
    dir_close();
}
