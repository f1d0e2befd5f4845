# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The migration channel over real TLS on 127.0.0.1, with a certificate made by the real openssl.

Every network wait is bounded by a socket timeout or a deadline; no test asserts on speed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import ssl
import stat
import subprocess
import threading
import time
import typing as t

import pytest

from ansible_collections.fleet.criu.plugins.module_utils import _wire

TOKEN = "s3cret-token-for-this-run"
IO_TIMEOUT = 10.0
JOIN = 30.0


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> t.Dict[str, str]:
    openssl = shutil.which("openssl")
    if not openssl:
        pytest.skip("the openssl command is not installed: the receiver's throw-away certificate cannot be made")
    work = tmp_path_factory.mktemp("tls")
    key, crt = str(work / "key.pem"), str(work / "cert.pem")
    argv = _wire.make_cert_argv(openssl, key, crt)
    assert argv[0] == openssl and isinstance(argv, list)
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    with open(crt) as handle:
        fingerprint = _wire.fingerprint_pem(handle.read())
    assert len(fingerprint) == 64 and int(fingerprint, 16) >= 0
    return {"key": key, "cert": crt, "fingerprint": fingerprint}


class Server:
    """_wire.listen(0) + _wire.accept in a thread; then `work(channel, hello)` runs there too."""

    def __init__(self, cert: t.Mapping[str, str], work: t.Optional[t.Callable[..., t.Any]] = None,
                 token: str = TOKEN, wait: float = 20.0, io_timeout: float = IO_TIMEOUT, address: str = "") -> None:
        self.listener = _wire.listen(0, address)
        self.port = self.listener.getsockname()[1]
        self.context = _wire.server_context(cert["cert"], cert["key"])
        self.work = work
        self.token = token
        self.wait = wait
        self.io_timeout = io_timeout
        self.result: t.Any = None
        self.hello: t.Optional[t.Dict[str, t.Any]] = None
        self.error: t.Optional[BaseException] = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        channel = None
        try:
            channel, self.hello = _wire.accept(self.listener, self.context, self.token,
                                               time.monotonic() + self.wait, self.io_timeout)
            if self.work is not None:
                self.result = self.work(channel, self.hello)
        except BaseException as exc:  # pylint: disable=broad-except
            self.error = exc
        finally:
            self.listener.close()
            if channel is not None:
                channel.close()

    def __enter__(self) -> "Server":
        self.thread.start()
        return self

    def __exit__(self, *exc: t.Any) -> None:
        self.thread.join(JOIN)
        assert not self.thread.is_alive(), "the receiver thread did not end"


def connect(port: int, fingerprint: str, token: str = TOKEN, within: float = 10.0) -> _wire.Channel:
    return _wire.connect("127.0.0.1", port, fingerprint, token, {"key": "k", "run_id": "r"},
                         time.monotonic() + within, IO_TIMEOUT)


def receive_files(directory: str) -> t.Callable[[_wire.Channel, t.Dict[str, t.Any]], t.Dict[str, t.Any]]:
    def work(channel: _wire.Channel, hello: t.Dict[str, t.Any]) -> t.Dict[str, t.Any]:
        files = {}
        while True:
            message = channel.recv()
            if message["type"] == "commit":
                channel.send({"type": "restored", "pid": 4242})
                return files
            assert message["type"] == "file"
            name, meta = channel.recv_file(message, directory)
            files[name] = meta
    return work


# ------------------------------------------------------------------ over TLS

SIZES = {"empty.img": 0, "one.img": 1, "mib.img": 1024 * 1024, "big.img": 3 * 1024 * 1024 + 7}


