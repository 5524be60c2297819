//! Authentication and access control: password files (written by `culex passwd`), CONNACK
//! refusals, ACL checks of SUBSCRIBE, PUBLISH, wills, delivery and retained messages over
//! MQTT 3.1.1, 5.0 and MQTT-SN, `%c`/`%u` patterns, certificate identities, per-listener
//! settings and the reload of both files on SIGHUP. Every test checks the exact bytes a
//! client receives.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::*;
use crate::hex;
use crate::mqttsn::{self, SnClient};

/// A scratch directory for one test's files, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("culex-auth-{}", uniq(tag)));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Self(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Writes `name` with `text` and returns its path.
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).expect("write scratch file");
        path
    }

    /// A password file with these users, written by `culex passwd -b`.
    fn passwords(&self, name: &str, users: &[(&str, &str)]) -> PathBuf {
        let path = self.path(name);
        let _ = std::fs::remove_file(&path);
        for (i, (user, password)) in users.iter().enumerate() {
            let mut args = vec!["passwd", "-b"];
            if i == 0 {
                args.push("-c");
            }
            let file = path.to_string_lossy().into_owned();
            args.extend([file.as_str(), user, password]);
            let out = culex(&args);
            assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        }
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn culex(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_culex"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run culex")
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn option(key: &str, path: &Path) -> String {
    format!("{key} {}\n", path.display())
}

/// A CONNECT (3.1.1 with `level` 4, 5.0 with 5) with optional credentials and a will on
/// `will` (QoS 0).
fn connect(
    level: u8,
    id: &str,
    user: Option<&str>,
    pass: Option<&str>,
    will: Option<&str>,
) -> Vec<u8> {
    let v5 = level == 5;
    let mut flags = 0x02;
    if user.is_some() {
        flags |= 0x80;
    }
    if pass.is_some() {
        flags |= 0x40;
    }
    if will.is_some() {
        flags |= 0x04;
    }
    let mut body = lp(b"MQTT");
    body.extend([level, flags, 0, 60]);
    if v5 {
        body.push(0);
    }
    body.extend(lp(id.as_bytes()));
    if let Some(topic) = will {
        if v5 {
            body.push(0);
        }
        body.extend(lp(topic.as_bytes()));
        body.extend(lp(b"gone"));
    }
    for field in [user, pass].into_iter().flatten() {
        body.extend(lp(field.as_bytes()));
    }
    packet(0x10, &body)
}

/// Connects with `connect(...)` and expects CONNACK success.
fn login(
    broker: &Broker,
    level: u8,
    id: &str,
    user: Option<&str>,
    pass: Option<&str>,
) -> RawClient {
    login_at(broker.addr(), level, id, user, pass)
}

fn login_at(
    addr: std::net::SocketAddr,
    level: u8,
    id: &str,
    user: Option<&str>,
    pass: Option<&str>,
) -> RawClient {
    let mut c = RawClient::connect(addr);
    c.send(&connect(level, id, user, pass, None));
    let ack = c.recv_packet();
    assert_eq!(
        parse_connack(&ack, level == 5).reason,
        0,
        "{}",
        to_hex(&ack)
    );
    c
}

/// Sends a CONNECT and returns the CONNACK, after which the broker must close.
fn refused(addr: std::net::SocketAddr, connect: &[u8]) -> Vec<u8> {
    let mut c = RawClient::connect(addr);
    c.send(connect);
    let before = c.expect_closed();
    assert_eq!(before.len(), 1, "one CONNACK before the close: {before:?}");
    before[0].clone()
}

/// Waits until `needle` appears `count` times in the log.
fn wait_for_count(broker: &Broker, needle: &str, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while broker.log().matches(needle).count() < count {
        assert!(
            Instant::now() < deadline,
            "no {count}× {needle:?}; log:\n{}",
            broker.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

const ACL: &str = "\
# Clients without a user name.
topic read public/#
topic readwrite anon/#

user alice
topic read #
topic readwrite alice/#
topic deny alice/secret
topic deny private/#

user bob
topic readwrite #

pattern readwrite clients/%c/#
pattern read inbox/%u/#
";

/// A broker with the ACL above, alice (`apass`) and bob (`bpass`), anonymous clients
/// allowed; extra lines after.
fn acl_broker(files: &Scratch, extra: &str) -> Option<Broker> {
    let pw = files.passwords("passwd", &[("alice", "apass"), ("bob", "bpass")]);
    let acl = files.write("acl", ACL);
    let config = format!(
        "{}{}{extra}",
        option("password_file", &pw),
        option("acl_file", &acl)
    );
    Broker::start_configured(&config)
}

#[test]
fn bad_or_missing_credentials_get_the_exact_connack() {
    let files = Scratch::new("connack");
    let pw = files.passwords("passwd", &[("alice", "secret"), ("bob", "other")]);
    let config = format!("{}allow_anonymous false\n", option("password_file", &pw));
    let Some(broker) = Broker::start_configured(&config) else {
        return;
    };
    let addr = broker.addr();
    // 3.1.1: 4 for a bad user name or password, 5 when no user name is given.
    let wrong = connect(4, "c1", Some("alice"), Some("Secret"), None);
    assert_eq!(refused(addr, &wrong), hex!("20 02 00 04"));
    let unknown = connect(4, "c1", Some("carol"), Some("secret"), None);
    assert_eq!(refused(addr, &unknown), hex!("20 02 00 04"));
    let no_password = connect(4, "c1", Some("alice"), None, None);
    assert_eq!(refused(addr, &no_password), hex!("20 02 00 04"));
    let anonymous = connect(4, "c1", None, None, None);
    assert_eq!(refused(addr, &anonymous), hex!("20 02 00 05"));
    // 5.0: 0x86 and 0x87.
    let wrong = connect(5, "c1", Some("bob"), Some("secret"), None);
    assert_eq!(refused(addr, &wrong), hex!("20 03 00 86 00"));
    let anonymous = connect(5, "c1", None, None, None);
    assert_eq!(refused(addr, &anonymous), hex!("20 03 00 87 00"));
    // The right passwords.
    let mut c = RawClient::connect(addr);
    c.send(&connect(4, "c1", Some("alice"), Some("secret"), None));
    c.expect(&hex!("20 02 00 00"));
    login(&broker, 5, "c2", Some("bob"), Some("other")).ping();
    broker.assert_log_contains("connection refused: bad user name or password");
}

#[test]
fn allow_anonymous_true_still_checks_given_passwords() {
    let files = Scratch::new("anon");
    let pw = files.passwords("passwd", &[("alice", "secret")]);
    let Some(broker) = Broker::start_configured(&option("password_file", &pw)) else {
        return;
    };
    // The harness's `allow_anonymous true` stands: anonymous clients get in...
    login(&broker, 4, "anon", None, None).ping();
    // ...but a user name must come with its password.
    let wrong = connect(4, "c1", Some("alice"), Some("x"), None);
    assert_eq!(refused(broker.addr(), &wrong), hex!("20 02 00 04"));
}

#[test]
fn denied_subscriptions_get_the_exact_suback() {
    let files = Scratch::new("suback");
    let Some(broker) = acl_broker(&files, "") else {
        return;
    };
    let mut anon = login(&broker, 4, "a311", None, None);
    anon.send(&subscribe_many(
        1,
        &[("public/#", 1), ("alice/#", 0), ("#", 0)],
        false,
    ));
    anon.expect(&hex!("90 05 00 01 01 80 80"));
    let mut anon5 = login(&broker, 5, "a5", None, None);
    anon5.send(&subscribe_many(
        2,
        &[("alice/#", 1), ("public/+/x", 2)],
        true,
    ));
    anon5.expect(&hex!("90 05 00 02 00 87 02"));
    // Shared subscriptions are checked on their filter.
    anon5.send(&subscribe(3, "$share/g/public/#", 0, true));
    anon5.expect(&hex!("90 04 00 03 00 00"));
    anon5.send(&subscribe(4, "$share/g/alice/#", 0, true));
    anon5.expect(&hex!("90 04 00 04 00 87"));
    // alice: `read #` covers `#`, but her deny rules cover private/+; $SYS needs its own rule.
    let mut alice = login(&broker, 5, "al", Some("alice"), Some("apass"));
    alice.send(&subscribe_many(
        5,
        &[("#", 0), ("private/+", 0), ("$SYS/#", 0)],
        true,
    ));
    alice.expect(&hex!("90 06 00 05 00 00 87 87"));
}

#[test]
fn denied_publications_v5_get_0x87_and_go_nowhere() {
    let files = Scratch::new("pub5");
    let Some(broker) = acl_broker(&files, "") else {
        return;
    };
    let mut bob = login(&broker, 5, "bob", Some("bob"), Some("bpass"));
    bob.send(&subscribe(1, "#", 2, true));
    bob.expect(&hex!("90 04 00 01 00 02"));
    let mut anon = login(&broker, 5, "a5", None, None);
    anon.send(&publish("public/x", b"no", 1, 7, false, Some(&[])));
    anon.expect(&hex!("40 03 00 07 87"));
    anon.send(&publish("alice/x", b"no", 2, 8, false, Some(&[])));
    anon.expect(&hex!("50 03 00 08 87"));
    anon.send(&publish("public/x", b"no", 0, 0, false, Some(&[])));
    anon.expect_silence(SILENCE_MS);
    bob.expect_silence(SILENCE_MS);
    anon.send(&publish("anon/x", b"yes", 1, 9, false, Some(&[])));
    anon.expect(&hex!("40 02 00 09"));
    expect_publish(&mut bob, "anon/x", b"yes", 1, true);
    broker.assert_log_contains("PUBLISH to public/x not authorized");
}

#[test]
fn denied_publications_v311_are_acknowledged_and_dropped() {
    let files = Scratch::new("pub311");
    let Some(broker) = acl_broker(&files, "") else {
        return;
    };
    let mut bob = login(&broker, 4, "bob", Some("bob"), Some("bpass"));
    bob.send(&subscribe(1, "#", 1, false));
    bob.expect(&hex!("90 03 00 01 01"));
    let mut anon = login(&broker, 4, "a311", None, None);
    anon.send(&publish("alice/x", b"no", 1, 7, false, None));
    anon.expect(&hex!("40 02 00 07"));
    anon.send(&publish("alice/x", b"no", 2, 8, false, None));
    anon.expect(&hex!("50 02 00 08"));
    anon.send(&pubrel(8));
    anon.expect(&hex!("70 02 00 08"));
    anon.send(&publish("alice/x", b"no", 0, 0, true, None));
    bob.expect_silence(SILENCE_MS);
    anon.send(&publish("anon/x", b"yes", 0, 0, false, None));
    expect_publish(&mut bob, "anon/x", b"yes", 0, false);
}

#[test]
fn wildcard_subscribers_and_retained_messages_see_only_readable_topics() {
    let files = Scratch::new("read");
    let Some(broker) = acl_broker(&files, "") else {
        return;
    };
    let mut bob = login(&broker, 4, "bob", Some("bob"), Some("bpass"));
    for (i, topic) in ["private/r", "alice/secret", "public/r"].iter().enumerate() {
        let pid = u16::try_from(i + 1).expect("pid");
        bob.send(&publish(topic, topic.as_bytes(), 1, pid, true, None));
        bob.expect(&puback(pid));
    }
    // Retained on subscribe: only what the subscriber may read.
    let mut alice = login(&broker, 4, "al", Some("alice"), Some("apass"));
    alice.send(&subscribe(1, "#", 0, false));
    alice.expect(&hex!("90 03 00 01 00"));
    let p = expect_publish(&mut alice, "public/r", b"public/r", 0, false);
    assert!(p.retain);
    alice.expect_silence(SILENCE_MS);
    let mut anon = login(&broker, 4, "anon", None, None);
    anon.send(&subscribe(1, "public/#", 0, false));
    anon.expect(&hex!("90 03 00 01 00"));
    expect_publish(&mut anon, "public/r", b"public/r", 0, false);
    // Live messages: a `#` subscriber gets only the topics it may read.
    for topic in ["private/x", "alice/secret", "public/y", "alice/ok"] {
        bob.send(&publish(topic, b"m", 0, 0, false, None));
    }
    expect_publish(&mut alice, "public/y", b"m", 0, false);
    expect_publish(&mut alice, "alice/ok", b"m", 0, false);
    alice.expect_silence(SILENCE_MS);
    expect_publish(&mut anon, "public/y", b"m", 0, false);
    anon.expect_silence(SILENCE_MS);
}

#[test]
fn client_id_and_user_name_patterns() {
    let files = Scratch::new("pattern");
    let Some(broker) = acl_broker(&files, "") else {
        return;
    };
    let mut dev = login(&broker, 5, "dev1", None, None);
    dev.send(&subscribe_many(
        1,
        &[("clients/dev1/#", 1), ("clients/+/#", 1)],
        true,
    ));
    dev.expect(&hex!("90 05 00 01 00 01 87"));
    dev.send(&publish("clients/dev1/up", b"own", 1, 2, false, Some(&[])));
    let p = expect_publish(&mut dev, "clients/dev1/up", b"own", 1, true);
    dev.expect(&hex!("40 02 00 02"));
    dev.send(&puback(p.pid));
    dev.send(&publish(
        "clients/dev2/up",
        b"other",
        1,
        3,
        false,
        Some(&[]),
    ));
    dev.expect(&hex!("40 03 00 03 87"));
    // %u: read-only inbox of the user; a client without a user name has none.
    let mut alice = login(&broker, 5, "phone", Some("alice"), Some("apass"));
    alice.send(&subscribe(1, "inbox/alice/#", 0, true));
    alice.expect(&hex!("90 04 00 01 00 00"));
    alice.send(&publish("inbox/alice/x", b"m", 1, 2, false, Some(&[])));
    alice.expect(&hex!("40 03 00 02 87"));
    dev.send(&subscribe(4, "inbox/+/#", 0, true));
    dev.expect(&hex!("90 04 00 04 00 87"));
}

#[test]
fn wills_on_denied_topics_are_refused_at_connect() {
    let files = Scratch::new("will");
    let Some(broker) = acl_broker(&files, "") else {
        return;
    };
    let addr = broker.addr();
    let will5 = connect(5, "w5", None, None, Some("alice/will"));
    assert_eq!(refused(addr, &will5), hex!("20 03 00 87 00"));
    let will311 = connect(4, "w3", None, None, Some("public/will"));
    assert_eq!(refused(addr, &will311), hex!("20 02 00 05"));
    broker.assert_log_contains("will topic not authorized");
    // An allowed will is published as usual.
    let mut bob = login(&broker, 4, "bob", Some("bob"), Some("bpass"));
    bob.send(&subscribe(1, "anon/#", 0, false));
    bob.expect(&hex!("90 03 00 01 00"));
    let mut w = RawClient::connect(addr);
    w.send(&connect(4, "w4", None, None, Some("anon/will")));
    w.expect(&hex!("20 02 00 00"));
    w.drop_connection();
    expect_publish(&mut bob, "anon/will", b"gone", 0, false);
}

#[test]
fn mqttsn_clients_are_anonymous_clients() {
    let files = Scratch::new("sn");
    let pw = files.passwords("passwd", &[("bob", "bpass")]);
    let acl = files.write("acl", ACL);
    let config = format!(
        "{}{}{}",
        option("password_file", &pw),
        option("acl_file", &acl),
        mqttsn::sn_listener("")
    );
    let Some(broker) = Broker::start_configured(&config) else {
        return;
    };
    let gw = mqttsn::gateway_addr(&broker);
    let mut bob = login(&broker, 4, "bob", Some("bob"), Some("bpass"));
    bob.send(&subscribe(1, "#", 1, false));
    bob.expect(&hex!("90 03 00 01 01"));

    let sn = SnClient::connected(gw, "sn1", 60);
    // SUBSCRIBE to a filter no anonymous rule covers: "rejected: not supported".
    sn.send(&mqttsn::subscribe_name(1, "alice/#", 1));
    sn.expect(&mqttsn::suback(0, 0, 1, 3));
    assert_eq!(sn.subscribe(2, "public/#", 1), 0);
    // PUBLISH QoS 1 to a topic it may not write: PUBACK "rejected: not supported".
    let denied = sn.register(3, "public/x");
    sn.send(&mqttsn::publish_msg(0x20, denied, 4, b"no"));
    sn.expect(&mqttsn::id_ack(0x0d, denied, 4, 3));
    // Its own %c subtree and the anonymous subtree are writable.
    for (msg_id, name) in [(5u16, "clients/sn1/up"), (7, "anon/x")] {
        let id = sn.register(msg_id, name);
        sn.send(&mqttsn::publish_msg(0x20, id, msg_id + 1, b"ok"));
        sn.expect(&mqttsn::id_ack(0x0d, id, msg_id + 1, 0));
        let p = expect_publish(&mut bob, name, b"ok", 1, false);
        bob.send(&puback(p.pid));
    }
    bob.expect_silence(SILENCE_MS);
}

#[test]
fn certificate_identity_is_the_acl_user_name() {
    use crate::transport::{testdata, tls_connect, tls_listener, Mqtt, TlsOptions};
    let files = Scratch::new("cert");
    let pw = files.passwords("passwd", &[("bob", "bpass")]);
    let acl = files.write("acl", "user alice\ntopic readwrite alice/#\n");
    let extra = format!(
        "cafile {}\nuse_identity_as_username true",
        testdata("ca.pem").display()
    );
    let config = format!(
        "allow_anonymous false\n{}{}{}",
        option("password_file", &pw),
        option("acl_file", &acl),
        tls_listener(&extra)
    );
    let Some(broker) = Broker::start_configured(&config) else {
        return;
    };
    let port = broker.ports(2)[1];
    let with_cert = TlsOptions {
        client_cert: true,
        ..TlsOptions::default()
    };
    // The certificate's CN, alice, needs no password and gets alice's rules.
    let mut m = Mqtt::new(tls_connect(port, &with_cert).expect("handshake"));
    m.send(&connect_v311(&uniq("cn"), true, 60));
    m.expect(&hex!("20 02 00 00"));
    m.send(&subscribe_many(1, &[("alice/#", 0), ("bob/#", 0)], false));
    m.expect(&hex!("90 04 00 01 00 80"));
}

#[test]
fn per_listener_settings_apply_to_their_listener() {
    let files = Scratch::new("perlistener");
    let pw = files.passwords("passwd", &[("alice", "apass")]);
    let acl = files.write("acl", "user alice\ntopic readwrite alice/#\n");
    // The harness's first listener keeps `allow_anonymous true` and nothing else.
    let config = format!(
        "per_listener_settings true\nlistener 0 127.0.0.1\n{}{}",
        option("password_file", &pw),
        option("acl_file", &acl)
    );
    let Some(broker) = Broker::start_configured(&config) else {
        return;
    };
    let ports = broker.ports(2);
    let open: std::net::SocketAddr = ([127, 0, 0, 1], ports[0]).into();
    let guarded: std::net::SocketAddr = ([127, 0, 0, 1], ports[1]).into();
    // First listener: anonymous clients, any user name, every topic.
    let mut anon = login_at(open, 5, "anon", Some("whoever"), None);
    anon.send(&subscribe(1, "any/#", 0, true));
    anon.expect(&hex!("90 04 00 01 00 00"));
    // Second: no anonymous clients, checked passwords, alice's rules only.
    let anonymous = connect(5, "x", None, None, None);
    assert_eq!(refused(guarded, &anonymous), hex!("20 03 00 87 00"));
    let wrong = connect(5, "x", Some("alice"), Some("nope"), None);
    assert_eq!(refused(guarded, &wrong), hex!("20 03 00 86 00"));
    let mut alice = login_at(guarded, 5, "al", Some("alice"), Some("apass"));
    alice.send(&subscribe_many(1, &[("alice/#", 0), ("any/#", 0)], true));
    alice.expect(&hex!("90 05 00 01 00 00 87"));
}

#[test]
fn sighup_reloads_password_and_acl_files() {
    let files = Scratch::new("reload");
    let pw = files.passwords("passwd", &[("alice", "one")]);
    let acl = files.write("acl", "user alice\ntopic readwrite a/#\n");
    let config = format!(
        "allow_anonymous false\n{}{}",
        option("password_file", &pw),
        option("acl_file", &acl)
    );
    let Some(broker) = Broker::start_configured(&config) else {
        return;
    };
    let addr = broker.addr();
    let mut alice = login(&broker, 4, "al", Some("alice"), Some("one"));
    alice.send(&subscribe_many(1, &[("a/#", 0), ("b/#", 0)], false));
    alice.expect(&hex!("90 04 00 01 00 80"));

    files.passwords("passwd", &[("alice", "two")]);
    files.write("acl", "user alice\ntopic readwrite b/#\n");
    broker.signal("HUP");
    wait_for_count(&broker, "configuration reloaded", 1);
    let old = connect(4, "x", Some("alice"), Some("one"), None);
    assert_eq!(refused(addr, &old), hex!("20 02 00 04"));
    login(&broker, 4, "x", Some("alice"), Some("two")).ping();
    // The connected client keeps its session under the new rules.
    alice.send(&subscribe_many(2, &[("a/#", 0), ("b/#", 0)], false));
    alice.expect(&hex!("90 04 00 02 80 00"));
    alice.send(&publish("a/x", b"dropped", 0, 0, false, None));
    alice.send(&publish("b/x", b"kept", 0, 0, false, None));
    expect_publish(&mut alice, "b/x", b"kept", 0, false);
    alice.expect_silence(SILENCE_MS);

    // A bad password file on reload keeps everything as it was, and says why.
    files.write("passwd", "alice:plain-text\n");
    broker.signal("HUP");
    wait_for_count(&broker, "configuration not reloaded", 1);
    broker.assert_log_contains(&format!(
        "{}:1: user \"alice\": not a password hash",
        pw.display()
    ));
    login(&broker, 4, "y", Some("alice"), Some("two")).ping();
}

#[test]
fn bad_files_stop_start_up_naming_file_and_line() {
    let files = Scratch::new("badfiles");
    let pw = files.write("passwd", "# users\nalice:$6$abc\n");
    let conf = files.write(
        "c.conf",
        &format!("listener 0 127.0.0.1\n{}", option("password_file", &pw)),
    );
    let o = culex(&["-t", "-c", &conf.to_string_lossy()]);
    assert_eq!(o.status.code(), Some(1));
    let want = format!("{}:2: user \"alice\": expected $6$SALT$HASH", pw.display());
    assert!(stderr(&o).contains(&want), "{}", stderr(&o));

    let acl = files.write("acl", "user alice\ntopic rw alice/#\n");
    let conf = files.write(
        "c2.conf",
        &format!("listener 0 127.0.0.1\n{}", option("acl_file", &acl)),
    );
    let o = culex(&["-t", "-c", &conf.to_string_lossy()]);
    assert_eq!(o.status.code(), Some(1));
    let want = format!("{}:2: topic: unknown access \"rw\"", acl.display());
    assert!(stderr(&o).contains(&want), "{}", stderr(&o));
}

#[test]
fn passwd_subcommand_edits_files_like_mosquitto_passwd() {
    let files = Scratch::new("passwd");
    let path = files.path("pw");
    let file = path.to_string_lossy().into_owned();
    let run = |args: &[&str]| {
        let mut all = vec!["passwd"];
        all.extend(args);
        culex(&all)
    };
    assert_eq!(
        run(&["-c", "-b", &file, "alice", "a1"]).status.code(),
        Some(0)
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&path).expect("meta").permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "a new file is the owner's only");
    let text = std::fs::read_to_string(&path).expect("read");
    std::fs::write(&path, format!("# managed by hand\n{text}")).expect("write");
    assert_eq!(run(&["-b", &file, "bob", "b1"]).status.code(), Some(0));
    assert_eq!(run(&["-b", &file, "alice", "a2"]).status.code(), Some(0));
    let text = std::fs::read_to_string(&path).expect("read");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(lines[0], "# managed by hand");
    assert!(lines[1].starts_with("alice:$7$101$") && lines[2].starts_with("bob:$7$101$"));
    let parsed = culex::auth::PasswordFile::parse(&text, "pw").expect("parses");
    assert!(parsed.verify("alice", b"a2") && !parsed.verify("alice", b"a1"));
    assert!(parsed.verify("bob", b"b1"));

    assert_eq!(run(&["-D", &file, "bob"]).status.code(), Some(0));
    let o = run(&["-D", &file, "bob"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("user bob not found"), "{}", stderr(&o));
    let text = std::fs::read_to_string(&path).expect("read");
    assert_eq!(text.lines().count(), 2);
    // Without -b the password is read twice (from standard input when it is no terminal).
    let mut child = Command::new(env!("CARGO_BIN_EXE_culex"))
        .args(["passwd", &file, "carol"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    std::io::Write::write_all(child.stdin.as_mut().expect("stdin"), b"c 1\nc 1\n").expect("write");
    assert_eq!(
        child.wait_with_output().expect("wait").status.code(),
        Some(0)
    );
    let text = std::fs::read_to_string(&path).expect("read");
    let parsed = culex::auth::PasswordFile::parse(&text, "pw").expect("parses");
    assert!(parsed.verify("carol", b"c 1"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_culex"))
        .args(["passwd", &file, "dave"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    std::io::Write::write_all(child.stdin.as_mut().expect("stdin"), b"x\ny\n").expect("write");
    let o = child.wait_with_output().expect("wait");
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("passwords do not match"),
        "{}",
        stderr(&o)
    );
    let o = run(&["-b", &files.path("missing").to_string_lossy(), "u", "p"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("cannot read"), "{}", stderr(&o));
}

#[test]
fn restored_sessions_are_checked_when_their_client_returns() {
    let files = Scratch::new("restore");
    let Some(broker) = acl_broker(
        &files,
        &format!(
            "persistence true\npersistence_location {}\n",
            files.path("store").display()
        ),
    ) else {
        return;
    };
    // A 3.1.1 session without clean session: it outlives the connection and the process.
    let persistent = |mut bytes: Vec<u8>| {
        assert_eq!(bytes[9] & 0x02, 0x02, "flags byte");
        bytes[9] &= !0x02;
        bytes
    };
    let mut alice = RawClient::connect(broker.addr());
    alice.send(&persistent(connect(
        4,
        "alice-1",
        Some("alice"),
        Some("apass"),
        None,
    )));
    alice.expect(&hex!("20 02 00 00"));
    alice.send(&subscribe(1, "#", 1, false));
    alice.expect(&hex!("90 03 00 01 01"));
    alice.send(&disconnect());
    let mut broker = broker;
    broker.signal("TERM");
    broker
        .wait_exit(Duration::from_secs(10))
        .expect("culex stops");
    drop(broker);
    let Some(broker) = acl_broker(
        &files,
        &format!(
            "persistence true\npersistence_location {}\n",
            files.path("store").display()
        ),
    ) else {
        return;
    };
    // Queued while its client is away (and unknown since the restart)...
    let mut bob = login(&broker, 4, "bob", Some("bob"), Some("bpass"));
    for (pid, topic) in [(1, "private/x"), (2, "public/x")] {
        bob.send(&publish(topic, b"m", 1, pid, false, None));
        bob.expect(&puback(pid));
    }
    // ...and checked as it leaves the queue: only what alice may read.
    let mut alice = RawClient::connect(broker.addr());
    alice.send(&persistent(connect(
        4,
        "alice-1",
        Some("alice"),
        Some("apass"),
        None,
    )));
    alice.expect(&hex!("20 02 01 00"));
    let p = expect_publish(&mut alice, "public/x", b"m", 1, false);
    alice.send(&puback(p.pid));
    alice.expect_silence(SILENCE_MS);
}
