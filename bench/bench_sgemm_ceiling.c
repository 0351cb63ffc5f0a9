/* The fp32 SGEMM ceiling of this GPU, measured with cuBLAS in the same run as the other GPU benchmarks, so their
 * GFLOP/s can be quoted as a % of what the card does on the easiest possible fp32 matrix work.
 *
 * Timed: cublasGemmEx, square row-major-agnostic N x N x N, fp32 in/out, CUBLAS_COMPUTE_32F (no TF32: the handle
 * keeps CUBLAS_DEFAULT_MATH and the compute type forbids reduced precision), alpha = 1, beta = 0, random data in
 * [-1, 1). `warmup` untimed calls, then `runs` calls each timed alone with CUDA events; median and min in ms;
 * flop = 2 * N^3; GFLOP/s = flop / median. The ceiling is the best median GFLOP/s over the sizes.
 *
 * Built only with CUDA (bench/CMakeLists.txt); without a usable device it prints "skipped: no usable CUDA device"
 * and exits 0.
 *
 * Usage: bench_sgemm_ceiling [--quick] [--csv] [--runs N] [--warmup N] [--device cuda|cuda:N]
 */
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include "bench_util.h"

static void check_cuda(cudaError_t e, const char *what) {
  if (e != cudaSuccess) {
    fprintf(stderr, "bench: %s failed: %s\n", what, cudaGetErrorString(e));
    exit(1);
  }
}

static void check_cublas(cublasStatus_t s, const char *what) {
  if (s != CUBLAS_STATUS_SUCCESS) {
    fprintf(stderr, "bench: %s failed: cublas status %d\n", what, (int)s);
    exit(1);
  }
}

/* One size: returns its median GFLOP/s. */
static double time_size(const bench_opts *o, cublasHandle_t h, int n, int warmup, int runs) {
  const size_t count = (size_t)n * (size_t)n, bytes = sizeof(float) * count;
  float *host = malloc(bytes), *d[3];
  if (!host) bench_die("malloc");
  for (int i = 0; i < 3; i++) {
    check_cuda(cudaMalloc((void **)&d[i], bytes), "cudaMalloc");
    bench_fill(host, (int64_t)count, 700 + (uint64_t)i, -1.f, 1.f);
    check_cuda(cudaMemcpy(d[i], host, bytes, cudaMemcpyHostToDevice), "cudaMemcpy");
  }
  free(host);
  const float one = 1.0f, zero = 0.0f;
  cudaEvent_t e0, e1;
  check_cuda(cudaEventCreate(&e0), "cudaEventCreate");
  check_cuda(cudaEventCreate(&e1), "cudaEventCreate");
  double *t = malloc(sizeof(double) * (size_t)runs);
  if (!t) bench_die("malloc");
  for (int i = 0; i < warmup + runs; i++) {
    check_cuda(cudaEventRecord(e0, 0), "cudaEventRecord");
    check_cublas(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, d[0], CUDA_R_32F, n, d[1], CUDA_R_32F, n,
                              &zero, d[2], CUDA_R_32F, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                 "cublasGemmEx");
    check_cuda(cudaEventRecord(e1, 0), "cudaEventRecord");
    check_cuda(cudaEventSynchronize(e1), "cudaEventSynchronize");
    float ms = 0;
    check_cuda(cudaEventElapsedTime(&ms, e0, e1), "cudaEventElapsedTime");
    if (i >= warmup) t[i - warmup] = 1e-3 * ms;
  }
  const double flop = 2.0 * (double)n * (double)n * (double)n;
  bench_result r;
  r.median_ms = 1e3 * bench_median(t, runs);
  r.min_ms = 1e3 * t[0];
  r.gflops = flop / (r.median_ms * 1e-3) / 1e9;
  char wl[32], cfg[64];
  snprintf(wl, sizeof wl, "sgemm_%d", n);
  snprintf(cfg, sizeof cfg, "%d^3 fp32, COMPUTE_32F (no TF32)", n);
  if (o->csv) printf("evoc,%s,%s,%.0f,%.4f,%.4f,%.3f\n", wl, cfg, flop, r.median_ms, r.min_ms, r.gflops);
  else printf("%-14s %-34s %12.1f %10.3f %10.3f %9.2f\n", wl, cfg, flop / 1e6, r.median_ms, r.min_ms, r.gflops);
  fflush(stdout);
  free(t);
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  for (int i = 0; i < 3; i++) cudaFree(d[i]);
  return r.gflops;
}

int main(int argc, char **argv) {
  bench_opts o = bench_parse(argc, argv);
  int dev = 0, count = 0;
  if (!strcmp(o.device, "cpu")) { /* the default: scripts that run every benchmark with no options pass here */
    printf("skipped: GPU-only benchmark (pass --device cuda)\n");
    return 0;
  }
  if (!strncmp(o.device, "cuda:", 5)) dev = atoi(o.device + 5);
  else if (strcmp(o.device, "cuda") && strcmp(o.device, "auto")) {
    bench_usage(argv[0]);
    return 2;
  }
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || dev < 0 || dev >= count) {
    printf("skipped: no usable CUDA device (%s)\n", e != cudaSuccess ? cudaGetErrorString(e) : "no such device");
    return 0;
  }
  check_cuda(cudaSetDevice(dev), "cudaSetDevice");
  struct cudaDeviceProp prop;
  check_cuda(cudaGetDeviceProperties(&prop, dev), "cudaGetDeviceProperties");
  cublasHandle_t h;
  check_cublas(cublasCreate(&h), "cublasCreate");
  check_cublas(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
  if (!o.csv) {
    printf("cuBLAS SGEMM ceiling on %s (%d SMs)\n", prop.name, prop.multiProcessorCount);
    printf("%-14s %-34s %12s %10s %10s %9s\n", "workload", "config", "MFLOP/call", "median ms", "min ms", "GFLOP/s");
  }
  const int sizes[3] = {4096, 8192, 12288};
  const int n_sizes = o.quick ? 2 : 3;
  double best = 0;
  for (int i = 0; i < n_sizes; i++) {
    const int runs = o.runs > 0 ? o.runs : (o.quick ? 5 : 20);
    const int warmup = o.warmup >= 0 ? o.warmup : 2;
    const double g = time_size(&o, h, sizes[i], warmup, runs);
    best = g > best ? g : best;
  }
  if (!o.csv) printf("sgemm_ceiling_gflops %.2f\n", best);
  cublasDestroy(h);
  return 0;
}
