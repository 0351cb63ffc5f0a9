/* Simulation manager throughput on CartPole swing-up (EvoJAX's benchmark workload).
 *
 * One generation = evo_sim_evaluate of P = 64 members x 16 repeats (common random numbers) with the 5-64-64-1
 * tanh MLP, max_steps 1000: 64 * 16 = 1024 episodes in lockstep, one jitted population forward and one batched
 * task step per time step. The parameters are the policy's LeCun-normal initialisation plus N(0, 0.1) noise per
 * member (an early-training population: most swing-up episodes run all 1000 steps; the table reports the steps
 * that were actually simulated).
 *
 * Reported per generation (median of `runs`, after `warmup` untimed generations, each timed alone with
 * CLOCK_MONOTONIC): ms, and environment steps per second = 64 * 16 * 1000 / time (the nominal workload, as
 * EvoJAX's SimManager always runs max_steps on CPU), plus the steps the sim actually stepped (alive episodes).
 * bench/evojax_peers.py times the same workload with EvoJAX's SimManager.eval_params.
 *
 * Usage: bench_sim_cartpole [--quick] [--csv] [--runs N] [--warmup N] [--threads N] [--device D]
 *                           [--task-threads N] [--hard] [--profile]
 *        --device cuda: CartPole steps on the GPU and the simulation's loop stays on the device (sim.h);
 *        --threads N: the CPU backend's OpenMP threads (policy forward); --task-threads N: the simulation's task
 *        threads (evo_sim_params.task_threads; default 0 = the number of cores);
 *        --profile: also time the phases of one generation (policy forward, task step, the sim's own loop) by
 *        running them separately on the same shapes.
 */
#include <omp.h>
/* bench_util.h is header-only; these programs use its options and clock but not its per-plan FLOP table. */
#pragma GCC diagnostic ignored "-Wunused-function"
#include "bench_util.h"
#include "evoc/policy.h"
#include "evoc/sim.h"
#include "evoc/task.h"

enum { POP = 64, REPS = 16, STEPS = 1000 };

static void make_population(const evo_policy *pol, float *pop, int64_t d) {
  if (evo_policy_init(pol, evo_key_from_seed(1), pop) != EVO_STATUS_OK) bench_die("evo_policy_init");
  float *noise = malloc(sizeof(float) * (size_t)d);
  if (!noise) bench_die("malloc");
  for (int i = 0; i < POP; i++) {
    evo_rng_fill_normal(evo_key_fold_in(evo_key_from_seed(2), (uint32_t)i), noise, d);
    for (int64_t j = 0; j < d; j++) pop[(int64_t)i * d + j] = pop[j] + 0.1f * noise[j];
  }
  free(noise);
}

/* Phase timing: the jitted population forward alone (same shapes), and the task step alone, x STEPS. */
static void profile(evo_backend *be, evo_task *task, const evo_policy *pol, const float *pop, int64_t d) {
  evo_graph *g;
  evo_plan *p;
  if (evo_policy_population_graph(pol, POP, REPS, false, &g) != EVO_STATUS_OK) bench_die("population graph");
  if (evo_jit(g, be, &p) != EVO_STATUS_OK) bench_die("evo_jit");
  evo_tensor *in[2] = {evo_tensor_from_host(be, EVO_F32, 2, (int64_t[]){POP, d}, pop),
                       bench_tensor(be, 3, (int64_t[]){POP, REPS, 5}, 3, -1.f, 1.f)};
  evo_tensor *out[1];
  bench_outputs_for(be, g, out);
  bench_result fwd = bench_time_plan(p, in, out, 20, 200, 2.0 * POP * REPS * (5 * 64 + 64 * 64 + 64));
  const int64_t E = POP * REPS;
  evo_key *keys = malloc(sizeof *keys * E);
  float *obs = malloc(sizeof(float) * 5 * E), *act = malloc(sizeof(float) * E), *rew = malloc(sizeof(float) * E);
  uint8_t *done = malloc((size_t)E);
  if (!keys || !obs || !act || !rew || !done) bench_die("malloc");
  for (int64_t e = 0; e < E; e++) keys[e] = evo_key_fold_in(evo_key_from_seed(5), (uint32_t)e), act[e] = 0.3f;
  if (evo_task_reset(task, E, keys, obs) != EVO_STATUS_OK) bench_die("reset");
  double t0 = bench_now();
  for (int t = 0; t < STEPS; t++)
    if (evo_task_step(task, act, obs, rew, done) != EVO_STATUS_OK) bench_die("step");
  double step_ms = 1e3 * (bench_now() - t0);
  printf("profile (per generation of %d steps): policy forward %.1f ms (%.1f us/step, %.1f GFLOP/s), "
         "task step %.2f ms (%.2f us/step; episodes frozen once done)\n",
         STEPS, fwd.median_ms * STEPS, fwd.median_ms * 1e3, fwd.gflops, step_ms, step_ms * 1e3 / STEPS);
  free(keys), free(obs), free(act), free(rew), free(done);
  evo_tensor_free(in[0]), evo_tensor_free(in[1]), evo_tensor_free(out[0]);
  evo_plan_free(p);
  evo_graph_free(g);
}

