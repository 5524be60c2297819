//! The predefined-topics file of an MQTT-SN listener: one `ID TOPIC` pair a line, known to
//! the gateway and its clients in advance so that neither needs a REGISTER. Pure: the text
//! is handed in by the loader; this module never reads files.

use std::collections::BTreeMap;

use super::ConfigError;
use crate::codec::mqtt::topic::valid_topic_name;

/// The highest usable topic id: 0x0000 and 0xFFFF are reserved (MQTT-SN 1.2, 5.3.11).
pub const TOPIC_ID_MAX: u16 = u16::MAX - 1;

/// Parses a predefined-topics file, named `file` in errors. Lines hold a decimal topic id
/// from 1 to [`TOPIC_ID_MAX`], spaces, then the topic name (the rest of the line, trimmed);
/// blank lines and lines starting with `#` are skipped. Each id and each topic name may be
/// defined once, so the mapping works in both directions. The result is sorted by id.
pub fn parse_topics(text: &str, file: &str) -> Result<Vec<(u16, String)>, ConfigError> {
    let mut by_id: BTreeMap<u16, (String, usize)> = BTreeMap::new();
    let mut by_name: BTreeMap<&str, (u16, usize)> = BTreeMap::new();
    for (number, line) in super::parse::content_lines(text) {
        let at = |message: String| ConfigError::new(file, number, message);
        let (id_text, name) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let id = topic_id(id_text).map_err(at)?;
        let name = name.trim();
        if name.is_empty() {
            return Err(at(format!("topic id {id}: missing topic name")));
        }
        if !valid_topic_name(name) {
            let why = if name.contains(['+', '#']) {
                "must not contain the wildcards + or #"
            } else {
                "is not a valid topic name"
            };
            return Err(at(format!(
                "topic id {id}: \"{}\" {why}",
                name.escape_debug()
            )));
        }
        if let Some((_, earlier)) = by_id.get(&id) {
            return Err(at(format!(
                "topic id {id} is already defined at line {earlier}"
            )));
        }
        if let Some((other, earlier)) = by_name.get(name) {
            return Err(at(format!(
                "topic \"{name}\" already has id {other} (line {earlier})"
            )));
        }
        by_id.insert(id, (name.to_owned(), number));
        by_name.insert(name, (id, number));
    }
    Ok(by_id
        .into_iter()
        .map(|(id, (name, _))| (id, name))
        .collect())
}

fn topic_id(text: &str) -> Result<u16, String> {
    let id = text
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| text.parse::<u16>().ok())
        .flatten();
    match id {
        Some(0 | u16::MAX) => Err(format!(
            "topic id {text} is reserved (MQTT-SN 1.2, 5.3.11): use 1 to {TOPIC_ID_MAX}"
        )),
        Some(id) => Ok(id),
        None => Err(format!(
            "expected a topic id from 1 to {TOPIC_ID_MAX}, got \"{}\"",
            text.escape_debug()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        match parse_topics(text, "topics") {
            Ok(topics) => panic!("{text:?} parsed: {topics:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_good_file() {
        let text = "\u{feff}# sensors\n\n  10 sensors/temp  \n1\tsensors/light level\n\
                    65534 $SYS/x\n  # indented comment\n2 a\n";
        let topics = parse_topics(text, "topics").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            topics,
            vec![
                (1, "sensors/light level".to_owned()),
                (2, "a".to_owned()),
                (10, "sensors/temp".to_owned()),
                (65534, "$SYS/x".to_owned()),
            ]
        );
    }

    #[test]
    fn an_empty_file_defines_nothing() {
        assert_eq!(parse_topics("", "topics"), Ok(Vec::new()));
        assert_eq!(parse_topics("# none\n\n", "topics"), Ok(Vec::new()));
    }

    #[test]
    fn bad_ids() {
        let cases = [
            ("x a/b", "expected a topic id from 1 to 65534, got \"x\""),
            ("-1 a/b", "expected a topic id from 1 to 65534, got \"-1\""),
            ("+1 a/b", "expected a topic id from 1 to 65534, got \"+1\""),
            (
                "65536 a/b",
                "expected a topic id from 1 to 65534, got \"65536\"",
            ),
            (
                "0x10 a/b",
                "expected a topic id from 1 to 65534, got \"0x10\"",
            ),
            (
                "0 a/b",
                "topic id 0 is reserved (MQTT-SN 1.2, 5.3.11): use 1 to 65534",
            ),
            (
                "000 a/b",
                "topic id 000 is reserved (MQTT-SN 1.2, 5.3.11): use 1 to 65534",
            ),
            (
                "65535 a/b",
                "topic id 65535 is reserved (MQTT-SN 1.2, 5.3.11): use 1 to 65534",
            ),
            ("7", "topic id 7: missing topic name"),
            ("7   ", "topic id 7: missing topic name"),
        ];
        for (line, message) in cases {
            assert_eq!(
                err(&format!("1 ok\n{line}\n")),
                format!("topics:2: {message}")
            );
        }
    }

    #[test]
    fn duplicate_ids_and_names() {
        assert_eq!(
            err("# x\n3 a/b\n4 c\n3 d\n"),
            "topics:4: topic id 3 is already defined at line 2"
        );
        assert_eq!(
            err("3 a/b\n\n5 a/b\n"),
            "topics:3: topic \"a/b\" already has id 3 (line 1)"
        );
    }

    #[test]
    fn wildcards_and_bad_names() {
        assert_eq!(
            err("1 a/+/c\n"),
            "topics:1: topic id 1: \"a/+/c\" must not contain the wildcards + or #"
        );
        assert_eq!(
            err("1 a\n2 a/#\n"),
            "topics:2: topic id 2: \"a/#\" must not contain the wildcards + or #"
        );
        // A `#` after the topic is not a comment: it is part of the name.
        assert_eq!(
            err("1 a/b # note\n"),
            "topics:1: topic id 1: \"a/b # note\" must not contain the wildcards + or #"
        );
        assert_eq!(
            err("1 a\0b\n"),
            "topics:1: topic id 1: \"a\\0b\" is not a valid topic name"
        );
    }

    #[test]
    fn odd_input_never_panics() {
        for text in [
            "\0",
            "\u{1F600} x",
            "1 \u{1F600}",
            "99999999999999999999 x",
            " \t",
        ] {
            let _ = parse_topics(text, "topics");
        }
    }
}
