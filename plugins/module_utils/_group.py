# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A coordinated group of members (one process tree per host, TCP between them): the
decisions, and the restore barrier (private). Used by fleet.criu.restore (barrier_dir),
fleet.criu.group_barrier, the group filters and the playbooks group_checkpoint and
group_restore.

The barrier, as measured with criu 4.2.1 on Linux 6.18 (docs/architecture.md, "Found while
building"):
- criu runs action scripts with CRTOOLS_SCRIPT_ACTION set. ``network-unlock`` runs only when
  the restored tree has a network namespace of its own; for a process in the host's (or the
  container's) namespace criu unlocks each TCP connection right after the ``post-restore``
  scripts. So the barrier waits at ``post-restore``: the tree is restored, not yet resumed,
  and every connection is still locked.
- A ``post-restore`` script that exits non-zero makes criu kill the restored tree and fail;
  the connection's lock rules stay in place and the images are untouched, so the same
  images restore again later and the connection still carries on.

Protocol, in a fresh private directory per member and run (BARRIER_* names below): the
script writes ``ready`` (the restored root's PID) and waits for ``go`` (exit 0: criu
unlocks and resumes) or ``abort`` or its own deadline (exit 1: criu kills the restored
tree). fleet.criu.restore writes ``done`` (JSON: failed, pid, msg) when it ends, however it
ends. The controller writes ``go`` on every member only once every member is ``ready``
(or ``done`` without failure: already running), and ``abort`` on all as soon as one failed.
"""

from __future__ import annotations

import json
import os
import re
import stat
import typing as t

from ansible_collections.fleet.criu.plugins.module_utils import _safefs

BARRIER_READY = "ready"
BARRIER_GO = "go"
BARRIER_ABORT = "abort"
BARRIER_SCRIPT = "barrier.sh"
BARRIER_DONE = "done"
BARRIER_FILES = (BARRIER_READY, BARRIER_GO, BARRIER_ABORT, BARRIER_SCRIPT, BARRIER_DONE, BARRIER_READY + ".tmp")
# The stage the barrier holds: see the module docstring.
BARRIER_STAGE = "post-restore"
# Where a barrier directory may be: plain absolute paths only, since the path is written
# into a script that criu runs as root.
_SAFE_PATH = re.compile(r"\A/[A-Za-z0-9._/-]{1,200}\Z")

# A member's state as the controller sees it while the group restores.
READY = "ready"              # restored, held at the barrier
RESTORED = "restored"        # its restore ended well: past the barrier, or already running
RESTORING = "restoring"      # criu still at work (or not yet at the barrier)
FAILED = "failed"            # its restore ended without reaching the barrier, or was aborted
UNREACHABLE = "unreachable"  # its host does not answer

GO = "go"
ABORT = "abort"
WAIT = "wait"


class GroupError(ValueError):
    """A refusal: the message is the sentence to show the operator."""


def barrier_script(barrier_dir: str, timeout_s: int) -> str:
    """The action script criu runs: hold at post-restore until go, abort or the deadline."""
    check_barrier_dir(barrier_dir)
    if not isinstance(timeout_s, int) or isinstance(timeout_s, bool) or not 1 <= timeout_s <= 86400:
        raise GroupError("barrier timeout must be 1 to 86400 seconds, got %r" % (timeout_s,))
    ticks = timeout_s * 10
    return "\n".join([
        "#!/bin/sh",
        "# fleet.criu group barrier: written by fleet.criu, run by criu restore --action-script.",
        '[ "$CRTOOLS_SCRIPT_ACTION" = %s ] || exit 0' % BARRIER_STAGE,
        "d=%s" % barrier_dir,
        'echo "${CRTOOLS_INIT_PID:-0}" > "$d/%s.tmp" && mv -f "$d/%s.tmp" "$d/%s" || exit 1'
        % (BARRIER_READY, BARRIER_READY, BARRIER_READY),
        "i=0",
        'while [ ! -e "$d/%s" ]; do' % BARRIER_GO,
        '  [ -e "$d/%s" ] && exit 1' % BARRIER_ABORT,
        "  i=$((i + 1))",
        "  [ \"$i\" -gt %d ] && exit 1" % ticks,
        "  sleep 0.1",
        "done",
        "exit 0",
        "",
    ])


def check_barrier_dir(barrier_dir: str) -> None:
    """Refuse a barrier directory path that is not plain (it goes into a script criu runs as root)."""
    if not isinstance(barrier_dir, str) or not _SAFE_PATH.match(barrier_dir) or "//" in barrier_dir \
            or "/../" in barrier_dir + "/" or "/./" in barrier_dir + "/" or barrier_dir.endswith("/"):
        raise GroupError("barrier directory %r must be a plain absolute path (letters, digits, '.', '_', '-', "
                         "'/'; no '..', '//' or trailing '/')" % (barrier_dir,))


def prepare_barrier(barrier_dir: str, timeout_s: int) -> str:
    """Create the member's barrier directory (root-only, new) and its script; the script's path.

    The directory must not exist: each run uses a fresh one, so no file of an earlier run
    can be read as this run's answer. Its parent is made (0700) when missing and must be
    trusted (owned by root, not writable by others, no symlink on the way).
    """
    check_barrier_dir(barrier_dir)
    script = barrier_script(barrier_dir, timeout_s)
    parent = os.path.dirname(barrier_dir)
    try:
        os.makedirs(parent, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise GroupError("cannot create %s: %s" % (parent, exc.strerror or exc))
    try:
        _safefs.check_parent(barrier_dir)
    except _safefs.SafeFsError as exc:
        raise GroupError(exc.msg)
    if os.statvfs(parent).f_flag & getattr(os, "ST_NOEXEC", 8):
        raise GroupError("%s is on a file system mounted noexec (as /run and /tmp often are): criu could not run "
                         "the barrier script there; use a directory on a file system that allows it, such as "
                         "/var/lib/fleet-criu/barrier" % parent)
    try:
        os.mkdir(barrier_dir, 0o700)
    except FileExistsError:
        raise GroupError("barrier directory %s already exists: each group restore needs a new one "
                         "(the playbook names it after the run and a nonce)" % barrier_dir)
    except OSError as exc:
        raise GroupError("cannot create %s: %s" % (barrier_dir, exc.strerror or exc))
    path = os.path.join(barrier_dir, BARRIER_SCRIPT)
    try:
        _safefs.write_private(path, script.encode(), exclusive=True)
        os.chmod(path, 0o700)
    except _safefs.SafeFsError as exc:
        raise GroupError(exc.msg)
    return path


def write_done(barrier_dir: str, failed: bool, pid: t.Optional[int] = None, msg: str = "") -> None:
    """Record how this member's restore ended (best effort: the barrier may not exist)."""
    record = {"failed": bool(failed), "pid": pid, "msg": msg[:2000]}
    try:
        _safefs.write_private(os.path.join(barrier_dir, BARRIER_DONE), json.dumps(record).encode())
    except _safefs.SafeFsError:
        pass


def _read_small(path: str) -> t.Optional[str]:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode) or st.st_size > 65536:
        return None
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return None


