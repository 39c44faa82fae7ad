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
 * `static` below exists once per host. The directory is the only state the
 * copies share; it is named after the process, and cpsim runs every case of
 * a C module in a process of its own.
 *
 * The broken_*.c, crash.c and hang.c modules include this file with one
 * SAMPLE_BUG_* macro defined, each turning on exactly one defect.
 */
#define _GNU_SOURCE
#define CPSIM_PROVIDER_MODULE
#include "cpnatfwt.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define E_PENDING ((HRESULT)0x800703E5L) /* HRESULT_FROM_WIN32(ERROR_IO_PENDING) */
#define MAX_INST 16
#define MAX_JOBS 64
#define DIR_HOLDERS 512
#define DIR_KEYS 256
#define MAX_DATAGRAM 65000
#define MSG_MAGIC 0x43505344u /* "CPSD" */

/* ------------------------------------------------------------------------ */
/* Transport IDs, deep-copied (TID-3)                                        */

typedef struct {
    USHORT len;
    BYTE b[16];
} tid_t;

static int tid_copy(tid_t *out, const CPNATFWT_TRANSPORT_ID *t) {
    if (t == NULL || t->transportId == NULL || t->size == 0 || t->size > 16)
        return 0;
    out->len = t->size;
    memcpy(out->b, t->transportId, t->size);
    return 1;
}

static int tid_eq(const tid_t *a, const tid_t *b) {
    return a->len == b->len && memcmp(a->b, b->b, a->len) == 0;
}

/* ------------------------------------------------------------------------ */
/* The directory shared by the module copies of one process                 */

typedef struct {
    uint32_t ready;
    pthread_mutex_t lock;
    int users;
    uint64_t next_key;
    struct {
        int used;
        tid_t tid;
        uint64_t key;
        uint16_t port;
    } holders[DIR_HOLDERS];
    uint64_t active[DIR_KEYS]; /* keys of active instances (0: free) */
} directory;

static directory *g_dir;
static char g_dir_name[64];

static int dir_open(void) {
    snprintf(g_dir_name, sizeof g_dir_name, "/cpsim-sample-%ld", (long)getpid());
    int created = 1;
    int fd = shm_open(g_dir_name, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0 && errno == EEXIST) {
        created = 0;
        fd = shm_open(g_dir_name, O_RDWR, 0600);
    }
    if (fd < 0)
        return 0;
    if (created && ftruncate(fd, sizeof(directory)) != 0) {
        close(fd);
        return 0;
    }
    void *p = mmap(NULL, sizeof(directory), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED)
        return 0;
    g_dir = p;
    if (created) {
        pthread_mutex_init(&g_dir->lock, NULL);
        __atomic_store_n(&g_dir->ready, 1, __ATOMIC_RELEASE);
    } else {
        while (!__atomic_load_n(&g_dir->ready, __ATOMIC_ACQUIRE))
            usleep(100);
    }
    pthread_mutex_lock(&g_dir->lock);
    g_dir->users++;
    pthread_mutex_unlock(&g_dir->lock);
    return 1;
}

static void dir_close(void) {
    if (g_dir == NULL)
        return;
    pthread_mutex_lock(&g_dir->lock);
    int last = --g_dir->users == 0;
    if (last)
        shm_unlink(g_dir_name);
    pthread_mutex_unlock(&g_dir->lock);
    munmap(g_dir, sizeof(directory));
    g_dir = NULL;
}

static uint64_t dir_new_key(void) {
    pthread_mutex_lock(&g_dir->lock);
    uint64_t k = ++g_dir->next_key;
    pthread_mutex_unlock(&g_dir->lock);
    return k;
}

static int dir_is_active_locked(uint64_t key) {
    for (int i = 0; i < DIR_KEYS; i++)
        if (g_dir->active[i] == key)
            return 1;
    return 0;
}

static void dir_set_active(uint64_t key, int on) {
    pthread_mutex_lock(&g_dir->lock);
    int i, present = dir_is_active_locked(key);
    if (on && !present) {
        for (i = 0; i < DIR_KEYS; i++)
            if (g_dir->active[i] == 0) {
                g_dir->active[i] = key;
                break;
            }
    } else if (!on && present) {
        for (i = 0; i < DIR_KEYS; i++)
            if (g_dir->active[i] == key)
                g_dir->active[i] = 0;
    }
    pthread_mutex_unlock(&g_dir->lock);
}

static int dir_find_locked(const tid_t *t) {
    for (int i = 0; i < DIR_HOLDERS; i++)
        if (g_dir->holders[i].used && tid_eq(&g_dir->holders[i].tid, t))
            return i;
    return -1;
}

