"""MQTT over TLS, WebSockets and secure WebSockets with third-party peers.

Peers: paho-mqtt (TLS, ws, wss; MQTT 3.1.1 and 5.0), mosquitto_pub and
mosquitto_sub (TLS, client certificates) and ``openssl s_client`` (TLS
versions, ALPN, raw MQTT through the tunnel).  The brokers and listeners
are built by ``transport_broker``.
"""

import base64
import hashlib
import os
import re
import shutil
import socket
import ssl
import subprocess
import threading

import pytest

from interop_util import unique_client_id, wait_for
from transport_broker import CLIENT_CN, Listener, TransportBroker, TransportPeer

TIMEOUT = 10
LARGE_PAYLOAD = 200 * 1024
VERSIONS = [pytest.param(3, id="v311"), pytest.param(5, id="v5")]
CLI_VERSIONS = {3: "mqttv311", 5: "mqttv5"}
MARK = "MSG|"
LINE_BUFFERED = ["stdbuf", "-oL"] if shutil.which("stdbuf") else []
# A minimal MQTT 3.1.1 CONNECT (clean session, keep alive 60 s, empty
# client id) and the CONNACK accepting it.
RAW_CONNECT = bytes([0x10, 0x0C, 0x00, 0x04]) + b"MQTT" + bytes([0x04, 0x02, 0x00, 0x3C, 0x00, 0x00])
RAW_CONNACK = bytes([0x20, 0x02, 0x00, 0x00])
RAW_DISCONNECT = bytes([0xE0, 0x00])
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def shared_listeners():
    return [
        Listener("tcp"),
        Listener("tls", tls=True),
        # Client certificates required; the certificate's CN is the user name.
        Listener("mtls", tls=True, client_certs=True, options={"use_identity_as_username": "true"}),
        Listener("ws", protocol="websockets"),
        Listener("wss", protocol="websockets", tls=True),
        Listener("tls13", tls=True, options={"tls_version": "tlsv1.3"}),
    ]


@pytest.fixture(scope="module")
def tbroker(certs):
    """The broker shared by this module, with one listener per transport."""
    b = TransportBroker(shared_listeners(), certs).start()
    yield b
    b.stop()


@pytest.fixture(scope="module")
def locked_broker(certs):
    """``allow_anonymous false``: only certificate clients (named by their CN) get in."""
    b = TransportBroker(
        [Listener("tcp"),
         Listener("mtls", tls=True, client_certs=True, options={"use_identity_as_username": "true"})],
        certs, {"allow_anonymous": "false"}).start()
    yield b
    b.stop()


@pytest.fixture(autouse=True)
def _peers_installed():
    # A missing peer is an error, not a reason to skip.
    for tool in ("mosquitto_pub", "mosquitto_sub", "openssl"):
        assert shutil.which(tool), f"{tool} not found: install mosquitto-clients and openssl (scripts/test does)"


@pytest.fixture
def via(peer_factory):
    """``via(listener, version=5, **kw)``: a connected paho client; certificate listeners get the client certificate."""

    def make(listener, version=5, **kw):
        kw.setdefault("client_cert", listener.client_certs)
        return peer_factory(listener, version=version, **kw)

    return make


# ---------------------------------------------------------------------------
# mosquitto_pub / mosquitto_sub


def cli_endpoint(listener, certs, client_cert=None):
    args = ["-h", listener.host, "-p", str(listener.port)]
    if listener.tls or listener.client_certs:
        args += ["--cafile", certs.ca_pem]
    if client_cert is None:
        client_cert = listener.client_certs
    if client_cert:
        args += ["--cert", certs.client_pem, "--key", certs.client_key]
    return args


def cli_pub(listener, certs, topic, message, *extra, version=3, qos=1, client_cert=None):
    """Run mosquitto_pub; return the finished process (the caller checks the exit status)."""
    cmd = ["mosquitto_pub", *cli_endpoint(listener, certs, client_cert), "-V", CLI_VERSIONS[version],
           "-q", str(qos), "-i", unique_client_id("p"), "-t", topic, "-m", message, *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT)


