"""MQTT bridges (``connection`` blocks, and bridges added over the HTTP API)
with real remote brokers: mosquitto over TCP and TLS, and a second culex
over WebSockets and secure WebSockets.

Every test starts a culex of its own (MQTT listener + API listener, the
bridge block after them) and its own remote broker, and looks at what users
see: which messages arrive on the other side, on which topic, with which
payload, QoS and retain flag, and that none is lost or echoed back.  Bridges
are culex's own: the module is skipped with ``INTEROP_BROKER=mosquitto``, but
a missing mosquitto is a failure.
"""

import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from interop_util import Peer, unique_client_id, wait_for
from transport_broker import Listener, broker_binary, free_port

BROKER_KIND = os.environ.get("INTEROP_BROKER", "culex").strip().lower() or "culex"
pytestmark = pytest.mark.skipif(BROKER_KIND != "culex", reason="bridges are culex's own")

TIMEOUT = 10
TOKEN = "bridge-token-" + uuid.uuid4().hex
API = "/api/v1/"
PROTOCOLS = [pytest.param("mqttv311", id="v311"), pytest.param("mqttv50", id="v5")]
# Every byte value: the payload must cross unchanged.
BINARY = bytes(range(256))
SETTLE = 1.2  # seconds to wait for echoes or stray deliveries


# ---------------------------------------------------------------------------
# The remote mosquitto


class Mosquitto:
    """mosquitto with its config in ``directory``: a plain listener on ``port``
    and, with ``certfile``/``keyfile``, a TLS listener on ``tls_port``.  The
    ports stay the same across :meth:`restart`."""

    host = "127.0.0.1"

    def __init__(self, directory, settings=(), certfile=None, keyfile=None, cafile=None):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.tls_port = free_port() if certfile else None
        self.conf = self.dir / "mosquitto.conf"
        # Started as root, mosquitto would read its files as another user.
        lines = ["user root", "log_dest stderr", "log_type all"]
        if not any(line.startswith("allow_anonymous") for line in settings):
            lines.append("allow_anonymous true")
        lines += list(settings)
        lines += [f"listener {self.port} 127.0.0.1"]
        if certfile:
            lines += [f"listener {self.tls_port} 127.0.0.1", f"certfile {certfile}", f"keyfile {keyfile}"]
            if cafile:
                lines.append(f"cafile {cafile}")
        self.conf.write_text("\n".join(lines) + "\n")
        self.proc = None
        self._log = []
        self._lock = threading.Lock()

    def _drain(self, stream):
        for raw in iter(stream.readline, b""):
            with self._lock:
                self._log.append(raw.decode("utf-8", "replace"))
        stream.close()

    def log(self):
        with self._lock:
            return "".join(self._log)

    def start(self):
        binary = broker_binary("mosquitto")
        self.proc = subprocess.Popen([binary, "-c", str(self.conf)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=self.dir)
        threading.Thread(target=self._drain, args=(self.proc.stdout,), daemon=True).start()
        deadline = time.monotonic() + TIMEOUT
        for port in filter(None, (self.port, self.tls_port)):
            while True:
                if self.proc.poll() is not None:
                    time.sleep(0.2)
                    pytest.fail(f"mosquitto exited with {self.proc.returncode}:\n"
                                f"{self.conf.read_text()}\n{self.log()}", pytrace=False)
                try:
                    socket.create_connection((self.host, port), timeout=0.5).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        pytest.fail(f"mosquitto not listening on {port}:\n{self.log()}", pytrace=False)
                    time.sleep(0.02)
        return self

    def stop(self, sig=signal.SIGTERM):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def restart(self):
        self.stop()
        return self.start()

    def __repr__(self):
        return f"<mosquitto 127.0.0.1:{self.port}{f' tls {self.tls_port}' if self.tls_port else ''}>"


@pytest.fixture
def mosquitto_factory(tmp_path):
    """``mosquitto_factory(settings=[...], certfile=..., keyfile=...)``: a started mosquitto."""
    started = []

    def make(**kw):
        m = Mosquitto(tmp_path / f"mosquitto{len(started)}", **kw)
        started.append(m)
        return m.start()

    make.started = started
    yield make
    for m in started:
        m.stop()


@pytest.fixture(autouse=True)
def _tools_installed():
    # A missing peer is a failure, never a skip.
    for tool in ("mosquitto", "mosquitto_passwd", "openssl"):
        assert shutil.which(tool) or os.access(f"/usr/sbin/{tool}", os.X_OK), \
            f"{tool} not found: install mosquitto, mosquitto-clients and openssl (scripts/test does)"


# ---------------------------------------------------------------------------
# The API of the local culex


class Resp:
    def __init__(self, status, body):
        self.status = status
        self.body = body

    @property
    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<{self.status} {self.body[:400]!r}>"


class Api:
    def __init__(self, broker):
        self.broker = broker

    def request(self, method, path, body=None):
        conn = http.client.HTTPConnection(self.broker.host, self.broker.http_port, timeout=TIMEOUT)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        if body is not None:
            body = json.dumps(body)
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, API + path, body=body, headers=headers)
            r = conn.getresponse()
            return Resp(r.status, r.read())
        finally:
            conn.close()

    def bridge(self, name):
        r = self.request("GET", f"bridges/{name}")
        assert r.status == 200, f"GET bridges/{name}: {r}"
        return r.json

    def wait_state(self, name, states, timeout=TIMEOUT):
        states = (states,) if isinstance(states, str) else tuple(states)
        last = {}

        def reached():
            last.update(self.bridge(name))
            return last["state"] in states

        try:
            wait_for(reached, timeout, interval=0.05, message=f"bridge {name} {states}")
        except AssertionError as e:
            raise AssertionError(f"{e}; bridge is {last}\n--- culex log ---\n"
                                 f"{self.broker.log()[-3000:]}") from None
        return dict(last)


