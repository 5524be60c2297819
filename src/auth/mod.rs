//! Authentication and authorization data: password files (`password_file`) and access
//! control lists (`acl_file`) in mosquitto's formats, and where each applies (the whole
//! broker, or each listener with `per_listener_settings true`).
//!
//! Pure: the configuration loader reads the files and hands their text to the parsers here;
//! the engine gets the parsed tables and checks CONNECT, SUBSCRIBE, PUBLISH and delivery
//! against them. Nothing here reads a file, a socket or a clock, or logs.

pub mod acl;
pub mod password;

pub use acl::{AclFile, ClientAcl};
pub use password::PasswordFile;

/// The authentication and access settings of the broker or of one listener.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Security {
    /// Whether clients without a user name may connect. Without `per_listener_settings`
    /// the broker's value is [`crate::engine::limits::Limits::allow_anonymous`] and this one
    /// is not used.
    pub allow_anonymous: bool,
    /// `password_file`: its path and users; a CONNECT with a user name must match it.
    pub password_file: Option<(String, PasswordFile)>,
    /// `acl_file`: its path and rules; without one every topic is open to every client.
    pub acl_file: Option<(String, AclFile)>,
}

/// Where the security settings apply.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecurityConfig {
    /// `per_listener_settings`: each listener has its own settings.
    pub per_listener_settings: bool,
    /// The broker's settings, when not per listener.
    pub global: Security,
    /// With `per_listener_settings`: each listener's settings, by listener index (as in
    /// the configuration's listener list); empty otherwise.
    pub listeners: Vec<Security>,
}