class CliSub:
    """A running mosquitto_sub printing ``MSG|topic|qos|retain|payload`` lines."""

    def __init__(self, listener, certs, topic, *extra, version=3, qos=1, count=1, client_cert=None):
        self.cmd = [*LINE_BUFFERED, "mosquitto_sub", *cli_endpoint(listener, certs, client_cert),
                    "-V", CLI_VERSIONS[version], "-q", str(qos), "-i", unique_client_id("s"),
                    "-t", topic, "-C", str(count), "-W", str(TIMEOUT), "-d",
                    "-F", MARK + "%t|%q|%r|%p", *extra]
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.lines = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_subscribed(self):
        # -d prints one line per packet, the SUBACK included.
        wait_for(lambda: any("SUBACK" in l for l in self.lines) or self.proc.poll() is not None,
                 timeout=TIMEOUT, message="mosquitto_sub to get its SUBACK")
        assert self.proc.poll() is None, "mosquitto_sub exited early:\n" + "\n".join(self.lines)
        return self

    def result(self):
        """Wait for exit after ``count`` messages; return ``[(topic, qos, retain, payload)]``."""
        try:
            rc = self.proc.wait(timeout=TIMEOUT + 5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError("mosquitto_sub did not exit:\n" + "\n".join(self.lines))
        self._reader.join(5)
        assert rc == 0, f"mosquitto_sub exited with {rc}:\n" + "\n".join(self.lines)
        msgs = []
        for line in self.lines:
            if line.startswith(MARK):
                t, q, r, p = line[len(MARK):].split("|", 3)
                msgs.append((t, int(q), int(r), p))
        return msgs

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


# ---------------------------------------------------------------------------
# openssl s_client


def s_client_args(listener, certs, *extra):
    return ["openssl", "s_client", "-connect", f"{listener.host}:{listener.port}",
            "-CAfile", certs.ca_pem, "-verify_return_error", *extra]


def s_client(listener, certs, *extra):
    """Handshake, print the session, exit at end of input; return (exit status, output)."""
    done = subprocess.run(s_client_args(listener, certs, *extra), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=TIMEOUT)
    return done.returncode, done.stdout + done.stderr


def negotiated_protocol(output):
    # "New, TLSv1.3, Cipher is ..." is printed once the handshake completed.
    m = re.search(r"^New, (TLSv[\d.]+), Cipher is", output, re.M)
    return m.group(1) if m else None


# ---------------------------------------------------------------------------
# paho over TLS, ws and wss


@pytest.mark.parametrize("qos", [0, 1, 2])
@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", ["tls", "ws", "wss"])
def test_paho_pubsub_over_transport(tbroker, via, topic, name, version, qos):
    listener = tbroker[name]
    sub = via(listener, version)
    sub.subscribe(topic, qos)
    pub = via(listener, version)

    pub.publish(topic, f"over {listener.scheme} q{qos}".encode(), qos=qos)

    msg = sub.wait_message(topic)
    assert (msg.payload, msg.qos, msg.retain) == (f"over {listener.scheme} q{qos}".encode(), qos, False)


@pytest.mark.parametrize("pub_name,sub_name", [
    ("tls", "ws"), ("ws", "tls"), ("wss", "tcp"), ("tcp", "wss"), ("tls", "wss"), ("wss", "mtls"),
])
@pytest.mark.parametrize("pub_version,sub_version", [(3, 5), (5, 3)], ids=["v311-to-v5", "v5-to-v311"])
def test_paho_cross_transport(tbroker, via, topic, pub_name, sub_name, pub_version, sub_version):
    sub = via(tbroker[sub_name], sub_version)
    sub.subscribe(topic, 2)
    pub = via(tbroker[pub_name], pub_version)

    for qos in (0, 1, 2):
        pub.publish(topic, f"{pub_name}->{sub_name} q{qos}".encode(), qos=qos)

    msgs = sub.wait_messages(3, topic)
    assert [(m.payload, m.qos) for m in msgs] == [
        (f"{pub_name}->{sub_name} q{qos}".encode(), qos) for qos in (0, 1, 2)]


def test_paho_retained_message_across_transports(tbroker, via, topic):
    pub = via(tbroker["tls"], 5)
    pub.publish(topic, b"kept", qos=1, retain=True)
    try:
        for name, version in (("ws", 3), ("wss", 5), ("tls", 3), ("mtls", 5)):
            sub = via(tbroker[name], version)
            sub.subscribe(topic, 1)
            msg = sub.wait_message(topic)
            assert (msg.payload, msg.qos, msg.retain) == (b"kept", 1, True), f"over {name}"
            sub.disconnect()
    finally:
        pub.publish(topic, b"", qos=1, retain=True)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("pub_name", ["wss", "tcp"])
def test_paho_large_payload_over_wss(tbroker, via, topic, pub_name, version):
    # 200 KB spans many TLS records and socket reads in both directions.
    payload = os.urandom(LARGE_PAYLOAD)
    wss_sub = via(tbroker["wss"], version)
    wss_sub.subscribe(topic, 1)
    ws_sub = via(tbroker["ws"], version)
    ws_sub.subscribe(topic, 1)
    pub = via(tbroker[pub_name], version)

    pub.publish(topic, payload, qos=1, timeout=20)
    pub.publish(topic, b"after", qos=1)

    for sub in (wss_sub, ws_sub):
        msgs = sub.wait_messages(2, topic, timeout=20)
        assert [m.payload for m in msgs] == [payload, b"after"]


@pytest.mark.parametrize("path", ["/mqtt", "/", "/some/other/path"])
def test_paho_websocket_paths(tbroker, via, topic, path):
    # Clients differ in the path they request; the broker takes any.
    for name in ("ws", "wss"):
        peer = via(tbroker[name], 5, ws_path=path)
        peer.subscribe(topic, 1)
        peer.publish(topic, f"{name}{path}".encode(), qos=1)
        assert peer.wait_message(topic).payload == f"{name}{path}".encode()
        peer.disconnect()
        peer.messages.clear()


@pytest.mark.parametrize("offer,chosen", [
    ("mqtt", "mqtt"), ("mqttv3.1", "mqttv3.1"), ("chat, mqtt", "mqtt"),
])
def test_websocket_handshake_selects_mqtt_subprotocol(tbroker, offer, chosen):
    # Browsers drop a WebSocket whose 101 response does not name one of the
    # offered subprotocols, so the broker must echo the MQTT one.
    listener = tbroker["ws"]
    key = base64.b64encode(os.urandom(16)).decode()
    request = (f"GET /mqtt HTTP/1.1\r\nHost: {listener.host}:{listener.port}\r\n"
               "Upgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
               f"Sec-WebSocket-Protocol: {offer}\r\n\r\n")
    with socket.create_connection((listener.host, listener.port), timeout=TIMEOUT) as s:
        s.sendall(request.encode())
        response = b""
        while b"\r\n\r\n" not in response:
            chunk = s.recv(4096)
            assert chunk, f"connection closed during the handshake: {response!r}"
            response += chunk
    head = response.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    status, *header_lines = head.split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in header_lines)}
    assert status.split()[1] == "101", head
    expected_accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
    assert headers.get("sec-websocket-accept") == expected_accept, head
    assert headers.get("sec-websocket-protocol") == chosen, head


