"""Bounds under abuse: floods a culex with what a hostile or broken client can
send, and checks what everyone sees.

Each test runs a well-behaved paho-mqtt client (``GoodClient``) doing QoS 1
round trips while the abuse goes on, asserting that every one of its messages
arrives and that each round trip stays under ``ROUND_TRIP_MAX``, and samples
the broker's resident memory (``VmRSS``), asserting that it stays under a bound
derived from the configured limits.  The options are culex's own: the module
is skipped with ``INTEROP_BROKER=mosquitto``.
"""

import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid

import pytest

from interop_util import Peer, RawClient, mqtt_str, packet, unique_topic

BROKER_KIND = os.environ.get("INTEROP_BROKER", "culex").strip().lower() or "culex"
pytestmark = pytest.mark.skipif(BROKER_KIND != "culex", reason="the bounds are culex's own")

# A generous bound on one QoS 1 round trip of the good client: the machine may be
# busy with other work, so this only catches a broker that stalls.
ROUND_TRIP_MAX = 1.0
MIB = 1024 * 1024
# Memory an idle connection may cost the broker (its slab entry, engine state and
# CONNECT deadline), far above what it does cost.
IDLE_CONN_BUDGET = 2048
# Room for the allocator's own behaviour on top of what the limits allow.
RSS_SLACK = 24 * MIB
# What a queue entry counts in max_queued_memory besides its payload.
ENTRY_OVERHEAD = 48


def rss(broker):
    with open(f"/proc/{broker.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


class RssSampler:
    """Samples the broker's RSS every 50 ms in a thread; ``peak`` is the highest.
    With ``fds``, also the most file descriptors it held (every 200 ms)."""

    def __init__(self, broker, fds=False):
        self.broker = broker
        self.before = rss(broker)
        self.peak = self.before
        self.peak_fds = 0
        self._fds = fds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        n = 0
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, rss(self.broker))
            n += 1
            if self._fds and n % 4 == 0:
                fds = len(os.listdir(f"/proc/{self.broker.proc.pid}/fd"))
                self.peak_fds = max(self.peak_fds, fds)

    def stop(self):
        self._stop.set()
        self._thread.join()
        self.after = rss(self.broker)
        self.peak = max(self.peak, self.after)
        return self

    def check(self, bound, what):
        grew = self.peak - self.before
        print(f"RSS {what}: before {self.before / MIB:.1f} MiB, peak {self.peak / MIB:.1f} MiB, "
              f"after {self.after / MIB:.1f} MiB (bound +{bound / MIB:.1f} MiB)")
        assert grew <= bound, f"{what}: RSS grew by {grew / MIB:.1f} MiB, bound {bound / MIB:.1f} MiB"


class GoodClient:
    """A well-behaved client: a QoS 1 publish to its own topic, then the wait for its
    own message, every 50 ms.  A publish refused with a reason code (the broker's
    documented flow control) is counted and sent again 100 ms later."""

    def __init__(self, broker, version=5):
        self.peer = Peer(broker, version=version)
        self.topic = unique_topic("good")
        self.round_trips = []
        self.refused = 0
        self.sent = []
        self.error = None
        self._acks = {}
        self._stop = threading.Event()
        self._thread = None

    def _on_publish(self, client, userdata, mid, reason_code, properties):
        with self.peer._cond:
            self._acks[mid] = reason_code.value if hasattr(reason_code, "value") else 0
            self.peer._cond.notify_all()

    def start(self):
        self.peer.connect()
        self.peer.client.on_publish = self._on_publish
        assert self.peer.subscribe(self.topic, 1) == [1]
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _round_trip(self, payload):
        while True:
            start = time.monotonic()
            info = self.peer.client.publish(self.topic, payload, qos=1)
            self.peer._wait(lambda: info.mid in self._acks, 10, f"PUBACK of {payload!r}")
            if self._acks[info.mid] >= 0x80:
                self.refused += 1
                time.sleep(0.1)
                continue
            self.peer._wait(lambda: any(m.payload == payload for m in self.peer.messages), 10,
                            f"own message {payload!r}")
            self.round_trips.append(time.monotonic() - start)
            return

    def _run(self):
        try:
            seq = 0
            while not self._stop.is_set():
                payload = b"good-%d" % seq
                self._round_trip(payload)
                self.sent.append(payload)
                seq += 1
                time.sleep(0.05)
        except Exception as e:  # reported by stop()
            self.error = e

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=30)
        self.peer.close()
        assert self.error is None, f"good client failed: {self.error}"
        got = [m.payload for m in self.peer.received(self.topic)]
        assert got == self.sent, "the good client lost or repeated messages"
        assert self.round_trips, "the good client made no round trip"
        worst = max(self.round_trips)
        print(f"good client: {len(self.round_trips)} round trips, max {worst * 1000:.0f} ms, "
              f"{self.refused} refused")
        assert worst < ROUND_TRIP_MAX, f"a round trip took {worst:.2f} s"
        return self


