"""benchmarks/vs_nvidia_cpu.py: our training step beside NVIDIA's stylegan3 code, at toy size (the speed
figures themselves are measured by running the script, never asserted). Skips without ../shared's
reference tree."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / 'benchmarks' / 'vs_nvidia_cpu.py'
REFERENCE = ROOT.parent / 'shared' / 'reference' / 'stylegan3'


def _run(args, timeout=600):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout,
                          cwd=str(ROOT))


def test_toy_side_by_side_run_with_matched_networks(tmp_path):
    if not (REFERENCE / 'training' / 'networks_stylegan2.py').is_file():
        pytest.skip(f"NVIDIA's stylegan3 tree is absent ({REFERENCE}); it lives in ../shared/reference")
    out = tmp_path / 'res.json'
    res = _run([f'--reference={REFERENCE}', '--res=8', '--batch=4', '--cbase=64', '--cmax=8', '--rounds=2',
                '--warmup=0', '--threads=1', f'--json-out={out}'])
    assert res.returncode == 0, res.stdout + res.stderr
    assert 'machine: ' in res.stdout and 'ratio ours / nvidia: ' in res.stdout
    data = json.loads(out.read_text())
    ours, nvidia = data['results']['ours'], data['results']['nvidia']
    # Matched networks: the same parameter counts for G and D on both sides.
    assert ours['networks'] == nvidia['networks'] and 'G ' in ours['networks']
    assert len(ours['all_s']) == len(nvidia['all_s']) == 2 and min(ours['all_s'] + nvidia['all_s']) > 0
    assert data['ratio'] == pytest.approx(ours['median_s'] / nvidia['median_s'])


def test_bad_reference_is_one_line(tmp_path):
    res = _run([f'--reference={tmp_path}'], timeout=120)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('Error: --reference:') and res.stdout == ''
    res = _run([f'--reference={REFERENCE}', '--batch=6', '--mbstd=4'], timeout=120)
    if REFERENCE.is_dir():
        assert res.returncode == 2 and res.stderr.strip() == 'Error: --mbstd=4: must divide --batch=6'
