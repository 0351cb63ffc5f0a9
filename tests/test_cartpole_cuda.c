/* CartPole on CUDA (tasks/cartpole_cuda.cu) against the CPU path, and the simulation's device loop
   (runner/sim_device.c) against its host loop. The GPU tests skip (with the reason) when no CUDA device is usable;
   the CPU-side checks of what makes both paths agree (the shared sin/cos, resets from the counter-based RNG) run
   everywhere.

   Why bit-level agreement is expected: a 1-ulp difference in one sin grows to ~0.1 in the state within 1000
   swing-up steps (the pole's motion is chaotic), so the physics avoids libm and FMA contraction on both sides
   (cartpole_physics.h). The trajectories are compared to 1e-4 as the tolerance, and the share of bit-identical
   values is printed. The simulation's comparison is looser: the policy's GEMMs round differently on the GPU. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../tasks/cartpole_physics.h"
#include "cuda_test_util.h"
#include "backend_impl.h"
#include "evoc/backend.h"
#include "evoc/config.h"
#include "evoc/policy.h"
#include "evoc/sim.h"
#include "evoc/task.h"

/* ---------------- CPU: the shared math ---------------- */

static double ulp_of(float v) { return fabs((double)nextafterf(v, INFINITY) - (double)v); }

Test(cartpole_cuda, sincos_correctly_rounded_and_symmetric) {
  const float scale[] = {4.0f, 60.0f, 2000.0f, 1.5e6f};
  uint32_t st = 12345u;
  int64_t n = 0, off = 0;
  for (int r = 0; r < 4; r++)
    for (int i = 0; i < 250000; i++, n++) {
      st = st * 1664525u + 1013904223u;
      float x = ((float)(st >> 8) * 5.9604644775390625e-8f * 2.0f - 1.0f) * scale[r], s, c, s2, c2;
      evo_cartpole_sincos(x, &s, &c);
      double ts = sin((double)x), tc = cos((double)x);
      cr_assert(fabs(s - ts) <= ulp_of((float)ts) && fabs(c - tc) <= ulp_of((float)tc),
                "x = %.9g: sin %.9g (want %.17g), cos %.9g (want %.17g)", x, s, ts, c, tc);
      off += (s != (float)ts) + (c != (float)tc);
      evo_cartpole_sincos(-x, &s2, &c2);
      cr_assert(s2 == -s && c2 == c, "x = %.9g: not odd/even", x);
    }
  cr_assert_leq(off, n / 100000, "%lld of %lld values not the correctly rounded float", (long long)off,
                (long long)(2 * n));
  float s, c;
  const float bad[] = {NAN, INFINITY, -INFINITY, 2e9f};
  for (int i = 0; i < 4; i++) {
    evo_cartpole_sincos(bad[i], &s, &c);
    cr_assert(isnan(s) && isnan(c), "sincos(%g) = %g, %g", bad[i], s, c);
  }
}

/* Resets come from the counter-based stream as evo_rng_uniform01 / evo_rng_normal(key, j) draw it (the normal is
   evaluated in double, which is more accurate than the float formula, so they differ in the last bits). */
Test(cartpole_cuda, initial_states_from_the_rng_stream) {
  enum { N = 2000 };
  evo_key keys[N];
  evo_key_split(evo_key_from_seed(5), N, keys);
  const float hard_scale[4] = {2.4f, 10.0f, EVO_CARTPOLE_PI / 2.0f, 10.0f};
  for (int i = 0; i < N; i++) {
    evo_cartpole_state b = evo_cartpole_initial(EVO_CARTPOLE_BALANCE, 0, keys[i].w[0], keys[i].w[1]);
    evo_cartpole_state h = evo_cartpole_initial(EVO_CARTPOLE_SWINGUP, 1, keys[i].w[0], keys[i].w[1]);
    evo_cartpole_state e = evo_cartpole_initial(EVO_CARTPOLE_SWINGUP, 0, keys[i].w[0], keys[i].w[1]);
    const float bv[4] = {b.x, b.x_dot, b.theta, b.theta_dot}, hv[4] = {h.x, h.x_dot, h.theta, h.theta_dot},
                ev[4] = {e.x, e.x_dot, e.theta, e.theta_dot};
    for (int j = 0; j < 4; j++) {
      float u = evo_rng_uniform01(keys[i].w, (uint64_t)j);
      cr_assert(bv[j] == -0.05f + 0.1f * u, "balance episode %d component %d", i, j);
      cr_assert(hv[j] == (u * 2.0f - 1.0f) * hard_scale[j] + (j == 2 ? EVO_CARTPOLE_PI : 0.0f),
                "hard episode %d component %d", i, j);
      float want = 0.2f * evo_rng_normal(keys[i].w, (uint64_t)j) + (j == 2 ? EVO_CARTPOLE_PI : 0.0f);
      /* the float Box-Muller rounds 2 pi u2 to float first: 0.2 * 5.8 * 4.8e-7 = 5.6e-7 off at most */
      cr_assert(fabsf(ev[j] - want) <= 6e-7f + 4.0f * (float)ulp_of(want), "easy episode %d component %d: %.9g vs %.9g",
                i, j, ev[j], want);
    }
  }
}

