//! Source hygiene rules for `src/**/*.rs`, checked as plain text.
//!
//! Each violation is reported as `path:line: X is allowed only in Y`; all of
//! them are printed before the test fails.

use std::path::{Path, PathBuf};

const MAX_COLUMNS: usize = 100;
const MAX_LINES: usize = 1000;

/// Where a pattern may appear.
struct Rule {
    /// Text searched for in code (comments and string contents removed).
    pattern: &'static str,
    /// Require a non-identifier character before the match.
    word_start: bool,
    /// Path prefixes (relative to the crate root) where the pattern is allowed.
    allowed: &'static [&'static str],
    /// Human description of `allowed`.
    where_: &'static str,
}

const NOWHERE: &[&str] = &[];
const IO_PLACES: &[&str] = &[
    "src/reactor/",
    "src/transport/",
    "src/main.rs",
    "src/bin/",
    "src/trace/replay.rs",
];
/// Client tools (the load generator, trace replay) are not the broker: they may block, use
/// threads and print their reports.
const CLIENT_TOOLS: &[&str] = &["src/bin/", "src/trace/replay.rs"];
const PRINT_PLACES: &[&str] = &["src/main.rs", "src/bin/", "src/trace/replay.rs"];
const FS_PLACES: &[&str] = &[
    "src/config/load.rs",
    "src/store/",
    "src/trace/writer.rs",
    "src/trace/reader.rs",
    "src/main.rs",
    "src/bin/",
];

const RULES: &[Rule] = &[
    Rule {
        pattern: "Instant::now",
        word_start: true,
        allowed: &["src/clock.rs", "src/bin/"],
        where_: "src/clock.rs",
    },
    Rule {
        pattern: "SystemTime::now",
        word_start: true,
        allowed: &["src/clock.rs"],
        where_: "src/clock.rs",
    },
    Rule {
        pattern: "thread::sleep",
        word_start: true,
        allowed: CLIENT_TOOLS,
        where_: "tests and client tools (never in the broker)",
    },
    Rule {
        pattern: "thread::spawn",
        word_start: true,
        allowed: CLIENT_TOOLS,
        where_: "tests and client tools (never in the broker)",
    },
    Rule {
        pattern: "mio::",
        word_start: true,
        allowed: IO_PLACES,
        where_: "src/reactor/, src/transport/, src/main.rs, client tools",
    },
    Rule {
        pattern: "std::net",
        word_start: true,
        allowed: IO_PLACES,
        where_: "src/reactor/, src/transport/, src/main.rs, client tools",
    },
    Rule {
        pattern: "socket2",
        word_start: true,
        allowed: IO_PLACES,
        where_: "src/reactor/, src/transport/, src/main.rs, client tools",
    },
    Rule {
        pattern: "signal_hook",
        word_start: true,
        allowed: IO_PLACES,
        where_: "src/reactor/, src/transport/, src/main.rs, client tools",
    },
    Rule {
        pattern: "tungstenite",
        word_start: true,
        allowed: IO_PLACES,
        where_: "src/reactor/, src/transport/, src/main.rs, client tools",
    },
    Rule {
        pattern: "ServerConnection",
        word_start: true,
        allowed: IO_PLACES,
        where_: "src/reactor/, src/transport/, src/main.rs, client tools",
    },
    Rule {
        pattern: "ClientConnection",
        word_start: true,
        allowed: IO_PLACES,
        where_: "src/reactor/, src/transport/, src/main.rs, client tools",
    },
    Rule {
        pattern: "redb::",
        word_start: true,
        allowed: &["src/store/"],
        where_: "src/store/",
    },
    Rule {
        pattern: "std::fs",
        word_start: true,
        allowed: FS_PLACES,
        where_: "src/config/load.rs, src/store/, src/trace/writer.rs, \
                 src/trace/reader.rs, src/main.rs",
    },
    Rule {
        pattern: "RandomState",
        word_start: false,
        allowed: NOWHERE,
        where_: "nowhere (use BTreeMap, Slab or Vec)",
    },
    Rule {
        pattern: "HashMap",
        word_start: false,
        allowed: NOWHERE,
        where_: "nowhere (use BTreeMap, Slab or Vec)",
    },
    Rule {
        pattern: "HashSet",
        word_start: false,
        allowed: NOWHERE,
        where_: "nowhere (use BTreeSet, Slab or Vec)",
    },
    Rule {
        pattern: "println!",
        word_start: true,
        allowed: PRINT_PLACES,
        where_: "src/main.rs and client tools",
    },
    Rule {
        pattern: "eprintln!",
        word_start: true,
        allowed: PRINT_PLACES,
        where_: "src/main.rs and client tools",
    },
    Rule {
        pattern: "print!",
        word_start: true,
        allowed: PRINT_PLACES,
        where_: "src/main.rs and client tools",
    },
    Rule {
        pattern: "eprint!",
        word_start: true,
        allowed: PRINT_PLACES,
        where_: "src/main.rs and client tools",
    },
    Rule {
        pattern: "dbg!",
        word_start: true,
        allowed: &["src/main.rs"],
        where_: "src/main.rs",
    },
];

