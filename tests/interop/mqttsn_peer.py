"""MQTT-SN 1.2 clients for the interoperability suite.

``SnLibClient`` drives the third-party client from PyPI (``mqtt-sn-12``,
module ``mqttsn12``).  Its calls block on ``recvfrom`` without a timeout
when the gateway stays silent, so each one runs in a worker thread with a
deadline; past it the socket is shut down, which wakes the call, and the
test fails instead of hanging.

``SnRawClient`` speaks MQTT-SN with hand-built datagrams for what that
library cannot do: acknowledge QoS 1 and 2 messages it receives (it never
sends PUBACK, PUBREC or PUBCOMP), wake from sleep with a client id in
PINGREQ, and look at the exact datagrams the gateway sends.
"""

import socket
import struct
import threading
import time
from dataclasses import dataclass

from mqttsn12.client.MqttSnClient import MqttSnClient, MqttSnListener

from interop_util import unique_client_id

DEFAULT_TIMEOUT = 10.0

# Message types (MQTT-SN 1.2, table 3).
ADVERTISE, SEARCHGW, GWINFO = 0x00, 0x01, 0x02
CONNECT, CONNACK = 0x04, 0x05
WILLTOPICREQ, WILLTOPIC, WILLMSGREQ, WILLMSG = 0x06, 0x07, 0x08, 0x09
REGISTER, REGACK = 0x0A, 0x0B
PUBLISH, PUBACK, PUBCOMP, PUBREC, PUBREL = 0x0C, 0x0D, 0x0E, 0x0F, 0x10
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK = 0x12, 0x13, 0x14, 0x15
PINGREQ, PINGRESP, DISCONNECT = 0x16, 0x17, 0x18
NAMES = {globals()[n]: n for n in (
    "ADVERTISE", "SEARCHGW", "GWINFO", "CONNECT", "CONNACK", "WILLTOPICREQ", "WILLTOPIC",
    "WILLMSGREQ", "WILLMSG", "REGISTER", "REGACK", "PUBLISH", "PUBACK", "PUBCOMP", "PUBREC",
    "PUBREL", "SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP",
    "DISCONNECT")}

# Flags (table 4).
DUP, RETAIN, WILL, CLEAN = 0x80, 0x10, 0x08, 0x04
TOPIC_NORMAL, TOPIC_PREDEFINED, TOPIC_SHORT = 0x00, 0x01, 0x02
QOS_BITS = {0: 0x00, 1: 0x20, 2: 0x40, -1: 0x60}
ACCEPTED = 0x00


def qos_flags(qos):
    return QOS_BITS[qos]


def flags_qos(flags):
    return {v: k for k, v in QOS_BITS.items()}[flags & 0x60]


def short_id(name):
    """The topic id of a two-character short topic name."""
    raw = name.encode()
    assert len(raw) == 2, name
    return struct.unpack("!H", raw)[0]


def encode(msg_type, body=b""):
    """One MQTT-SN message: the 1-octet length form, or 0x01 and 2 octets past 255."""
    if 2 + len(body) <= 255:
        return bytes([2 + len(body), msg_type]) + body
    return b"\x01" + struct.pack("!H", 4 + len(body)) + bytes([msg_type]) + body


def decode(data):
    """``(type, body)`` of a datagram, checking its length field."""
    if data[:1] == b"\x01":
        length, msg_type, body = struct.unpack("!H", data[1:3])[0], data[3], data[4:]
    else:
        length, msg_type, body = data[0], data[1], data[2:]
    assert length == len(data), f"length field {length} but {len(data)} octets: {data.hex()}"
    return msg_type, body


@dataclass
class SnPublish:
    """A PUBLISH the raw client received."""

    topic: str
    topic_id: int
    id_type: int
    payload: bytes
    qos: int
    retain: bool
    dup: bool
    msg_id: int

    def __repr__(self):
        return f"<{self.topic} {self.payload[:40]!r} q{self.qos}{' R' if self.retain else ''}>"


