# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The images directory and its manifest (private).

A directory is *complete* only when ``fleet-criu-manifest.json`` exists, is
valid, and every file it lists exists. The manifest is written last and
atomically, inside a temporary sibling directory that is then renamed into
place, so a crash never leaves a directory that looks complete.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
import typing as t

from ansible_collections.fleet.criu.plugins.module_utils._proc import same_identity
from ansible_collections.fleet.criu.plugins.module_utils._safefs import check_parent
from ansible_collections.fleet.criu.plugins.module_utils._version import (
    compare,
    kernel_family,
    parse_version,
)

MANIFEST_NAME = "fleet-criu-manifest.json"
RESTORE_RECORD_NAME = "fleet-criu-restore.json"
FORMAT_VERSION = 1
DUMP_LOG = "dump.log"
RESTORE_LOG = "restore.log"
RESTORE_PIDFILE = "restore.pid"
RESTORE_OUTPUT = "restore.out"
STATS_DUMP = "stats-dump"
STATS_RESTORE = "stats-restore"

# Files the restore module writes next to the images. They are "ours" too:
# their presence never makes a directory foreign, and replacing a dump removes them.
MODULE_EXTRAS = re.compile(
    r"^(?:fleet-criu-restore\.json|restore(?:-\d+)?\.log|restore\.pid|restore\.out|stats-restore"
    # A lazy dump (lazy_pages) goes on writing these while it serves pages, after
    # the manifest: they cannot be listed with a checksum. The restoring side's
    # criu lazy-pages daemon writes the lazy-pages ones.
    r"|dump\.log|dump\.out|stats-dump|lazy-pages\.(?:log|out|socket)"
    r"|\.fleet-criu-[A-Za-z0-9_.-]+\.tmp-[A-Za-z0-9_]+)$"
)
TEMP_MARK = ".fleet-criu-tmp-"
OLD_MARK = ".fleet-criu-old-"

_REQUIRED_KEYS = ("format", "image_id", "files", "source", "criu", "kernel")


class ImagesError(Exception):
    pass


class DirState(t.NamedTuple):
    path: str
    exists: bool
    is_dir: bool
    entries: t.List[str]
    manifest: t.Optional[t.Dict[str, t.Any]]
    manifest_error: t.Optional[str]
    foreign: t.List[str]
    missing: t.List[str]

    @property
    def empty(self) -> bool:
        return self.is_dir and not self.entries

    @property
    def complete(self) -> bool:
        return self.manifest is not None and not self.missing


