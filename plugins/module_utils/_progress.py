# -*- coding: utf-8 -*-
# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What the action plugin fleet.criu.job_progress decides, without any I/O: the command
that measures a watched path, what its output means, and the progress line."""

from __future__ import annotations

import re

from ansible.module_utils.common.text.formatters import bytes_to_human

WATCH_KINDS = ("bytes", "files", "rsync")

# The last figures rsync --info=progress2 wrote: "  1,234,567  45%  1.23MB/s  0:00:12 ..."
_RSYNC_FIGURES = re.compile(r"^\s*([0-9][0-9,.']*)\s+\d+%")


def watch_argv(kind, path, pattern="*"):
    """The command measuring ``path`` on the job's host, or None when nothing is watched."""
    if not path:
        return None
    if kind == "bytes":
        return ["du", "--summarize", "--bytes", path]
    if kind == "files":
        return ["find", path, "-type", "f", "-name", pattern, "-printf", "."]
    if kind == "rsync":
        return ["tail", "--bytes", "4096", path]
    raise ValueError("unknown watch kind %r" % (kind,))


def measured(kind, stdout):
    """The value the command's output says (bytes or files); 0 when it says nothing usable."""
    stdout = stdout or ""
    if kind == "bytes":
        first = stdout.split()[:1]
        return int(first[0]) if first and first[0].isdigit() else 0
    if kind == "files":
        return stdout.count(".")
    if kind == "rsync":
        for segment in reversed(re.split(r"[\r\n]", stdout)):
            found = _RSYNC_FIGURES.match(segment)
            if found:
                return int(re.sub(r"\D", "", found.group(1)))
        return 0
    raise ValueError("unknown watch kind %r" % (kind,))


def duration(seconds):
    """12 s, 3 min 05 s, 1 h 02 min."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return "%d s" % seconds
    if seconds < 3600:
        return "%d min %02d s" % divmod(seconds, 60)
    return "%d h %02d min" % (seconds // 3600, seconds % 3600 // 60)


def rate_and_eta(done, total, elapsed):
    """(rate per second, seconds left or None) from the average since the start."""
    if elapsed <= 0 or done <= 0:
        return 0.0, None
    rate = done / elapsed
    if total <= 0:
        return rate, None
    return rate, max(0.0, (total - done) / rate)


def progress_line(label, kind, watched, value, total, elapsed, pattern="*"):
    """One progress line. ``watched``: whether a path is measured at all."""
    elapsed_text = duration(elapsed)
    if not watched:
        return "%s: running, %s" % (label, elapsed_text)
    if kind == "files":
        of = (" of ~%d" % total) if total > 0 else ""
        return "%s: %d%s files (%s), %s" % (label, value, of, pattern, elapsed_text)
    text = bytes_to_human(value)
    if total > 0:
        percent = min(100 * value // max(total, 1), 99)
        text += " of %s (%d%%)" % (bytes_to_human(total), percent)
    rate, eta = rate_and_eta(value, total, elapsed)
    text += ", %s/s" % bytes_to_human(rate)
    if eta is not None:
        text += ", ETA %s" % duration(eta)
    return "%s: %s, %s" % (label, text, elapsed_text)
