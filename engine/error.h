#pragma once
// The one exception type the engine throws for bad input, bad files and resource failures.
// Its message is a single line meant for the user: it names the file (where there is one)
// and the problem.
#include <stdexcept>
#include <string>

namespace parley {

class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

} // namespace parley
