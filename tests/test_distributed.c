/* Distributed runs (comm.h, DESIGN.md §6): the share arithmetic and the local backend; the collectives across
   three threads (evo_comm_threads_new) and across three MPI processes (tests/mpi/comm_check.c under mpirun), both
   through tests/comm_checks.h; and `evoc run --ranks R` and `mpirun -np R evoc run` against a one-process run: the
   same metrics and files bit for bit (uneven shares, independent noise, the observation normaliser, MAP-Elites
   descriptors, restarts that change the population, a test with fewer episodes than ranks, resume on another rank
   count), a failure on one rank ending every rank, and ranks with different configs refused. */
#define _GNU_SOURCE /* memmem */
#include <math.h>
#include <pthread.h>
#include "cli_test_util.h"
#include "comm_checks.h"
#include "evoc/backend.h"
#include "evoc/comm.h"

#define CFG EVOC_CONFIGS_DIR

/* ---------------------------------------------------------------- in-process */

Test(comm, slices_tile_the_population_in_rank_order) {
  for (int size = 1; size <= 7; size++)
    for (int64_t n = 0; n <= 40; n++) {
      int64_t prev_end = 0, lo = INT64_MAX, hi = 0;
      for (int r = 0; r < size; r++) {
        int64_t b, e;
        evo_comm_slice(n, r, size, &b, &e);
        cr_assert_eq(b, prev_end, "n %lld, %d ranks: rank %d starts at %lld", (long long)n, size, r, (long long)b);
        cr_assert_geq(e, b);
        lo = e - b < lo ? e - b : lo, hi = e - b > hi ? e - b : hi;
        prev_end = e;
      }
      cr_assert_eq(prev_end, n, "shares of %lld over %d ranks end at %lld", (long long)n, size, (long long)prev_end);
      cr_assert_leq(hi - lo, 1, "shares of %lld over %d ranks differ by %lld", (long long)n, size, (long long)(hi - lo));
    }
}

Test(comm, local_backend_is_one_rank) {
  evo_comm *c;
  cr_assert_eq(evo_comm_open("local", &c), EVO_STATUS_OK);
  cr_assert_str_eq(evo_comm_name(c), "local");
  cr_assert_eq(evo_comm_rank(c), 0);
  cr_assert_eq(evo_comm_size(c), 1);
  cr_assert_eq(evo_comm_local_size(c), 1);
  float x[3] = {1, 2, 3};
  cr_assert_eq(evo_comm_allgather(c, x, 3, sizeof(float)), EVO_STATUS_OK);
  cr_assert(x[0] == 1 && x[1] == 2 && x[2] == 3);
  cr_assert_eq(evo_comm_broadcast(c, x, sizeof x, 0), EVO_STATUS_OK);
  cr_assert_eq(evo_comm_broadcast(c, x, sizeof x, 1), EVO_STATUS_INVALID_ARGUMENT);
  cr_assert_eq(evo_comm_allgather(c, x, -1, 4), EVO_STATUS_INVALID_ARGUMENT);
  cr_assert_eq(evo_comm_agree(c, EVO_STATUS_OK), EVO_STATUS_OK);
  evo_error(EVO_STATUS_IO, "mine");
  cr_assert_eq(evo_comm_agree(c, EVO_STATUS_IO), EVO_STATUS_IO);
  cr_assert_str_eq(evo_last_error(), "mine");
  cr_assert_eq(evo_comm_barrier(c), EVO_STATUS_OK);
  evo_comm_free(c);
  cr_assert_eq(evo_comm_open("carrier-pigeon", &c), EVO_STATUS_INVALID_ARGUMENT);
  cr_assert_null(c);
  cr_assert(strstr(evo_last_error(), "auto, local, mpi or nccl"), "%s", evo_last_error());
}

Test(comm, auto_is_local_outside_mpirun) {
  unsetenv("OMPI_COMM_WORLD_SIZE"), unsetenv("PMI_SIZE"), unsetenv("PMIX_RANK"), unsetenv("MV2_COMM_WORLD_SIZE");
  cr_assert_eq(evo_comm_launched_by_mpi(), 0);
  evo_comm *c;
  cr_assert_eq(evo_comm_open("auto", &c), EVO_STATUS_OK);
  cr_assert_str_eq(evo_comm_name(c), "local");
  evo_comm_free(c);
#ifndef EVOC_HAVE_MPI
  cr_assert_eq(evo_comm_open("mpi", &c), EVO_STATUS_UNSUPPORTED);
  cr_assert(strstr(evo_last_error(), "-DEVOC_MPI=ON"), "%s", evo_last_error());
#endif
}