def bridge_block(name, address, topics, protocol="mqttv311", **options):
    """The lines of a ``connection`` block; options with a list value repeat."""
    opts = {"bridge_protocol_version": protocol, "keepalive_interval": 5,
            "restart_timeout": "1", "cleansession": "false", "try_private": "true"}
    opts.update(options)
    lines = [f"connection {name}", f"address {address}"]
    lines += [f"topic {t}" for t in topics]
    for k, v in opts.items():
        if v is None:
            continue
        if isinstance(v, bool):
            v = str(v).lower()
        lines.append(f"{k} {v}")
    return lines


@pytest.fixture
def culex(http_broker_factory):
    """``culex(*bridge_blocks, **settings)``: a culex with an API listener and
    the bridges; returns ``(broker, api)``."""

    def make(*blocks, **settings):
        lines = [line for block in blocks for line in block]
        b = http_broker_factory(token=TOKEN, tail_lines=lines, **settings)
        return b, Api(b)

    return make


@pytest.fixture
def peers():
    """``peers(broker_or_listener, version=5, **kw)``: connected paho clients, closed at teardown."""
    made = []

    def make(target, version=5, tls_ca=None, **kw):
        kw.setdefault("client_id", None)
        p = Peer(target, version=version, **kw)
        if tls_ca:
            p.client.tls_set(ca_certs=tls_ca)
        made.append(p)
        p.connect()
        return p

    yield make
    for p in made:
        p.close()


class Remote:
    """host/port of a listener of a remote broker, as Peer wants it."""

    def __init__(self, host, port):
        self.host, self.port = host, port


# ---------------------------------------------------------------------------
# Helpers


def prime(pub, sub, topic, timeout=TIMEOUT):
    """Publish probes on ``topic`` from ``pub`` until ``sub`` gets one: the bridge's
    subscriptions for that path are in place on both brokers."""
    deadline = time.monotonic() + timeout
    n = 0
    while True:
        n += 1
        payload = f"probe-{n}".encode()
        pub.publish(topic, payload, qos=0)
        try:
            sub.wait_payload(payload, timeout=0.3)
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise AssertionError(f"no probe crossed the bridge on {topic} within {timeout} s; "
                                     f"{sub.client_id} got {sub.received()!r}") from None


def real(messages):
    return [m for m in messages if not m.payload.startswith(b"probe-")]


def with_payload(peer, payload):
    return [m for m in peer.received() if m.payload == payload]


def assert_serves(broker, peers):
    """The broker still serves MQTT: a subscriber gets a QoS 1 message."""
    topic = f"alive/{uuid.uuid4().hex[:8]}"
    sub = peers(broker)
    sub.subscribe(topic, 1)
    pub = peers(broker)
    pub.publish(topic, b"still here", qos=1)
    msg = sub.wait_message(topic)
    assert msg.payload == b"still here"


def connect_attempts(broker, name):
    return broker.log().count(f"bridge {name}: connecting to")


def openssl(*args, cwd):
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, f"openssl {' '.join(args)}: {done.stderr}"


def make_ca(directory, name):
    """A self-signed CA of its own: ``directory/name.pem`` and ``.key``."""
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.pem", "-subj", f"/CN={name}",
            "-days", "2", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)
    return str(Path(directory) / f"{name}.pem"), str(Path(directory) / f"{name}.key")


def make_leaf(directory, name, ca_pem, ca_key, san):
    """A server certificate signed by the given CA for ``san`` only."""
    (Path(directory) / f"{name}.ext").write_text(
        "[ext]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        f"extendedKeyUsage=serverAuth\nsubjectAltName={san}\n")
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=directory)
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", ca_pem, "-CAkey", ca_key,
            "-set_serial", f"0x{uuid.uuid4().hex}", "-days", "2", "-sha256",
            "-extfile", f"{name}.ext", "-extensions", "ext", "-out", f"{name}.pem", cwd=directory)
    return str(Path(directory) / f"{name}.pem"), str(Path(directory) / f"{name}.key")


