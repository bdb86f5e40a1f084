#include "common/thread_pool.h"

namespace eq {
namespace {
thread_local bool tInsidePool = false;
}

ThreadPool::ThreadPool(unsigned threads) {
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  for (unsigned i = 1; i < threads; ++i) workers_.emplace_back([this] { workerLoop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(m_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

// body and n were captured under the lock together with ++active_, so the batch cannot end (and its body go
// away) while this runs.
void ThreadPool::runIndices(const std::function<void(std::size_t)>& body, std::size_t n) {
  for (;;) {
    const std::size_t i = next_.fetch_add(1, std::memory_order_relaxed);
    if (i >= n) return;
    try {
      body(i);
    } catch (...) {
      std::lock_guard lock(m_);
      if (!error_) error_ = std::current_exception();
      next_.store(n, std::memory_order_relaxed);  // stop handing out work
    }
  }
}

void ThreadPool::workerLoop() {
  tInsidePool = true;
  std::uint64_t seen = 0;
  for (;;) {
    const std::function<void(std::size_t)>* body = nullptr;
    std::size_t n = 0;
    {
      std::unique_lock lock(m_);
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      if (!body_) continue;  // that batch has already finished
      body = body_;
      n = n_;
      ++active_;
    }
    runIndices(*body, n);
    {
      std::lock_guard lock(m_);
      if (--active_ == 0) done_.notify_all();
    }
  }
}

void ThreadPool::parallelFor(std::size_t n, const std::function<void(std::size_t)>& body) {
  if (n == 0) return;
  if (tInsidePool || workers_.empty() || n == 1) {
    for (std::size_t i = 0; i < n; ++i) body(i);
    return;
  }
  std::lock_guard submit(submit_);
  {
    std::lock_guard lock(m_);
    body_ = &body;
    n_ = n;
    next_.store(0);
    error_ = nullptr;
    ++generation_;
  }
  wake_.notify_all();
  tInsidePool = true;
  runIndices(body, n);
  tInsidePool = false;
  std::exception_ptr error;
  {
    std::unique_lock lock(m_);
    done_.wait(lock, [&] { return active_ == 0; });
    body_ = nullptr;
    error = error_;
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace eq
