"""Faults on demand, for the chaos suite: a private Redis server, a TCP proxy that can cut what
goes through it, a local SMTP server that can misbehave, and what a test needs to find and kill
one process of a worker's tree.

Everything here listens on 127.0.0.1 on a free port and is started and stopped by the test that
uses it; nothing touches a service another test run shares.
"""

from __future__ import annotations

import contextlib
import email.parser
import email.policy
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.processes import RUN_MARKER, free_port
from tests.support.waiting import wait_until


def port_accepts(port: int, timeout: float = 0.2) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout):
        return True
    return False


# --- a private Redis ------------------------------------------------------------------------------


class RedisServer:
    """`redis-server` on its own port, without persistence: killed, it loses what it held, as a
    broker that crashes does. It can be killed, paused (SIGSTOP: connections open, no answers),
    resumed and restarted on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self._dir = tempfile.TemporaryDirectory(prefix="chaos-redis-")
        self._popen: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        log = open(Path(self._dir.name) / "redis.log", "ab")  # noqa: SIM115 - the child keeps it
        self._popen = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self._dir.name,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, RUN_MARKER: str(os.getpid())},
            start_new_session=True,
        )
        log.close()
        wait_until(
            self.answers_ping,
            timeout=10,
            describe=lambda: f"redis-server did not answer on port {self.port}",
        )

    def answers_ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), 0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    @property
    def pid(self) -> int:
        assert self._popen is not None, "redis-server is not started"
        return self._popen.pid

    def kill(self) -> None:
        """SIGKILL: the broker crashes, with every message it held."""
        assert self._popen is not None
        self._popen.send_signal(signal.SIGKILL)
        self._popen.wait(timeout=10)

    def restart(self) -> None:
        """Start again, empty, on the same port."""
        self.start()

    def pause(self) -> None:
        """SIGSTOP: the port still accepts connections, nothing is answered."""
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def close_connections(self) -> None:
        """The server closes every client connection (CLIENT KILL), and keeps running."""
        with socket.create_connection(("127.0.0.1", self.port), 2) as sock:
            for kind in (b"normal", b"pubsub"):
                sock.sendall(b"CLIENT KILL TYPE " + kind + b" SKIPME yes\r\n")
                if not sock.recv(64).startswith(b":"):
                    raise RuntimeError("redis-server refused CLIENT KILL")

    def stop(self) -> None:
        if self._popen is not None and self._popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._popen.pid, signal.SIGCONT)
                self._popen.send_signal(signal.SIGKILL)
            self._popen.wait(timeout=10)
        self._dir.cleanup()


# --- a TCP proxy that can cut ---------------------------------------------------------------------


class TcpProxy:
    """Forwards 127.0.0.1:<port> to an upstream server (PostgreSQL, RabbitMQ).

    `cut()` closes every connection and refuses new ones (the server is unreachable);
    `restore()` listens again on the same port; `drop_connections()` closes what is open and
    keeps accepting (the server closed its connections, as `rabbitmqctl close_all_connections`
    does, for the processes behind this proxy only).
    """

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = free_port()
        self.connections_made = 0
        self._pairs: set[tuple[socket.socket, socket.socket]] = set()
        self._lock = threading.Lock()
        self._listening = threading.Event()
        self._flowing = threading.Event()
        self._flowing.set()
        self._acceptor: threading.Thread | None = None

    def start(self) -> None:
        self.restore()

    def restore(self) -> None:
        if self._listening.is_set():
            return
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        listener.settimeout(0.1)
        self._listening.set()
        self._acceptor = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._acceptor.start()

    def cut(self) -> None:
        self._listening.clear()
        if self._acceptor is not None:
            self._acceptor.join(timeout=5)
            self._acceptor = None
        self.drop_connections()

    def drop_connections(self) -> int:
        with self._lock:
            pairs, self._pairs = self._pairs, set()
        for pair in pairs:
            for sock in pair:
                _close(sock)
        return len(pairs)

    def freeze(self) -> None:
        """Connections stay open and new ones are accepted, but nothing passes (a hung server)."""
        self._flowing.clear()

    def thaw(self) -> None:
        self._flowing.set()

    def stop(self) -> None:
        self._flowing.set()
        self.cut()

    def _accept(self, listener: socket.socket) -> None:
        with listener:
            while self._listening.is_set():
                try:
                    client, _ = listener.accept()
                except TimeoutError:
                    continue
                except OSError:
                    return
                try:
                    upstream = socket.create_connection(self.upstream, timeout=5)
                except OSError:
                    _close(client)
                    continue
                client.settimeout(None)
                upstream.settimeout(None)
                pair = (client, upstream)
                with self._lock:
                    if not self._listening.is_set():
                        _close(client)
                        _close(upstream)
                        continue
                    self._pairs.add(pair)
                    self.connections_made += 1
                for source, target in (pair, pair[::-1]):
                    threading.Thread(
                        target=self._pump, args=(source, target, pair), daemon=True
                    ).start()

    def _pump(
        self,
        source: socket.socket,
        target: socket.socket,
        pair: tuple[socket.socket, socket.socket],
    ) -> None:
        try:
            while chunk := source.recv(65536):
                self._flowing.wait()
                target.sendall(chunk)
        except OSError:
            pass
        with self._lock:
            self._pairs.discard(pair)
        for sock in pair:
            _close(sock)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


# --- a local SMTP server --------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedEmail:
    message_id: str
    sender: str
    recipients: tuple[str, ...]
    subject: str
    raw: bytes


@dataclass
class SmtpMode:
    """How the server treats connections that arrive from now on.

    - `normal`: accepts and records every message.
    - `hang`: accepts the connection and never says a word.
    - `slow_greeting`: waits `delay` seconds before its 220 greeting, then is normal.
    - `dies_after_data`: receives a whole message, records it (the server has it), then closes
      the connection — right after its `250` when `reply_first`, before replying otherwise.
    """

    name: str = "normal"
    delay: float = 0.0
    reply_first: bool = True


@dataclass
class SmtpConnection:
    peer_port: int
    opened_at: float
    closed: threading.Event = field(default_factory=threading.Event)


class SmtpServer:
    """A small SMTP server written on sockets: enough of RFC 5321 for smtplib and Django."""

    def __init__(self) -> None:
        self.port = free_port()
        self.mode = SmtpMode()
        self.received: list[ReceivedEmail] = []
        self.connections: list[SmtpConnection] = []
        self._changed = threading.Condition()
        self._stopping = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.1)
        self._listener = listener
        threading.Thread(target=self._accept, daemon=True).start()

    def stop(self) -> None:
        self._stopping.set()
        for sock in list(self._sockets):
            _close(sock)

    # modes
    def normal(self) -> None:
        self.mode = SmtpMode()

    def hang(self) -> None:
        self.mode = SmtpMode("hang")

    def slow_greeting(self, delay: float) -> None:
        self.mode = SmtpMode("slow_greeting", delay=delay)

    def dies_after_data(self, *, reply_first: bool) -> None:
        self.mode = SmtpMode("dies_after_data", reply_first=reply_first)

    # what happened
    def copies_to(self, address: str) -> list[ReceivedEmail]:
        wanted = address.lower()
        with self._changed:
            return [m for m in self.received if wanted in (r.lower() for r in m.recipients)]

    def wait_for_connection(self, count: int = 1, timeout: float = 30) -> SmtpConnection:
        """The `count`-th connection, once it is open (a send is in progress)."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.connections) >= count, timeout):
                raise TimeoutError(
                    f"{len(self.connections)} SMTP connection(s), not {count}, in {timeout:g}s"
                )
            return self.connections[count - 1]

    def wait_for_copies(self, address: str, count: int, timeout: float = 30) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.copies_to(address)) >= count, timeout):
                raise TimeoutError(f"fewer than {count} email(s) to {address} in {timeout:g}s")

    # the server
    def _accept(self) -> None:
        assert self._listener is not None
        with self._listener:
            while not self._stopping.is_set():
                try:
                    sock, peer = self._listener.accept()
                except TimeoutError:
                    continue
                except OSError:
                    return
                connection = SmtpConnection(peer_port=peer[1], opened_at=time.monotonic())
                self._sockets.add(sock)
                with self._changed:
                    self.connections.append(connection)
                    self._changed.notify_all()
                threading.Thread(
                    target=self._serve, args=(sock, connection, self.mode), daemon=True
                ).start()

    def _serve(self, sock: socket.socket, connection: SmtpConnection, mode: SmtpMode) -> None:
        try:
            self._converse(sock, mode)
        except OSError:
            pass
        finally:
            self._sockets.discard(sock)
            _close(sock)
            connection.closed.set()

    def _converse(self, sock: socket.socket, mode: SmtpMode) -> None:
        if mode.name == "hang":
            sock.settimeout(0.2)
            while not self._stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    if not sock.recv(4096):
                        return  # the client gave up
            return
        if mode.name == "slow_greeting" and not self._wait_before_greeting(sock, mode.delay):
            return
        sock.settimeout(None)
        reader = sock.makefile("rb")
        sock.sendall(b"220 chaos.invalid ESMTP\r\n")
        sender, recipients = "", list[str]()
        while line := reader.readline():
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                sock.sendall(b"250-chaos.invalid\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")
            elif verb == b"MAIL":
                sender, recipients = _address(line), []
                sock.sendall(b"250 OK\r\n")
            elif verb == b"RCPT":
                recipients.append(_address(line))
                sock.sendall(b"250 OK\r\n")
            elif verb == b"DATA":
                sock.sendall(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                self._record(sender, recipients, _read_data(reader))
                if mode.name == "dies_after_data":
                    if mode.reply_first:
                        sock.sendall(b"250 OK queued\r\n")
                    return
                sock.sendall(b"250 OK queued\r\n")
            elif verb == b"QUIT":
                sock.sendall(b"221 Bye\r\n")
                return
            else:  # RSET, NOOP and anything else
                sock.sendall(b"250 OK\r\n")

    def _wait_before_greeting(self, sock: socket.socket, delay: float) -> bool:
        """Keep silent for `delay` seconds; False when the client gave up (or the server stops)
        meanwhile."""
        deadline = time.monotonic() + delay
        while (left := deadline - time.monotonic()) > 0:
            if self._stopping.is_set():
                return False
            sock.settimeout(min(left, 0.1))
            try:
                if not sock.recv(4096):
                    return False
            except TimeoutError:
                continue
        return True

    def _record(self, sender: str, recipients: list[str], raw: bytes) -> None:
        parsed = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(raw)
        received = ReceivedEmail(
            message_id=str(parsed.get("Message-ID", "")).strip(),
            sender=sender,
            recipients=tuple(recipients),
            subject=str(parsed.get("Subject", "")),
            raw=raw,
        )
        with self._changed:
            self.received.append(received)
            self._changed.notify_all()


def _address(line: bytes) -> str:
    text = line.decode(errors="replace")
    start, end = text.find("<"), text.find(">")
    return text[start + 1 : end] if 0 <= start < end else text.split(":", 1)[-1].strip()


def _read_data(reader: object) -> bytes:
    lines = []
    for line in iter(reader.readline, b""):  # type: ignore[attr-defined]
        if line in (b".\r\n", b".\n"):
            break
        lines.append(line[1:] if line.startswith(b"..") else line)
    return b"".join(lines)


# --- the processes of a worker --------------------------------------------------------------------


def _ppid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _ppid(int(entry.name)) == pid:
            found.append(int(entry.name))
    return sorted(found)


def descendants_of(pid: int) -> list[int]:
    found, frontier = [], [pid]
    while frontier:
        children = children_of(frontier.pop())
        found += children
        frontier += children
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def command_worker(supervisor_pid: int) -> int:
    """The Celery main process that runs the commands and events of a `run_worker`."""
    workers = [p for p in children_of(supervisor_pid) if "--role commands" in cmdline(p)]
    if len(workers) != 1:
        raise LookupError(f"{len(workers)} command workers under {supervisor_pid}")
    return workers[0]


def pid_with_connection_from(local_port: int, among: Iterable[int]) -> int:
    """The process (among `among`) that owns the TCP socket whose local port is `local_port`:
    the one talking to a server that saw a connection from that port."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for row in Path(table).read_text().splitlines()[1:]:
                columns = row.split()
                if int(columns[1].rsplit(":", 1)[1], 16) == local_port:
                    inodes.add(f"socket:[{columns[9]}]")
    for pid in among:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in inodes:
                        return pid
    raise LookupError(f"no process among {list(among)} holds a socket on port {local_port}")
