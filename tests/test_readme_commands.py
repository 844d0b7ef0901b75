"""The README's two Quick-start commands are what CI runs, and nothing more (issue 15).

The commands are read from README.md's first two ```bash blocks under "## Quick start" and from the
command lines of .ci/run; then .ci/run is executed with stand-in `pip` and `python` programs on PATH that
record their arguments, so the test sees what the script really runs, in order.
"""

import os
import re
import shlex
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CI_RUN = ROOT / '.ci' / 'run'
# What a .ci/run command line may append to a README command to capture its status.
STATUS_SUFFIX = re.compile(r'\s*\|\|\s*(exit \$\?|rc=\$\?)\s*$')


def readme_commands() -> list[str]:
    text = (ROOT / 'README.md').read_text(encoding='utf-8')
    m = re.search(r'^## Quick start\n(.*?)(?=^## )', text, flags=re.M | re.S)
    assert m, 'README.md has no "## Quick start" section'
    blocks = re.findall(r'```bash\n(.*?)```', m.group(1), flags=re.S)
    assert len(blocks) >= 2, 'the Quick start needs a training and a test command'
    commands = []
    for block in blocks[:2]:
        lines = [x.strip() for x in block.strip().splitlines() if x.strip() and not x.strip().startswith('#')]
        assert len(lines) == 1, f'each Quick-start block is one command line, got {lines}'
        commands.append(lines[0])
    return commands


def ci_commands() -> list[str]:
    found = []
    for line in CI_RUN.read_text(encoding='utf-8').splitlines():
        line = line.strip()
        if line.startswith(('pip ', 'python ', 'python3 ')):
            found.append(STATUS_SUFFIX.sub('', line))
    return found


def split_steps(command: str) -> list[list[str]]:
    return [shlex.split(step) for step in command.split('&&')]


def test_ci_runs_the_readme_commands_verbatim():
    readme = readme_commands()
    assert ci_commands() == readme
    # The test command installs torch first (pinned, so pip pulls no CUDA build) and everything the
    # suite assumes; the training command starts the same way.
    for command in readme:
        assert split_steps(command)[0] == ['pip', 'install', 'torch==2.13.0']
    assert split_steps(readme[1])[-1] == ['python', '-m', 'pytest', '-q']


def test_ci_installs_nothing_beyond_the_readme():
    allowed = set(readme_commands())
    for line in CI_RUN.read_text(encoding='utf-8').splitlines():
        code = line.split('#', 1)[0].strip()
        if re.search(r'\b(pip|pip3|conda|apt-get|apt|uv|curl|wget)\b', code):
            assert STATUS_SUFFIX.sub('', code) in allowed, f'.ci/run runs more than the README: {code}'


def _fake_bin(folder: Path, log: Path, pytest_status: int) -> None:
    folder.mkdir()
    for name in ('pip', 'python'):
        path = folder / name
        # Records its name and arguments; "python -m pytest" exits with the chosen status.
        path.write_text('#!/bin/sh\n'
                        f'echo "{name} $*" >> "{log}"\n'
                        f'if [ "$1 $2" = "-m pytest" ]; then exit {pytest_status}; fi\n'
                        'exit 0\n')
        path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.mark.parametrize('pytest_status, expected', [(0, 0), (1, 1), (5, 1)])
def test_ci_script_executes_exactly_those_steps(tmp_path, pytest_status, expected):
    log = tmp_path / 'calls.log'
    _fake_bin(tmp_path / 'bin', log, pytest_status)
    env = dict(os.environ, PATH=f'{tmp_path / "bin"}{os.pathsep}{os.environ["PATH"]}')
    res = subprocess.run(['bash', str(CI_RUN)], env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == expected, res.stderr
    calls = [shlex.split(x) for x in log.read_text().splitlines()]
    steps = [step for command in readme_commands() for step in split_steps(command)]
    assert calls == steps
    if pytest_status == 5:
        assert 'no tests' in res.stderr


def test_ci_stops_when_the_training_command_fails(tmp_path):
    log = tmp_path / 'calls.log'
    _fake_bin(tmp_path / 'bin', log, 0)
    (tmp_path / 'bin' / 'python').write_text(f'#!/bin/sh\necho "python $*" >> "{log}"\nexit 3\n')
    env = dict(os.environ, PATH=f'{tmp_path / "bin"}{os.pathsep}{os.environ["PATH"]}')
    res = subprocess.run(['bash', str(CI_RUN)], env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 3
    assert [x.split()[0] for x in log.read_text().splitlines()] == ['pip', 'pip', 'python']
