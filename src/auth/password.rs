//! Password files in the format `mosquitto_passwd` writes: one `USER:HASH` line per user,
//! where HASH is `$7$ITERATIONS$SALT$HASH` (PBKDF2-HMAC-SHA512 of the password) or
//! `$6$SALT$HASH` (SHA-512 of the password followed by the salt, one round), salt and hash
//! in base64 (12 and 64 bytes). Blank lines and lines starting with `#` are skipped.
//!
//! Owns parsing (pure, over text, every error naming its line), verification, and the lines
//! `culex passwd` writes. It must never read or write a file, log, or compare a secret by any
//! means other than ring's constant-time verifiers.
//!
//! Verification runs on the event loop: a `$7$` line costs its iteration count in HMAC-SHA512
//! rounds per CONNECT (101, the `mosquitto_passwd` default, takes some tens of microseconds;
//! [`ITERATIONS_MAX`] bounds what a file may ask for).

use std::collections::BTreeMap;
use std::num::NonZeroU32;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ring::rand::SecureRandom;
use ring::{digest, hmac, pbkdf2};

use crate::config::ConfigError;

/// Iterations of the hashes `culex passwd` writes (the `mosquitto_passwd` default).
pub const ITERATIONS: u32 = 101;
/// The most iterations a `$7$` line may ask for: each CONNECT with such a user name spends
/// them on the event loop (100,000 take tens of milliseconds).
pub const ITERATIONS_MAX: u32 = 100_000;
/// Salt length of both hash kinds, in bytes, as `mosquitto_passwd` writes and mosquitto
/// requires.
pub const SALT_LEN: usize = 12;
/// Length of both hashes, in bytes (SHA-512).
pub const HASH_LEN: usize = 64;

/// One user's stored hash.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Hash {
    /// `$7$`: PBKDF2-HMAC-SHA512.
    Pbkdf2 {
        iterations: NonZeroU32,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
    /// `$6$`: SHA-512(password ‖ salt).
    Sha512 { salt: Vec<u8>, hash: Vec<u8> },
}

/// The users of a password file and their hashes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PasswordFile {
    users: BTreeMap<String, Hash>,
}

