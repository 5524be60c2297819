"""Fixtures for the interoperability suite.

The broker under test is culex by default (``$CULEX_BIN``, falling back to
``target/release/culex``).  Setting ``INTEROP_BROKER=mosquitto`` runs the same
suite against a stock mosquitto, which is how the tests themselves are
validated.  Tests that only hold where mosquitto deviates from the MQTT
specification carry the ``culex_only`` marker.
"""

import os
import re
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

# Imported here and loaded as a plugin below: let pytest rewrite its asserts first.
pytest.register_assert_rewrite("transport_broker")

from interop_util import Peer, unique_topic  # noqa: E402
from transport_broker import broker_binary  # noqa: E402

# Fixtures of the multi-listener brokers (TLS, WebSockets), for every module.
pytest_plugins = ["transport_broker"]

REPO_ROOT = Path(__file__).resolve().parents[2]
BROKER_KIND = os.environ.get("INTEROP_BROKER", "culex").strip().lower() or "culex"
STARTUP_TIMEOUT = 10.0
LOG_TAIL_LINES = 40
LISTENING_RE = re.compile(r"listening on 127\.0\.0\.1:(\d+)")

# Settings used by the shared broker.  They are small so that the tests
# which depend on them ($SYS publication, keepalive) finish quickly.
DEFAULT_SETTINGS = {
    "sys_interval": "1",
    "max_keepalive": "60",
}


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "culex_only(reason): the behaviour is required by the MQTT "
        "specification but mosquitto deviates from it; skipped when "
        "INTEROP_BROKER=mosquitto",
    )


def pytest_collection_modifyitems(config, items):
    if BROKER_KIND == "culex":
        return
    for item in items:
        marker = item.get_closest_marker("culex_only")
        if marker is not None:
            why = marker.kwargs.get("reason") or (marker.args[0] if marker.args else "")
            item.add_marker(pytest.mark.skip(reason=f"{BROKER_KIND} deviates from the spec: {why}"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # On failure, attach the tail of each broker's log to the report.
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    brokers = []
    funcargs = getattr(item, "funcargs", {})
    if isinstance(funcargs.get("broker"), Broker):
        brokers.append(funcargs["broker"])
    brokers += getattr(funcargs.get("broker_factory"), "started", [])
    brokers += getattr(funcargs.get("http_broker_factory"), "started", [])
    # Remote brokers of bridge tests (test_bridge.py), when a test uses them.
    brokers += getattr(funcargs.get("mosquitto_factory"), "started", [])
    for b in brokers:
        tail = b.log().splitlines()[-LOG_TAIL_LINES:]
        report.sections.append((f"{b!r} log (last {LOG_TAIL_LINES} lines)", "\n".join(tail)))


def pytest_report_header(config):
    return f"interop broker under test: {BROKER_KIND}"


class Broker:
    """A broker process listening on 127.0.0.1:port."""

    host = "127.0.0.1"

    def __init__(self, kind, settings):
        self.kind = kind
        self.settings = dict(settings)
        self.port = None
        self.proc = None
        self._dir = tempfile.TemporaryDirectory(prefix="culex-interop-")
        self._log = []
        self._log_lock = threading.Lock()
        self._listening = threading.Event()

    # -- log capture -----------------------------------------------------
    def _drain(self, stream):
        # Always drain the broker's output so it can never block on a full pipe.
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace")
            with self._log_lock:
                self._log.append(line)
            if self.port is None:
                m = LISTENING_RE.search(line)
                if m:
                    self.port = int(m.group(1))
                    self._listening.set()
        stream.close()

    def log(self):
        with self._log_lock:
            return "".join(self._log)

    # -- lifecycle -------------------------------------------------------
    def start(self):
        if self.kind == "culex":
            self._start_culex()
        elif self.kind == "mosquitto":
            self._start_mosquitto()
        else:
            raise RuntimeError(f"unknown INTEROP_BROKER {self.kind!r}")
        return self

    def _write_config(self, first_line):
        lines = [first_line, "allow_anonymous true"]
        lines += [f"{k} {v}" for k, v in self.settings.items()]
        path = Path(self._dir.name) / "broker.conf"
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o644)
        Path(self._dir.name).chmod(0o755)
        return path

    def _spawn(self, argv):
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=self._dir.name,
        )
        threading.Thread(target=self._drain, args=(self.proc.stdout,), daemon=True).start()

    def _fail(self, why):
        self.stop()
        pytest.fail(f"{self.kind} failed to start: {why}\n--- broker output ---\n{self.log()}", pytrace=False)

    def _start_culex(self):
        binary = broker_binary("culex")
        conf = self._write_config("listener 0 127.0.0.1")
        self._spawn([binary, "-c", str(conf)])
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not self._listening.wait(0.05):
            if self.proc.poll() is not None:
                self._listening.wait(0.2)
                if self.port is None:
                    self._fail(f"exited with status {self.proc.returncode}")
                break
            if time.monotonic() > deadline:
                self._fail(f"no 'listening on 127.0.0.1:PORT' line within {STARTUP_TIMEOUT:.0f} s")

    def _start_mosquitto(self):
        binary = broker_binary("mosquitto")
        self.port = free_port()
        conf = self._write_config(f"listener {self.port} 127.0.0.1")
        with conf.open("a") as f:
            f.write("log_dest stderr\npersistence false\n")
        self._spawn([binary, "-c", str(conf)])
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                self._fail(f"exited with status {self.proc.returncode}")
            try:
                socket.create_connection((self.host, self.port), timeout=0.5).close()
                break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self._fail(f"port {self.port} not accepting connections within {STARTUP_TIMEOUT:.0f} s")
            time.sleep(0.05)

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
        return f"<Broker {self.kind} {self.host}:{self.port}>"


