# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The migration journal and the decisions made from it (private).

Each host involved in a migration keeps one small JSON file per migration key (the
same key on both hosts: source, target and process selector) in a root-only
directory. Every state change is written atomically before the step it announces
takes effect, so a control node that disappears (Ctrl-C, lost SSH) leaves enough on
the hosts for the same command, run again, to resume instead of dumping or
restoring twice.

Source states:  checked -> dumped -> sealed -> committed -> migrated -> cleaned
                            \\-> rolled_back (restored here again)   \\-> unknown
Target states:  listening -> received -> restored -> verified -> cleaned
                      \\-> aborted (nothing restored)    \\-> killed (copy here ended)
"""

from __future__ import annotations

import json
import os
import re
import stat
import typing as t

from ansible_collections.fleet.criu.plugins.module_utils import _images

DEFAULT_DIR = "/var/lib/fleet-criu/journal"
# \Z, not $: "$" also matches before a trailing newline.
KEY = re.compile(r"^[0-9a-f]{16,64}\Z")

SOURCE_STATES = ("checked", "dumped", "sealed", "committed", "migrated", "rolled_back", "unknown", "cleaned")
TARGET_STATES = ("listening", "received", "restored", "verified", "killed", "aborted", "cleaned")
# Source states after which the process is not running on the source any more (a dump
# was made and not undone).
SOURCE_DUMPED = ("dumped", "sealed", "committed", "unknown", "migrated")


class JournalError(Exception):
    pass


def path_for(directory: str, key: str) -> str:
    if not KEY.match(key or ""):
        raise JournalError("migration key %r is not a hex digest" % (key,))
    return os.path.join(directory, "%s.json" % key)


def read(directory: str, key: str) -> t.Optional[t.Dict[str, t.Any]]:
    path = path_for(directory, key)
    if not os.path.lexists(directory):
        return None
    # A journal decides what a re-run does: never believe one behind a link or in a
    # directory someone else can write.
    check_dir(directory)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise JournalError("cannot read the migration journal %s: %s" % (path, exc))
    with os.fdopen(fd, "r") as handle:
        try:
            data = json.load(handle)
        except ValueError as exc:
            raise JournalError("the migration journal %s is not valid JSON: %s" % (path, exc))
    if not isinstance(data, dict):
        raise JournalError("the migration journal %s is not a JSON object" % path)
    return data


def ensure_dir(directory: str) -> None:
    """Create the journal directory root-only; refuse a symlink or one others can write."""
    if not os.path.lexists(directory):
        old = os.umask(0o077)  # missing parents root-only too
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
        finally:
            os.umask(old)
    check_dir(directory)


def check_dir(directory: str) -> None:
    info = os.lstat(directory)
    if not stat.S_ISDIR(info.st_mode):
        raise JournalError("the journal directory %s is not a directory (a symlink?)" % directory)
    if info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise JournalError("the journal directory %s must be owned by uid %d and not writable by others"
                           % (directory, os.geteuid()))


def write(directory: str, key: str, entry: t.Dict[str, t.Any], state: str, at: float, **facts: t.Any) -> t.Dict[str, t.Any]:
    """Record a new state (atomically, fsynced) and return the updated entry."""
    # The key is part of the temporary file's name too: check it before anything is created.
    path = path_for(directory, key)
    ensure_dir(directory)
    entry = dict(entry)
    if facts.get("run_id") and entry.get("run_id") and facts["run_id"] != entry["run_id"]:
        # An entry is one migration run: a new run of the same key (the same command for a
        # later process) starts a new history, keeping only where the last one ended.
        entry = {"previous": {k: entry.get(k) for k in ("run_id", "state", "outcome") if k in entry}}
    entry.update(facts)
    entry["key"] = key
    entry["state"] = state
    entry.setdefault("history", [])
    entry["history"] = list(entry["history"]) + [{"state": state, "at": round(at, 3)}]
    _images.write_json_atomic(directory, os.path.basename(path), entry)
    return entry


def count(entry: t.Optional[t.Mapping[str, t.Any]], state: str) -> int:
    """How often entry went through state (e.g. how many dumps a migration made)."""
    return sum(1 for item in (entry or {}).get("history", []) if item.get("state") == state)


# ------------------------------------------------------------------ decisions

class Plan(t.NamedTuple):
    action: str   # fresh | send | restore_here | done | already | refuse
    reason: str
    run_id: t.Optional[str] = None


def plan(source: t.Optional[t.Mapping[str, t.Any]], source_alive: bool,
         target: t.Optional[t.Mapping[str, t.Any]], target_alive: bool,
         target_images_complete: bool) -> Plan:
    """What a (re-)run of one migration does, from both journals and what runs now.

    source_alive: the selected process runs on the source now.
    target_alive: the process the target's journal says it restored runs there now.
    target_images_complete: the target holds the run's images, complete and verified.
    """
    s_state = (source or {}).get("state")
    t_state = (target or {}).get("state")
    run_id = (source or {}).get("run_id")
    same_run = source is not None and target is not None and target.get("run_id") == run_id
    # A source journal that ended (or never dumped) with a target journal that ended as a
    # finished move: what runs on the target is that earlier, finished migration's process,
    # and what runs on the source now is a later one (the same command, a new process).
    finished_earlier = s_state in (None, "cleaned", "rolled_back", "checked") and t_state == "cleaned"
    if source_alive and target_alive and not finished_earlier:
        # Whatever the journals say (this run's copy, an older run's, a hand-made restart).
        return Plan("refuse", "the process runs on BOTH hosts (on the source, and the copy the target restored in "
                    "run %s, journal state %s): refusing to touch either; end one copy by hand"
                    % ((target or {}).get("run_id"), t_state), run_id)
    if s_state in (None, "cleaned", "rolled_back", "checked"):
        if s_state == "cleaned" and source is not None and source.get("outcome") == "migrated" and not source_alive:
            return Plan("already", "run %s already migrated this process (it runs on the target)" % run_id, run_id)
        if source_alive:
            return Plan("fresh", "no unfinished migration of this process" if s_state != "checked"
                        else "the last run stopped before its dump")
        return Plan("refuse", "the process does not run on the source, and no unfinished migration of it is "
                    "journaled there (last state: %s)" % (s_state or "none"), run_id)
    # The source dumped (and the dump was not undone): never dump again.
    if source_alive:
        return Plan("refuse", "the source journal says run %s dumped this process, yet it runs on the source: "
                    "someone restored it by hand? Refusing to guess; check both hosts" % run_id, run_id)
    if same_run and target_alive and t_state in ("restored", "verified"):
        return Plan("done", "run %s restored the process on the target and it runs there" % run_id, run_id)
    # Before any resume: images of a process that ran on after them are never restored again.
    if s_state == "migrated":
        return Plan("refuse", "run %s verified the process on the target, and it no longer runs there: it ran on "
                    "after the images were made, so restoring them would go back in time. Images: %s"
                    % (run_id, (source or {}).get("images_dir")), run_id)
    if s_state not in ("dumped", "sealed", "committed", "unknown"):
        return Plan("refuse", "unexpected journal state %r on the source" % s_state, run_id)
    if target_alive:
        # Not this run's restored copy (another run's, or a journal state that does not
        # explain it): sending or restoring now would start a second copy.
        return Plan("refuse", "run %s dumped the process here, yet a copy of it runs on the target (restored by run "
                    "%s, journal state %s): refusing to send or restore anything; check both hosts"
                    % (run_id, (target or {}).get("run_id"), t_state), run_id)
    if same_run and target_images_complete and t_state in ("received", "restored", "killed"):
        if t_state == "killed":
            return Plan("send", "run %s: the target ended its copy; sending again" % run_id, run_id)
        return Plan("restore_here", "run %s: the target holds the verified images; restoring there" % run_id, run_id)
    return Plan("send", "run %s dumped the process and it runs nowhere: sending its images again" % run_id, run_id)