TestSuite(comm_cli, .init = setup, .fini = teardown, .timeout = 60);

Test(comm_cli, run_refuses_an_unknown_comm_and_runs_alone_by_default) {
  cr_assert_eq(evoc("run %s/quick_pgpe.yaml --out x --comm pigeon", CFG), 2);
  cr_assert(strstr(err_buf, "--comm pigeon") && strstr(err_buf, "auto, local, mpi or nccl"), "%s", err_buf);
  cr_assert_eq(evoc("run %s/quick_pgpe.yaml --out alone --quiet --set trainer.max_iter=5", CFG), 0, "%s", err_buf);
  cJSON *s = read_json("alone", "summary.json");
  cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(s, "comm")->valuestring, "local");
  cr_assert_eq(jnum(s, "ranks"), 1);
  cJSON_Delete(s);
}

/* ---------------------------------------------------------------- under mpirun */

/* ---------------------------------------------------------------- ranks: threads of one process or MPI */

static void ranks_setup(void) {
  setup();
  /* containers run tests as root, and CI machines have fewer cores than the ranks asked for */
  setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
  setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
  setenv("OMPI_MCA_rmaps_base_oversubscribe", "1", 1);
}

TestSuite(threads, .init = ranks_setup, .fini = teardown, .timeout = 240);

typedef struct {
  evo_comm *c;
  int rc;
} check_job;

static void *check_thread(void *p) {
  check_job *j = p;
  j->rc = comm_checks(j->c, "threads");
  return NULL;
}

Test(threads, collectives_across_three_threads) {
  evo_comm *c[3];
  check_job jobs[3];
  pthread_t tid[3];
  cr_assert_eq(evo_comm_threads_new(3, c), EVO_STATUS_OK, "%s", evo_last_error());
  for (int r = 0; r < 3; r++) {
    jobs[r] = (check_job){c[r], -1};
    cr_assert_eq(pthread_create(&tid[r], NULL, check_thread, &jobs[r]), 0);
  }
  for (int r = 0; r < 3; r++) pthread_join(tid[r], NULL);
  for (int r = 0; r < 3; r++) {
    cr_assert_eq(jobs[r].rc, 0, "rank %d failed a check (stdout says which)", r);
    cr_assert_eq(evo_comm_local_rank(c[r]), r);
    evo_comm_free(c[r]);
  }
  cr_assert_eq(evo_comm_threads_new(0, c), EVO_STATUS_INVALID_ARGUMENT);
}

#ifdef EVOC_HAVE_MPI
/* `mpiexec -n RANKS EXE ARGS` in the temp folder (stdout and stderr captured like evoc()). */
static int mpi(int ranks, const char *exe, const char *fmt, ...) {
  char args[4096], cmd[9000];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(args, sizeof args, fmt, ap);
  va_end(ap);
  /* Sanitizer builds: Open MPI's own start-up allocations are reported as leaks from modules the report cannot
     name, so leak checking is off under mpirun (memory errors still abort); the same code paths are leak-checked
     on threads (--ranks). */
  snprintf(cmd, sizeof cmd, "cd '%s' && ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 '%s' -n %d '%s' %s > stdout.txt "
           "2> stderr.txt", tmp, EVOC_MPIEXEC, ranks, exe, args);
  int rc = system(cmd);
  char p[400];
  snprintf(p, sizeof p, "%s/stdout.txt", tmp);
  slurp(p, out_buf, sizeof out_buf);
  snprintf(p, sizeof p, "%s/stderr.txt", tmp);
  slurp(p, err_buf, sizeof err_buf);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}
#endif

/* `evoc run ARGS` on `ranks` ranks, `how`: "mpi" (processes under mpirun), "threads" (--ranks) or "nccl" (--ranks
   with --comm nccl). */
