//! Building a DTLS listener's configuration: its certificate chain and key, the CA
//! certificates client certificates must chain to, or its pre-shared keys.
//!
//! Runs at start-up and on reload, never on the data path. Certificate files are read through
//! the PEM parser; the pre-shared-key file is read through the function the caller hands in,
//! because only the configuration loader touches the file system. It must never log: every
//! failure is an error whose text names the file or the setting at fault.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rtc_dtls::cipher_suite::CipherSuiteId;
use rtc_dtls::config::{ClientAuthType, ConfigBuilder, HandshakeConfig};
use rtc_dtls::crypto::Certificate;
use rtc_dtls::crypto_provider::providers::RingProvider;
use rtc_dtls::crypto_provider::{
    CryptoAlgorithm, CryptoError, RTCCrypto, RTCCryptoProvider, RTCRandom, SignatureScheme,
    SigningKey,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::RootCertStore;
use x509_cert::der::Decode;
use x509_cert::Certificate as X509Certificate;

use crate::config::TlsConfig;
use crate::transport::tls_config::{certificates, client_roots};

/// How long an established peer may stay silent before its association is dropped. MQTT-SN
/// clients may sleep for long periods; the reactor sets it from the gateway's settings.
pub const DEFAULT_IDLE_TIMEOUT_MS: u64 = 30 * 60 * 1000;

/// How long a peer that proved its address may take to finish its handshake.
pub const DEFAULT_HANDSHAKE_TIMEOUT_MS: u64 = 10 * 1000;

/// Longest pre-shared key accepted, in bytes (OpenSSL's own limit).
pub(super) const PSK_MAX: usize = 256;

/// Suites of a certificate listener, the ones its key cannot sign left out by the crate. The
/// CCM suites are the ones constrained devices tend to implement (RFC 7925).
pub(super) const CERTIFICATE_SUITES: &[CipherSuiteId] = &[
    CipherSuiteId::Tls_Ecdhe_Ecdsa_With_Aes_128_Gcm_Sha256,
    CipherSuiteId::Tls_Ecdhe_Ecdsa_With_Aes_128_Ccm,
    CipherSuiteId::Tls_Ecdhe_Ecdsa_With_Aes_128_Ccm_8,
    CipherSuiteId::Tls_Ecdhe_Ecdsa_With_ChaCha20_Poly1305_Sha256,
    CipherSuiteId::Tls_Ecdhe_Rsa_With_Aes_128_Gcm_Sha256,
    CipherSuiteId::Tls_Ecdhe_Rsa_With_ChaCha20_Poly1305_Sha256,
    CipherSuiteId::Tls_Ecdhe_Ecdsa_With_Aes_256_Cbc_Sha,
    CipherSuiteId::Tls_Ecdhe_Rsa_With_Aes_256_Cbc_Sha,
];

/// Suites of a pre-shared-key listener; the crate offers none unless asked.
pub(super) const PSK_SUITES: &[CipherSuiteId] = &[
    CipherSuiteId::Tls_Psk_With_Aes_128_Gcm_Sha256,
    CipherSuiteId::Tls_Psk_With_Aes_128_Ccm,
    CipherSuiteId::Tls_Psk_With_Aes_128_Ccm_8,
];

/// Reads a whole text file, for the settings that name one. The caller owns file access.
pub type ReadFile<'a> = &'a mut dyn FnMut(&Path) -> io::Result<String>;

/// The credentials of one DTLS listener, built once and shared by all its peers.
#[derive(Clone)]
pub struct DtlsConfig {
    /// Everything but the crypto provider, which is set per peer (see [`Self::handshake_for`]).
    builder: ConfigBuilder,
    provider: Arc<dyn RTCCryptoProvider>,
    /// Milliseconds an established peer may stay silent before it is dropped.
    pub idle_timeout_ms: u64,
    /// Milliseconds a half-open peer has to complete its handshake.
    pub handshake_timeout_ms: u64,
}

impl std::fmt::Debug for DtlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DtlsConfig")
            .field("idle_timeout_ms", &self.idle_timeout_ms)
            .field("handshake_timeout_ms", &self.handshake_timeout_ms)
            .finish_non_exhaustive()
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

/// Builds the configuration of a DTLS listener from its certificate settings or its
/// pre-shared keys, exactly one of the two. `read_file` reads the `psk_file`.
pub fn dtls_config(
    tls: Option<&TlsConfig>,
    psk_file: Option<&Path>,
    psk_hint: Option<&str>,
    read_file: ReadFile<'_>,
) -> io::Result<DtlsConfig> {
    match (tls, psk_file) {
        // A listener holding both would let a client that fails one family in through the
        // other, so the two are never mixed.
        (Some(_), Some(psk)) => Err(invalid(format!(
            "{}: a DTLS listener takes certificates or pre-shared keys, not both",
            psk.display()
        ))),
        (None, None) => Err(invalid(
            "a DTLS listener needs certfile and keyfile, or psk_file".to_owned(),
        )),
        (Some(tls), None) => certificate_config(tls),
        (None, Some(path)) => {
            let text = read_file(path)
                .map_err(|e| invalid(format!("{}: cannot read: {e}", path.display())))?;
            let keys = parse_psk_file(&text, &path.display().to_string())?;
            psk_config(keys, psk_hint)
        }
    }
}

/// A listener with certificates: the server's chain and key, and client certificates
/// requested when a CA is configured.
pub fn certificate_config(tls: &TlsConfig) -> io::Result<DtlsConfig> {
    let provider: Arc<dyn RTCCryptoProvider> = Arc::new(RingProvider::new());
    let roots = client_roots(tls)?;
    let identity = tls.use_identity_as_username || tls.use_subject_as_username;
    let client_auth = match (&roots, tls.require_certificate || identity) {
        (None, true) => {
            return Err(invalid(
                "require_certificate and use_identity_as_username/use_subject_as_username \
                 need cafile or capath"
                    .to_owned(),
            ))
        }
        (None, false) => ClientAuthType::NoClientCert,
        (Some(_), false) => ClientAuthType::VerifyClientCertIfGiven,
        (Some(_), true) => ClientAuthType::RequireAndVerifyClientCert,
    };
    let chain = certificates(&tls.certfile)?;
    let key = signing_key(&tls.keyfile, provider.crypto())?;
    if !key_matches(&chain[0], key.as_ref()) {
        return Err(invalid(format!(
            "{} / {}: certificate and key rejected: the key is not the certificate's",
            tls.certfile.display(),
            tls.keyfile.display()
        )));
    }
    let certificate = Certificate::from_signing_key(chain, key);
    let builder = ConfigBuilder::default()
        .with_certificates(vec![certificate])
        .with_cipher_suites(CERTIFICATE_SUITES.to_vec())
        .with_client_auth(client_auth)
        .with_client_cas(roots.unwrap_or_else(RootCertStore::empty))
        // This setting only governs how a client checks a server's certificate; a server never
        // reads it. Left off, every build would generate a throwaway root certificate.
        .with_insecure_skip_verify(true);
    finish(builder, provider).map_err(|e| {
        invalid(format!(
            "{} / {}: certificate and key rejected: {e}",
            tls.certfile.display(),
            tls.keyfile.display()
        ))
    })
}

/// A listener with pre-shared keys, looked up by the identity each client sends.
pub fn psk_config(keys: BTreeMap<Vec<u8>, Vec<u8>>, hint: Option<&str>) -> io::Result<DtlsConfig> {
    let provider: Arc<dyn RTCCryptoProvider> = Arc::new(RingProvider::new());
    let keys = Arc::new(keys);
    let builder = ConfigBuilder::default()
        .with_psk(Some(psk_lookup(keys)))
        .with_psk_identity_hint(hint.map(|h| h.as_bytes().to_vec()))
        .with_cipher_suites(PSK_SUITES.to_vec());
    finish(builder, provider).map_err(|e| invalid(format!("pre-shared keys rejected: {e}")))
}

/// Checks the configuration once, so a listener that cannot serve fails at start-up rather
/// than at its first handshake.
fn finish(
    builder: ConfigBuilder,
    provider: Arc<dyn RTCCryptoProvider>,
) -> Result<DtlsConfig, String> {
    builder
        .clone()
        .with_crypto_provider(Arc::clone(&provider))
        .build(false, None)
        .map_err(|e| e.to_string())?;
    Ok(DtlsConfig {
        builder,
        provider,
        idle_timeout_ms: DEFAULT_IDLE_TIMEOUT_MS,
        handshake_timeout_ms: DEFAULT_HANDSHAKE_TIMEOUT_MS,
    })
}

/// The crate's form of a key callback: identity (or hint) in, key out.
pub(super) type KeyCallback<E> = Arc<dyn Fn(&[u8]) -> Result<Vec<u8>, E> + Send + Sync>;

/// The crate's key callback: the key of `identity`, or an error that fails the handshake.
/// Generic over the error so the crate's own error type need not be named.
fn psk_lookup<E: From<io::Error> + 'static>(
    keys: Arc<BTreeMap<Vec<u8>, Vec<u8>>>,
) -> KeyCallback<E> {
    Arc::new(move |identity: &[u8]| {
        keys.get(identity)
            .cloned()
            .ok_or_else(|| E::from(io::Error::other("unknown PSK identity")))
    })
}

