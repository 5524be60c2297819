//! The subject of an X.509 certificate: the Common Name, or the whole subject as RFC 2253
//! text the way OpenSSL prints it, to serve as a client's user name.
//!
//! The DER is parsed by `x509-cert`; this module only formats what it finds. It must never
//! panic on any input and never verify anything: the TLS layer already verified the
//! certificate.

use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::der::{Decode, Encode, Tagged};
use x509_cert::Certificate;

/// DER content of the Common Name attribute type, 2.5.4.3.
const OID_CN: &[u8] = &[0x55, 0x04, 0x03];

/// Short names OpenSSL prints in RFC 2253 form, by attribute type DER content.
const SHORT_NAMES: &[(&[u8], &str)] = &[
    (OID_CN, "CN"),
    (&[0x55, 0x04, 0x04], "SN"),
    (&[0x55, 0x04, 0x05], "serialNumber"),
    (&[0x55, 0x04, 0x06], "C"),
    (&[0x55, 0x04, 0x07], "L"),
    (&[0x55, 0x04, 0x08], "ST"),
    (&[0x55, 0x04, 0x09], "street"),
    (&[0x55, 0x04, 0x0A], "O"),
    (&[0x55, 0x04, 0x0B], "OU"),
    (&[0x55, 0x04, 0x0C], "title"),
    (&[0x55, 0x04, 0x2A], "GN"),
    (&[0x55, 0x04, 0x2B], "initials"),
    (&[0x55, 0x04, 0x2E], "dnQualifier"),
    (&[0x55, 0x04, 0x41], "pseudonym"),
    (
        &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x01],
        "emailAddress",
    ),
    (
        &[0x09, 0x92, 0x26, 0x89, 0x93, 0xF2, 0x2C, 0x64, 0x01, 0x01],
        "UID",
    ),
    (
        &[0x09, 0x92, 0x26, 0x89, 0x93, 0xF2, 0x2C, 0x64, 0x01, 0x19],
        "DC",
    ),
];

/// One attribute of the subject: its type (OID content), its value's tag and content, and
/// the value's whole encoding (for `#hex` dumps).
struct Attribute {
    oid: ObjectIdentifier,
    tag: u8,
    content: Vec<u8>,
    whole: Vec<u8>,
}

/// The subject's relative distinguished names in certificate order, each a list of
/// attributes (usually one). `None` when the certificate does not parse.
fn subject(cert: &[u8]) -> Option<Vec<Vec<Attribute>>> {
    let cert = Certificate::from_der(cert).ok()?;
    let mut rdns = Vec::new();
    for rdn in cert.tbs_certificate.subject.0.iter() {
        let mut attributes = Vec::new();
        for pair in rdn.0.iter() {
            attributes.push(Attribute {
                oid: pair.oid,
                tag: u8::from(pair.value.tag()),
                content: pair.value.value().to_vec(),
                whole: pair.value.to_der().ok()?,
            });
        }
        rdns.push(attributes);
    }
    Some(rdns)
}

/// The text of a directory string, or `None` for a type that is not a string.
fn text(tag: u8, bytes: &[u8]) -> Option<String> {
    match tag {
        // UTF8String, PrintableString, IA5String, NumericString, VisibleString.
        0x0C | 0x13 | 0x16 | 0x12 | 0x1A => String::from_utf8(bytes.to_vec()).ok(),
        // T61String: in practice Latin-1.
        0x14 => Some(bytes.iter().map(|&b| char::from(b)).collect()),
        // BMPString: UTF-16, big-endian.
        0x1E => {
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            bytes
                .len()
                .is_multiple_of(2)
                .then(|| String::from_utf16(&units).ok())
                .flatten()
        }
        // UniversalString: UTF-32, big-endian.
        0x1C => {
            if !bytes.len().is_multiple_of(4) {
                return None;
            }
            bytes
                .chunks_exact(4)
                .map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
                .collect()
        }
        _ => None,
    }
}

/// The first Common Name of the certificate's subject. `None` when the certificate cannot
/// be read, has no CN, or the CN holds a NUL (which could hide a different name).
pub fn common_name(cert: &[u8]) -> Option<String> {
    let cn = subject(cert)?
        .into_iter()
        .flatten()
        .find(|a| a.oid.as_bytes() == OID_CN)?;
    text(cn.tag, &cn.content).filter(|t| !t.is_empty() && !t.contains('\0'))
}

