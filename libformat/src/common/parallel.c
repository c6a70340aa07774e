/* sq_parallel_for: loops split into fixed contiguous chunks, run on a pool
 * of persistent workers (or fresh threads when the pool is busy). */
#include <pthread.h>
#include <stdint.h>
#include <unistd.h>

#include "squish/codec.h"

int sq_default_threads(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)n;
}

typedef struct pf_job {
    void (*fn)(void *, uint64_t, uint64_t);
    void *ctx;
    uint64_t i0, i1;
} pf_job;

static void *pf_run(void *arg) {
    pf_job *j = arg;
    j->fn(j->ctx, j->i0, j->i1);
    return NULL;
}

/* Spawns a thread per chunk: used when the pool is busy or from inside a
 * pool worker (nested parallel loops). */
static void parallel_spawn(int n_threads, uint64_t n, void (*fn)(void *, uint64_t, uint64_t), void *ctx) {
    pf_job jobs[256];
    pthread_t th[256];
    int started[256] = {0};
    for (int i = 0; i < n_threads; i++) {
        jobs[i] = (pf_job){fn, ctx, n * (uint64_t)i / (uint64_t)n_threads, n * (uint64_t)(i + 1) / (uint64_t)n_threads};
        if (i > 0) started[i] = pthread_create(&th[i], NULL, pf_run, &jobs[i]) == 0;
    }
    pf_run(&jobs[0]);
    for (int i = 1; i < n_threads; i++) {
        if (started[i]) pthread_join(th[i], NULL);
        else pf_run(&jobs[i]); /* could not start a thread: do the work here */
    }
}

/* A pool of persistent workers, so that the many short loops of token-by-
 * token decoding do not pay for thread creation. A loop is cut into the
 * same chunks as parallel_spawn would use, and each chunk runs on one
 * thread, so results do not depend on which thread takes which chunk. */
static struct {
    pthread_mutex_t mu, submit;
    pthread_cond_t work, done;
    int workers;
    uint64_t generation;
    void (*fn)(void *, uint64_t, uint64_t);
    void *ctx;
    uint64_t n;
    int parts, next, finished;
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER,
          0, 0, NULL, NULL, 0, 0, 0, 0};
static __thread int in_pool_worker;

/* Takes and runs chunks of the current loop until none is left (pool.mu held on entry and exit). */
static void pool_drain(void) {
    while (pool.next < pool.parts) {
        int i = pool.next++;
        void (*fn)(void *, uint64_t, uint64_t) = pool.fn;
        void *ctx = pool.ctx;
        uint64_t n = pool.n, parts = (uint64_t)pool.parts;
        pthread_mutex_unlock(&pool.mu);
        fn(ctx, n * (uint64_t)i / parts, n * (uint64_t)(i + 1) / parts);
        pthread_mutex_lock(&pool.mu);
        if (++pool.finished == pool.parts) pthread_cond_signal(&pool.done);
    }
}

static void *pool_worker(void *arg) {
    (void)arg;
    in_pool_worker = 1;
    pthread_mutex_lock(&pool.mu);
    uint64_t seen = pool.generation;
    for (;;) {
        while (pool.generation == seen) pthread_cond_wait(&pool.work, &pool.mu);
        seen = pool.generation;
        pool_drain();
    }
    return NULL;
}

void sq_parallel_for(int n_threads, uint64_t n, void (*fn)(void *, uint64_t, uint64_t), void *ctx) {
    if (n_threads < 1) n_threads = 1;
    if ((uint64_t)n_threads > n) n_threads = n ? (int)n : 1;
    if (n_threads > 256) n_threads = 256;
    if (n_threads == 1) {
        if (n) fn(ctx, 0, n);
        return;
    }
    if (in_pool_worker || pthread_mutex_trylock(&pool.submit) != 0) {
        parallel_spawn(n_threads, n, fn, ctx);
        return;
    }
    pthread_mutex_lock(&pool.mu);
    while (pool.workers < n_threads - 1) { /* grow on demand; workers live until exit */
        pthread_t t;
        if (pthread_create(&t, NULL, pool_worker, NULL) != 0) break;
        pthread_detach(t);
        pool.workers++;
    }
    pool.fn = fn;
    pool.ctx = ctx;
    pool.n = n;
    pool.parts = n_threads;
    pool.next = pool.finished = 0;
    pool.generation++;
    pthread_cond_broadcast(&pool.work);
    pool_drain(); /* the caller works too; with no workers it does everything */
    while (pool.finished < pool.parts) pthread_cond_wait(&pool.done, &pool.mu);
    pool.fn = NULL;
    pthread_mutex_unlock(&pool.mu);
    pthread_mutex_unlock(&pool.submit);
}
