/* Multi-threaded allocation stress for rt-malloc's tests.
 *
 * NTHREADS pthreads each run a seeded random mix of malloc, calloc,
 * realloc, posix_memalign, aligned_alloc and free over a table of live
 * objects. Every object is filled with a pattern derived from its tag and
 * checked before it is resized or freed; calloc memory is checked to be
 * zero; aligned objects are checked for their alignment. About one object
 * in eight is handed to another thread through a shared queue and freed
 * there (after the same check).
 *
 * Output: one line per thread with counts that depend only on the thread's
 * own seed (never on scheduling), so a run under LD_PRELOAD must print
 * exactly what a run on glibc prints. Any check that fails prints
 * "FAIL: ..." and exits with status 1.
 *
 * With EXPECT_PRELOAD=<substring> set, the program also checks that the
 * malloc and free it calls are defined in a shared object whose path
 * contains that substring (dladdr), and exits 3 if not.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NTHREADS 8
#define SLOTS 512
#define QCAP 4096

struct obj {
    unsigned char *p;
    size_t size;
    uint32_t tag;
};

static struct obj queue[QCAP];
static int qhead, qlen;
static pthread_mutex_t qlock = PTHREAD_MUTEX_INITIALIZER;
static long iters = 100000;

static void fail(const char *what, size_t a, size_t b) {
    fprintf(stderr, "FAIL: %s (%zu, %zu)\n", what, a, b);
    exit(1);
}

static uint64_t rnd(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static unsigned char pat(uint32_t tag, size_t i) {
    return (unsigned char)(tag * 31u + (uint32_t)i * 7u + (uint32_t)(i >> 8));
}

static void fill(struct obj *o) {
    for (size_t i = 0; i < o->size; i++) o->p[i] = pat(o->tag, i);
}

static void check(const struct obj *o, size_t n) {
    for (size_t i = 0; i < n && i < o->size; i++)
        if (o->p[i] != pat(o->tag, i)) fail("object contents changed", i, o->size);
}

static size_t pick_size(uint64_t *s) {
    uint64_t r = rnd(s) % 1000;
    if (r < 700) return rnd(s) % 257;          /* tiny and small */
    if (r < 950) return rnd(s) % 4096;         /* small */
    if (r < 995) return rnd(s) % 70000;        /* up to large */
    return (rnd(s) % (3u << 20)) + 1;          /* a few MiB */
}

/* Frees an object after checking it. */
static void drop(struct obj *o) {
    check(o, o->size);
    free(o->p);
    o->p = NULL;
}

static int enqueue(struct obj *o) {
    int ok = 0;
    pthread_mutex_lock(&qlock);
    if (qlen < QCAP) {
        queue[(qhead + qlen) % QCAP] = *o;
        qlen++;
        ok = 1;
    }
    pthread_mutex_unlock(&qlock);
    return ok;
}

static int dequeue(struct obj *o) {
    int ok = 0;
    pthread_mutex_lock(&qlock);
    if (qlen > 0) {
        *o = queue[qhead];
        qhead = (qhead + 1) % QCAP;
        qlen--;
        ok = 1;
    }
    pthread_mutex_unlock(&qlock);
    return ok;
}

struct result {
    unsigned long allocs, reallocs, aligned, handed, bytes;
};

static void *worker(void *arg) {
    long id = (long)arg;
    uint64_t s = 0x9e3779b97f4a7c15ull * (uint64_t)(id + 1);
    struct obj live[SLOTS];
    struct result *res = calloc(1, sizeof *res);
    if (!res) fail("calloc result", 0, 0);
    memset(live, 0, sizeof live);
    uint32_t tag = (uint32_t)id << 24;
    for (long it = 0; it < iters; it++) {
        struct obj *o = &live[rnd(&s) % SLOTS];
        uint64_t op = rnd(&s) % 100;
        if (o->p) {
            if (op < 20) {
                /* Resize, keeping the common prefix. */
                size_t n = pick_size(&s);
                unsigned char *q = realloc(o->p, n ? n : 1);
                if (!q) fail("realloc", n, 0);
                o->p = q;
                check(o, n ? n : 1);
                o->size = n ? n : 1;
                fill(o);
                res->reallocs++;
            } else if (op < 32) {
                /* Hand to another thread; freed there. Counted whether or
                 * not the queue had room, so the counts stay deterministic. */
                res->handed++;
                if (!enqueue(o)) drop(o);
                o->p = NULL;
            } else {
                drop(o);
            }
            continue;
        }
        size_t n = pick_size(&s);
        o->size = n;
        o->tag = ++tag;
        res->allocs++;
        res->bytes += n;
        if (op < 60) {
            o->p = malloc(n);
        } else if (op < 80) {
            size_t k = 1 + rnd(&s) % 16;
            o->p = calloc(k, (n + k - 1) / k);
            if (o->p)
                for (size_t i = 0; i < (n + k - 1) / k * k; i++)
                    if (o->p[i]) fail("calloc memory not zero", i, n);
        } else {
            size_t align = (size_t)1 << (3 + rnd(&s) % 19); /* 8 B .. 2 MiB */
            void *p = NULL;
            if (op < 90) {
                int e = posix_memalign(&p, align, n);
                if (e) fail("posix_memalign", (size_t)e, align);
            } else {
                p = aligned_alloc(align, n);
            }
            o->p = p;
            if ((uintptr_t)p % align) fail("misaligned", (uintptr_t)p, align);
            res->aligned++;
        }
        if (!o->p) fail("allocation failed", n, 0);
        if (malloc_usable_size(o->p) < n) fail("usable size", malloc_usable_size(o->p), n);
        fill(o);
        /* Free something another thread handed over. */
        struct obj x;
        if (rnd(&s) % 4 == 0 && dequeue(&x)) drop(&x);
    }
    for (int i = 0; i < SLOTS; i++)
        if (live[i].p) drop(&live[i]);
    return res;
}

static void check_preload(void) {
    const char *want = getenv("EXPECT_PRELOAD");
    if (!want) return;
    void *fns[] = {(void *)malloc, (void *)free, (void *)realloc, (void *)posix_memalign};
    for (unsigned i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        Dl_info info;
        if (!dladdr(fns[i], &info) || !info.dli_fname || !strstr(info.dli_fname, want)) {
            fprintf(stderr, "FAIL: allocator function %u comes from %s\n", i,
                    info.dli_fname ? info.dli_fname : "?");
            exit(3);
        }
    }
}

int main(int argc, char **argv) {
    check_preload();
    if (argc > 1) iters = atol(argv[1]);
    pthread_t t[NTHREADS];
    for (long i = 0; i < NTHREADS; i++)
        if (pthread_create(&t[i], NULL, worker, (void *)i)) fail("pthread_create", (size_t)i, 0);
    for (int i = 0; i < NTHREADS; i++) {
        struct result *r;
        pthread_join(t[i], (void **)&r);
        printf("thread %d: allocs=%lu reallocs=%lu aligned=%lu handed=%lu bytes=%lu\n", i,
               r->allocs, r->reallocs, r->aligned, r->handed, r->bytes);
        free(r);
    }
    struct obj x;
    while (dequeue(&x)) drop(&x);
    return 0;
}
