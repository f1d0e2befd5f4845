# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""fleet.criu.progress, run for real: ansible-playbook on localhost starts background
jobs (async, poll 0) and the role polls them. No fakes: real async_status, real du.

No test depends on how fast anything runs. Each job advances only when the test has
seen the role report the previous step: the job waits for a gate file, and the test
opens the gate when it reads that progress line on ansible-playbook's output. So the
order of events is fixed however loaded the machine is; timeouts only stop a hung run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import typing as t
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml


def background_then_progress(argv: list[str], **progress_vars: object) -> list[dict]:
    """A background job (async, poll 0) and the role waiting for it."""
    return [
        {"name": "Start the job in the background", "ansible.builtin.command": {"argv": argv},
         "async": ASYNC_LIMIT, "poll": 0, "register": "job"},
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


# A job step waits for its gate: ``gate "$1/gate-N"`` in the jobs' shell scripts.
WAIT_FOR_GATE = 'gate() { while [ ! -e "$1" ]; do sleep 0.1; done; }; '
# An elapsed time or an ETA as the lines print it: 12 s, 3 min 05 s, 1 h 02 min.
DURATION = r"\d+ (?:s|min \d+ s|h \d+ min)"
# Generous bounds for a hung run; nothing is asserted about durations.
ASYNC_LIMIT = 900
RUN_LIMIT = 900


class Case(t.NamedTuple):
    tasks: list[dict]
    options: tuple[str, ...] = ()
    # Called with each line of ansible-playbook's stdout; opens the gates it has earned.
    on_line: t.Optional[t.Callable[[str], None]] = None


def open_gates(gates: Path, upto: int) -> None:
    for number in range(1, upto + 1):
        (gates / f"gate-{number}").touch()


def cases(workdir: dict[str, Path]) -> dict[str, Case]:
    """Each case: its tasks, ansible-playbook options and gate opener. workdir: a private
    directory per case. They all run at once (module fixture below)."""
    watched, tree = workdir["bytes"] / "watched", workdir["files"] / "tree"
    gates = {name: workdir[name] / "gates" for name in ("bytes", "files", "failing")}
    for path in gates.values():
        path.mkdir()

    def bytes_seen(line: str) -> None:
        # Five files of 240 kB: a line saying 20*N % means N files are there; the
        # writer writes file N+1 only once that line was seen.
        found = re.search(r'^writer: .* \((\d+)%\), .*/s', line)
        if found:
            open_gates(gates["bytes"], int(found.group(1)) // 20)

    def files_seen(line: str) -> None:
        found = re.search(r'^build: (\d+) files \(\*\.o\), ' + DURATION + '$', line)
        if found:
            open_gates(gates["files"], int(found.group(1)))

    def failing_seen(line: str) -> None:
        if re.search(r'^failing step: running, ' + DURATION + '$', line):
            open_gates(gates["failing"], 1)

    # Stands in for async_status (a module beside the playbook wins over the builtin):
    # "running" for the first 1000 reads of the job's status, then "finished". So the
    # role polls exactly 1001 times, and fast: no Python starts for a poll.
    counter = workdir["thousand"] / "reads"
    library = workdir["thousand"] / "library"
    library.mkdir()
    (library / "async_status").write_text(
        "#!/bin/sh\n"
        'n=$(( $(cat "%s" 2>/dev/null || echo 0) + 1 )); echo "$n" > "%s"\n'
        'if [ "$n" -le 1000 ]; then echo \'{"started": true, "finished": false}\'\n'
        'else echo \'{"started": true, "finished": true, "rc": 0, "changed": true}\'; fi\n' % (counter, counter))
    (library / "async_status").chmod(0o755)

    ghost_inventory = workdir["unreachable"] / "inventory.ini"
    ghost_inventory.write_text("ghost ansible_connection=ssh ansible_host=127.0.0.1 ansible_port=1 "
                               "ansible_ssh_common_args='-o ConnectTimeout=5'\n")

    return {
        # Polled at least 1000 times in one task: no include nests in another.
        "thousand": Case([
            {"name": "Wait with progress", "ansible.builtin.include_role": {"name": "fleet.criu.progress"},
             "vars": {"progress_job": {"ansible_job_id": "j000000000.1000", "started": 1, "finished": 0},
                      "progress_label": "counter", "progress_interval": 0}}]),
        # A job id no host knows: the status is gone.
        "vanished": Case([
            {"name": "Wait with progress", "ansible.builtin.include_role": {"name": "fleet.criu.progress"},
             "vars": {"progress_job": {"ansible_job_id": "j000000000.424242", "started": 1, "finished": 0},
                      "progress_label": "lost job", "progress_interval": 0}},
            show("REACHED")]),
        # The job's host cannot be reached (nothing listens on port 1).
        "unreachable": Case([
            {"name": "Wait with progress", "ansible.builtin.include_role": {"name": "fleet.criu.progress"},
             "vars": {"progress_job": {"ansible_job_id": "j000000000.434343", "started": 1, "finished": 0},
                      "progress_label": "far job", "progress_job_host": "ghost", "progress_interval": 0}},
            show("REACHED")], ("-i", str(ghost_inventory))),
        "bytes": Case(background_then_progress(
            ["sh", "-c", WAIT_FOR_GATE + 'mkdir -p "$0"; for i in 1 2 3 4 5; do '
             'head -c 240000 /dev/zero > "$0/f$i"; [ "$i" = 5 ] || gate "$1/gate-$i"; done',
             str(watched), str(gates["bytes"])],
            progress_label="writer", progress_watch_path=str(watched), progress_total=1200000, progress_interval=0)
            + [show("rc={{ progress_result.rc }}")], on_line=bytes_seen),
        "files": Case(background_then_progress(
            ["sh", "-c", WAIT_FOR_GATE + 'mkdir -p "$0/sub"; for i in 1 2 3 4 5; do '
             'touch "$0/sub/x$i.o" "$0/x$i.c"; [ "$i" = 5 ] || gate "$1/gate-$i"; done',
             str(tree), str(gates["files"])],
            progress_label="build", progress_watch_path=str(tree), progress_watch="files", progress_watch_pattern="*.o",
            progress_interval=0), on_line=files_seen),
        # Fails only after the role has reported it running at least once.
        "failing": Case(background_then_progress(
            ["sh", "-c", WAIT_FOR_GATE + 'gate "$0/gate-1"; echo "disk quota exceeded" >&2; exit 3',
             str(gates["failing"])],
            progress_label="failing step", progress_interval=0) + [show("REACHED")], on_line=failing_seen),
        "skipped": Case(SKIPPED_JOB),
        "skipped-check-mode": Case(SKIPPED_JOB, ("--check",)),
    }


def run_playbook(workdir: Path, case: Case, collections_path: str, ansible_playbook: str) -> subprocess.CompletedProcess[str]:
    """Run the case's playbook, feeding each stdout line to case.on_line as it comes."""
    playbook = workdir / "playbook.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": case.tasks}],
                                       sort_keys=False))
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=collections_path,
        ANSIBLE_LOCALHOST_WARNING="false",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default",
        PYTHONUNBUFFERED="1",
    )
    argv = [ansible_playbook, "-i", "localhost,", "-c", "local", *case.options, str(playbook)]
    with open(workdir / "stderr", "w+") as stderr, subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL, text=True, env=env) as proc:
        watchdog = threading.Timer(RUN_LIMIT, proc.kill)
        watchdog.start()
        lines = []
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line)
                if case.on_line:
                    case.on_line(line)
            returncode = proc.wait()
        finally:
            watchdog.cancel()
        stderr.seek(0)
        return subprocess.CompletedProcess(argv, returncode, "".join(lines), stderr.read())


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, collections_path: str,
         ansible_playbook: str) -> dict[str, tuple[Path, subprocess.CompletedProcess[str]]]:
    names = ["thousand", "vanished", "unreachable", "bytes", "files", "failing", "skipped", "skipped-check-mode"]
    workdir = {name: tmp_path_factory.mktemp(name) for name in names}
    all_cases = cases(workdir)

    def run(name: str) -> tuple[Path, subprocess.CompletedProcess[str]]:
        return workdir[name], run_playbook(workdir[name], all_cases[name], collections_path, ansible_playbook)

    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        return dict(zip(names, pool.map(run, names)))