def exercise_core(local, remote, peers, qos=1, local_peer_kw=None, remote_peer_kw=None):
    """The core of every bridge: ``site/sensors/#`` goes out as ``gw/sensors/#`` and
    ``gw/cmd/#`` comes in as ``site/cmd/#``, at ``qos``; the payload crosses byte
    for byte.  Needs the mappings ``sensors/# out QOS site/ gw/`` and
    ``cmd/# in QOS site/ gw/``."""
    lsub = peers(local, **(local_peer_kw or {}))
    lsub.subscribe("site/cmd/#", qos)
    lpub = peers(local, **(local_peer_kw or {}))
    rsub = peers(remote, **(remote_peer_kw or {}))
    rsub.subscribe("gw/sensors/#", qos)
    rpub = peers(remote, **(remote_peer_kw or {}))
    prime(lpub, rsub, "site/sensors/probe")
    prime(rpub, lsub, "gw/cmd/probe")

    lpub.publish("site/sensors/temp", BINARY + b"out", qos=qos)
    rpub.publish("gw/cmd/reboot", BINARY + b"in", qos=qos)
    out = rsub.wait_payload(BINARY + b"out")[-1]
    inc = lsub.wait_payload(BINARY + b"in")[-1]
    assert (out.topic, out.payload, out.qos) == ("gw/sensors/temp", BINARY + b"out", qos), out
    assert (inc.topic, inc.payload, inc.qos) == ("site/cmd/reboot", BINARY + b"in", qos), inc
    time.sleep(0.3)
    assert len(with_payload(rsub, BINARY + b"out")) == 1, rsub.received()
    assert len(with_payload(lsub, BINARY + b"in")) == 1, lsub.received()
    return lpub, rpub, lsub, rsub


CORE_TOPICS = ["sensors/# out 1 site/ gw/", "cmd/# in 1 site/ gw/"]


# ---------------------------------------------------------------------------
# 1. culex -> mosquitto over TCP


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_tcp_bridge_to_mosquitto(protocol, mosquitto_factory, culex, peers):
    mosq = mosquitto_factory()
    topics = [f"q{q}/# out {q} site/ gw/" for q in (0, 1, 2)]
    topics += [f"c{q}/# in {q} site/ gw/" for q in (0, 1, 2)]
    topics += ["ret/# out 1 site/ gw/", "loop/# both 1 site/ gw/"]
    local, api = culex(bridge_block("m1", f"127.0.0.1:{mosq.port}", topics, protocol,
                                    notifications="true"))
    info = api.wait_state("m1", "connected")
    assert info["protocol"] == protocol and info["address"] == f"127.0.0.1:{mosq.port}", info

    lpub, rpub = peers(local), peers(mosq)
    lsub, rsub = peers(local), peers(mosq)
    # Everything under the mapped prefixes, on each side.
    lall, rall = peers(local), peers(mosq)
    lall.subscribe("site/#", 1)
    rall.subscribe("gw/#", 1)
    for q in (0, 1, 2):
        rsub.subscribe(f"gw/q{q}/#", q)
        lsub.subscribe(f"site/c{q}/#", q)
    for q in (0, 1, 2):
        prime(lpub, rsub, f"site/q{q}/probe")
        prime(rpub, lsub, f"gw/c{q}/probe")

    # Out and in at each QoS: mapped topic, exact payload, the subscription's QoS.
    for q in (0, 1, 2):
        lpub.publish(f"site/q{q}/a", BINARY + bytes([q]), qos=q)
        rpub.publish(f"gw/c{q}/b", BINARY + bytes([q, q]), qos=q)
    for q in (0, 1, 2):
        m = rsub.wait_payload(BINARY + bytes([q]))[-1]
        assert (m.topic, m.qos, m.retain) == (f"gw/q{q}/a", q, False), m
        m = lsub.wait_payload(BINARY + bytes([q, q]))[-1]
        assert (m.topic, m.qos, m.retain) == (f"site/c{q}/b", q, False), m
    # An out mapping carries nothing in, an in mapping nothing out.
    rpub.publish("gw/q1/wrong-way", b"wrong-way-in", qos=1)
    lpub.publish("site/c1/wrong-way", b"wrong-way-out", qos=1)

    # Retained: published here on an out topic, kept retained over there.
    lpub.publish("site/ret/state", b"retained-value", qos=1, retain=True)
    late = peers(mosq)

    def retained_there():
        late.subscribe("gw/ret/#", 1)
        time.sleep(0.2)
        got = late.received("gw/ret/state")
        late.unsubscribe("gw/ret/#")
        return got

    got = wait_for(retained_there, TIMEOUT, interval=0.1, message="retained message on mosquitto")
    assert (got[0].payload, got[0].retain) == (b"retained-value", True), got

    # Loop prevention on a `both` mapping: one message each way, exactly once, no echo.
    lloop, rloop = peers(local), peers(mosq)
    lloop.subscribe("site/loop/#", 1)
    rloop.subscribe("gw/loop/#", 1)
    prime(lpub, rloop, "site/loop/probe")
    prime(rpub, lloop, "gw/loop/probe")
    lpub.publish("site/loop/a", b"from-local", qos=1)
    rpub.publish("gw/loop/b", b"from-remote", qos=1)
    rloop.wait_payload(b"from-local")
    lloop.wait_payload(b"from-remote")
    time.sleep(SETTLE)
    assert sorted((m.topic, m.payload) for m in real(rloop.received())) == \
        [("gw/loop/a", b"from-local"), ("gw/loop/b", b"from-remote")], rloop.received()
    assert sorted((m.topic, m.payload) for m in real(lloop.received())) == \
        [("site/loop/a", b"from-local"), ("site/loop/b", b"from-remote")], lloop.received()

    # Nothing arrived twice, nothing went the wrong way.
    for q in (0, 1, 2):
        assert len(with_payload(rsub, BINARY + bytes([q]))) == 1, rsub.received()
        assert len(with_payload(lsub, BINARY + bytes([q, q]))) == 1, lsub.received()
    # (Each was seen on its own broker, under its own prefix, only.)
    assert [m.topic for m in lall.received() if m.payload.startswith(b"wrong-way")] == \
        ["site/c1/wrong-way"], lall.received()
    assert [m.topic for m in rall.received() if m.payload.startswith(b"wrong-way")] == \
        ["gw/q1/wrong-way"], rall.received()

    # Notifications: the bridge's state, retained on both brokers.
    info = api.bridge("m1")
    assert info["state"] == "connected" and info["connects"] == 1, info
    assert info["messages_out"] >= 5 and info["messages_in"] >= 4, info