def member_state(barrier_dir: str) -> t.Dict[str, t.Any]:
    """One member's state from its barrier directory: state, ready_pid, and the done record."""
    done_text = _read_small(os.path.join(barrier_dir, BARRIER_DONE))
    ready_text = _read_small(os.path.join(barrier_dir, BARRIER_READY))
    ready_pid = None
    if ready_text is not None and ready_text.strip().isdigit():
        ready_pid = int(ready_text.strip())
    done: t.Optional[t.Dict[str, t.Any]] = None
    if done_text is not None:
        try:
            loaded = json.loads(done_text)
            done = loaded if isinstance(loaded, dict) else {"failed": True, "msg": "unreadable done record"}
        except ValueError:
            done = {"failed": True, "msg": "unreadable done record"}
    if done is not None:
        state = FAILED if done.get("failed") else RESTORED
    elif ready_text is not None:
        state = READY
    else:
        state = RESTORING
    return {"state": state, "ready_pid": ready_pid, "done": done}


def held_and_ended(barrier_dir: str) -> t.Optional[str]:
    """Why a restore that failed after reaching the barrier failed (None when it never got there)."""
    if not os.path.lexists(os.path.join(barrier_dir, BARRIER_READY)):
        return None
    if os.path.lexists(os.path.join(barrier_dir, BARRIER_ABORT)):
        return ("restored and held at the group barrier, then aborted by the controller because another member "
                "could not be restored; criu killed this tree before it resumed (images and connection locks kept)")
    if os.path.lexists(os.path.join(barrier_dir, BARRIER_GO)):
        return "restored and released by the group barrier, then criu failed to resume it"
    return ("restored and held at the group barrier, but no go came before barrier_timeout; criu killed this "
            "tree before it resumed (images and connection locks kept)")