def test_files_arrive_byte_identical_and_both_sides_agree_on_sha256(cert, tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir(mode=0o700)
    for name, size in SIZES.items():
        (src / name).write_bytes(os.urandom(size))
    with Server(cert, receive_files(str(dst))) as server:
        channel = connect(server.port, cert["fingerprint"])
        sent = {}
        for name in SIZES:
            sent[name] = channel.send_file(str(src / name), name)
        channel.send({"type": "commit", "manifest": {}})
        assert channel.recv() == {"type": "restored", "pid": 4242}
        channel.close()
    assert server.error is None, server.error
    assert server.hello is not None and "token" not in server.hello
    assert server.hello["key"] == "k" and server.hello["protocol"] == _wire.PROTOCOL
    assert server.hello["peer"].rsplit(":", 1)[0] in ("127.0.0.1", "::ffff:127.0.0.1")
    assert server.result == sent
    for name, size in SIZES.items():
        data = (src / name).read_bytes()
        assert (dst / name).read_bytes() == data
        assert sent[name] == {"sha256": hashlib.sha256(data).hexdigest(), "size": size}
        assert stat.S_IMODE(os.stat(str(dst / name)).st_mode) == 0o600
    assert channel.bytes_out >= sum(SIZES.values())


def test_listen_on_an_ipv4_address(cert, tmp_path):
    with Server(cert, lambda channel, hello: channel.recv(), address="127.0.0.1") as server:
        assert server.listener.family == socket.AF_INET
        channel = connect(server.port, cert["fingerprint"])
        channel.send({"type": "commit"})
        channel.close()
    assert server.error is None and server.result == {"type": "commit"}


@pytest.mark.parametrize("wrong", ["wrong-token", "", "t\u00f6ken-\u00e9", TOKEN + "x"])
def test_a_wrong_token_is_refused_and_the_receiver_waits_for_the_right_sender(cert, wrong):
    with Server(cert, lambda channel, hello: channel.recv()) as server:
        with pytest.raises(_wire.WireError, match="refused the connection: wrong token"):
            connect(server.port, cert["fingerprint"], token=wrong)
        assert server.thread.is_alive() and server.hello is None
        channel = connect(server.port, cert["fingerprint"])
        channel.send({"type": "commit"})
        channel.close()
    assert server.error is None, server.error
    assert server.result == {"type": "commit"}


def test_a_hello_of_another_type_is_refused(cert):
    with Server(cert, lambda channel, hello: channel.recv()) as server:
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=IO_TIMEOUT)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        tls = context.wrap_socket(raw)
        stray = _wire.Channel(tls, IO_TIMEOUT)
        stray.send({"type": "commit", "token": TOKEN})
        assert stray.recv()["type"] == "refused"
        stray.close()
        channel = connect(server.port, cert["fingerprint"])
        channel.send({"type": "commit"})
        channel.close()
    assert server.error is None and server.result == {"type": "commit"}


def test_a_silent_client_does_not_block_the_receiver(cert):
    # A port scanner that connects and never speaks TLS: the receiver gives up on it
    # after io_timeout and serves the real sender, while the scanner stays connected.
    with Server(cert, lambda channel, hello: channel.recv(), io_timeout=1.0) as server:
        silent = socket.create_connection(("127.0.0.1", server.port), timeout=IO_TIMEOUT)
        try:
            channel = connect(server.port, cert["fingerprint"], within=15.0)
            channel.send({"type": "commit"})
            channel.close()
        finally:
            silent.close()
    assert server.error is None and server.result == {"type": "commit"}


def test_nobody_connects_in_time(cert):
    with Server(cert, wait=0.5) as server:
        pass
    assert isinstance(server.error, _wire.WireError) and "no sender connected in time" in str(server.error)


@pytest.mark.parametrize("fingerprint", ["0" * 64, "", "not-hex"])
def test_a_wrong_fingerprint_fails_before_the_token_is_sent(cert, fingerprint):
    """The peer is a plain TLS server with the same kind of certificate: it records every byte."""
    listener = _wire.listen(0, "127.0.0.1")
    port = listener.getsockname()[1]
    context = _wire.server_context(cert["cert"], cert["key"])
    seen: t.Dict[str, t.Any] = {"bytes": b"", "error": None}

    def serve() -> None:
        try:
            listener.settimeout(IO_TIMEOUT)
            raw, _peer = listener.accept()
            raw.settimeout(IO_TIMEOUT)
            tls = context.wrap_socket(raw, server_side=True)
            while True:
                try:
                    chunk = tls.recv(65536)
                except (ssl.SSLError, OSError):
                    break
                if not chunk:
                    break
                seen["bytes"] += chunk
            tls.close()
        except BaseException as exc:  # pylint: disable=broad-except
            seen["error"] = exc
        finally:
            listener.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    with pytest.raises(_wire.WireError, match="another fingerprint"):
        connect(port, fingerprint)
    thread.join(JOIN)
    assert not thread.is_alive()
    assert seen["error"] is None, seen["error"]
    assert seen["bytes"] == b""
    assert TOKEN.encode() not in seen["bytes"]