static int run_on(int ranks, const char *how, const char *args) {
#ifdef EVOC_HAVE_MPI
  if (!strcmp(how, "mpi")) return mpi(ranks, EVOC_CLI_PATH, "run %s", args);
#endif
  cr_assert(strcmp(how, "mpi"), "built without MPI");
  return evoc("run %s --ranks %d%s", args, ranks, strcmp(how, "nccl") ? "" : " --comm nccl");
}

/* R ranks against one: identical metrics (but wall time), best parameters and final algorithm state. */
static void ranks_match(int ranks, const char *how, const char *cfg, const char *sets, int iters) {
  char rm[600], args[4096];
  snprintf(rm, sizeof rm, "rm -rf '%s/one' '%s/many'", tmp, tmp);
  cr_assert_eq(system(rm), 0);
  int rc = evoc("run %s --out one --quiet %s --set trainer.max_iter=%d", cfg, sets, iters);
  cr_assert_eq(rc, 0, "%s: %s", cfg, err_buf);
  snprintf(args, sizeof args, "%s --out many --quiet %s --set trainer.max_iter=%d", cfg, sets, iters);
  rc = run_on(ranks, how, args);
  cr_assert_eq(rc, 0, "%s on %d ranks: %s", cfg, ranks, err_buf);
  char *a = metrics_without_wall("one"), *b = metrics_without_wall("many");
  cr_assert_str_eq(a, b, "%s: metrics differ between 1 and %d ranks", cfg, ranks);
  free(a), free(b);
  same_file("one", "many", "best.safetensors");
  char ck[128];
  snprintf(ck, sizeof ck, "checkpoints/iter_%09d.algo.safetensors", iters);
  same_file("one", "many", ck);
  cJSON *s = read_json("many", "summary.json");
  cr_assert_eq(jnum(s, "ranks"), ranks);
  cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(s, "comm")->valuestring, how);
  cJSON_Delete(s);
}

/* 14 members over 3 ranks (4, 5, 5), 2 episodes each with their own starts, 7 test episodes (2, 2, 3), and the
   observation normaliser (per-member statistics merged in member order) */
static const char uneven[] = "--set algo.pop_size=14 --set trainer.n_repeats=2 --set trainer.common_random_numbers=false "
                             "--set trainer.n_evaluations=7 --set trainer.test_interval=3 --set trainer.log_interval=1 "
                             "--set trainer.normalize_obs=true";

static void resume_on_another_rank_count(const char *how) {
  const char *cfg = CFG "/cartpole_swingup_easy_pgpe.yaml";
  const char *sets = "--set algo.pop_size=12 --set trainer.n_repeats=2 --set trainer.n_evaluations=4 "
                     "--set trainer.test_interval=4 --set trainer.log_interval=2 --set trainer.checkpoint_interval=4 "
                     "--set trainer.normalize_obs=true --set device=cpu";
  char args[2048];
  int rc = evoc("run %s --out full --quiet %s --set trainer.max_iter=8", cfg, sets);
  cr_assert_eq(rc, 0, "%s", err_buf);
  snprintf(args, sizeof args, "%s --out half --quiet %s --set trainer.max_iter=4", cfg, sets);
  cr_assert_eq(run_on(2, how, args), 0, "%s", err_buf);
  cr_assert_eq(run_on(3, how, "--resume half --quiet --set trainer.max_iter=8"), 0, "%s", err_buf);
  char *a = metrics_without_wall("full"), *b = metrics_without_wall("half");
  cr_assert_str_eq(a, b, "resumed on 3 ranks: metrics differ");
  free(a), free(b);
  same_file("full", "half", "best.safetensors");
  same_file("full", "half", "checkpoints/iter_000000008.algo.safetensors");
}

static void failure_on_one_rank_ends_every_rank(const char *how) {
  /* only rank 0 touches the run folder: when it cannot, the others must not wait for it */
  write_file("blocker", "a file where the run folder should go\n");
  char args[1024];
  snprintf(args, sizeof args, "%s/quick_pgpe.yaml --out blocker/run --quiet", CFG);
  int rc = run_on(3, how, args);
  cr_assert_eq(rc, 2, "exit %d: %s", rc, err_buf);
  cr_assert(strstr(err_buf, "blocker"), "the error does not name the folder: %s", err_buf);
  /* a config error stops every rank before anything runs */
  snprintf(args, sizeof args, "%s/quick_pgpe.yaml --out x --set algo.pop_size=-3 --quiet", CFG);
  rc = run_on(2, how, args);
  cr_assert_eq(rc, 2, "exit %d: %s", rc, err_buf);
  cr_assert(strstr(err_buf, "pop_size"), "%s", err_buf);
}