def test_prints_growing_byte_counts_with_a_percentage_then_the_duration(runs) -> None:
    workdir, result = runs["bytes"]
    assert result.returncode == 0, result.stdout + result.stderr
    line = r'^writer: [0-9.]+ \w+ of 1.14 MB \((\d+)%\), [0-9.]+ \w+/s(?:, ETA ' + DURATION + r')?, ' + DURATION + '$'
    percents = [int(p) for p in re.findall(line, result.stdout, re.MULTILINE)]
    # The writer waited for each report, so every step from 20% to 80% was seen, in order.
    assert percents == sorted(percents), percents
    assert set(range(20, 100, 20)) <= set(percents), percents
    assert all(p <= 99 for p in percents)
    assert re.search(r'"msg": "writer: done in [0-9.]+ s \(\d+ polls\)"', result.stdout)
    assert '"msg": "rc=0"' in result.stdout
    assert len(list((workdir / "watched").iterdir())) == 5


def test_counts_matching_files(runs) -> None:
    _workdir, result = runs["files"]
    assert result.returncode == 0, result.stdout + result.stderr
    counts = [int(n) for n in re.findall(r'^build: (\d+) files \(\*\.o\), ' + DURATION + '$', result.stdout, re.MULTILINE)]
    assert counts == sorted(counts) and max(counts) <= 5, result.stdout
    assert set(range(1, 5)) <= set(counts), counts


