//! Building rustls configurations: a listener's `ServerConfig` from its [`TlsConfig`]
//! (certificate chain, key, client-certificate roots, versions, cipher suites and ALPN), and
//! the `ClientConfig` of an outgoing connection from its [`BridgeTls`] (roots, client
//! certificate, how strictly the remote broker is checked, ALPN).
//!
//! Runs at start-up and on reload, never on the data path. It reads the certificate files
//! the configuration names and nothing else, and must never log: every failure comes back as
//! an error whose text names the file or the setting at fault.

use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{ring, CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, SignatureScheme};
use rustls::{CipherSuite, RootCertStore, ServerConfig, SupportedCipherSuite};

use crate::config::bridge::BridgeTls;
use crate::config::{TlsConfig, TlsVersion};

/// ALPN name of MQTT (IANA registry). Clients that send no ALPN are served as well.
const ALPN_MQTT: &[u8] = b"mqtt";
/// Browsers offer `http/1.1` (and `h2`) when opening a secure WebSocket; a WebSocket
/// listener must agree to it or rustls refuses the handshake.
const ALPN_HTTP11: &[u8] = b"http/1.1";

/// Suite names accepted in `ciphers` (OpenSSL names, as mosquitto takes them) and
/// `ciphers_tls13` (IANA names), for the suites the ring provider implements. The IANA names
/// of the TLS 1.2 suites are accepted too, so either spelling works.
const SUITE_NAMES: &[(&str, CipherSuite)] = &[
    (
        "TLS_AES_128_GCM_SHA256",
        CipherSuite::TLS13_AES_128_GCM_SHA256,
    ),
    (
        "TLS_AES_256_GCM_SHA384",
        CipherSuite::TLS13_AES_256_GCM_SHA384,
    ),
    (
        "TLS_CHACHA20_POLY1305_SHA256",
        CipherSuite::TLS13_CHACHA20_POLY1305_SHA256,
    ),
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
    (
        "ECDHE-RSA-AES128-GCM-SHA256",
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "ECDHE-RSA-AES256-GCM-SHA384",
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "ECDHE-RSA-CHACHA20-POLY1305",
        CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
];

/// Which of the two suite lists a name belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    Tls12,
    Tls13,
}

