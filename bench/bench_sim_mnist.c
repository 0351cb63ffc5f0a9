/* Simulation manager throughput on MNIST (EvoJAX framing, Fashion-MNIST from the Debian package
 * dataset-fashion-mnist): one generation = evo_sim_evaluate of P = 64 members on the same batch of 1024 training
 * images (common random numbers; one step per episode) with the EvoJAX ConvNet (11,274 parameters):
 * task reset (sample and fill the batch), the population forward, and the reward (mean log-likelihood).
 *
 * Reported per generation (median of `runs` after `warmup` untimed generations, each timed alone with
 * CLOCK_MONOTONIC): ms and images/s = 64 * 1024 / time; GFLOP/s from the forward's FLOPs (bench_cnn_pop.c's
 * formula: 1,583,680 per image). bench/evojax_peers.py times the same workload with EvoJAX's SimManager.
 *
 * Usage: bench_sim_mnist [--quick] [--csv] [--runs N] [--warmup N] [--threads N] [--chunk N] [--budget MB]
 *   --chunk N    members per population plan (evo_sim_params.chunk_members; 0 = auto, the default)
 *   --budget MB  memory budget of the auto chunking (evo_sim_params.max_plan_mb)
 * Skips (exit 0, a message on stderr) when the Fashion-MNIST files are not installed.
 */
#include <omp.h>
/* bench_util.h is header-only; these programs use its options and clock but not its per-plan FLOP table. */
#pragma GCC diagnostic ignored "-Wunused-function"
#include "bench_util.h"
#include "evoc/mnist.h"
#include "evoc/policy.h"
#include "evoc/sim.h"
#include "evoc/task.h"

enum { POP = 64, BATCH = 1024 };

int main(int argc, char **argv) {
  int chunk = 0, budget = 0, argc2 = 1;
  for (int i = 1; i < argc; i++) { /* strip our own flags before bench_parse */
    if (!strcmp(argv[i], "--chunk") && i + 1 < argc) chunk = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--budget") && i + 1 < argc) budget = atoi(argv[++i]);
    else argv[argc2++] = argv[i];
  }
  bench_opts o = bench_parse(argc2, argv);
  evo_backend *be = bench_backend(&o);
  evo_task_args ta = {be, EVO_TASK_TRAIN, 0};
  evo_task *task;
  if (evo_task_new_builtin("mnist", NULL, &ta, &task) != EVO_STATUS_OK) {
    fprintf(stderr, "bench_sim_mnist: skipped: %s\n", evo_last_error());
    evo_backend_free(be);
    return 0;
  }
  const evo_task_spec *ts = evo_task_get_spec(task);
  evo_policy_io io = {.obs_ndim = ts->obs_ndim, .act_ndim = ts->act_ndim};
  memcpy(io.obs_shape, ts->obs_shape, sizeof io.obs_shape);
  memcpy(io.act_shape, ts->act_shape, sizeof io.act_shape);
  evo_policy_cnn_params cp = evo_policy_cnn_default_params(); /* evojax_convnet */
  evo_policy *pol;
  if (evo_policy_cnn_new(&cp, &io, &pol) != EVO_STATUS_OK) bench_die("policy");
  int64_t d = evo_policy_num_params(pol);
  float *pop = malloc(sizeof(float) * (size_t)(POP * d)), *noise = malloc(sizeof(float) * (size_t)d);
  float fit[POP];
  if (!pop || !noise) bench_die("malloc");
  if (evo_policy_init(pol, evo_key_from_seed(1), pop) != EVO_STATUS_OK) bench_die("init");
  for (int i = 0; i < POP; i++) { /* PGPE-like population around the initialisation */
    evo_rng_fill_normal(evo_key_fold_in(evo_key_from_seed(2), (uint32_t)i), noise, d);
    for (int64_t j = 0; j < d; j++) pop[(int64_t)i * d + j] = pop[j] + 0.039f * noise[j];
  }
  evo_sim_params sp = evo_sim_default_params();
  sp.chunk_members = chunk;
  if (budget > 0) sp.max_plan_mb = budget;
  evo_sim *sim;
  if (evo_sim_new(task, pol, be, &sp, &sim) != EVO_STATUS_OK) bench_die("evo_sim_new");
  int runs = o.runs > 0 ? o.runs : (o.quick ? 2 : 5), warmup = o.warmup >= 0 ? o.warmup : 1;
  evo_key key = evo_key_from_seed(7);
  for (int i = 0; i < warmup; i++)
    if (evo_sim_evaluate(sim, pop, POP, 0, evo_key_fold_in(key, (uint32_t)i), fit)) bench_die("evaluate");
  double *t = malloc(sizeof(double) * (size_t)runs);
  for (int i = 0; i < runs; i++) {
    double t0 = bench_now();
    if (evo_sim_evaluate(sim, pop, POP, 0, evo_key_fold_in(key, (uint32_t)(100 + i)), fit)) bench_die("evaluate");
    t[i] = bench_now() - t0;
  }
  double mn = t[0];
  for (int i = 1; i < runs; i++) mn = t[i] < mn ? t[i] : mn;
  double med = bench_median(t, runs), images = (double)POP * BATCH, mean_fit = 0;
  for (int i = 0; i < POP; i++) mean_fit += fit[i] / POP;
  evo_sim_info info;
  evo_sim_info_get(sim, &info);
  if (o.csv) {
    printf("evoc,sim_mnist,P=64 x 1024 images EvoJAX ConvNet,%.0f,%.4f,%.4f,%.6g\n", images, 1e3 * med, 1e3 * mn,
           images / med);
  } else {
    printf("MNIST (Fashion-MNIST), simulation manager: P = %d members x %d images, EvoJAX ConvNet, %d threads\n",
           POP, BATCH, omp_get_max_threads());
    printf("  plan: %d members per chunk, %s observations, %.0f MiB\n", info.chunk_members,
           info.shared_obs ? "shared" : "per-member", (double)info.plan_bytes / (1024.0 * 1024.0));
    printf("  time per generation: median %.1f ms, min %.1f ms (%d runs); %.0f images/s, %.1f GFLOP/s; "
           "mean fitness %.3f\n", 1e3 * med, 1e3 * mn, runs, images / med, images * 1583680.0 / med / 1e9,
           mean_fit);
  }
  free(t), free(pop), free(noise);
  evo_sim_free(sim);
  evo_policy_free(pol);
  evo_task_free(task);
  evo_backend_free(be);
  return 0;
}