/* Threads share the CPU backend's code and the task code; the device stays the CPU here (the CUDA emulator is not
   meant for several host threads; a real GPU build runs the same tests with device auto under mpirun). */
Test(threads, three_ranks_equal_one_with_uneven_shares_noise_and_normalizer) {
  char sets[1024];
  snprintf(sets, sizeof sets, "%s --set device=cpu", uneven);
  ranks_match(3, "threads", CFG "/cartpole_swingup_hard_pgpe.yaml", sets, 6);
#ifdef EVOC_HAVE_MUJOCO
  ranks_match(2, "threads", CFG "/hopper_ars.yaml", "--set trainer.n_evaluations=3 --set trainer.test_interval=2", 3);
#endif
}

/* On a device the plan's shape picks the kernel (the fused matmul+bias+tanh for <= 64 rows per member, cuBLAS
   beyond), so a test split over ranks must run in plans of the whole test's shape: 100 test episodes, 50 per rank.
   GPU test: runs on a GPU or the emulated one, skips elsewhere. */
Test(threads, two_ranks_on_a_gpu_equal_one_with_a_split_test) {
  if (evo_cuda_device_count() == 0) cr_skip_test("no usable CUDA device");
  ranks_match(2, "threads", CFG "/cartpole_swingup_easy_pgpe.yaml",
              "--set device=cuda --set task.max_steps=50 --set algo.pop_size=14 --set trainer.n_evaluations=100 "
              "--set trainer.test_interval=2 --set trainer.log_interval=1",
              3);
}

Test(threads, map_elites_restarts_empty_shares_and_a_one_episode_test) {
  /* direct policy on the functions task; one test episode over 2 ranks leaves rank 0 without a share */
  ranks_match(2, "threads", CFG "/quick_map_elites.yaml", "--set trainer.test_interval=5 --set trainer.log_interval=5", 20);
  ranks_match(3, "threads", CFG "/quick_cmaes.yaml", "--set trainer.n_evaluations=1 --set trainer.target_objective=0", 25);
  /* fewer members than ranks: ranks with no member still take part in every exchange */
  ranks_match(4, "threads", CFG "/cartpole_swingup_easy_pgpe.yaml", "--set algo.pop_size=2 --set trainer.n_repeats=1 "
              "--set trainer.normalize_obs=true --set trainer.n_evaluations=3 --set device=cpu", 3);
  /* Cholesky-CMA-ES at n = 300: its BLAS calls thread on one rank (2 cores) and not on three, with the same bits */
  ranks_match(3, "threads", CFG "/quick_cholesky_cmaes.yaml", "--set task.dim=300 --set trainer.target_objective=0 "
              "--set trainer.test_interval=10 --set trainer.log_interval=5", 20);
  /* BIPOP-CMA-ES on Rastrigin: restarts change the population size mid-run */
  ranks_match(3, "threads", CFG "/quick_cmaes.yaml", "--set algo.restarts=bipop --set task.function=rastrigin "
              "--set trainer.target_objective=0 --set trainer.test_interval=100", 400);
}

Test(threads, resume_on_another_rank_count) { resume_on_another_rank_count("threads"); }
Test(threads, a_failure_on_one_rank_ends_every_rank) { failure_on_one_rank_ends_every_rank("threads"); }

Test(threads, ranks_is_an_option_of_run_alone) {
  cr_assert_eq(evoc("run %s/quick_pgpe.yaml --ranks 0", CFG), 2);
  cr_assert(strstr(err_buf, "--ranks must be an integer in [1, 1024]"), "%s", err_buf);
  cr_assert_eq(evoc("run %s/quick_pgpe.yaml --ranks 2 --comm local", CFG), 2);
  cr_assert(strstr(err_buf, "not with --comm local or mpirun"), "%s", err_buf);
  cr_assert_eq(evoc("train %s/quick_pgpe.yaml --ranks 2", CFG), 2);
  cr_assert(strstr(err_buf, "options of evoc run"), "%s", err_buf);
}

