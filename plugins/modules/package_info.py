#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: package_info
short_description: Report which versions of a package apt offers, and which one to install
version_added: 0.1.0
description:
  - Reports what apt knows about one package (C(criu) by default) - the installed version, the candidate
    after the host's pins, every version an archive offers with the archives offering it, highest first - and
    RV(pick), the version to install for O(version) and O(site).
  - Reads C(apt-cache policy) in the C locale; python3-apt is not needed.
  - Read-only. It does not refresh the package lists; refresh them first (M(ansible.builtin.apt) with
    C(update_cache=true)) to learn about new versions.
  - Unlike M(ansible.builtin.package_facts), it reports the versions apt could install, not only the installed
    ones, and it sets no facts (register its result).
  - The role C(fleet.criu.install) uses it to choose the criu package to install.
author:
  - fleet.criu contributors (!UNKNOWN)
extends_documentation_fragment:
  - fleet.criu.criu.attributes
attributes:
  check_mode:
    support: full
    details: The module changes nothing, so it runs normally in check mode.
  diff_mode:
    support: none
  idempotent:
    support: full
  platform:
    support: full
    platforms: debian
    details: Debian, Ubuntu and other hosts with apt (C(apt-cache)).
options:
  name:
    description:
      - The package (a Debian package name, optionally with C(:architecture)).
    type: str
    default: criu
  site:
    description:
      - Only versions offered by archives on this host name (the site apt reports, e.g. C(deb.debian.org) or
        C(ppa.launchpadcontent.net); without the port). Applies to RV(versions) and RV(pick).
      - Empty means every archive.
    type: str
    default: ""
  version:
    description:
      - The version RV(pick) should be.
      - A package version (it has a C(-) or C(:), e.g. C(4.1.1-1)) matches exactly; an upstream version (C(4.1.1))
        matches the highest version whose upstream part it is (C(4.1.1-2) before C(4.1.1-1)).
      - Empty means the candidate when an archive (on O(site)) offers it, else the highest version offered.
      - When no offered version matches, RV(pick) is null (not a failure).
    type: str
    default: ""
notes:
  - Versions are compared the way dpkg and apt compare them (epoch, upstream version, revision; C(~) sorts first).
  - The installed version counts as offered only when an archive still offers it; installed from a C(.deb) file,
    it is reported in RV(installed) only.
seealso:
  - module: ansible.builtin.package_facts
  - module: ansible.builtin.apt
  - module: fleet.criu.host_info
"""

EXAMPLES = r"""
- name: Ask apt which criu versions are available
  fleet.criu.package_info:
  register: criu_pkg

- name: Refuse a distribution whose criu is too old
  ansible.builtin.assert:
    that: criu_pkg.pick is not none and criu_pkg.pick.upstream is version('3.18', '>=')
    fail_msg: >-
      apt offers criu {{ criu_pkg.versions | map(attribute='version') | join(', ') or 'nowhere' }}, none >= 3.18

- name: The newest 4.1.1 package that the CRIU PPA offers
  fleet.criu.package_info:
    name: criu
    site: ppa.launchpadcontent.net
    version: "4.1.1"
  register: criu_ppa

- name: Install exactly that package
  ansible.builtin.apt:
    name: "criu={{ criu_ppa.pick.version }}"
  when: criu_ppa.pick is not none
"""

RETURN = r"""
package:
  description: The package asked about (O(name)).
  returned: always
  type: str
  sample: criu
site:
  description: The site RV(versions) and RV(pick) were limited to (O(site)); empty for every archive.
  returned: always
  type: str
  sample: ppa.launchpadcontent.net
installed:
  description: The installed version, null when the package is not installed.
  returned: always
  type: dict
  sample: {"version": "3.17.1-2+deb12u2", "upstream": "3.17.1", "archives": []}
  contains: &version
    version:
      description: The package version.
      type: str
      returned: always
      sample: 4.1.1-1
    upstream:
      description: Its upstream part, epoch and revision removed (C(1:4.1.1-0ubuntu1) gives C(4.1.1)); null when
        the version does not start with a number.
      type: str
      returned: always
      sample: 4.1.1
    archives:
      description: The archives that offer this version (dpkg's status file is not one).
      type: list
      elements: dict
      returned: always
      contains:
        site:
          description: Host the archive is downloaded from; empty for local files.
          type: str
          returned: always
          sample: deb.debian.org
        origin:
          description: The C(Origin) field of the archive's Release file.
          type: str
          returned: always
          sample: Debian
        label:
          description: The C(Label) field of the archive's Release file.
          type: str
          returned: always
          sample: Debian
        archive:
          description: The C(Suite) (archive) field of the archive's Release file.
          type: str
          returned: always
          sample: stable
        codename:
          description: The C(Codename) field of the archive's Release file.
          type: str
          returned: always
          sample: trixie
        component:
          description: The component the package is in.
          type: str
          returned: always
          sample: main
candidate:
  description: The version apt would install (after the host's pins), null when there is none.
  returned: always
  type: dict
  sample: {"version": "4.1.1-1", "upstream": "4.1.1", "archives": [{"site": "deb.debian.org", "origin": "Debian",
           "label": "Debian", "archive": "stable", "codename": "trixie", "component": "main"}]}
  contains: *version
versions:
  description:
    - Every version an archive offers (only archives on O(site) when given), highest first.
    - Empty when apt does not know the package.
  returned: always
  type: list
  elements: dict
  sample: [{"version": "4.1.1-1", "upstream": "4.1.1", "archives": [{"site": "deb.debian.org", "origin": "Debian",
            "label": "Debian", "archive": "stable", "codename": "trixie", "component": "main"}]}]
  contains: *version
pick:
  description:
    - The version to install for O(version) (see there), one of RV(versions); null when none qualifies.
  returned: always
  type: dict
  sample: {"version": "4.1.1-1", "upstream": "4.1.1", "archives": [{"site": "deb.debian.org", "origin": "Debian",
           "label": "Debian", "archive": "stable", "codename": "trixie", "component": "main"}]}
  contains: *version
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.criu.plugins.module_utils import _apt


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", default="criu"),
            site=dict(type="str", default=""),
            version=dict(type="str", default=""),
        ),
        supports_check_mode=True,
    )
    apt_cache = module.get_bin_path("apt-cache")
    if not apt_cache:
        module.fail_json(msg="apt-cache was not found: fleet.criu.package_info works on hosts with apt (Debian, Ubuntu)")
    module.run_command_environ_update = _apt.c_locale()
    try:
        result = _apt.query(module.run_command, module.params["name"], module.params["site"] or "",
                            module.params["version"] or "", apt_cache=apt_cache)
    except _apt.AptError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
