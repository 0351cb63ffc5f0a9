/* The simulation's task-thread pool (sim_pool.h). A job is published under the mutex with a new generation; chunks
   are claimed with a CAS on one 64-bit word (generation << 32 | next chunk), so a worker still looping on an old
   job can never take a chunk of a new one; the caller waits only until every claimed chunk has finished. */
#include "sim_pool.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

struct evo_sim_pool {
  pthread_mutex_t mu;
  pthread_cond_t wake; /* workers: a new job, or stop */
  pthread_cond_t done; /* caller: the job's last chunk finished */
  pthread_t *th;
  int n_workers;
  bool stop;
  uint32_t gen; /* the job (under mu) */
  void (*fn)(void *, int);
  void *ctx;
  int n_chunks;
  _Atomic uint64_t claim;  /* gen << 32 | next chunk */
  _Atomic int finished;    /* chunks of the current job finished */
};

static bool pool_claim(evo_sim_pool *p, uint32_t gen, int n_chunks, int *chunk) {
  uint64_t cur = atomic_load(&p->claim);
  for (;;) {
    if ((uint32_t)(cur >> 32) != gen || (int)(uint32_t)cur >= n_chunks) return false;
    if (atomic_compare_exchange_weak(&p->claim, &cur, cur + 1)) {
      *chunk = (int)(uint32_t)cur;
      return true;
    }
  }
}

static void pool_work(evo_sim_pool *p, uint32_t gen, void (*fn)(void *, int), void *ctx, int n_chunks) {
  int c;
  while (pool_claim(p, gen, n_chunks, &c)) {
    fn(ctx, c);
    if (atomic_fetch_add(&p->finished, 1) + 1 == n_chunks) {
      pthread_mutex_lock(&p->mu);
      pthread_cond_signal(&p->done);
      pthread_mutex_unlock(&p->mu);
    }
  }
}

static void *pool_worker(void *arg) {
  evo_sim_pool *p = arg;
  pthread_mutex_lock(&p->mu);
  uint32_t seen = p->gen;
  for (;;) {
    while (!p->stop && p->gen == seen) pthread_cond_wait(&p->wake, &p->mu);
    if (p->stop) break;
    seen = p->gen;
    void (*fn)(void *, int) = p->fn;
    void *ctx = p->ctx;
    int n = p->n_chunks;
    pthread_mutex_unlock(&p->mu);
    pool_work(p, seen, fn, ctx, n);
    pthread_mutex_lock(&p->mu);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

evo_sim_pool *evo_sim_pool_new(int n_threads) {
  if (n_threads < 2) return NULL;
  evo_sim_pool *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->th = calloc((size_t)n_threads - 1, sizeof *p->th);
  if (!p->th || pthread_mutex_init(&p->mu, NULL)) {
    free(p->th), free(p);
    return NULL;
  }
  pthread_cond_init(&p->wake, NULL);
  pthread_cond_init(&p->done, NULL);
  atomic_init(&p->claim, 0);
  atomic_init(&p->finished, 0);
  for (int i = 0; i < n_threads - 1; i++, p->n_workers++)
    if (pthread_create(&p->th[i], NULL, pool_worker, p)) break; /* fewer workers still work */
  if (p->n_workers == 0) {
    evo_sim_pool_free(p);
    return NULL;
  }
  return p;
}

void evo_sim_pool_free(evo_sim_pool *p) {
  if (!p) return;
  pthread_mutex_lock(&p->mu);
  p->stop = true;
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->mu);
  for (int i = 0; i < p->n_workers; i++) pthread_join(p->th[i], NULL);
  pthread_cond_destroy(&p->wake);
  pthread_cond_destroy(&p->done);
  pthread_mutex_destroy(&p->mu);
  free(p->th);
  free(p);
}

void evo_sim_pool_run(evo_sim_pool *p, int n_chunks, void (*fn)(void *ctx, int chunk), void *ctx) {
  if (!p || n_chunks < 2) {
    for (int c = 0; c < n_chunks; c++) fn(ctx, c);
    return;
  }
  pthread_mutex_lock(&p->mu);
  uint32_t gen = ++p->gen;
  p->fn = fn, p->ctx = ctx, p->n_chunks = n_chunks;
  atomic_store(&p->finished, 0);
  atomic_store(&p->claim, (uint64_t)gen << 32);
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->mu);
  pool_work(p, gen, fn, ctx, n_chunks);
  pthread_mutex_lock(&p->mu);
  while (atomic_load(&p->finished) < n_chunks) pthread_cond_wait(&p->done, &p->mu);
  pthread_mutex_unlock(&p->mu);
}
