# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""fleet.criu.progress, run for real: ansible-playbook on localhost starts background
jobs (async, poll 0) and the role polls them. No fakes: real async_status, real du."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml


def background_then_progress(argv: list[str], **progress_vars: object) -> list[dict]:
    """A background job (async, poll 0) and the role waiting for it."""
    return [
        {"name": "Start the job in the background", "ansible.builtin.command": {"argv": argv},
         "async": 60, "poll": 0, "register": "job"},
        {"name": "Wait with progress", "ansible.builtin.include_role": {"name": "fleet.criu.progress"},
         "vars": {"progress_job": "{{ job }}", **progress_vars}},
    ]


def show(msg: str) -> dict:
    return {"name": "Show", "ansible.builtin.debug": {"msg": msg}}


SKIPPED_JOB = [
    {"name": "A skipped background job", "ansible.builtin.command": {"argv": ["sleep", "30"]},
     "async": 60, "poll": 0, "register": "job", "when": False},
    {"name": "Wait with progress", "ansible.builtin.include_role": {"name": "fleet.criu.progress"},
     "vars": {"progress_job": "{{ job }}"}},
    show("skipped={{ progress_result.skipped | default(false) }}"),
]


def cases(workdir: dict[str, Path]) -> dict[str, tuple[list[dict], tuple[str, ...]]]:
    """Each case: its tasks and ansible-playbook options. workdir: a private directory per case.
    They all run at once (module fixture below): each takes about ten seconds of waiting."""
    watched, tree = str(workdir["bytes"] / "watched"), str(workdir["files"] / "tree")
    return {
        # 10 x 120 kB, one a second.
        "bytes": (background_then_progress(
            ["sh", "-c", 'mkdir -p "$0"; for i in 1 2 3 4 5 6 7 8 9 10; do head -c 120000 /dev/zero > "$0/f$i"; sleep 1; done',
             watched],
            progress_label="writer", progress_watch_path=watched, progress_total=1200000, progress_interval=1)
            + [show("rc={{ progress_result.rc }}")], ()),
        # One .o a second among other files, for 10 s (several polls even on a loaded machine).
        "files": (background_then_progress(
            ["sh", "-c", 'mkdir -p "$0/sub"; for i in 1 2 3 4 5 6 7 8 9 10; do touch "$0/sub/x$i.o" "$0/x$i.c"; sleep 1; done',
             tree],
            progress_label="build", progress_watch_path=tree, progress_watch="files", progress_watch_pattern="*.o",
            progress_interval=1), ()),
        "failing": (background_then_progress(
            ["sh", "-c", 'sleep 2; echo "disk quota exceeded" >&2; exit 3'],
            progress_label="failing step", progress_interval=1) + [show("REACHED")], ()),
        "skipped": (SKIPPED_JOB, ()),
        "skipped-check-mode": (SKIPPED_JOB, ("--check",)),
    }


def run_playbook(workdir: Path, tasks: list[dict], options: tuple[str, ...], collections_path: str,
                 ansible_playbook: str) -> subprocess.CompletedProcess[str]:
    playbook = workdir / "playbook.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}], sort_keys=False))
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=collections_path,
        ANSIBLE_LOCALHOST_WARNING="false",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default",
    )
    return subprocess.run(
        [ansible_playbook, "-i", "localhost,", "-c", "local", *options, str(playbook)],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, collections_path: str,
         ansible_playbook: str) -> dict[str, tuple[Path, subprocess.CompletedProcess[str]]]:
    names = ["bytes", "files", "failing", "skipped", "skipped-check-mode"]
    workdir = {name: tmp_path_factory.mktemp(name) for name in names}
    all_cases = cases(workdir)

    def run(name: str) -> tuple[Path, subprocess.CompletedProcess[str]]:
        tasks, options = all_cases[name]
        return workdir[name], run_playbook(workdir[name], tasks, options, collections_path, ansible_playbook)

    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        return dict(zip(names, pool.map(run, names)))


def test_prints_growing_byte_counts_with_a_percentage_then_the_duration(runs) -> None:
    workdir, result = runs["bytes"]
    assert result.returncode == 0, result.stdout + result.stderr
    percents = [int(p) for p in re.findall(r'"msg": "writer: [0-9.]+ \w+ of 1.14 MB \((\d+)%\), \d+ s"', result.stdout)]
    assert len(percents) >= 2, result.stdout
    assert percents == sorted(percents) and percents[-1] > percents[0], percents
    assert all(p <= 99 for p in percents)
    assert re.search(r'"msg": "writer: done in [0-9.]+ s"', result.stdout)
    assert '"msg": "rc=0"' in result.stdout
    assert len(list((workdir / "watched").iterdir())) == 10


def test_counts_matching_files(runs) -> None:
    _workdir, result = runs["files"]
    assert result.returncode == 0, result.stdout + result.stderr
    counts = [int(n) for n in re.findall(r'"msg": "build: (\d+) files \(\*\.o\), \d+ s"', result.stdout)]
    assert len(counts) >= 2 and counts == sorted(counts) and max(counts) <= 10, result.stdout


def test_a_failed_job_fails_the_role_with_what_the_job_said(runs) -> None:
    _workdir, result = runs["failing"]
    assert result.returncode != 0
    out = result.stdout + result.stderr
    assert re.search(r"failing step failed after [0-9.]+ s \(rc 3\): .*disk quota exceeded", out), out
    assert "REACHED" not in result.stdout
    assert re.search(r'"msg": "failing step: running, \d+ s"', result.stdout)


@pytest.mark.parametrize("case", ["skipped", "skipped-check-mode"])
def test_a_job_that_never_started_passes_through(runs, case: str) -> None:
    _workdir, result = runs[case]
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"msg": "skipped=True"' in result.stdout
    assert "Check on" not in result.stdout
