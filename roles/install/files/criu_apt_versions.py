"""Print, as JSON, what apt knows about one package: the installed version, the
candidate (after the host's pins), every available version with the archives that
offer it, and "pick": the version to install. Read-only: it opens apt's cache, it
never changes it.

Usage: criu_apt_versions.py PACKAGE [--site HOST] [--want VERSION]
  --site HOST     consider only versions offered by archives on HOST
  --want VERSION  pick the highest version equal to VERSION (a package version such
                  as 4.1.1-1) or, for an upstream version such as 4.1.1, the highest
                  version whose upstream part is VERSION; without it, pick the
                  candidate when it qualifies, else the highest version
"""
import argparse
import json
import re

import apt_pkg

UPSTREAM = re.compile(r"^(?:\d+:)?(\d+(?:\.\d+)*)")


def upstream(version):
    """'1:4.1.1-0ubuntu1~ppa1' -> '4.1.1'; None when there is no leading number."""
    match = UPSTREAM.match(version or "")
    return match.group(1) if match else None


def archives(ver):
    found = []
    for pkg_file, _index in ver.file_list:
        if pkg_file.filename == "/var/lib/dpkg/status" or pkg_file.archive == "now":
            continue  # the installed copy, not an archive that offers it
        found.append(
            {
                "site": pkg_file.site or "",
                "origin": pkg_file.origin or "",
                "label": pkg_file.label or "",
                "archive": pkg_file.archive or "",
                "codename": pkg_file.codename or "",
                "component": pkg_file.component or "",
            }
        )
    return found


def describe(ver):
    if ver is None:
        return None
    return {"version": ver.ver_str, "upstream": upstream(ver.ver_str), "archives": archives(ver)}


class _Quiet:
    """A progress object that prints nothing, so stdout carries only the JSON."""

    op = subop = ""
    major_change = False
    percent = 0.0

    def update(self, *_args):
        pass

    def done(self, *_args):
        pass


def pick(versions, candidate, want):
    if want:
        full = "-" in want or ":" in want
        for item in versions:
            if (item["version"] == want) if full else (item["upstream"] == want):
                return item
        return None
    if candidate is not None:
        for item in versions:
            if item["version"] == candidate["version"]:
                return item
    return versions[0] if versions else None


def main():
    parser = argparse.ArgumentParser(usage=__doc__)
    parser.add_argument("package")
    parser.add_argument("--site", default="")
    parser.add_argument("--want", default="")
    args = parser.parse_args()
    name = args.package
    apt_pkg.init()
    cache = apt_pkg.Cache(_Quiet())
    depcache = apt_pkg.DepCache(cache)
    result = {"package": name, "site": args.site, "installed": None, "candidate": None, "versions": [], "pick": None}
    try:
        pkg = cache[name]
    except KeyError:
        print(json.dumps(result))
        return
    result["installed"] = describe(pkg.current_ver)
    result["candidate"] = describe(depcache.get_candidate_ver(pkg))
    versions = [describe(ver) for ver in pkg.version_list]
    if args.site:
        versions = [v for v in versions if any(a["site"] == args.site for a in v["archives"])]
    else:
        versions = [v for v in versions if v["archives"]]
    result["versions"] = sorted(versions, key=_VersionKey, reverse=True)
    result["pick"] = pick(result["versions"], result["candidate"], args.want)
    print(json.dumps(result))


class _VersionKey:
    """Sort key that orders Debian versions the way apt does."""

    def __init__(self, item):
        self.version = item["version"]

    def __lt__(self, other):
        return apt_pkg.version_compare(self.version, other.version) < 0

    def __eq__(self, other):
        return apt_pkg.version_compare(self.version, other.version) == 0


if __name__ == "__main__":
    main()
