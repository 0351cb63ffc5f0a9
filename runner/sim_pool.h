/* Internal: the simulation's task threads, a small pthread pool that runs the chunks of one job on its workers and
   on the calling thread. The caller claims chunks too and never waits for a worker that has not started one, so a
   slow-to-wake (or descheduled) worker costs nothing but the chunk it did not take. */
#ifndef EVOC_SIM_POOL_H
#define EVOC_SIM_POOL_H

typedef struct evo_sim_pool evo_sim_pool;

/* A pool of n_threads - 1 workers (the caller is the last thread). NULL when n_threads < 2 or on failure: run
   then executes every chunk on the caller. */
evo_sim_pool *evo_sim_pool_new(int n_threads);
void evo_sim_pool_free(evo_sim_pool *p);
/* fn(ctx, c) once for every c in [0, n_chunks), each on some thread; returns when all have returned. Jobs run one
   at a time (one caller). */
void evo_sim_pool_run(evo_sim_pool *p, int n_chunks, void (*fn)(void *ctx, int chunk), void *ctx);

#endif
