/* The ES trainer (EvoJAX's Trainer): a run described by a config, driven by ask -> evaluate -> tell, with logging,
 * testing, checkpoints and a run folder (run.h). The CLI (`evoc run`, `evoc eval`, `evoc check`) is a thin layer
 * over this; programs embedding evoc use it the same way.
 *
 * Config (every key validated, unknown keys get "did you mean"; defaults are recorded so the run folder's
 * config.yaml shows every value the run used):
 *   seed: 0                      one integer drives everything (algorithm, episodes, tests, initialisation)
 *   device: auto                 auto | cpu | cuda | cuda:N (evo_device_open); auto takes GPU 0 when one is
 *                                usable, else the CPU, and the CPU for policy direct; the choice and its reason
 *                                go to the note callback and to summary.json ("device", "device_note")
 *   task:    {name: ... | plugin: ..., task options}
 *   policy:  {name: mlp | cnn | lstm | direct, policy options}  direct: the parameters are the action itself
 *            (the default for the `functions` task, whose action is the point to evaluate)
 *   algo:    name (required), pop_size (0: the algorithm's default), init_stdev (0: default), maximize (true),
 *            x0 (start point: a number, a list of num_params numbers, or policy_init; default 0), and the
 *            algorithm's own options (evo_algo_info) under their names
 *   trainer: max_iter 1000, log_interval 10, test_interval 100, n_evaluations 100 (test episodes),
 *            n_repeats 1 (episodes per member), normalize_obs false, common_random_numbers true,
 *            task_threads 0 (threads stepping a host task that allows it; 0: OMP_NUM_THREADS, else the cores),
 *            checkpoint_interval 100, keep_checkpoints 2, plot true,
 *            target_score (optional: stop once a test scores at least this), max_evals 0 and max_seconds 0
 *            (budgets; 0 = none); for the functions task also target_objective 1e-8 (stop once f <= it).
 *
 * Where things run: on a CUDA device the policy's population plans run there, and so does the task when it
 * supports the device (CartPole: state, steps and rollouts never leave the GPU; sim.h). A host task (MNIST, the
 * functions task with a policy, plugins) steps on the host with one copy of observations and actions each way per
 * step. The algorithm's ask/tell stay on the host: each generation the population [P, D] is copied to the device
 * once (the simulation manager's upload of each chunk) and P fitness values come back. Parameters, checkpoints,
 * best.safetensors and tests are host-side, so a run may resume or be evaluated on another device; fitness
 * differs from the CPU's only by float reordering. policy direct evaluates on the host whatever the device (and
 * refuses a task that keeps its state on the device).
 *
 * Iterations count completed generations (1..max_iter). Iteration i logs when i % log_interval == 0, tests the
 * algorithm's recommendation (evo_algo_best) when i % test_interval == 0 and checkpoints when
 * i % checkpoint_interval == 0; the last iteration always logs, tests and checkpoints. Generation keys are pure
 * functions of (seed, iteration), so a resumed run continues bit-identically.
 */
#ifndef EVOC_TRAINER_H
#define EVOC_TRAINER_H
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include "evoc/comm.h"
#include "evoc/config.h"
#include "evoc/status.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  EVO_TRAINER_RUNNING = 0,
  EVO_TRAINER_MAX_ITER,
  EVO_TRAINER_TARGET,
  EVO_TRAINER_MAX_EVALS,
  EVO_TRAINER_MAX_SECONDS,
  EVO_TRAINER_ALGO_STOP,   /* the algorithm's own stop criterion (no restart left) */
  EVO_TRAINER_INTERRUPTED  /* the interrupt flag was raised: checkpoint written, no final test */
} evo_trainer_stop;

/* "max_iter", "target", "max_evals", "max_seconds", "algo_stop", "interrupted", "running". */
const char *evo_trainer_stop_name(evo_trainer_stop s);

/* What the progress callback sees after every iteration. */
typedef struct {
  int64_t iteration, max_iter;
  int64_t evaluations;        /* training episodes so far */
  double wall_s;              /* since the start of the run (resumed runs continue the count) */
  double best, mean, min, std; /* this generation's fitness (finite values only) */
  int64_t nan_members;        /* this generation */
  bool tested;                /* this iteration ran a test */
  double test;                /* its score (NAN when not tested, or when the policy gave non-finite actions) */
  double best_test;           /* best test score so far, NAN before the first test */
  const char *metrics_line;   /* the JSON line written to metrics.jsonl (no newline), NULL when none */
} evo_trainer_progress;

