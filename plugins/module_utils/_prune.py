# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Retention for <images_root>/<run_id>/<host>: what fleet.criu.prune may remove (private).

The rules, in the order they are applied to each images directory:

1. Symlinks are never followed (a symlinked run or images directory is reported, not entered).
2. A directory another fleet.criu operation holds (its lock) is kept.
3. A directory holding anything this collection did not write, or without a valid manifest,
   is kept: nothing in it is provably ours.
4. A dump younger than ``older_than_days`` is kept, and so is every dump of the newest
   ``keep_runs`` runs.
5. A dump that may be the only copy of its process is kept unless ``unrestored`` is true:
   one with no restore record (``fleet-criu-restore.json``) that was not dumped with
   ``leave_running``. criu ended that process when it dumped it.
6. Otherwise the manifest's files and the collection's own files are removed, and the run
   directory once it is empty. What an interrupted run left beside it (temporary and
   moved-aside directories) goes through ``_images.sweep``.
"""

from __future__ import annotations

import datetime
import os
import re
import stat
import typing as t

from ansible_collections.fleet.criu.plugins.module_utils import _images, _lock

DAY_S = 86400.0
# Files the playbooks write into a run directory (the run's summary rows, per kind).
RUN_FILE = re.compile(r"\Asummary-[A-Za-z0-9._-]+\.json\Z")


class Verdict(t.NamedTuple):
    path: str
    run_id: str
    host: str
    remove: bool
    reason: str
    size_bytes: int


def _created(manifest: t.Mapping[str, t.Any], path: str) -> float:
    text = manifest.get("created")
    if isinstance(text, str):
        try:
            return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(
                tzinfo=datetime.timezone.utc).timestamp()
        except ValueError:
            pass
    return os.lstat(path).st_mtime


def _subdirs(path: str) -> t.Tuple[t.List[str], t.List[str]]:
    """(plain subdirectory names, symlinked or odd entry names), hidden entries left out."""
    plain: t.List[str] = []
    odd: t.List[str] = []
    try:
        names = sorted(os.listdir(path))
    except OSError:
        return plain, odd
    for name in names:
        if name.startswith(".") or RUN_FILE.match(name):
            continue
        mode = os.lstat(os.path.join(path, name)).st_mode
        (plain if stat.S_ISDIR(mode) else odd).append(name)
    return plain, odd


def judge(images_root: str, older_than_days: float, keep_runs: int, unrestored: bool,
          now: t.Optional[float] = None, check_locks: bool = True) -> t.Tuple[t.List[Verdict], t.List[str]]:
    """A verdict for every images directory below images_root, and the entries skipped (symlinks, files)."""
    now = now if now is not None else datetime.datetime.now(datetime.timezone.utc).timestamp()
    verdicts: t.List[Verdict] = []
    skipped: t.List[str] = []
    runs, odd = _subdirs(images_root)
    skipped.extend(os.path.join(images_root, name) for name in odd)
    found: t.List[t.Tuple[str, str, str, _images.DirState, float]] = []
    newest: t.Dict[str, float] = {}
    for run_id in runs:
        run_path = os.path.join(images_root, run_id)
        hosts, odd = _subdirs(run_path)
        skipped.extend(os.path.join(run_path, name) for name in odd)
        for host in hosts:
            path = os.path.join(run_path, host)
            state = _images.inspect(path)
            created = _created(state.manifest or {}, path)
            newest[run_id] = max(newest.get(run_id, 0.0), created)
            found.append((run_id, host, path, state, created))
    protected = set(sorted(newest, key=lambda run: newest[run], reverse=True)[:max(0, keep_runs)])
    for run_id, host, path, state, created in found:
        if check_locks and _lock.is_held(path):
            remove_it, reason = False, "another fleet.criu operation holds its lock"
        elif state.foreign or state.manifest is None:
            remove_it, reason = False, (
                "it holds files this collection did not write: %s" % ", ".join(state.foreign[:5]) if state.foreign
                else "no valid manifest (%s)" % (state.manifest_error or "none"))
        elif run_id in protected:
            remove_it, reason = False, "one of the newest %d run(s) (keep_runs)" % keep_runs
        elif now - created < older_than_days * DAY_S:
            remove_it, reason = False, "younger than %g day(s)" % older_than_days
        else:
            remove_it, reason = _only_copy(state.manifest or {}, path, unrestored)
        verdicts.append(Verdict(path, run_id, host, remove_it, reason, _images.dir_size(path)))
    return verdicts, skipped


def _only_copy(manifest: t.Mapping[str, t.Any], path: str, unrestored: bool) -> t.Tuple[bool, str]:
    """(remove, why) for an old dump of ours: never the possible only copy of a process, unless unrestored."""
    record = _images.read_json(os.path.join(path, _images.RESTORE_RECORD_NAME))
    if record:
        return True, "restored as pid %s at %s" % (record.get("pid"), record.get("restored_at", "?"))
    if (manifest.get("options") or {}).get("leave_running"):
        return True, "dumped with leave_running: the process ran on"
    if unrestored:
        return True, "never restored from here (unrestored: true)"
    source = manifest.get("source") or {}
    return False, ("never restored from here and dumped without leave_running: it may be the only copy of "
                   "pid %s (%s); set unrestored: true to remove it" % (source.get("pid"), source.get("comm", "?")))


def remove(verdicts: t.Sequence[Verdict], images_root: str) -> t.Tuple[t.List[str], t.List[str]]:
    """Remove what the verdicts allow (our files only). Returns (removed paths, entries left behind).

    Each directory is removed under its own lock; its lock file goes too (while still held)
    so that the run directory can go once it is empty. A directory whose lock was taken
    since it was judged is left alone.
    """
    removed: t.List[str] = []
    left: t.List[str] = []
    for item in verdicts:
        if not item.remove:
            continue
        try:
            with _lock.held(item.path, 0):
                leftover = _images.remove_ours(item.path, _images.inspect(item.path).manifest)
                _images.sweep(item.path, min_age_s=0)
                if not leftover:
                    _unlink_plain(_lock.lock_path(item.path))
        except _lock.LockError:
            left.append(item.path + " (taken by another fleet.criu operation)")
            continue
        if leftover:
            left.extend(os.path.join(item.path, rel) for rel in leftover)
        else:
            removed.append(item.path)
        _remove_run_if_done(os.path.join(images_root, item.run_id))
    return removed, left


def _remove_run_if_done(run_path: str) -> None:
    """Remove a run directory that holds nothing but the playbooks' summaries and stale lock files."""
    try:
        names = os.listdir(run_path)
    except OSError:
        return
    ours = [name for name in names if RUN_FILE.match(name) or _stale_lock(run_path, name)]
    if len(ours) != len(names):
        return  # other hosts' images, or anything else, are still in the run
    for name in ours:
        _unlink_plain(os.path.join(run_path, name))
    try:
        os.rmdir(run_path)
    except OSError:
        pass


def _stale_lock(run_path: str, name: str) -> bool:
    """A lock file (.<host>.lock) whose images directory is gone."""
    return name.startswith(".") and name.endswith(".lock") and not os.path.isdir(os.path.join(run_path, name[1:-5]))


def _unlink_plain(path: str) -> None:
    try:
        if stat.S_ISREG(os.lstat(path).st_mode):
            os.unlink(path)
    except OSError:
        pass