/// Patterns allowed only in `#[cfg(test)]` code.
const TEST_ONLY: &[&str] = &[".unwrap()", ".expect("];

/// Attributes allowed nowhere.
const BANNED_ATTRS: &[(&str, &str)] = &[
    ("#[allow(dead_code", "#[allow(dead_code)]"),
    ("#![allow(dead_code", "#![allow(dead_code)]"),
    ("#![allow(unused", "#![allow(unused...)]"),
];

/// Files allowed to exceed `MAX_LINES`.
const LONG_FILES: &[&str] = &["src/codec/", "src/api/openapi.json"];

#[derive(Debug, Clone, PartialEq, Eq)]
struct Violation {
    path: String,
    line: usize,
    message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.path, self.line, self.message)
    }
}

fn allowed_in(path: &str, places: &[&str]) -> bool {
    places.iter().any(|p| {
        if p.ends_with('/') {
            path.starts_with(p)
        } else {
            path == *p
        }
    })
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Finds `pattern` in `line`; with `word_start`, the match must not be preceded
/// by an identifier character.
fn contains(line: &str, pattern: &str, word_start: bool) -> bool {
    line.match_indices(pattern)
        .any(|(i, _)| !word_start || !line[..i].chars().next_back().is_some_and(is_ident))
}

/// Lexer state carried between lines.
#[derive(Default)]
struct Lexer {
    /// Nesting depth of `/* */` comments.
    block: usize,
    /// Inside a string literal; `Some(n)` for a raw string closed by `"` and
    /// `n` hashes, `None` for an ordinary string.
    string: Option<Option<usize>>,
}

impl Lexer {
    /// Returns the code of `line` with comments removed and string and char
    /// literal contents blanked, plus the text of any comments.
    fn split(&mut self, line: &str) -> (String, String) {
        let chars: Vec<char> = line.chars().collect();
        let mut code = String::new();
        let mut comment = String::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let next = chars.get(i + 1).copied();
            if self.block > 0 {
                if c == '*' && next == Some('/') {
                    self.block -= 1;
                    i += 2;
                } else if c == '/' && next == Some('*') {
                    self.block += 1;
                    i += 2;
                } else {
                    comment.push(c);
                    i += 1;
                }
                continue;
            }
            if let Some(raw) = self.string {
                match raw {
                    None if c == '\\' => i += 2,
                    None if c == '"' => {
                        self.string = None;
                        code.push('"');
                        i += 1;
                    }
                    Some(hashes)
                        if c == '"'
                            && chars[i + 1..].iter().take_while(|&&h| h == '#').count()
                                >= hashes =>
                    {
                        self.string = None;
                        code.push('"');
                        i += 1 + hashes;
                    }
                    _ => i += 1,
                }
                continue;
            }
            match c {
                '/' if next == Some('/') => {
                    comment.extend(&chars[i..]);
                    break;
                }
                '/' if next == Some('*') => {
                    self.block = 1;
                    i += 2;
                }
                '"' => {
                    self.string = Some(None);
                    code.push('"');
                    i += 1;
                }
                'r' if !code.chars().next_back().is_some_and(is_ident)
                    && matches!(next, Some('"' | '#')) =>
                {
                    let hashes = chars[i + 1..].iter().take_while(|&&h| h == '#').count();
                    if chars.get(i + 1 + hashes) == Some(&'"') {
                        self.string = Some(Some(hashes));
                        code.push('"');
                        i += 2 + hashes;
                    } else {
                        code.push(c);
                        i += 1;
                    }
                }
                '\'' => {
                    // Char literal ('x', '\n', '\u{..}') or a lifetime ('a).
                    if next == Some('\\') {
                        let close = chars[i + 2..].iter().position(|&c| c == '\'');
                        i = close.map_or(chars.len(), |p| i + 3 + p);
                        code.push_str("' '");
                    } else if chars.get(i + 2) == Some(&'\'') {
                        i += 3;
                        code.push_str("' '");
                    } else {
                        code.push(c);
                        i += 1;
                    }
                }
                _ => {
                    code.push(c);
                    i += 1;
                }
            }
        }
        (code, comment)
    }
}