# ---------------------------------------------------------------------------
# Client certificates


def test_paho_with_client_certificate(tbroker, via, topic):
    sub = via(tbroker["tls"], 5)
    sub.subscribe(topic, 1)
    pub = via(tbroker["mtls"], 3, client_cert=True)

    pub.publish(topic, b"signed", qos=1)

    assert sub.wait_message(topic).payload == b"signed"


@pytest.mark.parametrize("version", VERSIONS)
def test_paho_without_client_certificate_is_refused(tbroker, certs, via, topic, version):
    sub = via(tbroker["tcp"], 5)
    sub.subscribe(topic, 1)
    peer = TransportPeer(tbroker["mtls"], certs, version=version, client_cert=False)
    try:
        # The refusal is a failed handshake: with TLS 1.3 the client learns
        # of it only on its first read, so it shows as a close before CONNACK.
        try:
            connack = peer.connect(expect_success=False, timeout=TIMEOUT)
        except (ssl.SSLError, OSError):
            connack = None
        assert connack is None, f"got a CONNACK without a certificate: {connack}"
        assert not peer.client.is_connected(), "connection still open without a certificate"
    finally:
        peer.close()
    via(tbroker["tcp"], 5).publish(topic, b"marker", qos=1)
    assert [m.payload for m in sub.wait_payload(b"marker")] == [b"marker"]