impl DtlsConfig {
    /// The handshake configuration of one new peer whose ClientHello carried `cookie`. The
    /// crate draws its own HelloVerifyRequest cookie as the first random value a new
    /// association asks for; handing it the cookie the peer already holds lets the crate
    /// accept the peer's ClientHello as the answer to a HelloVerifyRequest it never had to
    /// send, so the peer sees a single cookie round.
    pub(super) fn handshake_for(&self, cookie: &[u8]) -> Result<Arc<HandshakeConfig>, String> {
        let primed = Arc::new(PrimedProvider {
            inner: Arc::clone(&self.provider),
            random: PrimedRandom {
                inner: Arc::clone(&self.provider),
                cookie: Mutex::new(Some(cookie.to_vec())),
            },
        });
        self.builder
            .clone()
            .with_crypto_provider(primed)
            .build(false, None)
            .map(Arc::new)
            .map_err(|e| e.to_string())
    }

    /// The provider's keyed hash, for the cookie gate.
    pub(super) fn crypto(&self) -> &dyn RTCCrypto {
        self.provider.crypto()
    }
}

/// The ring provider, except that its first random draw of a cookie's length is `cookie`.
struct PrimedProvider {
    inner: Arc<dyn RTCCryptoProvider>,
    random: PrimedRandom,
}

