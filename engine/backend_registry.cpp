// Backend selection and the run-time loading of libparley_cuda.so. See backend_registry.h.
#include "engine/backend_registry.h"

#include "kernels/cuda_api.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <mutex>

namespace parley {

namespace {

struct CudaLibrary {
    void* handle = nullptr;
    std::string path;
    std::string error;
    ParleyCudaProbeFn probe = nullptr;
    ParleyCudaCreateBackendFn create = nullptr;
    ParleyCudaCopyBandwidthFn bandwidth = nullptr;
    ParleyCudaBenchGemvFn benchGemv = nullptr;
};

std::string executableDir() {
    char buf[4096];
    const ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
    if (n <= 0) return {};
    std::string p(buf, size_t(n));
    const size_t slash = p.rfind('/');
    return slash == std::string::npos ? std::string() : p.substr(0, slash);
}

// Loaded once per process; later calls get the same answer.
const CudaLibrary& cudaLibrary() {
    static CudaLibrary lib;
    static std::once_flag once;
    std::call_once(once, [] {
        std::vector<std::string> candidates;
        const char* env = std::getenv("PARLEY_CUDA_LIBRARY");
        if (env && *env) candidates.push_back(env); // set: that library and no other
        const std::string dir = env && *env ? std::string() : executableDir();
        if (!dir.empty()) {
            candidates.push_back(dir + "/../lib/libparley_cuda.so");
            candidates.push_back(dir + "/libparley_cuda.so");
        }
        if (!(env && *env)) candidates.push_back("libparley_cuda.so"); // the loader's own search path
        std::string errors;
        for (const std::string& c : candidates) {
            if (c.find('/') != std::string::npos && access(c.c_str(), F_OK) != 0) continue;
            void* h = dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL);
            if (!h) {
                const char* e = dlerror();
                errors = e ? e : ("cannot load " + c);
                continue;
            }
            auto version = reinterpret_cast<ParleyCudaAbiVersionFn>(dlsym(h, "parley_cuda_abi_version"));
            lib.probe = reinterpret_cast<ParleyCudaProbeFn>(dlsym(h, "parley_cuda_probe"));
            lib.create = reinterpret_cast<ParleyCudaCreateBackendFn>(dlsym(h, "parley_cuda_create_backend"));
            lib.bandwidth = reinterpret_cast<ParleyCudaCopyBandwidthFn>(dlsym(h, "parley_cuda_copy_bandwidth"));
            lib.benchGemv = reinterpret_cast<ParleyCudaBenchGemvFn>(dlsym(h, "parley_cuda_bench_gemv"));
            if (!version || !lib.probe || !lib.create || !lib.bandwidth || !lib.benchGemv || version() != PARLEY_CUDA_ABI_VERSION) {
                errors = c + " is not a matching Parley CUDA library";
                dlclose(h);
                continue;
            }
            lib.handle = h;
            lib.path = c;
            return;
        }
        lib.error = errors.empty() ? "libparley_cuda.so was not found next to the program" : errors;
    });
    return lib;
}

} // namespace

std::string cudaLibraryPath() { return cudaLibrary().path; }

bool cudaLibraryAvailable(std::string* error) {
    const CudaLibrary& lib = cudaLibrary();
    if (!lib.handle && error) *error = lib.error;
    return lib.handle != nullptr;
}

std::vector<GpuDevice> probeGpus(std::string* error) {
    const CudaLibrary& lib = cudaLibrary();
    if (!lib.handle) {
        if (error) *error = lib.error;
        return {};
    }
    ParleyCudaDevice devs[16];
    int count = 0;
    char err[512] = {0};
    if (lib.probe(devs, 16, &count, err, sizeof(err)) != 0) {
        if (error) *error = err;
        return {};
    }
    std::vector<GpuDevice> out;
    for (int i = 0; i < count && i < 16; ++i) {
        GpuDevice d;
        d.index = devs[i].index;
        d.name = devs[i].name;
        d.computeMajor = devs[i].computeMajor;
        d.computeMinor = devs[i].computeMinor;
        d.freeBytes = devs[i].freeBytes;
        d.totalBytes = devs[i].totalBytes;
        d.multiprocessors = devs[i].multiprocessors;
        out.push_back(d);
    }
    return out;
}

double measureGpuCopyBandwidth(int device, uint64_t bytes, int repeats) {
    const CudaLibrary& lib = cudaLibrary();
    if (!lib.handle) throw Error("CUDA backend unavailable: " + lib.error);
    double gbs = 0;
    char err[512] = {0};
    if (lib.bandwidth(device, bytes, repeats, &gbs, err, sizeof(err)) != 0) throw Error(err);
    return gbs;
}

GemvTiming benchmarkGpuGemv(int device, Precision precision, int groupSize, int64_t rows, int64_t cols,
                            GemvBenchEpilogue epilogue, int headDim, int launches) {
    const CudaLibrary& lib = cudaLibrary();
    if (!lib.handle) throw Error("CUDA backend unavailable: " + lib.error);
    GemvTiming t;
    char err[512] = {0};
    if (lib.benchGemv(device, int(precision), groupSize, rows, cols, int(epilogue), headDim, launches, &t.microseconds,
                      &t.gbPerSecond, err, sizeof(err)) != 0)
        throw Error(err);
    return t;
}

std::unique_ptr<Backend> makeBackend(const std::string& kind, const BackendOptions& options, std::string* notice) {
    if (kind == "cpu") return makeCpuBackend(options.cpuThreads, options.kvCache);
    if (kind != "cuda" && kind != "auto")
        throw Error("unknown backend '" + kind + "' (expected auto, cpu or cuda)");
    std::string why;
    const CudaLibrary& lib = cudaLibrary();
    if (lib.handle) {
        ParleyCudaOptions o{};
        o.device = options.cudaDevice;
        o.usePdl = options.usePdl ? 1 : 0;
        o.useGraphs = options.useGraphs ? 1 : 0;
        o.quantizeTo = options.quantizeOnDevice ? int(*options.quantizeOnDevice) : -1;
        o.int8GroupSize = options.int8GroupSize;
        o.int4GroupSize = options.int4GroupSize;
        o.embeddingsOnHost = options.embeddingsOnHost ? 1 : 0;
        o.kvCacheInt8 = options.kvCache == KvCacheType::INT8 ? 1 : 0;
        char err[512] = {0};
        void* b = lib.create(&o, err, sizeof(err));
        if (b) return std::unique_ptr<Backend>(static_cast<Backend*>(b));
        why = err;
    } else {
        why = lib.error;
    }
    if (kind == "cuda") throw Error("CUDA backend unavailable: " + why);
    if (notice) *notice = "CUDA backend unavailable (" + why + "); using the CPU";
    return makeCpuBackend(options.cpuThreads, options.kvCache);
}

} // namespace parley