/* ---------------------------------------------------------------- NCCL */
/* GPU tests: on GPUs with NCCL, or on three emulated GPUs (EVO_EMU_DEVICES, which real CUDA ignores); with one
   GPU only one NCCL rank fits (NCCL refuses two ranks on a GPU), so a single-GPU machine checks that one. */
static void nccl_setup(void) {
  ranks_setup();
  setenv("EVO_EMU_DEVICES", "3", 1);
}
TestSuite(nccl, .init = nccl_setup, .fini = teardown, .timeout = 240);

static int nccl_ranks(int want) {
#ifndef EVOC_HAVE_NCCL
  cr_skip_test("built without NCCL");
#endif
  const int g = evo_cuda_device_count();
  if (g == 0) cr_skip_test("no usable CUDA device");
  return g < want ? g : want;
}

static void *nccl_check_thread(void *p) {
  check_job *j = p;
  j->rc = comm_checks(j->c, "nccl");
  return NULL;
}

Test(nccl, collectives_across_gpus_and_a_gpu_each) {
  const int n = nccl_ranks(3), gpus = evo_cuda_device_count();
  evo_comm *c[3];
  check_job jobs[3];
  pthread_t tid[3];
  cr_assert_eq(evo_comm_nccl_threads_new(n, c), EVO_STATUS_OK, "%s", evo_last_error());
  for (int r = 0; r < n; r++) {
    cr_assert_str_eq(evo_comm_name(c[r]), "nccl");
    cr_assert(evo_comm_rank(c[r]) == r && evo_comm_size(c[r]) == n && evo_comm_local_rank(c[r]) == r);
  }
  if (n > 1) { /* the checks' agreement step needs a rank 1 */
    for (int r = 0; r < n; r++) {
      jobs[r] = (check_job){c[r], -1};
      cr_assert_eq(pthread_create(&tid[r], NULL, nccl_check_thread, &jobs[r]), 0);
    }
    for (int r = 0; r < n; r++) pthread_join(tid[r], NULL);
    for (int r = 0; r < n; r++) cr_assert_eq(jobs[r].rc, 0, "rank %d failed a check (stdout says which)", r);
  }
  for (int r = 0; r < n; r++) evo_comm_free(c[r]);
  evo_comm **many = calloc((size_t)gpus + 1, sizeof *many);
  cr_assert_eq(evo_comm_nccl_threads_new(gpus + 1, many), EVO_STATUS_INVALID_ARGUMENT);
  cr_assert(strstr(evo_last_error(), "NCCL needs a GPU of its own for each rank"), "%s", evo_last_error());
  cr_assert_null(many[0]);
  free(many);
}

/* NCCL only carries the bytes: a run over NCCL ranks equals a one-rank run bit for bit, computing on the CPU (uneven
   shares, independent noise, the normaliser) and on a GPU per rank (device cuda gives rank r GPU r). */
Test(nccl, ranks_equal_one_rank_on_the_cpu_and_on_a_gpu_each) {
  const int n = nccl_ranks(3);
  char sets[1024];
  snprintf(sets, sizeof sets, "%s --set device=cpu", uneven);
  ranks_match(n, "nccl", CFG "/cartpole_swingup_hard_pgpe.yaml", sets, 4);
  ranks_match(n < 2 ? n : 2, "nccl", CFG "/cartpole_swingup_easy_pgpe.yaml",
              "--set device=cuda --set task.max_steps=50 --set algo.pop_size=14 --set trainer.n_evaluations=100 "
              "--set trainer.test_interval=2 --set trainer.log_interval=1", 3);
}

