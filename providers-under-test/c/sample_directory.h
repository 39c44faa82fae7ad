/*
 * sample_directory.h - what the sample providers' module copies share:
 * deep-copied transport IDs (TID-3) and a small *directory* in named
 * shared memory (which instance holds which transport ID, where to reach
 * it, and whether it is active), named after the process. Included by
 * sample.c (real time, UDP on loopback) and sample_vt.c (virtual time,
 * the simulated network). `port` is where the holder is reached: a UDP
 * port for sample.c, a simulated node for sample_vt.c.
 */
#ifndef SAMPLE_DIRECTORY_H
#define SAMPLE_DIRECTORY_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#ifdef _WIN32
/* Windows: named shared memory is a paging-file mapping named after the
 * process, and the lock a slim reader/writer lock (both in-process). */
#include <windows.h>
typedef SRWLOCK dir_lock_t;
#define DIR_LOCK(l) AcquireSRWLockExclusive(l)
#define DIR_UNLOCK(l) ReleaseSRWLockExclusive(l)
#else
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
typedef pthread_mutex_t dir_lock_t;
#define DIR_LOCK(l) pthread_mutex_lock(l)
#define DIR_UNLOCK(l) pthread_mutex_unlock(l)
#endif

#define DIR_HOLDERS 512
#define DIR_KEYS 256

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
    dir_lock_t lock;
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

#ifdef _WIN32
static HANDLE g_dir_mapping;

static int dir_open(void) {
    snprintf(g_dir_name, sizeof g_dir_name, "Local\\cpsim-sample-%lu",
             (unsigned long)GetCurrentProcessId());
    HANDLE h = CreateFileMappingA(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE, 0,
                                  (DWORD)sizeof(directory), g_dir_name);
    if (h == NULL)
        return 0;
    int created = GetLastError() != ERROR_ALREADY_EXISTS;
    void *p = MapViewOfFile(h, FILE_MAP_ALL_ACCESS, 0, 0, sizeof(directory));
    if (p == NULL) {
        CloseHandle(h);
        return 0;
    }
    g_dir_mapping = h;
    g_dir = p;
    if (created) {
        InitializeSRWLock(&g_dir->lock);
        __atomic_store_n(&g_dir->ready, 1, __ATOMIC_RELEASE);
    } else {
        while (!__atomic_load_n(&g_dir->ready, __ATOMIC_ACQUIRE))
            SwitchToThread();
    }
    DIR_LOCK(&g_dir->lock);
    g_dir->users++;
    DIR_UNLOCK(&g_dir->lock);
    return 1;
}

/* The mapping goes when its last view and handle do. */
static void dir_close(void) {
    if (g_dir == NULL)
        return;
    DIR_LOCK(&g_dir->lock);
    g_dir->users--;
    DIR_UNLOCK(&g_dir->lock);
    UnmapViewOfFile(g_dir);
    CloseHandle(g_dir_mapping);
    g_dir = NULL;
    g_dir_mapping = NULL;
}
#else
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
            sched_yield();
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
#endif

static uint64_t dir_new_key(void) {
    DIR_LOCK(&g_dir->lock);
    uint64_t k = ++g_dir->next_key;
    DIR_UNLOCK(&g_dir->lock);
    return k;
}

static int dir_is_active_locked(uint64_t key) {
    for (int i = 0; i < DIR_KEYS; i++)
        if (g_dir->active[i] == key)
            return 1;
    return 0;
}

static void dir_set_active(uint64_t key, int on) {
    DIR_LOCK(&g_dir->lock);
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
    DIR_UNLOCK(&g_dir->lock);
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
    DIR_LOCK(&g_dir->lock);
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
    DIR_UNLOCK(&g_dir->lock);
    return ok;
}

static void dir_remove(uint64_t key, const tid_t *t) {
    DIR_LOCK(&g_dir->lock);
    int i = dir_find_locked(t);
    if (i >= 0 && g_dir->holders[i].key == key)
        g_dir->holders[i].used = 0;
    DIR_UNLOCK(&g_dir->lock);
}

/* Forgets everything about an instance (its session ended). */
static void dir_forget(uint64_t key) {
    DIR_LOCK(&g_dir->lock);
    for (int i = 0; i < DIR_HOLDERS; i++)
        if (g_dir->holders[i].used && g_dir->holders[i].key == key)
            g_dir->holders[i].used = 0;
    for (int i = 0; i < DIR_KEYS; i++)
        if (g_dir->active[i] == key)
            g_dir->active[i] = 0;
    DIR_UNLOCK(&g_dir->lock);
}

/* The port of the active instance other than `asker` holding `t`, or 0. */
static uint16_t dir_reachable(uint64_t asker, const tid_t *t) {
    uint16_t port = 0;
    DIR_LOCK(&g_dir->lock);
    int i = dir_find_locked(t);
    if (i >= 0 && g_dir->holders[i].key != asker &&
        dir_is_active_locked(g_dir->holders[i].key))
        port = g_dir->holders[i].port;
    DIR_UNLOCK(&g_dir->lock);
    return port;
}

/* Whether instance `key` holds `t` and is active. */
static int dir_holds_active(uint64_t key, const tid_t *t) {
    DIR_LOCK(&g_dir->lock);
    int i = dir_find_locked(t);
    int yes = i >= 0 && g_dir->holders[i].key == key && dir_is_active_locked(key);
    DIR_UNLOCK(&g_dir->lock);
    return yes;
}


#endif /* SAMPLE_DIRECTORY_H */
