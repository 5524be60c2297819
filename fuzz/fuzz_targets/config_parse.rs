//! The configuration parser: mosquitto.conf-style text to a `Config`, with no file access.
//!
//! The input (as UTF-8, invalid sequences replaced) is parsed whole with `config::parse`,
//! then cut at its first NUL into a main file and a second text, and parsed the way
//! `config::load` does it with an `include_dir`: the main file, the second text as the
//! included file, then `finish_reading` with the second text standing for every file the
//! configuration names (predefined topics, API tokens). It must never panic, and an error
//! must name the file and a line that exists.

#![no_main]

use culex::config::{self, ConfigError, Parser};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let whole = config::parse(&text, "fuzz.conf");
    check(whole.err(), &[("fuzz.conf", &text)], "");

    let (main, other) = text.split_once('\0').unwrap_or((&text, ""));
    let files = [("main.conf", main), ("conf.d/other.conf", other)];
    let mut parser = Parser::new();
    let includes = match parser.parse_into(main, "main.conf") {
        Ok(includes) => includes,
        Err(e) => return check(Some(e), &files, other),
    };
    if !includes.is_empty() {
        if let Err(e) = parser.parse_into(other, "conf.d/other.conf") {
            return check(Some(e), &files, other);
        }
    }
    let mut read = |_: &str| -> Result<String, String> { Ok(other.to_owned()) };
    check(parser.finish_reading(&mut read).err(), &files, other);
});

/// An error must name a line that exists: in one of `files`, or in `read` (the text that
/// stood for every other file the configuration named).
fn check(error: Option<ConfigError>, files: &[(&str, &str)], read: &str) {
    let Some(e) = error else {
        return;
    };
    let text = files
        .iter()
        .find(|(name, _)| *name == e.file)
        .map_or(read, |(_, text)| text);
    assert!(
        e.line <= text.lines().count(),
        "{e} ({} lines)",
        text.lines().count()
    );
    assert!(!e.message.is_empty(), "{e:?}");
}
