/* The trainer's device (trainer_setup.c read_device): cpu, auto (the GPU when there is one, the CPU with the reason
   otherwise, the CPU for policy direct), cuda (refused with the reason on a machine without a usable GPU), malformed
   names as config errors with file:line:col. On a GPU, evolution on the CUDA backend against the CPU: the same
   episodes, so fitness agrees up to float reordering in the policy's GEMMs (tight in the first generation, looser
   after the algorithm has ranked slightly different values), a resumed run equals an uninterrupted one, and a host
   task (functions with a policy) runs with its policy on the device. The GPU tests skip with the reason here. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "evoc/backend.h"
#include "evoc/config.h"
#include "evoc/trainer.h"

typedef struct {
  char notes[2048];
  int n_notes;
  int iters;
  double best[16], mean[16];
} run_log;

static void on_note(const char *msg, void *user) {
  run_log *l = user;
  size_t len = strlen(l->notes);
  snprintf(l->notes + len, sizeof l->notes - len, "%s\n", msg);
  l->n_notes++;
}

static void on_progress(const evo_trainer_progress *p, void *user) {
  run_log *l = user;
  if (l->iters < 16) l->best[l->iters] = p->best, l->mean[l->iters] = p->mean;
  l->iters++;
}

static evo_status make(const char *text, run_log *log, const char *out_dir, bool resume, evo_config **cfg,
                       evo_trainer **t) {
  cr_assert_eq(evo_config_parse(text, "t.yaml", cfg), EVO_STATUS_OK, "%s", evo_last_error());
  evo_trainer_params p = evo_trainer_default_params();
  p.note = on_note;
  p.progress = on_progress;
  p.user = log;
  p.out_dir = out_dir;
  p.resume = resume;
  return evo_trainer_new(*cfg, &p, t);
}

/* A small CartPole swing-up PGPE run (configs/cartpole_swingup_easy_pgpe.yaml, smaller). */
#define CARTPOLE(dev, iters)                                                                                    \
  "seed: 7\ndevice: " dev "\ntask: {name: cartpole_swingup, variant: easy, max_steps: 100}\n"                   \
  "policy: {name: mlp, hidden: [16, 16], activation: tanh, output: tanh}\n"                                     \
  "algo: {name: pgpe, pop_size: 32, init_stdev: 0.1, center_lr: 0.05, stdev_lr: 0.1, optimizer: 1}\n"         \
  "trainer: {max_iter: " iters ", log_interval: 1, test_interval: 2, n_repeats: 4, n_evaluations: 8,"         \
  " checkpoint_interval: 2, plot: false}\n"
#define SPHERE_DEV(dev) "device: " dev "\ntask: {name: functions, dim: 3}\nalgo: {name: pgpe, pop_size: 8}\n"

static void summary(const char *text, run_log *log, const char *want_device, const char *want_note) {
  evo_config *c;
  evo_trainer *t = NULL;
  cr_assert_eq(make(text, log, NULL, false, &c, &t), EVO_STATUS_OK, "%s", evo_last_error());
  evo_trainer_summary s;
  evo_trainer_summary_get(t, &s);
  cr_assert(!strncmp(s.device, want_device, strlen(want_device)), "device '%s', want '%s'", s.device, want_device);
  cr_assert(strstr(s.device_note, want_note), "device note '%s', want '%s'", s.device_note, want_note);
  evo_trainer_free(t);
  evo_config_free(c);
}

Test(trainer_device, cpu_is_recorded_without_a_note) {
  run_log log = {0};
  summary(CARTPOLE("cpu", "2"), &log, "cpu", "device cpu: using cpu");
  cr_assert_eq(log.n_notes, 0, "%s", log.notes);
}

/* The reason auto gives for the CPU is the CUDA backend's own (no driver, no device, or a build without it). */
Test(trainer_device, auto_takes_the_gpu_when_there_is_one_else_says_why) {
  run_log log = {0};
  if (evo_cuda_device_count() > 0) {
    summary(CARTPOLE("auto", "2"), &log, "cuda:0 (", "device auto: using cuda:0 (");
  } else {
    evo_backend *be = NULL;
    cr_assert_neq(evo_backend_cuda_new(0, &be), EVO_STATUS_OK);
    char want[600];
    snprintf(want, sizeof want, "device auto: using cpu (%s)", evo_last_error());
    summary(CARTPOLE("auto", "2"), &log, "cpu", want);
  }
  cr_assert_eq(log.n_notes, 1, "%s", log.notes);
  cr_assert(!strncmp(log.notes, "device auto: using ", 19), "%s", log.notes);
  /* policy direct evaluates on the host: auto does not start a GPU for it, whatever the machine has */
  run_log dlog = {0};
  summary(SPHERE_DEV("auto"), &dlog, "cpu", "device auto: using cpu (policy direct evaluates on the host)");
  cr_assert_eq(dlog.n_notes, 1, "%s", dlog.notes);
}

