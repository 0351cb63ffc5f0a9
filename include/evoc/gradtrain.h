/* Gradient training (`evoc train`): the seed's workflow (JAX/Flax MNIST tutorial) on evoc's core. A policy's
 * network (policy.h, the same constructors and config as evolution runs) maps images to class scores; the loss is
 * the mean softmax cross-entropy of a mini-batch; one step is value_and_grad through a jit'd plan and an optimizer
 * update (optim.h). Parameters live apart from the model as a named tree (ptree.h), so layers can be loaded from
 * another run, re-drawn or frozen.
 *
 * Config (every key validated; unknown keys get "file:line:col: unknown key ... (did you mean ...)"):
 *   seed: 0                 initialisation (key fold_in(seed, 1)) and shuffling (fold_in(seed, 2))
 *   device: auto            auto | cpu | cuda | cuda:N: the plans run there; on a GPU the trained parameters and the
 *                           optimizer (but ClipUp) stay there too, copied to the host for checkpoints
 *   task:    name: mnist    the dataset kind: the four MNIST-style IDX files (mnist.h)
 *            data_dir: /usr/share/datasets/fashion-mnist
 *   policy:  mlp or cnn as for evolution runs (policy.h); the network must end in class scores [classes]
 *            (logits or log-probabilities). An mlp without `output` gets output: linear.
 *   optim:   name adam (sgd | momentum | nesterov | adam | adamw | clipup), lr, momentum, beta1, beta2, eps,
 *            weight_decay (adamw), max_speed (clipup), clip_norm (0: none; global norm over the trained
 *            parameters), schedule constant | exponential | cosine, decay_rate, decay_steps, alpha,
 *            warmup_steps; defaults are evo_optim_default_params of the kind. Schedules count steps.
 *   data:    batch_size 128, shuffle true (a new permutation each epoch), drop_last true (the last partial
 *            batch of an epoch is skipped, as in the Flax tutorial; false trains on it too, with its own mean),
 *            eval_batch_size 1000 (test-set chunk; no effect on the result beyond float rounding)
 *   trainer: epochs 2, log_interval 100 (steps), max_steps 0 (stop after this many steps in all; 0: none),
 *            keep_checkpoints 2
 *   init_from: PATH         a .safetensors file (or a run folder: its best.safetensors) whose entries have the
 *                           policy's names and shapes: best.safetensors of `evoc train` or `evoc run`, a checkpoint
 *   reinit: [names]         entries re-drawn from the init seed after loading init_from (their values then equal
 *                           those of a fresh run with the same seed); the file need not hold them
 *   freeze: [names]         entries that get no gradient and no update
 * A name is a layer ("dense2": dense2.kernel and dense2.bias) or one entry ("dense2.bias"); every name must match.
 * Without init_from every entry is initialised (policy.h: LeCun normal kernels, zero biases).
 *
 * A step is one mini-batch. The permutation of epoch e (1-based) is a pure function of (seed, e), so a run
 * interrupted at any step resumes bit-identically from its checkpoint. Each epoch ends with a test-set evaluation
 * (accuracy of the argmax, mean cross-entropy); so does a run that ends by max_steps at an epoch end. The run
 * folder (run.h) holds config.yaml, metrics.jsonl (one line per log_interval steps and one per epoch end: step,
 * epoch, loss = mean training loss since the previous line, lr, wall_s, and test_acc / test_loss at epoch ends),
 * summary.json, best.safetensors (the parameters with the best test accuracy, evo_ptree_load reads it) and
 * checkpoints/step_<N>.gradtrain.safetensors (parameters, optimizer moments, position; one atomic file each),
 * written at each epoch end, when the run stops and on an interrupt.
 */
#ifndef EVOC_GRADTRAIN_H
#define EVOC_GRADTRAIN_H
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include "evoc/config.h"
#include "evoc/ptree.h"
#include "evoc/status.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  EVO_GRADTRAIN_RUNNING = 0,
  EVO_GRADTRAIN_EPOCHS,     /* trained the configured number of epochs */
  EVO_GRADTRAIN_MAX_STEPS,  /* trainer.max_steps reached */
  EVO_GRADTRAIN_INTERRUPTED /* the interrupt flag was raised: checkpoint written */
} evo_gradtrain_stop;