class SnRawClient:
    """An MQTT-SN client of hand-built datagrams over one UDP socket.

    Every wait has a deadline.  While waiting for something, it answers what
    the gateway sends on its own, as a client must: REGACK to REGISTER,
    PUBACK or PUBREC to PUBLISH, PUBCOMP to PUBREL.  ``trace`` records every
    datagram both ways, for failure messages.
    """

    def __init__(self, listener, predefined=None, timeout=DEFAULT_TIMEOUT):
        self.addr = (listener.host, listener.port)
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.client_id = None
        self.trace = []
        self.publishes = []
        # Topic names by id: what the gateway registered, and the predefined ones.
        self.topics = {}
        self.predefined = dict(predefined or {})
        self._msg_id = 0
        self._qos2_pending = set()

    # -- datagrams -------------------------------------------------------
    def next_msg_id(self):
        self._msg_id = self._msg_id % 0xFFFF + 1
        return self._msg_id

    def send(self, msg_type, body=b""):
        data = encode(msg_type, body)
        self.trace.append((">", NAMES.get(msg_type, hex(msg_type)), data.hex()))
        self.sock.sendto(data, self.addr)

    def recv(self, timeout):
        """The next ``(type, body)``, or None when nothing came within ``timeout``."""
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data, _ = self.sock.recvfrom(65535)
        except socket.timeout:
            return None
        msg_type, body = decode(data)
        self.trace.append(("<", NAMES.get(msg_type, hex(msg_type)), data.hex()))
        return msg_type, body

    def describe(self):
        return "\n".join(f"  {d} {name:<12} {hexed}" for d, name, hexed in self.trace[-30:])

    def _fail(self, what, timeout):
        raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what}; datagrams:\n"
                             f"{self.describe()}")

    # -- what the gateway sends unasked ------------------------------------
    def _answer(self, msg_type, body):
        if msg_type == REGISTER:
            topic_id, msg_id = struct.unpack("!HH", body[:4])
            self.topics[topic_id] = body[4:].decode()
            self.send(REGACK, struct.pack("!HHB", topic_id, msg_id, ACCEPTED))
        elif msg_type == PUBLISH:
            self._on_publish(body)
        elif msg_type == PUBREL:
            (msg_id,) = struct.unpack("!H", body[:2])
            self._qos2_pending.discard(msg_id)
            self.send(PUBCOMP, body[:2])

    def _on_publish(self, body):
        flags, topic_id, msg_id = body[0], *struct.unpack("!HH", body[1:5])
        qos, id_type = flags_qos(flags), flags & 0x03
        if id_type == TOPIC_SHORT:
            topic = struct.pack("!H", topic_id).decode()
        elif id_type == TOPIC_PREDEFINED:
            topic = self.predefined.get(topic_id)
        else:
            topic = self.topics.get(topic_id)
        rec = SnPublish(topic, topic_id, id_type, bytes(body[5:]), qos, bool(flags & RETAIN),
                        bool(flags & DUP), msg_id)
        # A QoS 2 message sent again before our PUBREC arrived is the same message.
        if not (qos == 2 and msg_id in self._qos2_pending):
            self.publishes.append(rec)
        if qos == 1:
            self.send(PUBACK, struct.pack("!HHB", topic_id, msg_id, ACCEPTED))
        elif qos == 2:
            self._qos2_pending.add(msg_id)
            self.send(PUBREC, struct.pack("!H", msg_id))

    def collect_until(self, msg_type, timeout=None, match=None):
        """Receive until a ``msg_type`` message (for which ``match(body)`` holds, if
        given) arrives; answer everything else.  Returns ``(types seen, its body)``."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            got = self.recv(deadline - time.monotonic())
            if got is None:
                self._fail(NAMES.get(msg_type, hex(msg_type)), timeout)
            seen.append(got[0])
            if got[0] == msg_type and (match is None or match(got[1])):
                if msg_type in (PUBLISH, PUBREL):
                    self._answer(*got)
                return seen, got[1]
            self._answer(*got)

    def expect(self, msg_type, timeout=None, match=None):
        return self.collect_until(msg_type, timeout, match)[1]

    def pump(self, duration):
        """Receive and answer for ``duration`` seconds; return the types seen."""
        deadline = time.monotonic() + duration
        seen = []
        while (left := deadline - time.monotonic()) > 0:
            got = self.recv(left)
            if got is None:
                break
            seen.append(got[0])
            self._answer(*got)
        return seen

    def wait_publishes(self, count, timeout=None):
        """Receive until ``count`` PUBLISHes in all arrived; return them."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while len(self.publishes) < count:
            got = self.recv(deadline - time.monotonic())
            if got is None:
                self._fail(f"{count} PUBLISH(es), got {self.publishes!r}", timeout)
            self._answer(*got)
        return list(self.publishes)

    # -- requests ----------------------------------------------------------
    def connect(self, client_id=None, keepalive=30, clean=True, will=None):
        """CONNECT (with the will dialogue when ``will`` has ``topic``, ``payload``
        and optionally ``qos`` and ``retain``); return the CONNACK return code."""
        self.client_id = client_id or unique_client_id("snraw")
        flags = (CLEAN if clean else 0) | (WILL if will else 0)
        self.send(CONNECT, bytes([flags, 0x01]) + struct.pack("!H", keepalive) + self.client_id.encode())
        if will:
            self.expect(WILLTOPICREQ)
            wflags = qos_flags(will.get("qos", 0)) | (RETAIN if will.get("retain") else 0)
            self.send(WILLTOPIC, bytes([wflags]) + will["topic"].encode())
            self.expect(WILLMSGREQ)
            self.send(WILLMSG, will["payload"])
        return self.expect(CONNACK)[0]

    def register(self, topic):
        msg_id = self.next_msg_id()
        self.send(REGISTER, struct.pack("!HH", 0, msg_id) + topic.encode())
        body = self.expect(REGACK, match=lambda b: struct.unpack("!H", b[2:4])[0] == msg_id)
        topic_id, _, code = struct.unpack("!HHB", body)
        assert code == ACCEPTED, f"REGISTER {topic} refused: {code}"
        self.topics[topic_id] = topic
        return topic_id

    def subscribe(self, topic, qos=0, id_type=TOPIC_NORMAL):
        """SUBSCRIBE to a topic name or filter (or a predefined id, an int);
        return ``(return code, granted QoS, topic id)`` from the SUBACK."""
        msg_id = self.next_msg_id()
        flags = qos_flags(qos) | id_type
        if id_type == TOPIC_PREDEFINED:
            ref = struct.pack("!H", topic)
        else:
            ref = topic.encode()
        self.send(SUBSCRIBE, bytes([flags]) + struct.pack("!H", msg_id) + ref)
        body = self.expect(SUBACK, match=lambda b: struct.unpack("!H", b[3:5])[0] == msg_id)
        flags, topic_id, _, code = body[0], *struct.unpack("!HHB", body[1:6])
        if code == ACCEPTED and topic_id and id_type == TOPIC_NORMAL:
            self.topics[topic_id] = topic
        return code, flags_qos(flags), topic_id

    def publish(self, topic_id, payload, qos=0, retain=False, id_type=TOPIC_NORMAL):
        """PUBLISH and complete its QoS flow; return the PUBACK's return code
        (QoS 1) or ACCEPTED."""
        msg_id = self.next_msg_id() if qos > 0 else 0
        flags = qos_flags(qos) | (RETAIN if retain else 0) | id_type
        self.send(PUBLISH, bytes([flags]) + struct.pack("!HH", topic_id, msg_id) + payload)
        if qos == 1:
            body = self.expect(PUBACK, match=lambda b: struct.unpack("!H", b[2:4])[0] == msg_id)
            return body[4]
        if qos == 2:
            self.expect(PUBREC, match=lambda b: struct.unpack("!H", b[:2])[0] == msg_id)
            self.send(PUBREL, struct.pack("!H", msg_id))
            self.expect(PUBCOMP, match=lambda b: struct.unpack("!H", b[:2])[0] == msg_id)
        return ACCEPTED

    def disconnect(self, duration=None):
        """DISCONNECT (asleep for ``duration`` s if given); return the gateway's
        DISCONNECT body."""
        self.send(DISCONNECT, b"" if duration is None else struct.pack("!H", duration))
        return self.expect(DISCONNECT)

    def pingreq(self, with_client_id=False):
        self.send(PINGREQ, self.client_id.encode() if with_client_id else b"")

    def close(self):
        self.sock.close()