fn family(suite: &SupportedCipherSuite) -> Family {
    match suite {
        SupportedCipherSuite::Tls13(_) => Family::Tls13,
        SupportedCipherSuite::Tls12(_) => Family::Tls12,
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

/// Builds the server configuration of a TLS listener. `websockets` selects the ALPN names a
/// browser needs. Every failure names the file or setting at fault.
pub fn server_config(tls: &TlsConfig, websockets: bool) -> io::Result<Arc<ServerConfig>> {
    let provider = Arc::new(provider(tls)?);
    let versions: &[&rustls::SupportedProtocolVersion] = match tls.tls_version {
        Some(TlsVersion::Tls13) => &[&rustls::version::TLS13],
        Some(TlsVersion::Tls12) | None => &[&rustls::version::TLS12, &rustls::version::TLS13],
    };
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(versions)
        .map_err(|e| invalid(format!("TLS settings rejected: {e}")))?;
    let roots = client_roots(tls)?;
    let builder = match roots {
        None => {
            if tls.require_certificate {
                return Err(invalid(
                    "require_certificate needs cafile or capath".to_owned(),
                ));
            }
            if tls.use_identity_as_username || tls.use_subject_as_username {
                return Err(invalid(
                    "use_identity_as_username/use_subject_as_username need cafile or capath"
                        .to_owned(),
                ));
            }
            builder.with_no_client_auth()
        }
        Some(roots) => {
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider));
            // A listener that takes user names from certificates admits no client without
            // one, as mosquitto refuses such clients.
            let identity = tls.use_identity_as_username || tls.use_subject_as_username;
            let verifier = if tls.require_certificate || identity {
                verifier
            } else {
                verifier.allow_unauthenticated()
            };
            let verifier = verifier
                .build()
                .map_err(|e| invalid(format!("client certificate roots rejected: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let chain = certificates(&tls.certfile)?;
    let key = private_key(&tls.keyfile)?;
    let mut config = builder.with_single_cert(chain, key).map_err(|e| {
        invalid(format!(
            "{} / {}: certificate and key rejected: {e}",
            tls.certfile.display(),
            tls.keyfile.display()
        ))
    })?;
    config.alpn_protocols = if websockets {
        vec![ALPN_HTTP11.to_vec()]
    } else {
        vec![ALPN_MQTT.to_vec()]
    };
    Ok(Arc::new(config))
}

/// The ring provider restricted to the configured suites. A list that is not given keeps
/// every suite of its TLS version.
fn provider(tls: &TlsConfig) -> io::Result<CryptoProvider> {
    let mut provider = ring::default_provider();
    let mut keep: Vec<SupportedCipherSuite> = Vec::new();
    for (wanted, list, setting) in [
        (Family::Tls12, tls.ciphers.as_deref(), "ciphers"),
        (Family::Tls13, tls.ciphers_tls13.as_deref(), "ciphers_tls13"),
    ] {
        let all = provider
            .cipher_suites
            .iter()
            .filter(|s| family(s) == wanted);
        let Some(list) = list else {
            keep.extend(all);
            continue;
        };
        for name in list
            .split([':', ',', ' '])
            .map(str::trim)
            .filter(|n| !n.is_empty())
        {
            let suite = SUITE_NAMES
                .iter()
                .find(|(known, _)| known.eq_ignore_ascii_case(name))
                .and_then(|(_, id)| {
                    provider
                        .cipher_suites
                        .iter()
                        .find(|s| s.suite() == *id && family(s) == wanted)
                })
                .ok_or_else(|| invalid(format!("{setting}: unknown cipher suite \"{name}\"")))?;
            if !keep.contains(suite) {
                keep.push(*suite);
            }
        }
    }
    provider.cipher_suites = keep;
    Ok(provider)
}

/// The certificates of a PEM file; an empty file is an error.
pub(crate) fn certificates(path: &Path) -> io::Result<Vec<CertificateDer<'static>>> {
    let bad = |e: rustls::pki_types::pem::Error| {
        invalid(format!("{}: cannot read certificates: {e}", path.display()))
    };
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(bad)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(bad)?;
    if chain.is_empty() {
        return Err(invalid(format!("{}: no certificate found", path.display())));
    }
    Ok(chain)
}

/// The private key of a PEM file (PKCS#8, SEC1 or PKCS#1).
fn private_key(path: &Path) -> io::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| {
        invalid(format!(
            "{}: cannot read a private key: {e}",
            path.display()
        ))
    })
}

/// The CA certificates client certificates must chain to, from `cafile` and `capath`;
/// `None` when neither is set.
pub(crate) fn client_roots(tls: &TlsConfig) -> io::Result<Option<RootCertStore>> {
    roots(tls.cafile.as_deref(), tls.capath.as_deref())
}

/// The CA certificates of a PEM file and of the certificate files of a directory; `None`
/// when neither is given.
fn roots(cafile: Option<&Path>, capath: Option<&Path>) -> io::Result<Option<RootCertStore>> {
    if cafile.is_none() && capath.is_none() {
        return Ok(None);
    }
    let mut roots = RootCertStore::empty();
    if let Some(cafile) = cafile {
        for cert in certificates(cafile)? {
            roots
                .add(cert)
                .map_err(|e| invalid(format!("{}: bad CA certificate: {e}", cafile.display())))?;
        }
    }
    if let Some(capath) = capath {
        let entries = capath
            .read_dir()
            .map_err(|e| invalid(format!("{}: cannot list: {e}", capath.display())))?;
        let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        // Sorted, so the same directory always gives the same store.
        paths.sort();
        for path in paths.iter().filter(|p| p.is_file()) {
            // A CA directory often holds other files (hash links' targets, READMEs, CRLs):
            // only what parses as certificates counts, as OpenSSL looks only at what it needs.
            let Ok(certs) = certificates(path) else {
                continue;
            };
            roots.add_parsable_certificates(certs);
        }
    }
    if roots.is_empty() {
        let file = cafile.or(capath);
        let name = file.map(|p| p.display().to_string()).unwrap_or_default();
        return Err(invalid(format!("{name}: no usable CA certificate")));
    }
    Ok(Some(roots))
}

/// Builds the client configuration of an outgoing TLS connection: the ring provider with
/// TLS 1.2 and 1.3, the remote broker checked against `cafile`/`capath` (see
/// [`BridgeTls::insecure`]), an optional client certificate and ALPN name.
pub fn client_config(settings: &BridgeTls) -> io::Result<Arc<ClientConfig>> {
    let provider = Arc::new(ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])
        .map_err(|e| invalid(format!("TLS settings rejected: {e}")))?;
    let roots = roots(settings.cafile.as_deref(), settings.capath.as_deref())?;
    let builder = match (roots, settings.insecure) {
        (None, false) => {
            return Err(invalid(
                "bridge_cafile or bridge_capath is needed to verify the remote broker".to_owned(),
            ))
        }
        (Some(roots), false) => builder.with_root_certificates(roots),
        (roots, true) => {
            let chain = match roots {
                Some(roots) => Some(
                    WebPkiServerVerifier::builder_with_provider(
                        Arc::new(roots),
                        Arc::clone(&provider),
                    )
                    .build()
                    .map_err(|e| invalid(format!("CA certificates rejected: {e}")))?,
                ),
                None => None,
            };
            let verifier = LaxVerifier {
                chain,
                algorithms: provider.signature_verification_algorithms,
            };
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
        }
    };
    let mut config = match (&settings.certfile, &settings.keyfile) {
        (None, None) => builder.with_no_client_auth(),
        (Some(certfile), Some(keyfile)) => {
            let chain = certificates(certfile)?;
            let key = private_key(keyfile)?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                invalid(format!(
                    "{} / {}: certificate and key rejected: {e}",
                    certfile.display(),
                    keyfile.display()
                ))
            })?
        }
        _ => {
            return Err(invalid(
                "bridge_certfile and bridge_keyfile must be given together".to_owned(),
            ))
        }
    };
    config.alpn_protocols = match &settings.alpn {
        Some(name) if name.is_empty() => return Err(invalid("empty ALPN name".to_owned())),
        Some(name) => vec![name.as_bytes().to_vec()],
        None => Vec::new(),
    };
    Ok(Arc::new(config))
}