Test(trainer_device, cuda_without_a_gpu_is_refused_with_the_reason) {
  if (evo_cuda_device_count() > 0) cr_skip_test("a CUDA device is usable here: device cuda is accepted");
  const char *texts[] = {CARTPOLE("cuda", "2"), CARTPOLE("cuda:0", "2"), SPHERE_DEV("cuda")};
  const int col[] = {9, 9, 9}, line[] = {2, 2, 1};
  for (int i = 0; i < 3; i++) {
    run_log log = {0};
    evo_config *c;
    evo_trainer *t = (evo_trainer *)1;
    cr_assert_eq(make(texts[i], &log, NULL, false, &c, &t), EVO_STATUS_UNSUPPORTED, "%s", evo_last_error());
    cr_assert_null(t);
    char where[64];
    snprintf(where, sizeof where, "t.yaml:%d:%d: device cuda", line[i], col[i]);
    const char *msg = evo_last_error();
    cr_assert(!strncmp(msg, where, strlen(where)), "want '%s...', got '%s'", where, msg);
    cr_assert(strstr(msg, "CUDA backend") && strstr(msg, "use device: cpu"), "%s", msg);
    evo_config_free(c);
  }
}

Test(trainer_device, malformed_devices_are_config_errors) {
  const char *bad[] = {"cuda:1x", "cuda:", "cuda:-1", "gpu", "CPU"};
  const char *want[] = {"t.yaml:2:9: device 'cuda:1x': expected auto, cpu, cuda or cuda:N",
                        "t.yaml:2:9: device 'cuda:': expected auto, cpu, cuda or cuda:N",
                        "t.yaml:2:9: device 'cuda:-1': expected auto, cpu, cuda or cuda:N",
                        "t.yaml:2:9: device must be one of", "t.yaml:2:9: device must be one of"};
  for (int i = 0; i < 5; i++) {
    char text[1024];
    snprintf(text, sizeof text, "seed: 1\ndevice: '%s'\ntask: {name: functions, dim: 3}\nalgo: {name: pgpe}\n",
             bad[i]);
    run_log log = {0};
    evo_config *c;
    evo_trainer *t = (evo_trainer *)1;
    cr_assert_eq(make(text, &log, NULL, false, &c, &t), EVO_STATUS_INVALID_ARGUMENT, "%s: %s", bad[i],
                 evo_last_error());
    cr_assert_null(t);
    cr_assert(strstr(evo_last_error(), want[i]), "want '%s', got '%s'", want[i], evo_last_error());
    evo_config_free(c);
  }
}

/* ---------------- GPU ---------------- */

static void gpu_or_skip(void) {
  if (evo_cuda_device_count() > 0) return;
  evo_backend *be = NULL;
  evo_backend_cuda_new(0, &be);
  cr_skip_test("no usable CUDA device: %s", evo_last_error());
}