def test_the_fingerprint_may_be_given_in_upper_case(cert):
    with Server(cert, lambda channel, hello: channel.recv()) as server:
        channel = connect(server.port, cert["fingerprint"].upper())
        channel.send({"type": "commit"})
        channel.close()
    assert server.error is None and server.result == {"type": "commit"}


def test_no_receiver_at_all_fails_within_the_deadline():
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    with pytest.raises(_wire.WireError, match="could not reach the receiver"):
        connect(port, "0" * 64, within=1.0)


def test_a_connection_cut_in_the_middle_of_a_file_over_tls(cert, tmp_path):
    dst = tmp_path / "dst"
    dst.mkdir()
    with Server(cert, receive_files(str(dst))) as server:
        channel = connect(server.port, cert["fingerprint"])
        channel.send({"type": "file", "name": "pages-1.img", "size": 1024 * 1024})
        channel.sock.sendall(b"x" * 1000)
        channel.close()
    assert isinstance(server.error, _wire.WireError), server.error
    assert "the connection ended in the middle of pages-1.img" in str(server.error)


# ------------------------------------------------------------------ framing (no TLS needed)

@pytest.fixture
def pair() -> t.Iterator[t.Tuple[socket.socket, _wire.Channel]]:
    writer, reader = socket.socketpair()
    writer.settimeout(IO_TIMEOUT)
    channel = _wire.Channel(reader, IO_TIMEOUT)
    yield writer, channel
    writer.close()
    channel.close()


def tree(path: str) -> t.List[str]:
    return sorted(os.path.relpath(os.path.join(root, name), path)
                  for root, dirs, files in os.walk(path) for name in dirs + files)


@pytest.mark.parametrize("name", ["../x", "a/b", ".", "..", "", "x" * 201, "/etc/passwd", "abc\n", "-rf",
                                  ".hidden", "a\0b", None, 7, ["a"]])
def test_unsafe_names_are_refused_and_nothing_is_written(pair, tmp_path, name):
    writer, channel = pair
    inside = tmp_path / "a" / "images"
    inside.mkdir(parents=True)
    before = tree(str(tmp_path))
    writer.sendall(b"abc")
    with pytest.raises(_wire.WireError, match="unsafe file name"):
        channel.recv_file({"type": "file", "name": name, "size": 3}, str(inside))
    assert tree(str(tmp_path)) == before


def test_a_name_of_200_characters_is_fine(pair, tmp_path):
    writer, channel = pair
    writer.sendall(b"abc")
    name, meta = channel.recv_file({"type": "file", "name": "p" * 200, "size": 3}, str(tmp_path))
    assert name == "p" * 200 and meta["size"] == 3
    assert (tmp_path / name).read_bytes() == b"abc"


@pytest.mark.parametrize("size", [-1, "3", None, 1.5, True])
def test_a_bad_size_is_refused(pair, tmp_path, size):
    _writer, channel = pair
    with pytest.raises(_wire.WireError, match="bad size"):
        channel.recv_file({"type": "file", "name": "core-1.img", "size": size}, str(tmp_path))
    assert os.listdir(str(tmp_path)) == []


