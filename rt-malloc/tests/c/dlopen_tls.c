/* dlopen_tls DIR N: loads DIR/libtls1.so ... DIR/libtlsN.so (copies of
 * tlsmod.c) one by one; every tenth, four threads touch the thread-locals
 * of every object loaded so far and allocate. More modules with
 * thread-locals than glibc's spare slots make it grow each thread's
 * dynamic thread vector, and each first touch allocates that thread's
 * block: allocations made from inside glibc's TLS machinery, while the
 * allocator's own thread-locals are in use. Prints "ok N". */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

typedef char *(*getfn)(void);
static getfn fns[256];
static int nfns;

static void *worker(void *arg) {
    (void)arg;
    for (int r = 0; r < 100; r++) {
        for (int i = 0; i < nfns; i++) fns[i]()[1] = (char)r;
        free(malloc(100 + (size_t)r));
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    int n = atoi(argv[2]);
    if (n < 1 || n > 256) return 2;
    char path[4096];
    for (int i = 1; i <= n; i++) {
        snprintf(path, sizeof path, "%s/libtls%d.so", argv[1], i);
        void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            fprintf(stderr, "FAIL: dlopen: %s\n", dlerror());
            return 1;
        }
        fns[nfns++] = (getfn)dlsym(h, "tls_buf");
        fns[nfns - 1]()[2] = 1;
        free(malloc((size_t)i * 10));
        if (i % 10 == 0 || i == n) {
            pthread_t t[4];
            for (int k = 0; k < 4; k++)
                if (pthread_create(&t[k], NULL, worker, NULL)) return 1;
            for (int k = 0; k < 4; k++) pthread_join(t[k], NULL);
        }
    }
    printf("ok %d\n", nfns);
    return 0;
}
