# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Every option the modules share, declared once (private).

One ``Option`` names an option's argspec entry, its documentation, the criu flag
it becomes, the modules that take it and the playbook variable that sets it.
Everything else follows from this table:

- the modules' argument specs (``argument_spec(module)``);
- the flag table that turns options into a criu argv (``flag_table()``, used by
  ``_runner``) and the extra_args a module refuses because it manages them;
- the documentation: ``plugins/doc_fragments/criu.py`` renders ``doc_fragment(module)``;
- the playbooks: the lookup ``fleet.criu.playbook_options`` turns the playbook
  variables named here into ``module_defaults``, so a playbook never repeats an
  option or its default (the module's default applies when a variable is unset).

Options that only one module has and that criu never sees (``step`` of
fleet.criu.migration, ``features`` of fleet.criu.host_info, ...) stay in that
module's own argument spec and documentation.
"""

from __future__ import annotations

import typing as t

from ansible_collections.fleet.criu.plugins.module_utils._version import DEFAULT_FLOOR

DUMP = "dump"
RESTORE = "restore"
MIGRATION = "migration"
HOST_INFO = "host_info"
IMAGE_INFO = "image_info"
PRUNE = "prune"
# The modules of the action group fleet.criu.criu (every one takes criu_path).
ALL_MODULES = (HOST_INFO, IMAGE_INFO, DUMP, RESTORE, MIGRATION)
# Every module the table declares options for, in documentation order.
MODULES = ALL_MODULES + (PRUNE,)

DEFAULT_IMAGES_ROOT = "/var/lib/fleet-criu/images"
MANAGE_CGROUPS_MODES = ["none", "props", "soft", "full", "strict", "ignore"]
NETWORK_LOCK_METHODS = ["iptables", "nftables", "skip"]
LOG_LEVELS = [0, 1, 2, 3, 4]

# The playbooks that expose criu options, and the modules each one runs.
PLAYBOOK_MODULES: t.Dict[str, t.Tuple[str, ...]] = {
    "checkpoint": (DUMP,),
    "restore": (RESTORE,),
    "upgrade": (DUMP, RESTORE),
    "migrate": (MIGRATION,),
    "cleanup": (PRUNE,),
    "group_checkpoint": (DUMP,),
    "group_restore": (RESTORE,),
}
_DUMPING = ("checkpoint", "upgrade", "migrate", "group_checkpoint")
_RESTORING = ("restore", "upgrade", "migrate", "group_restore")
_ALL_PLAYBOOKS = tuple(PLAYBOOK_MODULES)


class Option(t.NamedTuple):
    """One option. ``spec`` is its argspec entry; ``doc`` its description lines.

    flag/kind/actions: how it reaches criu (kind: bool = flag when true, value = flag
    and value as two argv items, joined = "flag=value", list = flag once per item).
    short: criu's one-letter spelling of the flag (refused in extra_args too).
    playbooks/var: the playbooks that expose it and the variable's name there.
    """

    name: str
    modules: t.Tuple[str, ...]
    spec: t.Dict[str, t.Any]
    doc: t.Tuple[str, ...]
    flag: t.Optional[str] = None
    kind: t.Optional[str] = None
    actions: t.Tuple[str, ...] = ()
    short: t.Optional[str] = None
    playbooks: t.Tuple[str, ...] = ()
    var: t.Optional[str] = None
    suboptions: t.Optional[t.Dict[str, t.Dict[str, t.Any]]] = None


def _bool(default: bool = False) -> t.Dict[str, t.Any]:
    return {"type": "bool", "default": default}


OPTIONS: t.Tuple[Option, ...] = (
    # ------------------------------------------------------------ shared by the modules that run criu
    Option(
        "criu_path", ALL_MODULES, {"type": "path"},
        ("Path of the C(criu) binary.",
         "When not set, C(criu) is looked up in E(PATH) plus C(/usr/local/sbin), C(/usr/sbin) and C(/sbin) "
         "(Ansible often runs modules with a E(PATH) that lacks the C(sbin) directories where distributions "
         "put C(criu)).",
         "Set it for every module at once with C(module_defaults) and the group C(group/fleet.criu.criu)."),
    ),
    Option(
        "min_version", (DUMP, RESTORE, MIGRATION), {"type": "str", "default": DEFAULT_FLOOR},
        ("The lowest acceptable criu version. Below it the module refuses before touching any process.",
         "The default is the release that fixed re-dumping a restored shell job "
         "(C(Can't lookup mount=N for fd=0 path=/dev/pts/0))."),
    ),
    Option(
        "run_check", (DUMP, RESTORE), _bool(True),
        ("Run C(criu check) first (read-only, a few milliseconds) and refuse, before touching any process, "
         "when it fails. A criu that meets O(min_version) can still be unusable on a newer kernel.",),
    ),
    Option(
        "images_dir", (DUMP, RESTORE), {"type": "path", "required": True},
        ("Absolute path of the images directory (one dump; the playbooks put it at "
         "C(<images_root>/<run_id>/<host>)).",
         "The module owns the directory's content through its manifest C(fleet-criu-manifest.json); "
         "a directory holding anything else is refused, and nothing in it is ever deleted."),
    ),
    Option(
        "namespaced", (DUMP, RESTORE, MIGRATION), _bool(),
        ("Run criu through C(criu-ns) (shipped with C(python3-pycriu) on Debian and Ubuntu).",
         "On dump, C(criu-ns) enters the target's PID and mount namespaces, so a process restored "
         "with O(namespaced=true) can be dumped again by its host PID.",
         "On restore, C(criu-ns) restores into a new PID namespace, so the image's PIDs need not be free on "
         "the host."),
        playbooks=_ALL_PLAYBOOKS,
    ),
    Option(
        "extra_args", (DUMP, RESTORE), {"type": "list", "elements": "str", "default": []},
        ("Extra arguments appended to the criu command line as they are, one list item per argument.",
         "An escape hatch for criu options this module does not model. Never passed through a shell.",
         "Options the module manages are refused before anything runs, in every spelling criu accepts "
         "(C(--name), C(--name=value), abbreviations, C(-t1), clusters such as C(-jt1)), because criu takes the "
         "last value given and would override the module's own, which bypasses its checks. Refused are "
         "C(-t)/C(--tree), C(-D)/C(--images-dir), C(-W)/C(--work-dir), C(-o)/C(--log-file), C(--log-pid), "
         "C(-v)/C(--verbosity), C(--display-stats), C(--pidfile), C(--action-script), C(--exec-cmd), C(--), "
         "C(--config), C(--stream), C(--criu-binary), C(-V), C(-h), C(-s)/C(--leave-stopped), and every criu "
         "option that has a module option of its own (the message names it), such as C(--root), "
         "C(--shell-job), C(--lazy-pages), C(--page-server), C(--address), C(--port), C(--external) and "
         "C(--restore-detached).",
         "Pre-copy options C(--track-mem) and C(--prev-images-dir) stay allowed.",
         "The playbooks set it from C(dump_extra_args) and C(restore_extra_args)."),
        playbooks=_ALL_PLAYBOOKS,
    ),
    Option(
        "log_level", (DUMP, RESTORE), {"type": "int", "choices": LOG_LEVELS, "default": 4},
        ("CRIU log verbosity (C(-vN)), 0 (errors only) to 4 (debug).",),
    ),
    Option(
        "lock_timeout", (DUMP, RESTORE), {"type": "int", "default": 30},
        ("Seconds to wait for the lock on the images directory (C(<parent>/.<basename>.lock)) "
         "held by another fleet.criu operation.",),
    ),
    # ------------------------------------------------------------ which process (dump, migration)
    Option(
        "pid", (DUMP, MIGRATION), {"type": "int"},
        ("PID (as seen from the host) of the root of the process tree.",
         "Exactly one of O(pid), O(pidfile), O(pid_match) and O(systemd_unit)."),
        playbooks=_DUMPING,
    ),
    Option(
        "pidfile", (DUMP, MIGRATION), {"type": "path"},
        ("File holding the PID of the tree's root. It must be owned by root (or the module's user), "
         "not writable by group or others, and hold ASCII digits only.",
         "Exactly one of O(pid), O(pidfile), O(pid_match) and O(systemd_unit)."),
        playbooks=_DUMPING,
    ),
    Option(
        "pid_match", (DUMP, MIGRATION), {"type": "str", "aliases": ["match"]},
        ("Python regular expression searched (C(re.search)) in each process's command line, "
         "its arguments joined by spaces.",
         "The module's own process and its ancestors never match. Among the matches, the tree roots "
         "are those whose parent is not a match; exactly one root is required, otherwise the module "
         "fails listing what matched.",
         "Exactly one of O(pid), O(pidfile), O(pid_match) and O(systemd_unit). The alias C(match) is the name "
         "before 0.3.0."),
        playbooks=_DUMPING,
    ),
    Option(
        "systemd_unit", (DUMP, MIGRATION), {"type": "str"},
        ("A systemd service (full name, such as C(myjob.service)) whose main process (C(MainPID)) is the root of "
         "the tree. The unit must be active, its standard streams must not be sockets (C(StandardOutput=journal), "
         "the default, is one: send the output to a file or to null), and its cgroup must hold no process outside "
         "the tree; otherwise the module refuses before freezing anything.",
         "Right before the freeze the unit is held (runtime drop-in "
         "C(/run/systemd/system/<unit>.d/50-fleet-criu-hold.conf), C(Restart=no), C(systemctl daemon-reload)) so "
         "that systemd does not start a second copy when criu ends the process. After the dump the unit is "
         "C(systemctl reset-failed) (it reads C(inactive), not C(failed)) and the hold is removed. If the dump fails, the "
         "hold is removed at once and the unit runs on with the same C(MainPID).",
         "The images record the unit. The restore (also M(fleet.criu.restore), and a rollback) runs criu with "
         "C(--manage-cgroups=ignore) and adopts the restored PIDs into a transient scope "
         "C(fleet-criu-<unit name without .service>.scope) whose description names the unit, the source host and "
         "the images. A restore is refused where the unit itself is active (that would be two copies) or where "
         "systemd is not the init.",
         "Not supported with O(fleet.criu.dump#module:leave_running=true) or lazy pages "
         "(O(fleet.criu.dump#module:lazy_pages=true), O(fleet.criu.migration#module:lazy_pages=true)).",
         "Exactly one of O(pid), O(pidfile), O(pid_match) and O(systemd_unit)."),
        playbooks=_DUMPING,
    ),
    Option(
        "systemd_hold", (DUMP,), {"type": "str", "choices": ["dump", "restore"], "default": "dump"},
        ("With O(systemd_unit), how long the unit stays held. The hold drop-in also carries "
         "C(ConditionPathExists=!<itself>), so systemd does not start the unit (by hand, from a package's "
         "maintainer script, at boot) while it exists.",
         "C(dump): a runtime drop-in under C(/run/systemd/system), removed right after the dump (the process "
         "may be restored elsewhere).",
         "C(restore): a drop-in under C(/etc/systemd/system) that survives a reboot and stays after the dump "
         "(the unit reads C(inactive), and an enabled unit is skipped at boot); the restore of these images on "
         "this host removes it once the restored process runs under its scope. The playbook fleet.criu.upgrade "
         "uses it.",),
    ),
    # ------------------------------------------------------------ criu flags, in the order they go on the command line
    Option(
        "leave_running", (DUMP,), _bool(),
        ("Leave the process running after the dump (C(--leave-running)). By default criu kills it.",),
        flag="--leave-running", kind="bool", actions=(DUMP,), short="R", playbooks=("checkpoint", "group_checkpoint"),
    ),
    Option(
        "shell_job", (DUMP, RESTORE, MIGRATION), _bool(),
        ("The tree is a shell job attached to a terminal (C(--shell-job)). A restore puts it on a fresh pty "
         "held by a background holder (see the notes of M(fleet.criu.restore))."),
        flag="--shell-job", kind="bool", actions=(DUMP, RESTORE), short="j", playbooks=_ALL_PLAYBOOKS,
    ),
    Option(
        "tcp_established", (DUMP, RESTORE, MIGRATION), _bool(),
        ("Checkpoint and restore established TCP connections (C(--tcp-established)). A restore needs a dump "
         "made with it.",),
        flag="--tcp-established", kind="bool", actions=(DUMP, RESTORE), playbooks=_ALL_PLAYBOOKS,
    ),
    Option(
        "file_locks", (DUMP, RESTORE, MIGRATION), _bool(),
        ("Checkpoint and restore file locks (C(--file-locks)). A restore needs a dump made with it.",),
        flag="--file-locks", kind="bool", actions=(DUMP, RESTORE), short="l", playbooks=_ALL_PLAYBOOKS,
    ),
    Option(
        "ext_unix_sk", (DUMP, RESTORE), _bool(),
        ("Allow unix sockets connected outside the tree (C(--ext-unix-sk)). A restore needs a dump made "
         "with it.",),
        flag="--ext-unix-sk", kind="bool", actions=(DUMP, RESTORE), short="x",
    ),
    Option(
        "link_remap", (DUMP,), _bool(),
        ("Allow criu to link unlinked files back (C(--link-remap)).",),
        flag="--link-remap", kind="bool", actions=(DUMP,),
    ),
    Option(
        "lazy_pages", (DUMP, RESTORE), _bool(),
        ("Post-copy migration (C(--lazy-pages)): memory pages are not in O(images_dir) but served by the "
         "dumping criu's page server (O(page_server)) and fetched by the restoring host as they are touched.",
         "On dump, criu leaves the pages out of the images and serves them itself; the module starts that criu "
         "in the background (a session of its own) and returns once criu has written every non-memory image and "
         "its page server listens (RV(fleet.criu.dump#module:lazy_pages_server)). The tree stays frozen until "
         "the restoring side has fetched all pages; then criu kills it and exits. If the transfer fails, criu "
         "unfreezes the tree instead. The manifest records C(lazy_pages) and lists only the files present when it "
         "is written (not C(dump.log), C(dump.out) and C(stats-dump), which criu goes on writing). These images "
         "cannot be restored again once the dump has exited. criu's page server needs 4 MiB pipes: without "
         "C(CAP_SYS_RESOURCE) the module refuses (before freezing anything) when C(fs.pipe-max-size) is smaller.",
         "On restore, the module first starts C(criu lazy-pages --page-server) in the background (it fetches the "
         "pages and exits once all are here, RV(fleet.criu.restore#module:lazy_pages_daemon_pid)), then "
         "C(criu restore --lazy-pages). Lazy images are refused without it. Not supported with "
         "O(shell_job=true) or O(namespaced=true) on restore.",
         "Needs userfaultfd on the restoring host (M(fleet.criu.host_info) feature C(uffd_noncoop))."),
        flag="--lazy-pages", kind="bool", actions=(DUMP, RESTORE),
    ),
    Option(
        "restore_sibling", (RESTORE,), _bool(),
        ("Restore the root task as a sibling of criu (C(--restore-sibling)). Not supported with "
         "O(namespaced=true).",),
        flag="--restore-sibling", kind="bool", actions=(RESTORE,), short="S",
    ),
    Option(
        "detached", (RESTORE,), _bool(True),
        ("C(true) runs C(criu restore --restore-detached); criu exits once the tree runs, and the tree is "
         "re-parented to init (or the nearest subreaper).",
         "C(false) starts criu in the background in a session of its own, without C(--restore-detached); "
         "criu stays the parent of the restored tree until it exits; the module returns once the tree runs.",
         "O(shell_job=true) and O(namespaced=true) always behave as C(false) (see the notes)."),
        flag="--restore-detached", kind="bool", actions=(RESTORE,), short="d",
    ),
    Option(
        "manage_cgroups", (DUMP, RESTORE), {"type": "str", "choices": MANAGE_CGROUPS_MODES},
        ("How criu handles the tree's cgroups (C(--manage-cgroups=MODE)). Unset leaves criu's default.",),
        flag="--manage-cgroups", kind="joined", actions=(DUMP, RESTORE),
    ),
    Option(
        "network_lock", (DUMP,), {"type": "str", "choices": NETWORK_LOCK_METHODS},
        ("How criu locks the network during the dump (C(--network-lock METHOD)).",),
        flag="--network-lock", kind="value", actions=(DUMP, RESTORE),
    ),
    Option(
        "ghost_limit", (DUMP,), {"type": "str"},
        ("Largest deleted-but-open file to carry in the images (C(--ghost-limit)), bytes with an optional "
         "C(K), C(M) or C(G) suffix.",),
        flag="--ghost-limit", kind="value", actions=(DUMP,),
    ),
    Option(
        "timeout", (DUMP,), {"type": "int"},
        ("Seconds criu may spend collecting (freezing) the tasks (C(--timeout)).",),
        flag="--timeout", kind="value", actions=(DUMP,),
    ),
    Option(
        "root", (RESTORE,), {"type": "path"},
        ("Root file system to restore into (C(--root)), for trees dumped in a mount namespace.",),
        flag="--root", kind="value", actions=(RESTORE,), short="r",
    ),
    Option(
        "external", (DUMP, RESTORE), {"type": "list", "elements": "str", "default": []},
        ("External resources, each passed as C(--external ITEM) (for example C(tty[88:1]), C(mnt[/data]:data), "
         "C(veth[eth0]:veth101@br0)).",),
        flag="--external", kind="list", actions=(DUMP, RESTORE),
    ),
    Option(
        "inherit_fd", (RESTORE,), {"type": "list", "elements": "str", "default": []},
        ("File descriptors the tree inherits, each passed as C(--inherit-fd ITEM) (for example "
         "C(fd[1]:pipe:[12345])).",),
        flag="--inherit-fd", kind="list", actions=(RESTORE,),
    ),
    # ------------------------------------------------------------ the rest, per module
    Option(
        "force", (DUMP,), _bool(),
        ("Dump even when O(images_dir) already holds a complete dump of the same process.",),
    ),
    Option(
        "lazy_ready_timeout", (DUMP,), {"type": "int", "default": 120},
        ("With O(lazy_pages=true), seconds to wait for the background criu dump to serve pages. "
         "On timeout that criu is stopped and the module fails.",),
    ),
    Option(
        "page_server", (DUMP,),
        {"type": "dict", "options": {"address": {"type": "str"}, "port": {"type": "int", "required": True}}},
        ("Address and port for O(lazy_pages) (C(--address), C(--port)); without O(lazy_pages), the dump "
         "sends its pages to a C(criu page-server) listening there (C(--page-server)) and the local images "
         "hold no memory pages.",),
        suboptions={
            "address": {"description": ["Address to listen on (lazy pages) or connect to (page server).",
                                        "criu itself takes IP addresses only; with O(lazy_pages=true) a host "
                                        "name is resolved here first (IPv4 preferred)."]},
            "port": {"description": ["TCP port."]},
        },
    ),
    Option(
        "lazy_ready_timeout", (RESTORE,), {"type": "int", "default": 30},
        ("With O(lazy_pages=true), seconds to wait for C(criu lazy-pages) to be ready.",),
    ),
    Option(
        "page_server", (RESTORE,),
        {"type": "dict", "options": {"address": {"type": "str", "required": True},
                                     "port": {"type": "int", "required": True}}},
        ("With O(lazy_pages=true), where the source's lazy dump serves the pages.",),
        suboptions={
            "address": {"description": ["Address (or host name) of the source's page server."]},
            "port": {"description": ["Its TCP port."]},
        },
    ),
    Option(
        "write_pidfile", (RESTORE,), {"type": "path", "aliases": ["pidfile"]},
        ("Also write the restored root's PID (as seen from the host) to this file (mode 0600).",
         "The module itself always has criu write C(restore.pid) in O(images_dir).",
         "The alias C(pidfile) is the name before 0.3.0 (on M(fleet.criu.dump), O(fleet.criu.dump#module:pidfile) "
         "is a file to read the PID from)."),
    ),
    Option(
        "pid_wait_timeout", (RESTORE, MIGRATION), {"type": "int", "default": 10},
        ("Seconds to wait for the image's PIDs to be free on the restoring host (a just-dumped task may not be "
         "reaped yet). Ignored with O(namespaced=true).",),
        playbooks=_RESTORING,
    ),
    Option(
        "restore_timeout", (RESTORE,), {"type": "int", "default": 60},
        ("When criu runs in the background (O(detached=false), O(shell_job=true) or O(namespaced=true)), "
         "seconds to wait for the restored tree to appear.",),
    ),
    Option(
        "verify_checksums", (RESTORE,), _bool(True),
        ("Verify every image file's sha256 against the manifest (sizes are always checked).",),
    ),
    Option(
        "images_root", (MIGRATION, PRUNE), {"type": "path", "default": DEFAULT_IMAGES_ROOT},
        ("The parent of every run's images (C(<images_root>/<run_id>/<host>), the playbooks' layout).",
         "M(fleet.criu.migration) uses it in its C(check_source) step; M(fleet.criu.prune) removes images below it."),
        playbooks=("cleanup",),
    ),
    Option(
        "older_than_days", (PRUNE,), {"type": "float", "default": 7},
        ("Keep images younger than this many days (by the manifest's creation time). C(0) ignores age.",),
        playbooks=("cleanup",),
    ),
    Option(
        "keep_runs", (PRUNE,), {"type": "int", "default": 1},
        ("Always keep the newest this many runs, whatever their age. C(0) keeps none for that reason.",),
        playbooks=("cleanup",),
    ),
    Option(
        "unrestored", (PRUNE,), _bool(),
        ("Also remove dumps that were never restored from their directory and were made without "
         "C(leave_running).",
         "Those may be the only copy of a process (criu ended it when it dumped it); leave it C(false) unless you "
         "know they are not."),
        playbooks=("cleanup",),
    ),
    Option(
        "journal_dir", (MIGRATION,), {"type": "path", "default": "/var/lib/fleet-criu/journal"},
        ("Root-only directory of this host's migration journals.",),
        playbooks=("migrate",),
    ),
    Option(
        "receive_timeout", (MIGRATION,), {"type": "int", "default": 300},
        ("Seconds the receiver waits for the source to connect.",),
        playbooks=("migrate",),
    ),
    Option(
        "page_server_address", (MIGRATION,), {"type": "str"},
        ("With O(lazy_pages=true), the address the target fetches pages from; by default the address the "
         "source's connection came from. On the source, the address its page server listens on (all by default).",),
        playbooks=("migrate",),
    ),
    Option(
        "page_server_port", (MIGRATION,), {"type": "int", "default": 27027},
        ("With O(lazy_pages=true), the page server's TCP port.",),
        playbooks=("migrate",),
    ),
    Option(
        "lazy_pages_timeout", (MIGRATION,), {"type": "int", "default": 600},
        ("With O(lazy_pages=true), seconds C(send) waits for every page to move.",),
        playbooks=("migrate",),
    ),
    Option(
        "source_images", (MIGRATION,), {"type": "str", "choices": ["delete", "keep"], "default": "delete"},
        ("With O(step=finish) on the source, whether to C(delete) or C(keep) the source's images once the "
         "target runs the process.",),
        playbooks=("migrate",),
    ),
    Option(
        "dump_extra_args", (MIGRATION,), {"type": "list", "elements": "str", "default": []},
        ("Extra criu dump arguments (see O(fleet.criu.dump#module:extra_args), which refuses the same options).",),
        playbooks=("migrate",),
    ),
    Option(
        "restore_extra_args", (MIGRATION,), {"type": "list", "elements": "str", "default": []},
        ("Extra criu restore arguments (see O(fleet.criu.restore#module:extra_args)).",),
        playbooks=("migrate",),
    ),
)

# Options without a flag of their own that still shape what criu writes.
_SHAPING = ("page_server", "namespaced", "extra_args", "log_level")

# The playbook variable of an option whose name in the playbooks differs, per module.
_PLAYBOOK_VARS: t.Dict[t.Tuple[str, str], str] = {
    (DUMP, "extra_args"): "dump_extra_args",
    (RESTORE, "extra_args"): "restore_extra_args",
}


def options_of(module: str) -> t.List[Option]:
    """The table's options of one module, in table order (at most one per name)."""
    found: t.Dict[str, Option] = {}
    for option in OPTIONS:
        if module in option.modules:
            if option.name in found:  # pragma: no cover - the table is static; tests check it
                raise ValueError("option %s declared twice for %s" % (option.name, module))
            found[option.name] = option
    return list(found.values())


def _copy_spec(spec: t.Mapping[str, t.Any]) -> t.Dict[str, t.Any]:
    out: t.Dict[str, t.Any] = {}
    for key, value in spec.items():
        if isinstance(value, dict):
            out[key] = {k: _copy_spec(v) if isinstance(v, dict) else v for k, v in value.items()}
        elif isinstance(value, list):
            out[key] = list(value)
        else:
            out[key] = value
    return out


def argument_spec(module: str, **own: t.Any) -> t.Dict[str, t.Any]:
    """The module's argument spec: the table's options of ``module``, then its own."""
    spec = {option.name: _copy_spec(option.spec) for option in options_of(module)}
    clash = set(spec) & set(own)
    if clash:  # pragma: no cover - programming error
        raise ValueError("%s declares %s again; it is in _options" % (module, ", ".join(sorted(clash))))
    spec.update(own)
    return spec


def defaults(module: str) -> t.Dict[str, t.Any]:
    """Each table option of ``module`` with its default (None when it has none)."""
    return {option.name: _copy_spec({"d": option.spec.get("default")})["d"] for option in options_of(module)}


def recorded(module: str) -> t.List[str]:
    """The options of ``module`` that shape the images (every criu flag, and a few more): the manifest records them."""
    return [option.name for option in options_of(module) if option.flag or option.name in _SHAPING]


def carry(params: t.Mapping[str, t.Any], source: str, target: str) -> t.Dict[str, t.Any]:
    """The values of the options ``source`` and ``target`` both have, to run ``target``'s code for ``source``."""
    names = {option.name for option in options_of(target)}
    return {option.name: params.get(option.name) for option in options_of(source) if option.name in names}


def flag_table() -> t.Dict[str, t.Dict[str, t.Any]]:
    """option name -> {kind, flag, actions} for every option that becomes a criu flag, in table order."""
    table: t.Dict[str, t.Dict[str, t.Any]] = {}
    for option in OPTIONS:
        if option.flag and option.name not in table:
            table[option.name] = {"kind": option.kind, "flag": option.flag, "actions": option.actions}
    return table


def managed_flags() -> t.Dict[str, t.Tuple[t.Optional[str], str]]:
    """criu long option (no dashes) -> (short letter, what to use instead), for flags the table owns."""
    out: t.Dict[str, t.Tuple[t.Optional[str], str]] = {}
    for option in OPTIONS:
        if option.flag:
            out.setdefault(option.flag[2:], (option.short, "use %s" % option.name))
    return out


def option_for_flag(flag: str) -> t.Optional[str]:
    """The module option that sets a criu flag (``--tcp-established`` -> ``tcp_established``)."""
    for option in OPTIONS:
        if option.flag == flag:
            return option.name
    return None


def playbook_var(module: str, option: Option) -> str:
    return _PLAYBOOK_VARS.get((module, option.name), option.name)


def playbook_options(playbook: str, module: str) -> t.List[t.Tuple[str, Option]]:
    """(playbook variable, option) for every option ``playbook`` exposes to ``module``."""
    if playbook not in PLAYBOOK_MODULES or module not in PLAYBOOK_MODULES[playbook]:
        raise ValueError("playbook %r does not run fleet.criu.%s (it runs %s)" % (
            playbook, module, ", ".join(PLAYBOOK_MODULES.get(playbook, ())) or "no fleet.criu module"))
    return [(playbook_var(module, option), option) for option in options_of(module) if playbook in option.playbooks]


def playbook_argument_spec(playbook: str) -> t.Dict[str, t.Dict[str, t.Any]]:
    """The validate_argument_spec entries of the criu options ``playbook`` exposes (defaults are the modules')."""
    spec: t.Dict[str, t.Dict[str, t.Any]] = {}
    for module in PLAYBOOK_MODULES[playbook]:
        for var, option in playbook_options(playbook, module):
            entry = {k: v for k, v in _copy_spec(option.spec).items() if k not in ("aliases", "required")}
            entry["description"] = " ".join(option.doc)
            spec.setdefault(var, entry)
    return spec


def _doc_entry(option: Option) -> t.Dict[str, t.Any]:
    entry: t.Dict[str, t.Any] = {"description": list(option.doc)}
    for key in ("type", "elements", "choices", "default", "required", "aliases"):
        if key in option.spec:
            entry[key] = option.spec[key]
    if option.spec.get("options"):
        entry["suboptions"] = {}
        for sub, sub_spec in option.spec["options"].items():
            sub_doc = dict((option.suboptions or {}).get(sub, {}))
            sub_doc.update({k: v for k, v in sub_spec.items() if k in ("type", "required", "default", "choices")})
            entry["suboptions"][sub] = sub_doc
    return entry


def fragment_name(modules: t.Sequence[str]) -> str:
    """The doc fragment attribute that documents the options of exactly these modules."""
    if set(modules) >= set(ALL_MODULES):
        return "DOCUMENTATION"
    return "_".join(module for module in MODULES if module in modules).upper()


def fragments() -> t.Dict[str, t.Dict[str, t.Any]]:
    """Fragment attribute -> its documentation: one fragment per set of modules, each option in one.

    A module extends ``fleet.criu.criu.<name>`` for every fragment whose set holds it
    (``fragments_of``), so no option is written out twice.
    """
    out: t.Dict[str, t.Dict[str, t.Any]] = {}
    for option in OPTIONS:
        name = fragment_name(option.modules)
        out.setdefault(name, {"options": {}})["options"][option.name] = _doc_entry(option)
    return out


def fragments_of(module: str) -> t.List[str]:
    """The doc fragments (``fleet.criu.criu`` or ``fleet.criu.criu.<lower name>``) ``module`` extends."""
    names = []
    for option in OPTIONS:
        if module in option.modules:
            name = fragment_name(option.modules)
            ref = "fleet.criu.criu" if name == "DOCUMENTATION" else "fleet.criu.criu." + name.lower()
            if ref not in names:
                names.append(ref)
    return names


def doc_data(module: t.Optional[str] = None) -> t.Dict[str, t.Any]:
    """All the documented options of ``module`` (None: the options every module has), merged."""
    if module is None:
        chosen = [option for option in OPTIONS if set(option.modules) >= set(ALL_MODULES)]
    else:
        chosen = options_of(module)
    return {"options": {option.name: _doc_entry(option) for option in chosen}}
