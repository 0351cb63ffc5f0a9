/* MuJoCo locomotion throughput (tasks/mujoco, specs/mujoco.md).
 *
 * 1. Loop overhead, per environment, one thread: the task's step (ctrl, frame_skip mj_steps, mj_rnePostConstraint
 *    where cfrc_ext is read, observation, reward, health) against a bare loop of the same mj_steps on the same
 *    model from the same state with the same actions (action j at step t = 0.8 sin(0.37 t + 1.3 j) times the
 *    control range), T steps, no termination, reset noise 0. Reported: physics steps/s of both and their ratio
 *    (spec target: the task keeps >= 90% of bare mj_step throughput).
 * 2. Population rollout: evo_sim_evaluate of P = 64 members x 1 episode x 1000 steps on Hopper (termination off,
 *    so every episode runs 1000 steps: the work is fixed) with a linear policy (ARS's) and with a 64-64 tanh MLP,
 *    on 1 task thread and on every core. bench/evotorch_peers.py times the same generation with EvoTorch's GymNE on
 *    Gymnasium's Hopper-v5 (MuJoCo 3.x from PyPI) in one run with this program (bench/run_mujoco_peers.sh).
 *
 * Usage: bench_mujoco [--quick] [--csv] [--runs N] [--warmup N] [--threads N] */
#include <omp.h>
#pragma GCC diagnostic ignored "-Wunused-function"
#include "bench_util.h"
#include "evoc/policy.h"
#include "evoc/sim.h"
#include "evoc/task.h"
#include "mujoco/mj_impl.h"

static float action_at(int t, int j, double range) { return (float)(0.8 * range * sin(0.37 * t + 1.3 * j)); }

static evo_task *make_task(const char *env, int terminate) {
  char y[160];
  snprintf(y, sizeof y, "env: %s\nreset_noise_scale: 0\nmax_steps: 1000000000\nterminate_when_unhealthy: %s\n", env,
           terminate ? "true" : "false");
  evo_config *doc;
  evo_task *t;
  if (evo_config_parse(y, "bench", &doc) != EVO_STATUS_OK) bench_die("config");
  if (evo_task_new_builtin("mujoco", evo_config_root(doc), NULL, &t) != EVO_STATUS_OK) bench_die(evo_last_error());
  evo_config_free(doc);
  return t;
}

/* Bare mj_step loop: physics steps per second. */
static double bare_rate(const evo_mj_env *e, int T) {
  mjModel *m;
  if (evo_mj_model_load(e->model, &m) != EVO_STATUS_OK) bench_die(evo_last_error());
  mjData *d = mj_makeData(m);
  mj_forward(m, d);
  const double t0 = bench_now();
  for (int t = 0; t < T; t++) {
    for (int j = 0; j < m->nu; j++) d->ctrl[j] = action_at(t, j, m->actuator_ctrlrange[2 * j + 1]);
    for (int f = 0; f < e->frame_skip; f++) mj_step(m, d);
  }
  const double rate = (double)T * e->frame_skip / (bench_now() - t0);
  mj_deleteData(d);
  mj_deleteModel(m);
  return rate;
}

static double task_rate(const evo_mj_env *e, int T) {
  evo_task *task = make_task(e->name, 0);
  mjModel *m;
  if (evo_mj_model_load(e->model, &m) != EVO_STATUS_OK) bench_die(evo_last_error());
  float *obs = malloc(sizeof(float) * (size_t)e->obs_dim), *a = malloc(sizeof(float) * (size_t)m->nu), r;
  uint8_t done;
  evo_key k = evo_key_from_seed(1);
  if (evo_task_reset(task, 1, &k, obs) != EVO_STATUS_OK) bench_die("reset");
  const double t0 = bench_now();
  for (int t = 0; t < T; t++) {
    for (int j = 0; j < m->nu; j++) a[j] = action_at(t, j, m->actuator_ctrlrange[2 * j + 1]);
    if (evo_task_step(task, a, obs, &r, &done) != EVO_STATUS_OK) bench_die("step");
  }
  const double rate = (double)T * e->frame_skip / (bench_now() - t0);
  free(obs), free(a);
  mj_deleteModel(m);
  evo_task_free(task);
  return rate;
}

