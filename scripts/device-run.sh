#!/usr/bin/env bash
# The one command a device call runs: check, then measure (see device-check.sh, device-measure.sh).
#   bash .devshare/device-run.sh [check|measure|all] [quick]
here="$(dirname "${BASH_SOURCE[0]}")"
what="${1:-all}"
[ "$what" = measure ] || bash "$here/device-check.sh"
[ "$what" = check ] || bash "$here/device-measure.sh" "${2:-full}"
