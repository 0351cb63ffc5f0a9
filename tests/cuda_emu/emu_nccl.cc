/* The emulator's NCCL: the calls core/comm_nccl.c makes, between ranks that are threads of this process
   (ncclCommInitAll, or ncclCommInitRank with an id made in this process). As real NCCL does, it refuses buffers
   that are not device memory, two ranks on one GPU and ranks out of range; collectives run at once, like the
   emulator's streams, and block until every rank of the communicator has called them. A rank that never comes
   makes the others fail after EVO_EMU_NCCL_TIMEOUT_S seconds (default 120) instead of hanging a test. */
#include <nccl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>
#include "emu_rt.h"

namespace {

/* The ranks of one communicator: a generation barrier and the buffers each rank posted for the collective. */
struct clique {
  explicit clique(int n) : n(n), devices(n, -1), send(n), recv(n) {}
  int n;
  std::mutex mu;
  std::condition_variable cv;
  int joined = 0, arrived = 0;
  unsigned long gen = 0;
  std::vector<int> devices;
  std::vector<const void *> send;
  std::vector<void *> recv;
};

thread_local std::string last_msg;
std::mutex reg_mu;
std::map<uint64_t, std::shared_ptr<clique>> pending; /* ncclCommInitRank: cliques still gathering their ranks */
uint64_t next_serial = 1;

ncclResult_t fail(ncclResult_t r, const char *msg) {
  last_msg = std::string("emulated NCCL: ") + msg;
  return r;
}

std::chrono::seconds timeout() {
  const char *v = getenv("EVO_EMU_NCCL_TIMEOUT_S");
  return std::chrono::seconds(v && *v ? atoi(v) : 120);
}

/* Every rank of q: returns false when the others did not all arrive in time. */
bool meet(clique &q) {
  std::unique_lock<std::mutex> l(q.mu);
  const unsigned long g = q.gen;
  if (++q.arrived == q.n) {
    q.arrived = 0, q.gen++;
    q.cv.notify_all();
    return true;
  }
  return q.cv.wait_for(l, timeout(), [&] { return q.gen != g; });
}

size_t type_size(ncclDataType_t t) {
  switch (t) {
  case ncclInt8: case ncclUint8: return 1;
  case ncclFloat16: case ncclBfloat16: return 2;
  case ncclInt32: case ncclUint32: case ncclFloat32: return 4;
  case ncclInt64: case ncclUint64: case ncclFloat64: return 8;
  default: return 0;
  }
}

int device_count() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess ? n : 0;
}

} // namespace

struct ncclComm {
  std::shared_ptr<clique> q;
  int rank, device;
};

namespace {

ncclResult_t check_args(ncclComm_t c, const void *send, size_t send_bytes, const void *recv, size_t recv_bytes,
                        cudaStream_t s) {
  if (!c) return fail(ncclInvalidArgument, "NULL communicator");
  enum cudaStreamCaptureStatus cs;
  if (s && cudaStreamIsCapturing(s, &cs) == cudaSuccess && cs != cudaStreamCaptureStatusNone)
    return fail(ncclInvalidUsage, "collectives are not emulated inside a graph capture");
  if (send_bytes && !evo_emu::is_device_ptr(send, send_bytes))
    return fail(ncclInvalidArgument, "the send buffer is not device memory");
  if (recv_bytes && !evo_emu::is_device_ptr(recv, recv_bytes))
    return fail(ncclInvalidArgument, "the receive buffer is not device memory");
  return ncclSuccess;
}

ncclResult_t late() { return fail(ncclSystemError, "a rank did not reach the collective in time (EVO_EMU_NCCL_TIMEOUT_S)"); }

} // namespace

