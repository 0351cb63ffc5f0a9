/* Internal: the gradient trainer's parts, shared by gradtrain_setup.c (config -> objects), gradtrain_params.c
   (parameter tensors, init_from / reinit / freeze, the optimizer update), gradtrain_plan.c (graphs, plans, batches,
   evaluation), gradtrain_ckpt.c (checkpoints) and gradtrain.c (the loop and the run folder). */
#ifndef EVOC_GRADTRAIN_IMPL_H
#define EVOC_GRADTRAIN_IMPL_H
#include "evoc/backend.h"
#include "evoc/gradtrain.h"
#include "evoc/jit.h"
#include "evoc/mnist.h"
#include "evoc/optim.h"
#include "evoc/policy.h"
#include "evoc/rng.h"

/* A compiled plan for one batch size, with its data inputs. */
typedef struct {
  int64_t batch; /* 0: unused slot */
  evo_plan *plan;
  evo_tensor *x, *y;   /* host: filled per batch */
  evo_tensor *dx, *dy; /* on t->dev when training on a device: x, y copied there */
} evo_gradtrain_plan;

/* The optimizer runs on chunks of the "trained space" (the trained entries back to back, in tree order): every
   elementwise rule is exact under chunking, and the chunks update in parallel. ClipUp normalises by global norms,
   so it gets one chunk over gathered copies. Global-norm clipping is applied before, over the whole space. */
typedef struct {
  int64_t start, n; /* range in the trained space */
  int entry;        /* tree entry it lies in; -1: the gathered buffers */
  int grad_k;       /* that entry's gradient output */
  int64_t offset;   /* start within that entry */
  evo_optim *o;
} evo_gradtrain_chunk;

/* Everything a checkpoint restores besides parameters and optimizer (f64 so one tensor holds it). */
typedef struct {
  int64_t step, epoch, step_in_epoch; /* epoch: the epoch in progress, 1-based; step_in_epoch steps done in it */
  int64_t metrics_bytes, best_epoch, log_n, epoch_loss_n;
  double wall_s, log_sum, epoch_loss_sum, best_acc, last_acc, last_loss, last_epoch_loss;
} evo_gradtrain_state;

#define EVO_GRADTRAIN_STATE_N 14

typedef struct evo_gradtrain_resident evo_gradtrain_resident; /* gradtrain_dev.c */

struct evo_gradtrain {
  evo_config *cfg;
  evo_gradtrain_params p;
  char *out_dir;
  evo_backend *be;  /* host: parameters, gradients, optimizer and batches (with res: copies of the trained ones) */
  evo_backend *dev; /* the plans' device (device: cuda), or NULL: the plans run on be */
  char device[192]; /* "cpu" or "cuda:0 (NAME)" (run_device.h) */
  /* with dev: the plans' parameter inputs and outputs there, copied in before and out after every run, but
     for resident trained entries and their gradients (res) */
  evo_tensor **dparam, **dgrad, *dloss, *dcorrect;
  bool frozen_stale; /* frozen entries changed on the host since their last copy (the optimizer never moves them) */
  evo_gradtrain_resident *res; /* with dev and an elementwise optimizer: trained entries and moments live on dev */
  int64_t seed;
  evo_key init_key, shuffle_key;
  char task_name[32], policy_name[32], optim_name[32];
  /* data */
  evo_mnist_split train, test;
  float lut[256];
  /* model and parameters: one tensor per tree entry */
  evo_policy *pol;
  int n_entries, n_trained;
  evo_tensor **param;  /* [n_entries] */
  bool *trained;       /* [n_entries] */
  int *trained_idx;    /* [n_trained] tree index of each trained entry */
  int64_t *space_off;  /* [n_entries] offset of a trained entry in the trained space */
  evo_tensor **grad;   /* [n_trained] plan outputs */
  int64_t trained_size;
  /* plans: the batch size and an optional tail size each */
  evo_gradtrain_plan train_plans[2], eval_plans[2];
  evo_tensor *loss_out, *correct_out;
  /* optimizer */
  evo_optim_params op;
  evo_gradtrain_chunk *chunks;
  int n_chunks;
  float *gather_p, *gather_g; /* ClipUp only */
  double *chunk_sq;           /* [n_chunks] partial squared norms */
  /* options */
  int64_t batch, eval_batch, epochs, log_interval, max_steps, keep_ckpt, steps_per_epoch;
  bool shuffle, drop_last;
  /* run */
  int64_t *perm, *idx;
  int64_t perm_epoch; /* the epoch perm belongs to (0: none) */
  evo_gradtrain_state s;
  evo_gradtrain_stop stop;
  double t_start, session_epoch_s;
  int64_t session_epochs;
  bool plot_noted; /* a missing gnuplot / failed plot is noted once */
  bool dir_open;
};

