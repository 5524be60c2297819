//! A store culex cannot use stops start-up: a garbage or truncated file, a store of another
//! format version, or one in use by a running culex makes culex exit 2 before it listens,
//! with one line on stderr naming the file and what is wrong. The running culex that holds
//! a store keeps serving. `--dump-store` on a garbage file fails naming it.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use redb::ReadableTable;

use super::{resume_v311, run_culex, stop, StoreDir};
use crate::harness::*;
use crate::hex;

const META: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("meta");
const EXIT_WITHIN: Duration = Duration::from_secs(10);

/// How a culex that was expected to refuse to start ended.
struct Exit {
    code: Option<i32>,
    stderr: String,
}

/// Runs culex with the test listener and `extra_config` until it exits (at most
/// `EXIT_WITHIN`; a culex still running then is killed and the test fails).
fn run_to_exit(extra_config: &str) -> Exit {
    let conf = std::env::temp_dir().join(format!("{}.conf", uniq("storeerr")));
    let text = format!("listener 0 127.0.0.1\nallow_anonymous true\n{extra_config}");
    std::fs::write(&conf, text).expect("write config");
    let mut command = Command::new(env!("CARGO_BIN_EXE_culex"));
    command
        .arg("-c")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if std::env::var_os("RUST_LOG").is_none() {
        command.env("RUST_LOG", "info");
    }
    let mut child = command.spawn().expect("spawn culex");
    let mut pipe = child.stderr.take().expect("piped stderr");
    let reader = thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + EXIT_WITHIN;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    let stderr = reader.join().expect("stderr reader");
    let _ = std::fs::remove_file(&conf);
    let status = status.unwrap_or_else(|| {
        panic!("culex still ran after {EXIT_WITHIN:?} with {extra_config:?}; stderr:\n{stderr}")
    });
    Exit {
        code: status.code(),
        stderr,
    }
}

/// Asserts exit status 2, no listener, and a stderr line that names `file` and contains
/// one of `words` (compared in lower case). `case` says what is wrong with the store.
fn assert_refused(exit: &Exit, file: &Path, case: &str, words: &[&str]) {
    let path = file.display().to_string();
    assert_eq!(
        exit.code,
        Some(2),
        "exit status of culex on {case}; stderr:\n{}",
        exit.stderr
    );
    assert!(
        !exit.stderr.contains("listening on"),
        "culex listened before it refused {case}; stderr:\n{}",
        exit.stderr
    );
    let line = exit
        .stderr
        .lines()
        .find(|l| l.contains(&path))
        .unwrap_or_else(|| panic!("no stderr line names {path}; stderr:\n{}", exit.stderr));
    let lower = line.to_lowercase();
    assert!(
        words.iter().any(|w| lower.contains(w)),
        "on {case}, the line naming the store does not say what is wrong (expected one of \
         {words:?}): {line}"
    );
}

/// Runs culex on `dir` once with a persistent session in it, and stops it cleanly.
fn make_store(dir: &StoreDir) -> Option<()> {
    let broker = Broker::start_configured(&dir.config())?;
    let mut c = resume_v311(&broker, "made", false);
    c.send(&subscribe(1, "made/t", 1, false));
    c.expect(&hex!("90 03 00 01 01"));
    c.send(&disconnect());
    c.expect_bare_close();
    stop(broker);
    assert!(dir.file().is_file(), "no store at {}", dir.file().display());
    Some(())
}

const DAMAGED: &[&str] = &["not a culex store", "damaged", "corrupt", "truncated"];

#[test]
fn a_garbage_store_file_stops_start_up() {
    if is_external() {
        return;
    }
    let dir = StoreDir::new("garbage");
    std::fs::create_dir_all(&dir.path).expect("create store dir");
    let garbage = "this is not a redb file at all\n".repeat(200);
    std::fs::write(dir.file(), &garbage).expect("write garbage");
    let exit = run_to_exit(&dir.config());
    assert_refused(&exit, &dir.file(), "a garbage file", DAMAGED);
    let after = std::fs::read(dir.file()).expect("read store");
    assert!(
        after == garbage.as_bytes(),
        "culex changed the file it refused"
    );
}

#[test]
fn a_truncated_store_file_stops_start_up() {
    let dir = StoreDir::new("truncated");
    if make_store(&dir).is_none() {
        return;
    }
    let whole = std::fs::read(dir.file()).expect("read store");
    for len in [whole.len() / 2, 100] {
        std::fs::write(dir.file(), &whole[..len]).expect("truncate store");
        let exit = run_to_exit(&dir.config());
        let case = format!("a store truncated from {} to {len} bytes", whole.len());
        assert_refused(&exit, &dir.file(), &case, DAMAGED);
    }
}

#[test]
fn a_store_of_another_format_version_stops_start_up() {
    let dir = StoreDir::new("version");
    if make_store(&dir).is_none() {
        return;
    }
    {
        let db = redb::Database::open(dir.file()).expect("open the store with redb");
        let tx = db.begin_write().expect("write transaction");
        {
            let mut meta = tx.open_table(META).expect("meta table");
            let format = meta.get("format").expect("read format").map(|v| v.value());
            assert_eq!(format, Some(1), "meta/format of a store culex wrote");
            meta.insert("format", 999).expect("write format");
        }
        tx.commit().expect("commit");
    }
    let exit = run_to_exit(&dir.config());
    assert_refused(&exit, &dir.file(), "format version 999", &["version"]);

    let db = redb::Database::open(dir.file()).expect("reopen the store with redb");
    let tx = db.begin_write().expect("write transaction");
    let meta = tx.open_table(META).expect("meta table");
    let format = meta.get("format").expect("read format").map(|v| v.value());
    assert_eq!(format, Some(999), "culex changed the store it refused");
}

#[test]
fn a_store_in_use_by_another_culex_stops_the_second() {
    let dir = StoreDir::new("locked");
    let Some(first) = Broker::start_configured(&dir.config()) else {
        return;
    };
    let exit = run_to_exit(&dir.config());
    let case = "a store in use";
    assert_refused(
        &exit,
        &dir.file(),
        case,
        &["in use", "locked", "already open"],
    );

    // The first culex keeps serving, and keeps storing.
    let mut s = resume_v311(&first, "lock-sub", false);
    s.send(&subscribe(1, "lock/t", 1, false));
    s.expect(&hex!("90 03 00 01 01"));
    let mut p = first.connected_v311("lock-pub");
    p.send(&publish("lock/t", b"still", 1, 1, false, None));
    p.expect(&puback(1));
    let got = expect_publish(&mut s, "lock/t", b"still", 1, false);
    s.send(&puback(got.pid));
    s.ping();
}

#[test]
fn dump_store_of_a_garbage_file_fails_naming_it() {
    let dir = StoreDir::new("dumpbad");
    std::fs::create_dir_all(&dir.path).expect("create store dir");
    std::fs::write(dir.file(), "garbage\n".repeat(1000)).expect("write garbage");
    let path = dir.file().display().to_string();
    let out = run_culex(&["--dump-store", &path]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !out.status.success(),
        "--dump-store of garbage exited {:?}:\n{text}",
        out.status
    );
    assert!(
        text.contains(&path),
        "--dump-store's error does not name {path}:\n{text}"
    );
}