def notified(peers, remote_clientid, *brokers):
    """What each broker has retained on ``$SYS/broker/connection/ID/state``:
    ``{broker: (payload, retain) or None}``."""
    state_topic = f"$SYS/broker/connection/{remote_clientid}/state"
    seen = {}
    watchers = []
    for broker in brokers:
        watcher = peers(broker)
        watcher.subscribe(state_topic, 1)
        watchers.append((broker, watcher))
    for broker, watcher in watchers:
        try:
            m = watcher.wait_message(state_topic, timeout=2)
            seen[repr(broker)] = (m.payload, m.retain)
        except AssertionError:
            seen[repr(broker)] = None
    return seen


# ---------------------------------------------------------------------------
# 2. Over TLS


@pytest.mark.parametrize("case", ["verified", "insecure-wrong-name"])
def test_tls_bridge_to_mosquitto(case, certs, tmp_path, mosquitto_factory, culex, peers):
    if case == "verified":
        certfile, keyfile = certs.server_pem, certs.server_key
        opts = {"bridge_cafile": certs.ca_pem}
    else:
        # Signed by the test CA, but for another name than the address the bridge dials.
        certfile, keyfile = make_leaf(tmp_path, "wrongname", certs.ca_pem, certs.ca_key,
                                      "DNS:wrong.example")
        opts = {"bridge_cafile": certs.ca_pem, "bridge_insecure": "true"}
    mosq = mosquitto_factory(certfile=certfile, keyfile=keyfile)
    blocks = [bridge_block("t1", f"127.0.0.1:{mosq.tls_port}", CORE_TOPICS, "mqttv50", **opts)]
    if case != "verified":
        # The same certificate without bridge_insecure: refused for its name.
        blocks.append(bridge_block("strict", f"127.0.0.1:{mosq.tls_port}", CORE_TOPICS,
                                   "mqttv50", bridge_cafile=certs.ca_pem))
    local, api = culex(*blocks)
    info = api.wait_state("t1", "connected")
    assert info["tls"] is True, info
    # The plain listener serves the test's clients: what crossed went through TLS.
    exercise_core(local, mosq, peers)
    if case != "verified":
        strict = wait_for(lambda: (lambda b: b if b["last_error"] else None)(api.bridge("strict")),
                          TIMEOUT, message="an error for the strict bridge")
        assert strict["state"] != "connected" and strict["connects"] == 0, strict


# ---------------------------------------------------------------------------
# 3. The remote broker restarts during a QoS 1 stream


