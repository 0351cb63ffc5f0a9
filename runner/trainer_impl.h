/* Internal: the trainer's parts, shared by trainer_setup.c (config -> objects), trainer_eval.c (fitness and test
   episodes), checkpoint.c (state files) and trainer.c (the loop and the run folder). */
#ifndef EVOC_TRAINER_IMPL_H
#define EVOC_TRAINER_IMPL_H
#include "evoc/algo.h"
#include "evoc/backend.h"
#include "evoc/policy.h"
#include "evoc/sim.h"
#include "evoc/task.h"
#include "evoc/trainer.h"

/* Fitness of parameter rows: through a policy and the simulation manager, or "direct" (the parameters are the
   action, as for the functions task). */
typedef struct {
  bool direct;
  evo_task *task, *test_task;
  evo_policy *pol, *test_pol; /* NULL when direct */
  evo_sim *sim, *test_sim;    /* NULL when direct */
  evo_ptree *direct_tree;     /* direct: one entry "x" [D] */
  int64_t D;
  int n_repeats;
  bool normalize_obs, crn;
  int bd_dim; /* behaviour descriptors the algorithm needs per member; 0: none */
  /* direct-mode buffers */
  int64_t cap;
  float *obs, *reward, *bd;
  uint8_t *done, *alive;
  evo_key *keys;
  double *ret;
} evo_evaluator;

/* fitness[n] of population rows first_member .. first_member + n - 1, the first n rows of pop (host memory, or
   the sim's device: evo_sim_evaluate_tensor); with bd_dim > 0 also bd[n, bd_dim] (each member's descriptors
   averaged over its repeats). */
evo_status evo_evaluator_population(evo_evaluator *e, const evo_tensor *pop, int n, int64_t first_member,
                                    evo_key key, float *fitness, float *bd);
/* Returns of test episodes first .. first + n - 1 of a test of total (episode j from fold_in(key, j)); copies the
   training normaliser into the test simulation first. */
evo_status evo_evaluator_test_returns(evo_evaluator *e, const float *params, int64_t first, int n, int total,
                                      evo_key key, double *ret);
const evo_ptree *evo_evaluator_tree(const evo_evaluator *e);
/* Saves params (+ normaliser statistics when normalize_obs) as safetensors that evo_ptree_load reads. */
evo_status evo_evaluator_save_params(evo_evaluator *e, const float *params, const char *path, int64_t iteration,
                                     double score);
/* Loads params (+ normaliser statistics when the file has them) into the test side. */
evo_status evo_evaluator_load_params(evo_evaluator *e, float *params, const char *path);
void evo_evaluator_free(evo_evaluator *e);

/* Normaliser arrays of the training simulation (n = 0 when there is none). */
void evo_evaluator_normalizer(evo_evaluator *e, double **count, double **mean, double **m2, int64_t *n);

/* Everything a checkpoint must restore besides the algorithm (f64 so one tensor holds it). */
typedef struct {
  int64_t iteration, evaluations, last_test_iter, metrics_bytes;
  double wall_s, best_train, best_test, last_test, best_objective;
} evo_trainer_state;

struct evo_trainer {
  evo_config *cfg;
  evo_trainer_params p;
  char *out_dir;        /* rank 0's run folder; NULL on other ranks and when nothing is written */
  char *resume_dir;     /* other ranks of a resumed run: the folder whose checkpoint they read */
  evo_comm *comm, *own_comm; /* p.comm, or a local one the trainer made */
  int rank, ranks;
  evo_backend *be;      /* task, policy plans and rollouts: the config's device */
  evo_backend *host_be; /* the algorithm's population (ask writes host memory): be itself, or a CPU backend */
  char device[192], device_note[512]; /* "cpu" | "cuda:0 (name)", and how it was chosen */
  /* what the run is */
  int64_t seed;
  evo_key root, algo_key, train_key, test_key;
  char task_name[128], policy_name[32], algo_name[32];
  evo_evaluator ev;
  evo_algo *algo;
  /* trainer options */
  int64_t max_iter, log_interval, test_interval, n_evaluations, ckpt_interval, keep_ckpt, max_evals;
  double max_seconds, target_score, target_objective;
  bool has_target, is_objective, plot, maximize;
  /* run state */
  evo_trainer_state s;
  evo_trainer_stop stop;
  double t_start; /* monotonic seconds at the start of this session */
  /* buffers */
  evo_tensor *pop;
  int pop_cap;
  float *fitness, *bd, *best_params;
  double *test_ret, *norm_xchg; /* test returns; members' observation statistics [pop, 1 + 2m] */
  int64_t test_cap, norm_cap;
  bool plot_noted, nan_noted, dir_open;
};

double evo_trainer_now(void);

/* checkpoint.c */
evo_status evo_checkpoint_save(evo_trainer *t);
bool evo_checkpoint_exists(const char *dir);
/* Restores the latest complete checkpoint of t->out_dir; NOT_FOUND when there is none. */
evo_status evo_checkpoint_load(evo_trainer *t);

/* trainer_setup.c */
evo_status evo_trainer_setup(evo_trainer *t);

#endif
