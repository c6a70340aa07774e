/* sq_parallel_for: loops split into fixed contiguous chunks, run on a pool
 * of persistent workers (or fresh threads when the pool is busy). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "squish/codec.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

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
 * token decoding (about 33 per token, each a few microseconds) pay neither
 * for thread creation nor for a futex round trip each. A loop is cut into
 * the same chunks as parallel_spawn would use and each chunk runs on one
 * thread, so results do not depend on which thread takes which chunk.
 *
 * The current loop is one atomic word, ticket = generation << 32 | chunks
 * << 16 | next chunk: a thread takes a chunk by a compare-and-swap of it, so
 * a worker that wakes late can never take a chunk of a later loop. Workers
 * and the waiting caller spin (pause) for a bounded time before they block
 * on a condition variable, so the back-to-back loops of a forward pass
 * hand work over without system calls, and an idle pool sleeps. */
static struct {
    pthread_mutex_t mu, submit;
    pthread_cond_t work, done;
    int workers;
    _Atomic uint64_t ticket;
    _Atomic int finished;      /* chunks of the current loop done */
    _Atomic int sleepers;      /* workers blocked (or about to block) on work */
    _Atomic int caller_sleeps; /* the caller is blocked (or about to block) on done */
    /* the current loop; written before the ticket is published, read after a chunk is taken */
    void (*fn)(void *, uint64_t, uint64_t);
    void *ctx;
    uint64_t n;
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0, 0, NULL, NULL, 0};
static __thread int in_pool_worker;

#define T_NEXT(t) ((int)((t)&0xffff))
#define T_PARTS(t) ((int)(((t) >> 16) & 0xffff))

/* How long a thread spins before it blocks: SQUISH_SPIN_US microseconds
 * (default 100: longer than the gaps between the loops of a decode step,
 * short enough that an idle pool costs nothing measurable; 0 blocks at once). */
static long spin_ns(void) {
    static _Atomic long cached = -1;
    long v = atomic_load_explicit(&cached, memory_order_relaxed);
    if (v < 0) {
        const char *e = getenv("SQUISH_SPIN_US");
        char *end;
        long us = e ? strtol(e, &end, 10) : 100;
        if (!e || *end || us < 0 || us > 1000000) us = 100;
        v = us * 1000;
        atomic_store_explicit(&cached, v, memory_order_relaxed);
    }
    return v;
}

static long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000000000L + ts.tv_nsec;
}

/* Spins until cond(arg) holds or the spin time is over; returns whether it holds. */
static int spin_until(int (*cond)(uint64_t), uint64_t arg) {
    const long budget = spin_ns();
    if (budget == 0) return cond(arg);
    long start = 0;
    for (unsigned i = 0;; i++) {
        if (cond(arg)) return 1;
        cpu_relax();
        if ((i & 63) == 63) { /* a clock read every 64 pauses */
            long t = now_ns();
            if (!start) start = t;
            else if (t - start > budget) return cond(arg);
        }
    }
}

static int ticket_moved(uint64_t seen) { return atomic_load(&pool.ticket) != seen; }
static int loop_done(uint64_t parts) { return atomic_load(&pool.finished) >= (int)parts; }

/* Takes and runs chunks of the loop that ticket t belongs to until none is
 * left; returns the last ticket seen. */
static uint64_t pool_drain(uint64_t t) {
    for (;;) {
        const int i = T_NEXT(t), parts = T_PARTS(t);
        if (i >= parts) return t;
        if (!atomic_compare_exchange_weak(&pool.ticket, &t, t + 1)) continue; /* t reloaded */
        pool.fn(pool.ctx, pool.n * (uint64_t)i / (uint64_t)parts, pool.n * (uint64_t)(i + 1) / (uint64_t)parts);
        if (atomic_fetch_add(&pool.finished, 1) + 1 == parts && atomic_load(&pool.caller_sleeps)) {
            pthread_mutex_lock(&pool.mu);
            pthread_cond_signal(&pool.done);
            pthread_mutex_unlock(&pool.mu);
        }
        t = atomic_load(&pool.ticket);
    }
}

static void *pool_worker(void *arg) {
    (void)arg;
    in_pool_worker = 1;
    uint64_t t = atomic_load(&pool.ticket);
    for (;;) {
        t = pool_drain(t);
        if (!spin_until(ticket_moved, t)) {
            pthread_mutex_lock(&pool.mu);
            atomic_fetch_add(&pool.sleepers, 1); /* then the ticket is read: the submitter sees one or the other */
            while (atomic_load(&pool.ticket) == t) pthread_cond_wait(&pool.work, &pool.mu);
            atomic_fetch_sub(&pool.sleepers, 1);
            pthread_mutex_unlock(&pool.mu);
        }
        t = atomic_load(&pool.ticket);
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
    while (pool.workers < n_threads - 1) { /* grow on demand; workers live until exit */
        pthread_t t;
        if (pthread_create(&t, NULL, pool_worker, NULL) != 0) break;
        pthread_detach(t);
        pool.workers++;
    }
    pool.fn = fn;
    pool.ctx = ctx;
    pool.n = n;
    atomic_store(&pool.finished, 0);
    const uint64_t gen = (atomic_load(&pool.ticket) >> 32) + 1;
    uint64_t t = gen << 32 | (uint64_t)n_threads << 16;
    atomic_store(&pool.ticket, t); /* publishes the loop; then sleepers is read */
    if (atomic_load(&pool.sleepers)) {
        pthread_mutex_lock(&pool.mu);
        pthread_cond_broadcast(&pool.work);
        pthread_mutex_unlock(&pool.mu);
    }
    pool_drain(t); /* the caller works too; with no workers it does everything */
    if (!spin_until(loop_done, (uint64_t)n_threads)) {
        pthread_mutex_lock(&pool.mu);
        atomic_store(&pool.caller_sleeps, 1); /* then finished is read: the last worker sees one or the other */
        while (atomic_load(&pool.finished) < n_threads) pthread_cond_wait(&pool.done, &pool.mu);
        atomic_store(&pool.caller_sleeps, 0);
        pthread_mutex_unlock(&pool.mu);
    }
    pthread_mutex_unlock(&pool.submit);
}
