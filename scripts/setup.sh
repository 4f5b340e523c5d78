#!/usr/bin/env bash
# Installs what Parley needs to build, test and run, and the default model.
# Idempotent: every step checks first and does nothing when its work is already done.
# Usage: scripts/setup.sh            (everything)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# --- Debian packages --------------------------------------------------------------------
debs=(build-essential cmake ninja-build pkg-config git unzip ca-certificates
      libsentencepiece-dev sentencepiece nlohmann-json3-dev libsqlite3-dev sqlite3
      qt6-base-dev libqt6sql6-sqlite libgl-dev python3 python3-venv python3-pip
      xvfb xauth)
missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- Python tools for the test suite (tiny-model generator, reference checks) -----------
# A virtual environment outside the source tree, shared by every clone on this machine.
venv="${PARLEY_VENV:-$HOME/.cache/parley/venv}"
pydeps=(numpy==2.2.6 gguf==0.17.1 pyyaml==6.0.2)
if [ ! -x "$venv/bin/python" ]; then
  echo "setup: creating Python environment $venv"
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv"
fi
stamp="$venv/.parley-deps"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "${pydeps[*]}" ]; then
  echo "setup: installing Python packages: ${pydeps[*]}"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "${pydeps[@]}"
  echo "${pydeps[*]}" > "$stamp"
fi

# --- The default model ------------------------------------------------------------------
"$here/scripts/fetch-default-model.sh"
