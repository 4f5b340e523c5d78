// The host side of PARLEY_CUDA_TRACE. See decode_trace.h.
#include "kernels/decode_trace.h"
#include "kernels/decode_trace.cuh"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace parley::cuda {

void DecodeTrace::init(int launches) {
    const char* v = std::getenv("PARLEY_CUDA_TRACE");
    enabled_ = v && *v && *v != '0';
#ifndef PARLEY_KERNEL_TRACE
    if (enabled_) std::fprintf(stderr, "PARLEY_CUDA_TRACE: this build has no trace marks (cmake -DPARLEY_CUDA_TRACE=ON)\n");
    enabled_ = false;
#endif
    if (!enabled_) return;
    capacity_ = launches;
    PARLEY_CUDA_CHECK(cudaMalloc(&slots_, size_t(capacity_) * kMaxBlocks * 3 * sizeof(uint64_t)));
}

uint64_t* DecodeTrace::next(const std::string& label, int blocks) {
    if (!enabled_ || used_ >= capacity_ || blocks > kMaxBlocks) return nullptr;
    // A step records the same launches every time (per context bucket); keep the latest labels.
    if (size_t(used_) < labels_.size()) {
        labels_[used_] = label;
        blocks_[used_] = blocks;
    } else {
        labels_.push_back(label);
        blocks_.push_back(blocks);
    }
    if (std::find(order_.begin(), order_.end(), label) == order_.end()) order_.push_back(label);
    return slots_ + size_t(used_++) * kMaxBlocks * 3;
}

void DecodeTrace::beginStep(cudaStream_t stream) {
    if (!enabled_) return;
    PARLEY_CUDA_CHECK(cudaMemsetAsync(slots_, 0, size_t(capacity_) * kMaxBlocks * 3 * sizeof(uint64_t), stream));
}

void DecodeTrace::endStep(cudaStream_t stream) {
    if (!enabled_ || labels_.empty()) return;
    const size_t n = labels_.size();
    std::vector<uint64_t> host(n * kMaxBlocks * 3);
    PARLEY_CUDA_CHECK(cudaMemcpyAsync(host.data(), slots_, host.size() * sizeof(uint64_t), cudaMemcpyDeviceToHost, stream));
    PARLEY_CUDA_CHECK(cudaStreamSynchronize(stream));
    uint64_t prevEnd = 0;
    bool any = false;
    for (size_t i = 0; i < n; ++i) {
        uint64_t first = UINT64_MAX, firstPast = UINT64_MAX, lastPast = 0, last = 0;
        std::vector<uint64_t> ends;
        int early = 0;
        for (int b = 0; b < blocks_[i]; ++b) {
            const uint64_t* s = &host[(i * kMaxBlocks + b) * 3];
            if (s[kTraceStart]) first = std::min(first, s[kTraceStart]);
            if (s[kTraceStart] && prevEnd && s[kTraceStart] < prevEnd) ++early;
            if (s[kTracePastWait]) firstPast = std::min(firstPast, s[kTracePastWait]);
            if (s[kTracePastWait]) lastPast = std::max(lastPast, s[kTracePastWait]);
            if (s[kTraceEnd]) ends.push_back(s[kTraceEnd]);
            last = std::max(last, s[kTraceEnd]);
        }
        if (first == UINT64_MAX || firstPast == UINT64_MAX || last == 0) continue;
        Stat& st = stats_[labels_[i]];
        st.runUs += (last - firstPast) / 1e3;
        std::sort(ends.begin(), ends.end());
        if (!ends.empty()) {
            st.endP50Us += (double(ends[ends.size() / 2]) - double(firstPast)) / 1e3;
            st.endP90Us += (double(ends[ends.size() * 9 / 10]) - double(firstPast)) / 1e3;
        }
        st.pastSpreadUs += (double(lastPast) - double(firstPast)) / 1e3;
        st.residentEarly += early;
        if (prevEnd) {
            st.gapUs += (double(firstPast) - double(prevEnd)) / 1e3;
            st.earlyUs += (double(prevEnd) - double(first)) / 1e3;
        }
        ++st.count;
        prevEnd = last;
        any = true;
    }
    if (any) ++steps_;
}

void DecodeTrace::print() const {
    if (!enabled_ || stats_.empty()) return;
    std::fprintf(stderr,
                 "decode trace over %d steps (inside the graph; us, mean per launch):\n"
                 "  %-14s %8s %8s %8s %6s %8s %8s %8s %8s\n",
                 steps_, "kernel", "runs", "gap", "early", "calls", "pastSpr", "endP50", "endP90", "resEarly");
    double total = 0;
    for (const std::string& label : order_) {
        auto it = stats_.find(label);
        if (it == stats_.end() || it->second.count == 0) continue;
        const Stat& s = it->second;
        std::fprintf(stderr, "  %-14s %8.2f %8.2f %8.2f %6d %8.2f %8.2f %8.2f %8.1f\n", label.c_str(), s.runUs / s.count,
                     s.gapUs / s.count, s.earlyUs / s.count, s.count, s.pastSpreadUs / s.count, s.endP50Us / s.count,
                     s.endP90Us / s.count, s.residentEarly / s.count);
        total += (s.runUs + s.gapUs) / std::max(1, steps_);
    }
    std::fprintf(stderr, "  runs + gaps of the traced kernels: %.1f us a step\n", total);
}

void DecodeTrace::release() {
    if (slots_) cudaFree(slots_);
    slots_ = nullptr;
}

} // namespace parley::cuda
