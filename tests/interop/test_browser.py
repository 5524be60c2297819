"""MQTT over WebSocket from a real browser.

Headless Chromium loads ``browser/index.html``, which uses MQTT.js (npm
``mqtt``, installed into ``browser/node_modules`` by ``scripts/test``) to
talk to the broker's WebSocket listener, while mosquitto_pub/mosquitto_sub
talk to the same broker over plain TCP.  Messages have to cross between the
two transports in both directions.

Chromium is driven through the DevTools protocol over
``--remote-debugging-pipe`` (NUL-separated JSON on file descriptors 3 and 4),
which needs no debugging port and no Python packages beyond the standard
library.  A missing Chromium or MQTT.js is a failure, not a skip: installing
them is the job of ``scripts/test``.
"""

import base64
import fcntl
import functools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlencode

import pytest

from interop_util import unique_topic
from transport_broker import Listener, TransportBroker

BROWSER_DIR = Path(__file__).resolve().parent / "browser"
MQTT_BUNDLE = BROWSER_DIR / "node_modules" / "mqtt" / "dist" / "mqtt.min.js"
PAGE_TIMEOUT = 15.0
CDP_TIMEOUT = 15.0
LOG_TAIL_LINES = 40

# Flags for headless Chromium run as root on a machine without network
# access: no sandbox (it refuses to run as root with one), and none of the
# background traffic (updates, sync, QUIC probes) that would only add noise
# or delays.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--mute-audio",
]

MQTT_VERSIONS = {
    # name: (MQTT.js protocolVersion, mosquitto_pub/sub -V)
    "3.1.1": ("4", "mqttv311"),
    "5.0": ("5", "mqttv5"),
}


def find_chromium():
    explicit = os.environ.get("CHROMIUM")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    return shutil.which("chromium")


class DevToolsError(AssertionError):
    pass


