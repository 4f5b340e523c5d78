#!/usr/bin/env bash
# The one command a device call runs: the GPU tests, the measurements, then compute-sanitizer
# (see device-check.sh, device-measure.sh).
#   bash .devshare/device-run.sh [all|check|measure] [quick|full]
here="$(dirname "${BASH_SOURCE[0]}")"
what="${1:-all}"
[ "$what" = measure ] || bash "$here/device-check.sh" tests
[ "$what" = check ] || bash "$here/device-measure.sh" "${2:-full}"
[ "$what" = measure ] || bash "$here/device-check.sh" sanitize
