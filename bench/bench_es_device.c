/* PGPE ask + tell per generation, the population sampled on the host (CPU backend tensor) and on the device (CUDA
   tensor: members generated there, tell's noise sums there; algos/es/antithetic_dev.c). The fitness is fixed
   (a deterministic ramp), so only the strategy is timed; a generation = ask of all P members + tell, synchronised.
   Shapes: EvoJAX's CartPole MLP (5-64-64-1, n = 4,609) at P = 64, 1,024 and 4,096, and its MNIST ConvNet
   (n = 11,274) at P = 256. bench/es_peers.py times EvoJAX's PGPE (JAX, jit) on the same shapes.

   Rows: es_pgpe_<where>_P<P>_n<n> <median ms> <min ms>. The host rows always run; --device cuda adds the device
   rows, which are skipped (with the reason) without a usable GPU. */
#include "bench_util.h"
#include "evoc/algo.h"

typedef struct {
  int pop;
  int64_t n;
} es_shape;

static void time_es(evo_backend *be, const char *where, es_shape sh, int warmup, int runs, int csv) {
  evo_algo_params p = evo_algo_default_params();
  p.name = "pgpe", p.num_params = sh.n, p.pop_size = sh.pop, p.key = evo_key_from_seed(1);
  evo_algo *a;
  if (evo_algo_new(&p, &a)) bench_die("evo_algo_new");
  evo_tensor *pop = evo_tensor_new(be, EVO_F32, 2, (int64_t[]){sh.pop, sh.n});
  float *fit = malloc(sizeof(float) * (size_t)sh.pop);
  double *t = malloc(sizeof(double) * (size_t)runs);
  if (!pop || !fit || !t) bench_die("allocation");
  for (int i = 0; i < sh.pop; i++) fit[i] = (float)((i * 37) % sh.pop);
  for (int r = -warmup; r < runs; r++) {
    double t0 = bench_now();
    if (evo_algo_ask(a, 0, sh.pop, pop)) bench_die("evo_algo_ask");
    if (evo_algo_tell(a, fit)) bench_die("evo_algo_tell"); /* its download of the sums waits for the device */
    if (r >= 0) t[r] = bench_now() - t0;
  }
  const double med = bench_median(t, runs), mn = t[0];
  char name[96];
  snprintf(name, sizeof name, "es_pgpe_%s_P%d_n%lld", where, sh.pop, (long long)sh.n);
  if (csv)
    printf("evoc,%s,%s,0,%.4f,%.4f,0\n", name, where, med * 1e3, mn * 1e3);
  else
    printf("%-34s %10.3f %10.3f\n", name, med * 1e3, mn * 1e3);
  fflush(stdout);
  free(t), free(fit);
  evo_tensor_free(pop);
  evo_algo_free(a);
}

int main(int argc, char **argv) {
  bench_opts o = bench_parse(argc, argv);
  const es_shape all[] = {{64, 4609}, {1024, 4609}, {4096, 4609}, {256, 11274}};
  const int nshapes = o.quick ? 2 : 4;
  const int runs = o.runs > 0 ? o.runs : (o.quick ? 3 : 11), warmup = o.warmup >= 0 ? o.warmup : 2;
  if (!o.csv) printf("%-34s %10s %10s\n", "workload", "median ms", "min ms");
  const int dev = strcmp(o.device, "cpu") != 0; /* --device cuda: the host rows, then the device rows */
  {
    evo_backend_params bp = evo_backend_default_params();
    bp.n_threads = o.threads;
    evo_backend *cpu = evo_backend_cpu_new(&bp);
    for (int i = 0; i < nshapes; i++) time_es(cpu, "host", all[i], warmup, runs, o.csv);
    evo_backend_free(cpu);
  }
  if (dev) { /* bench_backend prints "skipped: ..." and exits 0 without a usable GPU */
    evo_backend *gpu = bench_backend(&o);
    if (!o.csv) printf("# %s\n", bench_device_label(gpu));
    for (int i = 0; i < nshapes; i++) time_es(gpu, "device", all[i], warmup, runs, o.csv);
    evo_backend_free(gpu);
  }
  /* the plan-timing helpers of bench_util.h are for the graph benchmarks */
  (void)bench_time_plan, (void)bench_outputs_for, (void)bench_tensor, (void)bench_header, (void)bench_row;
  return 0;
}
