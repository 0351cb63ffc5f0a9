/* Sweeps (DESIGN.md §6): many runs of one base config (an `evoc run` or an `evoc train` one), each with its own
 * overrides, scheduled by `evoc sweep` over devices and processes, or one per Slurm array task (`evoc sweep FILE
 * --index $SLURM_ARRAY_TASK_ID`).
 *
 * A sweep file (YAML, validated like a config: errors carry file:line:col):
 *
 *     base: cartpole_swingup_easy_pgpe.yaml   # the config every run starts from (relative to this file)
 *     name: cartpole-lr                       # optional; default: the sweep file's stem
 *     set:                                    # optional: overrides for every run
 *       trainer.max_iter: 200
 *     grid:                                   # optional: every combination, first key slowest
 *       seed: [0, 1, 2]
 *       algo.center_lr: [0.02, 0.05]
 *       policy.hidden: [[32, 32], [64, 64]]   # a value may be a list itself
 *
 * Keys are the dotted paths of `evoc run --set`. Run i applies `set`, then its grid values, and lives in
 * SWEEP_DIR/<name of run i>, e.g. "004-seed=1,center_lr=0.02" (the index keeps names unique and sorted). After
 * runs finish, SWEEP_DIR/results.csv gathers every run's summary.json with its grid values and SWEEP_DIR/sweep.png
 * draws their test curves together.
 */
#ifndef EVOC_SWEEP_H
#define EVOC_SWEEP_H
#include <stdint.h>
#include "evoc/config.h"
#include "evoc/status.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef struct evo_sweep evo_sweep;

/* Reads and checks the sweep file: base present and readable, grid values lists of scalars or lists, no unknown
   keys, at most 100000 runs. Each run's config is checked by evo_sweep_config (the CLI checks all of them before
   starting any). */
evo_status evo_sweep_load(const char *path, evo_sweep **out);
void evo_sweep_free(evo_sweep *s);

const char *evo_sweep_name(const evo_sweep *s);
const char *evo_sweep_base(const evo_sweep *s); /* the base config's path, resolved against the sweep file */
int evo_sweep_count(const evo_sweep *s);
int evo_sweep_grid_keys(const evo_sweep *s);
const char *evo_sweep_grid_key(const evo_sweep *s, int k);

/* Run i in [0, count): its folder name, and its overrides "key=value" (set, then grid) for evo_config_set or
   `evoc run --set`. The strings live as long as the sweep. */
const char *evo_sweep_run_name(const evo_sweep *s, int i);
int evo_sweep_run_sets(const evo_sweep *s, int i, const char **sets, int cap); /* returns how many there are */
/* The grid value text of run i for grid key k (as written in --set). */
const char *evo_sweep_run_value(const evo_sweep *s, int i, int k);
/* Base config with run i's overrides applied; an override the config refuses is reported at its place in the
   sweep file. */
evo_status evo_sweep_config(const evo_sweep *s, int i, evo_config **out);

/* State of run i in dir (the sweep folder), from its files. */
typedef enum {
  EVO_SWEEP_RUN_NEW = 0,    /* nothing there yet */
  EVO_SWEEP_RUN_RESUMABLE,  /* checkpoints but no final summary (interrupted or killed) */
  EVO_SWEEP_RUN_DONE        /* summary.json says it stopped for a reason other than an interrupt */
} evo_sweep_run_state;
evo_sweep_run_state evo_sweep_run_state_in(const evo_sweep *s, int i, const char *dir);

/* Writes dir/results.csv atomically: one row per run (index, name, state, the grid values, then the numeric
   fields of summary.json as the first finished run has them, e.g. test_score, best_test_score, iterations for
   `evoc run`, test_acc, best_test_acc, epochs for `evoc train`, and stopped_because; empty fields for runs without
   a summary). *done gets the number of finished runs, *best the index of the best best_test_score (or
   best_test_acc), the highest when maximize, else the lowest (-1 if none). */
evo_status evo_sweep_write_results(const evo_sweep *s, const char *dir, int maximize, int *done, int *best);

/* dir/sweep.png: every run's test curve in one image (test score by iteration, or with grad test accuracy by
   step; objective: the fitness is -f of a function, drawn as f on a log scale). UNSUPPORTED without gnuplot. */
evo_status evo_sweep_plot(const evo_sweep *s, const char *dir, int grad, int objective);

#ifdef __cplusplus
}
#endif
#endif
