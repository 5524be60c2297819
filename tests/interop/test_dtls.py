"""MQTT-SN over DTLS 1.2 with OpenSSL as the peer.

``openssl s_client -dtls1_2`` completes a handshake with the gateway, with
certificates and with a pre-shared key, and carries an MQTT-SN CONNECT whose
CONNACK comes back through the same association; a wrong key, an untrusted
server for the client, and a missing client certificate where one is
required all end without a CONNACK.  mosquitto has no MQTT-SN gateway.
"""

import shutil
import socket
import subprocess
import time

import pytest

from transport_broker import REPO_ROOT, Listener, TransportBroker

pytestmark = pytest.mark.culex_only(reason="mosquitto has no MQTT-SN gateway")

PSK_IDENTITY = "sensor-1"
PSK_KEY = "00112233445566778899aabbccddeeff"
# MQTT-SN CONNECT: length 14, clean session, protocol id 1, keep alive 60 s.
CONNECT = bytes([0x0E, 0x04, 0x04, 0x01, 0x00, 0x3C]) + b"dtlstest"
CONNACK_OK = bytes([0x03, 0x05, 0x00])


@pytest.fixture(scope="module")
def dtls_broker(certs, tmp_path_factory):
    psk = tmp_path_factory.mktemp("psk") / "psk.txt"
    psk.write_text(f"{PSK_IDENTITY}:{PSK_KEY}\n")
    psk.chmod(0o644)
    listeners = [
        Listener("tcp"),
        Listener("sn_cert", protocol="mqttsn", tls=True),
        Listener("sn_mutual", protocol="mqttsn", client_certs=True),
        Listener("sn_psk", protocol="mqttsn",
                 options={"psk_file": str(psk), "psk_hint": "culex"}),
    ]
    b = TransportBroker(listeners, certs).start()
    yield b
    b.stop()


def s_client(listener, *extra, payload=CONNECT, wait=1.5):
    """Runs s_client against the listener, writes ``payload`` once the handshake is
    done, and returns (exit status, stdout bytes, stderr text)."""
    openssl = shutil.which("openssl")
    assert openssl, "openssl not installed (scripts/test installs it)"
    proc = subprocess.Popen(
        [openssl, "s_client", "-dtls1_2", "-connect", f"{listener.host}:{listener.port}",
         "-quiet", *extra],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # s_client reads stdin only after the handshake; the bytes wait in the pipe.
        proc.stdin.write(payload)
        proc.stdin.flush()
        time.sleep(wait)
        # -quiet ignores the end of stdin: the answer has had its time, stop the client.
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return proc.returncode, out, err.decode("utf-8", "replace")


def test_certificate_handshake_carries_connect_and_connack(dtls_broker, certs):
    rc, out, err = s_client(dtls_broker["sn_cert"], "-CAfile", certs.ca_pem,
                            "-verify_return_error")
    assert out.startswith(CONNACK_OK), f"no CONNACK over DTLS: {out!r}\n{err}"
    assert "verify return:1" in err


def test_psk_handshake_carries_connect_and_connack(dtls_broker):
    rc, out, err = s_client(dtls_broker["sn_psk"], "-psk", PSK_KEY,
                            "-psk_identity", PSK_IDENTITY)
    assert out.startswith(CONNACK_OK), f"no CONNACK over DTLS with PSK: {out!r}\n{err}"


def test_wrong_psk_is_refused(dtls_broker):
    rc, out, err = s_client(dtls_broker["sn_psk"], "-psk", "ff" * 16,
                            "-psk_identity", PSK_IDENTITY)
    assert CONNACK_OK not in out
    assert "alert" in err.lower(), err


def test_untrusted_server_certificate_is_refused_by_the_client(dtls_broker, tmp_path):
    # A CA the server's certificate does not chain to.
    other = tmp_path / "other"
    subprocess.run([str(REPO_ROOT / "scripts" / "gen-certs"), str(other)], check=True,
                   capture_output=True)
    rc, out, err = s_client(dtls_broker["sn_cert"], "-CAfile", str(other / "ca.pem"),
                            "-verify_return_error")
    assert CONNACK_OK not in out
    assert "verify error" in err.lower() or "certificate verify failed" in err.lower(), err


def test_required_client_certificate(dtls_broker, certs):
    listener = dtls_broker["sn_mutual"]
    rc, out, err = s_client(listener, "-CAfile", certs.ca_pem)
    assert CONNACK_OK not in out, "a client without a certificate got in"
    rc, out, err = s_client(listener, "-CAfile", certs.ca_pem, "-cert", certs.client_pem,
                            "-key", certs.client_key)
    assert out.startswith(CONNACK_OK), f"no CONNACK with a client certificate: {out!r}\n{err}"


def test_plaintext_mqttsn_to_a_dtls_listener_gets_nothing(dtls_broker):
    listener = dtls_broker["sn_cert"]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.5)
        s.sendto(CONNECT, (listener.host, listener.port))
        with pytest.raises(socket.timeout):
            s.recv(64)
    # The gateway still serves DTLS clients afterwards.
    rc, out, err = s_client(listener, "-CAfile", dtls_broker.certs.ca_pem)
    assert out.startswith(CONNACK_OK), err