@pytest.mark.parametrize("version", [3, 5], ids=["v311", "v5"])
def test_mosquitto_clients_over_tls(tbroker, certs, topic, version):
    sub = CliSub(tbroker["tls"], certs, topic, version=version, qos=1).wait_subscribed()

    done = cli_pub(tbroker["tls"], certs, topic, "over tls", version=version, qos=1)
    assert done.returncode == 0, done.stderr

    assert sub.result() == [(topic, 1, 0, "over tls")]


@pytest.mark.parametrize("version", [3, 5], ids=["v311", "v5"])
def test_mosquitto_clients_with_client_certificate(tbroker, certs, topic, version):
    mtls = tbroker["mtls"]
    sub = CliSub(mtls, certs, topic, version=version, qos=2, client_cert=True).wait_subscribed()

    done = cli_pub(mtls, certs, topic, "with cert", version=version, qos=2, client_cert=True)
    assert done.returncode == 0, done.stderr

    assert sub.result() == [(topic, 2, 0, "with cert")]


@pytest.mark.parametrize("version", [3, 5], ids=["v311", "v5"])
def test_mosquitto_pub_without_certificate_is_refused(tbroker, certs, topic, version):
    # The subscriber is on another listener; the first thing it gets must be
    # the marker sent after the refused attempt.
    sub = CliSub(tbroker["tcp"], certs, topic, version=version, qos=1).wait_subscribed()
    try:
        refused = cli_pub(tbroker["mtls"], certs, topic, "no cert", version=version, qos=1,
                          client_cert=False)
        assert refused.returncode != 0, "mosquitto_pub without a certificate succeeded"
        marker = cli_pub(tbroker["tcp"], certs, topic, "marker", version=version, qos=1)
        assert marker.returncode == 0, marker.stderr
        assert sub.result() == [(topic, 1, 0, "marker")]
    finally:
        sub.kill()


# ---------------------------------------------------------------------------
# use_identity_as_username with allow_anonymous false


@pytest.mark.parametrize("version", VERSIONS)
def test_client_without_identity_is_refused_when_anonymous_disallowed(locked_broker, via, version):
    # Even naming the certificate's CN in CONNECT does not let a client in.
    # paho reports 3.1.1 return codes as 5.0 reason codes: 5 reads as 0x87.
    for username, refusals in ((None, {0x87}), (CLIENT_CN, {0x86, 0x87})):
        peer = via(locked_broker["tcp"], version, expect_success=False, username=username)
        assert peer.connack is not None, f"no CONNACK: {peer.disconnects}"
        assert peer.connack.reason_code in refusals, f"user {username!r}: {peer.connack}"