def test_remote_restart_loses_nothing(tmp_path, mosquitto_factory, culex, peers):
    n, kill_at = 200, 50
    persist = tmp_path / "persist"
    persist.mkdir()
    # Persistence, saved at SIGTERM: what mosquitto acknowledged survives its restart.
    mosq = mosquitto_factory(settings=["persistence true", f"persistence_location {persist}/"])
    local, api = culex(bridge_block("r1", f"127.0.0.1:{mosq.port}",
                                    ["stream/# out 1 site/ gw/"], "mqttv311",
                                    cleansession="false", restart_timeout="1"))
    api.wait_state("r1", "connected")

    # The collector: a persistent session on mosquitto that reconnects by itself.
    got = []
    lock = threading.Lock()
    sub_id = unique_client_id("col")
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=sub_id,
                      protocol=mqtt.MQTTv311, clean_session=False)
    sub.reconnect_delay_set(min_delay=0.1, max_delay=0.5)
    subscribed = threading.Event()

    def on_connect(client, userdata, flags, rc, props):
        client.subscribe("gw/stream/#", 1)

    def on_subscribe(client, userdata, mid, rcs, props):
        subscribed.set()

    def on_message(client, userdata, msg):
        with lock:
            got.append(bytes(msg.payload))

    sub.on_connect, sub.on_subscribe, sub.on_message = on_connect, on_subscribe, on_message
    sub.connect("127.0.0.1", mosq.port, keepalive=5)
    sub.loop_start()
    try:
        assert subscribed.wait(TIMEOUT), "collector not subscribed"
        pub = peers(local)
        prime(pub, Collector(got, lock), "site/stream/probe")
        killed_at = restarted = None
        for i in range(n):
            pub.publish("site/stream/seq", f"seq-{i}".encode(), qos=1)
            if i == kill_at:
                mosq.stop(signal.SIGTERM)
                killed_at = time.monotonic()
            if killed_at and not restarted and time.monotonic() - killed_at >= 1.0:
                mosq.start()
                restarted = True
            time.sleep(0.008)
        if not restarted:
            time.sleep(max(0.0, 1.0 - (time.monotonic() - killed_at)))
            mosq.start()
        want = {f"seq-{i}".encode() for i in range(n)}

        def all_there():
            with lock:
                return want <= set(got)

        try:
            wait_for(all_there, 20, interval=0.1, message="every sequence number")
        except AssertionError:
            with lock:
                missing = sorted(int(p[4:]) for p in want - set(got))
            info = api.bridge("r1")
            raise AssertionError(f"{len(missing)} of {n} messages lost: {missing[:40]}...; "
                                 f"bridge {info}\n--- culex log ---\n{local.log()[-4000:]}") from None
    finally:
        sub.loop_stop()
        sub.disconnect()
    info = api.bridge("r1")
    assert info["state"] == "connected" and info["connects"] >= 2, info


class Collector:
    """Just enough of a Peer for :func:`prime` over a shared list of payloads."""

    client_id = "collector"

    def __init__(self, got, lock):
        self.got, self.lock = got, lock

    def wait_payload(self, payload, timeout):
        def seen():
            with self.lock:
                return payload in self.got
        wait_for(seen, timeout, message=f"{payload!r}")

    def received(self):
        with self.lock:
            return list(self.got)


# ---------------------------------------------------------------------------
# 4. culex -> culex over WebSockets


@pytest.mark.parametrize("transport,protocol", [("ws", "mqttv311"), ("wss", "mqttv50")])
def test_websocket_bridge_to_culex(transport, protocol, certs, transport_broker_factory, culex, peers):
    remote = transport_broker_factory([
        Listener("tcp"),
        Listener("ws", protocol="websockets"),
        Listener("wss", protocol="websockets", tls=True),
    ])
    opts = {"bridge_transport": "websockets /mqtt"}
    if transport == "wss":
        opts["bridge_cafile"] = certs.ca_pem
    local, api = culex(bridge_block("w1", f"127.0.0.1:{remote[transport].port}",
                                    CORE_TOPICS + ["both/# both 2 site/ gw/"], protocol, **opts))
    info = api.wait_state("w1", "connected")
    assert info["transport"] == "websockets" and info["tls"] is (transport == "wss"), info
    rtcp = Remote("127.0.0.1", remote["tcp"].port)
    exercise_core(local, rtcp, peers)
    # QoS 2 both ways on a `both` mapping, no echo.
    lboth, rboth = peers(local), peers(rtcp)
    lboth.subscribe("site/both/#", 2)
    rboth.subscribe("gw/both/#", 2)
    lp, rp = peers(local), peers(rtcp)
    prime(lp, rboth, "site/both/probe")
    prime(rp, lboth, "gw/both/probe")
    lp.publish("site/both/x", b"L2", qos=2)
    rp.publish("gw/both/y", b"R2", qos=2)
    assert rboth.wait_payload(b"L2")[-1].topic == "gw/both/x"
    assert lboth.wait_payload(b"R2")[-1].topic == "site/both/y"
    time.sleep(SETTLE)
    assert sorted((m.topic, m.payload, m.qos) for m in real(rboth.received())) == \
        [("gw/both/x", b"L2", 2), ("gw/both/y", b"R2", 2)], rboth.received()
    assert sorted((m.topic, m.payload, m.qos) for m in real(lboth.received())) == \
        [("site/both/x", b"L2", 2), ("site/both/y", b"R2", 2)], lboth.received()


