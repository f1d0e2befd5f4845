# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Real lines from criu 4.1.1 dumping a TCP client on Linux 6.18 (measured here)."""
from __future__ import annotations

from ansible_collections.fleet.criu.plugins.module_utils import _criu_log

LOG_4_1_1_TCP_ON_6_18 = """\
(00.001282) Error (criu/util.c:1534): rlimit: Can't setup RLIMIT_NOFILE for self: Operation not permitted
(00.020806) sockets: Searching for socket 0x2fe97 family 2
(00.020863) Error (criu/sockets.c:628): sockets: Can't get 1:16 opt: Operation not supported
(00.020869) Error (criu/sockets.c:628): sockets: Can't get 1:34 opt: Operation not supported
(00.020878) sockets: No filter for socket
(00.020975) Error (criu/cr-dump.c:1681): Dump files (pid: 5499) failed with -1
"""


def test_inet_socket_opt_failure_is_the_first_error_and_gets_the_kernel_hint():
    line, hint = _criu_log.explain(LOG_4_1_1_TCP_ON_6_18, "", "")
    assert "Can't get 1:16 opt: Operation not supported" in line
    assert "RLIMIT_NOFILE" not in line
    assert hint is not None and "4.2.1" in hint and "6.16" in hint