/// The server certificate check of an `insecure` connection. With roots (`chain`), the
/// certificate must chain to them but may name another host; without, any certificate is
/// taken. Handshake signatures are verified either way, so the peer must hold the key of the
/// certificate it shows.
#[derive(Debug)]
struct LaxVerifier {
    chain: Option<Arc<WebPkiServerVerifier>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for LaxVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        // The chain is checked before the name, so a name error means the chain is good.
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::path::PathBuf;

    fn testdata(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/transport/testdata")
            .join(name)
    }

    pub(crate) fn plain() -> TlsConfig {
        TlsConfig {
            certfile: testdata("server.pem"),
            keyfile: testdata("server.key"),
            cafile: None,
            capath: None,
            require_certificate: false,
            use_identity_as_username: false,
            use_subject_as_username: false,
            tls_version: None,
            ciphers: None,
            ciphers_tls13: None,
        }
    }

    fn err(tls: &TlsConfig) -> String {
        match server_config(tls, false) {
            Ok(_) => panic!("accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn builds_from_pem_files() {
        let config = server_config(&plain(), false).unwrap();
        assert_eq!(config.alpn_protocols, vec![b"mqtt".to_vec()]);
        let ws = server_config(&plain(), true).unwrap();
        assert_eq!(ws.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }

    #[test]
    fn keys_in_pkcs8_sec1_and_pkcs1_form_and_chains() {
        // The same EC key in SEC1 form ("BEGIN EC PRIVATE KEY").
        let mut tls = plain();
        tls.keyfile = testdata("server-sec1.key");
        assert!(server_config(&tls, false).is_ok());
        // An RSA certificate with a PKCS#1 key ("BEGIN RSA PRIVATE KEY").
        let mut tls = plain();
        tls.certfile = testdata("rsa.pem");
        tls.keyfile = testdata("rsa-pkcs1.key");
        assert!(server_config(&tls, false).is_ok());
        // A chain: the server certificate followed by its CA.
        let mut tls = plain();
        tls.certfile = testdata("chain.pem");
        assert_eq!(certificates(&tls.certfile).unwrap().len(), 2);
        assert!(server_config(&tls, false).is_ok());
    }

    #[test]
    fn missing_files_are_named() {
        let mut tls = plain();
        tls.certfile = testdata("nope.pem");
        assert!(err(&tls).contains("nope.pem"), "{}", err(&tls));
        let mut tls = plain();
        tls.keyfile = testdata("nope.key");
        assert!(err(&tls).contains("nope.key"), "{}", err(&tls));
        let mut tls = plain();
        // A certificate file holds no key.
        tls.keyfile = testdata("server.pem");
        assert!(err(&tls).contains("server.pem"), "{}", err(&tls));
        let mut tls = plain();
        tls.cafile = Some(testdata("server.key"));
        assert!(err(&tls).contains("server.key"), "{}", err(&tls));
    }

    #[test]
    fn mismatched_key_is_refused() {
        let mut tls = plain();
        tls.keyfile = testdata("client.key");
        assert!(err(&tls).contains("rejected"), "{}", err(&tls));
    }

    #[test]
    fn cipher_names_map_to_suites() {
        let mut tls = plain();
        tls.ciphers = Some("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384".into());
        tls.ciphers_tls13 = Some("TLS_AES_256_GCM_SHA384".into());
        let p = provider(&tls).unwrap();
        let ids: Vec<_> = p.cipher_suites.iter().map(|s| s.suite()).collect();
        assert_eq!(
            ids,
            vec![
                CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
                CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
                CipherSuite::TLS13_AES_256_GCM_SHA384,
            ]
        );
        assert!(server_config(&tls, false).is_ok());
    }

    #[test]
    fn unknown_cipher_is_named() {
        let mut tls = plain();
        tls.ciphers = Some("ECDHE-ECDSA-AES128-GCM-SHA256:RC4-MD5".into());
        assert!(err(&tls).contains("\"RC4-MD5\""), "{}", err(&tls));
        let mut tls = plain();
        // A TLS 1.2 name in the TLS 1.3 list is not a TLS 1.3 suite.
        tls.ciphers_tls13 = Some("ECDHE-ECDSA-AES128-GCM-SHA256".into());
        assert!(err(&tls).contains("ciphers_tls13"), "{}", err(&tls));
    }

    #[test]
    fn client_auth_settings() {
        let mut tls = plain();
        tls.require_certificate = true;
        assert!(err(&tls).contains("cafile"));
        tls.cafile = Some(testdata("ca.pem"));
        assert!(server_config(&tls, false).is_ok());
        tls.cafile = None;
        tls.capath = Some(testdata(""));
        assert!(server_config(&tls, false).is_ok());
        let mut tls = plain();
        tls.use_identity_as_username = true;
        assert!(err(&tls).contains("cafile"));
    }
}
