#!/usr/bin/env bash
# Packs what the GPU machine needs into DEST (default: /work/main/.devshare, git-ignored there):
# the engine-only CUDA build (bin/, lib/), the shared libraries those programs need that the GPU
# machine may lack (Qt 6 Core/Test and their dependencies, found with ldd — never glibc, the
# driver's libcuda or CUDA's own cuBLAS, which the GPU machine has), the test data and tiny
# models, and the device-*.sh scripts. Libraries and programs travel as one xz tarball so the
# whole stays under the 64 MiB the device tool carries.
#   usage: scripts/device-bundle.sh BUILD_DIR [DEST]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$(cd "${1:?usage: device-bundle.sh BUILD_DIR [DEST]}" && pwd)"
dest="${2:-/work/main/.devshare}"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT

mkdir -p "$stage/bundle/bin" "$stage/bundle/lib" "$stage/bundle/syslib" "$stage/bundle/data" "$stage/bundle/test-models"
cp -a "$build"/bin/. "$stage/bundle/bin/"
cp -a "$build"/lib/. "$stage/bundle/lib/"
cp -a "$here/tests/data/." "$stage/bundle/data/"
[ -d "$build/test-models" ] && cp -a "$build/test-models/." "$stage/bundle/test-models/"

# Shared libraries the programs load, less the system's core and CUDA's own.
skip='^(linux-vdso|ld-linux|libc\.so|libm\.so|libpthread|libdl\.so|librt\.so|libresolv|libcuda\.so|libcublas|libcudart|libnvidia)'
for f in "$build"/bin/* "$build"/lib/*.so; do
  ldd "$f" 2>/dev/null | awk '/=> \//{print $1, $3}'
done | sort -u | while read -r name path; do
  if ! [[ "$name" =~ $skip ]]; then cp -L "$path" "$stage/bundle/syslib/$name"; fi
done

mkdir -p "$dest"
rm -f "$dest"/bundle.tar.xz "$dest"/device-*.sh "$dest"/hf_baseline.py
tar -C "$stage" -cJf "$dest/bundle.tar.xz" bundle
cp "$here"/scripts/device-*.sh "$here"/scripts/hf_baseline.py "$dest/"
echo "bundle: $(du -sh "$dest" | cut -f1) in $dest"