# ---------------------------------------------------------------------------
# Raw MQTT for the abusers.


def connect_packet(client_id, version=4):
    body = mqtt_str("MQTT") + bytes([version, 0x02]) + struct.pack("!H", 60)
    if version == 5:
        body += b"\x00"
    return packet(0x10, body + mqtt_str(client_id))


def publish_packet(topic, payload, pid, v5):
    body = mqtt_str(topic) + struct.pack("!H", pid) + (b"\x00" if v5 else b"") + payload
    return packet(0x32, body)


def subscribe_packet(pid, filters, qos, v5):
    body = struct.pack("!H", pid) + (b"\x00" if v5 else b"")
    for f in filters:
        body += mqtt_str(f) + bytes([qos])
    return packet(0x82, body)


class Frames:
    """Whole MQTT packets read from a socket: ``next()`` returns (type, flags, body),
    or None once the broker has closed the connection."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.pos = 0

    def next(self, timeout=10):
        self.sock.settimeout(timeout)
        while True:
            frame = self._cut()
            if frame is not None:
                return frame
            try:
                chunk = self.sock.recv(1 << 20)
            except ConnectionResetError:
                return None
            if not chunk:
                return None
            del self.buf[:self.pos]
            self.pos = 0
            self.buf += chunk

    def _cut(self):
        b, i = self.buf, self.pos
        if len(b) - i < 2:
            return None
        length, mult, j = 0, 1, i + 1
        while True:
            if j >= len(b):
                return None
            length += (b[j] & 0x7F) * mult
            mult *= 128
            j += 1
            if not b[j - 1] & 0x80:
                break
        if len(b) - j < length:
            return None
        self.pos = j + length
        return b[i] >> 4, b[i] & 0x0F, bytes(b[j:j + length])


def raw_connected(broker, client_id, version):
    raw = RawClient(broker)
    assert raw.connect(client_id, version=version).reason_code == 0
    return raw


def subscribe_raw(raw, frames, topic, v5):
    raw.sock.sendall(subscribe_packet(1, [topic], 1, v5))
    kind, _, body = frames.next()
    assert kind == 9 and body[-1] == 1, (kind, body)


def read_publishes(raw, frames, v5, until, timeout=20):
    """Reads and acknowledges PUBLISHes until ``until(payloads)`` holds; returns the
    payloads in order."""
    payloads = []
    deadline = time.monotonic() + timeout
    while not until(payloads):
        assert time.monotonic() < deadline, f"only {len(payloads)} messages in {timeout} s"
        frame = frames.next(timeout=max(0.1, deadline - time.monotonic()))
        assert frame is not None, "subscriber closed"
        kind, flags, body = frame
        assert kind == 3, kind
        tlen = struct.unpack_from("!H", body)[0]
        pos = 2 + tlen
        pid = struct.unpack_from("!H", body, pos)[0] if flags & 0x06 else None
        pos += 2 if pid is not None else 0
        if v5:
            plen, shift = 0, 0
            while True:
                byte = body[pos]
                pos += 1
                plen |= (byte & 0x7F) << shift
                shift += 7
                if not byte & 0x80:
                    break
            pos += plen
        payloads.append(body[pos:])
        if pid is not None:
            raw.sock.sendall(bytes([0x40, 2]) + struct.pack("!H", pid))
    return payloads


def flood_qos1(raw, frames, topic, tag, v5, batch, until_refused, limit):
    """Publishes QoS 1 messages of 1000 bytes in pipelined batches; returns the
    payloads acknowledged with success, how many were refused with a reason code,
    and whether the broker closed the connection."""
    acked, refused, seq = [], 0, 0
    while seq < limit:
        sent = {}
        out = bytearray()
        for _ in range(batch):
            pid = seq % 65535 + 1
            payload = b"%s-%06d-" % (tag, seq) + b"x" * 990
            sent[pid] = payload[:1000]
            out += publish_packet(topic, payload[:1000], pid, v5)
            seq += 1
        try:
            raw.sock.sendall(out)
        except (BrokenPipeError, ConnectionResetError):
            return acked, refused, True
        for _ in range(batch):
            frame = frames.next()
            if frame is None:
                return acked, refused, True
            kind, _, body = frame
            assert kind == 4, kind
            pid = struct.unpack_from("!H", body)[0]
            reason = body[2] if len(body) > 2 else 0
            if reason == 0:
                acked.append(sent[pid])
            else:
                assert reason == 0x97, hex(reason)
                refused += 1
        if until_refused and refused:
            break
    return acked, refused, False


def dropped_counter(broker):
    """The broker's $SYS publish/messages/dropped counter, as a fresh subscriber sees it."""
    peer = Peer(broker, version=5)
    peer.connect()
    try:
        peer.subscribe("$SYS/broker/publish/messages/dropped", 0)
        return int(peer.wait_message(timeout=5).payload)
    finally:
        peer.close()