# ---------------------------------------------------------------------------
# 5. Bridges added over the API


@pytest.mark.parametrize("source", ["file", "api"])
def test_api_bridge_like_file_bridge(source, mosquitto_factory, culex, peers):
    mosq = mosquitto_factory()
    address = f"127.0.0.1:{mosq.port}"
    if source == "file":
        local, api = culex(bridge_block("b2", address, CORE_TOPICS, "mqttv50"))
    else:
        local, api = culex()
        r = api.request("POST", "bridges", {
            "name": "b2", "address": address, "topic": CORE_TOPICS,
            "bridge_protocol_version": "mqttv50", "keepalive_interval": 5,
            "restart_timeout": "1", "cleansession": False, "try_private": True,
        })
        assert r.status == 201, r
        body = r.json
        assert body["name"] == "b2" and body["protocol"] == "mqttv50", body
        assert [(t["pattern"], t["direction"], t["qos"], t["local_prefix"], t["remote_prefix"])
                for t in body["topics"]] == [("sensors/#", "out", 1, "site/", "gw/"),
                                             ("cmd/#", "in", 1, "site/", "gw/")], body
    api.wait_state("b2", "connected")
    lpub, rpub, lsub, rsub = exercise_core(local, mosq, peers)

    listed = api.request("GET", "bridges")
    assert listed.status == 200, listed
    assert [b["name"] for b in listed.json["items"]] == ["b2"], listed
    info = api.bridge("b2")
    assert info["state"] == "connected" and info["connects"] == 1, info
    assert info["address"] == address and info["last_error"] is None, info
    # The probes crossed too: at least the real message each way.
    assert info["messages_out"] >= 1 and info["messages_in"] >= 1, info

    r = api.request("DELETE", "bridges/b2")
    assert r.status == 204 and r.body == b"", r
    r = api.request("GET", "bridges/b2")
    assert r.status == 404, r
    lpub.publish("site/sensors/after", b"after-delete-out", qos=1)
    rpub.publish("gw/cmd/after", b"after-delete-in", qos=1)
    time.sleep(SETTLE)
    assert not with_payload(rsub, b"after-delete-out"), rsub.received()
    assert not with_payload(lsub, b"after-delete-in"), lsub.received()
    assert api.request("GET", "bridges").json["items"] == []


def test_notifications(mosquitto_factory, culex, peers):
    """``notifications true``: the bridge's state, retained on
    ``$SYS/broker/connection/REMOTE_CLIENTID/state`` of both brokers: 1 while
    it is connected, 0 once it is not (here: deleted over the API)."""
    mosq = mosquitto_factory()
    local, api = culex(bridge_block("n1", f"127.0.0.1:{mosq.port}", CORE_TOPICS,
                                    notifications="true"))
    api.wait_state("n1", "connected")
    up = notified(peers, "culex.n1", local, mosq)
    r = api.request("DELETE", "bridges/n1")
    assert r.status == 204, r
    time.sleep(0.5)
    down = notified(peers, "culex.n1", local, mosq)
    want_up = {repr(b): (b"1", True) for b in (local, mosq)}
    want_down = {repr(b): (b"0", True) for b in (local, mosq)}
    assert (up, down) == (want_up, want_down), \
        f"retained state while connected: {up}; after DELETE: {down}"


# ---------------------------------------------------------------------------
# 6. Bad remotes and bad definitions


def wait_error(api, name, timeout=TIMEOUT):
    def failed():
        b = api.bridge(name)
        return b if b["last_error"] else None
    return wait_for(failed, timeout, interval=0.05, message=f"bridge {name} to report an error")


def assert_retries(local, api, name, attempts=2, timeout=TIMEOUT):
    wait_for(lambda: connect_attempts(local, name) >= attempts, timeout, interval=0.05,
             message=f"bridge {name} to try {attempts} times: {api.bridge(name)}")


def test_closed_port(culex, peers):
    port = free_port()  # nothing listens there
    local, api = culex(bridge_block("dead", f"127.0.0.1:{port}", CORE_TOPICS))
    info = wait_error(api, "dead")
    assert info["state"] in ("waiting", "connecting") and info["connects"] == 0, info
    assert_retries(local, api, "dead")
    assert_serves(local, peers)


class FakeRemote:
    """A TCP server standing in for a remote broker; ``behaviour(conn)`` handles
    each accepted connection."""

    def __init__(self, behaviour):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.sock.settimeout(0.2)
        self.behaviour = behaviour
        self.accepted = 0
        self.dropped_by_peer = 0
        self.conns = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            self.conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            self.behaviour(conn)
            conn.settimeout(TIMEOUT)
            while not self._stop.is_set():
                if not conn.recv(4096):
                    self.dropped_by_peer += 1
                    return
        except OSError:
            self.dropped_by_peer += 1

    def close(self):
        self._stop.set()
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


