#pragma once
// Where the tests find their inputs (see tests/CMakeLists.txt) and small shared helpers.
#include <QString>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace parley::test {

// Path from an environment variable plus a relative part; empty when the variable is unset.
std::string envPath(const char* variable, const std::string& relative = {});
bool fileExists(const std::string& path);
std::vector<uint8_t> readFileBytes(const std::string& path);
void writeFileBytes(const std::string& path, const std::vector<uint8_t>& bytes);
std::string readFileText(const std::string& path);
// The default model's path, or empty (and the caller should QSKIP) when it is not installed.
std::string defaultModelPath();
// n normally distributed values (mean 0, standard deviation sigma), never exactly zero: zeros
// hide unwritten outputs and wrong indexing.
std::vector<float> randomFloats(size_t n, std::mt19937& rng, float sigma = 0.02f);
// ||a - b|| / ||b|| over n values (one position's logits, say); infinite when a holds a NaN or
// an infinity.
double relativeError(const float* a, const float* b, int n);
// A fresh temporary directory for one test function, removed at exit.
std::string makeTempDir();

} // namespace parley::test