def test_a_planted_symlink_is_not_followed(pair, tmp_path):
    writer, channel = pair
    images = tmp_path / "images"
    images.mkdir()
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep me")
    (images / "pages-1.img").symlink_to(victim)
    dangling = tmp_path / "dangling-target"
    (images / "core-1.img").symlink_to(dangling)
    writer.sendall(b"evil")
    with pytest.raises(_wire.WireError, match="pages-1.img"):
        channel.recv_file({"type": "file", "name": "pages-1.img", "size": 4}, str(images))
    with pytest.raises(_wire.WireError, match="core-1.img"):
        channel.recv_file({"type": "file", "name": "core-1.img", "size": 4}, str(images))
    assert victim.read_bytes() == b"keep me"
    assert not dangling.exists()
    assert os.path.islink(str(images / "pages-1.img"))


def test_an_existing_file_is_not_overwritten(pair, tmp_path):
    writer, channel = pair
    (tmp_path / "core-1.img").write_bytes(b"old")
    writer.sendall(b"new")
    with pytest.raises(_wire.WireError):
        channel.recv_file({"type": "file", "name": "core-1.img", "size": 3}, str(tmp_path))
    assert (tmp_path / "core-1.img").read_bytes() == b"old"


def test_a_connection_cut_in_the_middle_of_a_file(pair, tmp_path):
    writer, channel = pair
    writer.sendall(json.dumps({"type": "file", "name": "pages-1.img", "size": 100}).encode() + b"\n" + b"y" * 40)
    writer.close()
    header = channel.recv()
    with pytest.raises(_wire.WireError, match="ended in the middle of pages-1.img"):
        channel.recv_file(header, str(tmp_path))


def test_messages_and_file_bytes_share_one_stream(pair, tmp_path):
    writer, channel = pair
    body = os.urandom(70000)
    writer.sendall(b'{"type": "file", "name": "a.img", "size": 70000}\n' + body + b'{"type": "commit"}\n')
    header = channel.recv()
    name, meta = channel.recv_file(header, str(tmp_path))
    assert (name, meta) == ("a.img", {"sha256": hashlib.sha256(body).hexdigest(), "size": 70000})
    assert channel.recv() == {"type": "commit"}
    assert (tmp_path / "a.img").read_bytes() == body


def _send_in_thread(writer: socket.socket, data: bytes) -> threading.Thread:
    def push() -> None:
        try:
            writer.sendall(data)
        except OSError:
            pass  # the reader gave up: expected
    thread = threading.Thread(target=push, daemon=True)
    thread.start()
    return thread


def test_a_header_over_max_header_without_newline(pair):
    writer, channel = pair
    thread = _send_in_thread(writer, b"x" * (_wire.MAX_HEADER + 2))
    with pytest.raises(_wire.WireError, match="header over"):
        channel.recv()
    channel.close()
    thread.join(JOIN)


def test_a_header_over_max_header_even_when_its_newline_arrives_with_it(pair):
    writer, channel = pair
    line = b'{"type": "x", "pad": "' + b"p" * _wire.MAX_HEADER + b'"}\n'
    writer.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 * 1024 * 1024)
    thread = _send_in_thread(writer, line)
    thread.join(JOIN)  # everything is in flight before the reader looks
    with pytest.raises(_wire.WireError, match="header over"):
        channel.recv()


@pytest.mark.parametrize("line, problem", [
    (b"{not json\n", "malformed"),
    (b"\xff\xfe\n", "malformed"),
    (b"[1, 2]\n", "without a type"),
    (b'{"type": 5}\n', "without a type"),
])
def test_malformed_messages(pair, line, problem):
    writer, channel = pair
    writer.sendall(line)
    with pytest.raises(_wire.WireError, match=problem):
        channel.recv()


def test_the_peer_closing_between_messages(pair):
    writer, channel = pair
    writer.sendall(b'{"type": "a"}\n{"type": "b"')
    writer.close()
    assert channel.recv() == {"type": "a"}
    with pytest.raises(_wire.WireError, match="closed the connection"):
        channel.recv()


def test_send_file_refuses_a_symlink(pair, tmp_path):
    _writer, channel = pair
    (tmp_path / "real").write_bytes(b"x")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(OSError):
        channel.send_file(str(tmp_path / "link"), "link")
    assert channel.bytes_out == 0