def test_remote_closes_before_connack(culex, peers):
    def hang_up(conn):
        conn.recv(4096)
        conn.close()
        raise OSError("closed here")

    fake = FakeRemote(hang_up)
    try:
        local, api = culex(bridge_block("hup", f"127.0.0.1:{fake.port}", CORE_TOPICS))
        info = wait_error(api, "hup")
        assert info["state"] in ("waiting", "connecting") and info["connects"] == 0, info
        wait_for(lambda: fake.accepted >= 2, TIMEOUT, message="the bridge to come back")
        assert_serves(local, peers)
    finally:
        fake.close()


def test_remote_sends_garbage(culex, peers):
    rng = random.Random(20240611)

    def garbage(conn):
        conn.recv(4096)  # the CONNECT
        # Random bytes; the first has a reserved packet type (0), so no reading of
        # it can take it for a CONNACK or wait for a long packet.
        conn.sendall(bytes([rng.randrange(16)]) + bytes(rng.randrange(256) for _ in range(63)))

    fake = FakeRemote(garbage)
    try:
        local, api = culex(bridge_block("junk", f"127.0.0.1:{fake.port}", CORE_TOPICS))
        info = wait_error(api, "junk")
        assert info["state"] in ("waiting", "connecting") and info["connects"] == 0, info
        # The bridge itself hangs up on the garbage, and tries again.
        wait_for(lambda: fake.dropped_by_peer >= 1, 5, message="the bridge to drop the connection")
        wait_for(lambda: fake.accepted >= 2, TIMEOUT, message="the bridge to come back")
        assert_serves(local, peers)
    finally:
        fake.close()


def test_certificate_of_another_ca(certs, tmp_path, mosquitto_factory, culex, peers):
    other_ca, _ = make_ca(tmp_path, "otherca")
    mosq = mosquitto_factory(certfile=certs.server_pem, keyfile=certs.server_key)
    local, api = culex(bridge_block("badca", f"127.0.0.1:{mosq.tls_port}", CORE_TOPICS,
                                    bridge_cafile=other_ca))
    info = wait_error(api, "badca")
    assert info["state"] != "connected" and info["connects"] == 0, info
    assert "certificate" in info["last_error"].lower(), info
    assert_retries(local, api, "badca")
    assert api.bridge("badca")["connects"] == 0
    assert_serves(local, peers)