class Chromium:
    """A headless Chromium controlled over the DevTools protocol pipe."""

    def __init__(self, binary):
        self._tmp = tempfile.TemporaryDirectory(prefix="culex-chromium-")
        self.stderr_path = Path(self._tmp.name) / "chromium.log"
        profile = Path(self._tmp.name) / "profile"

        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        # The child's ends have to land on fds 3 and 4.  Moving them above 9
        # first means neither dup2 below can overwrite the other's source.
        child_in = fcntl.fcntl(to_child_r, fcntl.F_DUPFD_CLOEXEC, 10)
        child_out = fcntl.fcntl(from_child_w, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(to_child_r)
        os.close(from_child_w)
        log_fd = os.open(self.stderr_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)

        argv = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                "--remote-debugging-pipe", "about:blank"]
        try:
            # posix_spawn rather than subprocess: Popen cannot place a pipe on
            # a chosen descriptor number without a preexec_fn, which is unsafe
            # with the threads this suite runs.  Its own process group lets
            # close() stop the renderer and helper processes with it.
            self.pid = os.posix_spawn(binary, argv, os.environ, file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, log_fd, 1),
                (os.POSIX_SPAWN_DUP2, log_fd, 2),
                (os.POSIX_SPAWN_DUP2, child_in, 3),
                (os.POSIX_SPAWN_DUP2, child_out, 4),
            ], setpgroup=0)
        finally:
            for fd in (child_in, child_out, log_fd):
                os.close(fd)

        self._cond = threading.Condition()
        self._write_lock = threading.Lock()
        self._next_id = 0
        self._responses = {}
        self._events = {}
        self._closed = False
        self._returncode = None
        threading.Thread(target=self._read_loop, daemon=True).start()
        try:
            self.product = self.send("Browser.getVersion").get("product", "?")
        except DevToolsError:
            # A browser that cannot start must not outlive the failure.
            self.close()
            raise

    # -- protocol --------------------------------------------------------
    def _read_loop(self):
        buf = bytearray()
        while True:
            try:
                chunk = os.read(self._from_child, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                break
            buf += chunk
            while True:
                end = buf.find(b"\0")
                if end < 0:
                    break
                msg = json.loads(bytes(buf[:end]))
                del buf[:end + 1]
                self._dispatch(msg)
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _dispatch(self, msg):
        with self._cond:
            if "id" in msg:
                self._responses[msg["id"]] = msg
            else:
                session = msg.get("sessionId")
                self._events.setdefault(session, []).append((msg.get("method"), msg.get("params", {})))
            self._cond.notify_all()

    def send(self, method, params=None, session=None, timeout=CDP_TIMEOUT):
        """Send a command and return its result (raising DevToolsError on an error)."""
        with self._cond:
            self._next_id += 1
            mid = self._next_id
        msg = {"id": mid, "method": method, "params": params or {}}
        if session is not None:
            msg["sessionId"] = session
        data = json.dumps(msg).encode() + b"\0"
        with self._write_lock:
            try:
                while data:
                    data = data[os.write(self._to_child, data):]
            except OSError as e:
                raise DevToolsError(f"{method}: cannot write to Chromium: {e}\n{self.log_tail()}")
        with self._cond:
            done = self._cond.wait_for(lambda: mid in self._responses or self._closed, timeout)
            reply = self._responses.pop(mid, None)
        if reply is None:
            why = "Chromium closed the DevTools pipe" if done else f"no reply within {timeout:.0f} s"
            raise DevToolsError(f"{method}: {why}\n{self.log_tail()}")
        if "error" in reply:
            raise DevToolsError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def events(self, session):
        with self._cond:
            return list(self._events.get(session, []))

    # -- lifecycle -------------------------------------------------------
    def _reap(self, timeout):
        deadline = time.monotonic() + timeout
        while self._returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self._returncode = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def log_tail(self, lines=LOG_TAIL_LINES):
        try:
            text = self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""
        # Without a session bus (containers, CI) every start logs D-Bus
        # errors that have nothing to do with the test.
        kept = [line for line in text.splitlines() if ":ERROR:dbus/" not in line]
        tail = "\n".join(kept[-lines:])
        return f"--- chromium stderr (last {lines} lines) ---\n{tail}"

    def close(self):
        try:
            self.send("Browser.close", timeout=5)
        except DevToolsError:
            pass
        if not self._reap(5):
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(self.pid, sig)
                except OSError:
                    break
                if self._reap(5):
                    break
        # Helpers of a browser that exited on its own may still be winding down.
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except OSError:
            pass
        for fd in (self._to_child, self._from_child):
            try:
                os.close(fd)
            except OSError:
                pass
        self._tmp.cleanup()


class Page:
    """One tab, with its console output and WebSocket traffic recorded."""

    SNAPSHOT_JS = """(() => {
        const text = (id) => { const e = document.getElementById(id); return e ? e.textContent : null; };
        return {state: text("state"), result: text("result"), log: text("log"),
                title: document.title, url: location.href};
    })()"""

    def __init__(self, browser, url):
        self.browser = browser
        self.url = url
        self.target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = browser.send("Target.attachToTarget",
                                    {"targetId": self.target, "flatten": True})["sessionId"]
        # Enabled before navigating so that nothing the page does is missed.
        for domain in ("Runtime", "Log", "Network", "Page"):
            self.send(f"{domain}.enable")
        nav = self.send("Page.navigate", {"url": url})
        if nav.get("errorText"):
            raise DevToolsError(f"loading {url} failed: {nav['errorText']}")

    def send(self, method, params=None, timeout=CDP_TIMEOUT):
        return self.browser.send(method, params, session=self.session, timeout=timeout)

    def evaluate(self, expression, await_promise=False, timeout=CDP_TIMEOUT):
        reply = self.send("Runtime.evaluate", {
            "expression": expression,
            "returnByValue": True,
            "awaitPromise": await_promise,
        }, timeout=timeout)
        if "exceptionDetails" in reply:
            details = reply["exceptionDetails"]
            desc = details.get("exception", {}).get("description") or details.get("text")
            raise DevToolsError(f"evaluating {expression!r} threw: {desc}\n{self.diagnostics()}")
        return reply["result"].get("value")

    def snapshot(self):
        try:
            return self.evaluate(self.SNAPSHOT_JS) or {}
        except DevToolsError as e:
            return {"state": None, "snapshot_error": str(e).splitlines()[0]}

    def console(self):
        """The page's console, errors and WebSocket activity, one line each."""
        lines = []
        for method, p in self.browser.events(self.session):
            if method == "Runtime.consoleAPICalled":
                args = " ".join(str(a.get("value", a.get("description", a.get("type")))) for a in p.get("args", []))
                lines.append(f"console.{p.get('type')}: {args}")
            elif method == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                lines.append(f"exception: {d.get('exception', {}).get('description') or d.get('text')}")
            elif method == "Log.entryAdded":
                e = p.get("entry", {})
                lines.append(f"log.{e.get('level')} [{e.get('source')}]: {e.get('text')} {e.get('url', '')}".rstrip())
            elif method == "Network.webSocketCreated":
                lines.append(f"ws created: {p.get('url')}")
            elif method == "Network.webSocketWillSendHandshakeRequest":
                lines.append(f"ws handshake request headers: {p.get('request', {}).get('headers')}")
            elif method == "Network.webSocketHandshakeResponseReceived":
                r = p.get("response", {})
                lines.append(f"ws handshake response: {r.get('status')} {r.get('statusText')} {r.get('headers')}")
            elif method in ("Network.webSocketFrameSent", "Network.webSocketFrameReceived"):
                lines.append(f"ws frame {'sent' if method.endswith('Sent') else 'received'}: "
                             f"{describe_frame(p.get('response', {}))}")
            elif method == "Network.webSocketFrameError":
                lines.append(f"ws frame error: {p.get('errorMessage')}")
            elif method == "Network.webSocketClosed":
                lines.append("ws closed")
            elif method == "Network.loadingFailed":
                lines.append(f"loading failed: {p.get('errorText')} ({p.get('type')})")
        return lines

    def diagnostics(self, snap=None):
        snap = self.snapshot() if snap is None else snap
        parts = [
            f"page: {self.url}",
            f"state: {snap.get('state')!r}  title: {snap.get('title')!r}",
            f"result: {snap.get('result')!r}",
            "--- page log ---", (snap.get("log") or "").rstrip(),
            "--- console / network ---", *self.console(),
        ]
        if snap.get("snapshot_error"):
            parts.append(f"(could not read the page: {snap['snapshot_error']})")
        return "\n".join(parts)

    def close(self):
        try:
            self.browser.send("Target.closeTarget", {"targetId": self.target}, timeout=5)
        except DevToolsError:
            pass


def describe_frame(frame):
    opcode = frame.get("opcode")
    data = frame.get("payloadData", "")
    if opcode == 2:
        # Binary frames arrive base64-encoded; show the MQTT packet type(s).
        raw = base64.b64decode(data)
        return f"binary {len(raw)} bytes, first byte 0x{raw[0]:02x}" if raw else "binary 0 bytes"
    return f"opcode {opcode} {len(data)} chars"


class QuietHandler(SimpleHTTPRequestHandler):
    # Static files only; pytest's output stays clean of access logs.
    def log_message(self, format, *args):
        pass


# ---------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def ws_broker():
    """The broker under test with a plain MQTT and a WebSocket listener."""
    b = TransportBroker([Listener("tcp"), Listener("ws", protocol="websockets")], certs=None).start()
    yield b
    b.stop()


@pytest.fixture(scope="module")
def page_server():
    """Base URL of an HTTP server for tests/interop/browser."""
    if not MQTT_BUNDLE.is_file():
        pytest.fail(f"MQTT.js browser bundle missing: {MQTT_BUNDLE}\n"
                    f"install it with scripts/test, or: (cd {BROWSER_DIR} && npm ci)", pytrace=False)
    handler = functools.partial(QuietHandler, directory=str(BROWSER_DIR))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def chromium():
    binary = find_chromium()
    if binary is None:
        pytest.fail("chromium not found (apt-get install chromium, or set CHROMIUM); "
                    "scripts/test installs it", pytrace=False)
    browser = Chromium(binary)
    yield browser
    browser.close()


@pytest.fixture
def open_page(chromium, page_server, ws_broker):
    """``open_page(topic=..., v="5")`` opens index.html connected to the ws listener."""
    pages = []

    def open_(**query):
        query = {"url": f"ws://{ws_broker['ws'].host}:{ws_broker['ws'].port}/mqtt", **query}
        page = Page(chromium, f"{page_server}/index.html?{urlencode(query)}")
        pages.append(page)
        return page

    yield open_
    for page in pages:
        page.close()


# ---------------------------------------------------------------------------
# Helpers


def log_tail(broker):
    return "\n".join(broker.log().splitlines()[-LOG_TAIL_LINES:])


def failure_report(page, broker, what, snap=None, extra=""):
    parts = [what, page.diagnostics(snap)]
    if extra:
        parts.append(extra)
    parts.append(f"--- {broker!r} log (last {LOG_TAIL_LINES} lines) ---\n{log_tail(broker)}")
    parts.append(page.browser.log_tail(15))
    return "\n".join(parts)


def wait_page_state(page, broker, wanted, timeout=PAGE_TIMEOUT):
    """Poll the page until its state is ``wanted``; fail early on an error."""
    deadline = time.monotonic() + timeout
    while True:
        snap = page.snapshot()
        state = snap.get("state") or ""
        if state == wanted:
            return snap
        if state.startswith("error") or (state == "closed" and wanted != "closed"):
            pytest.fail(failure_report(page, broker, f"page reached {state!r} instead of {wanted!r}", snap),
                        pytrace=False)
        if time.monotonic() > deadline:
            pytest.fail(failure_report(page, broker, f"page not {wanted!r} within {timeout:.0f} s", snap),
                        pytrace=False)
        time.sleep(0.1)


def make_payload(size):
    # Non-ASCII text, so that a transport which mangles bytes is caught too.
    unit = "grüße-µ-✓-" + os.urandom(4).hex() + ";"
    if size is None:
        return unit
    return (unit * (size // len(unit.encode()) + 1))[:size]


# ---------------------------------------------------------------------------
# Tests


@pytest.mark.parametrize("version,size", [
    ("3.1.1", None),
    ("5.0", None),
    # Over 64 KiB, so the broker has to send a WebSocket frame with a 64-bit
    # length (or several frames) and an MQTT remaining length of 3 bytes.
    ("3.1.1", 100_000),
], ids=["v311", "v5", "v311-100k"])
def test_browser_receives_from_tcp(open_page, ws_broker, version, size):
    page_version, cli_version = MQTT_VERSIONS[version]
    topic = unique_topic(f"browser-rx-{page_version}")
    payload = make_payload(size)
    page = open_page(topic=topic, v=page_version, qos="1")
    wait_page_state(page, ws_broker, "subscribed")

    pub = subprocess.run(
        ["mosquitto_pub", "-h", ws_broker["tcp"].host, "-p", str(ws_broker["tcp"].port),
         "-V", cli_version, "-q", "1", "-t", topic, "-s"],
        input=payload.encode(), capture_output=True, timeout=15)
    assert pub.returncode == 0, failure_report(
        page, ws_broker, f"mosquitto_pub failed with status {pub.returncode}",
        extra=(pub.stdout + pub.stderr).decode(errors="replace"))

    snap = wait_page_state(page, ws_broker, "received")
    assert snap.get("title") == "received"
    result = json.loads(snap["result"])
    what = failure_report(page, ws_broker, "wrong message in the browser", snap)
    assert result["topic"] == topic, what
    assert result["length"] == len(payload.encode()), what
    assert result["payload"] == payload, what
    assert result["qos"] == 1, what
    assert result["retain"] is False, what


@pytest.mark.parametrize("version", ["3.1.1", "5.0"], ids=["v311", "v5"])
def test_browser_publishes_to_tcp(open_page, ws_broker, version):
    page_version, cli_version = MQTT_VERSIONS[version]
    topic = unique_topic(f"browser-tx-{page_version}")
    payload = make_payload(None)
    page = open_page(v=page_version)
    wait_page_state(page, ws_broker, "connected")

    # -d reports the SUBACK, so the page publishes only once the subscriber
    # is in place; -F marks the message line among the debug lines.  stdbuf
    # makes those lines arrive as they are written, not when it exits.
    sub = subprocess.Popen(
        ["stdbuf", "-oL", "mosquitto_sub", "-h", ws_broker["tcp"].host, "-p", str(ws_broker["tcp"].port),
         "-V", cli_version, "-q", "1", "-t", topic, "-C", "1", "-W", "10", "-d",
         "-F", "MESSAGE %t %p"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines = []
    subscribed = threading.Event()

    def read():
        for raw in iter(sub.stdout.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            lines.append(line)
            if "received SUBACK" in line:
                subscribed.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        if not subscribed.wait(10):
            pytest.fail(failure_report(page, ws_broker, "mosquitto_sub did not get a SUBACK",
                                       extra="\n".join(lines)), pytrace=False)
        outcome = page.evaluate(f"mqttPublish({json.dumps(topic)}, {json.dumps(payload)}, 1)",
                                await_promise=True)
        assert outcome == "published", failure_report(page, ws_broker, f"mqttPublish returned {outcome!r}")
        rc = sub.wait(timeout=15)
    finally:
        if sub.poll() is None:
            sub.kill()
            sub.wait()
        reader.join(5)
        sub.stdout.close()

    output = "\n".join(lines)
    messages = [line[len("MESSAGE "):] for line in lines if line.startswith("MESSAGE ")]
    what = failure_report(page, ws_broker, f"mosquitto_sub exited with {rc}", extra=output)
    assert rc == 0, what
    assert messages == [f"{topic} {payload}"], what