/* One generation of P x 1000 steps: median seconds over runs. */
static double population(evo_backend *be, int hidden, int task_threads, int runs, int warmup, double *steps) {
  enum { P = 64 };
  evo_task *task = make_task("hopper", 0);
  const evo_task_spec *ts = evo_task_get_spec(task);
  evo_policy_io io = {.obs_ndim = 1, .obs_shape = {ts->obs_shape[0]}, .act_ndim = 1, .act_shape = {ts->act_shape[0]}};
  evo_policy_mlp_params mp = evo_policy_mlp_default_params();
  mp.n_hidden = hidden ? 2 : 0;
  mp.output = hidden ? EVO_POLICY_OUT_TANH : EVO_POLICY_OUT_LINEAR;
  evo_policy *pol;
  if (evo_policy_mlp_new(&mp, &io, &pol) != EVO_STATUS_OK) bench_die("policy");
  const int64_t d = evo_policy_num_params(pol);
  float *pop = malloc(sizeof(float) * (size_t)(P * d)), fit[P];
  for (int i = 0; i < P; i++) evo_rng_fill_uniform(evo_key_fold_in(evo_key_from_seed(3), (uint32_t)i), pop + i * d, d,
                                                   -0.1f, 0.1f);
  evo_sim_params sp = evo_sim_default_params();
  sp.max_steps = 1000;
  sp.task_threads = task_threads;
  evo_sim *sim;
  if (evo_sim_new(task, pol, be, &sp, &sim) != EVO_STATUS_OK) bench_die(evo_last_error());
  evo_key key = evo_key_from_seed(7);
  for (int i = 0; i < warmup; i++)
    if (evo_sim_evaluate(sim, pop, P, 0, evo_key_fold_in(key, (uint32_t)i), fit)) bench_die(evo_last_error());
  evo_sim_stats s0, s1;
  evo_sim_stats_get(sim, &s0);
  double *t = malloc(sizeof(double) * (size_t)runs);
  for (int i = 0; i < runs; i++) {
    const double t0 = bench_now();
    if (evo_sim_evaluate(sim, pop, P, 0, evo_key_fold_in(key, (uint32_t)(100 + i)), fit)) bench_die("evaluate");
    t[i] = bench_now() - t0;
  }
  evo_sim_stats_get(sim, &s1);
  *steps = (double)(s1.env_steps - s0.env_steps) / runs;
  const double med = bench_median(t, runs);
  free(t), free(pop);
  evo_sim_free(sim);
  evo_policy_free(pol);
  evo_task_free(task);
  return med;
}

int main(int argc, char **argv) {
  bench_opts o = bench_parse(argc, argv);
  const int T = o.quick ? 300 : 3000, runs = o.runs > 0 ? o.runs : (o.quick ? 1 : 5);
  const int warmup = o.warmup >= 0 ? o.warmup : 1;
  if (!o.csv) printf("MuJoCo loop overhead, one thread, %d task steps: physics steps/s\n%-12s %12s %12s %7s\n", T,
                     "env", "bare mj_step", "evoc task", "ratio");
  for (int i = 0; evo_mj_envs[i]; i++) {
    const evo_mj_env *e = evo_mj_envs[i];
    const double bare = bare_rate(e, T), task = task_rate(e, T), bare2 = bare_rate(e, T);
    const double b = bare > bare2 ? bare : bare2; /* the better of two bare runs around the task run */
    if (o.csv) {
      printf("evoc,mujoco_loop_%s_bare,%d steps one thread (MuJoCo %s),%d,,,%.6g\n", e->name, T, mj_versionString(),
             T * e->frame_skip, b);
      printf("evoc,mujoco_loop_%s,%d steps one thread,%d,,,%.6g\n", e->name, T, T * e->frame_skip, task);
    } else printf("%-12s %12.0f %12.0f %6.1f%%\n", e->name, b, task, 100 * task / b);
  }
  evo_backend *be = bench_backend(&o);
  const int cores = omp_get_num_procs();
  if (!o.csv) printf("\nHopper population rollout: P = 64 x 1 episode x 1000 steps (termination off), env steps/s\n");
  for (int hidden = 0; hidden <= 1; hidden++)
    for (int tt = 1; tt <= cores; tt = tt == cores ? cores + 1 : cores) {
      double steps;
      const double s = population(be, hidden, tt, runs, warmup, &steps);
      const char *pol = hidden ? "mlp64x64" : "linear";
      if (o.csv) printf("evoc,mujoco_pop_hopper_%s_t%d,P=64x1000 steps,%.0f,%.4f,%.4f,%.6g\n", pol, tt, steps,
                        1e3 * s, 1e3 * s, steps / s);
      else printf("  %-9s policy, %d task thread%s: %.0f ms per generation, %.3g env steps/s (%.0f steps)\n", pol,
                  tt, tt > 1 ? "s" : "", 1e3 * s, steps / s, steps);
    }
  evo_backend_free(be);
  return 0;
}