/// A file that is itself a test module (`tests.rs`, or anything under a
/// `tests/` directory inside src/), included from a `#[cfg(test)] mod`.
fn is_test_module(path: &str) -> bool {
    path.ends_with("/tests.rs") || path.contains("/tests/")
}

/// True for a plain `//` comment line whose text looks like commented-out code.
fn looks_like_code_comment(line: &str) -> bool {
    let t = line.trim_start();
    if !t.starts_with("//") || t.starts_with("///") || t.starts_with("//!") {
        return false;
    }
    let body = t[2..].trim_end();
    body.ends_with(';') || body.ends_with('{') || body.ends_with('}')
}

/// TODO/FIXME markers not followed by `(#N)`.
fn bad_marker(text: &str) -> Option<&'static str> {
    for marker in ["TODO", "FIXME"] {
        for (i, _) in text.match_indices(marker) {
            let before = text[..i].chars().next_back();
            let after = &text[i + marker.len()..];
            if before.is_some_and(is_ident) || after.chars().next().is_some_and(is_ident) {
                continue;
            }
            let tracked = after
                .strip_prefix("(#")
                .and_then(|rest| rest.split_once(')'))
                .is_some_and(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
            if !tracked {
                return Some(marker);
            }
        }
    }
    None
}

/// Checks one file's text. `path` is relative to the crate root, with `/`.
fn scan(path: &str, text: &str) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut report = |line: usize, message: String| {
        out.push(Violation {
            path: path.to_string(),
            line,
            message,
        });
    };

    if !text.starts_with("//!") {
        report(
            1,
            "a file without a leading `//!` doc comment is allowed only in \
                   (nowhere: every file must start with `//!`)"
                .to_string(),
        );
    }
    let count = text.lines().count();
    if count > MAX_LINES && !allowed_in(path, LONG_FILES) {
        report(
            count,
            format!(
                "a file of {count} lines (over {MAX_LINES}) is allowed only in \
                               src/codec/ and src/api/openapi.json"
            ),
        );
    }

    let mut lexer = Lexer::default();
    let mut in_tests = is_test_module(path);
    let mut code_comment_run = 0;
    for (index, line) in text.lines().enumerate() {
        let n = index + 1;
        let columns = line.chars().count();
        if columns > MAX_COLUMNS {
            report(
                n,
                format!(
                    "a line of {columns} columns (over {MAX_COLUMNS}) is allowed \
                               only in (nowhere)"
                ),
            );
        }
        if line.trim().starts_with("#[cfg(test)]") {
            in_tests = true;
        }

        if looks_like_code_comment(line) {
            code_comment_run += 1;
            if code_comment_run == 3 {
                report(
                    n - 2,
                    "3+ lines of commented-out code are allowed only in \
                               (nowhere: delete them)"
                        .to_string(),
                );
            }
        } else {
            code_comment_run = 0;
        }

        let (code, comment) = lexer.split(line);
        if let Some(marker) = bad_marker(&comment).or_else(|| bad_marker(&code)) {
            report(
                n,
                format!("{marker} is allowed only in the form {marker}(#N)"),
            );
        }
        for rule in RULES {
            if contains(&code, rule.pattern, rule.word_start) && !allowed_in(path, rule.allowed) {
                report(
                    n,
                    format!("{} is allowed only in {}", rule.pattern, rule.where_),
                );
            }
        }
        if !in_tests {
            for pattern in TEST_ONLY {
                if code.contains(pattern) {
                    report(n, format!("{pattern} is allowed only in #[cfg(test)] code"));
                }
            }
        }
        let squeezed: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        for (pattern, shown) in BANNED_ATTRS {
            if squeezed.contains(pattern) {
                report(n, format!("{shown} is allowed only in (nowhere)"));
            }
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn source_tree_follows_the_house_rules() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    assert!(!files.is_empty(), "no sources found under src/");
    let mut violations = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(root).expect("under root");
        let rel: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let text = std::fs::read_to_string(file)
            .unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
        violations.extend(scan(&rel.join("/"), &text));
    }
    for v in &violations {
        println!("{v}");
    }
    assert!(
        violations.is_empty(),
        "{} tidy violation(s), listed above",
        violations.len()
    );
}