struct PrimedRandom {
    inner: Arc<dyn RTCCryptoProvider>,
    cookie: Mutex<Option<Vec<u8>>>,
}

impl RTCCryptoProvider for PrimedProvider {
    fn name(&self) -> &'static str {
        "ring, cookie primed"
    }

    fn crypto(&self) -> &dyn RTCCrypto {
        self.inner.crypto()
    }

    fn random(&self) -> &dyn RTCRandom {
        &self.random
    }
}

impl RTCRandom for PrimedRandom {
    fn fill(&self, output: &mut [u8]) -> Result<(), CryptoError> {
        if let Ok(mut slot) = self.cookie.lock() {
            if slot.as_ref().is_some_and(|c| c.len() == output.len()) {
                if let Some(cookie) = slot.take() {
                    output.copy_from_slice(&cookie);
                    return Ok(());
                }
            }
        }
        self.inner.random().fill(output)
    }
}

/// Parses a pre-shared-key file: lines `identity:hexkey`; blank lines and lines starting
/// with `#` are skipped. `name` is the file's name, for errors.
pub fn parse_psk_file(text: &str, name: &str) -> io::Result<BTreeMap<Vec<u8>, Vec<u8>>> {
    let mut keys = BTreeMap::new();
    for (index, line) in text.lines().enumerate() {
        let at = |message: &str| invalid(format!("{name}:{}: {message}", index + 1));
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((identity, hex)) = line.split_once(':') else {
            return Err(at("expected identity:hexkey"));
        };
        if identity.is_empty() {
            return Err(at("empty identity"));
        }
        let key = decode_hex(hex.trim()).ok_or_else(|| at("the key is not hexadecimal"))?;
        if key.is_empty() || key.len() > PSK_MAX {
            return Err(at(&format!("the key must be 1 to {PSK_MAX} bytes")));
        }
        if keys.insert(identity.as_bytes().to_vec(), key).is_some() {
            return Err(at(&format!("identity \"{identity}\" given twice")));
        }
    }
    if keys.is_empty() {
        return Err(invalid(format!("{name}: no pre-shared key found")));
    }
    Ok(keys)
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| {
        char::from(c)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    text.as_bytes()
        .chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

/// The private key of a PEM file (PKCS#8, PKCS#1 RSA or SEC1 P-256), imported into `crypto`.
pub(super) fn signing_key(path: &Path, crypto: &dyn RTCCrypto) -> io::Result<Arc<dyn SigningKey>> {
    let key = PrivateKeyDer::from_pem_file(path).map_err(|e| {
        invalid(format!(
            "{}: cannot read a private key: {e}",
            path.display()
        ))
    })?;
    // The crate imports PKCS#8 only; the other forms are wrapped in it.
    let (pkcs8, schemes): (Vec<u8>, &[SignatureScheme]) = match &key {
        PrivateKeyDer::Pkcs8(k) => (
            k.secret_pkcs8_der().to_vec(),
            &[
                SignatureScheme::EcdsaP256Sha256,
                SignatureScheme::Ed25519,
                SignatureScheme::RsaPkcs1Sha256,
            ],
        ),
        PrivateKeyDer::Pkcs1(k) => (
            pkcs8_wrap(RSA_ALGORITHM, k.secret_pkcs1_der()),
            &[SignatureScheme::RsaPkcs1Sha256],
        ),
        PrivateKeyDer::Sec1(k) => (
            pkcs8_wrap(P256_ALGORITHM, k.secret_sec1_der()),
            &[SignatureScheme::EcdsaP256Sha256],
        ),
        _ => {
            return Err(invalid(format!(
                "{}: unsupported private key format",
                path.display()
            )))
        }
    };
    schemes
        .iter()
        .filter(|s| crypto.supports(CryptoAlgorithm::SigningKeyImport(**s)))
        .find_map(|s| crypto.import_signing_key(*s, &pkcs8).ok())
        .ok_or_else(|| {
            invalid(format!(
                "{}: unsupported key (DTLS takes RSA, ECDSA P-256 or Ed25519 keys)",
                path.display()
            ))
        })
}

/// Whether `key` is the private half of the public key `cert` holds. The crate would only
/// find out at the first handshake, whose signature clients would reject.
pub(super) fn key_matches(cert: &CertificateDer<'_>, key: &dyn SigningKey) -> bool {
    // The subjectPublicKey bits are the point (EC), the raw key (Ed25519) or RSAPublicKey
    // (RSA): each the form the crate gives its public keys in.
    X509Certificate::from_der(cert.as_ref()).is_ok_and(|c| {
        let spki = &c.tbs_certificate.subject_public_key_info.subject_public_key;
        spki.as_bytes() == Some(key.public_key().bytes)
    })
}

/// DER AlgorithmIdentifier of rsaEncryption (RFC 8017), with its NULL parameters.
const RSA_ALGORITHM: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
];
/// DER AlgorithmIdentifier of id-ecPublicKey on prime256v1 (RFC 5480).
const P256_ALGORITHM: &[u8] = &[
    0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
    0xce, 0x3d, 0x03, 0x01, 0x07,
];

/// PrivateKeyInfo (RFC 5208): version 0, the algorithm, the key as an OCTET STRING.
fn pkcs8_wrap(algorithm: &[u8], key: &[u8]) -> Vec<u8> {
    let mut body = vec![0x02, 0x01, 0x00];
    body.extend_from_slice(algorithm);
    body.extend(der(0x04, key));
    der(0x30, &body)
}

/// One DER element: tag, definite length, content.
fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}