impl PasswordFile {
    /// Parses a password file's text, named `file` in errors. Every user line must hold a
    /// `$6$` or `$7$` hash that decodes; a user may appear once.
    pub fn parse(text: &str, file: &str) -> Result<Self, ConfigError> {
        let mut users = BTreeMap::new();
        let mut lines: BTreeMap<&str, usize> = BTreeMap::new();
        for (index, raw) in text.lines().enumerate() {
            let number = index + 1;
            let line = raw.trim_start_matches('\u{feff}').trim_end();
            if line.trim_start().is_empty() || line.starts_with('#') {
                continue;
            }
            let at = |message: String| ConfigError::new(file, number, message);
            let Some((user, hash)) = line.split_once(':') else {
                return Err(at("expected USER:HASH".to_owned()));
            };
            if user.is_empty() {
                return Err(at("empty user name".to_owned()));
            }
            let hash = parse_hash(hash).map_err(|e| at(format!("user {user:?}: {e}")))?;
            if let Some(earlier) = lines.insert(user, number) {
                return Err(at(format!(
                    "user {user:?} is already defined at line {earlier}"
                )));
            }
            users.insert(user.to_owned(), hash);
        }
        Ok(Self { users })
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Whether `password` is the password of `user`. An unknown user costs the same hashing
    /// as a known one with the default iteration count, so the answer's timing does not tell
    /// which user names exist.
    pub fn verify(&self, user: &str, password: &[u8]) -> bool {
        match self.users.get(user) {
            Some(hash) => verify_hash(hash, password),
            None => {
                let dummy = Hash::Pbkdf2 {
                    iterations: NonZeroU32::MIN.saturating_add(ITERATIONS - 1),
                    salt: vec![0; SALT_LEN],
                    hash: vec![0; HASH_LEN],
                };
                let _ = verify_hash(&dummy, password);
                false
            }
        }
    }
}

/// Parses the part of a line after `USER:`.
fn parse_hash(text: &str) -> Result<Hash, String> {
    let fields: Vec<&str> = text.split('$').collect();
    match fields.as_slice() {
        ["", "7", iterations, salt, hash] => {
            let n = iterations
                .parse::<u32>()
                .ok()
                .filter(|_| iterations.bytes().all(|b| b.is_ascii_digit()))
                .filter(|n| (1..=ITERATIONS_MAX).contains(n))
                .and_then(NonZeroU32::new)
                .ok_or_else(|| {
                    format!(
                        "expected an iteration count from 1 to {ITERATIONS_MAX}, \
                         got {iterations:?}"
                    )
                })?;
            Ok(Hash::Pbkdf2 {
                iterations: n,
                salt: decode(salt, "salt", SALT_LEN)?,
                hash: decode(hash, "hash", HASH_LEN)?,
            })
        }
        ["", "6", salt, hash] => Ok(Hash::Sha512 {
            salt: decode(salt, "salt", SALT_LEN)?,
            hash: decode(hash, "hash", HASH_LEN)?,
        }),
        ["", "7", ..] => Err("expected $7$ITERATIONS$SALT$HASH".to_owned()),
        ["", "6", ..] => Err("expected $6$SALT$HASH".to_owned()),
        ["", kind, ..] => Err(format!(
            "unknown hash type ${kind}$ (only $6$ and $7$ are supported)"
        )),
        _ if text.is_empty() => Err("missing password hash".to_owned()),
        _ => Err("not a password hash (plain text passwords are not supported)".to_owned()),
    }
}

/// Decodes a base64 field that must hold `len` bytes.
fn decode(text: &str, what: &str, len: usize) -> Result<Vec<u8>, String> {
    let bytes = STANDARD
        .decode(text)
        .map_err(|_| format!("the {what} is not valid base64"))?;
    if bytes.len() != len {
        return Err(format!(
            "the {what} must be {len} bytes, not {}",
            bytes.len()
        ));
    }
    Ok(bytes)
}

fn verify_hash(hash: &Hash, password: &[u8]) -> bool {
    match hash {
        Hash::Pbkdf2 {
            iterations,
            salt,
            hash,
        } => pbkdf2::verify(
            pbkdf2::PBKDF2_HMAC_SHA512,
            *iterations,
            salt,
            password,
            hash,
        )
        .is_ok(),
        Hash::Sha512 { salt, hash } => {
            let mut ctx = digest::Context::new(&digest::SHA512);
            ctx.update(password);
            ctx.update(salt);
            let candidate = ctx.finish();
            // ring's HMAC verification compares in constant time: the stored hash is signed
            // and the tag checked against the candidate.
            let key = hmac::Key::new(hmac::HMAC_SHA256, salt);
            let tag = hmac::sign(&key, hash);
            hmac::verify(&key, candidate.as_ref(), tag.as_ref()).is_ok()
        }
    }
}

/// A `USER:$7$101$SALT$HASH` line for `password`, with a fresh random salt from `random`.
pub fn hash_line(user: &str, password: &[u8], random: &dyn SecureRandom) -> Result<String, String> {
    let mut salt = [0u8; SALT_LEN];
    random
        .fill(&mut salt)
        .map_err(|_| "no random salt could be drawn".to_owned())?;
    Ok(line_with_salt(user, password, &salt))
}

fn line_with_salt(user: &str, password: &[u8], salt: &[u8]) -> String {
    let mut hash = [0u8; HASH_LEN];
    let iterations = NonZeroU32::MIN.saturating_add(ITERATIONS - 1);
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA512,
        iterations,
        salt,
        password,
        &mut hash,
    );
    format!(
        "{user}:$7${ITERATIONS}${}${}",
        STANDARD.encode(salt),
        STANDARD.encode(hash)
    )
}