// --- the scanner's own rules ------------------------------------------------

fn messages(path: &str, text: &str) -> Vec<String> {
    scan(path, text).iter().map(ToString::to_string).collect()
}

#[test]
fn tidy_accepts_a_clean_file() {
    let text = "//! Doc.\nuse std::collections::BTreeMap;\nfn f() -> u8 { 1 }\n";
    assert_eq!(messages("src/engine/x.rs", text), Vec::<String>::new());
}

#[test]
fn tidy_requires_leading_doc_comment() {
    let got = messages("src/a.rs", "fn f() {}\n");
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].starts_with("src/a.rs:1: "), "{got:?}");
}

#[test]
fn tidy_restricts_clock_and_io_to_their_modules() {
    let text = "//! D.\nlet t = std::time::Instant::now();\nuse mio::Poll;\nuse std::fs;\n";
    assert_eq!(
        messages("src/engine/a.rs", text),
        [
            "src/engine/a.rs:2: Instant::now is allowed only in src/clock.rs",
            "src/engine/a.rs:3: mio:: is allowed only in src/reactor/, src/transport/, \
             src/main.rs, client tools",
            "src/engine/a.rs:4: std::fs is allowed only in src/config/load.rs, src/store/, \
             src/trace/writer.rs, src/trace/reader.rs, src/main.rs",
        ]
    );
    assert!(messages("src/clock.rs", text)
        .iter()
        .all(|m| !m.contains("Instant")));
    assert!(messages("src/reactor/poll.rs", text)
        .iter()
        .all(|m| !m.contains("mio")));
    assert!(messages("src/store/db.rs", text)
        .iter()
        .all(|m| !m.contains("std::fs")));
    // `signal_hook_mio::` is reported once, as signal_hook, not as mio::.
    let got = messages(
        "src/engine/a.rs",
        "//! D.\nuse signal_hook_mio::v1_0::Signals;\n",
    );
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].contains("signal_hook is allowed only in"), "{got:?}");
}

