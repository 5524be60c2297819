//! One test per malformed case (framing, message sizes, reserved values, encapsulation),
//! named for the case and checking the kind and the section of the error.
//!
//! These tests must never touch the network, the clock or the file system.

use super::*;

// ---- malformed: framing (5.2.1, 5.2.2) ----------------------------------------------------

#[test]
fn empty_datagram_is_truncated() {
    assert_eq!(kind_clause(err(&[])), (ErrorKind::Truncated, "5.2.1"));
}

#[test]
fn one_byte_datagram_is_rejected() {
    assert_eq!(err(&[0x02]).kind, ErrorKind::LengthMismatch);
    assert_eq!(err(&[0xFF]).kind, ErrorKind::LengthMismatch);
    // 0x01 announces the 3-octet form, which the datagram cannot hold.
    assert_eq!(kind_clause(err(&[0x01])), (ErrorKind::Truncated, "5.2.1"));
}

#[test]
fn length_shorter_than_datagram_is_a_mismatch() {
    assert_eq!(
        kind_clause(err(&[0x02, 0x16, 0x00])),
        (ErrorKind::LengthMismatch, "5.2.1")
    );
    assert_eq!(
        err(&[0x03, 0x0F, 0x00, 0x01]).kind,
        ErrorKind::LengthMismatch
    );
}

#[test]
fn length_longer_than_datagram_is_a_mismatch() {
    assert_eq!(
        kind_clause(err(&[0x04, 0x16, 0x00])),
        (ErrorKind::LengthMismatch, "5.2.1")
    );
    assert_eq!(err(&[0xFF, 0x0C, 0x00]).kind, ErrorKind::LengthMismatch);
}

#[test]
fn length_0_in_1_octet_form_is_rejected() {
    assert_eq!(err(&[0x00, 0x16]).kind, ErrorKind::LengthMismatch);
    assert_eq!(err(&[0x00]).kind, ErrorKind::LengthMismatch);
}

#[test]
fn length_1_in_1_octet_form_is_rejected() {
    // 0x01 is never a 1-octet length: it announces the 3-octet form.
    assert_eq!(err(&[0x01, 0x16]).kind, ErrorKind::Truncated);
    assert_eq!(err(&[0x01, 0x16, 0x00]).kind, ErrorKind::LengthMismatch);
}

#[test]
fn three_octet_form_with_length_below_4_is_rejected() {
    for n in 0..3u8 {
        assert_eq!(
            err(&[0x01, 0x00, n]).kind,
            ErrorKind::LengthMismatch,
            "length {n}"
        );
        assert_eq!(err(&[0x01, 0x00, n, 0x16]).kind, ErrorKind::LengthMismatch);
    }
    // Length 3 covers the field but leaves no room for a MsgType.
    assert_eq!(
        kind_clause(err(&[0x01, 0x00, 0x03])),
        (ErrorKind::Truncated, "5.2.2")
    );
}

#[test]
fn three_octet_form_with_mismatching_length_is_rejected() {
    assert_eq!(
        err(&[0x01, 0x00, 0x05, 0x16]).kind,
        ErrorKind::LengthMismatch
    );
    assert_eq!(
        err(&[0x01, 0x00, 0x04, 0x16, 0x00]).kind,
        ErrorKind::LengthMismatch
    );
    assert_eq!(
        err(&[0x01, 0xFF, 0xFF, 0x16]).kind,
        ErrorKind::LengthMismatch
    );
}

#[test]
fn unknown_message_types_are_rejected() {
    for t in [0x03, 0x11, 0x19, 0x1E, 0xFF] {
        assert_eq!(
            kind_clause(err(&[0x02, t])),
            (ErrorKind::UnknownType(t), "5.2.2")
        );
        assert_eq!(err(&long_form(t, &[0x00])).kind, ErrorKind::UnknownType(t));
    }
}

#[test]
fn every_reserved_type_code_is_unknown() {
    let defined: Vec<u8> = samples().iter().map(Message::msg_type).collect();
    for t in 0..=255u8 {
        if defined.contains(&t) || t == 0xFE {
            continue;
        }
        for body in [&[][..], &[0x00; 8][..]] {
            assert_eq!(
                err(&dgram(t, body)).kind,
                ErrorKind::UnknownType(t),
                "type {t:#04x}"
            );
        }
    }
}

// ---- malformed: message sizes (5.4) -----------------------------------------------------

