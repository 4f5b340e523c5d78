#pragma once
// A fixed set of worker threads that split a range of work items between them. The CPU backend
// uses one pool for every matrix product of a forward pass, so threads are started once.
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace parley {

class ThreadPool {
public:
    explicit ThreadPool(int threads); // threads <= 0: one per core
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const { return static_cast<int>(workers_.size()) + 1; }
    // Calls fn(begin, end) on disjoint chunks covering [0, n), on all threads including the
    // caller's, and returns when every chunk is done. Chunks are multiples of `grain` items.
    void parallelFor(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

private:
    void workerLoop(int index);
    std::vector<std::thread> workers_;
    std::mutex mutex_;
    std::condition_variable wake_;
    std::condition_variable done_;
    const std::function<void(int64_t, int64_t)>* job_ = nullptr;
    int64_t jobItems_ = 0;
    int64_t jobGrain_ = 1;
    uint64_t generation_ = 0;
    int pending_ = 0;
    bool stopping_ = false;
};

} // namespace parley