def utc_now() -> str:
    return datetime.datetime.now(tz=datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def list_entries(path: str) -> t.List[str]:
    """Relative paths of every file (and empty directory) below path."""
    result: t.List[str] = []
    for root, dirs, files in os.walk(path):
        rel_root = os.path.relpath(root, path)
        for name in files:
            result.append(name if rel_root == "." else os.path.join(rel_root, name))
        for name in dirs:
            full = os.path.join(root, name)
            if not os.listdir(full):
                result.append((name if rel_root == "." else os.path.join(rel_root, name)) + "/")
    return sorted(result)


def scan_files(path: str, skip: t.Iterable[str] = (MANIFEST_NAME,)) -> t.Dict[str, t.Dict[str, t.Any]]:
    """{relpath: {sha256, size}} for every regular file below path."""
    skipped = set(skip)
    files: t.Dict[str, t.Dict[str, t.Any]] = {}
    for rel in list_entries(path):
        if rel.endswith("/") or rel in skipped:
            continue
        full = os.path.join(path, rel)
        files[rel] = {"sha256": sha256_file(full), "size": os.path.getsize(full)}
    return files


def image_id_for(files: t.Mapping[str, t.Mapping[str, t.Any]]) -> str:
    """A content id: sha256 over the sorted (name, sha256) pairs."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(("%s\0%s\n" % (name, files[name]["sha256"])).encode())
    return digest.hexdigest()[:32]


def load_manifest(path: str) -> t.Tuple[t.Optional[t.Dict[str, t.Any]], t.Optional[str]]:
    """(manifest, None), (None, None) when absent, (None, problem) when invalid."""
    manifest_path = os.path.join(path, MANIFEST_NAME)
    try:
        with open(manifest_path, "r") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError) as exc:
        return None, "manifest %s is unreadable: %s" % (manifest_path, exc)
    if not isinstance(data, dict):
        return None, "manifest %s is not a JSON object" % manifest_path
    missing = [key for key in _REQUIRED_KEYS if key not in data]
    if missing:
        return None, "manifest %s lacks %s" % (manifest_path, ", ".join(missing))
    if not isinstance(data["files"], dict) or not isinstance(data["source"], dict):
        return None, "manifest %s has a malformed files/source section" % manifest_path
    if data["format"] != FORMAT_VERSION:
        return None, "manifest %s has format %r; this collection reads format %d" % (
            manifest_path, data["format"], FORMAT_VERSION)
    return data, None


def is_module_extra(rel: str) -> bool:
    return bool(MODULE_EXTRAS.match(rel))


def inspect(path: str) -> DirState:
    """What is at path, and which entries this collection did not write."""
    if not os.path.lexists(path):
        return DirState(path, False, False, [], None, None, [], [])
    if not os.path.isdir(path) or os.path.islink(path):
        return DirState(path, True, False, [], None, None, [], [])
    entries = list_entries(path)
    manifest, problem = load_manifest(path)
    if manifest is None:
        # Without a valid manifest nothing here is provably ours.
        return DirState(path, True, True, entries, None, problem, list(entries), [])
    listed = set(manifest["files"])
    foreign = [e for e in entries if e != MANIFEST_NAME and e not in listed and not is_module_extra(e)]
    missing = sorted(name for name in listed if name not in entries)
    return DirState(path, True, True, entries, manifest, None, foreign, missing)


def verify(path: str, manifest: t.Mapping[str, t.Any], checksums: bool = True) -> t.List[t.Dict[str, t.Any]]:
    """Problems with the listed files: missing, wrong size, wrong sha256."""
    problems: t.List[t.Dict[str, t.Any]] = []
    for name in sorted(manifest.get("files", {})):
        meta = manifest["files"][name]
        full = os.path.join(path, name)
        if not os.path.isfile(full):
            problems.append({"file": name, "problem": "missing"})
            continue
        size = os.path.getsize(full)
        if size != meta.get("size"):
            problems.append({"file": name, "problem": "size", "expected": meta.get("size"), "actual": size})
            continue
        if checksums:
            actual = sha256_file(full)
            if actual != meta.get("sha256"):
                problems.append({"file": name, "problem": "sha256", "expected": meta.get("sha256"), "actual": actual})
    return problems


def describe_problems(problems: t.Sequence[t.Mapping[str, t.Any]]) -> str:
    parts = []
    for item in problems:
        if item["problem"] == "missing":
            parts.append("%s is missing" % item["file"])
        elif item["problem"] == "size":
            parts.append("%s has %s bytes, manifest says %s" % (item["file"], item["actual"], item["expected"]))
        else:
            parts.append("%s checksum mismatch (sha256 %s, manifest says %s)" % (
                item["file"], item["actual"], item["expected"]))
    return "; ".join(parts)


def dir_size(path: str) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_atomic(directory: str, name: str, data: t.Any) -> str:
    """Write name in directory atomically: temp file, fsync, rename, fsync dir.

    directory itself and every directory above it must be real directories
    (no symlink) that pass _safefs's trust rule, else SafeFsError.
    """
    if os.path.basename(name) != name or name in ("", ".", ".."):
        raise ValueError("write_json_atomic: %r is not a file name" % (name,))
    check_parent(os.path.join(os.path.normpath(directory), name))
    fd, tmp = tempfile.mkstemp(prefix=".fleet-criu-%s.tmp-" % name.replace(".json", ""), dir=directory)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        final = os.path.join(directory, name)
        os.rename(tmp, final)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fsync_dir(directory)
    return final


def read_json(path: str) -> t.Optional[t.Dict[str, t.Any]]:
    try:
        with open(path, "r") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def make_temp_sibling(final: str) -> str:
    """<parent>/.<basename>.fleet-criu-tmp-<random>, mode 0700."""
    parent, base = os.path.split(os.path.normpath(final))
    return tempfile.mkdtemp(prefix=".%s%s" % (base, TEMP_MARK), dir=parent)


def secure(path: str) -> None:
    """Directories 0700, files 0600 (criu creates images with its own modes)."""
    os.chmod(path, 0o700)
    for root, dirs, files in os.walk(path):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o700)
        for name in files:
            full = os.path.join(root, name)
            if not os.path.islink(full):
                os.chmod(full, 0o600)


def remove_ours(path: str, manifest: t.Optional[t.Mapping[str, t.Any]]) -> t.List[str]:
    """Remove only what this collection wrote, then the directory if empty.

    Returns the entries left behind (never deleted because not ours).
    """
    listed = set(manifest.get("files", {})) if manifest else set()
    left = []
    for rel in list_entries(path):
        if rel in listed or rel == MANIFEST_NAME or is_module_extra(rel):
            os.unlink(os.path.join(path, rel))
        else:
            left.append(rel)
    if not left:
        # Remove now-empty subdirectories bottom-up, then the directory.
        for root, dirs, _files in os.walk(path, topdown=False):
            for name in dirs:
                try:
                    os.rmdir(os.path.join(root, name))
                except OSError:
                    pass
        try:
            os.rmdir(path)
        except OSError:
            left = list_entries(path) or left
    return left


def remove_temp(path: str) -> None:
    """Remove a temporary directory this run created (refuses anything else)."""
    if TEMP_MARK not in os.path.basename(path):
        raise ImagesError("refusing to remove %s: not a fleet.criu temporary directory" % path)
    shutil.rmtree(path, ignore_errors=True)


def install(tmp: str, final: str, previous: DirState) -> t.List[str]:
    """Move the finished dump in tmp to final.

    previous is final's state before the dump: absent, empty, or a complete
    dump of ours being replaced (moved aside, then only its files removed).
    Returns entries of the old dump that were left behind (should be none).
    """
    if not previous.exists:
        os.rename(tmp, final)
        fsync_dir(os.path.dirname(final))
        return []
    if previous.empty:
        os.rmdir(final)
        os.rename(tmp, final)
        fsync_dir(os.path.dirname(final))
        return []
    if previous.manifest is None or previous.foreign:
        raise ImagesError("refusing to replace %s: it holds files this module did not write" % final)
    parent, base = os.path.split(os.path.normpath(final))
    aside = tempfile.mkdtemp(prefix=".%s%s" % (base, OLD_MARK), dir=parent)
    os.rmdir(aside)
    os.rename(final, aside)
    os.rename(tmp, final)
    fsync_dir(parent)
    return remove_ours(aside, previous.manifest)


# ---------------------------------------------------------------- decisions

class Decision(t.NamedTuple):
    changed: bool
    reason: str


def dump_decision(
    manifest: t.Optional[t.Mapping[str, t.Any]],
    mode: str,
    live: t.Optional[t.Mapping[str, t.Any]],
    requested_pid: t.Optional[int] = None,
    pattern: t.Optional[str] = None,
    force: bool = False,
    current_boot_id: t.Optional[str] = None,
    unit: t.Optional[str] = None,
) -> Decision:
    """Whether a dump is needed, given a complete manifest (or None).

    live is the identity (pid, start_ticks, boot_id) of the live target, or
    None when the target does not exist (pid gone, nothing matches, the unit
    has no main process).
    """
    if manifest is None:
        return Decision(True, "no complete dump in the directory")
    if force:
        return Decision(True, "force: true")
    source = manifest.get("source", {})

    def same(identity: t.Mapping[str, t.Any]) -> bool:
        return same_identity(identity, source, current_boot_id)

    if mode in ("pid", "pidfile"):
        if requested_pid is not None and source.get("pid") != requested_pid:
            return Decision(True, "the directory holds a dump of pid %s, not %s" % (source.get("pid"), requested_pid))
        if live is None:
            return Decision(False, "pid %s is gone and the directory holds a complete dump of it" % source.get("pid"))
        if same(live):
            return Decision(False, "the directory already holds a complete dump of this very process")
        return Decision(True, "pid %s now belongs to a different process (start time differs)" % live.get("pid"))
    if mode == "unit":
        if source.get("systemd_unit") != unit:
            return Decision(True, "the directory holds a dump of %s, not of unit %s" % (
                "unit %s" % source["systemd_unit"] if source.get("systemd_unit") else "pid %s" % source.get("pid"), unit))
        if live is None:
            return Decision(False, "unit %s has no running process and the directory holds a complete dump of it" % unit)
        if same(live):
            return Decision(False, "the directory already holds a complete dump of this very process")
        return Decision(True, "unit %s's main process is not the one in the directory" % unit)
    if mode == "match":
        if live is None:
            if pattern is not None and re.search(pattern, source.get("cmdline", "")):
                return Decision(False, "nothing matches any more and the directory holds a complete dump of %r" % (
                    source.get("cmdline"),))
            return Decision(True, "the directory's dump does not match the pattern")
        if same(live):
            return Decision(False, "the directory already holds a complete dump of this very process")
        return Decision(True, "the matching process is not the one in the directory")
    raise ValueError("unknown target mode %r" % (mode,))


def compatibility(
    manifest: t.Mapping[str, t.Any],
    host_version: t.Optional[t.Tuple[int, ...]],
    host_arch: str,
    host_kernel: str,
) -> t.Tuple[t.List[str], t.List[str]]:
    """(blockers, warnings) for restoring manifest's images on this host."""
    blockers: t.List[str] = []
    warnings: t.List[str] = []
    image_version_text = manifest.get("criu", {}).get("version")
    image_version = parse_version(image_version_text)
    if host_version is None:
        blockers.append("criu is not installed on this host")
    elif image_version is not None and compare(image_version, host_version) > 0:
        blockers.append("the images were made by criu %s, newer than this host's criu %s" % (
            image_version_text, ".".join(str(p) for p in host_version)))
    image_arch = manifest.get("kernel", {}).get("arch")
    if image_arch and image_arch != host_arch:
        blockers.append("the images are for arch %s, this host is %s" % (image_arch, host_arch))
    image_kernel = manifest.get("kernel", {}).get("release")
    if image_kernel and kernel_family(image_kernel) != kernel_family(host_kernel):
        warnings.append("the images were made on kernel %s, this host runs %s (different major.minor: "
                        "restore may fail on missing kernel features)" % (image_kernel, host_kernel))
    return blockers, warnings


def restore_decision(
    record: t.Optional[t.Mapping[str, t.Any]],
    manifest: t.Mapping[str, t.Any],
    live: t.Optional[t.Mapping[str, t.Any]],
) -> Decision:
    """Whether a restore is needed: no if the recorded restore of this very image still runs.

    live is the identity of the process now at the recorded pid (or None).
    """
    if not record:
        return Decision(True, "no earlier restore recorded")
    if record.get("image_id") != manifest.get("image_id"):
        return Decision(True, "the recorded restore is of another image")
    if live is None:
        return Decision(True, "the process restored earlier (pid %s) is gone" % record.get("pid"))
    if same_identity(live, record):
        return Decision(False, "the process restored from this image (pid %s) is still running" % record.get("pid"))
    return Decision(True, "pid %s now belongs to another process" % record.get("pid"))


def free_bytes(path: str) -> t.Tuple[str, int]:
    """(the existing directory measured, bytes free to root there) for path or its nearest existing ancestor."""
    probe = os.path.abspath(path)
    while not os.path.isdir(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    info = os.statvfs(probe)
    return probe, info.f_bavail * info.f_frsize


def space_problem(host: str, path: str, need: int) -> t.Optional[str]:
    """Why path's file system cannot take need bytes of images, or None (checked before any freeze)."""
    where, have = free_bytes(path)
    if have >= need:
        return None
    return ("not enough free space on %s for the images: %s (the file system holding %s) has %s free, the images "
            "need about %s (the process tree's memory plus 10%% and 16 MiB)"
            % (host, where, path, human(have), human(need)))


def human(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(size) < 1024 or unit == "GiB":
            return "%.1f %s" % (size, unit) if unit != "B" else "%d B" % size
        size /= 1024.0
    return "%d B" % size  # pragma: no cover


DUMP_FINISHED = "Dumping finished successfully"


def sweep(images_dir: str, min_age_s: float = 3600.0, now: t.Optional[float] = None) -> t.Tuple[t.List[str], t.List[str]]:
    """Clear what interrupted runs left beside images_dir; returns (removed, kept).

    - ``.<name>.fleet-criu-old-*``: an earlier dump moved aside when a newer one replaced
      it (the run stopped before removing it): its listed files are removed.
    - ``.<name>.fleet-criu-tmp-*`` older than min_age_s: a dump that never finished is
      removed; one whose criu log says the dump finished is KEPT (criu ended the process
      after it: those images may be its only copy) and reported.
    Lock files stay: removing one that another run holds would break its lock.
    """
    parent, base = os.path.split(os.path.normpath(images_dir))
    removed: t.List[str] = []
    kept: t.List[str] = []
    now = time.time() if now is None else now
    try:
        names = os.listdir(parent)
    except OSError:
        return removed, kept
    for name in sorted(names):
        path = os.path.join(parent, name)
        if not os.path.isdir(path) or os.path.islink(path):
            continue
        if name.startswith(".%s%s" % (base, OLD_MARK)):
            # Our own dump, moved aside whole: its manifest lists what to remove.
            if not remove_ours(path, read_json(os.path.join(path, MANIFEST_NAME))):
                removed.append(path)
            else:
                kept.append(path)
        elif name.startswith(".%s%s" % (base, TEMP_MARK)):
            if now - os.lstat(path).st_mtime < min_age_s:
                continue
            log = os.path.join(path, DUMP_LOG)
            finished = False
            try:
                with open(log, "rb") as handle:
                    finished = DUMP_FINISHED.encode() in handle.read()
            except OSError:
                finished = False
            if finished:
                kept.append(path)
            else:
                remove_temp(path)
                removed.append(path)
    return removed, kept