/// The fixed-size messages: type code, a valid body, and the section.
const FIXED: &[(u8, &[u8], &str)] = &[
    (0x00, &[0x01, 0x00, 0x3C], "5.4.1"),
    (0x01, &[0x01], "5.4.2"),
    (0x05, &[0x00], "5.4.5"),
    (0x06, &[], "5.4.6"),
    (0x08, &[], "5.4.8"),
    (0x0B, &[0x00, 0x01, 0x00, 0x02, 0x00], "5.4.11"),
    (0x0D, &[0x00, 0x01, 0x00, 0x02, 0x00], "5.4.13"),
    (0x0E, &[0x00, 0x01], "5.4.14"),
    (0x0F, &[0x00, 0x01], "5.4.14"),
    (0x10, &[0x00, 0x01], "5.4.14"),
    (0x13, &[0x20, 0x00, 0x01, 0x00, 0x02, 0x00], "5.4.16"),
    (0x15, &[0x00, 0x01], "5.4.18"),
    (0x17, &[], "5.4.20"),
    (0x1B, &[0x00], "5.4.24"),
    (0x1D, &[0x00], "5.4.25"),
];

#[test]
fn fixed_size_messages_decode_at_their_size() {
    for &(t, body, _) in FIXED {
        let bytes = dgram(t, body);
        let m = dec(&bytes);
        assert_eq!(m.msg_type(), t);
    }
}

#[test]
fn fixed_size_messages_one_byte_short_are_rejected() {
    for &(t, body, clause) in FIXED {
        let Some((_, short)) = body.split_last() else {
            continue; // No body to shorten: WILLTOPICREQ, WILLMSGREQ, PINGRESP.
        };
        let e = err(&dgram(t, short));
        assert_eq!(
            kind_clause(e),
            (ErrorKind::WrongSize(t), clause),
            "type {t:#04x}"
        );
    }
}

#[test]
fn fixed_size_messages_one_byte_long_are_rejected() {
    for &(t, body, clause) in FIXED {
        let mut long = body.to_vec();
        long.push(0x00);
        let e = err(&dgram(t, &long));
        assert_eq!(
            kind_clause(e),
            (ErrorKind::WrongSize(t), clause),
            "type {t:#04x}"
        );
    }
}

#[test]
fn variable_messages_shorter_than_their_fixed_fields_are_rejected() {
    // Type, the longest body that is still too short, and the section.
    let cases: &[(u8, &[u8], &str)] = &[
        (0x02, &[], "5.4.3"),
        (0x04, &[0x04, 0x01, 0x00], "5.4.4"),
        (0x0A, &[0x00, 0x01, 0x00], "5.4.10"),
        (0x0C, &[0x00, 0x00, 0x01, 0x00], "5.4.12"),
        (0x12, &[0x00, 0x00], "5.4.15"),
        (0x14, &[0x00, 0x00], "5.4.17"),
    ];
    for &(t, body, clause) in cases {
        for cut in 0..=body.len() {
            let e = err(&dgram(t, &body[..cut]));
            assert_eq!(
                kind_clause(e),
                (ErrorKind::WrongSize(t), clause),
                "type {t:#04x}"
            );
        }
    }
}

#[test]
fn subscribe_predefined_or_short_must_be_two_octets() {
    for (t, clause) in [(0x12, "5.4.15"), (0x14, "5.4.17")] {
        for kind in [0x01, 0x02] {
            for topic in [&[][..], &[0x00], &[0x00, 0x01, 0x02]] {
                let mut body = vec![kind, 0x00, 0x01];
                body.extend_from_slice(topic);
                let e = err(&dgram(t, &body));
                assert_eq!(kind_clause(e), (ErrorKind::WrongSize(t), clause));
            }
        }
    }
}

#[test]
fn disconnect_duration_must_be_two_octets() {
    for body in [&[0x00][..], &[0x00, 0x01, 0x02]] {
        assert_eq!(
            kind_clause(err(&dgram(0x18, body))),
            (ErrorKind::WrongSize(0x18), "5.4.21")
        );
    }
}

#[test]
fn willtopic_with_flags_but_no_topic_is_rejected() {
    // The empty form has no Flags field (5.4.7, 5.4.22); flags alone are neither form.
    assert_eq!(
        kind_clause(err(&[0x03, 0x07, 0x30])),
        (ErrorKind::WrongSize(0x07), "5.4.7")
    );
    assert_eq!(
        kind_clause(err(&[0x03, 0x1A, 0x00])),
        (ErrorKind::WrongSize(0x1A), "5.4.22")
    );
}