def test_a_failed_job_fails_the_role_with_what_the_job_said(runs) -> None:
    _workdir, result = runs["failing"]
    assert result.returncode != 0
    out = result.stdout + result.stderr
    assert re.search(r"failing step failed after [0-9.]+ s \(rc 3\): .*disk quota exceeded", out), out
    assert "REACHED" not in result.stdout
    assert re.search(r'^failing step: running, ' + DURATION + '$', result.stdout, re.MULTILINE)


@pytest.mark.parametrize("case", ["skipped", "skipped-check-mode"])
def test_a_job_that_never_started_passes_through(runs, case: str) -> None:
    _workdir, result = runs[case]
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"msg": "skipped=True"' in result.stdout
    assert "Check on" not in result.stdout


def test_a_thousand_polls_in_one_task(runs) -> None:
    workdir, result = runs["thousand"]
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    lines = re.findall(r'^counter: running, ' + DURATION + '$', result.stdout, re.MULTILINE)
    assert len(lines) == 1000
    assert re.search(r'"msg": "counter: done in [0-9.]+ s \(1001 polls\)"', result.stdout), result.stdout[-3000:]
    # 1001 status reads by the wait, one more by the role's clean-up
    assert (workdir / "reads").read_text().strip() == "1002"
    assert "RecursionError" not in result.stdout + result.stderr
    # One task did the waiting: its header appears once.
    assert result.stdout.count("TASK [fleet.criu.progress : Wait for counter]") == 1


def test_a_vanished_job_ends_the_wait_with_a_clear_failure(runs) -> None:
    _workdir, result = runs["vanished"]
    assert result.returncode != 0
    assert re.search(r"lost job: the job j000000000\.424242 is gone on localhost", result.stdout), result.stdout
    assert "REACHED" not in result.stdout


def test_an_unreachable_job_host_ends_the_wait_with_a_clear_failure(runs) -> None:
    _workdir, result = runs["unreachable"]
    assert result.returncode != 0
    assert re.search(r"far job: lost contact with ghost, where the job j000000000\.434343 runs", result.stdout), \
        result.stdout
    assert "REACHED" not in result.stdout
