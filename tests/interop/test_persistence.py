"""Persistence: what survives a clean shutdown (SIGTERM) and a restart on the same store.

Every test runs its own broker with ``persistence true`` and a store in a
fresh directory, stops it with SIGTERM (a clean shutdown that saves the
state and exits with status 0), starts it again on the same store and port,
and checks with paho clients what the restarted broker remembers: sessions
and their expiry, subscriptions with their options, QoS 1/2 messages queued
for offline sessions, retained messages with their message expiry, and wills
whose delay runs across the restart.

With ``INTEROP_BROKER=mosquitto`` the same tests run against mosquitto, which
also saves its state on a clean shutdown; the tests of behaviour mosquitto
does not have carry the ``culex_only`` marker.
"""

import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.subscribeoptions import SubscribeOptions

from interop_util import Peer, prop, props, publish_props, unique_client_id
from transport_broker import BROKER_KIND, Listener, TransportBroker, broker_binary, free_port

STARTUP_TIMEOUT = 15.0
SHUTDOWN_TIMEOUT = 15.0
STORE_FILE = "interop-store.db"
SERVER_SHUTTING_DOWN = 0x8B
STORE_LINE_RE = re.compile(r"(?:^|\] )store ")


def expiry(seconds):
    return props(PacketTypes.CONNECT, SessionExpiryInterval=seconds)


def end_session(peer):
    """Disconnect a 5.0 peer and discard its session."""
    peer.disconnect(properties=props(PacketTypes.DISCONNECT, SessionExpiryInterval=0))


# ---------------------------------------------------------------------------
# A broker that keeps its store and port across restarts


