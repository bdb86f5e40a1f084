// A pool of worker threads for data-parallel loops (rows of a tensor, segments of a stream). Each job owns one
// (compress, verify, a loaded model: `--threads` sizes it), so two jobs at once (the GUI's analysis beside a chat)
// do not queue behind each other. parallelFor() runs on the workers and the calling thread and returns when every
// index is done; the first exception thrown by the body is rethrown in the caller. A parallelFor issued from inside
// a worker of any pool runs inline on that thread. One batch at a time: a second thread's parallelFor waits for the
// first to finish.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace eq {

class ThreadPool {
 public:
  // threads = total parallelism including the caller; 0 = the machine's hardware threads.
  explicit ThreadPool(unsigned threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  unsigned size() const { return static_cast<unsigned>(workers_.size()) + 1; }
  void parallelFor(std::size_t n, const std::function<void(std::size_t)>& body);

 private:
  void workerLoop();
  void runIndices(const std::function<void(std::size_t)>& body, std::size_t n);

  std::vector<std::thread> workers_;
  std::mutex submit_;  // one batch at a time
  std::mutex m_;
  std::condition_variable wake_, done_;
  std::uint64_t generation_ = 0;
  bool stop_ = false;
  const std::function<void(std::size_t)>* body_ = nullptr;
  std::size_t n_ = 0;
  std::atomic<std::size_t> next_{0};
  std::size_t active_ = 0;
  std::exception_ptr error_;
};

}  // namespace eq
