"""The stock mosquitto_pub / mosquitto_sub command-line clients as peers."""

import shutil
import subprocess
import threading

import pytest

from interop_util import prop, unique_client_id, wait_for

VERSIONS = [pytest.param("mqttv311", id="v311"), pytest.param("mqttv5", id="v5")]
MARK = "MSG|"
FORMAT = MARK + "%t|%q|%r|%p"
TIMEOUT = 10
LINE_BUFFERED = ["stdbuf", "-oL"] if shutil.which("stdbuf") else []



@pytest.fixture(autouse=True)
def _clients_installed():
    # A missing peer is an error, not a reason to skip.
    for tool in ("mosquitto_pub", "mosquitto_sub"):
        assert shutil.which(tool), f"{tool} not found: install mosquitto-clients (scripts/test does)"


def endpoint(broker):
    return ["-h", broker.host, "-p", str(broker.port)]


def pub(broker, topic, message, *extra, version="mqttv311", qos=0):
    cmd = ["mosquitto_pub", *endpoint(broker), "-V", version, "-q", str(qos),
           "-i", unique_client_id("p"), "-t", topic, "-m", message, *extra]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, f"{cmd} failed: {done.stderr}"


class Sub:
    """A running ``mosquitto_sub``; messages are parsed from its formatted output."""

    def __init__(self, broker, topic, *extra, version="mqttv311", qos=0, count=1):
        # Line-buffered stdout so the SUBACK debug line is seen while it runs.
        self.cmd = [*LINE_BUFFERED, "mosquitto_sub", *endpoint(broker), "-V", version, "-q", str(qos),
                    "-i", unique_client_id("s"), "-t", topic, "-C", str(count),
                    "-W", str(TIMEOUT), "-d", "-F", FORMAT, *extra]
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.lines = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_subscribed(self):
        # -d prints a debug line for every packet, including the SUBACK.
        wait_for(lambda: any("SUBACK" in line for line in self.lines) or self.proc.poll() is not None,
                 timeout=TIMEOUT, message="mosquitto_sub to get its SUBACK")
        assert self.proc.poll() is None, "mosquitto_sub exited early:\n" + "\n".join(self.lines)
        return self

    def result(self):
        """Wait for exit (after -C messages); return ``[(topic, qos, retain, payload)]``."""
        try:
            rc = self.proc.wait(timeout=TIMEOUT + 5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        self._reader.join(5)
        output = "\n".join(self.lines)
        assert rc == 0, f"mosquitto_sub exited with {rc}:\n{output}"
        msgs = []
        for line in self.lines:
            if line.startswith(MARK):
                t, q, r, p = line[len(MARK):].split("|", 3)
                msgs.append((t, int(q), int(r), p))
        return msgs


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_mosquitto_pub_to_mosquitto_sub(broker, topic, version, qos):
    sub = Sub(broker, topic, version=version, qos=qos).wait_subscribed()

    pub(broker, topic, f"hello q{qos}", version=version, qos=qos)

    assert sub.result() == [(topic, qos, 0, f"hello q{qos}")]


@pytest.mark.parametrize("version", VERSIONS)
def test_delivered_qos_is_minimum_of_publish_and_subscription(broker, topic, version):
    sub = Sub(broker, topic, version=version, qos=1).wait_subscribed()

    pub(broker, topic, "downgraded", version=version, qos=2)

    assert sub.result() == [(topic, 1, 0, "downgraded")]


@pytest.mark.parametrize("version", VERSIONS)
def test_mosquitto_sub_receives_retained_message(broker, topic, version):
    pub(broker, topic, "remember me", "-r", version=version, qos=1)

    assert Sub(broker, topic, version=version, qos=1).result() == [(topic, 1, 1, "remember me")]
    pub(broker, topic, "", "-r", version=version, qos=1)


@pytest.mark.parametrize("version", VERSIONS)
def test_mosquitto_sub_exits_after_count_messages(broker, topic, version):
    sub = Sub(broker, f"{topic}/#", version=version, qos=1, count=3).wait_subscribed()

    for i in range(3):
        pub(broker, f"{topic}/{i}", f"m{i}", version=version, qos=1)

    assert sub.result() == [(f"{topic}/{i}", 1, 0, f"m{i}") for i in range(3)]


def test_mosquitto_pub_lines_mode_sends_one_message_per_line(broker, topic):
    sub = Sub(broker, topic, qos=1, count=3).wait_subscribed()

    cmd = ["mosquitto_pub", *endpoint(broker), "-q", "1", "-t", topic, "-l"]
    done = subprocess.run(cmd, input="one\ntwo\nthree\n", capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr

    assert [m[3] for m in sub.result()] == ["one", "two", "three"]


def test_sys_broker_version_readable(broker):
    sub = Sub(broker, "$SYS/broker/version")
    msgs = sub.result()
    assert len(msgs) == 1
    topic, _, _, payload = msgs[0]
    assert topic == "$SYS/broker/version"
    assert payload.strip(), "broker version must not be empty"


def test_mosquitto_pub_v5_properties_reach_paho_subscriber(broker, connect, topic):
    sub = connect(version=5)
    sub.subscribe(topic, 1)

    pub(broker, topic, "{}", "-D", "publish", "user-property", "origin", "cli",
        "-D", "publish", "content-type", "application/json",
        "-D", "publish", "message-expiry-interval", "120",
        version="mqttv5", qos=1)

    msg = sub.wait_message()
    assert msg.payload == b"{}"
    assert prop(msg.properties, "UserProperty") == [("origin", "cli")]
    assert prop(msg.properties, "ContentType") == "application/json"
    assert 115 <= prop(msg.properties, "MessageExpiryInterval", 0) <= 120


def test_paho_publisher_to_mosquitto_sub(broker, connect, topic):
    sub = Sub(broker, topic, version="mqttv5", qos=2).wait_subscribed()

    connect(version=5).publish(topic, b"from paho", qos=2)

    assert sub.result() == [(topic, 2, 0, "from paho")]
