/* Checkpoint and state loading. The first input byte picks what the rest of the input replaces:
     0: the trainer file of a checkpoint (evo_checkpoint_load, with a valid algorithm file beside it)
     1: the algorithm file of a checkpoint (with a valid trainer file)
     2: a state file for evo_algo_load of algorithm data[1] (every registered algorithm, 5 parameters)
     3: a parameter file for evo_trainer_eval (`evoc eval`: best.safetensors with normaliser statistics)
   The trainer is a small CartPole/MLP/PGPE run with normalize_obs, built once; valid files come from saving it. */
#include "fuzz_util.h"
#include <sys/stat.h>
#include "evoc/algo.h"
#include "safetensors.h"
#include "trainer_impl.h"

static const char fuzz_cfg_text[] =
    "seed: 3\ndevice: cpu\ntask: {name: cartpole_balance, max_steps: 20}\npolicy: {name: mlp, hidden: [4]}\n"
    "algo: {name: pgpe, pop_size: 4}\ntrainer: {normalize_obs: true, n_evaluations: 1, plot: false}\n";

static evo_config *fuzz_cfg;
static evo_trainer *fuzz_t;
static char fuzz_dir[64], fuzz_apath[128], fuzz_tpath[128];
static uint8_t *fuzz_algo_bytes, *fuzz_trainer_bytes;
static size_t fuzz_algo_len, fuzz_trainer_len;

static uint8_t *fuzz_slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) abort();
  uint8_t *b = malloc(1 << 20);
  *len = fread(b, 1, 1 << 20, f);
  fclose(f);
  return b;
}

static void fuzz_spit(const char *path, const uint8_t *b, size_t len) {
  FILE *f = fopen(path, "wb");
  if (!f || (len && fwrite(b, 1, len, f) != len) || fclose(f)) abort();
}

/* EVOC_FUZZ_SEEDS=DIR: writes one valid input per mode into DIR (the seeds in tests/fuzz/seeds/checkpoint). */
static void fuzz_seed(const char *dir, const char *name, uint8_t mode, int algo, const char *from) {
  size_t len;
  uint8_t *b = fuzz_slurp(from, &len), head[2] = {mode, (uint8_t)algo};
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(head, 1, algo >= 0 ? 2 : 1, f) == 0 || fwrite(b, 1, len, f) != len || fclose(f)) abort();
  free(b);
}

static void fuzz_write_seeds(const char *dir) {
  fuzz_seed(dir, "trainer", 0, -1, fuzz_tpath);
  fuzz_seed(dir, "algo", 1, -1, fuzz_apath);
  char tmp[160], name[64];
  snprintf(tmp, sizeof tmp, "%s/seed.safetensors", fuzz_dir);
  for (int i = 0; i < evo_algo_count(); i++) {
    evo_algo_params ap = evo_algo_default_params();
    ap.name = evo_algo_info_at(i)->name;
    ap.num_params = 5;
    ap.pop_size = 6;
    evo_algo *a = NULL;
    if (evo_algo_new(&ap, &a) || evo_algo_save(a, tmp)) abort();
    evo_algo_free(a);
    snprintf(name, sizeof name, "state_%s", ap.name);
    fuzz_seed(dir, name, 2, i, tmp);
  }
  float *params = calloc((size_t)fuzz_t->ev.D, sizeof *params);
  if (!params || evo_evaluator_save_params(&fuzz_t->ev, params, tmp, 0, 0.0)) abort();
  free(params);
  fuzz_seed(dir, "params", 3, -1, tmp);
  unlink(tmp);
}

static void fuzz_cleanup(void) {
  char sub[128];
  unlink(fuzz_apath);
  unlink(fuzz_tpath);
  snprintf(sub, sizeof sub, "%s/checkpoints", fuzz_dir);
  rmdir(sub);
  rmdir(fuzz_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  snprintf(fuzz_dir, sizeof fuzz_dir, "/tmp/evoc_fuzz_ckpt_XXXXXX");
  if (!mkdtemp(fuzz_dir)) abort();
  char sub[128];
  snprintf(sub, sizeof sub, "%s/checkpoints", fuzz_dir);
  mkdir(sub, 0700);
  evo_trainer_params p = evo_trainer_default_params();
  p.out_dir = fuzz_dir;
  if (evo_config_parse(fuzz_cfg_text, "fuzz.yaml", &fuzz_cfg) || evo_trainer_new(fuzz_cfg, &p, &fuzz_t) ||
      evo_checkpoint_save(fuzz_t)) {
    fprintf(stderr, "fuzz_checkpoint setup: %s\n", evo_last_error());
    abort();
  }
  snprintf(fuzz_apath, sizeof fuzz_apath, "%s/checkpoints/iter_000000000.algo.safetensors", fuzz_dir);
  snprintf(fuzz_tpath, sizeof fuzz_tpath, "%s/checkpoints/iter_000000000.trainer.safetensors", fuzz_dir);
  atexit(fuzz_cleanup);
  fuzz_algo_bytes = fuzz_slurp(fuzz_apath, &fuzz_algo_len);
  fuzz_trainer_bytes = fuzz_slurp(fuzz_tpath, &fuzz_trainer_len);
  if (getenv("EVOC_FUZZ_SEEDS")) fuzz_write_seeds(getenv("EVOC_FUZZ_SEEDS"));
  return 0;
}

static void fuzz_algo_load(uint8_t which, const uint8_t *data, size_t size) {
  const evo_algo_info *info = evo_algo_info_at(which % evo_algo_count());
  evo_algo_params ap = evo_algo_default_params();
  ap.name = info->name;
  ap.num_params = 5;
  ap.pop_size = 6;
  evo_algo *a = NULL;
  if (evo_algo_new(&ap, &a)) abort();
  const char *path = fuzz_tmp_write(data, size);
  FUZZ_CALL(evo_algo_load(a, path));
  evo_algo_free(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  uint8_t mode = data[0] & 3;
  data++, size--;
  switch (mode) {
  case 0:
  case 1:
    fuzz_spit(fuzz_tpath, mode == 0 ? data : fuzz_trainer_bytes, mode == 0 ? size : fuzz_trainer_len);
    fuzz_spit(fuzz_apath, mode == 1 ? data : fuzz_algo_bytes, mode == 1 ? size : fuzz_algo_len);
    FUZZ_CALL(evo_checkpoint_load(fuzz_t));
    break;
  case 2:
    if (size < 1) return 0;
    fuzz_algo_load(data[0], data + 1, size - 1);
    break;
  default: {
    double score;
    FUZZ_CALL(evo_trainer_eval(fuzz_t, fuzz_tmp_write(data, size), 1, &score));
  }
  }
  return 0;
}
