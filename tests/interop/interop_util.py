"""Client-side helpers for the interoperability suite.

``Peer`` wraps a paho-mqtt 2.x client running its network loop in a thread
and records everything the broker sends it (CONNACK, SUBACKs, messages,
DISCONNECT).  ``RawClient`` speaks just enough MQTT over a bare socket to do
what a well-behaved library refuses to: go silent, or vanish without a
DISCONNECT.
"""

import re
import socket
import struct
import threading
import time
import uuid
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

DEFAULT_TIMEOUT = 10.0
VERSIONS = {3: mqtt.MQTTv311, 311: mqtt.MQTTv311, 5: mqtt.MQTTv5}


def unique_topic(hint="t"):
    """A topic no other test uses: ``interop/<hint>/<random>``."""
    clean = re.sub(r"[^A-Za-z0-9_.-]", "_", hint)[:60] or "t"
    return f"interop/{clean}/{uuid.uuid4().hex[:8]}"


def unique_client_id(prefix="i"):
    # 23 characters at most: the limit every 3.1.1 server must accept.
    return f"{prefix}{uuid.uuid4().hex}"[:23]


def wait_for(condition, timeout=DEFAULT_TIMEOUT, interval=0.01, message="condition"):
    """Poll ``condition()`` until it returns a truthy value; return that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.1f} s waiting for {message}")
        time.sleep(interval)


def props(packet_type, **values):
    """Build paho ``Properties``: ``props(PacketTypes.PUBLISH, MessageExpiryInterval=5)``."""
    p = Properties(packet_type)
    for name, value in values.items():
        setattr(p, name, value)
    return p


def publish_props(**values):
    return props(PacketTypes.PUBLISH, **values)


def prop(properties, name, default=None):
    """Read a property, tolerating ``properties`` being None."""
    if properties is None:
        return default
    return getattr(properties, name, default)


@dataclass
class Received:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    properties: object = None

    def __repr__(self):
        return f"<{self.topic} {self.payload[:40]!r} q{self.qos}{' R' if self.retain else ''}>"


@dataclass
class Connack:
    reason_code: int
    session_present: bool
    properties: object = None


@dataclass
class Disconnect:
    reason_code: int
    from_server: bool
    properties: object = None
    at: float = field(default_factory=time.monotonic)


class Peer:
    """A paho client connected to a broker, with everything it received."""

    def __init__(self, broker, version=5, client_id=None, clean=True, keepalive=60,
                 properties=None, will=None):
        self.broker = broker
        self.version = VERSIONS[version]
        self.client_id = unique_client_id() if client_id is None else client_id
        self.clean = clean
        self.keepalive = keepalive
        self.connect_properties = properties
        kw = {}
        if self.version != mqtt.MQTTv5:
            kw["clean_session"] = clean
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=self.version,
            reconnect_on_failure=False,
            **kw,
        )
        if will is not None:
            self.client.will_set(**will)
        self._cond = threading.Condition()
        self.messages = []
        self.connack = None
        self.disconnects = []
        self._subacks = {}
        self._unsubacks = {}
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.on_unsubscribe = self._on_unsubscribe
        self.client.on_disconnect = self._on_disconnect

    # -- callbacks (network thread) --------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties):
        with self._cond:
            self.connack = Connack(reason_code.value, bool(flags.session_present), properties)
            self._cond.notify_all()

    def _on_message(self, client, userdata, msg):
        rec = Received(msg.topic, bytes(msg.payload), msg.qos, bool(msg.retain),
                       getattr(msg, "properties", None))
        with self._cond:
            self.messages.append(rec)
            self._cond.notify_all()

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        with self._cond:
            self._subacks[mid] = [rc.value for rc in reason_codes]
            self._cond.notify_all()

    def _on_unsubscribe(self, client, userdata, mid, reason_codes, properties):
        with self._cond:
            self._unsubacks[mid] = reason_codes
            self._cond.notify_all()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        with self._cond:
            self.disconnects.append(
                Disconnect(reason_code.value, bool(flags.is_disconnect_packet_from_server), properties))
            self._cond.notify_all()

    def _wait(self, predicate, timeout, what):
        with self._cond:
            if not self._cond.wait_for(predicate, timeout):
                raise AssertionError(
                    f"{self.client_id}: timed out after {timeout:.1f} s waiting for {what}; "
                    f"received so far: {self.messages!r}, disconnects: {self.disconnects!r}")

    # -- connection ------------------------------------------------------
    def connect(self, timeout=DEFAULT_TIMEOUT, expect_success=True):
        kw = {}
        if self.version == mqtt.MQTTv5:
            kw["clean_start"] = self.clean
            kw["properties"] = self.connect_properties
        self.client.connect(self.broker.host, self.broker.port, keepalive=self.keepalive, **kw)
        self.client.loop_start()
        self._wait(lambda: self.connack is not None or self.disconnects, timeout, "CONNACK")
        if expect_success:
            assert self.connack is not None, f"connection closed before CONNACK: {self.disconnects}"
            assert self.connack.reason_code == 0, f"CONNACK refused: {self.connack}"
        return self.connack

    @property
    def session_present(self):
        return self.connack.session_present

    def disconnect(self, reason_code=None, properties=None, timeout=DEFAULT_TIMEOUT):
        """Clean DISCONNECT, then wait until the network loop has shut down."""
        if self.client.is_connected():
            kw = {}
            if reason_code is not None:
                kw["reasoncode"] = mqtt.ReasonCode(PacketTypes.DISCONNECT, identifier=reason_code)
            if properties is not None:
                kw["properties"] = properties
            self.client.disconnect(**kw)
            self._wait(lambda: self.disconnects, timeout, "disconnect to complete")
        self.client.loop_stop()

    def close(self):
        try:
            self.disconnect(timeout=2)
        except AssertionError:
            pass
        self.client.loop_stop()

    def wait_disconnect(self, timeout=DEFAULT_TIMEOUT):
        """Wait until the broker closes the connection; return the first Disconnect."""
        self._wait(lambda: self.disconnects, timeout, "the broker to disconnect")
        return self.disconnects[0]

    # -- subscribe / publish ---------------------------------------------
    def subscribe(self, topic, qos=0, options=None, properties=None, timeout=DEFAULT_TIMEOUT):
        """Subscribe and wait for the SUBACK; return its reason codes (granted QoS)."""
        if options is not None:
            rc, mid = self.client.subscribe(topic, options=options, properties=properties)
        else:
            rc, mid = self.client.subscribe(topic, qos, properties=properties)
        assert rc == mqtt.MQTT_ERR_SUCCESS, f"subscribe failed locally: {rc}"
        self._wait(lambda: mid in self._subacks, timeout, f"SUBACK for {topic}")
        return self._subacks[mid]

    def unsubscribe(self, topic, timeout=DEFAULT_TIMEOUT):
        rc, mid = self.client.unsubscribe(topic)
        assert rc == mqtt.MQTT_ERR_SUCCESS
        self._wait(lambda: mid in self._unsubacks, timeout, f"UNSUBACK for {topic}")

    def publish(self, topic, payload=b"", qos=0, retain=False, properties=None, wait=True,
                timeout=DEFAULT_TIMEOUT):
        """Publish; by default wait until the QoS flow completes (or QoS 0 is written)."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS, f"publish failed locally: {info.rc}"
        if wait:
            info.wait_for_publish(timeout)
            assert info.is_published(), f"publish to {topic} q{qos} not acknowledged within {timeout} s"
        return info

    # -- received messages -----------------------------------------------
    def received(self, topic=None):
        with self._cond:
            return [m for m in self.messages if topic is None or m.topic == topic]

    def wait_messages(self, count, topic=None, timeout=DEFAULT_TIMEOUT):
        """Wait until at least ``count`` messages (on ``topic``) arrived; return them all."""
        def enough():
            return len([m for m in self.messages if topic is None or m.topic == topic]) >= count
        self._wait(enough, timeout, f"{count} message(s)" + (f" on {topic}" if topic else ""))
        return self.received(topic)

    def wait_message(self, topic=None, timeout=DEFAULT_TIMEOUT):
        return self.wait_messages(1, topic, timeout)[0]

    def wait_payload(self, payload, timeout=DEFAULT_TIMEOUT):
        """Wait for a message carrying ``payload``; return every message received up to it."""
        def seen():
            return any(m.payload == payload for m in self.messages)
        self._wait(seen, timeout, f"payload {payload!r}")
        msgs = self.received()
        return msgs[: [m.payload for m in msgs].index(payload) + 1]


