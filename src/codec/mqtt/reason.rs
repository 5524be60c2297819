//! MQTT 5.0 reason codes (spec 2.4), with their 3.1.1 return-code equivalents.
//!
//! One table: the v5 value, the 3.1.1 CONNACK return code where one exists, and the text used
//! in logs. Several v5 names share a value (0x00 is Success, Normal disconnection and Granted
//! QoS 0); the enum carries the value once and the packet decides how to read it.

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum ReasonCode {
    /// Success, Normal disconnection, Granted QoS 0.
    Success = 0x00,
    GrantedQos1 = 0x01,
    GrantedQos2 = 0x02,
    DisconnectWithWill = 0x04,
    NoMatchingSubscribers = 0x10,
    NoSubscriptionExisted = 0x11,
    ContinueAuthentication = 0x18,
    ReAuthenticate = 0x19,
    UnspecifiedError = 0x80,
    MalformedPacket = 0x81,
    ProtocolError = 0x82,
    ImplementationSpecificError = 0x83,
    UnsupportedProtocolVersion = 0x84,
    ClientIdentifierNotValid = 0x85,
    BadUserNameOrPassword = 0x86,
    NotAuthorized = 0x87,
    ServerUnavailable = 0x88,
    ServerBusy = 0x89,
    Banned = 0x8A,
    ServerShuttingDown = 0x8B,
    BadAuthenticationMethod = 0x8C,
    KeepAliveTimeout = 0x8D,
    SessionTakenOver = 0x8E,
    TopicFilterInvalid = 0x8F,
    TopicNameInvalid = 0x90,
    PacketIdentifierInUse = 0x91,
    PacketIdentifierNotFound = 0x92,
    ReceiveMaximumExceeded = 0x93,
    TopicAliasInvalid = 0x94,
    PacketTooLarge = 0x95,
    MessageRateTooHigh = 0x96,
    QuotaExceeded = 0x97,
    AdministrativeAction = 0x98,
    PayloadFormatInvalid = 0x99,
    RetainNotSupported = 0x9A,
    QosNotSupported = 0x9B,
    UseAnotherServer = 0x9C,
    ServerMoved = 0x9D,
    SharedSubscriptionsNotSupported = 0x9E,
    ConnectionRateExceeded = 0x9F,
    MaximumConnectTime = 0xA0,
    SubscriptionIdentifiersNotSupported = 0xA1,
    WildcardSubscriptionsNotSupported = 0xA2,
}

impl ReasonCode {
    /// Every code, in value order.
    pub const ALL: [Self; 43] = [
        Self::Success,
        Self::GrantedQos1,
        Self::GrantedQos2,
        Self::DisconnectWithWill,
        Self::NoMatchingSubscribers,
        Self::NoSubscriptionExisted,
        Self::ContinueAuthentication,
        Self::ReAuthenticate,
        Self::UnspecifiedError,
        Self::MalformedPacket,
        Self::ProtocolError,
        Self::ImplementationSpecificError,
        Self::UnsupportedProtocolVersion,
        Self::ClientIdentifierNotValid,
        Self::BadUserNameOrPassword,
        Self::NotAuthorized,
        Self::ServerUnavailable,
        Self::ServerBusy,
        Self::Banned,
        Self::ServerShuttingDown,
        Self::BadAuthenticationMethod,
        Self::KeepAliveTimeout,
        Self::SessionTakenOver,
        Self::TopicFilterInvalid,
        Self::TopicNameInvalid,
        Self::PacketIdentifierInUse,
        Self::PacketIdentifierNotFound,
        Self::ReceiveMaximumExceeded,
        Self::TopicAliasInvalid,
        Self::PacketTooLarge,
        Self::MessageRateTooHigh,
        Self::QuotaExceeded,
        Self::AdministrativeAction,
        Self::PayloadFormatInvalid,
        Self::RetainNotSupported,
        Self::QosNotSupported,
        Self::UseAnotherServer,
        Self::ServerMoved,
        Self::SharedSubscriptionsNotSupported,
        Self::ConnectionRateExceeded,
        Self::MaximumConnectTime,
        Self::SubscriptionIdentifiersNotSupported,
        Self::WildcardSubscriptionsNotSupported,
    ];