#[test]
fn tidy_bans_hash_maps_threads_and_prints() {
    let text = "//! D.\nuse std::collections::HashMap;\nstd::thread::sleep(d);\n\
                println!(\"x\");\n";
    let got = messages("src/engine/a.rs", text);
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(got[0].contains(":2: HashMap is allowed only in"));
    assert!(got[1].contains(":3: thread::sleep is allowed only in"));
    assert!(got[2].contains(":4: println! is allowed only in src/main.rs"));
    assert_eq!(
        messages("src/main.rs", "//! D.\nprintln!(\"x\");\n"),
        Vec::<String>::new()
    );
}

#[test]
fn tidy_allows_unwrap_only_after_cfg_test() {
    let text = "//! D.\nlet a = b.unwrap();\nlet c = d.unwrap_or(0);\n#[cfg(test)]\n\
                mod tests {\n    let a = b.unwrap();\n    let c = d.expect(\"e\");\n}\n";
    assert_eq!(
        messages("src/a.rs", text),
        ["src/a.rs:2: .unwrap() is allowed only in #[cfg(test)] code"]
    );
    let module = "//! D.\nlet a = b.unwrap();\n";
    assert_eq!(
        messages("src/engine/tests/flows.rs", module),
        Vec::<String>::new()
    );
    assert_eq!(
        messages("src/engine/tests.rs", module),
        Vec::<String>::new()
    );
}

#[test]
fn tidy_ignores_comments_and_strings_for_code_rules() {
    let text = "//! Uses HashMap-free code.\n// a.unwrap() in a comment\n\
                let s = \"println!(HashMap)\";\nlet r = r#\"a \" .unwrap() \"#;\n\
                let c = '\"'; let d = x.len();\n/* std::fs\n   mio:: */ let e = 1;\n";
    assert_eq!(messages("src/a.rs", text), Vec::<String>::new());
}

#[test]
fn tidy_bans_allow_attributes() {
    let text = "//! D.\n#[allow(dead_code)]\nfn f() {}\n#![allow(unused_imports)]\n\
                #[allow(clippy::too_many_arguments)]\nfn g() {}\n";
    let got = messages("src/a.rs", text);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got[0].starts_with("src/a.rs:2: #[allow(dead_code)]"));
    assert!(got[1].starts_with("src/a.rs:4: #![allow(unused...)]"));
}

#[test]
fn tidy_requires_issue_numbers_on_markers() {
    let text = "//! D.\n// TODO(#12): later\n// TODO: later\n// FIXME(#x)\n// TODOS\n";
    let got = messages("src/a.rs", text);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got[0].starts_with("src/a.rs:3: TODO is allowed only in the form TODO(#N)"));
    assert!(got[1].starts_with("src/a.rs:4: FIXME"));
}

#[test]
fn tidy_flags_commented_out_code() {
    let two = "//! D.\n// let a = 1;\n// let b = 2;\nfn f() {}\n";
    assert_eq!(messages("src/a.rs", two), Vec::<String>::new());
    let three = "//! D.\n// fn f() {\n//     g();\n// }\n/// Doc: {\n";
    let got = messages("src/a.rs", three);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].starts_with("src/a.rs:2: 3+ lines of commented-out code"));
    let doc = "//! D.\n/// a;\n/// b;\n/// c;\n";
    assert_eq!(messages("src/a.rs", doc), Vec::<String>::new());
}

#[test]
fn tidy_limits_line_and_file_length() {
    let long_line = format!("//! D.\n// {}\n", "x".repeat(98));
    let got = messages("src/a.rs", &long_line);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with("src/a.rs:2: a line of 101 columns"),
        "{got:?}"
    );
    // Columns are characters, not bytes.
    let wide = format!("//! D.\n// {}\n", "é".repeat(97));
    assert_eq!(messages("src/a.rs", &wide), Vec::<String>::new());

    let long_file = format!("//! D.\n{}", "fn f() {}\n".repeat(MAX_LINES));
    let got = messages("src/engine/a.rs", &long_file);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].starts_with("src/engine/a.rs:1001: a file of 1001 lines"));
    assert_eq!(
        messages("src/codec/mqtt/big.rs", &long_file),
        Vec::<String>::new()
    );
}