typedef void (*evo_trainer_progress_fn)(const evo_trainer_progress *p, void *user);
/* Notes for the user ("device auto: using cpu", "gnuplot not found: no learning_curve.png"). */
typedef void (*evo_trainer_note_fn)(const char *msg, void *user);

typedef struct {
  const char *out_dir;     /* run folder; NULL: nothing is written */
  bool resume;             /* continue from out_dir's latest checkpoint */
  evo_trainer_progress_fn progress;
  evo_trainer_note_fn note;
  void *user;
  /* Polled between iterations: nonzero stops the run, writes a checkpoint and the summary
     (stopped_because "interrupted"). Typically set by a SIGINT handler. */
  volatile sig_atomic_t *interrupt;
  /* Distributed run (comm.h): this process's rank, borrowed; NULL: one rank. Every rank builds the same trainer
     from the same config; rank r evaluates members [r*P/R, (r+1)*P/R) and its share of the test episodes, the
     ranks exchange fitness (descriptors, test returns, observation statistics) and keep identical algorithm
     state. Rank 0 alone writes the run folder, decides when to stop (budgets, the interrupt flag) and reports
     progress and notes; on resume every rank reads the checkpoint, so the folder must be visible to all. On the
     CPU the run is bit-identical to a one-rank run (the normaliser too: its statistics are gathered per member);
     on a GPU, where cuBLAS may choose another kernel for another batch size, it may differ in the last bits
     (scripts/gpu_check.sh records which). */
  evo_comm *comm;
} evo_trainer_params;

evo_trainer_params evo_trainer_default_params(void);

typedef struct evo_trainer evo_trainer;

/* Reads and validates the whole config (errors carry "file:line:col" and EVO_STATUS_INVALID_ARGUMENT/NOT_FOUND/
   FORMAT; a missing data folder or plugin is IO/NOT_FOUND naming the path) and builds task, policy, algorithm and
   simulation. Writes nothing. The config is borrowed and must outlive the trainer. */
evo_status evo_trainer_new(evo_config *cfg, const evo_trainer_params *p, evo_trainer **out);
void evo_trainer_free(evo_trainer *t);

/* With an out_dir: creates it and proves it writable, refuses a fresh run in a folder that already holds one
   (metrics.jsonl or checkpoints), restores the latest checkpoint when resuming (metrics.jsonl is cut back to the
   checkpoint's length) and writes config.yaml. evo_trainer_run calls it when the caller has not, so callers only
   need it to tell a bad folder (before anything runs) from a failed run. */
evo_status evo_trainer_open_dir(evo_trainer *t);
/* Runs to a stop condition, writing the files of run.h as it goes. A run that stops at an iteration that is a
   multiple of log_interval and test_interval (always the case after an interrupt) resumes bit-identically. */
evo_status evo_trainer_run(evo_trainer *t);

typedef struct {
  const char *task, *policy, *algo;
  const char *device;        /* "cpu" or "cuda:N (GPU name)" */
  const char *device_note;   /* how it was chosen, e.g. "device auto: using cpu (cuda: no CUDA-capable device)" */
  const char *comm;          /* "local" | "mpi" */
  int ranks;                 /* processes sharing the population */
  bool population_on_device; /* sampled and evaluated on the device, never copied to the host (evo_algo_ask) */
  int64_t seed, iterations, evaluations;
  double wall_s;
  double best_train_fitness; /* best member fitness seen in training */
  double test_score;         /* the last test (of the final recommendation) */
  double best_test_score;
  evo_trainer_stop stopped_because;
  bool is_objective;         /* functions task: the two fields below are meaningful */
  double best_objective;     /* smallest f seen (training or test) */
  bool reached_target;       /* best_objective <= target_objective */
} evo_trainer_summary;

void evo_trainer_summary_get(const evo_trainer *t, evo_trainer_summary *out);
int64_t evo_trainer_num_params(const evo_trainer *t);

/* `evoc eval`: mean test return of the parameters in a safetensors file (best.safetensors or any file with the
   policy's entries; normaliser statistics are taken from it when present) over n_episodes (0: n_evaluations). */
evo_status evo_trainer_eval(evo_trainer *t, const char *params_path, int n_episodes, double *score);

#ifdef __cplusplus
}
#endif
#endif
