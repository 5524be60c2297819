//! The Flags octet (spec 5.3.4) and the ReturnCode octet (5.3.10).
//!
//! Each message uses only some flag fields; the masks below say which, and bits outside the
//! mask are ignored on decode and written as zero. This module must never panic.

use super::header::err;
use super::{DecodeError, ErrorKind, Flags, ReturnCode, SnQos, TopicIdType};

const DUP: u8 = 0b1000_0000;
const QOS: u8 = 0b0110_0000;
const QOS_SHIFT: u32 = 5;
const RETAIN: u8 = 0b0001_0000;
const WILL: u8 = 0b0000_1000;
const CLEAN_SESSION: u8 = 0b0000_0100;
const TOPIC_ID_TYPE: u8 = 0b0000_0011;

/// The fields CONNECT uses (5.4.4).
pub(super) const CONNECT_USES: u8 = WILL | CLEAN_SESSION;
/// The fields WILLTOPIC and WILLTOPICUPD use (5.4.7, 5.4.22).
pub(super) const WILL_TOPIC_USES: u8 = QOS | RETAIN;
/// The fields PUBLISH uses (5.4.12).
pub(super) const PUBLISH_USES: u8 = DUP | QOS | RETAIN | TOPIC_ID_TYPE;
/// The fields SUBSCRIBE uses (5.4.15).
pub(super) const SUBSCRIBE_USES: u8 = DUP | QOS | TOPIC_ID_TYPE;
/// The fields SUBACK uses (5.4.16).
pub(super) const SUBACK_USES: u8 = QOS;
/// The fields UNSUBSCRIBE uses (5.4.17).
pub(super) const UNSUBSCRIBE_USES: u8 = TOPIC_ID_TYPE;

impl SnQos {
    /// The QoS for the two-bit field value `bits` (only bits 1-0 are read).
    pub fn from_bits(bits: u8) -> Self {
        match bits & 0b11 {
            0b00 => Self::AtMostOnce,
            0b01 => Self::AtLeastOnce,
            0b10 => Self::ExactlyOnce,
            _ => Self::MinusOne,
        }
    }

    /// The two-bit field value.
    pub fn bits(self) -> u8 {
        match self {
            Self::AtMostOnce => 0b00,
            Self::AtLeastOnce => 0b01,
            Self::ExactlyOnce => 0b10,
            Self::MinusOne => 0b11,
        }
    }
}

impl TopicIdType {
    /// The type for the two-bit field value `bits` (only bits 1-0 are read); `None` for the
    /// reserved 0b11.
    pub fn from_bits(bits: u8) -> Option<Self> {
        match bits & 0b11 {
            0b00 => Some(Self::Normal),
            0b01 => Some(Self::Predefined),
            0b10 => Some(Self::Short),
            _ => None,
        }
    }

    /// The two-bit field value.
    pub fn bits(self) -> u8 {
        match self {
            Self::Normal => 0b00,
            Self::Predefined => 0b01,
            Self::Short => 0b10,
        }
    }
}

impl ReturnCode {
    pub fn from_u8(code: u8) -> Self {
        match code {
            0x00 => Self::Accepted,
            0x01 => Self::Congestion,
            0x02 => Self::InvalidTopicId,
            0x03 => Self::NotSupported,
            other => Self::Other(other),
        }
    }

    pub fn to_u8(self) -> u8 {
        match self {
            Self::Accepted => 0x00,
            Self::Congestion => 0x01,
            Self::InvalidTopicId => 0x02,
            Self::NotSupported => 0x03,
            Self::Other(code) => code,
        }
    }
}

/// Reads the fields in `uses` from a flags octet. Only a used TopicIdType can be reserved,
/// so only PUBLISH, SUBSCRIBE and UNSUBSCRIBE fail here.
pub(super) fn decode(byte: u8, uses: u8) -> Result<Flags, DecodeError> {
    let b = byte & uses;
    let topic_id_type = TopicIdType::from_bits(b & TOPIC_ID_TYPE)
        .ok_or_else(|| err(ErrorKind::ReservedTopicIdType, "5.3.4"))?;
    Ok(Flags {
        dup: b & DUP != 0,
        qos: SnQos::from_bits(b >> QOS_SHIFT),
        retain: b & RETAIN != 0,
        will: b & WILL != 0,
        clean_session: b & CLEAN_SESSION != 0,
        topic_id_type,
    })
}

/// Writes the fields in `uses` as a flags octet; the others are zero.
pub(super) fn encode(flags: Flags, uses: u8) -> u8 {
    let mut b = flags.qos.bits() << QOS_SHIFT | flags.topic_id_type.bits();
    for (set, bit) in [
        (flags.dup, DUP),
        (flags.retain, RETAIN),
        (flags.will, WILL),
        (flags.clean_session, CLEAN_SESSION),
    ] {
        if set {
            b |= bit;
        }
    }
    b & uses
}
