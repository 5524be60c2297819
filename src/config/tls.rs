//! The TLS and WebSocket options of a listener, and its `protocol`: collected line by line
//! while a listener block is parsed, then checked together when the configuration is
//! complete, because mosquitto lets them come in any order. Pure: no files are read here.

use std::path::PathBuf;

use super::{ListenerConfig, ListenerProtocol, TlsConfig, TlsVersion};

/// The listener options this module parses.
pub(super) const OPTIONS: &[&str] = &[
    "certfile",
    "keyfile",
    "cafile",
    "capath",
    "require_certificate",
    "use_identity_as_username",
    "use_subject_as_username",
    "tls_version",
    "ciphers",
    "ciphers_tls1.3",
];

/// Where an option was set, for error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Place {
    key: &'static str,
    file: String,
    line: usize,
}

/// A listener's TLS options as met so far.
#[derive(Clone, Debug, Default)]
pub(super) struct TlsDraft {
    certfile: Option<String>,
    keyfile: Option<String>,
    cafile: Option<String>,
    capath: Option<String>,
    require_certificate: bool,
    use_identity_as_username: bool,
    use_subject_as_username: bool,
    tls_version: Option<TlsVersion>,
    ciphers: Option<String>,
    ciphers_tls13: Option<String>,
    places: Vec<Place>,
}

impl TlsDraft {
    /// Records one option line. `key` is one of [`OPTIONS`].
    pub(super) fn set(
        &mut self,
        key: &str,
        value: &str,
        file: &str,
        line: usize,
    ) -> Result<(), String> {
        let Some(&name) = OPTIONS.iter().find(|o| **o == key) else {
            return Err(format!("unknown option \"{key}\""));
        };
        let text = || Some(value.to_owned());
        match name {
            "certfile" => self.certfile = text(),
            "keyfile" => self.keyfile = text(),
            "cafile" => self.cafile = text(),
            "capath" => self.capath = text(),
            "require_certificate" => self.require_certificate = flag(name, value)?,
            "use_identity_as_username" => self.use_identity_as_username = flag(name, value)?,
            "use_subject_as_username" => self.use_subject_as_username = flag(name, value)?,
            "tls_version" => {
                self.tls_version = Some(match value {
                    "tlsv1.2" => TlsVersion::Tls12,
                    "tlsv1.3" => TlsVersion::Tls13,
                    "tlsv1.1" | "tlsv1" => {
                        return Err(format!(
                            "tls_version: {value} is not supported: culex requires TLS 1.2 or \
                             later"
                        ))
                    }
                    _ => {
                        return Err(format!(
                            "tls_version: expected tlsv1.2 or tlsv1.3, got \"{value}\""
                        ))
                    }
                })
            }
            "ciphers" => self.ciphers = text(),
            _ => self.ciphers_tls13 = text(),
        }
        self.places.retain(|p| p.key != name);
        self.places.push(Place {
            key: name,
            file: file.to_owned(),
            line,
        });
        Ok(())
    }

    /// Checks the options together. `Ok(None)`: the listener has no TLS.
    /// `Err((file, line, message))` names the line at fault (`listener_*` when the problem is
    /// the listener block as a whole).
    pub(super) fn finish(
        self,
        listener_file: &str,
        listener_line: usize,
    ) -> Result<Option<TlsConfig>, (String, usize, String)> {
        let at = |p: &Place, message: String| (p.file.clone(), p.line, message);
        let (certfile, keyfile) = match (self.certfile, self.keyfile) {
            (Some(c), Some(k)) => (c, k),
            (None, None) => {
                return match self.places.first() {
                    None => Ok(None),
                    Some(p) => Err(at(p, format!("{}: requires certfile and keyfile", p.key))),
                };
            }
            (Some(_), None) | (None, Some(_)) => {
                return Err((
                    listener_file.to_owned(),
                    listener_line,
                    "listener: certfile and keyfile must be given together".to_owned(),
                ))
            }
        };
        let place = |key: &str| self.places.iter().find(|p| p.key == key);
        if self.require_certificate && self.cafile.is_none() && self.capath.is_none() {
            if let Some(p) = place("require_certificate") {
                return Err(at(
                    p,
                    "require_certificate: requires cafile or capath".to_owned(),
                ));
            }
        }
        if self.use_identity_as_username && self.use_subject_as_username {
            if let Some(p) = place("use_subject_as_username") {
                let message = "use_subject_as_username: cannot be combined with \
                               use_identity_as_username"
                    .to_owned();
                return Err(at(p, message));
            }
        }
        Ok(Some(TlsConfig {
            certfile: PathBuf::from(certfile),
            keyfile: PathBuf::from(keyfile),
            cafile: self.cafile.map(PathBuf::from),
            capath: self.capath.map(PathBuf::from),
            require_certificate: self.require_certificate,
            use_identity_as_username: self.use_identity_as_username,
            use_subject_as_username: self.use_subject_as_username,
            tls_version: self.tls_version,
            ciphers: self.ciphers,
            ciphers_tls13: self.ciphers_tls13,
        }))
    }
}

fn flag(key: &str, value: &str) -> Result<bool, String> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("{key}: expected true or false, got \"{value}\"")),
    }
}