ANY_LISTENING_RE = re.compile(r"listening on 127\.0\.0\.1:(\d+) \((\w+)\)")


class HttpBroker(Broker):
    """culex with its MQTT listener plus an HTTP API listener (``listener 0`` +
    ``protocol http``); ``port`` is the MQTT port, ``http_port`` the API's.

    ``token`` writes a token file and names it in ``http_token_file``;
    ``http_options`` are further lines of the API listener; ``tail_lines``
    are lines written after the listeners (bridge blocks, say).
    """

    def __init__(self, settings, token=None, http_options=None, tail_lines=None):
        super().__init__("culex", settings)
        self.token = token
        self.http_options = dict(http_options or {})
        self.tail_lines = list(tail_lines or [])
        self.http_port = None

    def _write_config(self, first_line):
        path = super()._write_config(first_line)
        lines = ["listener 0", "protocol http"]
        if self.token is not None:
            token_file = Path(self._dir.name) / "api.token"
            token_file.write_text(self.token + "\n")
            lines.append(f"http_token_file {token_file}")
        lines += [f"{k} {v}" for k, v in self.http_options.items()]
        lines += self.tail_lines
        with path.open("a") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def _drain(self, stream):
        # Like Broker._drain, but tells the two listeners apart by their protocol
        # and reports the broker up once both are listening.
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace")
            with self._log_lock:
                self._log.append(line)
            m = ANY_LISTENING_RE.search(line)
            if m:
                port, protocol = int(m.group(1)), m.group(2)
                if protocol == "http" and self.http_port is None:
                    self.http_port = port
                elif protocol == "mqtt" and self.port is None:
                    self.port = port
                if self.port is not None and self.http_port is not None:
                    self._listening.set()
        stream.close()

    def _start_culex(self):
        super()._start_culex()
        if self.http_port is None:
            self._fail("no 'listening on 127.0.0.1:PORT (http)' line")

    def __repr__(self):
        return f"<HttpBroker {self.host}:{self.port} api {self.host}:{self.http_port}>"


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_broker(**settings):
    merged = dict(DEFAULT_SETTINGS)
    merged.update({k: str(v) for k, v in settings.items()})
    return Broker(BROKER_KIND, merged).start()


@pytest.fixture(scope="session")
def broker():
    """One broker shared by every test that does not need its own config."""
    b = start_broker()
    yield b
    b.stop()


@pytest.fixture
def broker_factory():
    """Start a fresh broker with extra config settings: ``broker_factory(max_keepalive=5)``."""
    started = []

    def make(**settings):
        b = start_broker(**settings)
        started.append(b)
        return b

    make.started = started
    yield make
    for b in started:
        b.stop()


@pytest.fixture
def http_broker_factory():
    """Start culex with an HTTP API listener as well (culex only):
    ``http_broker_factory(token="secret", http_options={"http_request_timeout": 2}, **settings)``;
    ``tail_lines=[...]`` adds lines after the listeners (bridge blocks)."""
    started = []

    def make(token=None, http_options=None, tail_lines=None, **settings):
        merged = dict(DEFAULT_SETTINGS)
        merged.update({k: str(v) for k, v in settings.items()})
        b = HttpBroker(merged, token=token, http_options=http_options, tail_lines=tail_lines)
        started.append(b)
        return b.start()

    make.started = started
    yield make
    for b in started:
        b.stop()


@pytest.fixture
def topic(request):
    """A topic prefix unique to this test."""
    return unique_topic(request.node.name)


@pytest.fixture
def connect(broker):
    """Connect a paho client to the shared broker (or to ``on=`` another one).

    ``connect(version=5, client_id=None, clean=True, keepalive=60,
    properties=None, on=None)`` returns a connected :class:`Peer`; every
    peer still connected at the end of the test is disconnected.
    """
    peers = []

    def make(version=5, on=None, **kw):
        kw.setdefault("client_id", None)
        peer = Peer(on or broker, version=version, **kw)
        peers.append(peer)
        peer.connect()
        return peer

    yield make
    for peer in peers:
        peer.close()
