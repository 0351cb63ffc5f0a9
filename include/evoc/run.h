/* Run folders (DESIGN.md §7): the files a run leaves behind, written so that a crash or a SIGINT never leaves a
 * half-written one. Whole files are replaced atomically (temp file in the same folder, fsync, rename, fsync of the
 * folder); metrics.jsonl is append-only, each line fsync'd, and a resumed run truncates it to the length its
 * checkpoint recorded.
 *
 *     DIR/config.yaml          resolved config (every default filled in)
 *     DIR/metrics.jsonl        one JSON object per log interval
 *     DIR/summary.json         written at the end (also after SIGINT)
 *     DIR/best.safetensors     parameters with the best test score so far
 *     DIR/learning_curve.png   regenerated at each test (needs gnuplot in PATH)
 *     DIR/checkpoints/         iter_<N>.algo.safetensors + iter_<N>.trainer.safetensors
 */
#ifndef EVOC_RUN_H
#define EVOC_RUN_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "evoc/config.h"
#include "evoc/status.h"
#ifdef __cplusplus
extern "C" {
#endif

/* Creates dir and dir/checkpoints (parents included) and proves both writable by creating and removing a probe
   file, so an unusable folder fails before a run starts. IO naming the path and the reason otherwise. */
evo_status evo_run_dir_prepare(const char *dir);
/* mkdir -p: dir and its parents; IO naming the folder that cannot be made or is a file. */
evo_status evo_run_mkdirs(const char *dir);
/* "runs/<config file stem>-<YYYYmmdd-HHMMSS>" (a "-2", "-3", ... suffix when that exists already). */
evo_status evo_run_default_dir(const char *config_path, char *buf, size_t cap);
/* "<a>/<b>" into buf; INVALID_ARGUMENT when it does not fit. */
evo_status evo_run_path(char *buf, size_t cap, const char *a, const char *b);

/* Replaces path by data atomically: "<path>.tmp.<pid>", fsync, rename, fsync of the folder. */
evo_status evo_run_write_atomic(const char *path, const void *data, size_t n);
/* Appends text and fsyncs (metrics.jsonl). */
evo_status evo_run_append(const char *path, const char *text);
/* The files every runner (evolution and gradient training) writes into dir: */
/* dir/config.yaml, the resolved config, atomically. */
evo_status evo_run_write_config(const char *dir, const evo_config *cfg);
/* dir/name = text plus a final newline, atomically (summary.json). */
evo_status evo_run_write_text(const char *dir, const char *name, const char *text);
/* Appends line and a newline to dir/name, fsync'd; *bytes grows by what was written (metrics.jsonl: the length a
   checkpoint records and a resume truncates back to). */
evo_status evo_run_append_line(const char *dir, const char *name, const char *line, int64_t *bytes);
/* Cuts path to len bytes (resume: drops metrics written after the checkpoint). Absent file and len 0: OK. */
evo_status evo_run_truncate(const char *path, int64_t len);
/* Size in bytes; -1 when the file does not exist. */
int64_t evo_run_file_size(const char *path);
bool evo_run_file_exists(const char *path);

/* Whether an executable gnuplot is on PATH. */
bool evo_run_have_gnuplot(void);
/* DIR/metrics.jsonl -> DIR/learning_curve.png (best, mean, the min..best band, test points). objective: the
   fitness is -f of a function to minimise, so plot f on a log scale. UNSUPPORTED without gnuplot; IO if gnuplot
   fails. The old image stays until the new one is complete. */
evo_status evo_run_plot(const char *dir, const char *title, bool objective);
/* The same image for a gradient run's metrics (loss per step, test accuracy at epoch ends). */
evo_status evo_run_plot_grad(const char *dir, const char *title);

#ifdef __cplusplus
}
#endif
#endif
