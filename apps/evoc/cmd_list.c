/* evoc list: what a config can name, with options and defaults. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "cli.h"
#include "evoc/algo.h"
#include "evoc/optim.h"
#include "evoc/task.h"

static const char list_usage[] =
    "usage: evoc list [tasks|policies|algos|optimizers]\n"
    "\n"
    "Built-in tasks, policies, algorithms (with their options, defaults, ranges and sources) and optimizers.\n"
    "Without an argument, all four.\n";

static void list_tasks(void) {
  printf("TASKS (task: {name: NAME, ...} or task: {plugin: path/to/lib.so, ...})\n");
  for (int i = 0; i < evo_task_builtin_count(); i++) {
    const evo_task_vtable *vt = evo_task_builtin_at(i);
    printf("  %-18s %s\n", vt->name, vt->doc ? vt->doc : "");
  }
  printf("\n");
}

static void list_policies(void) {
  printf("POLICIES (policy: {name: NAME, ...})\n"
         "  mlp                hidden: [64, 64], activation: tanh|relu,\n"
         "                     output: auto|tanh|linear|softmax|log_softmax|argmax\n"
         "  cnn                preset: evojax_convnet|seed_cnn, or layers: [{type: conv, features, kernel, stride,\n"
         "                     padding}, relu, {type: maxpool, window, stride}, flatten, {type: dense, features},\n"
         "                     log_softmax, ...]\n"
         "  lstm               hidden: 32, output: as mlp\n"
         "  direct             no options: the parameters are the action (default for the functions task)\n\n");
}

static void print_num(double v) {
  if (isinf(v)) printf("%s", v > 0 ? ".inf" : "-.inf");
  else printf("%g", v);
}

static void list_algos(void) {
  printf("ALGORITHMS (algo: {name: NAME, pop_size, init_stdev, maximize, x0, OPTION: VALUE...})\n");
  for (int i = 0; i < evo_algo_count(); i++) {
    const evo_algo_info *in = evo_algo_info_at(i);
    printf("  %s\n      %s\n      best parameters: %s\n", in->name, in->doc ? in->doc : "",
           in->best_doc ? in->best_doc : "");
    for (int k = 0; k < in->n_options; k++) {
      const evo_option_spec *o = &in->options[k];
      printf("      %-18s ", o->key);
      if (o->choices) { /* named values: the default's name, then all names (numbers lo.. still accepted) */
        printf("%s  [", o->choices[(int)(o->def - o->lo)]);
        for (int c = 0; o->choices[c]; c++) printf("%s%s", c ? " | " : "", o->choices[c]);
        printf("]  %s\n", o->doc ? o->doc : "");
        continue;
      }
      print_num(o->def);
      printf("  [");
      print_num(o->lo);
      printf(", ");
      print_num(o->hi);
      printf("]  %s\n", o->doc ? o->doc : "");
    }
  }
  printf("\n");
}

static void list_optimizers(void) {
  printf("OPTIMIZERS (gradient training and ES updates)\n");
  for (int k = 0; k <= EVO_OPTIM_CLIPUP; k++) {
    evo_optim_params p = evo_optim_default_params((evo_optim_kind)k);
    printf("  %-10s lr %g", evo_optim_kind_name((evo_optim_kind)k), p.lr);
    if (k == EVO_OPTIM_MOMENTUM || k == EVO_OPTIM_NESTEROV || k == EVO_OPTIM_CLIPUP) printf(", momentum %g", p.momentum);
    if (k == EVO_OPTIM_ADAM || k == EVO_OPTIM_ADAMW) printf(", beta1 %g, beta2 %g, eps %g", p.beta1, p.beta2, p.eps);
    if (k == EVO_OPTIM_ADAMW) printf(", weight_decay %g", p.weight_decay);
    if (k == EVO_OPTIM_CLIPUP) printf(", max_speed %g", p.max_speed);
    printf("\n");
  }
  printf("  schedules: constant, exponential (decay_rate, decay_steps), cosine (decay_steps, alpha); warmup_steps;\n"
         "  clip_norm (global-norm clipping)\n");
}

static void list_comm(void) {
  printf("\nRANKS (how processes or threads share a population; evoc run --help)\n"
         "  local     one process, the default\n"
         "  threads   evoc run CONFIG --ranks N: N ranks inside this process (a GPU each when there are GPUs)\n"
#ifdef EVOC_HAVE_MPI
         "  mpi       mpirun -np N evoc run CONFIG: N processes, on one host or many (built)\n"
#else
         "  mpi       not built: install libopenmpi-dev and reconfigure with -DEVOC_MPI=ON\n"
#endif
#ifdef EVOC_HAVE_NCCL
         "  nccl      --comm nccl under mpirun, or --ranks N --comm nccl: through the GPUs, one each (built)\n");
#else
         "  nccl      not built: needs the CUDA backend and NCCL (libnccl-dev); reconfigure with -DEVOC_NCCL=ON\n");
#endif
}

int evo_cli_list(int argc, char **argv) {
  const char *what = NULL;
  for (int i = 1; i < argc; i++) {
    if (evo_cli_is_help(argv[i])) {
      fputs(list_usage, stdout);
      return EVO_CLI_OK;
    }
    if (argv[i][0] == '-' || what) {
      fprintf(stderr, "evoc list: unexpected argument '%s'\n\n%s", argv[i], list_usage);
      return EVO_CLI_USAGE;
    }
    what = argv[i];
  }
  static const char *const kinds[] = {"tasks", "policies", "algos", "optimizers"};
  int pick = -1;
  for (int k = 0; what && k < 4; k++)
    if (!strcmp(what, kinds[k]) || (!strcmp(what, "algorithms") && k == 2)) pick = k;
  if (what && pick < 0) {
    fprintf(stderr, "evoc list: unknown list '%s' (tasks, policies, algos, optimizers)\n", what);
    return EVO_CLI_USAGE;
  }
  if (pick < 0 || pick == 0) list_tasks();
  if (pick < 0 || pick == 1) list_policies();
  if (pick < 0 || pick == 2) list_algos();
  if (pick < 0 || pick == 3) list_optimizers();
  if (pick < 0) list_comm();
  return EVO_CLI_OK;
}
