/* The population on the device (algos/es/antithetic_dev.c, runner/sim.c evo_sim_evaluate_tensor, the trainer):
   PGPE, OpenES, ARS, SNES and CEM asked into a CUDA tensor sample there and run tell's noise sums there, and must give
   the host's bits: every slice of every generation, and the whole trajectory of tells (NaN members and ARS's top-b
   included); a strategy without device sampling (CMA-ES) asked into a CUDA tensor is copied there. The simulation
   reads device rows in place, with the same fitness and NaN flags as host rows; the trainer keeps the population
   on the device exactly when both sides can. GPU tests: they skip with the reason where no CUDA device is usable,
   and run on the emulated device in emulator builds (tests/cuda_emu). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "evoc/algo.h"
#include "evoc/backend.h"
#include "evoc/config.h"
#include "evoc/policy.h"
#include "evoc/sim.h"
#include "evoc/task.h"
#include "evoc/trainer.h"
#include "cuda_test_util.h"
#include "es/anti_order.h"
#include "es/antithetic.h"
#include "es/antithetic_dev.h"

static evo_algo *algo(const char *name, int64_t n, int pop, const char *opt_key, double opt_val) {
  evo_algo_params p = evo_algo_default_params();
  p.name = name;
  p.num_params = n;
  p.pop_size = pop;
  p.init_stdev = 0.3;
  p.key = evo_key_from_seed(21);
  const evo_option opt = {opt_key, opt_val};
  if (opt_key) p.options = &opt, p.n_options = 1;
  evo_algo *a;
  cr_assert_eq(evo_algo_new(&p, &a), EVO_STATUS_OK, "%s", evo_last_error());
  return a;
}

/* Rows [b, e) asked on the host and into a device tensor (read back): the same bits. */
static void same_slice(evo_algo *host, evo_algo *dev, evo_backend *be, int b, int e, float *h, float *d) {
  const int64_t n = evo_algo_num_params(host), shape[2] = {e - b, n};
  evo_backend *cpu = evo_backend_cpu_new(NULL);
  evo_tensor *th = evo_tensor_new(cpu, EVO_F32, 2, shape), *td = evo_tensor_new(be, EVO_F32, 2, shape);
  cr_assert(th && td);
  cr_assert_eq(evo_algo_ask(host, b, e, th), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(evo_algo_ask(dev, b, e, td), EVO_STATUS_OK, "%s", evo_last_error());
  const size_t bytes = sizeof(float) * (size_t)((e - b) * n);
  memcpy(h, evo_tensor_data(th), bytes);
  cr_assert_eq(evo_tensor_copy_to_host(td, d, bytes), EVO_STATUS_OK, "%s", evo_last_error());
  for (int64_t i = 0; i < (e - b) * n; i++)
    cr_assert(memcmp(&h[i], &d[i], sizeof(float)) == 0, "%s generation %lld rows [%d, %d): value %lld host %.9g, "
              "device %.9g", evo_algo_name(host), (long long)evo_algo_generation(host), b, e, (long long)i,
              h[i], d[i]);
  evo_tensor_free(th), evo_tensor_free(td);
  evo_backend_free(cpu);
}

/* Generations of asks (whole and in slices) and tells, one algorithm on the host, one on the device: every member
   and the final recommendation bit-identical. Fitness: -sum x^2 of the members, one NaN member in generation 2. */
static void trajectory(evo_backend *be, const char *name, int64_t n, int pop, const char *opt_key, double opt_val,
                       bool on_device) {
  evo_algo *h = algo(name, n, pop, opt_key, opt_val), *d = algo(name, n, pop, opt_key, opt_val);
  cr_assert_eq(evo_algo_samples_on_device(d), on_device, "%s", name);
  float *ph = malloc(sizeof(float) * (size_t)(pop * n)), *pd = malloc(sizeof(float) * (size_t)(pop * n));
  float *fit = malloc(sizeof(float) * (size_t)pop), *bh = malloc(sizeof(float) * (size_t)n);
  float *bd = malloc(sizeof(float) * (size_t)n);
  cr_assert(ph && pd && fit && bh && bd);
  for (int g = 0; g < 5; g++) {
    same_slice(h, d, be, 3, pop - 2, ph, pd); /* odd first row: it starts with a pair's minus member */
    same_slice(h, d, be, pop - 1, pop, ph, pd);
    same_slice(h, d, be, 0, pop, ph, pd);
    for (int i = 0; i < pop; i++) {
      double q = 0;
      for (int64_t j = 0; j < n; j++) q += (double)ph[i * n + j] * ph[i * n + j];
      fit[i] = (g == 1 && i == 2) ? NAN : (float)-q;
    }
    cr_assert_eq(evo_algo_tell(h, fit), EVO_STATUS_OK, "%s", evo_last_error());
    cr_assert_eq(evo_algo_tell(d, fit), EVO_STATUS_OK, "%s", evo_last_error());
  }
  cr_assert_eq(evo_algo_best(h, bh), EVO_STATUS_OK);
  cr_assert_eq(evo_algo_best(d, bd), EVO_STATUS_OK);
  cr_assert(memcmp(bh, bd, sizeof(float) * (size_t)n) == 0, "%s: recommendations differ", name);
  evo_algo_stats sh, sd;
  evo_algo_stats_get(h, &sh), evo_algo_stats_get(d, &sd);
  cr_assert_eq(sd.nan_count, 1);
  cr_assert(sh.sigma == sd.sigma || (isnan(sh.sigma) && isnan(sd.sigma)), "%s sigma %.17g vs %.17g", name, sh.sigma,
            sd.sigma);
  free(ph), free(pd), free(fit), free(bh), free(bd);
  evo_algo_free(h), evo_algo_free(d);
}

Test(algo_device, antithetic_strategies_sample_and_tell_on_the_device_bit_for_bit) {
  evo_backend *be = cuda_or_skip();
  trajectory(be, "pgpe", 37, 10, NULL, 0, true);                   /* 37: a last Philox block of one value */
  trajectory(be, "pgpe", 37, 10, "optimizer", 1, true);            /* Adam */
  trajectory(be, "openes", 37, 10, NULL, 0, true);
  trajectory(be, "ars", 37, 10, "top_b", 3, true);                 /* the kept directions' keys, in rank order */
  trajectory(be, "pgpe", 5003, 32, NULL, 0, true);                 /* n x 16 directions: the host uses threads */
  trajectory(be, "openes", 5003, 32, NULL, 0, true);
  trajectory(be, "snes", 37, 10, NULL, 0, true);                   /* no mirroring, a key per member */
  trajectory(be, "snes", 5003, 16, NULL, 0, true);
  trajectory(be, "cem", 37, 12, NULL, 0, true);                    /* the elites' keys, in member order */
  trajectory(be, "cem", 5003, 20, "extra_std", 0.5, true);
  trajectory(be, "sep_cmaes", 37, 10, NULL, 0, false);             /* host sampling, copied to the device */
  evo_backend_free(be);
}

/* Tell's sums cut the directions into groups (es/anti_order.h) that a GPU sums in parallel and adds in group
   order, as the host does; the cases above have one group each, these several, the last one short. */
Test(algo_device, direction_groups_give_the_host_bits) {
  cr_assert_eq(evo_anti_groups(37, 50), 4);          /* 16 16 16 2 */
  cr_assert_eq(evo_anti_groups(37, 35), 3);          /* 16 16 3 */
  cr_assert_eq(evo_anti_groups(37, 20), 2);
  cr_assert_eq(evo_anti_groups(5003, 40), 3);
  cr_assert_eq(evo_anti_groups(4609, 512), 32);      /* CartPole's MLP at P = 1,024: 37k GPU threads */
  cr_assert_eq(evo_anti_groups(11274, 512), 24);     /* EvoJAX's MNIST ConvNet at P = 1,024: 68k */
  cr_assert_eq(evo_anti_groups(1000000, 512), 1);    /* n alone fills a GPU: the plain sequential sum */
  cr_assert_eq(evo_anti_groups(37, 16), 1);
  evo_backend *be = cuda_or_skip();
  trajectory(be, "pgpe", 37, 100, NULL, 0, true);
  trajectory(be, "openes", 37, 70, NULL, 0, true);
  trajectory(be, "ars", 37, 80, "top_b", 20, true);
  trajectory(be, "snes", 37, 40, NULL, 0, true);
  trajectory(be, "cem", 37, 80, NULL, 0, true);                    /* 40 elites: 3 groups */
  trajectory(be, "pgpe", 5003, 80, NULL, 0, true);                 /* and the host's threads */
  evo_backend_free(be);
}

/* The sums themselves, host (evo_anti_sums) against device (evo_anti_dev_sums), bit for bit: through a whole
   trajectory a last-bit difference in a double sum is mostly rounded away before it reaches a float member. */
static void same_sums(evo_backend *be, int64_t n, int nd, bool with_c, bool skip_zero, bool permuted) {
  evo_algo *a = algo("pgpe", n, 2 * nd, NULL, 0);
  const int64_t shape[2] = {2, n};
  evo_tensor *pop = evo_tensor_new(be, EVO_F32, 2, shape);
  float *center = calloc((size_t)n, sizeof(float));
  double *h = malloc(sizeof(double) * (size_t)nd), *c = malloc(sizeof(double) * (size_t)nd);
  double *out = malloc(sizeof(double) * 4 * (size_t)n);
  evo_key *keys = malloc(sizeof(evo_key) * (size_t)nd);
  int *dirs = malloc(sizeof(int) * (size_t)nd);
  cr_assert(pop && center && h && c && out && keys && dirs);
  for (int t = 0; t < nd; t++) {
    h[t] = t % 5 == 3 ? 0.0 : sin(1.7 * t + 0.3) / 3; /* some exact zeros: skipped or not */
    c[t] = cos(0.9 * t) - 0.2;
    dirs[t] = permuted ? (7 * t + 3) % nd : t;
    keys[t] = evo_algo_member_key(a, 4, dirs[t]);
  }
  evo_anti_dev *d = NULL;
  cr_assert_eq(evo_anti_dev_ask(&d, a, center, NULL, 0.1, 0, 2, pop), EVO_STATUS_OK, "%s", evo_last_error());
  evo_anti_sums(n, keys, NULL, nd, h, with_c ? c : NULL, skip_zero, out, out + n);
  cr_assert_eq(evo_anti_dev_sums(d, a, 4, permuted ? dirs : NULL, h, with_c ? c : NULL, skip_zero, nd, out + 2 * n,
                                 out + 3 * n),
               EVO_STATUS_OK, "%s", evo_last_error());
  for (int64_t i = 0; i < (with_c ? 2 : 1) * n; i++)
    cr_assert(memcmp(&out[i], &out[2 * n + i], sizeof(double)) == 0,
              "n %lld, %d directions: sum %lld host %.17g device %.17g", (long long)n, nd, (long long)i, out[i],
              out[2 * n + i]);
  evo_anti_dev_free(d);
  evo_tensor_free(pop);
  free(center), free(h), free(c), free(out), free(keys), free(dirs);
  evo_algo_free(a);
}

Test(algo_device, noise_sums_equal_the_host_bit_for_bit) {
  evo_backend *be = cuda_or_skip();
  same_sums(be, 37, 50, true, false, false); /* PGPE: 4 groups */
  same_sums(be, 37, 50, true, true, false);  /* SNES */
  same_sums(be, 37, 35, false, true, true);  /* OpenES, ARS (directions in rank order) */
  same_sums(be, 37, 12, true, false, false); /* one group */
  same_sums(be, 5003, 40, true, false, false);
  evo_backend_free(be);
}

Test(algo_device, ask_checks_the_tensor) {
  evo_backend *be = cuda_or_skip();
  evo_algo *a = algo("pgpe", 8, 4, NULL, 0);
  evo_tensor *wrong = evo_tensor_new(be, EVO_F32, 2, (int64_t[]){3, 8});
  cr_assert_eq(evo_algo_ask(a, 0, 4, wrong), EVO_STATUS_INVALID_ARGUMENT);
  cr_assert(strstr(evo_last_error(), "pop must be f32 [4, 8]"), "%s", evo_last_error());
  evo_tensor_free(wrong);
  evo_algo_free(a);
  evo_backend_free(be);
}

/* ---------------- the simulation reads device rows ---------------- */

static evo_task *cartpole(evo_backend *be) {
  evo_config *doc;
  cr_assert_eq(evo_config_parse("variant: hard\nmax_steps: 60\n", "t", &doc), EVO_STATUS_OK);
  evo_task_args a = {be, EVO_TASK_TRAIN, 0};
  evo_task *t;
  cr_assert_eq(evo_task_new_builtin("cartpole_swingup", evo_config_root(doc), &a, &t), EVO_STATUS_OK, "%s",
               evo_last_error());
  evo_config_free(doc);
  return t;
}

static evo_policy *mlp(const evo_task *t) {
  const evo_task_spec *ts = evo_task_get_spec(t);
  evo_policy_io io = {.obs_ndim = ts->obs_ndim, .act_ndim = ts->act_ndim};
  memcpy(io.obs_shape, ts->obs_shape, sizeof io.obs_shape);
  memcpy(io.act_shape, ts->act_shape, sizeof io.act_shape);
  evo_policy_mlp_params mp = evo_policy_mlp_default_params();
  mp.hidden[0] = 8, mp.hidden[1] = 8;
  evo_policy *pol;
  cr_assert_eq(evo_policy_mlp_new(&mp, &io, &pol), EVO_STATUS_OK, "%s", evo_last_error());
  return pol;
}

/* 10 members in chunks of 4 (the last one padded), member 5 with a NaN parameter: device rows and host rows give
   the same bits; only the device rows skip the host. */
Test(algo_device, sim_reads_device_rows_in_place) {
  enum { P = 10 };
  evo_backend *be = cuda_or_skip();
  evo_task *t = cartpole(be);
  evo_policy *pol = mlp(t);
  const int64_t d = evo_policy_num_params(pol);
  evo_algo *a = algo("pgpe", d, P, NULL, 0);
  evo_tensor *pd = evo_tensor_new(be, EVO_F32, 2, (int64_t[]){P + 2, d}); /* longer than P rows: reads the first */
  float *ph = malloc(sizeof(float) * (size_t)((P + 2) * d));
  cr_assert(pd && ph);
  evo_tensor *first = evo_tensor_new(be, EVO_F32, 2, (int64_t[]){P, d});
  cr_assert_eq(evo_algo_ask(a, 0, P, first), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(evo_tensor_copy_to_host(first, ph, sizeof(float) * (size_t)(P * d)), EVO_STATUS_OK);
  ph[5 * d + 3] = NAN;
  for (int64_t j = 0; j < 2 * d; j++) ph[P * d + j] = 1.0f;
  cr_assert_eq(evo_tensor_copy_from_host(pd, ph, sizeof(float) * (size_t)((P + 2) * d)), EVO_STATUS_OK);
  evo_sim_params sp = evo_sim_default_params();
  sp.n_repeats = 2, sp.chunk_members = 4, sp.normalize_obs = true;
  evo_sim *sd, *sh;
  cr_assert_eq(evo_sim_new(t, pol, be, &sp, &sd), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(evo_sim_new(t, pol, be, &sp, &sh), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(evo_sim_device_backend(sd), be);
  float fd[P], fh[P];
  const evo_key key = evo_key_from_seed(5);
  cr_assert_eq(evo_sim_evaluate_tensor(sd, pd, P, 0, key, fd, NULL), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(evo_sim_evaluate(sh, ph, P, 0, key, fh), EVO_STATUS_OK, "%s", evo_last_error());
  for (int i = 0; i < P; i++)
    cr_assert(memcmp(&fd[i], &fh[i], sizeof(float)) == 0, "member %d: device rows %.9g, host rows %.9g", i, fd[i],
              fh[i]);
  cr_assert(isnan(fd[5]) && isfinite(fd[4]) && isfinite(fd[9]));
  evo_sim_stats a_st, b_st;
  evo_sim_stats_get(sd, &a_st), evo_sim_stats_get(sh, &b_st);
  cr_assert_eq(a_st.device_param_rows, P);
  cr_assert_eq(b_st.device_param_rows, 0);
  cr_assert_eq(a_st.nan_members, 1);
  cr_assert_eq(a_st.env_steps, b_st.env_steps);
  double *c1, *m1, *q1, *c2, *m2, *q2; /* the normaliser saw the same observations */
  evo_sim_normalizer(sd, &c1, &m1, &q1), evo_sim_normalizer(sh, &c2, &m2, &q2);
  const int64_t m = evo_sim_obs_size(sd);
  cr_assert(*c1 == *c2 && !memcmp(m1, m2, sizeof(double) * (size_t)m) && !memcmp(q1, q2, sizeof(double) * (size_t)m));
  /* a sim whose rollouts run through host memory (CartPole on the CPU) reads the device rows back: the fitness of
     the same rows given from the host */
  evo_backend *cpu = evo_backend_cpu_new(NULL);
  evo_task *tc = cartpole(cpu);
  evo_sim *sc, *sc2;
  cr_assert_eq(evo_sim_new(tc, pol, cpu, &sp, &sc), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(evo_sim_new(tc, pol, cpu, &sp, &sc2), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_null(evo_sim_device_backend(sc));
  float fc[P], fc2[P];
  cr_assert_eq(evo_sim_evaluate_tensor(sc, pd, P, 0, key, fc, NULL), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(evo_sim_evaluate(sc2, ph, P, 0, key, fc2), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert(memcmp(fc, fc2, sizeof fc) == 0, "a CPU sim given the device rows differs from the host rows");
  cr_assert(isnan(fc[5]));
  evo_sim_stats c_st;
  evo_sim_stats_get(sc, &c_st);
  cr_assert_eq(c_st.device_param_rows, 0);
  evo_sim_free(sc), evo_sim_free(sc2);
  evo_task_free(tc);
  evo_backend_free(cpu);
  /* too short a tensor, or the wrong dtype, is refused */
  evo_tensor *small = evo_tensor_new(be, EVO_F32, 2, (int64_t[]){2, d});
  cr_assert_eq(evo_sim_evaluate_tensor(sd, small, 3, 0, key, fd, NULL), EVO_STATUS_INVALID_ARGUMENT);
  cr_assert(strstr(evo_last_error(), "at least 3 x"), "%s", evo_last_error());
  evo_tensor *ints = evo_tensor_new(be, EVO_I32, 2, (int64_t[]){P, d});
  cr_assert_eq(evo_sim_evaluate_tensor(sd, ints, P, 0, key, fd, NULL), EVO_STATUS_INVALID_ARGUMENT);
  evo_tensor_free(small), evo_tensor_free(ints), evo_tensor_free(first), evo_tensor_free(pd);
  free(ph);
  evo_sim_free(sd), evo_sim_free(sh);
  evo_algo_free(a);
  evo_policy_free(pol);
  evo_task_free(t);
  evo_backend_free(be);
}

/* ---------------- the trainer ---------------- */

#define RUN(algo_line)                                                                                          \
  "seed: 3\ndevice: cuda\ntask: {name: cartpole_swingup, variant: easy, max_steps: 50}\n"                       \
  "policy: {name: mlp, hidden: [8, 8], activation: tanh, output: tanh}\n" algo_line                             \
  "trainer: {max_iter: 3, log_interval: 1, test_interval: 3, n_repeats: 2, n_evaluations: 4, plot: false}\n"

static void population_place(const char *text, bool want_device) {
  evo_config *c;
  cr_assert_eq(evo_config_parse(text, "t.yaml", &c), EVO_STATUS_OK, "%s", evo_last_error());
  evo_trainer_params p = evo_trainer_default_params();
  evo_trainer *t;
  cr_assert_eq(evo_trainer_new(c, &p, &t), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(evo_trainer_run(t), EVO_STATUS_OK, "%s", evo_last_error());
  evo_trainer_summary s;
  evo_trainer_summary_get(t, &s);
  cr_assert_eq(s.population_on_device, want_device, "%s: population_on_device %d", s.algo, s.population_on_device);
  cr_assert_eq(s.iterations, 3);
  cr_assert(isfinite(s.test_score));
  evo_trainer_free(t);
  evo_config_free(c);
}

Test(algo_device, trainer_keeps_the_population_on_the_device_when_both_sides_can) {
  evo_backend *be = cuda_or_skip();
  evo_backend_free(be);
  population_place(RUN("algo: {name: pgpe, pop_size: 8}\n"), true);
  population_place(RUN("algo: {name: ars, pop_size: 8, top_b: 2}\n"), true);
  population_place(RUN("algo: {name: cmaes, pop_size: 8}\n"), false);
}
