/* YAML configs: typed readers on a realistic config, every error with its exact "file:line:col: message", "did you
   mean", defaults recorded into the written config, --set overrides, write -> parse round trips, malformed files. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "evoc/config.h"

static evo_config *parse_ok(const char *text) {
  evo_config *c = NULL;
  evo_status st = evo_config_parse(text, "t.yaml", &c);
  cr_assert_eq(st, EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_not_null(c);
  return c;
}

static void parse_fails(const char *text, evo_status want, const char *msg) {
  evo_config *c = (evo_config *)1;
  evo_status st = evo_config_parse(text, "t.yaml", &c);
  cr_assert_eq(st, want, "status %d, message: %s", st, evo_last_error());
  cr_assert_null(c);
  cr_assert_str_eq(evo_last_error(), msg);
}

static void expect_error(evo_status st, evo_status want, const char *msg) {
  cr_assert_eq(st, want, "status %d, message: %s", st, evo_last_error());
  cr_assert_str_eq(evo_last_error(), msg);
}

/* The written YAML as a malloc'd string. */
static char *write_str(const evo_config *c) {
  FILE *f = tmpfile();
  cr_assert_not_null(f);
  cr_assert_eq(evo_config_write(c, f), EVO_STATUS_OK, "%s", evo_last_error());
  long n = ftell(f);
  rewind(f);
  char *s = calloc((size_t)n + 1, 1);
  cr_assert_eq(fread(s, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  return s;
}

static void same_tree(evo_cfg *a, evo_cfg *b, const char *at) {
  cr_assert_eq(evo_cfg_kind_of(a), evo_cfg_kind_of(b), "kind at %s", at);
  char sub[256];
  switch (evo_cfg_kind_of(a)) {
  case EVO_CFG_SCALAR: cr_assert_str_eq(evo_cfg_scalar(a), evo_cfg_scalar(b), "scalar at %s", at); break;
  case EVO_CFG_MAP:
    cr_assert_eq(evo_cfg_map_size(a), evo_cfg_map_size(b), "map size at %s", at);
    for (int i = 0; i < evo_cfg_map_size(a); i++) {
      cr_assert_str_eq(evo_cfg_map_key(a, i), evo_cfg_map_key(b, i), "key %d at %s", i, at);
      snprintf(sub, sizeof sub, "%s.%s", at, evo_cfg_map_key(a, i));
      same_tree(evo_cfg_map_value(a, i), evo_cfg_map_value(b, i), sub);
    }
    break;
  case EVO_CFG_LIST:
    cr_assert_eq(evo_cfg_list_size(a), evo_cfg_list_size(b), "list size at %s", at);
    for (int i = 0; i < evo_cfg_list_size(a); i++) {
      snprintf(sub, sizeof sub, "%s[%d]", at, i);
      same_tree(evo_cfg_list_at(a, i), evo_cfg_list_at(b, i), sub);
    }
    break;
  case EVO_CFG_NULL: break;
  }
}

/* Writes c, parses the text back, compares trees, and checks that writing again gives the same text. */
static void round_trip(evo_config *c) {
  char *text = write_str(c);
  evo_config *d = parse_ok(text);
  same_tree(evo_config_root(c), evo_config_root(d), "");
  char *again = write_str(d);
  cr_assert_str_eq(again, text);
  free(again);
  free(text);
  evo_config_free(d);
}

/* ---------------------------------------------------------------- a realistic config */

static const char *REAL = /* line numbers matter: errors below name them */
    "# CartPole swing-up with PGPE\n"                  /* 1 */
    "seed: 42\n"                                       /* 2 */
    "task:\n"                                          /* 3 */
    "  name: cartpole_swingup\n"                       /* 4 */
    "  variant: hard\n"                                /* 5 */
    "  max_steps: 1_000\n"                             /* 6 */
    "policy:\n"                                        /* 7 */
    "  name: cnn\n"                                    /* 8 */
    "  layers:\n"                                      /* 9 */
    "    - {type: conv, features: 8, kernel: [3, 3]}\n" /* 10 */
    "    - type: dense\n"                              /* 11 */
    "      features: 10\n"                             /* 12 */
    "  activation: relu\n"                             /* 13 */
    "algo:\n"                                          /* 14 */
    "  name: pgpe\n"                                   /* 15 */
    "  pop_size: 64\n"                                 /* 16 */
    "  center_lr: 0.05\n"                              /* 17 */
    "  stdev_lr: 1e-1\n"                               /* 18 */
    "  init_stdev: [0.1, 0.2, 0.3]\n"                  /* 19 */
    "  maximize: yes\n"                                /* 20 */
    "trainer:\n"                                       /* 21 */
    "  max_iter: 1e3\n"                                /* 22 */
    "  log_interval: 0x10\n"                           /* 23 */
    "  normalize_obs: off\n"                           /* 24 */
    "  target: .inf\n";                                /* 25 */

static const char *const LAYER_TYPES[] = {"conv", "dense", "pool", NULL};

static evo_status read_layers(evo_cfg *policy) {
  evo_cfg *layers = evo_cfg_get(policy, "layers");
  for (int i = 0; i < evo_cfg_list_size(layers); i++) {
    evo_cfg *l = evo_cfg_list_at(layers, i);
    const char *type;
    int64_t features;
    double kernel[2];
    evo_status st;
    if ((st = evo_cfg_string(l, "type", NULL, LAYER_TYPES, &type)) ||
        (st = evo_cfg_int(l, "features", 1, 1, 4096, &features)) || (st = evo_cfg_doubles(l, "kernel", 1, 2, kernel)))
      return st;
  }
  return EVO_STATUS_OK;
}

Test(config, realistic_config_typed_readers) {
  evo_config *c = parse_ok(REAL);
  evo_cfg *root = evo_config_root(c), *task, *policy, *algo, *trainer;
  int64_t seed, max_steps, pop, max_iter, log_interval;
  const char *name, *variant, *act;
  double center_lr, stdev_lr, target, init_stdev[3];
  bool maximize, normalize;
  cr_assert_eq(evo_cfg_int(root, "seed", 0, 0, INT64_MAX, &seed), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(evo_cfg_section(root, "task", &task), EVO_STATUS_OK);
  cr_assert_eq(evo_cfg_string(task, "name", NULL, NULL, &name), EVO_STATUS_OK);
  cr_assert_str_eq(name, "cartpole_swingup");
  static const char *const variants[] = {"easy", "hard", NULL};
  cr_assert_eq(evo_cfg_string(task, "variant", "easy", variants, &variant), EVO_STATUS_OK);
  cr_assert_str_eq(variant, "hard");
  cr_assert_eq(evo_cfg_int(task, "max_steps", 500, 1, INT32_MAX, &max_steps), EVO_STATUS_OK);
  cr_assert_eq(max_steps, 1000);

  cr_assert_eq(evo_cfg_section(root, "policy", &policy), EVO_STATUS_OK);
  cr_assert_eq(evo_cfg_string(policy, "name", "mlp", NULL, &name), EVO_STATUS_OK);
  cr_assert_str_eq(name, "cnn");
  cr_assert_eq(read_layers(policy), EVO_STATUS_OK, "%s", evo_last_error());
  evo_cfg *layers = evo_cfg_get(policy, "layers");
  cr_assert_eq(evo_cfg_kind_of(layers), EVO_CFG_LIST);
  cr_assert_eq(evo_cfg_list_size(layers), 2);
  cr_assert_str_eq(evo_cfg_scalar(evo_cfg_get(evo_cfg_list_at(layers, 1), "type")), "dense");
  cr_assert_eq(evo_cfg_string(policy, "activation", "tanh", NULL, &act), EVO_STATUS_OK);
  cr_assert_str_eq(act, "relu");

  cr_assert_eq(evo_cfg_section(root, "algo", &algo), EVO_STATUS_OK);
  cr_assert_eq(evo_cfg_string(algo, "name", NULL, NULL, &name), EVO_STATUS_OK);
  cr_assert_eq(evo_cfg_int(algo, "pop_size", 16, 1, 1000000, &pop), EVO_STATUS_OK);
  cr_assert_eq(pop, 64);
  cr_assert_eq(evo_cfg_double(algo, "center_lr", 0.15, DBL_MIN, 10, &center_lr), EVO_STATUS_OK);
  cr_assert_float_eq(center_lr, 0.05, 0);
  cr_assert_eq(evo_cfg_double(algo, "stdev_lr", 0.1, 0, 1, &stdev_lr), EVO_STATUS_OK);
  cr_assert_float_eq(stdev_lr, 0.1, 0);
  cr_assert_eq(evo_cfg_doubles(algo, "init_stdev", 1, 3, init_stdev), EVO_STATUS_OK);
  cr_assert(init_stdev[0] == 0.1 && init_stdev[1] == 0.2 && init_stdev[2] == 0.3);
  cr_assert_eq(evo_cfg_bool(algo, "maximize", false, &maximize), EVO_STATUS_OK);
  cr_assert(maximize);

  cr_assert_eq(evo_cfg_section(root, "trainer", &trainer), EVO_STATUS_OK);
  cr_assert_eq(evo_cfg_int(trainer, "max_iter", 100, 1, INT64_MAX, &max_iter), EVO_STATUS_OK);
  cr_assert_eq(max_iter, 1000);
  cr_assert_eq(evo_cfg_int(trainer, "log_interval", 10, 1, INT64_MAX, &log_interval), EVO_STATUS_OK);
  cr_assert_eq(log_interval, 16);
  cr_assert_eq(evo_cfg_bool(trainer, "normalize_obs", true, &normalize), EVO_STATUS_OK);
  cr_assert(!normalize);
  cr_assert_eq(evo_cfg_double(trainer, "target", 0, -INFINITY, INFINITY, &target), EVO_STATUS_OK);
  cr_assert(isinf(target) && target > 0);

  cr_assert_eq(evo_cfg_check_unused(root), EVO_STATUS_OK, "%s", evo_last_error());
  char where[256], path[256];
  cr_assert_str_eq(evo_cfg_where(evo_cfg_get(algo, "pop_size"), where, sizeof where), "t.yaml:16:13");
  cr_assert_str_eq(evo_cfg_where(evo_cfg_list_at(layers, 0), where, sizeof where), "t.yaml:10:7");
  cr_assert_str_eq(evo_cfg_path(evo_cfg_get(evo_cfg_list_at(layers, 1), "features"), path, sizeof path),
                   "policy.layers[1].features");
  cr_assert_str_eq(evo_cfg_path(root, path, sizeof path), "");
  round_trip(c);
  evo_config_free(c);
}

/* ---------------------------------------------------------------- reader errors */

Test(config, wrong_type_and_range_messages) {
  evo_config *c = parse_ok("algo:\n"
                           "  pop_size: abc\n"
                           "  lr: -0.5\n"
                           "  sigma: 0\n"
                           "  steps: 1.5\n"
                           "  big: 99999999999999999999\n"
                           "  flag: maybe\n"
                           "  opt: adamm\n"
                           "  label: {a: 1}\n"
                           "  hidden: [64, x, 64]\n"
                           "  hidden2: [1, 2]\n"
                           "  cap: .inf\n"
                           "  nanv: .nan\n"
                           "  gen: [1]\n");
  evo_cfg *a = evo_cfg_get(evo_config_root(c), "algo");
  int64_t i;
  double d, v[3];
  bool b;
  const char *s;
  static const char *const opts[] = {"sgd", "adam", "clipup", NULL};
  expect_error(evo_cfg_int(a, "pop_size", 64, 1, 1000000, &i), EVO_STATUS_INVALID_ARGUMENT,
               "t.yaml:2:13: algo.pop_size must be an integer in [1, 1000000], got 'abc'");
  expect_error(evo_cfg_double(a, "lr", 0.1, 0, 1, &d), EVO_STATUS_INVALID_ARGUMENT,
               "t.yaml:3:7: algo.lr must be a number in [0, 1], got '-0.5'");
  expect_error(evo_cfg_double(a, "sigma", 0.1, DBL_MIN, INFINITY, &d), EVO_STATUS_INVALID_ARGUMENT,
               "t.yaml:4:10: algo.sigma must be a number > 0, got '0'");
  expect_error(evo_cfg_int(a, "steps", 1, 1, INT64_MAX, &i), EVO_STATUS_INVALID_ARGUMENT,
               "t.yaml:5:10: algo.steps must be an integer >= 1, got '1.5'");
  expect_error(evo_cfg_int(a, "big", 1, INT64_MIN, INT64_MAX, &i), EVO_STATUS_INVALID_ARGUMENT,
               "t.yaml:6:8: algo.big must be an integer, got '99999999999999999999'");
  expect_error(evo_cfg_bool(a, "flag", false, &b), EVO_STATUS_INVALID_ARGUMENT,
               "t.yaml:7:9: algo.flag must be a boolean (true/false, yes/no, on/off), got 'maybe'");
  expect_error(evo_cfg_string(a, "opt", "adam", opts, &s), EVO_STATUS_INVALID_ARGUMENT,
               "t.yaml:8:8: algo.opt must be one of 'sgd', 'adam', 'clipup', got 'adamm' (did you mean 'adam'?)");
  expect_error(evo_cfg_string(a, "label", NULL, NULL, &s), EVO_STATUS_INVALID_ARGUMENT,
               "t.yaml:9:10: algo.label must be a string, got a map");
  expect_error(evo_cfg_doubles(a, "hidden", 32, 3, v), EVO_STATUS_INVALID_ARGUMENT,
               "t.yaml:10:16: algo.hidden[1] must be a number, got 'x'");
  expect_error(evo_cfg_doubles(a, "hidden2", 32, 3, v), EVO_STATUS_INVALID_ARGUMENT,
               "t.yaml:11:12: algo.hidden2 must be a number or a list of 3 numbers, got a list of 2");
  expect_error(evo_cfg_double(a, "cap", 1, 0, 1e6, &d), EVO_STATUS_INVALID_ARGUMENT,
               "t.yaml:12:8: algo.cap must be a number in [0, 1e+06], got '.inf'");
  expect_error(evo_cfg_double(a, "nanv", 1, -INFINITY, INFINITY, &d), EVO_STATUS_INVALID_ARGUMENT,
               "t.yaml:13:9: algo.nanv must be a number, got '.nan'");
  expect_error(evo_cfg_int(a, "gen", 1, 1, 10, &i), EVO_STATUS_INVALID_ARGUMENT,
               "t.yaml:14:8: algo.gen must be an integer in [1, 10], got a list");
  /* a reader's failure leaves its output alone and the document intact */
  cr_assert_str_eq(evo_cfg_scalar(evo_cfg_get(a, "pop_size")), "abc");
  evo_config_free(c);
}

Test(config, number_and_bool_syntax) {
  evo_config *c = parse_ok("a: 0x1F\nb: 0o17\nc: -1_000\nd: .5\ne: 1E3\nf: +2\ng: \"64\"\nh: 1.0e+2\n"
                           "i: TRUE\nj: Off\nk: 123\nl: -.inf\nm: 1e\nn: 0x\n");
  evo_cfg *r = evo_config_root(c);
  int64_t i;
  double d;
  bool b;
  const char *s;
  cr_assert_eq(evo_cfg_int(r, "a", 0, INT64_MIN, INT64_MAX, &i), 0);
  cr_assert_eq(i, 31);
  cr_assert_eq(evo_cfg_int(r, "b", 0, INT64_MIN, INT64_MAX, &i), 0);
  cr_assert_eq(i, 15);
  cr_assert_eq(evo_cfg_int(r, "c", 0, INT64_MIN, INT64_MAX, &i), 0);
  cr_assert_eq(i, -1000);
  cr_assert_eq(evo_cfg_double(r, "d", 0, -INFINITY, INFINITY, &d), 0);
  cr_assert_eq(d, 0.5);
  cr_assert_eq(evo_cfg_int(r, "e", 0, INT64_MIN, INT64_MAX, &i), 0);
  cr_assert_eq(i, 1000);
  cr_assert_eq(evo_cfg_int(r, "f", 0, INT64_MIN, INT64_MAX, &i), 0);
  cr_assert_eq(i, 2);
  cr_assert_eq(evo_cfg_int(r, "g", 0, INT64_MIN, INT64_MAX, &i), 0, "a quoted number is still read as one");
  cr_assert_eq(i, 64);
  cr_assert_eq(evo_cfg_double(r, "h", 0, -INFINITY, INFINITY, &d), 0);
  cr_assert_eq(d, 100);
  cr_assert_eq(evo_cfg_bool(r, "i", false, &b), 0);
  cr_assert(b);
  cr_assert_eq(evo_cfg_bool(r, "j", true, &b), 0);
  cr_assert(!b);
  cr_assert_eq(evo_cfg_string(r, "k", NULL, NULL, &s), 0, "a plain number is a fine string");
  cr_assert_str_eq(s, "123");
  cr_assert_eq(evo_cfg_double(r, "l", 0, -INFINITY, 0, &d), 0);
  cr_assert(isinf(d) && d < 0);
  cr_assert_eq(evo_cfg_double(r, "m", 0, -INFINITY, INFINITY, &d), EVO_STATUS_INVALID_ARGUMENT);
  cr_assert_eq(evo_cfg_int(r, "n", 0, INT64_MIN, INT64_MAX, &i), EVO_STATUS_INVALID_ARGUMENT);
  evo_config_free(c);
}

Test(config, sections_required_keys_and_null_values) {
  evo_config *c = parse_ok("task:\n"
                           "  nme: cartpole\n"
                           "algo:\n"
                           "optim: 3\n"
                           "data:\n"
                           "  dir:\n");
  evo_cfg *r = evo_config_root(c), *task, *algo, *optim;
  expect_error(evo_cfg_require(evo_cfg_get(r, "task"), "name"), EVO_STATUS_NOT_FOUND,
               "t.yaml:2:3: missing required key task.name (is 'nme' at t.yaml:2:3 a typo?)");
  expect_error(evo_cfg_require(evo_cfg_get(r, "data"), "dir"), EVO_STATUS_NOT_FOUND,
               "t.yaml:6:7: required key data.dir has no value");
  expect_error(evo_cfg_require(r, "trainer"), EVO_STATUS_NOT_FOUND, "t.yaml:1:1: missing required key trainer");
  cr_assert_eq(evo_cfg_require(r, "task"), EVO_STATUS_OK);
  /* `algo:` with nothing under it is an empty section: readers fill it with defaults */
  cr_assert_eq(evo_cfg_section(r, "algo", &algo), EVO_STATUS_OK);
  int64_t pop;
  cr_assert_eq(evo_cfg_int(algo, "pop_size", 32, 1, 100, &pop), EVO_STATUS_OK);
  cr_assert_eq(pop, 32);
  expect_error(evo_cfg_section(r, "optim", &optim), EVO_STATUS_INVALID_ARGUMENT,
               "t.yaml:4:8: optim must be a map (section), got '3'");
  expect_error(evo_cfg_int(evo_cfg_get(r, "optim"), "lr", 1, 0, 1, &pop), EVO_STATUS_INVALID_ARGUMENT,
               "t.yaml:4:8: optim must be a map (with key 'lr'), got '3'");
  /* a NULL section gives defaults without recording them */
  cr_assert_eq(evo_cfg_int(NULL, "x", 7, 0, 10, &pop), EVO_STATUS_OK);
  cr_assert_eq(pop, 7);
  cr_assert_eq(evo_cfg_section(r, "task", &task), EVO_STATUS_OK);
  const char *s = "untouched";
  cr_assert_eq(evo_cfg_string(task, "plugin", NULL, NULL, &s), EVO_STATUS_OK);
  cr_assert_null(s, "an optional string without default stays absent");
  cr_assert_eq(evo_cfg_map_size(task), 1);
  evo_config_free(c);
}

/* ---------------------------------------------------------------- unknown keys */

Test(config, unknown_keys_did_you_mean) {
  evo_config *c = parse_ok("sed: 1\n"
                           "algo:\n"
                           "  pop_size: 8\n"
                           "  pop_szie: 9\n"
                           "policy:\n"
                           "  layers:\n"
                           "    - type: conv\n"
                           "      features: 8\n"
                           "    - type: dense\n"
                           "      featurs: 10\n");
  evo_cfg *r = evo_config_root(c), *algo;
  int64_t v;
  cr_assert_eq(evo_cfg_section(r, "algo", &algo), EVO_STATUS_OK);
  cr_assert_eq(evo_cfg_int(algo, "pop_size", 1, 1, 100, &v), EVO_STATUS_OK);
  cr_assert_eq(evo_cfg_int(algo, "seed", 1, 1, 100, &v), EVO_STATUS_OK);
  expect_error(evo_cfg_check_unused(algo), EVO_STATUS_INVALID_ARGUMENT,
               "t.yaml:4:3: unknown key 'pop_szie' in algo (did you mean 'pop_size'?)");
  cr_assert_eq(evo_cfg_get(algo, "pop_szie") != NULL, true); /* now read: no longer reported */
  cr_assert_eq(evo_cfg_check_unused(algo), EVO_STATUS_OK);

  cr_assert_eq(read_layers(evo_cfg_get(r, "policy")), EVO_STATUS_OK, "%s", evo_last_error());
  expect_error(evo_cfg_check_unused(evo_cfg_get(r, "policy")), EVO_STATUS_INVALID_ARGUMENT,
               "t.yaml:10:7: unknown key 'featurs' in policy.layers[1] (did you mean 'features'?)");

  cr_assert_eq(evo_cfg_int(r, "seed", 0, 0, 10, &v), EVO_STATUS_OK);
  expect_error(evo_cfg_check_unused(r), EVO_STATUS_INVALID_ARGUMENT,
               "t.yaml:1:1: unknown key 'sed' at the top level (did you mean 'seed'?)");
  evo_config_free(c);

  /* far from everything the program reads: no suggestion */
  c = parse_ok("algo:\n  lr: 1\n  xyz: 2\n  l: 3\n");
  algo = evo_cfg_get(evo_config_root(c), "algo");
  double d;
  cr_assert_eq(evo_cfg_double(algo, "lr", 1, 0, 10, &d), EVO_STATUS_OK);
  cr_assert_eq(evo_cfg_double(algo, "momentum", 0.9, 0, 1, &d), EVO_STATUS_OK);
  expect_error(evo_cfg_check_unused(algo), EVO_STATUS_INVALID_ARGUMENT, "t.yaml:3:3: unknown key 'xyz' in algo");
  evo_cfg_get(algo, "xyz");
  expect_error(evo_cfg_check_unused(algo), EVO_STATUS_INVALID_ARGUMENT,
               "t.yaml:4:3: unknown key 'l' in algo (did you mean 'lr'?)");
  evo_config_free(c);
}

/* ---------------------------------------------------------------- defaults */

Test(config, defaults_are_recorded_and_written) {
  evo_config *c = parse_ok("algo:\n  name: pgpe\n  lr:\n");
  evo_cfg *r = evo_config_root(c), *algo, *trainer;
  int64_t pop, iters;
  double lr, sig[2];
  bool max;
  const char *opt, *mode;
  cr_assert_eq(evo_cfg_section(r, "algo", &algo), EVO_STATUS_OK);
  cr_assert_eq(evo_cfg_string(algo, "name", "cma_es", NULL, &opt), EVO_STATUS_OK);
  cr_assert_eq(evo_cfg_int(algo, "pop_size", 64, 1, 1000000, &pop), EVO_STATUS_OK);
  cr_assert_eq(evo_cfg_double(algo, "lr", 0.01, 0, 1, &lr), EVO_STATUS_OK);
  cr_assert_eq(evo_cfg_bool(algo, "maximize", true, &max), EVO_STATUS_OK);
  cr_assert_eq(evo_cfg_string(algo, "optimizer", "adam", NULL, &opt), EVO_STATUS_OK);
  cr_assert_eq(evo_cfg_string(algo, "mode", "off", NULL, &mode), EVO_STATUS_OK);
  cr_assert_eq(evo_cfg_doubles(algo, "sigma", 0.1, 2, sig), EVO_STATUS_OK);
  cr_assert_eq(evo_cfg_section(r, "trainer", &trainer), EVO_STATUS_OK);
  cr_assert_eq(evo_cfg_int(trainer, "max_iter", 100, 1, INT64_MAX, &iters), EVO_STATUS_OK);
  cr_assert(pop == 64 && lr == 0.01 && max && iters == 100 && sig[0] == 0.1 && sig[1] == 0.1);
  cr_assert_str_eq(opt, "adam");
  cr_assert_str_eq(mode, "off");
  char where[256];
  cr_assert_str_eq(evo_cfg_where(evo_cfg_get(algo, "pop_size"), where, sizeof where), "t.yaml");
  cr_assert_str_eq(evo_cfg_where(evo_cfg_get(algo, "lr"), where, sizeof where), "t.yaml:3:6",
                   "a null value filled in keeps its line");
  cr_assert_eq(evo_cfg_check_unused(r), EVO_STATUS_OK, "%s", evo_last_error());
  char *text = write_str(c);
  cr_assert_str_eq(text, "algo:\n"
                         "  name: pgpe\n"
                         "  lr: 0.01\n"
                         "  pop_size: 64\n"
                         "  maximize: true\n"
                         "  optimizer: adam\n"
                         "  mode: 'off'\n"
                         "  sigma: 0.1\n"
                         "trainer:\n"
                         "  max_iter: 100\n");
  free(text);
  round_trip(c);
  evo_config_free(c);
}

/* ---------------------------------------------------------------- --set */

Test(config, set_overrides) {
  evo_config *c = parse_ok("algo:\n  pop_size: 64\npolicy:\n  hidden: [32]\n  layers:\n    - {type: conv}\n");
  cr_assert_eq(evo_config_set(c, "algo.pop_size=512"), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(evo_config_set(c, "policy.hidden=[64, 64]"), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(evo_config_set(c, "trainer.log.every=5"), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(evo_config_set(c, " algo.name = pgpe "), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(evo_config_set(c, "policy.layers[0].features=16"), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert_eq(evo_config_set(c, "policy.layers[1]={type: dense, features: 2}"), EVO_STATUS_OK, "%s",
               evo_last_error());
  cr_assert_eq(evo_config_set(c, "task.note='a: b'"), EVO_STATUS_OK, "%s", evo_last_error());
  evo_cfg *r = evo_config_root(c), *algo = evo_cfg_get(r, "algo"), *policy = evo_cfg_get(r, "policy");
  int64_t pop, every;
  double hidden[2];
  cr_assert_eq(evo_cfg_int(algo, "pop_size", 1, 1, 1000000, &pop), EVO_STATUS_OK);
  cr_assert_eq(pop, 512);
  cr_assert_eq(evo_cfg_doubles(policy, "hidden", 0, 2, hidden), EVO_STATUS_OK, "%s", evo_last_error());
  cr_assert(hidden[0] == 64 && hidden[1] == 64);
  cr_assert_eq(evo_cfg_int(evo_cfg_get(evo_cfg_get(r, "trainer"), "log"), "every", 1, 1, 100, &every), 0);
  cr_assert_eq(every, 5);
  char where[256];
  cr_assert_str_eq(evo_cfg_where(evo_cfg_get(algo, "pop_size"), where, sizeof where), "--set algo.pop_size");
  cr_assert_str_eq(evo_cfg_where(evo_cfg_get(evo_cfg_get(r, "trainer"), "log"), where, sizeof where),
                   "--set trainer.log.every");
  char *text = write_str(c);
  cr_assert_str_eq(text, "algo:\n"
                         "  pop_size: 512\n"
                         "  name: pgpe\n"
                         "policy:\n"
                         "  hidden: [64, 64]\n"
                         "  layers:\n"
                         "  - type: conv\n"
                         "    features: 16\n"
                         "  - type: dense\n"
                         "    features: 2\n"
                         "trainer:\n"
                         "  log:\n"
                         "    every: 5\n"
                         "task:\n"
                         "  note: 'a: b'\n");
  free(text);
  round_trip(c);
  evo_config_free(c);
}

Test(config, set_errors_go_through_the_readers) {
  evo_config *c = parse_ok("algo:\n  pop_size: 64\n  lr: 0.1\n");
  cr_assert_eq(evo_config_set(c, "algo.pop_size=abc"), EVO_STATUS_OK);
  cr_assert_eq(evo_config_set(c, "algo.pop_sze=5"), EVO_STATUS_OK);
  evo_cfg *algo = evo_cfg_get(evo_config_root(c), "algo");
  int64_t pop;
  expect_error(evo_cfg_int(algo, "pop_size", 1, 1, 1000000, &pop), EVO_STATUS_INVALID_ARGUMENT,
               "--set algo.pop_size: algo.pop_size must be an integer in [1, 1000000], got 'abc'");
  double lr;
  cr_assert_eq(evo_cfg_double(algo, "lr", 0.1, 0, 1, &lr), EVO_STATUS_OK);
  expect_error(evo_cfg_check_unused(algo), EVO_STATUS_INVALID_ARGUMENT,
               "--set algo.pop_sze: unknown key 'pop_sze' in algo (did you mean 'pop_size'?)");
  evo_config_free(c);
}

Test(config, set_malformed_assignments) {
  evo_config *c = parse_ok("algo:\n  lr: 0.1\nlist: [1, 2]\n");
  expect_error(evo_config_set(c, "algo.lr"), EVO_STATUS_INVALID_ARGUMENT, "--set 'algo.lr': expected key.path=value");
  expect_error(evo_config_set(c, "=3"), EVO_STATUS_INVALID_ARGUMENT, "--set '=3': expected key.path=value");
  expect_error(evo_config_set(c, "algo..lr=3"), EVO_STATUS_INVALID_ARGUMENT, "--set 'algo..lr=3': empty key in the path");
  expect_error(evo_config_set(c, "algo.=3"), EVO_STATUS_INVALID_ARGUMENT, "--set 'algo.=3': empty key in the path");
  expect_error(evo_config_set(c, "list[x]=3"), EVO_STATUS_INVALID_ARGUMENT,
               "--set 'list[x]=3': a list index is written [N]");
  expect_error(evo_config_set(c, "algo.lr.x=3"), EVO_STATUS_INVALID_ARGUMENT,
               "--set 'algo.lr.x=3': algo.lr is not a map (t.yaml:2:7)");
  expect_error(evo_config_set(c, "list[5]=3"), EVO_STATUS_INVALID_ARGUMENT,
               "--set 'list[5]=3': index 5 is out of range: list has 2 entries");
  expect_error(evo_config_set(c, "algo[0]=3"), EVO_STATUS_INVALID_ARGUMENT,
               "--set 'algo[0]=3': algo is not a list (t.yaml:2:3)");
  expect_error(evo_config_set(c, "algo.lr=[1, 2"), EVO_STATUS_INVALID_ARGUMENT,
               "--set algo.lr: did not find expected ',' or ']' (while parsing a flow sequence) in value '[1, 2'");
  expect_error(evo_config_set(c, "algo.lr=a: b"), EVO_STATUS_INVALID_ARGUMENT,
               "--set algo.lr: the value must be a scalar, [a, b] or {k: v} (quote it if it contains ': ' or starts "
               "with '- ')");
  /* nothing above changed the document */
  cr_assert_str_eq(evo_cfg_scalar(evo_cfg_get(evo_cfg_get(evo_config_root(c), "algo"), "lr")), "0.1");
  cr_assert_eq(evo_config_set(c, "list[2]=3"), EVO_STATUS_OK, "appending at [len]");
  cr_assert_eq(evo_cfg_list_size(evo_cfg_get(evo_config_root(c), "list")), 3);
  cr_assert_eq(evo_config_set(c, "algo.lr="), EVO_STATUS_OK, "an empty value resets to the default");
  double lr;
  cr_assert_eq(evo_cfg_double(evo_cfg_get(evo_config_root(c), "algo"), "lr", 0.5, 0, 1, &lr), EVO_STATUS_OK);
  cr_assert_eq(lr, 0.5);
  evo_config_free(c);
}

/* ---------------------------------------------------------------- round trips */

Test(config, write_parse_round_trip) {
  evo_config *c = parse_ok(REAL);
  cr_assert_eq(evo_config_set(c, "task.quoted=\"yes\""), EVO_STATUS_OK);
  round_trip(c);
  evo_config_free(c);
  c = parse_ok("strings:\n"
               "  empty: ''\n"
               "  nul: null\n"
               "  colon: 'a: b'\n"
               "  hash: '#x'\n"
               "  dash: '- x'\n"
               "  num: '1e-3'\n"
               "  yes: 'yes'\n"
               "  lead: ' padded '\n"
               "  multi: |\n"
               "    line one\n"
               "    line two\n"
               "  utf8: \"h\\u00e9llo \\t tab\"\n"
               "  long: " "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx yy\n"
               "'null': quoted key\n"
               "'<<': not a merge\n"
               "nested: {a: [], b: {}, c: [[1, 2], [3]], d: [{x: 1}, {y: [2]}]}\n");
  evo_cfg *s = evo_cfg_get(evo_config_root(c), "strings");
  cr_assert_eq(evo_cfg_kind_of(evo_cfg_get(s, "nul")), EVO_CFG_NULL);
  cr_assert_eq(evo_cfg_kind_of(evo_cfg_get(s, "empty")), EVO_CFG_SCALAR);
  cr_assert_str_eq(evo_cfg_scalar(evo_cfg_get(s, "multi")), "line one\nline two\n");
  cr_assert_str_eq(evo_cfg_scalar(evo_cfg_get(s, "utf8")), "h\xc3\xa9llo \t tab");
  round_trip(c);
  evo_config_free(c);
}

Test(config, anchors_aliases_and_merge_keys) {
  evo_config *c = parse_ok("base: &b\n"
                           "  lr: 0.1\n"
                           "  hidden: [8, 8]\n"
                           "run:\n"
                           "  <<: *b\n"
                           "  lr: 0.2\n"
                           "copy: *b\n");
  evo_cfg *r = evo_config_root(c), *run = evo_cfg_get(r, "run"), *copy = evo_cfg_get(r, "copy");
  cr_assert_eq(evo_cfg_map_size(run), 2);
  cr_assert_str_eq(evo_cfg_map_key(run, 0), "hidden");
  cr_assert_str_eq(evo_cfg_scalar(evo_cfg_get(run, "lr")), "0.2");
  cr_assert_str_eq(evo_cfg_scalar(evo_cfg_get(copy, "lr")), "0.1");
  char path[64];
  cr_assert_str_eq(evo_cfg_path(evo_cfg_get(copy, "hidden"), path, sizeof path), "copy.hidden");
  round_trip(c);
  evo_config_free(c);
  parse_fails("a: *nope\n", EVO_STATUS_FORMAT, "t.yaml:1:4: unknown anchor 'nope'");
  parse_fails("a: &x [1, *x]\n", EVO_STATUS_FORMAT, "t.yaml:1:11: unknown anchor 'x'");
  parse_fails("a: &x [1, 2]\nb:\n  <<: 3\n", EVO_STATUS_FORMAT,
              "t.yaml:3:7: a merge key '<<' needs a map or a list of maps");
  /* exponential alias expansion stops at the node cap instead of eating memory */
  char bomb[2048] = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 10; i++) {
    size_t l = strlen(bomb);
    snprintf(bomb + l, sizeof bomb - l, "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n", i,
             i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
  }
  evo_config *b = NULL;
  cr_assert_eq(evo_config_parse(bomb, "t.yaml", &b), EVO_STATUS_FORMAT);
  cr_assert(strstr(evo_last_error(), "too large"), "%s", evo_last_error());
}

/* ---------------------------------------------------------------- malformed documents */

Test(config, malformed_yaml) {
  parse_fails("algo:\n  pop_size: 64\n lr: 0.1\n", EVO_STATUS_FORMAT,
              "t.yaml:3:2: did not find expected key (while parsing a block mapping at 1:1)");
  parse_fails("policy:\n  hidden: [64, 64\nalgo: 1\n", EVO_STATUS_FORMAT,
              "t.yaml:3:5: did not find expected ',' or ']' (while parsing a flow sequence at 2:11)");
  parse_fails("a: 1\nb:\n\t- 2\n", EVO_STATUS_FORMAT,
              "t.yaml:3:1: found character that cannot start any token (tabs are not allowed for indentation)");
  parse_fails("algo:\n  lr: 1\n  lr: 2\n", EVO_STATUS_FORMAT, "t.yaml:3:3: duplicate key 'lr' (first at line 2)");
  parse_fails("a: {x: 1, x: 2}\n", EVO_STATUS_FORMAT, "t.yaml:1:11: duplicate key 'x' (first at line 1)");
  parse_fails("- 1\n- 2\n", EVO_STATUS_FORMAT,
              "t.yaml:1:1: the top level must be a map of sections (key: value), got a list");
  parse_fails("just text\n", EVO_STATUS_FORMAT,
              "t.yaml:1:1: the top level must be a map of sections (key: value), got a scalar");
  parse_fails("a: 1\n---\nb: 2\n", EVO_STATUS_FORMAT, "t.yaml:2:1: only one YAML document is allowed");
  parse_fails("? [1, 2]\n: x\n", EVO_STATUS_FORMAT, "t.yaml:1:3: a key must be a non-empty string");
  parse_fails("a: \"unterminated\n", EVO_STATUS_FORMAT,
              "t.yaml:2:1: found unexpected end of stream (while scanning a quoted scalar at 1:4)");
  char deep[1200] = "a: ";
  for (int i = 0; i < 300; i++) strcat(deep, "[");
  parse_fails(deep, EVO_STATUS_FORMAT, "t.yaml:1:259: nesting deeper than 256 levels");
}

/* Found by tests/fuzz/fuzz_config: aliases copy their target where they stand, so a deep anchor aliased deep inside
   another collection (and aliases of such aliases) nested past the 256-level bound. The written config.yaml could not
   be read back, and a 45 KB chain of them overflowed the stack of the recursive copy. */
/* "a: &a" 200 nested lists, then "b:" with *a inside `outer` more (1 + 200 + outer levels in all). */
static void alias_doc(char doc[1400], int outer) {
  strcpy(doc, "a: &a ");
  for (int i = 0; i < 200; i++) strcat(doc, "[");
  for (int i = 0; i < 200; i++) strcat(doc, "]");
  strcat(doc, "\nb: ");
  for (int i = 0; i < outer; i++) strcat(doc, "[");
  strcat(doc, "*a");
  for (int i = 0; i < outer; i++) strcat(doc, "]");
}

Test(config, aliases_cannot_nest_past_the_depth_bound) {
  char doc[1400];
  alias_doc(doc, 100);
  parse_fails(doc, EVO_STATUS_FORMAT, "t.yaml:2:104: alias '*a' would nest deeper than 256 levels");
  alias_doc(doc, 55); /* at the bound exactly it is accepted and reads back */
  evo_config *c = parse_ok(doc);
  round_trip(c);
  evo_config_free(c);
}

/* Found by tests/fuzz/fuzz_config: a --set value is bounded by the parser on its own, but it lands under its key
   path, so "k.k...k=[[...]]" built a document deeper than the reader accepts; its config.yaml could not be resumed. */
Test(config, set_cannot_nest_past_the_depth_bound) {
  evo_config *c = parse_ok("x: 1\n");
  char a[1200] = "k.k.k.k=";
  for (int i = 0; i < 253; i++) strcat(a, "[");
  for (int i = 0; i < 253; i++) strcat(a, "]");
  evo_status st = evo_config_set(c, a);
  cr_assert_eq(st, EVO_STATUS_INVALID_ARGUMENT, "status %d: %s", st, evo_last_error());
  cr_assert_str_eq(evo_last_error(), "--set k.k.k.k: the value would nest deeper than 256 levels (4 of key path, 253 "
                   "in the value)");
  cr_assert_null(evo_cfg_get(evo_config_root(c), "k"), "a refused --set changes nothing");
  a[strlen(a) - 1] = '\0';
  memmove(a + 8, a + 9, strlen(a + 9) + 1); /* 252 levels under k.k.k.k: exactly 256 */
  cr_assert_eq(evo_config_set(c, a), EVO_STATUS_OK, "%s", evo_last_error());
  round_trip(c);
  evo_config_free(c);
}

Test(config, empty_and_missing_files) {
  evo_config *c = parse_ok("");
  cr_assert_eq(evo_cfg_kind_of(evo_config_root(c)), EVO_CFG_MAP);
  cr_assert_eq(evo_cfg_map_size(evo_config_root(c)), 0);
  expect_error(evo_cfg_require(evo_config_root(c), "task"), EVO_STATUS_NOT_FOUND,
               "t.yaml:1:1: missing required key task");
  char *text = write_str(c);
  cr_assert_str_eq(text, "{}\n");
  free(text);
  evo_config_free(c);
  c = parse_ok("# only a comment\n---\n");
  cr_assert_eq(evo_cfg_map_size(evo_config_root(c)), 0);
  evo_config_free(c);

  evo_config *m = (evo_config *)1;
  expect_error(evo_config_load("/nonexistent/dir/run.yaml", &m), EVO_STATUS_IO,
               "/nonexistent/dir/run.yaml: cannot open config: No such file or directory");
  cr_assert_null(m);
  expect_error(evo_config_load("/tmp", &m), EVO_STATUS_IO, "/tmp: cannot read config: Is a directory");
}

Test(config, load_names_the_file) {
  char path[128];
  snprintf(path, sizeof path, "/tmp/evoc_test_config_%ld.yaml", (long)getpid());
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f);
  fputs("algo:\n  pop_size: 0\n", f);
  fclose(f);
  evo_config *c = NULL;
  cr_assert_eq(evo_config_load(path, &c), EVO_STATUS_OK, "%s", evo_last_error());
  int64_t pop;
  char want[256];
  snprintf(want, sizeof want, "%s:2:13: algo.pop_size must be an integer in [1, 1000000], got '0'", path);
  expect_error(evo_cfg_int(evo_cfg_get(evo_config_root(c), "algo"), "pop_size", 1, 1, 1000000, &pop),
               EVO_STATUS_INVALID_ARGUMENT, want);
  evo_config_free(c);
  f = fopen(path, "w");
  fputs("algo: [1,\n", f);
  fclose(f);
  cr_assert_eq(evo_config_load(path, &c), EVO_STATUS_FORMAT);
  cr_assert(strncmp(evo_last_error(), path, strlen(path)) == 0, "%s", evo_last_error());
  cr_assert_null(c);
  unlink(path);
}