@pytest.mark.parametrize("version", VERSIONS)
def test_certificate_identity_is_the_user_name(locked_broker, via, topic, version):
    # The client sends no user name, or another one: the CN admits it anyway.
    sub = via(locked_broker["mtls"], version, client_cert=True)
    sub.subscribe(topic, 1)
    pub = via(locked_broker["mtls"], version, client_cert=True, username="someone-else")

    pub.publish(topic, b"by certificate", qos=1)

    assert sub.wait_message(topic).payload == b"by certificate"


def test_mosquitto_clients_admitted_by_certificate_identity(locked_broker, certs, topic):
    mtls = locked_broker["mtls"]
    sub = CliSub(mtls, certs, topic, version=5, qos=1).wait_subscribed()

    done = cli_pub(mtls, certs, topic, "cn admits", version=5, qos=1)
    assert done.returncode == 0, done.stderr
    anonymous = cli_pub(locked_broker["tcp"], certs, topic, "anonymous", version=5, qos=1)
    assert anonymous.returncode != 0, "anonymous mosquitto_pub was let in"

    assert sub.result() == [(topic, 1, 0, "cn admits")]


# ---------------------------------------------------------------------------
# openssl s_client


@pytest.mark.parametrize("flag,protocol", [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")])
def test_s_client_handshake(tbroker, certs, flag, protocol):
    rc, out = s_client(tbroker["tls"], certs, flag)

    assert rc == 0, out
    assert negotiated_protocol(out) == protocol, out
    assert "Verify return code: 0 (ok)" in out, out


@pytest.mark.culex_only(reason="mosquitto's listeners negotiate no ALPN protocol")
def test_s_client_alpn_mqtt(tbroker, certs):
    # ALPN "mqtt" lets a TLS router in front of the broker recognise MQTT.
    rc, out = s_client(tbroker["tls"], certs, "-alpn", "mqtt")

    assert rc == 0, out
    assert "ALPN protocol: mqtt" in out, out


def test_s_client_tls12_refused_by_tls13_listener(tbroker, certs):
    listener = tbroker["tls13"]

    rc, out = s_client(listener, certs, "-tls1_2")
    assert rc != 0, out
    assert negotiated_protocol(out) is None, out

    rc, out = s_client(listener, certs, "-tls1_3")
    assert rc == 0, out
    assert negotiated_protocol(out) == "TLSv1.3", out


@pytest.mark.parametrize("name,flag", [("tls", "-tls1_2"), ("tls", "-tls1_3"), ("tls13", "-tls1_3")])
def test_s_client_carries_mqtt_connect(tbroker, certs, name, flag):
    # -quiet: only the broker's bytes on stdout, and end of input does not
    # close the connection before the CONNACK arrives.
    proc = subprocess.Popen(s_client_args(tbroker[name], certs, flag, "-quiet"),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    received = bytearray()

    def read():
        while len(received) < len(RAW_CONNACK):
            chunk = proc.stdout.read1(64)
            if not chunk:
                return
            received.extend(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        proc.stdin.write(RAW_CONNECT)
        proc.stdin.flush()
        reader.join(TIMEOUT)
        proc.stdin.write(RAW_DISCONNECT)
        proc.stdin.flush()
    finally:
        proc.kill()
        _, err = proc.communicate(timeout=5)
    assert bytes(received) == RAW_CONNACK, f"got {bytes(received)!r}; s_client said:\n{err.decode(errors='replace')}"


# ---------------------------------------------------------------------------
# IPv6


@pytest.mark.parametrize("version", VERSIONS)
def test_paho_over_tls_on_ipv6_loopback(transport_broker_factory, via, topic, version):
    b = transport_broker_factory([Listener("tcp"), Listener("tls6", tls=True, host="::1")])
    sub = via(b["tls6"], version)
    sub.subscribe(topic, 1)
    pub = via(b["tls6"], version)

    pub.publish(topic, b"over ::1", qos=1)

    msg = sub.wait_message(topic)
    assert (msg.payload, msg.qos) == (b"over ::1", 1)
