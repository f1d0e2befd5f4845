# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The group scenario's distributed application: one TCP connection, numbered lines.

  tcp_pair.py server PORT DIR   accept one connection; append every line received to DIR/received
  tcp_pair.py client HOST PORT DIR   connect once; send 1, 2, 3, ... one line every 50 ms

Each side writes its view of the connection (local -> peer) to DIR/tuple when it starts.
Neither side ever reconnects: a broken connection ends the process, so a test that finds
the same process, the same 4-tuple and an unbroken numbering knows the connection survived.
"""

import os
import socket
import sys
import time


def write(path: str, text: str) -> None:
    with open(path + ".tmp", "w", encoding="ascii") as handle:
        handle.write(text)
    os.replace(path + ".tmp", path)


def tuple_of(conn: socket.socket) -> str:
    local, peer = conn.getsockname(), conn.getpeername()
    return "%s:%d -> %s:%d\n" % (local[0], local[1], peer[0], peer[1])


def server(port: int, directory: str) -> None:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("0.0.0.0", port))
    listener.listen(1)
    conn, _peer = listener.accept()
    listener.close()
    write(os.path.join(directory, "tuple"), tuple_of(conn))
    with open(os.path.join(directory, "received"), "ab", buffering=0) as log:
        while True:
            data = conn.recv(65536)
            if not data:
                return
            log.write(data)


def client(host: str, port: int, directory: str) -> None:
    conn = socket.create_connection((host, port), timeout=30)
    conn.settimeout(None)
    write(os.path.join(directory, "tuple"), tuple_of(conn))
    number = 0
    while True:
        number += 1
        conn.sendall(b"%d\n" % number)
        time.sleep(0.05)


if __name__ == "__main__":
    if sys.argv[1] == "server":
        server(int(sys.argv[2]), sys.argv[3])
    else:
        client(sys.argv[2], int(sys.argv[3]), sys.argv[4])
