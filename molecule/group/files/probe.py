# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the group scenario observes on one host, as JSON: the tcp_pair processes running,
the connection's 4-tuple as the process wrote it, the TCP sockets the kernel has on the
port, and (on the server) the numbering received so far."""

import json
import os
import subprocess
import sys

directory, port = sys.argv[1], sys.argv[2]
pids = []
for entry in os.listdir("/proc"):
    if entry.isdigit():
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as handle:
                argv = handle.read().split(b"\0")
        except OSError:
            continue
        if len(argv) > 2 and argv[1].endswith(b"tcp_pair.py") and argv[2] in (b"server", b"client"):
            pids.append(int(entry))
out = {"pids": sorted(pids), "tuple": None, "established": [], "received": None}
try:
    with open(os.path.join(directory, "tuple"), encoding="ascii") as handle:
        out["tuple"] = handle.read().strip()
except OSError:
    pass
ss = subprocess.run(["ss", "-Htn", "state", "established", "( sport = :%s or dport = :%s )" % (port, port)],
                    capture_output=True, text=True, check=False)
out["established"] = sorted(" ".join(line.split()[-2:]) for line in ss.stdout.splitlines() if line.strip())
try:
    with open(os.path.join(directory, "received"), encoding="ascii") as handle:
        lines = handle.read().split("\n")
    complete = [int(x) for x in lines[:-1]]   # the last piece may be a line still arriving
    out["received"] = {"count": len(complete), "last": complete[-1] if complete else 0,
                       "contiguous": complete == list(range(1, len(complete) + 1))}
except OSError:
    pass
print(json.dumps(out))
