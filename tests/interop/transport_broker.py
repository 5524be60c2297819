"""Brokers with TLS and WebSocket listeners, and clients that reach them.

A :class:`TransportBroker` runs the broker under test (culex, or mosquitto
with ``INTEROP_BROKER=mosquitto``) with several listeners, each described by
a :class:`Listener`: plain MQTT, MQTT over TLS (with or without client
certificates), WebSockets and secure WebSockets.  Every port is picked free
beforehand, so one broker serves many listeners and the tests address them
by name.

The test certificates come from ``scripts/gen-certs DIR`` (a CA, a server
certificate for localhost / 127.0.0.1 / ::1 and a client certificate with
CN ``culex-client``), generated once per session.

Test modules load this file as a plugin (``pytest_plugins``), which makes
its fixtures available and attaches broker logs to failure reports.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from interop_util import Peer

REPO_ROOT = Path(__file__).resolve().parents[2]
BROKER_KIND = os.environ.get("INTEROP_BROKER", "culex").strip().lower() or "culex"
STARTUP_TIMEOUT = 10.0
GEN_CERTS_TIMEOUT = 60
LOG_TAIL_LINES = 60
CERT_FILES = ("ca.pem", "ca.key", "server.pem", "server.key", "client.pem", "client.key")
CLIENT_CN = "culex-client"


# ---------------------------------------------------------------------------
# Certificates


@dataclass(frozen=True)
class Certs:
    """Paths of the generated test PKI."""

    dir: Path

    def __getattr__(self, name):
        # certs.ca_pem -> DIR/ca.pem, certs.client_key -> DIR/client.key, ...
        stem, _, ext = name.rpartition("_")
        if stem and ext in ("pem", "key"):
            return str(self.dir / f"{stem}.{ext}")
        raise AttributeError(name)


def generate_certs(directory):
    """Run ``scripts/gen-certs`` into ``directory``; fail the test run if it cannot."""
    script = str(REPO_ROOT / "scripts" / "gen-certs")
    if not os.access(script, os.X_OK):
        pytest.fail(f"certificate generator not found or not executable: {script}", pytrace=False)
    try:
        done = subprocess.run([script, str(directory)], capture_output=True, text=True,
                              timeout=GEN_CERTS_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{script} did not finish within {GEN_CERTS_TIMEOUT} s", pytrace=False)
    if done.returncode != 0:
        pytest.fail(f"{script} {directory} exited with {done.returncode}:\n{done.stdout}{done.stderr}",
                    pytrace=False)
    missing = [f for f in CERT_FILES if not (Path(directory) / f).is_file()]
    if missing:
        pytest.fail(f"{script} did not write {', '.join(missing)}", pytrace=False)
    # gen-certs keeps keys private, but mosquitto started as root reads them
    # as its own user; the directory is this run's alone.
    Path(directory).chmod(0o755)
    for f in CERT_FILES:
        (Path(directory) / f).chmod(0o644)
    return Certs(Path(directory))


# ---------------------------------------------------------------------------
# Listeners and the broker


def broker_binary(kind):
    """The executable of the broker under test: culex (``$CULEX_BIN`` or the release
    build) or mosquitto; fails the test when it is missing."""
    if kind == "culex":
        binary = os.environ.get("CULEX_BIN") or str(REPO_ROOT / "target" / "release" / "culex")
        if not os.path.isabs(binary):
            binary = str(REPO_ROOT / binary) if os.sep in binary else (shutil.which(binary) or binary)
        if not os.access(binary, os.X_OK):
            pytest.fail(f"culex binary not found or not executable: {binary} (set CULEX_BIN)",
                        pytrace=False)
        return binary
    if kind == "mosquitto":
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not os.access(binary, os.X_OK):
            pytest.fail("mosquitto not found (apt-get install mosquitto)", pytrace=False)
        return binary
    pytest.fail(f"unknown INTEROP_BROKER {kind!r}", pytrace=False)


@dataclass
class Listener:
    """One listener of a :class:`TransportBroker`.

    ``protocol`` is ``"mqtt"``, ``"websockets"`` or ``"mqttsn"`` (a UDP
    gateway, culex only); ``tls`` adds the server
    certificate; ``client_certs`` adds the CA and ``require_certificate``;
    ``options`` are further listener lines (``{"tls_version": "tlsv1.3"}``).
    """

    name: str
    protocol: str = "mqtt"
    tls: bool = False
    client_certs: bool = False
    host: str = "127.0.0.1"
    options: dict = field(default_factory=dict)
    port: int = None

    @property
    def websockets(self):
        return self.protocol == "websockets"

    @property
    def scheme(self):
        if self.protocol == "mqttsn":
            return "mqttsn+udp"
        if self.websockets:
            return "wss" if self.tls else "ws"
        return "mqtts" if self.tls else "mqtt"

    def config_lines(self, certs):
        lines = [f"listener {self.port} {self.host}"]
        if self.protocol != "mqtt":
            lines.append(f"protocol {self.protocol}")
        if self.tls or self.client_certs:
            lines += [f"certfile {certs.server_pem}", f"keyfile {certs.server_key}"]
        if self.client_certs:
            lines += [f"cafile {certs.ca_pem}", "require_certificate true"]
        lines += [f"{k} {v}" for k, v in self.options.items()]
        return lines

    def __repr__(self):
        return f"<{self.name} {self.scheme}://{self.host}:{self.port}>"


def free_port(host="127.0.0.1", kind=socket.SOCK_STREAM):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, kind) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class TransportBroker:
    """The broker under test with the given listeners and global settings."""

    def __init__(self, listeners, certs, settings=None, kind=BROKER_KIND):
        self.kind = kind
        self.certs = certs
        self.settings = dict(settings or {})
        self.settings.setdefault("allow_anonymous", "true")
        self.listeners = {l.name: l for l in listeners}
        self.proc = None
        self._dir = tempfile.TemporaryDirectory(prefix="culex-transport-")
        self._log = []
        self._log_lock = threading.Lock()
        self._reader = None

    def __getitem__(self, name):
        return self.listeners[name]

    # -- configuration ---------------------------------------------------
    def config_text(self):
        # Global settings first: with per_listener_settings, mosquitto takes a
        # setting after a listener line as that listener's own.
        lines = [f"{k} {v}" for k, v in self.settings.items()]
        if self.kind == "mosquitto":
            lines += ["log_dest stderr", "persistence false"]
        for listener in self.listeners.values():
            lines += listener.config_lines(self.certs)
        return "\n".join(lines) + "\n"

    def _write_config(self):
        path = Path(self._dir.name) / "broker.conf"
        path.write_text(self.config_text())
        path.chmod(0o644)
        Path(self._dir.name).chmod(0o755)
        return path

    # -- log capture -----------------------------------------------------
    def _drain(self, stream):
        # Always drain the output so the broker never blocks on a full pipe.
        for raw in iter(stream.readline, b""):
            with self._log_lock:
                self._log.append(raw.decode("utf-8", "replace"))
        stream.close()

    def log(self):
        with self._log_lock:
            return "".join(self._log)

    # -- lifecycle -------------------------------------------------------
    def start(self):
        binary = broker_binary(self.kind)
        for listener in self.listeners.values():
            try:
                kind = socket.SOCK_DGRAM if listener.protocol == "mqttsn" else socket.SOCK_STREAM
                listener.port = free_port(listener.host, kind)
            except OSError as e:
                pytest.fail(f"cannot bind {listener.host} for {listener.name}: {e}", pytrace=False)
        conf = self._write_config()
        self.proc = subprocess.Popen([binary, "-c", str(conf)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     cwd=self._dir.name)
        self._reader = threading.Thread(target=self._drain, args=(self.proc.stdout,), daemon=True)
        self._reader.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        for listener in self.listeners.values():
            while not self._accepts(listener):
                if self.proc.poll() is not None:
                    self._fail(f"exited with status {self.proc.returncode}")
                if time.monotonic() > deadline:
                    self._fail(f"{listener!r} not accepting connections within {STARTUP_TIMEOUT:.0f} s")
                time.sleep(0.05)
        return self

    @staticmethod
    def _accepts(listener):
        dtls = listener.tls or listener.client_certs or "psk_file" in listener.options
        if listener.protocol == "mqttsn" and dtls:
            # A DTLS gateway answers nothing in the clear. culex binds every socket before
            # it serves any, so a TCP listener listed before this one that accepts
            # connections shows this one is bound too.
            return True
        if listener.protocol == "mqttsn":
            return _answers_searchgw(listener)
        try:
            socket.create_connection((listener.host, listener.port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def _fail(self, why):
        self.stop()
        if self._reader is not None:
            self._reader.join(2)
        pytest.fail(f"{self.kind} failed to start: {why}\n--- config ---\n{self.config_text()}"
                    f"--- broker output ---\n{self.log()}", pytrace=False)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._dir.cleanup()

    def __repr__(self):
        return f"<TransportBroker {self.kind} {list(self.listeners.values())!r}>"


def _answers_searchgw(listener):
    # UDP has no connection to accept: a gateway is up once it answers
    # SEARCHGW (radius 0) with GWINFO.
    family = socket.AF_INET6 if ":" in listener.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.settimeout(0.2)
        try:
            s.sendto(b"\x03\x01\x00", (listener.host, listener.port))
            reply = s.recv(64)
        except OSError:
            return False
    return len(reply) >= 3 and reply[1] == 0x02


# ---------------------------------------------------------------------------
# paho clients over any listener


class TransportPeer(Peer):
    """A :class:`Peer` that connects through ``listener``'s transport.

    ``client_cert`` presents the client certificate; ``ws_path`` is the
    HTTP path of the WebSocket upgrade request.
    """

    def __init__(self, listener, certs, version=5, client_cert=False, ws_path="/mqtt",
                 username=None, **kw):
        # Peer only needs .host and .port of what it connects to.
        super().__init__(listener, version=version, **kw)
        if listener.websockets:
            self.client.transport = "websockets"
            self.client.ws_set_options(path=ws_path)
        if listener.tls or listener.client_certs:
            tls = {"ca_certs": certs.ca_pem}
            if client_cert:
                tls.update(certfile=certs.client_pem, keyfile=certs.client_key)
            self.client.tls_set(**tls)
        if username is not None:
            self.client.username_pw_set(username)


# ---------------------------------------------------------------------------
# Fixtures and hooks


@pytest.fixture(scope="session")
def certs():
    """The test PKI, generated once per session by ``scripts/gen-certs``."""
    # Not under pytest's private temporary directory: mosquitto, started as
    # root, reads the files as its own user.
    with tempfile.TemporaryDirectory(prefix="culex-certs-") as d:
        yield generate_certs(d)


@pytest.fixture
def transport_broker_factory(certs):
    """Start a broker for one test: ``transport_broker_factory([Listener(...)], allow_anonymous="false")``."""
    started = []

    def make(listeners, **settings):
        b = TransportBroker(listeners, certs, {k: str(v) for k, v in settings.items()})
        started.append(b)
        return b.start()

    make.started = started
    yield make
    for b in started:
        b.stop()


@pytest.fixture
def peer_factory(certs):
    """Connect paho clients through listeners: ``peer_factory(listener, version=5, client_cert=False)``.

    Returns a connected :class:`TransportPeer` (``expect_success=False``
    returns it after the CONNACK or the broker's refusal instead); every
    peer is disconnected at the end of the test.
    """
    peers = []

    def make(listener, version=5, expect_success=True, **kw):
        kw.setdefault("client_id", None)
        peer = TransportPeer(listener, certs, version=version, **kw)
        peers.append(peer)
        peer.connect(expect_success=expect_success)
        return peer

    yield make
    for peer in peers:
        peer.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # On failure, attach the tail of every TransportBroker's log the test used.
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    funcargs = getattr(item, "funcargs", {})
    brokers = [v for v in funcargs.values() if isinstance(v, TransportBroker)]
    factory = funcargs.get("transport_broker_factory")
    brokers += getattr(factory, "started", [])
    for b in brokers:
        tail = b.log().splitlines()[-LOG_TAIL_LINES:]
        report.sections.append((f"{b.kind} log (last {LOG_TAIL_LINES} lines)", "\n".join(tail)))
