/* A shared object with a large thread-local, loaded many times (under
 * different names) by dlopen_tls.c. Each thread's copy of a dlopened
 * object's thread-locals is allocated by glibc on first use, with malloc. */
__thread char buf[4096];

char *tls_buf(void) {
    buf[0]++;
    return buf;
}