/* Every build: without NCCL or without a GPU, --comm nccl says why (and exits 2); more ranks than GPUs too. */
Test(comm_cli, nccl_says_why_it_cannot_run) {
  setenv("EVO_EMU_DEVICES", "0", 1); /* the emulated machine has no GPU; a real one keeps its GPUs */
  const int gpus = evo_cuda_device_count();
  int rc = evoc("run %s/quick_pgpe.yaml --comm nccl --quiet --out alone", CFG);
#ifndef EVOC_HAVE_NCCL
  cr_assert_eq(rc, 2, "exit %d: %s", rc, err_buf);
  cr_assert(strstr(err_buf, "--comm nccl: comm: this evoc was built without NCCL"), "%s", err_buf);
  (void)gpus;
#else
  if (gpus == 0) {
    cr_assert_eq(rc, 2, "exit %d: %s", rc, err_buf);
    cr_assert(strstr(err_buf, "--comm nccl: comm nccl: no usable CUDA device"), "%s", err_buf);
  } else {
    cr_assert_eq(rc, 0, "one NCCL rank on a GPU: exit %d: %s", rc, err_buf);
  }
  setenv("EVO_EMU_DEVICES", "2", 1);
  const int g = evo_cuda_device_count();
  rc = evoc("run %s/quick_pgpe.yaml --ranks %d --comm nccl --quiet --out crowded", CFG, g + 1);
  cr_assert_eq(rc, 1, "exit %d: %s", rc, err_buf);
  cr_assert(strstr(err_buf, g ? "NCCL needs a GPU of its own for each rank" : "no usable CUDA device"), "%s", err_buf);
#endif
}

#ifdef EVOC_HAVE_MPI
TestSuite(distributed, .init = ranks_setup, .fini = teardown, .timeout = 240);

Test(distributed, mpi_collectives_across_three_ranks) {
  int rc = mpi(3, EVOC_COMM_CHECK, "");
  cr_assert_eq(rc, 0, "comm_check failed:\n%s\n%s", out_buf, err_buf);
  for (int r = 0; r < 3; r++) {
    char want[32];
    snprintf(want, sizeof want, "rank %d ok", r);
    cr_assert(strstr(out_buf, want), "no '%s' in:\n%s", want, out_buf);
  }
}

/* device auto: in a CUDA build (or the emulator's) the CartPole rollouts run on the device */
Test(distributed, three_processes_equal_one) {
  ranks_match(3, "mpi", CFG "/cartpole_swingup_hard_pgpe.yaml", uneven, 6);
  long n;
  char *b = file_bytes("many", "best.safetensors", &n);
  cr_assert(memmem(b, (size_t)n, "obs_norm.m2", 11), "best.safetensors has no normaliser");
  free(b);
#ifdef EVOC_HAVE_MUJOCO
  ranks_match(2, "mpi", CFG "/hopper_ars.yaml", "--set trainer.n_evaluations=3 --set trainer.test_interval=2", 3);
#endif
}

Test(distributed, resume_on_another_process_count) { resume_on_another_rank_count("mpi"); }

Test(distributed, a_failure_on_one_process_ends_every_process) {
  failure_on_one_rank_ends_every_rank("mpi");
  /* processes that read different configs (here: one seed each, through mpirun's MPMD form) are refused */
  int rc = mpi(1, EVOC_CLI_PATH, "run %s/quick_pgpe.yaml --out mixed --set seed=1 : -n 1 '%s' run %s/quick_pgpe.yaml "
               "--out mixed --set seed=2", CFG, EVOC_CLI_PATH, CFG);
  cr_assert_eq(rc, 2, "exit %d: %s", rc, err_buf);
  cr_assert(strstr(err_buf, "rank 1's resolved config differs from rank 0's"), "%s", err_buf);
}

/* mpirun with --comm nccl: MPI carries NCCL's id. Two processes on a host with one GPU are refused on every rank
   before any waits in ncclCommInitRank (the emulator shows one GPU here; hosts with two GPUs or more run). */
Test(distributed, nccl_under_mpirun_agrees_before_it_waits) {
  setenv("EVO_EMU_DEVICES", "1", 1);
  const int gpus = evo_cuda_device_count();
  int rc = mpi(2, EVOC_CLI_PATH, "run %s/quick_pgpe.yaml --comm nccl --quiet --out mpi_nccl", CFG);
#ifdef EVOC_HAVE_NCCL
  if (gpus >= 2) {
    cr_assert_eq(rc, 0, "exit %d: %s", rc, err_buf);
    return;
  }
  cr_assert(strstr(err_buf, gpus ? "2 ranks on this host but 1 GPU" : "no usable CUDA device"), "%s", err_buf);
#else
  cr_assert(strstr(err_buf, "built without NCCL"), "%s", err_buf);
  (void)gpus;
#endif
  cr_assert_eq(rc, 2, "exit %d: %s", rc, err_buf);
}
#endif