/// The certificate's subject in RFC 2253 form as OpenSSL writes it: last RDN first, `,`
/// between RDNs, `+` inside one, short attribute names, special characters escaped with
/// `\`, bytes outside printable ASCII as `\XX`, and values of unknown types as `#hex`.
pub fn subject_rfc2253(cert: &[u8]) -> Option<String> {
    let rdns = subject(cert)?;
    let mut out = String::new();
    for (i, rdn) in rdns.iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, attribute) in rdn.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            match SHORT_NAMES
                .iter()
                .find(|(oid, _)| *oid == attribute.oid.as_bytes())
            {
                Some((_, short)) => out.push_str(short),
                None => out.push_str(&attribute.oid.to_string()),
            }
            out.push('=');
            match text(attribute.tag, &attribute.content) {
                Some(value) => escape_into(&value, &mut out),
                None => {
                    out.push('#');
                    hex_into(&attribute.whole, &mut out);
                }
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

fn hex_into(bytes: &[u8], out: &mut String) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0F)]));
    }
}

fn escape_into(value: &str, out: &mut String) {
    let bytes = value.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        let edge = (i == 0 && (b == b'#' || b == b' ')) || (i + 1 == bytes.len() && b == b' ');
        if edge || matches!(b, b',' | b'+' | b'"' | b'\\' | b'<' | b'>' | b';') {
            out.push('\\');
            out.push(char::from(b));
        } else if !(0x20..0x7F).contains(&b) {
            out.push('\\');
            hex_into(&[b], out);
        } else {
            out.push(char::from(b));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;

    const CLIENT_PEM: &[u8] = include_bytes!("testdata/client.pem");
    const SERVER_PEM: &[u8] = include_bytes!("testdata/server.pem");

    fn der(pem: &[u8]) -> Vec<u8> {
        CertificateDer::from_pem_slice(pem).unwrap().to_vec()
    }

    #[test]
    fn common_name_of_generated_certificates() {
        assert_eq!(common_name(&der(CLIENT_PEM)).as_deref(), Some("alice"));
        assert_eq!(common_name(&der(SERVER_PEM)).as_deref(), Some("localhost"));
    }

    #[test]
    fn subject_matches_openssl_rfc2253() {
        // `openssl x509 -noout -subject -nameopt RFC2253` on testdata/client.pem.
        assert_eq!(
            subject_rfc2253(&der(CLIENT_PEM)).as_deref(),
            Some("CN=alice,OU=R&D,O=Example\\, Inc.,C=US")
        );
    }

    #[test]
    fn every_truncation_is_refused_without_panic() {
        let cert = der(CLIENT_PEM);
        for len in 0..cert.len() {
            assert_eq!(common_name(&cert[..len]), None, "prefix {len}");
            assert_eq!(subject_rfc2253(&cert[..len]), None, "prefix {len}");
        }
        // Corrupting any single byte may change the answer but must never panic.
        for i in 0..cert.len() {
            let mut bad = cert.clone();
            bad[i] ^= 0xFF;
            let _ = common_name(&bad);
            let _ = subject_rfc2253(&bad);
        }
    }

    #[test]
    fn escaping_follows_rfc2253() {
        let mut out = String::new();
        escape_into("#a,b+c\"d\\e<f>g;h ", &mut out);
        assert_eq!(out, "\\#a\\,b\\+c\\\"d\\\\e\\<f\\>g\\;h\\ ");
        let mut out = String::new();
        escape_into("J\u{fc}rgen", &mut out);
        assert_eq!(out, "J\\C3\\BCrgen");
    }

    #[test]
    fn strings_decode_by_type() {
        assert_eq!(text(0x1E, &[0x00, b'h', 0x00, b'i']).as_deref(), Some("hi"));
        assert_eq!(text(0x1E, &[0x00]), None);
        assert_eq!(text(0x14, &[0xE9]).as_deref(), Some("\u{e9}"));
        assert_eq!(text(0x1C, &[0, 0, 0, b'x']).as_deref(), Some("x"));
        assert_eq!(text(0x04, b"octets"), None);
    }
}
