# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The migration channel: images streamed from source to target over TLS (private).

Why this and not SSH or a dependency: the source must reach the target without a key
of its own there (no trust between hosts to set up), and the bytes must be encrypted
and authenticated. Python's own ``ssl`` gives both with nothing to install:

- the receiver (target) makes a throw-away key and self-signed certificate with the
  ``openssl`` command before the freeze; the control node hands the certificate's
  SHA-256 fingerprint to the sender, which refuses any other peer (pinning);
- the control node makes a random token per run and gives it to both sides; the
  sender proves itself by sending it inside the TLS session (compared in constant time).

Messages are one JSON object per line; a ``file`` message is followed by exactly
``size`` raw bytes. Both sides hash the bytes as they pass (SHA-256), so the images are
read once on the source and written once on the target, and the target restores only
after a ``commit`` whose manifest matches every hash it computed itself.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import socket
import ssl
import time
import typing as t

CHUNK = 1024 * 1024
MAX_HEADER = 4 * 1024 * 1024
PROTOCOL = 1
# criu's images directory is flat; these are the only names a sender may create.
# At most 200 characters; \Z, not $ ("$" also matches before a trailing newline).
SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,199}\Z")


class WireError(Exception):
    """The channel failed; ``sent_commit`` tells whether the peer may have acted on it."""

    def __init__(self, message: str, sent_commit: bool = False) -> None:
        super().__init__(message)
        self.sent_commit = sent_commit


def fingerprint_pem(cert_pem: str) -> str:
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(cert_pem)).hexdigest()


def make_cert_argv(openssl: str, key_path: str, cert_path: str) -> t.List[str]:
    """A throw-away P-256 key and self-signed certificate, valid for two days."""
    return [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", key_path, "-out", cert_path, "-days", "2", "-subj", "/CN=fleet-criu-receiver"]


class Channel:
    """Framed messages over a connected (TLS) socket."""

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        self.sock = sock
        self.sock.settimeout(timeout)
        self._buf = bytearray()
        self.bytes_in = 0
        self.bytes_out = 0

    # -- messages
    def send(self, message: t.Mapping[str, t.Any]) -> None:
        data = (json.dumps(message, sort_keys=True) + "\n").encode()
        self.sock.sendall(data)
        self.bytes_out += len(data)

    def _fill(self) -> bool:
        chunk = self.sock.recv(CHUNK)
        if not chunk:
            return False
        self._buf.extend(chunk)
        self.bytes_in += len(chunk)
        return True

    def recv(self) -> t.Dict[str, t.Any]:
        while True:
            end = self._buf.find(b"\n")
            if end > MAX_HEADER:
                raise WireError("the peer sent a message header over %d bytes" % MAX_HEADER)
            if end >= 0:
                line = bytes(self._buf[:end])
                del self._buf[:end + 1]
                try:
                    message = json.loads(line.decode())
                except ValueError as exc:
                    raise WireError("the peer sent a malformed message: %s" % exc)
                if not isinstance(message, dict) or not isinstance(message.get("type"), str):
                    raise WireError("the peer sent a message without a type")
                return message
            if len(self._buf) > MAX_HEADER:
                raise WireError("the peer sent a message header over %d bytes" % MAX_HEADER)
            if not self._fill():
                raise WireError("the peer closed the connection")

    # -- files
    def send_file(self, path: str, name: str, fsync: bool = True) -> t.Dict[str, t.Any]:
        """Send one file, hashing it as it is read; returns {sha256, size}.

        fsync=False leaves durability to the caller (the migration fsyncs its copy after the
        commit, off the critical path)."""
        digest = hashlib.sha256()
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        try:
            size = os.fstat(fd).st_size
            self.send({"type": "file", "name": name, "size": size})
            left = size
            buf = bytearray(min(CHUNK, left)) if left else bytearray()
            view = memoryview(buf)
            while left > 0:
                got = os.readv(fd, [view[:min(len(buf), left)]])
                if not got:
                    raise WireError("%s shrank while it was sent" % path)
                digest.update(view[:got])
                self.sock.sendall(view[:got])
                self.bytes_out += got
                left -= got
            if fsync:
                # Durable before a manifest vouches for it.
                os.fsync(fd)
        finally:
            os.close(fd)
        return {"sha256": digest.hexdigest(), "size": size}

    def recv_file(self, header: t.Mapping[str, t.Any], directory: str,
                  fsync: bool = True) -> t.Tuple[str, t.Dict[str, t.Any]]:
        """Write the bytes that follow a file header into directory (a new file, never through a link)."""
        name = header.get("name")
        size = header.get("size")
        if not isinstance(name, str) or not SAFE_NAME.match(name) or name in (".", ".."):
            raise WireError("the peer sent an unsafe file name %r" % (name,))
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise WireError("the peer sent a bad size for %s" % name)
        digest = hashlib.sha256()
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(os.path.join(directory, name), flags, 0o600)
        except OSError as exc:
            # EEXIST also for a planted symlink (O_EXCL never follows one).
            raise WireError("cannot create %s in %s (the peer sent it twice, or something is in the way): %s"
                            % (name, directory, exc.strerror or exc))
        try:
            # What arrived with the header first, then straight from the socket into one
            # reused buffer: a TLS record is at most 16 KiB, so the buffer is filled from
            # many records before it is hashed and written (measured: per-record work in
            # Python halved the throughput).
            head = bytes(self._buf[:size])
            del self._buf[:len(head)]
            self._consume(fd, digest, memoryview(head))
            left = size - len(head)
            buf = bytearray(min(CHUNK, left)) if left else bytearray()
            view = memoryview(buf)
            while left > 0:
                want = min(len(buf), left)
                pos = 0
                while pos < want:
                    got = self.sock.recv_into(view[pos:want], want - pos)
                    if not got:
                        raise WireError("the connection ended in the middle of %s" % name)
                    pos += got
                self.bytes_in += pos
                self._consume(fd, digest, view[:pos])
                left -= pos
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        return name, {"sha256": digest.hexdigest(), "size": size}

    @staticmethod
    def _consume(fd: int, digest: t.Any, data: memoryview) -> None:
        digest.update(data)
        written = 0
        while written < len(data):
            written += os.write(fd, data[written:])

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def server_context(cert_path: str, key_path: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_path, key_path)
    return context


def listen(port: int, address: str = "") -> socket.socket:
    """A listening TCP socket on every address (IPv6 with IPv4 mapped, or IPv4), or on address."""
    sock = None
    if not address or ":" in address:
        try:
            sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            family_any = "::"
        except OSError:
            if sock is not None:
                sock.close()
            sock = None
    if sock is None:
        # An IPv4 address cannot be bound on an IPv6 socket.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        family_any = "0.0.0.0"
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address or family_any, port))
    sock.listen(4)
    return sock