/* "running", "epochs", "max_steps", "interrupted". */
const char *evo_gradtrain_stop_name(evo_gradtrain_stop s);

/* What the progress callback sees after every step. */
typedef struct {
  int64_t step, total_steps;    /* steps done; steps of the whole run (epochs x steps per epoch) */
  int64_t epoch, epochs;        /* the epoch this step belongs to (1-based) */
  int64_t step_in_epoch, steps_per_epoch;
  double loss;                  /* this step's mean training loss */
  double wall_s;                /* since the start of the run (resumed runs continue the count) */
  bool tested;                  /* the epoch ended with a test */
  double test_acc, test_loss;   /* NAN when not tested */
  double best_test_acc;         /* NAN before the first test */
  const char *metrics_line;     /* the JSON line written to metrics.jsonl (no newline), NULL when none */
} evo_gradtrain_progress;

typedef void (*evo_gradtrain_progress_fn)(const evo_gradtrain_progress *p, void *user);
typedef void (*evo_gradtrain_note_fn)(const char *msg, void *user);

typedef struct {
  const char *out_dir; /* run folder; NULL: nothing is written */
  bool resume;         /* continue from out_dir's latest checkpoint */
  evo_gradtrain_progress_fn progress;
  evo_gradtrain_note_fn note;
  void *user;
  /* Polled between steps: nonzero stops the run after writing a checkpoint and the summary. */
  volatile sig_atomic_t *interrupt;
} evo_gradtrain_params;

evo_gradtrain_params evo_gradtrain_default_params(void);

typedef struct evo_gradtrain evo_gradtrain;

/* Reads and validates the whole config, loads the data, builds the policy, initialises the parameters (init_from,
   reinit) and the optimizer. Errors: INVALID_ARGUMENT / NOT_FOUND with "file:line:col: ..." for the config,
   NOT_FOUND / FORMAT naming the data or init_from path and what to do. Writes nothing. The config is borrowed and
   must outlive the trainer. */
evo_status evo_gradtrain_new(evo_config *cfg, const evo_gradtrain_params *p, evo_gradtrain **out);
void evo_gradtrain_free(evo_gradtrain *t);

/* With an out_dir: creates and probes it, refuses a fresh run in a folder that holds one, restores the latest
   checkpoint when resuming (metrics.jsonl cut back to its length), writes config.yaml. evo_gradtrain_run calls it. */
evo_status evo_gradtrain_open_dir(evo_gradtrain *t);
/* Trains to a stop condition, writing the run folder as it goes. */
evo_status evo_gradtrain_run(evo_gradtrain *t);

typedef struct {
  const char *task, *policy, *optim;
  int64_t seed, num_params, trainable_params;
  int64_t epochs_done, steps, steps_per_epoch, examples; /* epochs_done: completed epochs */
  double wall_s, seconds_per_epoch;                      /* s/epoch: mean over the epochs of this session */
  double train_loss;                                     /* mean training loss of the last epoch (or part) */
  double test_acc, test_loss, best_test_acc;             /* last test; NAN before the first */
  int64_t best_epoch;
  evo_gradtrain_stop stopped_because;
} evo_gradtrain_summary;

void evo_gradtrain_summary_get(const evo_gradtrain *t, evo_gradtrain_summary *out);

/* The parameter tree (names, shapes, flat layout) and the current values in its flat layout. */
const evo_ptree *evo_gradtrain_ptree(const evo_gradtrain *t);
evo_status evo_gradtrain_get_params(const evo_gradtrain *t, float *flat);
evo_status evo_gradtrain_set_params(evo_gradtrain *t, const float *flat);
/* Whether ptree entry i is trained (not frozen). */
bool evo_gradtrain_trainable(const evo_gradtrain *t, int i);

/* Mean training loss over the training examples idx[0..n) at the current parameters and its gradient in the flat
   layout (frozen entries get 0). Plans for a new n are compiled on first use. */
evo_status evo_gradtrain_loss_grad(evo_gradtrain *t, int64_t n, const int64_t *idx, double *loss, float *grad);
/* Accuracy and mean cross-entropy on the test set at the current parameters. */
evo_status evo_gradtrain_evaluate(evo_gradtrain *t, double *acc, double *loss);

#ifdef __cplusplus
}
#endif
#endif
