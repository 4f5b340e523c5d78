#pragma once
// A fixed set of worker threads that split a range of work items between them. The CPU backend
// uses one pool for every matrix product of a forward pass, so threads are started once.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
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
    // caller's, and returns when every chunk is done. Chunks are multiples of `grain` items
    // (the last may be shorter). The first exception fn throws is rethrown here once all chunks
    // are done. A parallelFor called from inside a chunk runs inline on that thread. Calls from
    // several threads are taken one at a time.
    void parallelFor(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

private:
    void workerLoop(int index);
    // Claims and runs chunks of job `generation` until none are left; false if none was run.
    bool runChunks(uint32_t generation);
    std::vector<std::thread> workers_;
    std::mutex submit_;                 // one parallelFor at a time
    std::mutex mutex_;                  // guards sleeping and waking
    std::condition_variable wake_;
    std::condition_variable done_;
    // The job: written by the caller before `claim_` publishes it, read by whoever claims a chunk.
    const std::function<void(int64_t, int64_t)>* job_ = nullptr;
    int64_t jobItems_ = 0;
    int64_t chunkItems_ = 1;
    // Claim word: generation (32 bits) | chunk count (16 bits) | next chunk (16 bits). A thread
    // claims a chunk by compare-and-swap, so a late thread never runs a chunk of a newer job.
    std::atomic<uint64_t> claim_{0};
    std::atomic<uint32_t> generation_{0};
    std::atomic<int64_t> remaining_{0}; // chunks of the current job not yet finished
    std::atomic<bool> stopping_{false};
    std::exception_ptr error_;          // first exception a chunk threw (guarded by mutex_)
};

} // namespace parley