# ---------------------------------------------------------------------------
# The tests.


# Opens COUNT connections from SRC that never send anything, then reports as one
# JSON line how long each lived until the broker closed it.  Run in child processes,
# so that no process needs more than the usual 20,000 open files.
IDLE_OPENER = r"""
import json, select, socket, sys, time
host, port, src, count, wait = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
ep = select.epoll()
opened, closed = {}, {}
start = time.monotonic()
for i in range(count):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    # The port is chosen at connect, per address pair: fast with many sockets.
    s.setsockopt(socket.IPPROTO_IP, getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24), 1)
    s.bind((src, 0))
    at = time.monotonic()
    s.connect_ex((host, port))
    opened[s.fileno()] = (s, at)
    ep.register(s.fileno(), select.EPOLLIN | select.EPOLLRDHUP)
    if i % 500 == 499:
        time.sleep(0.01)
open_secs = time.monotonic() - start
end = time.monotonic() + wait
while len(closed) < count and time.monotonic() < end:
    for fd, _ in ep.poll(0.5):
        if fd not in closed:
            closed[fd] = time.monotonic()
            ep.unregister(fd)
answered = 0
for fd in closed:
    try:
        answered += len(opened[fd][0].recv(64)) > 0
    except OSError:
        pass
lived = [closed[fd] - opened[fd][1] for fd in closed] or [0.0]
print(json.dumps({"opened": count, "closed": len(closed), "answered": answered,
                  "open_secs": open_secs, "min_lived": min(lived), "max_lived": max(lived)}))
"""


def test_idle_connections_are_closed_at_connect_timeout(broker_factory):
    """20,000 TCP connections that never send CONNECT, from two processes: each is
    closed by the broker once connect_timeout (2 s) has passed since it was
    accepted, never before and without an answer; one log line a second at most."""
    per_process, sources = 10_000, ("127.0.1.1", "127.0.1.2")
    count = per_process * len(sources)
    broker = broker_factory(connect_timeout=2)
    good = GoodClient(broker).start()
    sampler = RssSampler(broker, fds=True)
    try:
        children = [
            subprocess.Popen([sys.executable, "-c", IDLE_OPENER, broker.host, str(broker.port),
                              src, str(per_process), "40"], stdout=subprocess.PIPE, text=True)
            for src in sources
        ]
        reports = [json.loads(c.communicate(timeout=90)[0]) for c in children]
    finally:
        sampler.stop()
        good.stop()
    closed = sum(r["closed"] for r in reports)
    lived = (min(r["min_lived"] for r in reports), max(r["max_lived"] for r in reports))
    opening = max(r["open_secs"] for r in reports)
    print(f"{count} idle connections opened in {opening:.1f} s, at most {sampler.peak_fds} "
          f"broker descriptors at once; closed after {lived[0]:.2f} to {lived[1]:.2f} s")
    assert closed == count, f"{count - closed} connections still open"
    # The deadline counts from the broker's clock reading of its accepting turn.
    assert lived[0] >= 1.75, f"a connection was closed after {lived[0]:.2f} s"
    assert sum(r["answered"] for r in reports) == 0, "the broker answered a silent connection"
    sampler.check(count * IDLE_CONN_BUDGET + RSS_SLACK, "idle connections")
    lines = [l for l in broker.log().splitlines() if "no CONNECT within 2 s" in l]
    assert 1 <= len(lines) < 60, f"{len(lines)} log lines for {count} timeouts"