/// `protocol` and `mount_point`.
pub(super) fn transport_option(
    target: &mut ListenerConfig,
    key: &str,
    value: &str,
) -> Result<(), String> {
    match key {
        "protocol" => {
            target.protocol = match value {
                "mqtt" => ListenerProtocol::Mqtt,
                "websockets" => ListenerProtocol::WebSockets,
                "mqttsn" => ListenerProtocol::MqttSn,
                "http" => ListenerProtocol::Http,
                _ => {
                    return Err(format!(
                        "protocol: expected mqtt, websockets, mqttsn or http, got \"{value}\""
                    ))
                }
            };
        }
        "mount_point" => {
            if value.contains(['+', '#']) {
                return Err(format!(
                    "mount_point: must not contain + or #, got \"{value}\""
                ));
            }
            target.mount_point = Some(value.to_owned());
        }
        _ => return Err(format!("unknown option \"{key}\"")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(lines: &[(&str, &str)]) -> TlsDraft {
        let mut d = TlsDraft::default();
        for (i, (k, v)) in lines.iter().enumerate() {
            d.set(k, v, "c.conf", i + 2).expect("valid option");
        }
        d
    }

    #[test]
    fn no_tls_options_means_no_tls() {
        assert_eq!(TlsDraft::default().finish("c.conf", 1), Ok(None));
    }

    #[test]
    fn certfile_and_keyfile_make_a_tls_listener() {
        let tls = draft(&[
            ("certfile", "server.crt"),
            ("keyfile", "server.key"),
            ("cafile", "ca.crt"),
            ("require_certificate", "true"),
            ("use_identity_as_username", "true"),
            ("tls_version", "tlsv1.3"),
            ("ciphers", "ECDHE-ECDSA-AES128-GCM-SHA256"),
            ("ciphers_tls1.3", "TLS_AES_128_GCM_SHA256"),
        ])
        .finish("c.conf", 1)
        .expect("valid")
        .expect("tls");
        assert_eq!(tls.certfile, PathBuf::from("server.crt"));
        assert_eq!(tls.cafile, Some(PathBuf::from("ca.crt")));
        assert!(tls.require_certificate && tls.use_identity_as_username);
        assert_eq!(tls.tls_version, Some(TlsVersion::Tls13));
        assert_eq!(tls.ciphers_tls13.as_deref(), Some("TLS_AES_128_GCM_SHA256"));
    }

    #[test]
    fn certfile_without_keyfile_is_refused_at_the_listener() {
        let e = draft(&[("certfile", "s.crt")])
            .finish("c.conf", 1)
            .unwrap_err();
        assert_eq!(e.1, 1);
        assert!(e.2.contains("certfile and keyfile must be given together"));
    }

    #[test]
    fn tls_options_without_certificates_name_their_line() {
        let e = draft(&[("cafile", "ca.crt")])
            .finish("c.conf", 1)
            .unwrap_err();
        assert_eq!(
            e,
            (
                "c.conf".to_owned(),
                2,
                "cafile: requires certfile and keyfile".into()
            )
        );
    }

    #[test]
    fn require_certificate_needs_a_ca() {
        let e = draft(&[
            ("certfile", "s"),
            ("keyfile", "k"),
            ("require_certificate", "true"),
        ])
        .finish("c.conf", 1)
        .unwrap_err();
        assert_eq!(e.1, 4);
        assert_eq!(e.2, "require_certificate: requires cafile or capath");
    }

    #[test]
    fn identity_and_subject_exclude_each_other() {
        let e = draft(&[
            ("certfile", "s"),
            ("keyfile", "k"),
            ("use_identity_as_username", "true"),
            ("use_subject_as_username", "true"),
        ])
        .finish("c.conf", 1)
        .unwrap_err();
        assert_eq!(e.1, 5);
    }

    #[test]
    fn bad_values_are_refused() {
        let mut d = TlsDraft::default();
        assert!(d
            .set("tls_version", "tlsv1.1", "c", 1)
            .unwrap_err()
            .contains("TLS 1.2"));
        assert!(d
            .set("tls_version", "ssl3", "c", 1)
            .unwrap_err()
            .contains("expected"));
        assert!(d
            .set("require_certificate", "yes", "c", 1)
            .unwrap_err()
            .contains("true or"));
    }

    #[test]
    fn protocol_and_mount_point() {
        let mut l = ListenerConfig::new(8083, None);
        transport_option(&mut l, "protocol", "websockets").expect("websockets");
        assert_eq!(l.protocol, ListenerProtocol::WebSockets);
        transport_option(&mut l, "protocol", "mqttsn").expect("mqttsn");
        assert_eq!(l.protocol, ListenerProtocol::MqttSn);
        transport_option(&mut l, "mount_point", "site1/").expect("mount");
        assert_eq!(l.mount_point.as_deref(), Some("site1/"));
        assert!(transport_option(&mut l, "mount_point", "a/#").is_err());
        transport_option(&mut l, "protocol", "http").expect("http");
        assert_eq!(l.protocol, ListenerProtocol::Http);
        assert!(transport_option(&mut l, "protocol", "https").is_err());
    }
}
