/* The emulator's grid executor: blocks run one after another; the threads of a block run as fibers that switch
   only at __syncthreads and warp shuffles, so block- and warp-level code runs as written (a minimal x86-64 stack
   switch: ucontext's swapcontext makes a signal-mask system call per switch, which made test_trainer_cuda 6x
   slower). A kernel whose thread 0 finishes without synchronising runs its other threads as plain calls (much
   faster). UB that a GPU may forgive is reported and aborts: a full-mask shuffle after lanes of the warp exited,
   a shuffle from an exited lane, threads waiting at different barriers (deadlock). EVO_EMU_ORDER=reverse runs
   the threads between two barriers in reverse order, so a read that only works because a lower thread happened
   to write first (a missing barrier) fails. Shared variables start each block as garbage (poison_shared). */
#include <string.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <map>
#include <vector>
#include "emu.h"
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define EMU_ASAN 1
#else
#define EMU_ASAN 0
#endif

/* evo_emu_switch(save, to): saves the callee-saved registers on this stack and its stack pointer in *save, then
   continues on stack `to` as saved by an earlier switch (or prepared by make_fiber). SysV x86-64 only. */
extern "C" void evo_emu_switch(void **save, void *to);
__asm__(".text\n"
        ".globl evo_emu_switch\n"
        ".type evo_emu_switch,@function\n"
        "evo_emu_switch:\n"
        "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
        "  movq %rsp, (%rdi)\n"
        "  movq %rsi, %rsp\n"
        "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n"
        "  ret\n"
        ".size evo_emu_switch,.-evo_emu_switch\n");

