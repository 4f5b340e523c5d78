// parley-cli: the engine from the command line.
#include "engine/error.h"
#include "engine/gguf.h"

#include <cstdio>
#include <cstring>
#include <string>

int main(int argc, char** argv) {
    if (argc < 2 || !std::strcmp(argv[1], "--help")) {
        std::puts("usage: parley-cli info -m MODEL");
        return argc < 2 ? 2 : 0;
    }
    try {
        std::string cmd = argv[1];
        if (cmd == "info" && argc == 4 && !std::strcmp(argv[2], "-m")) {
            parley::GgufFile f(argv[3]);
            std::printf("architecture: %s\ntensors: %zu\n", f.getString("general.architecture").c_str(),
                        f.tensors().size());
            return 0;
        }
        std::fprintf(stderr, "parley-cli: unknown command '%s' (try --help)\n", cmd.c_str());
        return 2;
    } catch (const parley::Error& e) {
        std::fprintf(stderr, "parley-cli: %s\n", e.what());
        return 1;
    }
}
