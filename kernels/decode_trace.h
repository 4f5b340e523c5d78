#pragma once
// PARLEY_CUDA_TRACE=1, a measuring aid: where the time of a decode step goes inside the CUDA
// graph, which events between stages (PARLEY_CUDA_PROFILE) cannot show because they take the
// graph and programmatic dependent launch away. The GEMVs and the attention kernel record per
// block when they start, get past their wait and end (decode_trace.cuh); after each step the
// records are read back, and when the backend goes it prints, for each kernel of a layer
// (averaged over layers and steps): how long it ran from its first block past the wait to its
// last block's end, the gap from the previous traced kernel's last block to this kernel's first
// block past the wait, and how early its first block started.
#include "kernels/cuda_common.cuh"

#include <map>
#include <string>
#include <vector>

namespace parley::cuda {

class DecodeTrace {
public:
    static constexpr int kMaxBlocks = 4096; // per launch

    bool enabled() const { return enabled_; }
    // Reads PARLEY_CUDA_TRACE and, when set, allocates room for `launches` traced launches.
    void init(int launches);
    // Recording a step's launches starts again from the first slot.
    void startRecording() { used_ = 0; }
    // The slots of the next traced launch of the step being recorded (null when off).
    uint64_t* next(const std::string& label, int blocks);
    // Before a step runs: the step's records cleared; after it: read back and added up.
    void beginStep(cudaStream_t stream);
    void endStep(cudaStream_t stream);
    void print() const;
    void release();

private:
    struct Stat {
        double runUs = 0, gapUs = 0, earlyUs = 0, pastSpreadUs = 0, endP50Us = 0, endP90Us = 0, residentEarly = 0;
        int count = 0;
    };
    bool enabled_ = false;
    int capacity_ = 0;
    uint64_t* slots_ = nullptr;           // device [capacity][kMaxBlocks][3]
    std::vector<std::string> labels_;     // of the launches recorded for the current step shape
    std::vector<int> blocks_;
    int used_ = 0;
    std::map<std::string, Stat> stats_;
    std::vector<std::string> order_;
    int steps_ = 0;
};

} // namespace parley::cuda
