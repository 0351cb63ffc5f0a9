/* EVO_HD marks the inline math that host code and CUDA kernels share (the same function compiled for both, so the
   two cannot drift): __host__ __device__ under nvcc (and the emulator), nothing in C. */
#ifndef EVOC_HD_H
#define EVOC_HD_H
#ifdef __CUDACC__
#define EVO_HD __host__ __device__
#else
#define EVO_HD
#endif
#endif