# ---------------------------------------------------------------------------
# Raw MQTT over a socket.


def varint(n):
    """MQTT's variable byte integer."""
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def mqtt_str(s):
    """A UTF-8 string (or bytes) with its two-byte length."""
    b = s.encode() if isinstance(s, str) else bytes(s)
    return struct.pack("!H", len(b)) + b


def packet(first_byte, body):
    """A whole packet: the first byte, the remaining length and the body."""
    return bytes([first_byte]) + varint(len(body)) + body


class RawClient:
    """A hand-driven MQTT connection (3.1.1 or 5.0)."""

    def __init__(self, broker, timeout=DEFAULT_TIMEOUT):
        self.version = None
        self.sock = socket.create_connection((broker.host, broker.port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buf = b""

    def connect(self, client_id, version=5, keepalive=60, clean=True, will=None,
                properties=None):
        """Send CONNECT and return the CONNACK as a :class:`Connack`.

        ``will`` is a dict with ``topic``, ``payload`` and optionally ``qos``,
        ``retain`` and (v5) ``properties`` (a WILLMESSAGE ``Properties``).
        """
        self.version = 5 if version == 5 else 4
        flags = 0x02 if clean else 0
        if will:
            flags |= 0x04 | (will.get("qos", 0) << 3) | (0x20 if will.get("retain") else 0)
        body = mqtt_str("MQTT") + bytes([self.version, flags]) + struct.pack("!H", keepalive)
        if self.version == 5:
            body += (properties or Properties(PacketTypes.CONNECT)).pack()
        body += mqtt_str(client_id)
        if will:
            if self.version == 5:
                body += (will.get("properties") or Properties(PacketTypes.WILLMESSAGE)).pack()
            body += mqtt_str(will["topic"]) + mqtt_str(will["payload"])
        self.sock.sendall(packet(0x10, body))
        kind, _, payload = self.read_packet()
        assert kind == 2, f"expected CONNACK, got packet type {kind}"
        connack_props = None
        if self.version == 5 and len(payload) > 2:
            connack_props = Properties(PacketTypes.CONNACK)
            connack_props.unpack(payload[2:])
        return Connack(payload[1], bool(payload[0] & 1), connack_props)

    def disconnect(self, reason_code=0):
        """Send DISCONNECT (v5 with ``reason_code``) and wait for the broker to close."""
        body = bytes([reason_code]) if self.version == 5 and reason_code else b""
        self.sock.sendall(packet(0xE0, body))
        self.wait_closed()

    def abort(self):
        """Drop the connection without a DISCONNECT (an abnormal close)."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def _fill(self, n):
        while len(self._buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed by the broker")
            self._buf += chunk

    def read_packet(self):
        """Return ``(packet_type, flags, body)`` of the next packet."""
        self._fill(2)
        length, mult, i = 0, 1, 1
        while True:
            self._fill(i + 1)
            byte = self._buf[i]
            length += (byte & 0x7F) * mult
            mult *= 128
            i += 1
            if not byte & 0x80:
                break
        self._fill(i + length)
        first, body = self._buf[0], self._buf[i:i + length]
        self._buf = self._buf[i + length:]
        return first >> 4, first & 0x0F, body

    def wait_closed(self, timeout=DEFAULT_TIMEOUT):
        """Read until the broker closes the connection; return the packets seen."""
        self.sock.settimeout(timeout)
        seen = []
        try:
            while True:
                seen.append(self.read_packet())
        except (ConnectionError, OSError) as e:
            if isinstance(e, socket.timeout):
                raise AssertionError(f"broker did not close the connection within {timeout} s")
        finally:
            self.sock.close()
        return seen