namespace evo_emu {

namespace {

thread_local const thread_ids *cur_ids = nullptr;

constexpr size_t STACK = (size_t)256 << 10;
enum fstate { READY, AT_BLOCK, AT_WARP, DONE };

struct fiber {
  void *sp; /* saved stack pointer while switched out */
  thread_ids ids;
  fstate st;
  void *fake_stack;
};

struct block_run {
  const std::function<void()> *body;
  std::vector<fiber> f;
  void *main_sp;
  int cur = -1;          /* the fiber running, -1 = main */
  bool direct = false;   /* threads run as plain calls: synchronisation is an error */
  bool reverse = false;  /* EVO_EMU_ORDER=reverse: threads run in reverse order between barriers */
  uint64_t slot[32][32]; /* per warp, per lane: the values being exchanged */
  const void *main_bottom = nullptr;
  size_t main_size = 0;
  uint64_t seq = 0; /* which block this is, unique per OS thread: shared variables are poisoned once per block */
};

thread_local block_run *cur_block = nullptr;
thread_local std::vector<char *> stacks;
thread_local uint64_t block_seq = 0;
thread_local std::map<void *, uint64_t> poisoned; /* shared variable -> the block that last poisoned it */

[[noreturn]] void fail(const char *what) {
  const thread_ids *t = cur_ids;
  if (t)
    fprintf(stderr, "cuda emulator: %s (block %u,%u,%u thread %u,%u,%u)\n", what, t->b.x, t->b.y, t->b.z, t->t.x,
            t->t.y, t->t.z);
  else
    fprintf(stderr, "cuda emulator: %s\n", what);
  abort();
}

char *stack_at(size_t i) {
  while (stacks.size() <= i) {
    void *p = mmap(nullptr, STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) fail("cannot map a fiber stack");
    stacks.push_back((char *)p);
  }
  return stacks[i];
}

/* Switches from the running fiber back to the scheduler. */
void yield_to_main(block_run *b, bool finished) {
  fiber &me = b->f[b->cur];
#if EMU_ASAN
  __sanitizer_start_switch_fiber(finished ? nullptr : &me.fake_stack, b->main_bottom, b->main_size);
#endif
  evo_emu_switch(&me.sp, b->main_sp);
  if (finished) fail("a finished fiber was resumed");
#if EMU_ASAN
  __sanitizer_finish_switch_fiber(me.fake_stack, &b->main_bottom, &b->main_size);
#endif
  cur_ids = &me.ids;
}

void trampoline() {
  block_run *b = cur_block;
#if EMU_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &b->main_bottom, &b->main_size);
#endif
  cur_ids = &b->f[b->cur].ids;
  (*b->body)();
  b->f[b->cur].st = DONE;
  yield_to_main(b, true);
}

void resume(block_run *b, int i) {
  b->cur = i;
  cur_ids = &b->f[i].ids;
#if EMU_ASAN
  void *fake = nullptr;
  __sanitizer_start_switch_fiber(&fake, stack_at(i), STACK);
#endif
  evo_emu_switch(&b->main_sp, b->f[i].sp);
#if EMU_ASAN
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
  b->cur = -1;
}

void make_fiber(block_run *b, int i) {
  fiber &f = b->f[i];
  f.fake_stack = nullptr;
  /* A stack that evo_emu_switch "returns" into trampoline on: six zero registers, then trampoline's address,
     then a null return address for trampoline (it never returns), 16-byte aligned as after a call. */
  uint64_t *sp = (uint64_t *)(((uintptr_t)stack_at(i) + STACK) & ~(uintptr_t)15);
  *--sp = 0;
  *--sp = (uint64_t)(uintptr_t)trampoline;
  for (int r = 0; r < 6; r++) *--sp = 0;
  f.sp = sp;
}

/* Thread 0 has parked at its first barrier: runs every thread as a fiber, releasing barriers as they fill. */
void schedule(block_run *b) {
  const int n = (int)b->f.size();
  for (int i = 1; i < n; i++) make_fiber(b, i);
  for (;;) {
    for (int j = 0; j < n; j++) {
      const int i = b->reverse ? n - 1 - j : j;
      if (b->f[i].st == READY) resume(b, i);
    }
    bool all_done = true, released = false;
    for (int i = 0; i < n; i++) all_done = all_done && b->f[i].st == DONE;
    if (all_done) return;
    /* warps whose live lanes all wait at the exchange */
    for (int w = 0; w * 32 < n; w++) {
      int waiting = 0, live = 0;
      for (int l = 0; l < 32 && w * 32 + l < n; l++) {
        const fstate s = b->f[w * 32 + l].st;
        live += s != DONE, waiting += s == AT_WARP;
      }
      if (waiting && waiting == live) {
        for (int l = 0; l < 32 && w * 32 + l < n; l++)
          if (b->f[w * 32 + l].st == AT_WARP) b->f[w * 32 + l].st = READY;
        released = true;
      }
    }
    if (released) continue;
    bool all_block = true;
    for (int i = 0; i < n; i++) all_block = all_block && (b->f[i].st == AT_BLOCK || b->f[i].st == DONE);
    if (all_block) {
      for (int i = 0; i < n; i++)
        if (b->f[i].st == AT_BLOCK) b->f[i].st = READY;
      continue;
    }
    cur_ids = nullptr;
    fail("deadlock: threads of a block wait at different barriers (a __syncthreads or shuffle in divergent code)");
  }
}

} // namespace

const thread_ids *ids() { return cur_ids; }

void poison_shared(void *p, size_t n) {
  block_run *b = cur_block;
  if (!b) return;
  uint64_t &last = poisoned[p];
  if (last == b->seq) return;
  last = b->seq;
  memset(p, 0xFF, n);
}

int lane_id() {
  const thread_ids *t = cur_ids;
  const unsigned lin = t->t.x + t->bd.x * (t->t.y + t->bd.y * t->t.z);
  return (int)(lin % 32);
}

void sync_block() {
  block_run *b = cur_block;
  if (!b || b->direct) fail("__syncthreads in a thread whose thread 0 did not synchronise (divergent barrier)");
  b->f[b->cur].st = AT_BLOCK;
  yield_to_main(b, false);
}

void warp_exchange(unsigned mask, const void *mine, void *out, unsigned n, int src) {
  block_run *b = cur_block;
  if (!b || b->direct) fail("warp shuffle in a thread whose thread 0 did not synchronise (divergent shuffle)");
  const int me = b->cur, w = me / 32, lane = me % 32, nthreads = (int)b->f.size();
  if (src < 0 || src > 31) src = lane;
  const int width = nthreads - w * 32 < 32 ? nthreads - w * 32 : 32;
  for (int l = 0; l < width; l++)
    if ((mask >> l & 1u) && b->f[w * 32 + l].st == DONE)
      fail("warp shuffle whose mask names a lane that has exited (undefined on a GPU)");
  if (!(mask >> lane & 1u)) fail("warp shuffle by a lane outside its own mask");
  memcpy(&b->slot[w][lane], mine, n);
  b->f[me].st = AT_WARP;
  yield_to_main(b, false); /* every live lane of the warp has written */
  if (src >= width || !(mask >> src & 1u)) fail("warp shuffle reads a lane outside the mask");
  memcpy(out, &b->slot[w][src], n);
  b->f[me].st = AT_WARP;
  yield_to_main(b, false); /* every lane has read before anyone writes again */
}

cudaError_t config_error(const launch_cfg &c) {
  const dim3 g = c.grid, bd = c.block;
  const unsigned long long nthreads = (unsigned long long)bd.x * bd.y * bd.z;
  if (!g.x || !g.y || !g.z || !nthreads || nthreads > 1024 || bd.x > 1024 || bd.y > 1024 || bd.z > 64 ||
      g.y > 65535 || g.z > 65535 || g.x > 2147483647u)
    return cudaErrorInvalidConfiguration;
  return c.smem > 48 * 1024 ? cudaErrorInvalidValue : cudaSuccess;
}

cudaError_t run_grid(const launch_cfg &c, const std::function<void()> &body) {
  const dim3 g = c.grid, bd = c.block;
  const unsigned long long nthreads = (unsigned long long)bd.x * bd.y * bd.z;
  block_run *b = new block_run;
  b->body = &body;
  b->f.resize(nthreads);
  const char *order = getenv("EVO_EMU_ORDER");
  b->reverse = order && !strcmp(order, "reverse");
  block_run *saved = cur_block;
  const thread_ids *saved_ids = cur_ids;
  cur_block = b;
  for (unsigned z = 0; z < g.z; z++)
    for (unsigned y = 0; y < g.y; y++)
      for (unsigned x = 0; x < g.x; x++) {
        for (unsigned long long i = 0; i < nthreads; i++) {
          fiber &f = b->f[i];
          f.st = READY;
          f.ids.t = make_uint3((unsigned)(i % bd.x), (unsigned)(i / bd.x % bd.y), (unsigned)(i / bd.x / bd.y));
          f.ids.b = make_uint3(x, y, z);
          f.ids.bd = bd;
          f.ids.gd = g;
        }
        b->seq = ++block_seq;
        /* thread 0 on a fiber: if it never synchronises, the others run as plain calls */
        b->direct = false;
        make_fiber(b, 0);
        resume(b, 0);
        if (b->f[0].st == DONE) {
          b->direct = true;
          for (unsigned long long j = 1; j < nthreads; j++) {
            const unsigned long long i = b->reverse ? nthreads - j : j;
            b->cur = (int)i;
            cur_ids = &b->f[i].ids;
            body();
          }
          b->cur = -1;
        } else {
          schedule(b);
        }
      }
  cur_block = saved;
  cur_ids = saved_ids;
  delete b;
  return cudaSuccess;
}

} // namespace evo_emu