def test_wrong_credentials(tmp_path, mosquitto_factory, culex, peers):
    pwfile = tmp_path / "passwd"
    done = subprocess.run(["mosquitto_passwd", "-b", "-c", str(pwfile), "bridgeuser", "right-pass"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    mosq = mosquitto_factory(settings=["allow_anonymous false", f"password_file {pwfile}"])
    address = f"127.0.0.1:{mosq.port}"
    local, api = culex(
        bridge_block("bad", address, CORE_TOPICS, remote_username="bridgeuser",
                     remote_password="wrong-pass"),
        bridge_block("good", address, CORE_TOPICS, "mqttv50", remote_username="bridgeuser",
                     remote_password="right-pass"),
    )
    api.wait_state("good", "connected")
    info = wait_error(api, "bad")
    assert info["state"] in ("waiting", "connecting") and info["connects"] == 0, info
    assert "refused" in info["last_error"].lower(), info
    assert_retries(local, api, "bad", attempts=2)
    assert api.bridge("bad")["connects"] == 0
    assert api.bridge("good")["state"] == "connected"
    assert_serves(local, peers)


def test_invalid_definitions_over_api(mosquitto_factory, culex):
    mosq = mosquitto_factory()
    local, api = culex()
    good = {"name": "ok", "address": f"127.0.0.1:{mosq.port}", "topic": ["a/# both 1"],
            "restart_timeout": 1}
    cases = [
        ({"name": "noaddr", "topic": ["a/# out 1"]}, 400, "address"),
        (dict(good, name="badtopic", topic=["a/# sideways 1"]), 400, "topic"),
        (dict(good, name="unknown", frobnicate="yes"), 400, "frobnicate"),
        (dict(good, name="badqos", topic=["a/# out 3"]), 400, "qos"),
    ]
    for body, status, word in cases:
        r = api.request("POST", "bridges", body)
        assert r.status == status, (body, r)
        detail = r.json
        assert detail.get("error") == "bad_request", (body, r)
        assert word in detail.get("detail", "").lower(), (body, r)
    r = api.request("POST", "bridges", good)
    assert r.status == 201, r
    r = api.request("POST", "bridges", dict(good, address=f"127.0.0.1:{free_port()}"))
    assert r.status == 409, r
    assert r.json.get("error") == "conflict" and "ok" in r.json.get("detail", ""), r
    names = [b["name"] for b in api.request("GET", "bridges").json["items"]]
    assert names == ["ok"], names
    # The one bridge that was accepted is the first definition, still connecting to mosquitto.
    info = api.wait_state("ok", "connected")
    assert info["address"] == f"127.0.0.1:{mosq.port}", info


# ---------------------------------------------------------------------------
# 7. culex -> culex over MQTT-SN (UDP), with an address and found by discovery


def sn_block(name, topics, address=None, group=None, **options):
    """The lines of an MQTT-SN ``connection`` block."""
    lines = [f"connection {name}", "bridge_type mqttsn", f"remote_clientid sn-{name}",
             "keepalive_interval 10", "restart_timeout 1"]
    if address:
        lines.append(f"address {address}")
    if group:
        lines.append(f"bridge_multicast_group {group}")
    lines += [f"topic {t}" for t in topics]
    lines += [f"{k} {v}" for k, v in options.items()]
    return lines


@pytest.mark.parametrize("found_by", ["address", "discovery"])
@pytest.mark.parametrize("qos", [1, 2])
def test_mqttsn_bridge_to_culex(found_by, qos, transport_broker_factory, culex, peers):
    group = f"239.255.18.{random.randint(1, 250)}:{free_port(kind=socket.SOCK_DGRAM)}"
    sn_options = {"multicast_group": group, "advertise_interval": 1} \
        if found_by == "discovery" else {}
    remote = transport_broker_factory([
        Listener("tcp"),
        Listener("sn", protocol="mqttsn", options=sn_options),
    ])
    topics = [f"sensors/# out {qos} site/ gw/", f"cmd/# in {qos} site/ gw/"]
    if found_by == "address":
        block = sn_block("s1", topics, address=f"127.0.0.1:{remote['sn'].port}")
    else:
        block = sn_block("s1", topics, group=group)
    local, api = culex(block)
    info = api.wait_state("s1", "connected", timeout=20)
    assert info["type"] == "mqttsn", info
    exercise_core(local, Remote("127.0.0.1", remote["tcp"].port), peers, qos=qos)
    # The bridge is a client of the remote gateway like any MQTT-SN sensor.
    listed = api.request("GET", "bridges/s1").json
    assert listed["messages_out"] >= 1 and listed["messages_in"] >= 1, listed


@pytest.mark.parametrize("credentials,found_by", [("certificate", "address"),
                                                 ("psk", "discovery")])
def test_mqttsn_bridge_over_dtls(credentials, found_by, tmp_path, certs,
                                 transport_broker_factory, culex, peers):
    group = f"239.255.19.{random.randint(1, 250)}:{free_port(kind=socket.SOCK_DGRAM)}"
    options = {"multicast_group": group, "advertise_interval": 1} \
        if found_by == "discovery" else {}
    identity, key = "bridge-1", "00112233445566778899aabbccddeeff"
    if credentials == "psk":
        psk = tmp_path / "psk.txt"
        psk.write_text(f"{identity}:{key}\n")
        options.update({"psk_file": str(psk), "psk_hint": "culex"})
        sn = Listener("sn", protocol="mqttsn", options=options)
        secure = {"bridge_identity": identity, "bridge_psk": key}
    else:
        sn = Listener("sn", protocol="mqttsn", tls=True, options=options)
        secure = {"bridge_cafile": certs.ca_pem}
    remote = transport_broker_factory([Listener("tcp"), sn])
    address = f"127.0.0.1:{remote['sn'].port}" if found_by == "address" else None
    block = sn_block("d1", CORE_TOPICS, address=address,
                     group=group if found_by == "discovery" else None, **secure)
    local, api = culex(block)
    api.wait_state("d1", "connected", timeout=20)
    exercise_core(local, Remote("127.0.0.1", remote["tcp"].port), peers)
    # Nothing crossed in the clear: the gateway saw a DTLS client.
    assert "DTLS" in remote.log() or "dtls" in remote.log().lower(), remote.log()[-2000:]


def test_mqttsn_bridge_with_predefined_topics(tmp_path, transport_broker_factory, culex, peers):
    """Topic ids agreed in advance on both sides: no REGISTER for those topics."""
    predefined = tmp_path / "predefined"
    predefined.write_text("7 gw/sensors/temp\n8 gw/cmd/reboot\n")
    remote = transport_broker_factory([
        Listener("tcp"),
        Listener("sn", protocol="mqttsn", options={"predefined_topics": str(predefined)}),
    ])
    block = sn_block("p1", CORE_TOPICS, address=f"127.0.0.1:{remote['sn'].port}")
    block += ["bridge_predefined_topic 7 gw/sensors/temp", "bridge_predefined_topic 8 gw/cmd/reboot"]
    local, api = culex(block)
    api.wait_state("p1", "connected", timeout=20)
    exercise_core(local, Remote("127.0.0.1", remote["tcp"].port), peers)