int main(int argc, char **argv) {
  int hard = 0, prof = 0, task_threads = 0;
  int argc2 = 1; /* strip our own flags before bench_parse */
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--hard")) hard = 1;
    else if (!strcmp(argv[i], "--profile")) prof = 1;
    else if (!strcmp(argv[i], "--task-threads") && i + 1 < argc) task_threads = atoi(argv[++i]);
    else argv[argc2++] = argv[i];
  }
  bench_opts o = bench_parse(argc2, argv);
  evo_backend *be = bench_backend(&o);
  evo_config *doc;
  if (evo_config_parse(hard ? "variant: hard\n" : "variant: easy\n", "bench", &doc) != EVO_STATUS_OK)
    bench_die("evo_config_parse");
  evo_cfg *cfg = evo_config_root(doc);
  evo_task_args ta = {be, EVO_TASK_TRAIN, 0};
  evo_task *task;
  if (evo_task_new_builtin("cartpole_swingup", cfg, &ta, &task) != EVO_STATUS_OK) bench_die("task");
  const evo_task_spec *ts = evo_task_get_spec(task);
  evo_policy_io io = {.obs_ndim = 1, .obs_shape = {ts->obs_shape[0]}, .act_ndim = 1, .act_shape = {1}};
  evo_policy *pol;
  evo_policy_mlp_params mp = evo_policy_mlp_default_params(); /* 64, 64, tanh; tanh head */
  if (evo_policy_mlp_new(&mp, &io, &pol) != EVO_STATUS_OK) bench_die("policy");
  int64_t d = evo_policy_num_params(pol);
  float *pop = malloc(sizeof(float) * (size_t)(POP * d));
  float fit[POP];
  if (!pop) bench_die("malloc");
  make_population(pol, pop, d);

  evo_sim_params sp = evo_sim_default_params();
  sp.n_repeats = REPS;
  sp.task_threads = task_threads;
  evo_sim *sim;
  if (evo_sim_new(task, pol, be, &sp, &sim) != EVO_STATUS_OK) bench_die("evo_sim_new");
  int runs = o.runs > 0 ? o.runs : (o.quick ? 3 : 10), warmup = o.warmup >= 0 ? o.warmup : 1;
  evo_key key = evo_key_from_seed(7);
  for (int i = 0; i < warmup; i++)
    if (evo_sim_evaluate(sim, pop, POP, 0, evo_key_fold_in(key, (uint32_t)i), fit)) bench_die("evaluate");
  evo_sim_stats s0, s1;
  evo_sim_stats_get(sim, &s0);
  double *t = malloc(sizeof(double) * (size_t)runs);
  for (int i = 0; i < runs; i++) {
    double t0 = bench_now();
    if (evo_sim_evaluate(sim, pop, POP, 0, evo_key_fold_in(key, (uint32_t)(100 + i)), fit)) bench_die("evaluate");
    t[i] = bench_now() - t0;
  }
  evo_sim_stats_get(sim, &s1);
  evo_sim_info info;
  evo_sim_info_get(sim, &info);
  double mn = t[0];
  for (int i = 1; i < runs; i++) mn = t[i] < mn ? t[i] : mn;
  double med = bench_median(t, runs);
  double nominal = (double)POP * REPS * STEPS, actual = (double)(s1.env_steps - s0.env_steps) / runs;
  double iters = (double)(s1.batch_steps - s0.batch_steps) / runs;
  double mean_fit = 0;
  for (int i = 0; i < POP; i++) mean_fit += fit[i] / POP;
  const char *wl = hard ? "sim_cartpole_hard" : "sim_cartpole";
  if (o.csv) {
    printf("evoc,%s,P=64x16 reps x 1000 steps MLP 5-64-64-1 task_threads=%d,%.0f,%.4f,%.4f,%.6g\n", wl,
           task_threads, nominal, 1e3 * med, 1e3 * mn, nominal / med);
  } else {
    printf("CartPole swing-up (%s), simulation manager: P = %d x %d repeats x %d steps, MLP 5-64-64-1 tanh, "
           "%d threads, task threads %d%s, %s\n", hard ? "hard" : "easy", POP, REPS, STEPS, omp_get_max_threads(),
           info.task_threads, task_threads > 0 ? "" : " (default: cores)",
           info.on_device ? "rollouts on the device" : "rollouts on the host");
    printf("  time per generation: median %.1f ms, min %.1f ms (%d runs)\n", 1e3 * med, 1e3 * mn, runs);
    printf("  env steps/s: %.3g nominal (64*16*1000 / time); lockstep iterations per generation %.0f (of %d); "
           "%.0f episode steps alive (%.3g/s); mean fitness %.1f\n", nominal / med, iters, STEPS, actual,
           actual / med, mean_fit);
  }
  if (prof && evo_backend_is_host(be)) profile(be, task, pol, pop, d);
  else if (prof) printf("profile: host backends only (its task step passes host buffers)\n");
  free(t);
  free(pop);
  evo_sim_free(sim);
  evo_policy_free(pol);
  evo_task_free(task);
  evo_config_free(doc);
  evo_backend_free(be);
  return 0;
}