double evo_gradtrain_now(void);
void evo_gradtrain_note(const evo_gradtrain *t, const char *msg);

/* gradtrain_setup.c */
evo_status evo_gradtrain_setup(evo_gradtrain *t);

/* gradtrain_params.c */
/* Marks the entries a name list selects (a layer "dense2" or an entry "dense2.bias"); reads root[key] (a list or
   one name); every name must match, else INVALID_ARGUMENT at its location listing the layers. */
evo_status evo_gradtrain_select(evo_gradtrain *t, evo_cfg *root, const char *key, bool *sel);
/* Allocates the parameter tensors and fills them: init, then init_from for entries not in reinit. */
evo_status evo_gradtrain_params_init(evo_gradtrain *t, const char *init_from, const bool *reinit);
evo_status evo_gradtrain_optim_init(evo_gradtrain *t);
/* params <- update(grad outputs) for the trained entries. */
evo_status evo_gradtrain_optim_step(evo_gradtrain *t);
int64_t evo_gradtrain_optim_count(const evo_gradtrain *t);
/* Copies state array k (named as evo_optim_state_at names it) between the chunks and buf[trained_size] (or [1]
   for the counter). to_buf: chunks -> buf. Returns the number of arrays with *name when k is in range. */
int evo_gradtrain_optim_state(evo_gradtrain *t, int k, const char **name, int64_t *n, double *buf, bool to_buf);
evo_status evo_gradtrain_save_params(const evo_gradtrain *t, const char *path, const char *const *meta, int n_meta);

/* gradtrain_plan.c */
evo_status evo_gradtrain_plans_init(evo_gradtrain *t);
void evo_gradtrain_plans_free(evo_gradtrain *t);
/* One training step on the examples idx[0..n): the loss, and the gradients in t->grad (with resident parameters
   they stay in t->dgrad unless grads_to_host). */
evo_status evo_gradtrain_forward_backward(evo_gradtrain *t, int64_t n, const int64_t *idx, double *loss,
                                          bool grads_to_host);
/* The permutation of epoch e (identity without shuffle) into t->perm. */
void evo_gradtrain_permutation(evo_gradtrain *t, int64_t epoch);

/* gradtrain_dev.c: resident parameters. With t->res the device copies of the trained entries (dparam) and the
   device moments are the current ones while host_stale; the host's are brought up to date by dev_sync, and
   changes made on the host (init, checkpoint load, set_params) go up before the next step (dev_host_changed marks
   them). Without t->res every function here does nothing. */
evo_status evo_gradtrain_dev_init(evo_gradtrain *t); /* after plans and optimizer; sets t->res or leaves it NULL */
void evo_gradtrain_dev_free(evo_gradtrain *t);
evo_status evo_gradtrain_dev_upload(evo_gradtrain *t); /* host -> device when the host changed */
evo_status evo_gradtrain_dev_sync(evo_gradtrain *t);   /* device -> host when the device is ahead */
void evo_gradtrain_dev_host_changed(evo_gradtrain *t);
/* Entry i's current values into dst (from the device when it is ahead). */
evo_status evo_gradtrain_dev_read_params(const evo_gradtrain *t, int i, float *dst);
/* The optimizer's step on the device gradients (dgrad), in place on dparam and the device moments. */
evo_status evo_gradtrain_dev_step(evo_gradtrain *t);

/* gradtrain_ckpt.c */
evo_status evo_gradtrain_checkpoint_save(evo_gradtrain *t);
bool evo_gradtrain_checkpoint_exists(const char *dir);
evo_status evo_gradtrain_checkpoint_load(evo_gradtrain *t);

#endif