def test_connect_flood_from_one_address_is_refused(broker_factory):
    """A flood of CONNECTs from 127.0.0.2 with max_connection_rate 50: a burst of 50,
    then 50 a second are let in, the rest closed at accept; clients on 127.0.0.1
    are not affected."""
    rate = 50
    broker = broker_factory(max_connection_rate=rate)
    good = GoodClient(broker).start()
    sampler = RssSampler(broker)
    accepted, refused, kept = 0, 0, []
    fresh = 0
    try:
        start = time.monotonic()
        while time.monotonic() - start < 2.0:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.2", 0))
            s.settimeout(5)
            s.connect((broker.host, broker.port))
            try:
                s.sendall(connect_packet("flood-" + uuid.uuid4().hex[:12]))
                answer = s.recv(4)
            except (ConnectionResetError, BrokenPipeError):
                answer = b""
            if answer == b"\x20\x02\x00\x00":
                accepted += 1
                kept.append(s)
            else:
                assert answer == b"", answer
                refused += 1
                s.close()
            if (accepted + refused) % 200 == 0:
                # A new client from another address connects as usual meanwhile.
                other = Peer(broker, version=5)
                other.connect()
                other.close()
                fresh += 1
        elapsed = time.monotonic() - start
    finally:
        for s in kept:
            s.close()
        sampler.stop()
        good.stop()
    print(f"flood from 127.0.0.2: {accepted} accepted, {refused} refused in {elapsed:.1f} s; "
          f"{fresh} clients from 127.0.0.1 connected meanwhile")
    assert rate <= accepted <= rate + rate * elapsed + 1, accepted
    assert refused > accepted, (accepted, refused)
    assert fresh >= 1
    sampler.check(RSS_SLACK, "connect flood")
    assert "more than max_connection_rate 50 a second from its address" in broker.log()


def test_unread_subscriber_is_bounded_by_its_queue(broker_factory):
    """A subscriber that never reads while v5 and 3.1.1 publishers flood it at QoS 1,
    with max_queued_bytes 1 MiB: every publisher message is acknowledged; the
    subscriber's queue keeps 1 MiB of them and drops the rest (counted in
    $SYS/broker/publish/messages/dropped); once it reads, it gets every message kept."""
    queue_bytes = MIB
    broker = broker_factory(max_queued_messages=0, max_queued_bytes=queue_bytes)
    topic = unique_topic("flood")
    sub = raw_connected(broker, "unread-" + uuid.uuid4().hex[:8], 5)
    sub_frames = Frames(sub.sock)
    subscribe_raw(sub, sub_frames, topic, True)
    good = GoodClient(broker).start()
    sampler = RssSampler(broker)
    acked = []
    try:
        for tag, version in ((b"v5", 5), (b"v3", 4)):
            pub = raw_connected(broker, "pub-" + uuid.uuid4().hex[:8], version)
            got, refused, closed = flood_qos1(pub, Frames(pub.sock), topic, tag, version == 5,
                                              batch=200, until_refused=False, limit=3000)
            assert (len(got), refused, closed) == (3000, 0, False)
            acked += got
            pub.sock.close()
    finally:
        sampler.stop()
    time.sleep(1.5)  # one $SYS update (sys_interval 1) after the last drop
    dropped = dropped_counter(broker)
    kept = read_publishes(sub, sub_frames, True, lambda p: len(p) + dropped >= len(acked))
    good.stop()
    print(f"unread subscriber: {len(acked)} acknowledged, {len(kept)} delivered, "
          f"{dropped} dropped by the queue bound")
    assert set(kept) <= set(acked) and len(set(kept)) == len(kept)
    assert len(kept) + dropped == len(acked)
    assert len(kept) >= queue_bytes // 1000
    sampler.check(2 * queue_bytes + RSS_SLACK, "unread subscriber")
    sub.sock.close()