def release(barrier_dir: str, decision: str) -> bool:
    """Write go or abort into the member's barrier directory; False when it was already there."""
    if decision not in (GO, ABORT):
        raise GroupError("a barrier is released with go or abort, not %r" % (decision,))
    check_barrier_dir(barrier_dir)
    path = os.path.join(barrier_dir, BARRIER_GO if decision == GO else BARRIER_ABORT)
    if os.path.lexists(path):
        return False
    if not os.path.isdir(barrier_dir) or os.path.islink(barrier_dir):
        raise GroupError("no barrier directory %s on this host: its restore never started" % barrier_dir)
    try:
        _safefs.write_private(path, b"", exclusive=True)
    except _safefs.SafeFsError as exc:
        raise GroupError(exc.msg)
    return True


def remove_barrier(barrier_dir: str) -> bool:
    """Remove a barrier directory holding only the barrier's own files; False when there is none."""
    check_barrier_dir(barrier_dir)
    try:
        st = os.lstat(barrier_dir)
    except FileNotFoundError:
        return False
    if not stat.S_ISDIR(st.st_mode):
        raise GroupError("%s is not a directory; refusing to remove it" % barrier_dir)
    names = os.listdir(barrier_dir)
    foreign = sorted(set(names) - set(BARRIER_FILES))
    if foreign:
        raise GroupError("%s holds files the barrier did not write (%s); refusing to remove it"
                         % (barrier_dir, ", ".join(foreign)))
    for name in names:
        os.unlink(os.path.join(barrier_dir, name))
    os.rmdir(barrier_dir)
    return True


def release_decision(states: t.Mapping[str, str]) -> str:
    """go when every member is ready (or restored), abort as soon as one failed or is out of reach, else wait."""
    if not states:
        raise GroupError("a group needs at least one member")
    unknown = sorted(set(states.values()) - {READY, RESTORED, RESTORING, FAILED, UNREACHABLE})
    if unknown:
        raise GroupError("unknown member state(s): %s" % ", ".join(unknown))
    if any(s in (FAILED, UNREACHABLE) for s in states.values()):
        return ABORT
    if all(s in (READY, RESTORED) for s in states.values()):
        return GO
    return WAIT


def checkpoint_outcome(results: t.Mapping[str, t.Mapping[str, t.Any]]) -> t.Dict[str, t.Any]:
    """After the parallel dumps: the group's verdict and who must be restored in place.

    A member whose dump failed is still running (criu resumes a tree it could not dump).
    When any member failed, every member that was dumped (and so is gone) is restored in
    place from its own images, so no member stays dead; its peers' TCP retransmissions
    cover the gap.
    """
    if not results:
        raise GroupError("a group needs at least one member")
    dumped = sorted(h for h, r in results.items() if not r.get("failed") and not r.get("unreachable"))
    failed = sorted(h for h in results if h not in dumped)
    if not failed:
        return {"outcome": "checkpointed", "dumped": dumped, "failed": [], "restore_in_place": [],
                "msg": "all %d members dumped" % len(dumped)}
    reasons = "; ".join("%s: %s" % (h, _reason(results[h])) for h in failed)
    return {"outcome": "rolled back" if dumped else "failed", "dumped": dumped, "failed": failed,
            "restore_in_place": dumped,
            "msg": "the group was not checkpointed: %s. %s" % (
                reasons, ("Restored in place: %s." % ", ".join(dumped)) if dumped else "No member was dumped.")}


def _reason(result: t.Mapping[str, t.Any]) -> str:
    if result.get("unreachable"):
        return "unreachable"
    msg = str(result.get("msg") or "failed").strip().splitlines()
    return msg[0] if msg else "failed"


def group_rows(group: str, action: str, outcome: str, members: t.Sequence[t.Mapping[str, t.Any]]) -> t.List[t.Dict[str, t.Any]]:
    """Summary rows: one line for the group (its longest member downtime), then one per member."""
    downtimes = [m.get("downtime_s") for m in members if isinstance(m.get("downtime_s"), (int, float))]
    head = {"host": "group %s" % group, "process": "%d members" % len(members), "action": action,
            "result": outcome, "size_bytes": sum(int(m.get("size_bytes") or 0) for m in members) or None,
            "downtime_s": max(downtimes) if downtimes else "-"}
    return [head] + [dict(m) for m in members]