extern "C" {

ncclResult_t ncclGetVersion(int *v) {
  *v = NCCL_VERSION_CODE;
  return ncclSuccess;
}

const char *ncclGetErrorString(ncclResult_t r) {
  switch (r) {
  case ncclSuccess: return "no error";
  case ncclUnhandledCudaError: return "unhandled cuda error (run with NCCL_DEBUG=INFO for details)";
  case ncclSystemError: return "unhandled system error (run with NCCL_DEBUG=INFO for details)";
  case ncclInternalError: return "internal error - please report this issue to the NCCL developers";
  case ncclInvalidArgument: return "invalid argument (run with NCCL_DEBUG=WARN for details)";
  case ncclInvalidUsage: return "invalid usage (run with NCCL_DEBUG=WARN for details)";
  default: return "unknown result code";
  }
}

const char *ncclGetLastError(ncclComm_t) { return last_msg.c_str(); }

ncclResult_t ncclGetUniqueId(ncclUniqueId *id) {
  memset(id, 0, sizeof *id);
  const int64_t pid = getpid();
  std::lock_guard<std::mutex> g(reg_mu);
  const uint64_t serial = next_serial++;
  memcpy(id->internal, &pid, sizeof pid);
  memcpy(id->internal + 8, &serial, sizeof serial);
  return ncclSuccess;
}

ncclResult_t ncclCommInitRank(ncclComm_t *out, int nranks, ncclUniqueId id, int rank) {
  *out = nullptr;
  int64_t pid;
  uint64_t serial;
  memcpy(&pid, id.internal, sizeof pid);
  memcpy(&serial, id.internal + 8, sizeof serial);
  if (pid != getpid()) return fail(ncclInvalidUsage, "the ranks must be threads of one process");
  if (nranks < 1 || rank < 0 || rank >= nranks) return fail(ncclInvalidArgument, "rank out of range");
  int dev = 0;
  cudaGetDevice(&dev);
  std::shared_ptr<clique> q;
  {
    std::lock_guard<std::mutex> g(reg_mu);
    auto &slot = pending[serial];
    if (!slot) slot = std::make_shared<clique>(nranks);
    q = slot;
  }
  if (q->n != nranks) return fail(ncclInvalidArgument, "ranks disagree on the number of ranks");
  {
    std::unique_lock<std::mutex> l(q->mu);
    q->devices[rank] = dev;
    if (++q->joined == nranks) {
      std::lock_guard<std::mutex> g(reg_mu);
      pending.erase(serial);
      q->cv.notify_all();
    } else if (!q->cv.wait_for(l, timeout(), [&] { return q->joined == nranks; })) {
      return fail(ncclSystemError, "not every rank joined the communicator in time");
    }
    for (int r = 0; r < nranks; r++)
      if (r != rank && q->devices[r] == dev) return fail(ncclInvalidUsage, "Duplicate GPU detected");
  }
  *out = new ncclComm{q, rank, dev};
  return ncclSuccess;
}

ncclResult_t ncclCommInitAll(ncclComm_t *comms, int ndev, const int *devlist) {
  if (ndev < 1) return fail(ncclInvalidArgument, "ndev must be positive");
  const int have = device_count();
  for (int i = 0; i < ndev; i++) {
    const int d = devlist ? devlist[i] : i;
    if (d < 0 || d >= have) return fail(ncclInvalidArgument, "no such device");
    for (int j = 0; j < i; j++)
      if ((devlist ? devlist[j] : j) == d) return fail(ncclInvalidUsage, "Duplicate GPU detected");
  }
  auto q = std::make_shared<clique>(ndev);
  for (int i = 0; i < ndev; i++) comms[i] = new ncclComm{q, i, devlist ? devlist[i] : i};
  return ncclSuccess;
}

ncclResult_t ncclCommDestroy(ncclComm_t c) {
  delete c;
  return ncclSuccess;
}

ncclResult_t ncclAllGather(const void *send, void *recv, size_t count, ncclDataType_t t, ncclComm_t c,
                           cudaStream_t s) {
  const size_t w = type_size(t), bytes = count * w;
  if (!w) return fail(ncclInvalidArgument, "unknown data type");
  if (ncclResult_t r = check_args(c, send, bytes, recv, c ? bytes * (size_t)c->q->n : 0, s)) return r;
  clique &q = *c->q;
  q.send[c->rank] = send;
  if (!meet(q)) return late();
  for (int r = 0; r < q.n; r++) {
    unsigned char *dst = (unsigned char *)recv + (size_t)r * bytes;
    if (bytes && dst != q.send[r]) memmove(dst, q.send[r], bytes);
  }
  return meet(q) ? ncclSuccess : late(); /* nobody reuses its send buffer while another rank reads it */
}

ncclResult_t ncclBroadcast(const void *send, void *recv, size_t count, ncclDataType_t t, int root, ncclComm_t c,
                           cudaStream_t s) {
  const size_t w = type_size(t), bytes = count * w;
  if (!w) return fail(ncclInvalidArgument, "unknown data type");
  if (c && (root < 0 || root >= c->q->n)) return fail(ncclInvalidArgument, "root out of range");
  if (ncclResult_t r = check_args(c, c && c->rank == root ? send : nullptr, c && c->rank == root ? bytes : 0, recv,
                                  bytes, s))
    return r;
  clique &q = *c->q;
  if (c->rank == root) q.send[root] = send;
  if (!meet(q)) return late();
  if (bytes && recv != q.send[root]) memmove(recv, q.send[root], bytes);
  return meet(q) ? ncclSuccess : late();
}

ncclResult_t ncclAllReduce(const void *send, void *recv, size_t count, ncclDataType_t t, ncclRedOp_t op,
                           ncclComm_t c, cudaStream_t s) {
  if (op != ncclSum || (t != ncclUint8 && t != ncclUint32 && t != ncclFloat32 && t != ncclFloat64))
    return fail(ncclInvalidArgument, "only sums of uint8, uint32, float32 and float64 are emulated");
  const size_t w = type_size(t), bytes = count * w;
  if (ncclResult_t r = check_args(c, send, bytes, recv, bytes, s)) return r;
  clique &q = *c->q;
  q.send[c->rank] = send;
  if (!meet(q)) return late();
  std::vector<unsigned char> sum(bytes); /* in rank order, as a ring would not promise but a test can rely on */
  for (size_t i = 0; i < count; i++) {
    double acc = 0;
    uint32_t uacc = 0;
    for (int r = 0; r < q.n; r++) {
      const unsigned char *p = (const unsigned char *)q.send[r] + i * w;
      if (t == ncclUint8) uacc += *p;
      else if (t == ncclUint32) { uint32_t v; memcpy(&v, p, 4); uacc += v; }
      else if (t == ncclFloat32) { float v; memcpy(&v, p, 4); acc = r ? (double)(float)(acc + v) : v; }
      else { double v; memcpy(&v, p, 8); acc = r ? acc + v : v; }
    }
    unsigned char *o = sum.data() + i * w;
    if (t == ncclUint8) *o = (unsigned char)uacc;
    else if (t == ncclUint32) memcpy(o, &uacc, 4);
    else if (t == ncclFloat32) { const float f = (float)acc; memcpy(o, &f, 4); }
    else memcpy(o, &acc, 8);
  }
  if (!meet(q)) return late(); /* every rank has read every send buffer: an in-place result may land */
  if (bytes) memcpy(recv, sum.data(), bytes);
  return ncclSuccess;
}

} // extern "C"