def test_queue_memory_budget_refuses_publishers_without_losing_anything(broker_factory):
    """The same flood with no per-client bound and max_queued_memory 2 MiB: once
    the budget is spent, the v5 publisher gets PUBACK 0x97 and the 3.1.1 publisher
    is closed without a PUBACK; every message acknowledged reaches the subscriber
    once it reads, and the 3.1.1 message is accepted when sent again."""
    budget = 2 * MIB
    broker = broker_factory(max_queued_messages=0, max_queued_memory=budget)
    topic = unique_topic("budget")
    sub = raw_connected(broker, "unread-" + uuid.uuid4().hex[:8], 5)
    sub_frames = Frames(sub.sock)
    subscribe_raw(sub, sub_frames, topic, True)
    good = GoodClient(broker).start()
    sampler = RssSampler(broker)
    try:
        v5 = raw_connected(broker, "pub5-" + uuid.uuid4().hex[:8], 5)
        acked, refused, closed = flood_qos1(v5, Frames(v5.sock), topic, b"v5", True,
                                            batch=100, until_refused=True, limit=100_000)
        assert refused and not closed
        # 20 in flight, the rest queued up to the budget (passed by one message at most).
        entries = budget // (1000 + ENTRY_OVERHEAD)
        assert entries + 20 <= len(acked) <= entries + 21, len(acked)
        v5.sock.sendall(packet(0x30, mqtt_str(topic) + b"\x00" + b"qos0 while full"))
        v3_id = "pub3-" + uuid.uuid4().hex[:8]
        v3 = raw_connected(broker, v3_id, 4)
        resend = publish_packet(topic, b"v3 while full", 1, False)
        v3.sock.sendall(resend)
        assert Frames(v3.sock).next() is None, "3.1.1 publisher acknowledged while full"
        time.sleep(0.3)  # the good client is refused meanwhile
    finally:
        sampler.stop()
    kept = read_publishes(sub, sub_frames, True, lambda p: len(p) >= len(acked))
    assert kept == acked, "the subscriber did not get exactly what was acknowledged"
    # Room again: the 3.1.1 client sends its message again after reconnecting.
    v3 = raw_connected(broker, v3_id, 4)
    v3.sock.sendall(resend)
    kind, _, _ = Frames(v3.sock).next()
    assert kind == 4
    assert read_publishes(sub, sub_frames, True, lambda p: len(p) >= 1) == [b"v3 while full"]
    time.sleep(0.3)
    good.stop()
    assert good.refused >= 1, "the good client was never refused while the budget was spent"
    print(f"queue memory budget: {len(acked)} acknowledged and delivered, {refused} refused")
    sampler.check(2 * budget + RSS_SLACK, "queue memory budget")
    assert "max_queued_memory 2097152 reached" in broker.log()
    for c in (sub, v5, v3):
        c.sock.close()


def test_a_hundred_thousand_subscriptions(broker_factory):
    """A v5 client subscribing to 100,000 filters (100 SUBSCRIBE packets of 1,000)
    with max_subscriptions 10000: the first 10,000 are granted, the others refused
    with 0x97; a 3.1.1 client gets 0x80; a filter held already is granted again."""
    bound = 10_000
    broker = broker_factory(max_subscriptions=bound)
    good = GoodClient(broker).start()
    sampler = RssSampler(broker)
    codes = {}
    try:
        for version, packets in ((5, 100), (4, 20)):
            v5 = version == 5
            raw = raw_connected(broker, "subs-" + uuid.uuid4().hex[:8], version)
            frames = Frames(raw.sock)
            prefix = unique_topic("subs")
            got = []
            for n in range(packets):
                filters = [f"{prefix}/{n}/{i}" for i in range(1000)]
                raw.sock.sendall(subscribe_packet(n + 1, filters, 1, v5))
                kind, _, body = frames.next()
                assert kind == 9
                got += list(body[3:] if v5 else body[2:])
            raw.sock.sendall(subscribe_packet(500, [f"{prefix}/0/0"], 1, v5))
            again = frames.next()[2][-1]
            codes[version] = (got, again)
            raw.sock.close()
    finally:
        sampler.stop()
        good.stop()
    got, again = codes[5]
    assert got[:bound] == [1] * bound and got[bound:] == [0x97] * (100_000 - bound)
    assert again == 1
    got, again = codes[4]
    assert got[:bound] == [1] * bound and got[bound:] == [0x80] * (20_000 - bound)
    assert again == 1
    print(f"subscriptions: {bound} granted of 100,000 (v5) and of 20,000 (3.1.1)")
    sampler.check(2 * bound * 2048 + RSS_SLACK, "subscriptions")
    lines = [l for l in broker.log().splitlines() if "over max_subscriptions" in l]
    assert 1 <= len(lines) <= 40, len(lines)
