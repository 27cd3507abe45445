/* The C allocation API's edge cases, for rt-malloc's tests. Each check
 * prints "FAIL: <what>" and exits 1 when it does not hold; the program
 * prints "api: ok" at the end. It runs on glibc as well as under
 * LD_PRELOAD, so every check is one glibc also passes. A constructor
 * allocates and starts a thread before main.
 *
 * With an argument, it instead makes one deliberate misuse that a
 * checking allocator must stop: "free-stack" frees a stack address.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHECK(c)                                                             \
    do {                                                                     \
        if (!(c)) {                                                          \
            fprintf(stderr, "FAIL: %s (line %d, errno %d)\n", #c, __LINE__, \
                    errno);                                                  \
            exit(1);                                                         \
        }                                                                    \
    } while (0)

static void fill(unsigned char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(seed + i * 13);
}

static int same(const unsigned char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(seed + i * 13)) return 0;
    return 1;
}

/* Before main: a constructor allocates, and a thread it starts frees
 * that block and allocates one main frees (an allocator preloaded into
 * the process serves both before main runs). */
static void *early;
static void *early_thread(void *arg) {
    if (!same(arg, 3000, 21)) return NULL;
    free(arg);
    unsigned char *p = malloc(777);
    if (p) fill(p, 777, 23);
    return p;
}

__attribute__((constructor)) static void before_main(void) {
    unsigned char *p = malloc(3000);
    if (!p) return;
    fill(p, 3000, 21);
    pthread_t t;
    if (pthread_create(&t, NULL, early_thread, p) == 0) pthread_join(t, &early);
}

/* Sizes read through volatiles, so the compiler does not warn about
 * (or fold) requests that are meant to fail. */
static volatile size_t huge = SIZE_MAX - 4096;
static volatile size_t half = SIZE_MAX / 2;
static volatile size_t big = (size_t)1 << 33;

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "free-stack") == 0) {
        int x = 0;
        void *volatile p = &x;
        free(p);
        printf("free of a stack address returned\n");
        return 0;
    }

    CHECK(early != NULL && same(early, 777, 23));
    free(early);

    /* malloc: 16-byte alignment, distinct results, zero size. */
    void *a = malloc(0), *b = malloc(0);
    CHECK(a && b && a != b);
    for (size_t n = 1; n < 100000; n = n * 3 + 1) {
        unsigned char *p = malloc(n);
        CHECK(p && (uintptr_t)p % 16 == 0);
        CHECK(malloc_usable_size(p) >= n);
        fill(p, malloc_usable_size(p), 7);
        free(p);
    }
    free(a);
    free(b);
    free(NULL);
    CHECK(malloc_usable_size(NULL) == 0);

    /* Exhaustion and overflow: null with ENOMEM. */
    errno = 0;
    CHECK(malloc(huge) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(calloc(half, 3) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(calloc(big, big) == NULL && errno == ENOMEM);

    /* calloc: zeroed, also when reusing freed memory. */
    for (int round = 0; round < 2; round++) {
        for (size_t n = 1; n < 300000; n = n * 5 + 3) {
            unsigned char *p = calloc(n, 1);
            CHECK(p != NULL);
            for (size_t i = 0; i < n; i++) CHECK(p[i] == 0);
            memset(p, 0xff, n);
            free(p);
        }
    }

    /* realloc: contents kept across growth and shrink, small <-> large. */
    unsigned char *r = NULL;
    size_t sizes[] = {1, 24, 100, 1000, 5000, 40000, 1 << 20, 3000, 17, 2 << 20, 8};
    size_t prev = 0;
    for (unsigned i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        unsigned char *q = realloc(r, sizes[i]);
        CHECK(q != NULL);
        size_t keep = prev < sizes[i] ? prev : sizes[i];
        CHECK(same(q, keep, 3));
        fill(q, sizes[i], 3);
        r = q;
        prev = sizes[i];
    }
    errno = 0;
    CHECK(realloc(r, huge) == NULL && errno == ENOMEM);
    CHECK(same(r, prev, 3)); /* untouched by the failed realloc */
    errno = 0;
    CHECK(reallocarray(r, half, 3) == NULL && errno == ENOMEM);
    r = reallocarray(r, 100, 10);
    CHECK(r && same(r, 8, 3));
    free(r);
    r = realloc(NULL, 10);
    CHECK(r != NULL);
    free(r);

    /* posix_memalign: EINVAL for bad alignments, any power of two
     * multiple of sizeof(void *) works, up to large spans. */
    void *p = (void *)1;
    CHECK(posix_memalign(&p, 3, 10) == EINVAL && p == (void *)1);
    CHECK(posix_memalign(&p, 4, 10) == EINVAL && p == (void *)1);
    CHECK(posix_memalign(&p, 24, 10) == EINVAL && p == (void *)1);
    CHECK(posix_memalign(&p, 0, 10) == EINVAL && p == (void *)1);
    for (size_t al = 8; al <= ((size_t)1 << 24); al <<= 1) {
        size_t ns[] = {0, 1, 100, al, 3 * al + 5};
        for (unsigned i = 0; i < 5; i++) {
            void *q = NULL;
            CHECK(posix_memalign(&q, al, ns[i]) == 0);
            CHECK(q && (uintptr_t)q % al == 0);
            CHECK(malloc_usable_size(q) >= ns[i]);
            fill(q, ns[i], 5);
            CHECK(same(q, ns[i], 5));
            free(q);
        }
    }
    CHECK(posix_memalign(&p, (size_t)1 << 62, 10) == ENOMEM);

    /* aligned_alloc, memalign, valloc, pvalloc. */
    void *q = aligned_alloc(4096, 10000);
    CHECK(q && (uintptr_t)q % 4096 == 0);
    free(q);
    q = aligned_alloc(65536, 1);
    CHECK(q && (uintptr_t)q % 65536 == 0);
    free(q);
    q = memalign(64, 1000);
    CHECK(q && (uintptr_t)q % 64 == 0 && malloc_usable_size(q) >= 1000);
    /* realloc of an aligned object keeps its contents */
    fill(q, 1000, 9);
    q = realloc(q, 100000);
    CHECK(q && same(q, 1000, 9));
    free(q);
    q = valloc(5);
    CHECK(q && (uintptr_t)q % sysconf(_SC_PAGESIZE) == 0);
    free(q);
    q = pvalloc(5);
    CHECK(q && (uintptr_t)q % sysconf(_SC_PAGESIZE) == 0);
    CHECK(malloc_usable_size(q) >= (size_t)sysconf(_SC_PAGESIZE));
    free(q);

    /* realloc to zero frees and returns null (glibc). */
    q = malloc(50);
    CHECK(realloc(q, 0) == NULL);

    /* fork: the child allocates and frees with the parent's heap state. */
    unsigned char *keep = malloc(5000);
    fill(keep, 5000, 11);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        unsigned char *c = malloc(100000);
        if (!c || !same(keep, 5000, 11)) _exit(1);
        fill(c, 100000, 1);
        free(keep);
        free(c);
        for (int i = 0; i < 10000; i++) free(malloc(i % 3000));
        exit(0);
    }
    int st = 0;
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(same(keep, 5000, 11));
    free(keep);

    printf("api: ok\n");
    return 0;
}
