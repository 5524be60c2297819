//! The command line: help, version, usage errors, configuration checks and their exit
//! statuses, a port that cannot be bound, and `-p` without a configuration file.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::harness::*;

fn culex(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_culex"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run culex")
}

fn config_file(name: &str, text: &str) -> String {
    let path = std::env::temp_dir().join(format!("{}-{}.conf", uniq(name), std::process::id()));
    std::fs::write(&path, text).expect("write config");
    path.to_string_lossy().into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn help_and_version_exit_0() {
    let help = culex(&["-h"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("-c"));
    let version = culex(&["-V"]);
    assert_eq!(version.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("culex "));
}

#[test]
fn unknown_flag_exits_1() {
    let o = culex(&["--no-such-flag"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(!stderr(&o).is_empty());
}

#[test]
fn test_config_reports_file_and_line() {
    let good = config_file("good", "listener 1883 127.0.0.1\nallow_anonymous true\n");
    assert_eq!(culex(&["-t", "-c", &good]).status.code(), Some(0));
    let bad = config_file("bad", "listener 1883 127.0.0.1\nmax_keepalive abc\n");
    let o = culex(&["-t", "-c", &bad]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains(&format!("{bad}:2:")), "{}", stderr(&o));
    let unknown = config_file("unknown", "no_such_option 1\n");
    let o = culex(&["-c", &unknown]);
    assert_eq!(o.status.code(), Some(1), "an unknown option stops start-up");
    assert!(
        stderr(&o).contains(&format!("{unknown}:1:")),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_port_in_use_exits_2_naming_the_address() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let conf = config_file(
        "taken",
        &format!("listener {port} 127.0.0.1\nallow_anonymous true\n"),
    );
    let o = culex(&["-c", &conf]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(&format!("127.0.0.1:{port}")),
        "{}",
        stderr(&o)
    );
}

#[test]
fn port_flag_without_config_listens_on_loopback() {
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("a")
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_culex"))
        .args(["-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn culex");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut stream = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("culex -p {port} is not listening: {e}"),
        }
    };
    stream
        .set_read_timeout(Some(READ_TIMEOUT))
        .expect("timeout");
    stream
        .write_all(&connect_v311(&uniq("p"), true, 60))
        .expect("send CONNECT");
    let mut ack = [0u8; 4];
    stream.read_exact(&mut ack).expect("CONNACK");
    assert_eq!(ack, [0x20, 0x02, 0x00, 0x00]);
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn certificate_problems_stop_the_check_and_the_start() {
    let testdata = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/transport/testdata");
    let text = |cert: &str| {
        format!(
            "listener 0 127.0.0.1\ncertfile {}\nkeyfile {}\nallow_anonymous true\n",
            testdata.join(cert).display(),
            testdata.join("server.key").display()
        )
    };
    let good = config_file("tlsgood", &text("server.pem"));
    assert_eq!(culex(&["-t", "-c", &good]).status.code(), Some(0));
    let missing = config_file("tlsmissing", &text("missing.pem"));
    let o = culex(&["-t", "-c", &missing]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("missing.pem"), "{}", stderr(&o));
    // A certificate that does not match the key: start-up fails, naming both files.
    let mismatch = config_file("tlsmismatch", &text("client.pem"));
    let o = culex(&["-c", &mismatch]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("client.pem") && stderr(&o).contains("server.key"),
        "{}",
        stderr(&o)
    );
}
