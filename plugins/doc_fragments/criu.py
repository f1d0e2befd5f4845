# -*- coding: utf-8 -*-
# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:

    # Options every module of the collection has.
    DOCUMENTATION = r"""
options:
  criu_path:
    description:
      - Path of the C(criu) binary.
      - When not set, C(criu) is looked up in E(PATH) plus C(/usr/local/sbin), C(/usr/sbin) and C(/sbin)
        (Ansible often runs modules with a E(PATH) that lacks the C(sbin) directories where distributions put C(criu)).
    type: path
"""

    # Options shared by the modules that run criu dump or criu restore.
    ACTION = r"""
options:
  images_dir:
    description:
      - Absolute path of the images directory.
      - The module owns the directory's content through its manifest C(fleet-criu-manifest.json);
        a directory holding anything else is refused, and nothing in it is ever deleted.
    type: path
    required: true
  namespaced:
    description:
      - Run criu through C(criu-ns) (shipped with C(python3-pycriu) on Debian and Ubuntu).
      - On dump, C(criu-ns) enters the target's PID and mount namespaces, so a process restored
        with O(namespaced=true) can be dumped again by its host PID.
      - On restore, C(criu-ns) restores into a new PID namespace, so the image's PIDs need not be free on the host.
    type: bool
    default: false
  extra_args:
    description:
      - Extra arguments appended to the criu command line as they are, one list item per argument.
      - An escape hatch for criu options this module does not model. Never passed through a shell.
      - Options the module manages are refused before anything runs, in every spelling criu accepts
        (C(--name), C(--name=value), abbreviations, C(-t1), clusters such as C(-jt1)), because criu takes the last
        value given and would override the module's own, which bypasses its checks. Refused are C(-t)/C(--tree),
        C(-D)/C(--images-dir), C(-W)/C(--work-dir), C(-o)/C(--log-file), C(--log-pid), C(-v)/C(--verbosity),
        C(--display-stats), C(--pidfile), C(--action-script), C(--exec-cmd), C(--), C(--config), C(--stream),
        C(--criu-binary), C(-V), C(-h), C(-s)/C(--leave-stopped), and every criu option that has a module option
        of its own (the message names it), such as C(--root), C(--shell-job), C(--lazy-pages), C(--page-server),
        C(--address), C(--port), C(--external) and C(--restore-detached).
      - Pre-copy options C(--track-mem) and C(--prev-images-dir) stay allowed.
    type: list
    elements: str
    default: []
  log_level:
    description:
      - CRIU log verbosity (C(-vN)), 0 (errors only) to 4 (debug).
    type: int
    choices: [0, 1, 2, 3, 4]
    default: 4
  min_version:
    description:
      - The lowest acceptable criu version. Below it the module refuses before touching any process.
      - The default is the release that fixed re-dumping a restored shell job
        (C(Can't lookup mount=N for fd=0 path=/dev/pts/0)).
    type: str
    default: "3.18"
  lock_timeout:
    description:
      - Seconds to wait for the lock on the images directory (C(<parent>/.<basename>.lock))
        held by another fleet.criu operation.
    type: int
    default: 30
  run_check:
    description:
      - Run C(criu check) first (read-only, a few milliseconds) and refuse, before touching any process,
        when it fails. A criu that meets O(min_version) can still be unusable on a newer kernel.
    type: bool
    default: true
"""

    ATTRIBUTES = r"""
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
  idempotent:
    description:
      - When run twice in a row with the same arguments, the second run reports no change.
    support: full
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
"""
