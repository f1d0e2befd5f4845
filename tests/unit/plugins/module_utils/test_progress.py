# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The progress decisions: what to run, what its output means, what the line says."""

from __future__ import annotations

import pytest

from ansible_collections.fleet.criu.plugins.module_utils import _progress


def test_watch_argv() -> None:
    assert _progress.watch_argv("bytes", "") is None
    assert _progress.watch_argv("bytes", "/srv/x") == ["du", "--summarize", "--bytes", "/srv/x"]
    assert _progress.watch_argv("files", "/t", "*.o") == ["find", "/t", "-type", "f", "-name", "*.o", "-printf", "."]
    assert _progress.watch_argv("rsync", "/tmp/d/progress") == ["tail", "--bytes", "4096", "/tmp/d/progress"]
    with pytest.raises(ValueError):
        _progress.watch_argv("lines", "/x")


@pytest.mark.parametrize("kind, stdout, value", [
    ("bytes", "1200000\t/srv/x\n", 1200000),
    ("bytes", "", 0),
    ("bytes", "du: cannot access\n", 0),
    ("files", "....", 4),
    ("files", "", 0),
    # rsync --info=progress2 rewrites its line with \r; the last complete figures count.
    ("rsync", "\r         32,768   0%    0.00kB/s    0:00:00  \r      1,234,567  45%   11.77MB/s    0:00:01 (xfr#1, to-chk=3/5)",
     1234567),
    ("rsync", "      2,000,000 100%   1.00MB/s    0:00:02 (xfr#4, to-chk=0/5)\n\nsent 2,001,000 bytes\n", 2000000),
    ("rsync", "", 0),
    ("rsync", "rsync: connection unexpectedly closed\n", 0),
])
def test_measured(kind: str, stdout: str, value: int) -> None:
    assert _progress.measured(kind, stdout) == value


@pytest.mark.parametrize("seconds, text", [(0, "0 s"), (59.4, "59 s"), (65, "1 min 05 s"), (3600 + 120, "1 h 02 min")])
def test_duration(seconds: float, text: str) -> None:
    assert _progress.duration(seconds) == text


def test_rate_and_eta() -> None:
    assert _progress.rate_and_eta(0, 100, 10) == (0.0, None)
    assert _progress.rate_and_eta(50, 100, 0) == (0.0, None)
    assert _progress.rate_and_eta(50, 0, 10) == (5.0, None)
    assert _progress.rate_and_eta(50, 100, 10) == (5.0, 10.0)
    # More than announced: no negative time left.
    assert _progress.rate_and_eta(150, 100, 10) == (15.0, 0.0)


def test_lines() -> None:
    assert _progress.progress_line("job", "bytes", False, 0, 0, 3) == "job: running, 3 s"
    assert _progress.progress_line("rsync a -> b", "rsync", True, 600 * 1024, 1200 * 1024, 10) == (
        "rsync a -> b: 600.00 KB of 1.17 MB (50%), 60.00 KB/s, ETA 10 s, 10 s")
    # Unknown total: rate, no percentage, no ETA.
    assert _progress.progress_line("w", "bytes", True, 2048, 0, 2) == "w: 2.00 KB, 1.00 KB/s, 2 s"
    # Never 100% while the job runs.
    assert "(99%)" in _progress.progress_line("w", "bytes", True, 1200, 1000, 1)
    assert _progress.progress_line("make", "files", True, 3, 0, 4, "*.o") == "make: 3 files (*.o), 4 s"
    assert _progress.progress_line("make", "files", True, 3, 90, 4, "*.o") == "make: 3 of ~90 files (*.o), 4 s"