#[test]
fn reserved_topic_id_type_is_rejected() {
    let publish = [0x07, 0x0C, 0x03, 0x00, 0x01, 0x00, 0x00];
    let subscribe = [0x07, 0x12, 0x23, 0x00, 0x01, 0x00, 0x01];
    let unsubscribe = [0x07, 0x14, 0x03, 0x00, 0x01, 0x00, 0x01];
    for bytes in [&publish[..], &subscribe, &unsubscribe] {
        assert_eq!(
            kind_clause(err(bytes)),
            (ErrorKind::ReservedTopicIdType, "5.3.4"),
            "{bytes:02x?}"
        );
    }
}

// ---- malformed: encapsulation (5.5) -------------------------------------------------------

#[test]
fn encapsulated_inside_encapsulated_is_rejected() {
    let nested = [0x03, 0xFE, 0x00, 0x03, 0xFE, 0x00, 0x02, 0x16];
    assert_eq!(
        decode(&nested).map_err(kind_clause),
        Err((ErrorKind::NestedEncapsulation, "5.5"))
    );
    // The inner header in the 3-octet form is recognised too.
    let nested = [0x03, 0xFE, 0x00, 0x01, 0x00, 0x05, 0xFE, 0x00, 0x02, 0x16];
    assert_eq!(
        decode(&nested).map_err(|e| e.kind),
        Err(ErrorKind::NestedEncapsulation)
    );
}

#[test]
fn decode_message_refuses_an_encapsulated_frame() {
    let frame = [0x04, 0xFE, 0x00, 0x07, 0x02, 0x16];
    assert!(matches!(decode(&frame), Ok(Frame::Encapsulated(_))));
    let e = decode_message(&frame);
    // The length names the header only, so as a plain message the length is wrong; a frame
    // whose length does cover the datagram is refused by type.
    assert_eq!(e.map_err(|e| e.kind), Err(ErrorKind::LengthMismatch));
    let e = decode_message(&[0x03, 0xFE, 0x00]);
    assert_eq!(
        e.map_err(kind_clause),
        Err((ErrorKind::NestedEncapsulation, "5.5"))
    );
}

#[test]
fn encapsulated_with_a_bad_inner_message_decodes_then_fails_inside() {
    for (inner, kind) in [
        (&[0x02, 0x03][..], ErrorKind::UnknownType(0x03)),
        (&[0x05, 0x16], ErrorKind::LengthMismatch),
        (&[0x03, 0x17, 0x00], ErrorKind::WrongSize(0x17)),
        (&[0x01, 0x00], ErrorKind::Truncated),
    ] {
        let mut frame = vec![0x04, 0xFE, 0x01, 0x42];
        frame.extend_from_slice(inner);
        let Ok(Frame::Encapsulated(e)) = decode(&frame) else {
            panic!("{frame:02x?} should decode as Encapsulated");
        };
        assert_eq!(e.inner, inner);
        assert_eq!(
            decode_message(e.inner).map_err(|e| e.kind),
            Err(kind),
            "{inner:02x?}"
        );
    }
}

#[test]
fn encapsulated_header_without_ctrl_is_rejected() {
    assert_eq!(
        decode(&[0x02, 0xFE, 0x02, 0x16]).map_err(kind_clause),
        Err((ErrorKind::WrongSize(0xFE), "5.5"))
    );
    assert_eq!(
        decode(&[0x01, 0x00, 0x04, 0xFE, 0x02, 0x16]).map_err(|e| e.kind),
        Err(ErrorKind::WrongSize(0xFE))
    );
}

#[test]
fn encapsulated_header_longer_than_datagram_is_rejected() {
    assert_eq!(
        decode(&[0x06, 0xFE, 0x00, 0x01]).map_err(kind_clause),
        Err((ErrorKind::LengthMismatch, "5.5"))
    );
}

#[test]
fn encapsulated_without_a_message_is_rejected() {
    assert_eq!(
        decode(&[0x04, 0xFE, 0x00, 0x01]).map_err(kind_clause),
        Err((ErrorKind::Truncated, "5.5"))
    );
}

#[test]
fn decode_error_display_names_the_section() {
    let e = err(&[0x02, 0x03]);
    assert_eq!(e.to_string(), "UnknownType(3) [MQTT-SN 5.2.2]");
}
