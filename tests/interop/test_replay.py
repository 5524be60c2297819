"""``culex replay`` of the recorded traces (tests/traces/*.jsonl) against culex
and against a stock mosquitto.

Against culex, started with the trace's seed in deterministic mode, a replay
finds no difference.  Against mosquitto it reports exactly the documented
differences below, each a known and permitted difference of behaviour; a new
one, or one gone, fails the test.  The replay's report is printed into the
test output (``pytest -s`` or ``-rA`` shows it).
"""

import json
import re
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from transport_broker import broker_binary, free_port

TRACES = Path(__file__).resolve().parents[1] / "traces"
TRACE_FILES = sorted(TRACES.glob("*.jsonl"))
# Traces with MQTT-SN peers replay against culex's gateway too; mosquitto has no
# MQTT-SN gateway, so they are compared with culex only.
SN_TRACES = [t for t in TRACE_FILES if '"datagram_in"' in t.read_text()]
MQTT_TRACES = [t for t in TRACE_FILES if t not in SN_TRACES]
SN_LISTENING_RE = re.compile(r"listening on 127\.0\.0\.1:(\d+) \(mqttsn, udp\)")
STARTUP_TIMEOUT = 10.0
# Per expected packet; it appears in the lines of packets that never come.
REPLAY_TIMEOUT_MS = 1000
LISTENING_RE = re.compile(r"listening on 127\.0\.0\.1:(\d+) \(mqtt\)")

KNOWN_MOSQUITTO_DIFFERENCES = {
    # mosquitto has no virtual clock: $CONTROL/clock/advance is an ordinary
    # topic to it (the PUBLISH is acknowledged like any other), so the idle
    # client's 10 s keep alive does not run out during the replay, and it is
    # neither sent DISCONNECT 0x8D (Keep alive timeout) nor closed.
    "keep_alive_clock": [
        f"conn 1 out #2 DISCONNECT: expected DISCONNECT, got nothing within {REPLAY_TIMEOUT_MS} ms",
        "conn 1 closed: expected the broker to close the connection, got no close "
        f"within {REPLAY_TIMEOUT_MS} ms",
    ],
    # An incoming QoS 2 message: culex forwards it to the subscribers when the
    # PUBLISH arrives, mosquitto only once the publisher's PUBREL does (MQTT
    # 4.3.3 allows both).  The PUBLISH then arrives late and is compared
    # equal; nothing else on the connection moves.
    "v311_pubsub": [
        f"conn 2 out #8 PUBLISH: expected PUBLISH, got nothing within {REPLAY_TIMEOUT_MS} ms",
    ],
    # A QoS 1 PUBLISH that no subscription matches: mosquitto answers PUBACK
    # 0x10 (No matching subscribers), culex 0x00 (Success); MQTT 5.0 3.4.2.1
    # says a server MAY use 0x10 there.
    "v5_properties": [
        "conn 2 out #3 PUBACK puback.reason_code: expected 0x00 Success, "
        "got 0x10 NoMatchingSubscribers",
    ],
}


def seed_of(trace):
    with trace.open() as f:
        return json.loads(f.readline())["seed"]


class Process:
    """A broker process, its output drained into a file, stopped on exit."""

    def __init__(self, argv, cwd):
        self.log_path = Path(cwd) / "broker.log"
        self.log_file = self.log_path.open("w")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.log_file,
                                     stderr=subprocess.STDOUT, cwd=cwd)

    def log(self):
        return self.log_path.read_text(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.log_file.close()


def start_culex(seed, workdir, sn=False):
    """culex in deterministic mode; returns the process, its MQTT port and, with
    ``sn``, its MQTT-SN gateway port."""
    conf = Path(workdir) / "culex.conf"
    text = "listener 0 127.0.0.1\nallow_anonymous true\n"
    if sn:
        text += "listener 0 127.0.0.1\nprotocol mqttsn\n"
    conf.write_text(text)
    p = Process([broker_binary("culex"), "-c", str(conf), "--deterministic", str(seed)],
                workdir)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        m = LISTENING_RE.search(p.log())
        m_sn = SN_LISTENING_RE.search(p.log())
        if m and (m_sn or not sn):
            return p, int(m.group(1)), int(m_sn.group(1)) if m_sn else None
        if p.proc.poll() is not None:
            break
        time.sleep(0.05)
    p.stop()
    pytest.fail(f"culex did not start:\n{p.log()}", pytrace=False)


def start_mosquitto(workdir):
    port = free_port()
    conf = Path(workdir) / "mosquitto.conf"
    conf.write_text(f"user root\nlistener {port} 127.0.0.1\nallow_anonymous true\n"
                    "persistence false\nlog_dest stderr\n")
    p = Process([broker_binary("mosquitto"), "-c", str(conf)], workdir)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return p, port
        except OSError:
            if p.proc.poll() is not None:
                break
            time.sleep(0.05)
    p.stop()
    pytest.fail(f"mosquitto did not start:\n{p.log()}", pytrace=False)


def replay(trace, port, sn_port=None):
    """Runs ``culex replay``; returns the exit status and the report's lines."""
    sn = ["--sn-target", f"127.0.0.1:{sn_port}"] if sn_port else []
    run = subprocess.run(
        [broker_binary("culex"), "replay", str(trace), "--target", f"127.0.0.1:{port}",
         "--timeout", str(REPLAY_TIMEOUT_MS)] + sn,
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    print(f"--- culex replay {trace.name} (exit {run.returncode})")
    print(run.stdout, end="")
    print(run.stderr, end="")
    assert run.stderr == "", run.stderr
    lines = run.stdout.splitlines()
    assert lines and lines[-1].startswith(f"replay {trace}"), run.stdout
    return run.returncode, lines


def differences(lines):
    # The last line is the summary; notes are not differences.
    return [line for line in lines[:-1] if not line.startswith("note: ")]


def test_traces_are_recorded():
    names = {t.stem for t in TRACE_FILES}
    assert len(names) >= 6, names
    assert SN_TRACES, "no recorded trace has MQTT-SN peers"
    assert set(KNOWN_MOSQUITTO_DIFFERENCES) <= names


@pytest.mark.parametrize("trace", TRACE_FILES, ids=lambda t: t.stem)
def test_replay_against_culex_finds_no_difference(trace):
    with tempfile.TemporaryDirectory(prefix="culex-replay-") as workdir:
        broker, port, sn_port = start_culex(seed_of(trace), workdir, trace in SN_TRACES)
        try:
            status, lines = replay(trace, port, sn_port)
        finally:
            broker.stop()
    assert differences(lines) == []
    assert status == 0
    assert lines[-1].endswith(" 0 differences, 0 notes"), lines[-1]


@pytest.mark.parametrize("trace", MQTT_TRACES, ids=lambda t: t.stem)
def test_replay_against_mosquitto_finds_only_the_known_differences(trace):
    with tempfile.TemporaryDirectory(prefix="culex-replay-") as workdir:
        broker, port = start_mosquitto(workdir)
        try:
            status, lines = replay(trace, port)
        finally:
            broker.stop()
    known = KNOWN_MOSQUITTO_DIFFERENCES.get(trace.stem, [])
    assert differences(lines) == known
    assert status == (1 if known else 0)
