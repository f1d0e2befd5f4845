"""Assemble and sign a small apt repository (pool + dists layout, like a PPA) from
.deb files, for the install role's apt_repo test. Runs on the controller: needs
dpkg-deb and gpg.

Usage: make_apt_repo.py --out DIR --suite SUITE --gnupghome DIR DEB...
"""
import argparse
import email.utils
import gzip
import hashlib
import os
import shutil
import subprocess

COMPONENT = "main"


def digests(path):
    data = open(path, "rb").read()
    return {
        "MD5sum": hashlib.md5(data).hexdigest(),
        "SHA256": hashlib.sha256(data).hexdigest(),
        "Size": str(len(data)),
    }


def control(deb):
    out = subprocess.run(["dpkg-deb", "--field", deb], check=True, capture_output=True, text=True)
    return out.stdout.rstrip("\n")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--suite", required=True)
    parser.add_argument("--gnupghome", required=True)
    parser.add_argument("debs", nargs="+")
    args = parser.parse_args()

    stanzas, archs = [], set()
    for deb in args.debs:
        fields = control(deb)
        name = os.path.basename(deb)
        pool = os.path.join("pool", COMPONENT, name[0], name.split("_")[0])
        os.makedirs(os.path.join(args.out, pool), exist_ok=True)
        shutil.copyfile(deb, os.path.join(args.out, pool, name))
        sums = digests(deb)
        arch = [line.split(":", 1)[1].strip() for line in fields.splitlines() if line.startswith("Architecture:")][0]
        archs.add(arch)
        stanzas.append(
            (arch, f"{fields}\nFilename: {pool}/{name}\nSize: {sums['Size']}\n"
                   f"MD5sum: {sums['MD5sum']}\nSHA256: {sums['SHA256']}\n")
        )

    dist = os.path.join(args.out, "dists", args.suite)
    indexes = []
    for arch in sorted(archs):
        rel = os.path.join(COMPONENT, f"binary-{arch}", "Packages")
        path = os.path.join(dist, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        text = "\n".join(body for a, body in stanzas if a == arch)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        with gzip.open(path + ".gz", "wb", compresslevel=9) as handle:
            handle.write(text.encode())
        indexes += [rel, rel + ".gz"]

    lines = [
        "Origin: fleet-criu-test",
        "Label: fleet-criu-test",
        f"Suite: {args.suite}",
        f"Codename: {args.suite}",
        f"Date: {email.utils.formatdate(usegmt=True)}",
        f"Architectures: {' '.join(sorted(archs))}",
        f"Components: {COMPONENT}",
        "Description: fleet.criu install role test repository",
    ]
    for field in ("MD5Sum", "SHA256"):
        lines.append(f"{field}:")
        for rel in indexes:
            sums = digests(os.path.join(dist, rel))
            key = "MD5sum" if field == "MD5Sum" else "SHA256"
            lines.append(f" {sums[key]} {sums['Size']:>8} {rel}")
    release = os.path.join(dist, "Release")
    with open(release, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")

    gpg = ["gpg", "--batch", "--yes", "--homedir", args.gnupghome]
    subprocess.run(gpg + ["--clearsign", "--output", os.path.join(dist, "InRelease"), release], check=True)
    subprocess.run(gpg + ["--armor", "--detach-sign", "--output", release + ".gpg", release], check=True)
    print(dist)


if __name__ == "__main__":
    main()