/* ---------------- GPU ---------------- */

static evo_task *task_on(evo_backend *be, const char *name, const char *yaml) {
  evo_config *doc = NULL;
  if (yaml) cr_assert_eq(evo_config_parse(yaml, "test", &doc), EVO_STATUS_OK, "%s", evo_last_error());
  evo_task_args a = {be, EVO_TASK_TRAIN, 0};
  evo_task *t;
  evo_status st = evo_task_new_builtin(name, doc ? evo_config_root(doc) : NULL, &a, &t);
  evo_config_free(doc);
  cr_assert_eq(st, EVO_STATUS_OK, "%s", evo_last_error());
  return t;
}

static evo_tensor *dev_tensor(evo_backend *be, evo_dtype dt, int64_t d0, int64_t d1) {
  evo_tensor *t = evo_tensor_new(be, dt, d1 ? 2 : 1, (int64_t[]){d0, d1});
  cr_assert(t, "%s", evo_last_error());
  return t;
}

/* N episodes for 1000 steps with the same random actions on both backends. */
static void trajectory_case(evo_backend *gpu, const char *name, const char *yaml) {
  enum { N = 1024, T = 1000 };
  evo_backend *cpu = evo_backend_cpu_new(NULL);
  evo_task *tc = task_on(cpu, name, yaml), *tg = task_on(gpu, name, yaml);
  const evo_task_spec *sp = evo_task_get_spec(tg);
  cr_assert_eq(sp->place, EVO_TASK_DEVICE);
  cr_assert_eq(sp->flags & EVO_TASK_FLAG_STEP_RANGE, 0u, "device episodes cannot step host ranges");
  const int od = (int)sp->obs_shape[0];
  const bool discrete = sp->action_kind == EVO_ACTION_DISCRETE;
  evo_key *keys = malloc(sizeof *keys * N);
  float *oc = malloc(sizeof(float) * N * od), *og = malloc(sizeof(float) * N * od), *act = malloc(sizeof(float) * N);
  float rc[N], rg[N];
  int32_t iact[N];
  uint8_t dc[N], dg[N];
  cr_assert(keys && oc && og && act);
  evo_key_split(evo_key_from_seed(77), N, keys);
  evo_tensor *k_d = dev_tensor(gpu, EVO_U32, N, 2), *o_d = dev_tensor(gpu, EVO_F32, N, od),
             *a_d = dev_tensor(gpu, discrete ? EVO_I32 : EVO_F32, N, 0), *r_d = dev_tensor(gpu, EVO_F32, N, 0),
             *d_d = dev_tensor(gpu, EVO_U8, N, 0);
  cr_assert_eq(evo_tensor_copy_from_host(k_d, keys, sizeof *keys * N), EVO_STATUS_OK);
  cr_assert_eq(evo_task_reset(tc, N, keys, oc), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(evo_task_reset(tg, N, evo_tensor_buffer(k_d), evo_tensor_buffer(o_d)), EVO_STATUS_OK, "%s",
               evo_last_error());
  cr_assert_eq(evo_tensor_copy_to_host(o_d, og, sizeof(float) * N * od), EVO_STATUS_OK);
  double worst = 0;
  int64_t values = 0, same = 0;
  for (int64_t i = 0; i < (int64_t)N * od; i++) worst = fmax(worst, fabs(oc[i] - og[i]));
  cr_assert_leq(worst, 1e-5, "%s: reset observations differ by %g", name, worst);
  for (int t = 0; t < T; t++) {
    evo_key kt = evo_key_fold_in(evo_key_from_seed(78), (uint32_t)t);
    evo_rng_fill_uniform(kt, act, N, -1.0f, 1.0f);
    for (int i = 0; i < N; i++) iact[i] = act[i] > 0.0f;
    const void *a = discrete ? (const void *)iact : (const void *)act;
    cr_assert_eq(evo_tensor_copy_from_host(a_d, a, sizeof(float) * N), EVO_STATUS_OK);
    cr_assert_eq(evo_task_step(tc, a, oc, rc, dc), EVO_STATUS_OK, "%s", evo_last_error());
    cr_assert_eq(evo_task_step(tg, evo_tensor_buffer(a_d), evo_tensor_buffer(o_d), evo_tensor_buffer(r_d),
                               evo_tensor_buffer(d_d)),
                 EVO_STATUS_OK, "%s", evo_last_error());
    cr_assert_eq(evo_tensor_copy_to_host(o_d, og, sizeof(float) * N * od), EVO_STATUS_OK, "%s", evo_last_error());
    cr_assert_eq(evo_tensor_copy_to_host(r_d, rg, sizeof rg), EVO_STATUS_OK);
    cr_assert_eq(evo_tensor_copy_to_host(d_d, dg, sizeof dg), EVO_STATUS_OK);
    for (int i = 0; i < N; i++) {
      cr_assert_eq(dc[i], dg[i], "%s step %d episode %d: done %d on the CPU, %d on the GPU", name, t, i, dc[i],
                   dg[i]);
      double d = fabs(rc[i] - rg[i]);
      for (int j = 0; j < od; j++) d = fmax(d, fabs(oc[i * od + j] - og[i * od + j]));
      cr_assert_leq(d, 1e-4, "%s step %d episode %d: CPU and GPU differ by %g", name, t, i, d);
      worst = fmax(worst, d);
      same += rc[i] == rg[i];
      for (int j = 0; j < od; j++) same += oc[i * od + j] == og[i * od + j];
      values += 1 + od;
    }
  }
  printf("cartpole cuda %s: %d episodes x %d steps, largest difference %g, %.6f%% of values bit-identical\n", name,
         N, T, worst, 100.0 * (double)same / (double)values);
  evo_tensor_free(k_d), evo_tensor_free(o_d), evo_tensor_free(a_d), evo_tensor_free(r_d), evo_tensor_free(d_d);
  free(keys), free(oc), free(og), free(act);
  evo_task_free(tc), evo_task_free(tg);
  evo_backend_free(cpu);
}

Test(cartpole_cuda, trajectories_match_cpu) {
  evo_backend *gpu = cuda_or_skip();
  trajectory_case(gpu, "cartpole_swingup", "variant: easy\n");
  trajectory_case(gpu, "cartpole_swingup", "variant: hard\n");
  trajectory_case(gpu, "cartpole_balance", "max_steps: 1000\n");
  evo_backend_free(gpu);
}

/* ---------------- GPU: the simulation's device loop ---------------- */

static evo_policy *policy_for(const evo_task *t, bool lstm) {
  const evo_task_spec *ts = evo_task_get_spec(t);
  evo_policy_io io = {.obs_ndim = ts->obs_ndim, .act_ndim = ts->act_ndim,
                      .discrete = ts->action_kind == EVO_ACTION_DISCRETE};
  memcpy(io.obs_shape, ts->obs_shape, sizeof io.obs_shape);
  memcpy(io.act_shape, ts->act_shape, sizeof io.act_shape);
  evo_policy *pol;
  evo_status st;
  if (lstm) {
    evo_policy_lstm_params lp = evo_policy_lstm_default_params();
    lp.hidden = 8;
    st = evo_policy_lstm_new(&lp, &io, &pol);
  } else {
    evo_policy_mlp_params mp = evo_policy_mlp_default_params();
    mp.hidden[0] = 16, mp.hidden[1] = 16;
    st = evo_policy_mlp_new(&mp, &io, &pol);
  }
  cr_assert_eq(st, EVO_STATUS_OK, "%s", evo_last_error());
  return pol;
}

/* n members: the initialisation plus noise; member 0 gets a NaN when nan_first. */
static float *members(const evo_policy *pol, int n, bool nan_first) {
  const int64_t d = evo_policy_num_params(pol);
  float *p = malloc(sizeof(float) * (size_t)(n * d)), *z = malloc(sizeof(float) * (size_t)d);
  cr_assert(p && z);
  cr_assert_eq(evo_policy_init(pol, evo_key_from_seed(4), p), EVO_STATUS_OK);
  for (int i = n - 1; i >= 0; i--) {
    evo_rng_fill_normal(evo_key_from_seed(90 + (uint64_t)i), z, d);
    for (int64_t j = 0; j < d; j++) p[i * d + j] = p[j] + 0.5f * z[j];
  }
  if (nan_first) p[3] = NAN;
  free(z);
  return p;
}

typedef struct {
  float fit[2][8];
  double test, norm_count, norm_mean[8];
  evo_sim_stats stats;
  evo_sim_info info;
  uint64_t allocs_after_first, allocs_end;
} sim_result;

static void sim_run(evo_backend *be, const char *name, const char *yaml, bool lstm, bool nan_first, bool graphs,
                    sim_result *out) {
  enum { P = 8 };
  evo_task *t = task_on(be, name, yaml);
  evo_policy *pol = policy_for(t, lstm);
  float *pop = members(pol, P, nan_first);
  evo_sim_params sp = evo_sim_default_params();
  sp.n_repeats = 4;
  sp.normalize_obs = true;
  sp.check_interval = 5;
  sp.graph_chunks = graphs;
  evo_sim *s;
  cr_assert_eq(evo_sim_new(t, pol, be, &sp, &s), EVO_STATUS_OK, "%s", evo_last_error());
  memset(out, 0, sizeof *out);
  for (int g = 0; g < 2; g++) {
    cr_assert_eq(evo_sim_evaluate(s, pop, P, 0, evo_key_from_seed(100 + (uint64_t)g), out->fit[g]), EVO_STATUS_OK,
                 "%s", evo_last_error());
    if (g == 0) out->allocs_after_first = evo_backend_alloc_count(be);
  }
  out->allocs_end = evo_backend_alloc_count(be);
  cr_assert_eq(evo_sim_test(s, pop + evo_policy_num_params(pol), 6, evo_key_from_seed(120), &out->test),
               EVO_STATUS_OK, "%s", evo_last_error());
  evo_sim_stats_get(s, &out->stats);
  evo_sim_info_get(s, &out->info);
  double *count, *mean, *m2;
  evo_sim_normalizer(s, &count, &mean, &m2);
  out->norm_count = *count;
  memcpy(out->norm_mean, mean, sizeof(double) * (size_t)evo_sim_obs_size(s));
  evo_sim_free(s);
  free(pop);
  evo_policy_free(pol);
  evo_task_free(t);
}

static void sim_case(evo_backend *gpu, const char *name, const char *yaml, bool lstm, double rtol) {
  evo_backend *cpu = evo_backend_cpu_new(NULL);
  sim_result c, g;
  sim_run(cpu, name, yaml, lstm, true, true, &c);
  sim_run(gpu, name, yaml, lstm, true, true, &g);
  cr_assert(g.info.on_device && !c.info.on_device, "%s: the GPU run must stay on the device", name);
  cr_assert_eq(g.allocs_end, g.allocs_after_first, "%s: a planned generation allocated on the GPU", name);
  for (int gen = 0; gen < 2; gen++) {
    cr_assert(isnan(g.fit[gen][0]) && isnan(c.fit[gen][0]), "%s: member 0 has a NaN parameter", name);
    for (int i = 1; i < 8; i++)
      cr_assert(fabs(c.fit[gen][i] - g.fit[gen][i]) <= rtol * (1.0 + fabs(c.fit[gen][i])),
                "%s generation %d member %d: CPU %.9g, GPU %.9g", name, gen, i, c.fit[gen][i], g.fit[gen][i]);
  }
  cr_assert_eq(g.stats.nan_members, c.stats.nan_members);
  cr_assert_eq(g.stats.evaluations, c.stats.evaluations);
  cr_assert(fabs((double)(g.stats.env_steps - c.stats.env_steps)) <= rtol * (double)c.stats.env_steps,
            "%s: %lld steps on the GPU, %lld on the CPU", name, (long long)g.stats.env_steps,
            (long long)c.stats.env_steps);
  cr_assert(fabs(g.test - c.test) <= rtol * (1.0 + fabs(c.test)), "%s: test %.9g vs %.9g", name, g.test, c.test);
  cr_assert(fabs(g.norm_count - c.norm_count) <= rtol * c.norm_count, "%s: normaliser count %g vs %g", name,
            g.norm_count, c.norm_count);
  cr_assert(fabs(g.norm_mean[0] - c.norm_mean[0]) <= 1e-2 + rtol * fabs(c.norm_mean[0]),
            "%s: normaliser mean %g vs %g", name, g.norm_mean[0], c.norm_mean[0]);
  printf("sim cuda %s%s: fitness[1] CPU %.6g GPU %.6g, steps CPU %lld GPU %lld, batch steps CPU %lld GPU %lld\n",
         name, lstm ? " (lstm)" : "", c.fit[1][1], g.fit[1][1], (long long)c.stats.env_steps,
         (long long)g.stats.env_steps, (long long)c.stats.batch_steps, (long long)g.stats.batch_steps);
  evo_backend_free(cpu);
}

/* Short swing-up episodes stay close despite the GPU's GEMM rounding; balance with an argmax head and an LSTM
   (state reset on done, on the device) ends episodes at the same steps but for rare argmax flips. */
Test(cartpole_cuda, sim_device_loop_matches_host_loop) {
  evo_backend *gpu = cuda_or_skip();
  sim_case(gpu, "cartpole_swingup", "variant: hard\nmax_steps: 100\n", false, 1e-3);
  sim_case(gpu, "cartpole_balance", "max_steps: 200\n", true, 5e-2);
  evo_backend_free(gpu);
}

/* Chunks of check_interval steps recorded as one CUDA Graph give the same bits as the same steps enqueued one by
   one (same kernels, same order): 103 steps leave a partial chunk that runs step by step; the LSTM's state resets
   on done inside the recorded chunk. */
static void graph_case(evo_backend *gpu, const char *name, const char *yaml, bool lstm) {
  sim_result on, off;
  sim_run(gpu, name, yaml, lstm, true, true, &on);
  sim_run(gpu, name, yaml, lstm, true, false, &off);
  cr_assert_gt(on.stats.graph_launches, 0, "%s: no chunk was replayed as a graph", name);
  cr_assert_eq(off.stats.graph_launches, 0, "%s: graph_chunks off still replayed chunks", name);
  cr_assert_eq(on.allocs_end, on.allocs_after_first, "%s: a recorded generation allocated on the GPU", name);
  for (int gen = 0; gen < 2; gen++)
    for (int i = 0; i < 8; i++)
      cr_assert(memcmp(&on.fit[gen][i], &off.fit[gen][i], sizeof(float)) == 0,
                "%s generation %d member %d: graph %.9g, step by step %.9g", name, gen, i, on.fit[gen][i],
                off.fit[gen][i]);
  cr_assert_eq(on.stats.env_steps, off.stats.env_steps);
  cr_assert_eq(on.stats.batch_steps, off.stats.batch_steps);
  cr_assert_eq(on.stats.nan_members, off.stats.nan_members);
  cr_assert(memcmp(&on.test, &off.test, sizeof on.test) == 0, "%s: test %.17g vs %.17g", name, on.test, off.test);
  cr_assert(memcmp(on.norm_mean, off.norm_mean, sizeof on.norm_mean) == 0, "%s: normaliser differs", name);
  printf("sim cuda %s%s: %lld chunk graphs replayed, %lld batch steps\n", name, lstm ? " (lstm)" : "",
         (long long)on.stats.graph_launches, (long long)on.stats.batch_steps);
}

Test(cartpole_cuda, chunk_graphs_equal_step_by_step) {
  evo_backend *gpu = cuda_or_skip();
  graph_case(gpu, "cartpole_swingup", "variant: hard\nmax_steps: 103\n", false);
  graph_case(gpu, "cartpole_balance", "max_steps: 200\n", true);
  evo_backend_free(gpu);
}
