#include "threading/thread_pool.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace convt {
namespace threading {
namespace {

struct Job {
  TaskFn fn;
  void* ctx;
  int64_t n_tasks;
  int max_helpers;            // threads - 1
  int helpers = 0;            // attached workers (guarded by Pool::mu)
  const std::atomic<bool>* cancel = nullptr;
  std::atomic<int64_t> next{0};
  std::atomic<bool> stop{false};  // a task threw or the caller cancelled: claim no more tasks
  bool cancelled = false;         // guarded by Pool::mu (set with stop)
  std::exception_ptr error;       // first exception of a task (guarded by Pool::mu)
  Job* prev = nullptr;        // intrusive list of open jobs (guarded by Pool::mu)
  Job* nxt = nullptr;
};

class Pool {
 public:
  void run(Job& job) {
    {
      std::unique_lock<std::mutex> lk(mu_);
      while (static_cast<int>(workers_) < job.max_helpers && workers_ < kMaxPoolThreads - 1) {
        try {
          std::thread(&Pool::worker_loop, this).detach();
        } catch (...) {
          break;  // no more threads (std::system_error): the caller can run every task itself
        }
        ++workers_;
      }
      // append to the open-job list
      job.prev = tail_;
      job.nxt = nullptr;
      if (tail_) tail_->nxt = &job; else head_ = &job;
      tail_ = &job;
      ++generation_;
      generation_atomic_.store(generation_, std::memory_order_release);
    }
    if (job.max_helpers == 1) cv_.notify_one(); else cv_.notify_all();

    work(job);  // the caller works too, until every task is claimed

    std::unique_lock<std::mutex> lk(mu_);
    unlink(job);  // no new helper can attach from now on
    done_cv_.wait(lk, [&] { return job.helpers == 0; });
  }

  // Claims and runs tasks until none is left, a task has thrown, or the job is cancelled. Exceptions
  // never escape a task: the first is kept for the caller (a worker thread must not terminate the
  // process), and the remaining tasks are skipped.
  void work(Job& job) {
    for (;;) {
      if (job.stop.load(std::memory_order_relaxed)) return;
      if (job.cancel && job.cancel->load(std::memory_order_relaxed)) {
        std::lock_guard<std::mutex> g(mu_);
        job.cancelled = true;
        job.stop.store(true, std::memory_order_relaxed);
        return;
      }
      const int64_t t = job.next.fetch_add(1, std::memory_order_relaxed);
      if (t >= job.n_tasks) return;
      try {
        job.fn(job.ctx, t);
      } catch (...) {
        std::lock_guard<std::mutex> g(mu_);
        if (!job.error) job.error = std::current_exception();
        job.stop.store(true, std::memory_order_relaxed);
        return;
      }
    }
  }

 private:
  void unlink(Job& job) {
    if (job.prev) job.prev->nxt = job.nxt; else head_ = job.nxt;
    if (job.nxt) job.nxt->prev = job.prev; else tail_ = job.prev;
    job.prev = job.nxt = nullptr;
  }

  Job* find_job() {  // mu_ held
    for (Job* j = head_; j; j = j->nxt)
      if (j->helpers < j->max_helpers && !j->stop.load(std::memory_order_relaxed) &&
          j->next.load(std::memory_order_relaxed) < j->n_tasks)
        return j;
    return nullptr;
  }

  void worker_loop() {
    std::unique_lock<std::mutex> lk(mu_);
    for (;;) {
      Job* job = find_job();
      if (!job) {
        // Spin briefly without the lock (back-to-back calls are common), then sleep.
        uint64_t seen = generation_;
        lk.unlock();
        auto t0 = std::chrono::steady_clock::now();
        bool changed = false;
        for (int i = 0;; ++i) {
          if (generation_atomic_.load(std::memory_order_acquire) != seen) { changed = true; break; }
          if ((i & 63) == 63 && std::chrono::steady_clock::now() - t0 > std::chrono::microseconds(kSpinMicros)) break;
#if defined(__x86_64__) || defined(__i386__)
          __builtin_ia32_pause();
#endif
        }
        lk.lock();
        if (!changed) cv_.wait(lk, [&] { return generation_ != seen; });
        continue;
      }
      ++job->helpers;
      lk.unlock();
      work(*job);
      lk.lock();
      if (--job->helpers == 0) done_cv_.notify_all();
    }
  }

  static constexpr int kSpinMicros = 200;
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  Job* head_ = nullptr;
  Job* tail_ = nullptr;
  uint64_t generation_ = 0;
  std::atomic<uint64_t> generation_atomic_{0};
  int workers_ = 0;
};

Pool& pool() {
  static Pool* p = new Pool();  // intentionally leaked: safe at process exit
  return *p;
}

}  // namespace

int hardware_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return n ? static_cast<int>(n) : 1;
}

bool parallel_for(int64_t n_tasks, int threads, TaskFn fn, void* ctx, const std::atomic<bool>* cancel) {
  if (n_tasks <= 0) return !(cancel && cancel->load(std::memory_order_relaxed));
  if (threads > kMaxPoolThreads) threads = kMaxPoolThreads;
  if (threads > n_tasks) threads = static_cast<int>(n_tasks);
  if (threads <= 1) {
    for (int64_t t = 0; t < n_tasks; ++t) {
      if (cancel && cancel->load(std::memory_order_relaxed)) return false;
      fn(ctx, t);
    }
    return true;
  }
  Job job;
  job.fn = fn;
  job.ctx = ctx;
  job.n_tasks = n_tasks;
  job.max_helpers = threads - 1;
  job.cancel = cancel;
  pool().run(job);
  if (job.error) std::rethrow_exception(job.error);
  return !job.cancelled;
}

}  // namespace threading
}  // namespace convt