class _Collector(MqttSnListener):
    def __init__(self, sink):
        self.sink = sink

    def message_arrived(self, msg):
        self.sink.append(msg)


class SnLibClient:
    """The PyPI client (``mqttsn12.client.MqttSnClient``) under deadlines.

    ``messages`` holds the ``MqttSnMessage`` objects its listener received
    (topic_name, topic_id, payload, qos, retain).
    """

    def __init__(self, listener, client_id=None, keepalive=30, timeout=DEFAULT_TIMEOUT):
        self.timeout = timeout
        self.client = MqttSnClient()
        self.client.set_client_id(client_id or unique_client_id("snlib"))
        self.client.set_keep_alive(keepalive)
        # The library's own waits count whole seconds.
        self.client.set_timeout(max(1, int(timeout)))
        self.client.open(listener.host, listener.port)
        self.messages = []
        self.listener = _Collector(self.messages)
        self.closed = False

    def _call(self, what, fn, *args, timeout=None):
        timeout = self.timeout if timeout is None else timeout
        outcome = {}

        def run():
            try:
                outcome["value"] = fn(*args)
            except BaseException as e:  # handed to the test thread
                outcome["error"] = e

        worker = threading.Thread(target=run, name=f"mqttsn12 {what}", daemon=True)
        worker.start()
        worker.join(timeout)
        if worker.is_alive():
            self._unblock()
            worker.join(2)
            raise AssertionError(f"mqtt-sn-12: {what} did not finish within {timeout:.1f} s")
        if "error" in outcome:
            raise outcome["error"]
        return outcome.get("value")

    def _unblock(self):
        sock = self.client.datagram_socket
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                # Unconnected UDP reports ENOTCONN, but the blocked receive still wakes.
                pass

    # -- the library's operations ------------------------------------------
    def connect(self, will=None, clean=True):
        if will is not None:
            self.client.set_will(will["topic"], will["payload"], will.get("qos", 0),
                                 will.get("retain", False))
        self.client.set_clean_session(clean)
        self._call("CONNECT", self.client.send_connect)

    def register(self, topic):
        return self._call(f"REGISTER {topic}", self.client.send_register, topic)

    def publish(self, topic, payload, qos=0, retain=False):
        """Publish by name: REGISTER then PUBLISH (a short topic for two characters)."""
        return self._call(f"PUBLISH q{qos} {topic}", self.client.send_publish, topic, payload, qos, retain)

    def publish_id(self, topic_id, payload, qos=0, retain=False):
        """Publish to an id registered before (normal topic id)."""
        return self._call(f"PUBLISH q{qos} id {topic_id}", self.client.send_publish_with_id, topic_id,
                          TOPIC_NORMAL, payload, qos, retain)

    def publish_predefined(self, topic_id, payload, qos=0, retain=False):
        return self._call(f"PUBLISH q{qos} predefined {topic_id}", self.client.send_publish_predefined,
                          topic_id, payload, qos, retain)

    def publish_short(self, name, payload, qos=0, retain=False):
        return self._call(f"PUBLISH q{qos} short {name}", self.client.send_publish_short, short_id(name),
                          payload, qos, retain)

    def subscribe(self, topic, qos=0):
        self._call(f"SUBSCRIBE {topic}", self.client.send_subscribe, topic, qos, self.listener)

    def subscribe_predefined(self, topic_id, qos=0):
        self._call(f"SUBSCRIBE predefined {topic_id}", self.client.send_subscribe_predefined, topic_id, qos,
                   self.listener)

    def wait_messages(self, count, timeout=None):
        """Poll the library until ``count`` messages arrived; return them."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout

        def poll():
            while len(self.messages) < count and time.monotonic() < deadline:
                self.client.polling()
                time.sleep(0.005)

        self._call("receiving", poll, timeout=timeout + 2)
        assert len(self.messages) >= count, (
            f"mqtt-sn-12 received {len(self.messages)} of {count} message(s) within {timeout:.1f} s: "
            f"{[str(m) for m in self.messages]}")
        return list(self.messages)

    def poll_for(self, duration):
        """Keep polling for ``duration`` seconds (to see that nothing more comes)."""
        deadline = time.monotonic() + duration

        def poll():
            while time.monotonic() < deadline:
                self.client.polling()
                time.sleep(0.005)

        self._call("receiving", poll, timeout=duration + 2)
        return list(self.messages)

    def disconnect(self, duration=0):
        self._call("DISCONNECT", self.client.send_disconnect, duration)
        self.close()

    def close(self):
        """Close the socket without a DISCONNECT: to the gateway, the client went silent."""
        if not self.closed:
            self.closed = True
            self.client.close()