/// Why a user name cannot go into a password file, if it cannot.
pub fn check_user(user: &str) -> Result<(), String> {
    if user.is_empty() {
        return Err("the user name must not be empty".to_owned());
    }
    if user.contains(':') {
        return Err("the user name must not contain ':'".to_owned());
    }
    if user.contains(['\n', '\r']) || user.starts_with('#') {
        return Err("the user name must not start with '#' or hold a line break".to_owned());
    }
    Ok(())
}

/// `text` with `user`'s line replaced by `line` (or `line` appended when the user has
/// none); every other line is kept as it was.
pub fn set_user(text: &str, user: &str, line: &str) -> String {
    let mut out = String::with_capacity(text.len() + line.len() + 1);
    let mut replaced = false;
    for l in text.lines() {
        if is_line_of(l, user) {
            if !replaced {
                out.push_str(line);
                out.push('\n');
                replaced = true;
            }
        } else {
            out.push_str(l);
            out.push('\n');
        }
    }
    if !replaced {
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// `text` without `user`'s line, or `None` when the file has no such user.
pub fn remove_user(text: &str, user: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut found = false;
    for l in text.lines() {
        if is_line_of(l, user) {
            found = true;
        } else {
            out.push_str(l);
            out.push('\n');
        }
    }
    found.then_some(out)
}

fn is_line_of(line: &str, user: &str) -> bool {
    !line.starts_with('#') && line.split_once(':').is_some_and(|(u, _)| u == user)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written by `mosquitto_passwd` 2.0.11: alice and carol@example with the default
    /// (`$7$`, 101 iterations), bob and dave with `-H sha512` (`$6$`).
    const FIXTURE: &str = include_str!("testdata/mosquitto.passwd");

    fn parsed() -> PasswordFile {
        PasswordFile::parse(FIXTURE, "mosquitto.passwd").unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn verifies_what_mosquitto_passwd_wrote() {
        let file = parsed();
        assert_eq!(file.len(), 4);
        assert!(file.verify("alice", b"alice-secret"));
        assert!(file.verify("bob", b"bob pass: with spaces"));
        assert!(file.verify("carol@example", "pässwörd".as_bytes()));
        assert!(file.verify("dave", b"x"));
        for (user, wrong) in [
            ("alice", &b"alice-secreT"[..]),
            ("alice", b""),
            ("bob", b"bob pass: with space"),
            ("carol@example", b"passwoerd"),
            ("dave", b"y"),
            ("nobody", b"x"),
            ("Alice", b"alice-secret"),
        ] {
            assert!(!file.verify(user, wrong), "{user} {wrong:?}");
        }
    }

    #[test]
    fn written_lines_verify_and_have_the_mosquitto_shape() {
        let line = line_with_salt("eve", b"pw", &[7; SALT_LEN]);
        let fields: Vec<&str> = line.split('$').collect();
        assert_eq!(fields[0], "eve:");
        assert_eq!((fields[1], fields[2]), ("7", "101"));
        assert_eq!(fields[3], "BwcHBwcHBwcHBwcH");
        assert_eq!(fields[4].len(), 88);
        let file = PasswordFile::parse(&line, "f").unwrap_or_else(|e| panic!("{e}"));
        assert!(file.verify("eve", b"pw"));
        assert!(!file.verify("eve", b"pW"));
        let random = ring::rand::SystemRandom::new();
        let a = hash_line("eve", b"pw", &random).unwrap_or_default();
        let b = hash_line("eve", b"pw", &random).unwrap_or_default();
        assert_ne!(a, b, "fresh salts");
    }

    #[test]
    fn comments_blank_lines_and_line_ends() {
        let text = format!(
            "# users\n\n   \n{}\r\n",
            FIXTURE.lines().next().unwrap_or("")
        );
        let file = PasswordFile::parse(&text, "f").unwrap_or_else(|e| panic!("{e}"));
        assert!(file.verify("alice", b"alice-secret"));
        assert_eq!(file.len(), 1);
    }

    #[test]
    fn every_malformed_line_names_file_and_line() {
        let salt = "oAMYToZ0RIe92HSI";
        let hash = FIXTURE
            .lines()
            .next()
            .and_then(|l| l.rsplit('$').next())
            .unwrap_or("");
        let cases = [
            ("alice".to_owned(), "expected USER:HASH"),
            (":$6$x$y".to_owned(), "empty user name"),
            ("u:".to_owned(), "user \"u\": missing password hash"),
            (
                "u:secret".to_owned(),
                "user \"u\": not a password hash (plain text passwords are not supported)",
            ),
            (
                format!("u:$5${salt}${hash}"),
                "user \"u\": unknown hash type $5$ (only $6$ and $7$ are supported)",
            ),
            (
                format!("u:$7${salt}${hash}"),
                "user \"u\": expected $7$ITERATIONS$SALT$HASH",
            ),
            (
                format!("u:$6$101${salt}${hash}"),
                "user \"u\": expected $6$SALT$HASH",
            ),
            (
                format!("u:$7$0${salt}${hash}"),
                "user \"u\": expected an iteration count from 1 to 100000, got \"0\"",
            ),
            (
                format!("u:$7$100001${salt}${hash}"),
                "user \"u\": expected an iteration count from 1 to 100000, got \"100001\"",
            ),
            (
                format!("u:$7$+5${salt}${hash}"),
                "user \"u\": expected an iteration count from 1 to 100000, got \"+5\"",
            ),
            (
                format!("u:$7$101$%%%${hash}"),
                "user \"u\": the salt is not valid base64",
            ),
            (
                format!("u:$7$101$AAAA${hash}"),
                "user \"u\": the salt must be 12 bytes, not 3",
            ),
            (
                format!("u:$6${salt}$AAAA"),
                "user \"u\": the hash must be 64 bytes, not 3",
            ),
            (
                format!("u:$6${salt}$not base64!"),
                "user \"u\": the hash is not valid base64",
            ),
            (
                format!("u:$6${salt}${hash}\nv:x\nu:$6${salt}${hash}"),
                "user \"v\": not a password hash (plain text passwords are not supported)",
            ),
        ];
        for (text, message) in cases {
            let text = format!("# header\n{text}");
            let e = PasswordFile::parse(&text, "pw")
                .err()
                .map(|e| e.to_string());
            let line = if message.starts_with("user \"v\"") {
                3
            } else {
                2
            };
            assert_eq!(e, Some(format!("pw:{line}: {message}")), "{text}");
        }
        let twice = format!("u:$6${salt}${hash}\n\nu:$6${salt}${hash}\n");
        let e = PasswordFile::parse(&twice, "pw")
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("pw:3: user \"u\" is already defined at line 1")
        );
    }

    #[test]
    fn user_lines_are_replaced_appended_and_removed() {
        let text = "# keep me\nalice:old\nbob:b\n\n";
        assert_eq!(
            set_user(text, "alice", "alice:new"),
            "# keep me\nalice:new\nbob:b\n\n"
        );
        assert_eq!(
            set_user(text, "carol", "carol:c"),
            "# keep me\nalice:old\nbob:b\n\ncarol:c\n"
        );
        assert_eq!(set_user("", "a", "a:x"), "a:x\n");
        assert_eq!(
            remove_user(text, "bob").as_deref(),
            Some("# keep me\nalice:old\n\n")
        );
        assert_eq!(remove_user(text, "nobody"), None);
        // A comment that looks like a user line is not one.
        assert_eq!(remove_user("#x:1\n", "#x"), None);
    }

    #[test]
    fn user_names_that_cannot_be_written() {
        assert!(check_user("alice").is_ok());
        assert!(check_user("a b@c").is_ok());
        for bad in ["", "a:b", "#a", "a\nb"] {
            assert!(check_user(bad).is_err(), "{bad:?}");
        }
    }
}
