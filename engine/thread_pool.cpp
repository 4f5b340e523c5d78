// ThreadPool: persistent workers that split parallelFor ranges into chunks claimed by
// compare-and-swap. A forward pass issues hundreds of parallelFor calls per token, a few
// microseconds apart, so a worker that has just finished a job spins briefly (with the CPU's
// pause hint) for the next one before it sleeps on a condition variable; an idle pool therefore
// costs no CPU after about a tenth of a millisecond.
#include "engine/thread_pool.h"

#include <algorithm>
#include <chrono>

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#include <immintrin.h>
static inline void cpuRelax() { _mm_pause(); }
#else
static inline void cpuRelax() { std::this_thread::yield(); }
#endif

namespace parley {

namespace {

// How long a thread spins for work (or for completion) before it blocks.
constexpr auto kSpin = std::chrono::microseconds(100);
// Chunks per thread: a few, so a thread slowed by something else does not hold up the rest.
constexpr int64_t kChunksPerThread = 4;
constexpr int64_t kMaxChunks = 0xffff;

// Set while a thread runs a chunk: a parallelFor from inside a chunk runs inline (no deadlock).
thread_local bool insideChunk = false;

inline uint64_t claimWord(uint32_t generation, uint64_t chunks, uint64_t next) {
    return (uint64_t(generation) << 32) | (chunks << 16) | next;
}

// Spins until pred() holds or kSpin passes; true if pred() held.
template <typename Pred> bool spinFor(Pred pred) {
    const auto until = std::chrono::steady_clock::now() + kSpin;
    for (;;) {
        for (int i = 0; i < 64; ++i) {
            if (pred()) return true;
            cpuRelax();
        }
        if (std::chrono::steady_clock::now() >= until) return pred();
    }
}

} // namespace

ThreadPool::ThreadPool(int threads) {
    if (threads <= 0) threads = std::max(1u, std::thread::hardware_concurrency());
    workers_.reserve(size_t(threads - 1));
    for (int i = 0; i + 1 < threads; ++i) workers_.emplace_back([this, i] { workerLoop(i); });
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_.store(true);
    }
    wake_.notify_all();
    for (std::thread& t : workers_) t.join();
}

bool ThreadPool::runChunks(uint32_t generation) {
    bool ranAny = false;
    uint64_t word = claim_.load(std::memory_order_acquire);
    for (;;) {
        if (uint32_t(word >> 32) != generation) return ranAny;
        const uint64_t chunks = (word >> 16) & 0xffff;
        const uint64_t next = word & 0xffff;
        if (next >= chunks) return ranAny;
        if (!claim_.compare_exchange_weak(word, word + 1, std::memory_order_acq_rel, std::memory_order_acquire))
            continue; // word now holds the current value; look again
        // This chunk is ours: the job cannot change until it is finished.
        const int64_t begin = int64_t(next) * chunkItems_;
        const int64_t end = std::min(jobItems_, begin + chunkItems_);
        insideChunk = true;
        try {
            (*job_)(begin, end);
        } catch (...) {
            std::lock_guard<std::mutex> lock(mutex_);
            if (!error_) error_ = std::current_exception();
        }
        insideChunk = false;
        ranAny = true;
        if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            // Last chunk: wake the caller if it went to sleep waiting.
            std::lock_guard<std::mutex> lock(mutex_);
            done_.notify_all();
        }
        word = claim_.load(std::memory_order_acquire);
    }
}

void ThreadPool::workerLoop(int) {
    uint32_t seen = generation_.load(std::memory_order_acquire);
    for (;;) {
        auto newJob = [&] {
            return stopping_.load(std::memory_order_acquire) || generation_.load(std::memory_order_acquire) != seen;
        };
        if (!spinFor(newJob)) {
            std::unique_lock<std::mutex> lock(mutex_);
            wake_.wait(lock, newJob);
        }
        if (stopping_.load(std::memory_order_acquire)) return;
        seen = generation_.load(std::memory_order_acquire);
        runChunks(seen);
    }
}

void ThreadPool::parallelFor(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
    if (n <= 0) return;
    grain = std::max<int64_t>(1, grain);
    const int64_t grains = (n + grain - 1) / grain;
    if (workers_.empty() || grains == 1 || insideChunk) {
        fn(0, n);
        return;
    }
    std::lock_guard<std::mutex> submitLock(submit_);
    const int64_t wanted = std::min({grains, int64_t(size()) * kChunksPerThread, kMaxChunks});
    const int64_t chunkItems = (grains + wanted - 1) / wanted * grain;
    const int64_t chunks = (n + chunkItems - 1) / chunkItems;

    job_ = &fn;
    jobItems_ = n;
    chunkItems_ = chunkItems;
    error_ = nullptr;
    remaining_.store(chunks, std::memory_order_relaxed);
    const uint32_t generation = generation_.load(std::memory_order_relaxed) + 1;
    claim_.store(claimWord(generation, uint64_t(chunks), 0), std::memory_order_release);
    {
        std::lock_guard<std::mutex> lock(mutex_);
        generation_.store(generation, std::memory_order_release);
    }
    wake_.notify_all();

    runChunks(generation);
    auto finished = [&] { return remaining_.load(std::memory_order_acquire) == 0; };
    if (!spinFor(finished)) {
        std::unique_lock<std::mutex> lock(mutex_);
        done_.wait(lock, finished);
    }
    std::exception_ptr error;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        error = error_;
        error_ = nullptr;
    }
    if (error) std::rethrow_exception(error);
}

} // namespace parley