/* ADD: fails if another instance holds the ID (TID-4). */
static int dir_add(uint64_t key, uint16_t port, const tid_t *t) {
    int ok = 0;
    pthread_mutex_lock(&g_dir->lock);
    int i = dir_find_locked(t);
    if (i >= 0) {
        ok = g_dir->holders[i].key == key;
    } else {
        for (i = 0; i < DIR_HOLDERS; i++)
            if (!g_dir->holders[i].used) {
                g_dir->holders[i].used = 1;
                g_dir->holders[i].tid = *t;
                g_dir->holders[i].key = key;
                g_dir->holders[i].port = port;
                ok = 1;
                break;
            }
    }
    pthread_mutex_unlock(&g_dir->lock);
    return ok;
}

static void dir_remove(uint64_t key, const tid_t *t) {
    pthread_mutex_lock(&g_dir->lock);
    int i = dir_find_locked(t);
    if (i >= 0 && g_dir->holders[i].key == key)
        g_dir->holders[i].used = 0;
    pthread_mutex_unlock(&g_dir->lock);
}

/* Forgets everything about an instance (its session ended). */
static void dir_forget(uint64_t key) {
    pthread_mutex_lock(&g_dir->lock);
    for (int i = 0; i < DIR_HOLDERS; i++)
        if (g_dir->holders[i].used && g_dir->holders[i].key == key)
            g_dir->holders[i].used = 0;
    for (int i = 0; i < DIR_KEYS; i++)
        if (g_dir->active[i] == key)
            g_dir->active[i] = 0;
    pthread_mutex_unlock(&g_dir->lock);
}

/* The port of the active instance other than `asker` holding `t`, or 0. */
static uint16_t dir_reachable(uint64_t asker, const tid_t *t) {
    uint16_t port = 0;
    pthread_mutex_lock(&g_dir->lock);
    int i = dir_find_locked(t);
    if (i >= 0 && g_dir->holders[i].key != asker &&
        dir_is_active_locked(g_dir->holders[i].key))
        port = g_dir->holders[i].port;
    pthread_mutex_unlock(&g_dir->lock);
    return port;
}

/* Whether instance `key` holds `t` and is active. */
static int dir_holds_active(uint64_t key, const tid_t *t) {
    pthread_mutex_lock(&g_dir->lock);
    int i = dir_find_locked(t);
    int yes = i >= 0 && g_dir->holders[i].key == key && dir_is_active_locked(key);
    pthread_mutex_unlock(&g_dir->lock);
    return yes;
}

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
static int g_sock = -1;
static uint16_t g_port;
static pthread_t g_rx, g_maint;
static char g_host[128];
#ifdef SAMPLE_BUG_CRASH
static int g_crash_abort;
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
        ssize_t n = recv(g_sock, buf, sizeof buf, 0);
        if (n < (ssize_t)sizeof(struct wire))
            continue; /* timeout (SO_RCVTIMEO) or runt */
        struct wire w;
        memcpy(&w, buf, sizeof w);
        if (w.magic != MSG_MAGIC || w.dst.len > 16 || w.src.len > 16)
            continue;
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
        pause(); /* never returns (TIME-1) */
#endif
    pthread_mutex_lock(&g_lock);
    slot_t *s = slot_of(key_of(ctx));
    if (s != NULL)
        s->active = 1;
    dir_set_active(key_of(ctx), 1);
    pthread_mutex_unlock(&g_lock);
#if defined(SAMPLE_BUG_COMP3)
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
    ssize_t sent = sendto(g_sock, msg, len, 0, (struct sockaddr *)&to, sizeof to);
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
    g_sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (g_sock < 0)
        return 0;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t alen = sizeof a;
    struct timeval tv = {0, 20 * 1000};
    int big = 4 << 20;
    if (bind(g_sock, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(g_sock, (struct sockaddr *)&a, &alen) != 0 ||
        setsockopt(g_sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0) {
        close(g_sock);
        g_sock = -1;
        return 0;
    }
    setsockopt(g_sock, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    g_port = ntohs(a.sin_port);
    return 1;
}

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
        close(g_sock);
        dir_close();
        return E_FAIL;
    }
    if (pthread_create(&g_maint, NULL, maintenance, NULL) != 0) {
        pthread_mutex_lock(&g_lock);
        g_stopping = 1;
        pthread_mutex_unlock(&g_lock);
        pthread_join(g_rx, NULL);
        close(g_sock);
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
    close(g_sock);
    g_sock = -1;
    dir_close();
}