    pub fn from_u8(v: u8) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| *c as u8 == v)
    }

    pub fn is_error(self) -> bool {
        self as u8 >= 0x80
    }

    /// The MQTT 3.1.1 CONNACK return code for this reason (spec 3.1.1 table 3.1).
    pub fn v3_connack(self) -> u8 {
        match self {
            Self::Success => 0,
            Self::UnsupportedProtocolVersion => 1,
            Self::ClientIdentifierNotValid => 2,
            Self::ServerUnavailable | Self::ServerBusy | Self::ServerShuttingDown => 3,
            Self::BadUserNameOrPassword | Self::BadAuthenticationMethod => 4,
            Self::NotAuthorized | Self::Banned => 5,
            _ => 3,
        }
    }

    /// The v5 reason for a 3.1.1 CONNACK return code (decoding a 3.1.1 CONNACK).
    pub fn from_v3_connack(v: u8) -> Option<Self> {
        Some(match v {
            0 => Self::Success,
            1 => Self::UnsupportedProtocolVersion,
            2 => Self::ClientIdentifierNotValid,
            3 => Self::ServerUnavailable,
            4 => Self::BadUserNameOrPassword,
            5 => Self::NotAuthorized,
            _ => return None,
        })
    }

    /// The granted-QoS code for a subscription.
    pub fn granted(qos: super::QoS) -> Self {
        match qos {
            super::QoS::AtMostOnce => Self::Success,
            super::QoS::AtLeastOnce => Self::GrantedQos1,
            super::QoS::ExactlyOnce => Self::GrantedQos2,
        }
    }

    /// Whether a v5 packet of kind `packet` may carry this code (v5 3.2.2.2, 3.4.2.1,
    /// 3.5.2.1, 3.6.2.1, 3.7.2.1, 3.9.3, 3.11.3, 3.14.2.1, 3.15.2.1).
    pub fn allowed_in(self, packet: ReasonPacket) -> bool {
        match packet {
            ReasonPacket::ConnAck => matches!(
                self,
                Self::Success
                    | Self::UnspecifiedError
                    | Self::MalformedPacket
                    | Self::ProtocolError
                    | Self::ImplementationSpecificError
                    | Self::UnsupportedProtocolVersion
                    | Self::ClientIdentifierNotValid
                    | Self::BadUserNameOrPassword
                    | Self::NotAuthorized
                    | Self::ServerUnavailable
                    | Self::ServerBusy
                    | Self::Banned
                    | Self::BadAuthenticationMethod
                    | Self::TopicNameInvalid
                    | Self::PacketTooLarge
                    | Self::QuotaExceeded
                    | Self::PayloadFormatInvalid
                    | Self::RetainNotSupported
                    | Self::QosNotSupported
                    | Self::UseAnotherServer
                    | Self::ServerMoved
                    | Self::ConnectionRateExceeded
            ),
            ReasonPacket::PubAck => matches!(
                self,
                Self::Success
                    | Self::NoMatchingSubscribers
                    | Self::UnspecifiedError
                    | Self::ImplementationSpecificError
                    | Self::NotAuthorized
                    | Self::TopicNameInvalid
                    | Self::PacketIdentifierInUse
                    | Self::QuotaExceeded
                    | Self::PayloadFormatInvalid
            ),
            ReasonPacket::PubRel => matches!(self, Self::Success | Self::PacketIdentifierNotFound),
            ReasonPacket::SubAck => matches!(
                self,
                Self::Success
                    | Self::GrantedQos1
                    | Self::GrantedQos2
                    | Self::UnspecifiedError
                    | Self::ImplementationSpecificError
                    | Self::NotAuthorized
                    | Self::TopicFilterInvalid
                    | Self::PacketIdentifierInUse
                    | Self::QuotaExceeded
                    | Self::SharedSubscriptionsNotSupported
                    | Self::SubscriptionIdentifiersNotSupported
                    | Self::WildcardSubscriptionsNotSupported
            ),
            ReasonPacket::UnsubAck => matches!(
                self,
                Self::Success
                    | Self::NoSubscriptionExisted
                    | Self::UnspecifiedError
                    | Self::ImplementationSpecificError
                    | Self::NotAuthorized
                    | Self::TopicFilterInvalid
                    | Self::PacketIdentifierInUse
            ),
            ReasonPacket::Disconnect => matches!(
                self,
                Self::Success
                    | Self::DisconnectWithWill
                    | Self::UnspecifiedError
                    | Self::MalformedPacket
                    | Self::ProtocolError
                    | Self::ImplementationSpecificError
                    | Self::NotAuthorized
                    | Self::ServerBusy
                    | Self::ServerShuttingDown
                    | Self::KeepAliveTimeout
                    | Self::SessionTakenOver
                    | Self::TopicFilterInvalid
                    | Self::TopicNameInvalid
                    | Self::ReceiveMaximumExceeded
                    | Self::TopicAliasInvalid
                    | Self::PacketTooLarge
                    | Self::MessageRateTooHigh
                    | Self::QuotaExceeded
                    | Self::AdministrativeAction
                    | Self::PayloadFormatInvalid
                    | Self::RetainNotSupported
                    | Self::QosNotSupported
                    | Self::UseAnotherServer
                    | Self::ServerMoved
                    | Self::SharedSubscriptionsNotSupported
                    | Self::ConnectionRateExceeded
                    | Self::MaximumConnectTime
                    | Self::SubscriptionIdentifiersNotSupported
                    | Self::WildcardSubscriptionsNotSupported
            ),
            ReasonPacket::Auth => {
                matches!(
                    self,
                    Self::Success | Self::ContinueAuthentication | Self::ReAuthenticate
                )
            }
        }
    }

    /// Short text for logs and reason strings.
    pub fn text(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::GrantedQos1 => "granted QoS 1",
            Self::GrantedQos2 => "granted QoS 2",
            Self::DisconnectWithWill => "disconnect with will message",
            Self::NoMatchingSubscribers => "no matching subscribers",
            Self::NoSubscriptionExisted => "no subscription existed",
            Self::ContinueAuthentication => "continue authentication",
            Self::ReAuthenticate => "re-authenticate",
            Self::UnspecifiedError => "unspecified error",
            Self::MalformedPacket => "malformed packet",
            Self::ProtocolError => "protocol error",
            Self::ImplementationSpecificError => "implementation specific error",
            Self::UnsupportedProtocolVersion => "unsupported protocol version",
            Self::ClientIdentifierNotValid => "client identifier not valid",
            Self::BadUserNameOrPassword => "bad user name or password",
            Self::NotAuthorized => "not authorized",
            Self::ServerUnavailable => "server unavailable",
            Self::ServerBusy => "server busy",
            Self::Banned => "banned",
            Self::ServerShuttingDown => "server shutting down",
            Self::BadAuthenticationMethod => "bad authentication method",
            Self::KeepAliveTimeout => "keep alive timeout",
            Self::SessionTakenOver => "session taken over",
            Self::TopicFilterInvalid => "topic filter invalid",
            Self::TopicNameInvalid => "topic name invalid",
            Self::PacketIdentifierInUse => "packet identifier in use",
            Self::PacketIdentifierNotFound => "packet identifier not found",
            Self::ReceiveMaximumExceeded => "receive maximum exceeded",
            Self::TopicAliasInvalid => "topic alias invalid",
            Self::PacketTooLarge => "packet too large",
            Self::MessageRateTooHigh => "message rate too high",
            Self::QuotaExceeded => "quota exceeded",
            Self::AdministrativeAction => "administrative action",
            Self::PayloadFormatInvalid => "payload format invalid",
            Self::RetainNotSupported => "retain not supported",
            Self::QosNotSupported => "QoS not supported",
            Self::UseAnotherServer => "use another server",
            Self::ServerMoved => "server moved",
            Self::SharedSubscriptionsNotSupported => "shared subscriptions not supported",
            Self::ConnectionRateExceeded => "connection rate exceeded",
            Self::MaximumConnectTime => "maximum connect time",
            Self::SubscriptionIdentifiersNotSupported => "subscription identifiers not supported",
            Self::WildcardSubscriptionsNotSupported => "wildcard subscriptions not supported",
        }
    }
}

/// The v5 packets that carry reason codes, each with its own set of allowed codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReasonPacket {
    ConnAck,
    /// PUBACK and PUBREC.
    PubAck,
    /// PUBREL and PUBCOMP.
    PubRel,
    SubAck,
    UnsubAck,
    Disconnect,
    Auth,
}