def accept(listener: socket.socket, context: ssl.SSLContext, token: str, deadline: float,
           io_timeout: float) -> t.Tuple[Channel, t.Dict[str, t.Any]]:
    """Wait (until deadline) for a sender that knows the token; return its channel and hello."""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise WireError("no sender connected in time")
        listener.settimeout(left)
        try:
            raw, peer = listener.accept()
        except socket.timeout:
            raise WireError("no sender connected in time")
        # The accepted socket is blocking: bound the handshake, or a client that connects
        # and stays silent holds the receiver (and the real sender) forever.
        raw.settimeout(io_timeout)
        tls = None
        try:
            tls = context.wrap_socket(raw, server_side=True)
            channel = Channel(tls, io_timeout)
            hello = channel.recv()
        except (OSError, ssl.SSLError, WireError):
            # A port scanner or a stray client: not ours, keep waiting.
            (tls or raw).close()
            continue
        # Bytes, not str: compare_digest raises TypeError on a non-ASCII str.
        offered = str(hello.get("token", "")).encode("utf-8")
        if hello.get("type") != "hello" or not hmac.compare_digest(offered, token.encode("utf-8")):
            try:
                channel.send({"type": "refused", "msg": "wrong token"})
            except OSError:
                pass
            channel.close()
            continue
        hello.pop("token", None)
        hello["peer"] = "%s:%s" % (peer[0], peer[1])
        channel.send({"type": "welcome", "protocol": PROTOCOL})
        return channel, hello


def connect(address: str, port: int, fingerprint: str, token: str, hello: t.Mapping[str, t.Any],
            deadline: float, io_timeout: float) -> Channel:
    """Connect (retrying until deadline), pin the receiver's certificate, prove the token."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # The certificate is pinned by its fingerprint below; it has no name to check.
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    last: t.Optional[BaseException] = None
    while time.monotonic() < deadline:
        try:
            raw = socket.create_connection((address, port), timeout=max(1.0, min(5.0, deadline - time.monotonic())))
        except OSError as exc:
            last = exc
            time.sleep(0.2)
            continue
        try:
            tls = context.wrap_socket(raw)
        except (OSError, ssl.SSLError) as exc:
            raw.close()
            last = exc
            time.sleep(0.2)
            continue
        der = tls.getpeercert(binary_form=True) or b""
        if not hmac.compare_digest(hashlib.sha256(der).hexdigest().encode(), str(fingerprint).lower().encode("utf-8")):
            tls.close()
            raise WireError("the receiver at %s:%s presented a certificate with another fingerprint than the "
                            "one its host made for this run: refusing to send anything to it" % (address, port))
        channel = Channel(tls, io_timeout)
        message = dict(hello)
        message.update(type="hello", token=token, protocol=PROTOCOL)
        channel.send(message)
        answer = channel.recv()
        if answer.get("type") != "welcome":
            channel.close()
            raise WireError("the receiver at %s:%s refused the connection: %s" % (
                address, port, answer.get("msg", answer.get("type"))))
        return channel
    raise WireError("could not reach the receiver at %s:%s: %s" % (address, port, last or "timed out"))
