// Persistent thread pool of the core (std::thread, no OpenMP).
//
// - Created lazily on the first parallel call; grows to the largest helper count ever requested
//   (capped at kMaxPoolThreads); never spawns threads per call.
// - The calling thread always participates and can finish its own job alone: a job's tasks are
//   claimed from an atomic counter, so the caller never waits for a task nobody has started.
//   Several callers (e.g. the Node main thread and libuv workers) may run jobs at once; each job has
//   its own counter, so tasks of different calls never mix.
// - The pool object is intentionally leaked and its threads detached: nothing runs at process exit,
//   so exiting while workers sleep (or even run) cannot touch a destroyed mutex.
#pragma once

#include <atomic>
#include <cstdint>

namespace convt {
namespace threading {

constexpr int kMaxPoolThreads = 64;

// fn(ctx, task) for every task in [0, n_tasks); at most `threads` threads (the caller's included).
// Each task is run at most once, by some thread; returns when every started task has finished.
// - A task that throws: no further task starts, and the first exception is rethrown to the caller once
//   the other threads have left the job (the pool stays usable).
// - cancel (optional) is polled before each task: once it reads true no further task starts, and the
//   call returns false. Returns true when every task ran.
using TaskFn = void (*)(void* ctx, int64_t task);
bool parallel_for(int64_t n_tasks, int threads, TaskFn fn, void* ctx, const std::atomic<bool>* cancel = nullptr);

// Convenience wrapper for lambdas.
template <class F>
bool parallel_for(int64_t n_tasks, int threads, const F& f, const std::atomic<bool>* cancel = nullptr) {
  return parallel_for(
      n_tasks, threads, [](void* c, int64_t t) { (*static_cast<const F*>(c))(t); },
      const_cast<void*>(static_cast<const void*>(&f)), cancel);
}

// Number of threads std::thread reports (>= 1).
int hardware_threads();

}  // namespace threading
}  // namespace convt