static void run_to_end(const char *text, run_log *log, const char *out_dir, bool resume, evo_trainer_summary *s,
                       char *device, size_t device_cap) {
  evo_config *c;
  evo_trainer *t = NULL;
  cr_assert_eq(make(text, log, out_dir, resume, &c, &t), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(evo_trainer_run(t), EVO_STATUS_OK, "%s", evo_last_error());
  evo_trainer_summary_get(t, s);
  snprintf(device, device_cap, "%s", s->device);
  s->device = s->device_note = s->task = s->policy = s->algo = NULL; /* they point into the freed trainer */
  evo_trainer_free(t);
  evo_config_free(c);
}

static bool close_to(double a, double b, double rtol) { return fabs(a - b) <= rtol * (1.0 + fabs(b)); }

Test(trainer_cuda, cartpole_pgpe_matches_the_cpu) {
  gpu_or_skip();
  run_log lc = {0}, lg = {0};
  evo_trainer_summary c, g;
  char dc[192], dg[192];
  run_to_end(CARTPOLE("cpu", "5"), &lc, NULL, false, &c, dc, sizeof dc);
  run_to_end(CARTPOLE("cuda", "5"), &lg, NULL, false, &g, dg, sizeof dg);
  cr_assert_str_eq(dc, "cpu");
  cr_assert(!strncmp(dg, "cuda:0 (", 8), "%s", dg);
  cr_assert_eq(lg.iters, 5);
  cr_assert_eq(g.evaluations, c.evaluations);
  cr_assert_eq(g.evaluations, 5 * 32 * 4);
  /* generation 1 evaluates the same parameters on the same episodes */
  cr_assert(close_to(lg.best[0], lc.best[0], 1e-3) && close_to(lg.mean[0], lc.mean[0], 1e-3),
            "generation 1: cuda best %.9g mean %.9g, cpu best %.9g mean %.9g", lg.best[0], lg.mean[0], lc.best[0],
            lc.mean[0]);
  for (int i = 1; i < 5; i++)
    cr_assert(close_to(lg.mean[i], lc.mean[i], 5e-2), "generation %d: cuda mean %.9g, cpu mean %.9g", i + 1,
              lg.mean[i], lc.mean[i]);
  cr_assert(close_to(g.test_score, c.test_score, 5e-2), "test: cuda %.9g, cpu %.9g", g.test_score, c.test_score);
}

/* Everything a checkpoint holds is host-side, so a run resumed on the GPU continues bit-identically (the device
   kernels reduce in a fixed order), and one trained on the GPU resumes on the CPU. */
Test(trainer_cuda, resume_on_the_gpu_and_on_the_cpu) {
  gpu_or_skip();
  char dir[] = "/tmp/evoc_trainer_cuda_XXXXXX", full[64], half[64], other[64], dev[192];
  cr_assert_not_null(mkdtemp(dir));
  snprintf(full, sizeof full, "%s/full", dir);
  snprintf(half, sizeof half, "%s/half", dir);
  snprintf(other, sizeof other, "%s/other", dir);
  run_log l1 = {0}, l2 = {0}, l3 = {0}, l4 = {0}, l5 = {0};
  evo_trainer_summary a, b, x;
  run_to_end(CARTPOLE("cuda", "4"), &l1, full, false, &a, dev, sizeof dev);
  run_to_end(CARTPOLE("cuda", "2"), &l2, half, false, &b, dev, sizeof dev);
  run_to_end(CARTPOLE("cuda", "4"), &l3, half, true, &b, dev, sizeof dev);
  cr_assert_eq(b.iterations, 4);
  cr_assert_eq(b.evaluations, a.evaluations);
  cr_assert(b.best_train_fitness == a.best_train_fitness && b.test_score == a.test_score,
            "resumed: best %.17g test %.17g; uninterrupted: best %.17g test %.17g", b.best_train_fitness,
            b.test_score, a.best_train_fitness, a.test_score);
  cr_assert(l3.mean[1] == l1.mean[3], "iteration 4 mean: resumed %.17g, uninterrupted %.17g", l3.mean[1], l1.mean[3]);
  run_to_end(CARTPOLE("cuda", "2"), &l4, other, false, &x, dev, sizeof dev);
  run_to_end(CARTPOLE("cpu", "4"), &l5, other, true, &x, dev, sizeof dev);
  cr_assert_str_eq(dev, "cpu");
  cr_assert_eq(x.iterations, 4);
  cr_assert(close_to(x.test_score, a.test_score, 5e-2), "resumed on the cpu: test %.9g, gpu %.9g", x.test_score,
            a.test_score);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  cr_assert_eq(system(cmd), 0);
}

/* A host task (functions) with a policy: the task steps on the host, the policy's plan on the device, observations
   and actions cross once per step each way. */
Test(trainer_cuda, host_task_with_a_device_policy) {
  gpu_or_skip();
  const char *base = "seed: 2\ntask: {name: functions, function: rastrigin, dim: 4}\n"
                     "policy: {name: mlp, hidden: [8]}\nalgo: {name: pgpe, pop_size: 16, x0: policy_init}\n"
                     "trainer: {max_iter: 3, test_interval: 3, n_evaluations: 1, plot: false}\ndevice: ";
  char tc[512], tg[512], dc[192], dg[192];
  snprintf(tc, sizeof tc, "%scpu\n", base);
  snprintf(tg, sizeof tg, "%scuda\n", base);
  run_log lc = {0}, lg = {0};
  evo_trainer_summary c, g;
  run_to_end(tc, &lc, NULL, false, &c, dc, sizeof dc);
  run_to_end(tg, &lg, NULL, false, &g, dg, sizeof dg);
  cr_assert(!strncmp(dg, "cuda:0", 6), "%s", dg);
  cr_assert(close_to(lg.mean[0], lc.mean[0], 1e-4), "generation 1 mean: cuda %.9g, cpu %.9g", lg.mean[0],
            lc.mean[0]);
  cr_assert(close_to(g.test_score, c.test_score, 1e-2), "test: cuda %.9g, cpu %.9g", g.test_score, c.test_score);
}

/* The progress callback of a run that also touches another GPU: the thread's current device changes under the run
   every iteration. */
typedef struct {
  run_log log; /* first: on_note takes the struct as its run_log */
  evo_backend *other;
} disturbed_log;

static void on_progress_elsewhere(const evo_trainer_progress *p, void *user) {
  disturbed_log *d = user;
  on_progress(p, &d->log);
  const int64_t shape[1] = {64};
  float h[64] = {0};
  evo_tensor *x = evo_tensor_new(d->other, EVO_F32, 1, shape);
  cr_assert_not_null(x);
  cr_assert_eq(evo_tensor_copy_from_host(x, h, sizeof h), EVO_STATUS_OK, "%s", evo_last_error());
  evo_tensor_free(x);
}

/* One thread driving two GPUs (two emulated ones in emulator builds): a CartPole run on cuda:0 whose progress
   callback works on cuda:1 gives the bits of the undisturbed run, as does the same run on cuda:1. A kernel launches
   only into a stream of the current device, so every launch selects its backend's device (evo_backend_use). */
Test(trainer_cuda, one_thread_drives_two_gpus) {
  setenv("EVO_EMU_DEVICES", "2", 1); /* the emulator's GPU count; real CUDA ignores it */
  if (evo_cuda_device_count() < 2) cr_skip_test("needs two GPUs, this machine has %d", evo_cuda_device_count());
  evo_backend *other;
  cr_assert_eq(evo_backend_cuda_new(1, &other), EVO_STATUS_OK, "%s", evo_last_error());
  run_log plain = {0}, on1 = {0};
  disturbed_log d = {.other = other};
  evo_trainer_summary s0, s1, sd;
  char dev0[192], dev1[192];
  run_to_end(CARTPOLE("cuda:0", "4"), &plain, NULL, false, &s0, dev0, sizeof dev0);
  run_to_end(CARTPOLE("cuda:1", "4"), &on1, NULL, false, &s1, dev1, sizeof dev1);
  cr_assert(!strncmp(dev1, "cuda:1 (", 8), "%s", dev1);
  evo_config *c;
  cr_assert_eq(evo_config_parse(CARTPOLE("cuda:0", "4"), "t.yaml", &c), EVO_STATUS_OK, "%s", evo_last_error());
  evo_trainer_params p = evo_trainer_default_params();
  p.note = on_note, p.progress = on_progress_elsewhere, p.user = &d;
  evo_trainer *t;
  cr_assert_eq(evo_trainer_new(c, &p, &t), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(evo_trainer_run(t), EVO_STATUS_OK, "%s", evo_last_error());
  evo_trainer_summary_get(t, &sd);
  cr_assert(sd.population_on_device, "the population stayed on the host: the device sampling path is not tested");
  const double test_d = sd.test_score;
  evo_trainer_free(t);
  evo_config_free(c);
  cr_assert_eq(d.log.iters, 4);
  for (int i = 0; i < 4; i++) {
    cr_assert(memcmp(&d.log.best[i], &plain.best[i], sizeof(double)) == 0 &&
                  memcmp(&d.log.mean[i], &plain.mean[i], sizeof(double)) == 0,
              "iteration %d: best %.17g / %.17g, mean %.17g / %.17g", i + 1, d.log.best[i], plain.best[i],
              d.log.mean[i], plain.mean[i]);
    cr_assert(memcmp(&on1.mean[i], &plain.mean[i], sizeof(double)) == 0, "iteration %d: cuda:1 mean %.17g, cuda:0 "
              "%.17g", i + 1, on1.mean[i], plain.mean[i]);
  }
  cr_assert(memcmp(&test_d, &s0.test_score, sizeof(double)) == 0 && memcmp(&s1.test_score, &s0.test_score,
            sizeof(double)) == 0, "test %.17g / %.17g / %.17g", test_d, s0.test_score, s1.test_score);
  evo_backend_free(other);
}