class PersistentBroker(TransportBroker):
    """The broker under test with persistence on, restartable on the same store and port.

    The store directory is ``<tmp>/store``: culex creates it itself
    (``persistence_location`` need not exist); mosquitto is given an existing
    one it can write to, as it drops root privileges to its own user.  Each
    run's output is appended to :meth:`log` after a ``=== run N ===`` line, so
    a failure report shows the whole history.  Being a :class:`TransportBroker`,
    its log is attached to failure reports by that module's hook.
    """

    host = "127.0.0.1"

    def __init__(self, settings=None, kind=BROKER_KIND):
        super().__init__([Listener("mqtt")], certs=None, settings=settings, kind=kind)
        # Only the culex-specific settings remain (persistence_sync, ...).
        self.settings.pop("allow_anonymous", None)
        self.store = Path(self._dir.name) / "store"
        self.listeners["mqtt"].port = free_port()
        self.runs = 0
        self.stopped_at = None  # time.monotonic() of the last SIGTERM
        self._run_start = 0

    @property
    def port(self):
        return self.listeners["mqtt"].port

    def config_text(self):
        lines = [f"listener {self.port} {self.host}", "allow_anonymous true", "persistence true",
                 f"persistence_file {STORE_FILE}"]
        if self.kind == "mosquitto":
            # mosquitto wants the trailing slash; it saves on shutdown (autosave
            # covers crashes only).
            lines += [f"persistence_location {self.store}/", "log_dest stderr"]
        else:
            lines.append(f"persistence_location {self.store}")
            lines += [f"{k} {v}" for k, v in self.settings.items()]
        return "\n".join(lines) + "\n"

    def run_log(self):
        """The output of the current (or last) run only."""
        with self._log_lock:
            return "".join(self._log[self._run_start:])

    def store_lines(self):
        return [l for l in self.run_log().splitlines() if STORE_LINE_RE.search(l)]

    # -- lifecycle -------------------------------------------------------
    def start(self):
        binary = broker_binary(self.kind)
        if self.kind == "mosquitto" and not self.store.exists():
            self.store.mkdir()
            self.store.chmod(0o777)
        conf = self._write_config()
        self.runs += 1
        with self._log_lock:
            self._log.append(f"=== run {self.runs} ===\n")
            self._run_start = len(self._log)
        self.proc = subprocess.Popen([binary, "-c", str(conf)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     cwd=self._dir.name)
        self._reader = threading.Thread(target=self._drain, args=(self.proc.stdout,), daemon=True)
        self._reader.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not self._ready():
            if self.proc.poll() is not None:
                self._reader.join(2)
                self._fail(f"run {self.runs} exited with status {self.proc.returncode}")
            if time.monotonic() > deadline:
                self._fail(f"run {self.runs} not ready within {STARTUP_TIMEOUT:.0f} s")
            time.sleep(0.05)
        return self

    def _ready(self):
        if self.kind == "culex":
            return f"listening on {self.host}:{self.port}" in self.run_log()
        return self._accepts(self.listeners["mqtt"])

    def _fail(self, why):
        self.kill()
        pytest.fail(f"{self.kind}: {why}\n--- config ---\n{self.config_text()}"
                    f"--- broker output ---\n{self.log()}", pytrace=False)

    def stop(self):
        """SIGTERM, then wait for the exit; fail unless it is a clean exit with status 0."""
        if self.proc is None:
            return
        if self.proc.poll() is not None:
            pytest.fail(f"{self.kind}: run {self.runs} exited on its own with status "
                        f"{self.proc.returncode}\n--- broker output ---\n{self.log()}", pytrace=False)
        self.stopped_at = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            status = self.proc.wait(timeout=SHUTDOWN_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._fail(f"run {self.runs} still running {SHUTDOWN_TIMEOUT:.0f} s after SIGTERM")
        self._reader.join(2)
        if status != 0:
            pytest.fail(f"{self.kind}: run {self.runs} exited with status {status} after SIGTERM\n"
                        f"--- broker output ---\n{self.log()}", pytrace=False)

    def restart(self, downtime=0.0):
        """Stop cleanly and start again on the same store and port, at least
        ``downtime`` seconds after the SIGTERM."""
        self.stop()
        remaining = self.stopped_at + downtime - time.monotonic()
        if remaining > 0:
            time.sleep(remaining)
        return self.start()

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def close(self):
        """Finalizer: stop whatever still runs and remove the directory."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=SHUTDOWN_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.kill()
        self._dir.cleanup()

    def __repr__(self):
        return f"<PersistentBroker {self.kind} {self.host}:{self.port} run {self.runs}>"


@pytest.fixture
def persistent_broker(request):
    """A started :class:`PersistentBroker`; indirect parameters are extra culex settings."""
    b = PersistentBroker(getattr(request, "param", None))
    request.addfinalizer(b.close)
    return b.start()


@pytest.fixture
def clients(persistent_broker):
    """Connect paho clients to the persistent broker.

    ``clients(version=5, client_id=None, clean=True, session_expiry=None,
    will=None)`` returns a connected :class:`Peer`; it may be called again
    after a restart to reconnect under the same client id.  Every peer is
    closed at the end of the test.
    """
    peers = []

    def make(version=5, client_id=None, clean=True, session_expiry=None, will=None):
        properties = expiry(session_expiry) if session_expiry is not None else None
        peer = Peer(persistent_broker, version=version, client_id=client_id, clean=clean,
                    properties=properties, will=will)
        peers.append(peer)
        peer.connect()
        return peer

    yield make
    for peer in peers:
        peer.close()


# ---------------------------------------------------------------------------
# The clean shutdown itself


@pytest.mark.culex_only(reason="mosquitto 2.0 closes MQTT 5 connections at shutdown without "
                               "DISCONNECT 0x8B (Server shutting down), and neither creates "
                               "its persistence_location nor logs a 'store' line")
def test_clean_shutdown_disconnects_clients_and_saves_store(persistent_broker, clients):
    v5 = clients(version=5)
    v311 = clients(version=3)

    persistent_broker.stop()  # fails unless the exit status is 0

    gone = v5.wait_disconnect()
    assert gone.from_server and gone.reason_code == SERVER_SHUTTING_DOWN, gone
    v311.wait_disconnect()
    # persistence_location did not exist before the first start.
    assert (persistent_broker.store / STORE_FILE).is_file()

    persistent_broker.start()
    assert persistent_broker.store_lines(), \
        f"no 'store ...' line in the restarted broker's output:\n{persistent_broker.run_log()}"


# ---------------------------------------------------------------------------
# Sessions and their expiry


def test_persistent_sessions_survive_restart_and_clean_ones_do_not(persistent_broker, clients):
    ids = {name: unique_client_id("p") for name in
           ("v311 offline", "v311 online", "v5 offline", "v5 online", "v311 clean", "v5 no expiry")}

    # Offline at shutdown.
    clients(version=3, client_id=ids["v311 offline"], clean=False).disconnect()
    clients(version=5, client_id=ids["v5 offline"], clean=False, session_expiry=300).disconnect()
    # Still connected at shutdown: the server closes these connections.
    clients(version=3, client_id=ids["v311 online"], clean=False)
    clients(version=5, client_id=ids["v5 online"], clean=False, session_expiry=300)
    clients(version=3, client_id=ids["v311 clean"], clean=True)
    clients(version=5, client_id=ids["v5 no expiry"], clean=False, session_expiry=0)

    persistent_broker.restart()

    present = {}
    for name, cid in ids.items():
        if name.startswith("v311"):
            present[name] = clients(version=3, client_id=cid, clean=False).session_present
        else:
            present[name] = clients(version=5, client_id=cid, clean=False,
                                    session_expiry=60).session_present
    assert present == {"v311 offline": True, "v311 online": True, "v5 offline": True,
                       "v5 online": True, "v311 clean": False, "v5 no expiry": False}


@pytest.mark.culex_only(reason="mosquitto 2.0 saves only the sessions whose CONNECT had clean "
                               "start 0, and restarts the expiry of the sessions it restores")
def test_v5_session_expiry_runs_on_while_broker_is_down(persistent_broker, clients):
    long_id, short_id, offline_id = (unique_client_id("p") for _ in range(3))
    # A session expiry interval > 0 makes a session persistent, whatever clean start said.
    clients(version=5, client_id=long_id, clean=True, session_expiry=300)
    # Connected at shutdown: the 1 s starts when the server closes the connection.
    clients(version=5, client_id=short_id, clean=True, session_expiry=1)
    # Offline at shutdown with 2 s left on its expiry.
    clients(version=5, client_id=offline_id, clean=True, session_expiry=2).disconnect()

    # Down for well over both expiry intervals.
    persistent_broker.restart(downtime=3.0)

    present = {cid: clients(version=5, client_id=cid, clean=False, session_expiry=60).session_present
               for cid in (long_id, short_id, offline_id)}
    assert present == {long_id: True, short_id: False, offline_id: False}


# ---------------------------------------------------------------------------
# Subscriptions with their options


def test_subscriptions_keep_their_options_across_restart(persistent_broker, clients, topic):
    sub_id, v311_id = unique_client_id("p"), unique_client_id("p")
    sub = clients(version=5, client_id=sub_id, clean=False, session_expiry=300)

    def subscribe(filter_, ident=None, **options):
        properties = props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=ident) if ident else None
        granted = sub.subscribe(filter_, options=SubscribeOptions(**options), properties=properties)
        assert granted == [options.get("qos", 0)]

    subscribe(f"{topic}/q2", ident=11, qos=2)
    subscribe(f"{topic}/q1/+", ident=12, qos=1)
    subscribe(f"{topic}/q0", qos=0)
    subscribe(f"{topic}/rap", ident=13, qos=1, retainAsPublished=True)
    subscribe(f"{topic}/norap", qos=1, retainAsPublished=False)
    subscribe(f"{topic}/nl", ident=14, qos=1, noLocal=True)
    subscribe(f"{topic}/rh", qos=1, retainHandling=1)
    subscribe(f"{topic}/gone", qos=1)
    sub.unsubscribe(f"{topic}/gone")

    v311 = clients(version=3, client_id=v311_id, clean=False)
    assert v311.subscribe(f"{topic}/v3/#", 1) == [1]
    v311.disconnect()

    # Retained messages for the retain-handling check after the restart.
    setter = clients(version=5)
    setter.publish(f"{topic}/rh", b"rh old", qos=1, retain=True)
    setter.publish(f"{topic}/rh-new", b"rh new", qos=1, retain=True)
    sub.wait_payload(b"rh old")

    persistent_broker.restart()  # sub is still connected: the server closes it

    sub = clients(version=5, client_id=sub_id, clean=False, session_expiry=300)
    assert sub.session_present is True
    v311 = clients(version=3, client_id=v311_id, clean=False)
    assert v311.session_present is True
    pub = clients(version=5)

    # The subscriber publishes on its own no-local subscription first.
    sub.publish(f"{topic}/nl", b"own", qos=1)
    pub.publish(f"{topic}/q2", b"q2", qos=2)
    pub.publish(f"{topic}/q1/x", b"q1", qos=2)
    pub.publish(f"{topic}/q0", b"q0", qos=2)
    pub.publish(f"{topic}/rap", b"rap", qos=1, retain=True)
    pub.publish(f"{topic}/norap", b"norap", qos=1, retain=True)
    pub.publish(f"{topic}/nl", b"other", qos=1)
    pub.publish(f"{topic}/gone", b"gone", qos=1)
    pub.publish(f"{topic}/v3/a", b"v3", qos=2)
    pub.publish(f"{topic}/q2", b"end", qos=2)

    msgs = {m.payload: m for m in sub.wait_payload(b"end")}
    expected = {b"q2", b"q1", b"q0", b"rap", b"norap", b"other", b"end"}
    missing = expected - set(msgs)
    if missing:  # QoS 0 and 1/2 deliveries are not ordered with each other
        msgs.update((m.payload, m) for m in sub.wait_messages(len(expected)))
    assert set(msgs) == expected, f"received {sorted(msgs)}, expected {sorted(expected)}"

    def seen(payload):
        m = msgs[payload]
        return m.qos, m.retain, prop(m.properties, "SubscriptionIdentifier")

    assert seen(b"q2") == (2, False, [11])
    assert seen(b"q1") == (1, False, [12])
    assert seen(b"q0") == (0, False, None)
    assert seen(b"rap") == (1, True, [13])    # retain as published
    assert seen(b"norap") == (1, False, None)
    assert seen(b"other") == (1, False, [14])  # and b"own" was not sent back: no local

    m = v311.wait_message()
    assert (m.topic, m.payload, m.qos) == (f"{topic}/v3/a", b"v3", 1)

    # Retain handling 1 sends retained messages only for a subscription that
    # did not exist yet: none for the restored one, one for the new one.
    sub.subscribe(f"{topic}/rh", options=SubscribeOptions(qos=1, retainHandling=1))
    sub.subscribe(f"{topic}/rh-new", options=SubscribeOptions(qos=1, retainHandling=1))
    after_rh = sub.wait_payload(b"rh new")
    assert b"rh old" not in [m.payload for m in after_rh]

    end_session(sub)


# ---------------------------------------------------------------------------
# Messages queued for offline sessions


QUEUE_CASES = [
    pytest.param(3, None, id="v311"),
    pytest.param(5, {"persistence_sync": "every-turn"}, id="v5-sync-every-turn"),
    pytest.param(5, {"persistence_sync": "interval 60000"}, id="v5-sync-interval"),
]


@pytest.mark.parametrize("version, persistent_broker", QUEUE_CASES, indirect=["persistent_broker"])
def test_queued_messages_delivered_once_in_order_after_restart(persistent_broker, clients, topic,
                                                               version):
    cid = unique_client_id("p")
    session = {"clean": False} if version == 3 else {"clean": False, "session_expiry": 300}
    sub = clients(version=version, client_id=cid, **session)
    assert sub.subscribe(f"{topic}/#", 2) == [2]
    sub.disconnect()

    # Queued before the restart, and after it while the session is still
    # offline: QoS 1 on one topic, QoS 2 on another, interleaved.
    def batch(label, count):
        return [(f"{topic}/q{1 + i % 2}", b"%s %d" % (label, i), 1 + i % 2) for i in range(count)]

    pub = clients(version=version)
    before = batch(b"before", 8)
    for t, payload, qos in before:
        pub.publish(t, payload, qos=qos)

    persistent_broker.restart()

    pub = clients(version=version)
    after = batch(b"after", 4)
    for t, payload, qos in after:
        pub.publish(t, payload, qos=qos)

    sub = clients(version=version, client_id=cid, **session)
    assert sub.session_present is True
    expected = before + after
    sub.wait_messages(len(expected))
    # A QoS 2 marker: the client library reports QoS 2 messages once their
    # flow completes, so every message sent before it has been reported.
    pub.publish(f"{topic}/q2", b"marker", qos=2)
    sub.wait_payload(b"marker")
    got = [(m.topic, m.payload, m.qos) for m in sub.received() if m.payload != b"marker"]
    assert sorted(got) == sorted(expected), "messages missing or duplicated"
    # In order per topic (and QoS): the library reports QoS 1 messages at once,
    # QoS 2 ones a round trip later, so the two topics interleave freely.
    for t in (f"{topic}/q1", f"{topic}/q2"):
        assert [m for m in got if m[0] == t] == [m for m in expected if m[0] == t]
    sub.disconnect()

    # What was delivered and acknowledged is not sent again after another restart.
    persistent_broker.restart()
    sub = clients(version=version, client_id=cid, **session)
    assert sub.session_present is True
    clients(version=version).publish(f"{topic}/a", b"marker 2", qos=1)
    assert [m.payload for m in sub.wait_payload(b"marker 2")] == [b"marker 2"]


# ---------------------------------------------------------------------------
# Retained messages


def test_retained_messages_survive_restart_with_properties_and_expiry(persistent_broker, clients,
                                                                      topic):
    pub5 = clients(version=5)
    pub3 = clients(version=3)
    user_props = [("origin", "interop"), ("k", "v1"), ("k", "v2")]
    pub5.publish(f"{topic}/v5", "five \u2713".encode(), qos=1, retain=True,
                 properties=publish_props(ContentType="text/plain; charset=utf-8",
                                          UserProperty=user_props, PayloadFormatIndicator=1,
                                          ResponseTopic=f"{topic}/reply", CorrelationData=b"corr-1"))
    pub3.publish(f"{topic}/q2", b"\x00\xff three q2", qos=2, retain=True)
    pub3.publish(f"{topic}/q0", b"three q0", qos=0, retain=True)
    pub3.publish(f"{topic}/cleared", b"soon cleared", qos=1, retain=True)
    pub3.publish(f"{topic}/cleared", b"", qos=1, retain=True)
    pub5.publish(f"{topic}/short", b"short", qos=1, retain=True,
                 properties=publish_props(MessageExpiryInterval=2))
    pub5.publish(f"{topic}/long", b"long", qos=1, retain=True,
                 properties=publish_props(MessageExpiryInterval=600))
    published_at = time.monotonic()

    # Down for longer than the 2 s expiry: it must count on while the broker is down.
    persistent_broker.restart(downtime=3.0)

    sub = clients(version=5)
    sub.subscribe(f"{topic}/#", 2)
    clients(version=5).publish(f"{topic}/marker", b"marker", qos=2)  # after the QoS 2 ones
    received = sub.wait_payload(b"marker")
    assert sorted(m.topic.rsplit("/", 1)[1] for m in received) == \
        ["long", "marker", "q0", "q2", "v5"], received
    msgs = {m.topic.rsplit("/", 1)[1]: m for m in received}

    v5 = msgs["v5"]
    assert (v5.payload, v5.qos, v5.retain) == ("five \u2713".encode(), 1, True)
    assert prop(v5.properties, "ContentType") == "text/plain; charset=utf-8"
    assert prop(v5.properties, "UserProperty") == user_props
    assert prop(v5.properties, "PayloadFormatIndicator") == 1
    assert prop(v5.properties, "ResponseTopic") == f"{topic}/reply"
    assert prop(v5.properties, "CorrelationData") == b"corr-1"
    assert prop(v5.properties, "MessageExpiryInterval") is None

    assert (msgs["q2"].payload, msgs["q2"].qos, msgs["q2"].retain) == (b"\x00\xff three q2", 2, True)
    assert (msgs["q0"].payload, msgs["q0"].qos, msgs["q0"].retain) == (b"three q0", 0, True)

    long = msgs["long"]
    assert (long.payload, long.qos, long.retain) == (b"long", 1, True)
    remaining = prop(long.properties, "MessageExpiryInterval")
    elapsed = time.monotonic() - published_at
    # At least the 3 s downtime has gone; not more than what the test measured.
    assert remaining is not None and 600 - elapsed - 2 <= remaining <= 597, \
        f"Message Expiry Interval {remaining} after {elapsed:.1f} s (downtime 3 s)"

    # A 3.1.1 subscriber gets the same retained messages.
    v311 = clients(version=3)
    v311.subscribe(f"{topic}/q2", 1)
    m = v311.wait_message()
    assert (m.payload, m.qos, m.retain) == (b"\x00\xff three q2", 1, True)


# ---------------------------------------------------------------------------
# Wills with a will delay


# mosquitto 2.0 publishes every will at once when it shuts down, delay or not.
WILL_AT_SHUTDOWN = "mosquitto 2.0 publishes delayed wills at shutdown, before their delay"


def will_of(topic, delay):
    return {"topic": topic, "payload": b"gone", "qos": 1, "retain": False,
            "properties": props(PacketTypes.WILLMESSAGE, WillDelayInterval=delay)}


@pytest.mark.culex_only(reason=WILL_AT_SHUTDOWN)
@pytest.mark.parametrize("downtime", [pytest.param(0.0, id="restart-before-due"),
                                      pytest.param(3.5, id="due-during-downtime")])
def test_delayed_will_published_after_restart(persistent_broker, clients, topic, downtime):
    delay = 2
    sub_id = unique_client_id("p")
    sub = clients(version=3, client_id=sub_id, clean=False)
    sub.subscribe(topic, 1)
    sub.disconnect()
    # Connected when the broker stops: the server closes the connection, and
    # the will is due `delay` seconds later.
    clients(version=5, session_expiry=60, will=will_of(topic, delay))

    persistent_broker.restart(downtime=downtime)

    sub = clients(version=3, client_id=sub_id, clean=False)
    assert sub.session_present is True
    msg = sub.wait_message(timeout=delay + 13)
    elapsed = time.monotonic() - persistent_broker.stopped_at
    assert (msg.topic, msg.payload, msg.qos) == (topic, b"gone", 1)
    assert elapsed >= delay - 0.5, f"will sent {elapsed:.2f} s after the shutdown, " \
                                   f"before its {delay} s delay"
    # Once only.
    clients(version=3).publish(topic, b"marker", qos=1)
    assert [m.payload for m in sub.wait_payload(b"marker")] == [b"gone", b"marker"]


@pytest.mark.culex_only(reason=WILL_AT_SHUTDOWN)
def test_delayed_will_cancelled_by_reconnect_after_restart(persistent_broker, clients, topic):
    delay = 10
    sub_id, will_id = unique_client_id("p"), unique_client_id("w")
    sub = clients(version=5, client_id=sub_id, clean=False, session_expiry=300)
    sub.subscribe(topic, 1)
    clients(version=5, client_id=will_id, clean=False, session_expiry=60,
            will=will_of(topic, delay))

    persistent_broker.restart()

    back = clients(version=5, client_id=will_id, clean=False, session_expiry=60)
    since_stop = time.monotonic() - persistent_broker.stopped_at
    assert since_stop < delay - 1, f"restart and reconnect took {since_stop:.1f} s, " \
                                   f"past the {delay} s will delay"
    assert back.session_present is True
    sub = clients(version=5, client_id=sub_id, clean=False, session_expiry=300)
    assert sub.session_present is True

    # Past the point where the will would have gone out.
    time.sleep(max(0.0, persistent_broker.stopped_at + delay + 1.5 - time.monotonic()))
    back.publish(topic, b"marker", qos=1)
    assert [m.payload for m in sub.wait_payload(b"marker")] == [b"marker"]
    end_session(back)
    end_session(sub)
