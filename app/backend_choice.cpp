#include "app/backend_choice.h"

#include "engine/backend.h"
#include "engine/error.h"
#include "engine/kv_cache_format.h"
#include "engine/model.h"

#if __has_include("engine/backend_registry.h") && __has_include("engine/precision_planner.h")
#include "engine/backend_registry.h"
#include "engine/precision_planner.h"
#define PARLEY_APP_HAS_GPU_LOADER 1
#endif

namespace parley::app {

namespace {
std::optional<parley::Precision> precisionFromName(const QString& name) {
    if (name == "fp16") return parley::Precision::FP16;
    if (name == "int8") return parley::Precision::INT8;
    if (name == "int4") return parley::Precision::INT4;
    return std::nullopt; // "auto"
}
} // namespace

parley::Precision filePrecision(const std::map<std::string, int64_t>& tensorTypes) {
    std::string most;
    int64_t count = -1;
    for (const auto& [type, n] : tensorTypes)
        if (type != "F32" && n > count) most = type, count = n;
    if (most.rfind("Q4", 0) == 0) return parley::Precision::INT4;
    if (most == "Q8_0" || most == "Q6_K") return parley::Precision::INT8;
    return parley::Precision::FP16;
}

BackendChoice chooseBackend(const ModelSettings& settings, const parley::Model& header, int contextLength) {
    BackendChoice choice;
    const std::optional<parley::Precision> requested = precisionFromName(settings.precision);
    const bool wantsGpu = settings.backend.startsWith("gpu");
    // Auto: the planner may take the 8-bit cache on the GPU where only it lets the model fit; the
    // CPU keeps FP16.
    const parley::KvCacheRequest kvRequest =
        parley::parseKvCacheRequest(settings.kvCache.toStdString()).value_or(parley::KvCacheRequest::Auto);
    const QString precisionWhy = requested ? QStringLiteral("%1 chosen in Settings").arg(parley::precisionName(*requested))
                                           : QStringLiteral("the file's own precision");
    (void)header;
    (void)contextLength;
    QString cpuWhy = settings.backend == "cpu" ? "CPU chosen in Settings" : "no GPU backend in this build";
#if defined(PARLEY_APP_HAS_GPU_LOADER)
    if (settings.backend != "cpu") {
        const int device = wantsGpu ? settings.backend.mid(3).toInt() : 0;
        std::string why;
        const std::vector<parley::GpuDevice> gpus = parley::probeGpus(&why);
        const parley::GpuDevice* gpu = nullptr;
        for (const auto& g : gpus)
            if (g.index == device) gpu = &g;
        if (!gpu && why.empty()) why = "there is no GPU " + std::to_string(device);
        if (gpu) {
            parley::PrecisionPlanInput in;
            in.config = header.config();
            in.filePrecision = filePrecision(header.info().tensorTypes);
            in.contextLength = contextLength;
            in.freeBytes = gpu->freeBytes;
            in.requested = requested;
            in.kvCache = kvRequest;
            const parley::PrecisionPlan plan = parley::planPrecision(in);
            if (plan.fits) {
                parley::BackendOptions options;
                options.cudaDevice = device;
                options.cpuThreads = settings.cpuThreads;
                options.kvCache = plan.kvCache;
                choice.backend = parley::makeBackend("cuda", options); // throws with the reason when CUDA cannot start
                choice.precision = plan.precision;
                choice.reason = QString::fromStdString(plan.reason) +
                                QStringLiteral("; GPU %1 (%2)").arg(device).arg(QString::fromStdString(gpu->name));
                return choice;
            }
            why = plan.reason;
        }
        if (wantsGpu) throw parley::Error("GPU " + std::to_string(device) + " cannot run this model: " + why);
        cpuWhy = "CPU: " + QString::fromStdString(why);
    }
#endif
    if (wantsGpu)
        throw parley::Error(("the backend '" + settings.backend + "' is not available: this Parley was built without CUDA")
                                .toStdString());
    choice.backend = parley::makeCpuBackend(settings.cpuThreads, parley::kvCacheTypeOf(kvRequest));
    choice.precision = requested;
    choice.reason = precisionWhy + "; " + cpuWhy;
    return choice;
}

} // namespace parley::app
