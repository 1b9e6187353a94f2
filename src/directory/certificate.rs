//! Certificates published in the directory: what each certificate attribute may hold, checked
//! on the way in, and the facts a sender needs (`onepages check`).
//!
//! - `userCertificate`, `cACertificate` (Certificate syntax, RFC 4523): one X.509 certificate,
//!   DER, nothing after it.
//! - `certificateRevocationList`, `authorityRevocationList` (Certificate List syntax): one
//!   X.509 CRL, DER.
//! - `userSMIMECertificate` (RFC 2798): a PKCS#7 / CMS SignedData carrying the certificates
//!   (what Outlook publishes), or a bare DER certificate (what Direct certificate discovery
//!   reads).
//!
//! Parsing is x509-parser's (certificates, CRLs) and the RustCrypto `cms` crate's (SignedData).

use cms::cert::x509::der::asn1::ObjectIdentifier;
use cms::cert::x509::der::{Decode, Encode};
use cms::cert::CertificateChoices;
use cms::content_info::ContentInfo;
use cms::signed_data::SignedData;

use super::matching::Syntax;
use super::schema::AttributeType;

/// id-signedData (RFC 5652 §5.1).
const SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");

/// What a certificate attribute holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Held {
    /// One DER certificate.
    Certificate,
    /// One DER certificate revocation list.
    RevocationList,
    /// SignedData with certificates, or one DER certificate.
    Smime,
}

impl Held {
    /// What the attribute holds, if it is a certificate attribute.
    pub fn of(at: &AttributeType) -> Option<Held> {
        match at.syntax {
            Syntax::Certificate => Some(Held::Certificate),
            Syntax::CertificateList => Some(Held::RevocationList),
            _ if at.name().eq_ignore_ascii_case("userSMIMECertificate") => Some(Held::Smime),
            _ => None,
        }
    }
}

/// A certificate as a sender sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertFacts {
    pub subject: String,
    pub issuer: String,
    /// Hexadecimal, as `openssl x509 -serial` shows it.
    pub serial: String,
    /// Seconds since the Unix epoch.
    pub not_before: i64,
    pub not_after: i64,
    /// The e-mail addresses it names (subject alternative names, then the subject's
    /// emailAddress).
    pub emails: Vec<String>,
}

/// Checks a value of a certificate attribute; the error says what is wrong, in words.
pub fn check(held: Held, value: &[u8]) -> Result<(), String> {
    match held {
        Held::Certificate => certificate(value).map(|_| ()),
        Held::RevocationList => revocation_list(value),
        Held::Smime => smime(value).map(|_| ()),
    }
}

/// The certificates a stored value carries (none when it does not parse).
pub fn facts(held: Held, value: &[u8]) -> Vec<CertFacts> {
    match held {
        Held::Certificate => certificate(value).map(|f| vec![f]).unwrap_or_default(),
        Held::RevocationList => Vec::new(),
        Held::Smime => smime(value).unwrap_or_default(),
    }
}

/// One DER certificate and nothing after it.
pub fn certificate(der: &[u8]) -> Result<CertFacts, String> {
    let (rest, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("not a DER X.509 certificate ({e})"))?;
    if !rest.is_empty() {
        return Err(format!(
            "{} bytes after the certificate (one certificate per value)",
            rest.len()
        ));
    }
    let mut emails = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::RFC822Name(mail) = name {
                emails.push((*mail).to_string());
            }
        }
    }
    for mail in cert.subject().iter_email() {
        if let Ok(mail) = mail.as_str() {
            if !emails.iter().any(|m| m.eq_ignore_ascii_case(mail)) {
                emails.push(mail.to_string());
            }
        }
    }
    Ok(CertFacts {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        serial: cert.raw_serial_as_string().replace(':', "").to_uppercase(),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        emails,
    })
}

fn revocation_list(der: &[u8]) -> Result<(), String> {
    let (rest, _) = x509_parser::parse_x509_crl(der)
        .map_err(|e| format!("not a DER X.509 revocation list ({e})"))?;
    if rest.is_empty() {
        Ok(())
    } else {
        Err(format!("{} bytes after the revocation list", rest.len()))
    }
}

/// PKCS#7 SignedData with at least one certificate, or a bare certificate.
fn smime(value: &[u8]) -> Result<Vec<CertFacts>, String> {
    if let Ok(one) = certificate(value) {
        return Ok(vec![one]);
    }
    let info = ContentInfo::from_der(value)
        .map_err(|e| format!("neither a PKCS#7 SignedData nor a DER X.509 certificate ({e})"))?;
    if info.content_type != SIGNED_DATA {
        return Err(format!(
            "a PKCS#7 {} message, not SignedData",
            info.content_type
        ));
    }
    let signed: SignedData = info
        .content
        .decode_as()
        .map_err(|e| format!("a broken PKCS#7 SignedData ({e})"))?;
    let mut out = Vec::new();
    for choice in signed.certificates.iter().flat_map(|set| set.0.iter()) {
        if let CertificateChoices::Certificate(cert) = choice {
            let der = cert
                .to_der()
                .map_err(|e| format!("a certificate of the SignedData ({e})"))?;
            out.push(certificate(&der).map_err(|e| format!("in the SignedData: {e}"))?);
        }
    }
    if out.is_empty() {
        return Err("a PKCS#7 SignedData without certificates".into());
    }
    Ok(out)
}

/// The DER values of PEM text (a CSV cell): every `-----BEGIN …-----` block, in order.
pub fn from_pem(text: &str) -> Result<Vec<Vec<u8>>, String> {
    let blocks = pem::parse_many(text.as_bytes()).map_err(|e| format!("broken PEM ({e})"))?;
    if blocks.is_empty() {
        return Err("no PEM block (-----BEGIN CERTIFICATE----- …)".into());
    }
    Ok(blocks.into_iter().map(pem::Pem::into_contents).collect())
}

/// The PEM label of a value of a certificate attribute (CSV exports): a
/// `userSMIMECertificate` value is labelled by what it holds.
pub fn pem_label(held: Held, value: &[u8]) -> &'static str {
    match held {
        Held::Certificate => "CERTIFICATE",
        Held::RevocationList => "X509 CRL",
        Held::Smime if certificate(value).is_ok() => "CERTIFICATE",
        Held::Smime => "PKCS7",
    }
}

/// Whether a text cell is PEM rather than a plain value.
pub fn looks_like_pem(text: &str) -> bool {
    text.trim_start().starts_with("-----BEGIN ")
}

/// A certs-only SignedData (`openssl crl2pkcs7 -nocrl` makes the same) holding `certs`: how
/// tests and the demo build a `userSMIMECertificate` value.
pub fn certs_only_signed_data(certs: &[&[u8]]) -> Result<Vec<u8>, String> {
    let mut first: Option<ContentInfo> = None;
    let mut rest = Vec::new();
    for der in certs {
        let cert = cms::cert::x509::Certificate::from_der(der).map_err(|e| e.to_string())?;
        if first.is_none() {
            first = Some(ContentInfo::try_from(cert).map_err(|e| e.to_string())?);
        } else {
            rest.push(cert);
        }
    }
    let info = first.ok_or("no certificate")?;
    if rest.is_empty() {
        return info.to_der().map_err(|e| e.to_string());
    }
    let mut signed: SignedData = info.content.decode_as().map_err(|e| e.to_string())?;
    let set = signed.certificates.get_or_insert_with(|| {
        cms::signed_data::CertificateSet(cms::cert::x509::der::asn1::SetOfVec::new())
    });
    for cert in rest {
        set.0
            .insert(CertificateChoices::Certificate(cert))
            .map_err(|e| e.to_string())?;
    }
    let content = cms::cert::x509::der::Any::encode_from(&signed).map_err(|e| e.to_string())?;
    ContentInfo {
        content_type: SIGNED_DATA,
        content,
    }
    .to_der()
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(mail: &str) -> Vec<u8> {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Test Person");
        params.subject_alt_names = vec![rcgen::SanType::Rfc822Name(mail.try_into().unwrap())];
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn a_certificate_is_one_der_certificate() {
        let der = cert("a.b@one-mail.on.ca");
        let facts = certificate(&der).unwrap();
        assert_eq!(facts.subject, "CN=Test Person");
        assert_eq!(facts.emails, ["a.b@one-mail.on.ca"]);
        assert!(facts.not_after > facts.not_before);
        assert!(check(Held::Certificate, &der).is_ok());
        let mut longer = der.clone();
        longer.push(0);
        assert!(check(Held::Certificate, &longer)
            .unwrap_err()
            .contains("1 bytes after"));
        assert!(check(Held::Certificate, b"hello")
            .unwrap_err()
            .contains("not a DER X.509 certificate"));
        assert!(check(Held::Certificate, der.get(..der.len() - 1).unwrap()).is_err());
    }

    #[test]
    fn smime_values_are_signed_data_or_a_certificate() {
        let a = cert("a@x.ca");
        let b = cert("b@x.ca");
        let p7 = certs_only_signed_data(&[&a, &b]).unwrap();
        let facts = facts(Held::Smime, &p7);
        assert_eq!(facts.len(), 2);
        let mut mails: Vec<_> = facts.iter().flat_map(|f| f.emails.clone()).collect();
        mails.sort();
        assert_eq!(mails, ["a@x.ca", "b@x.ca"]);
        assert!(check(Held::Smime, &a).is_ok());
        assert!(check(Held::Smime, b"\x30\x03\x02\x01\x01")
            .unwrap_err()
            .contains("neither a PKCS#7"));
        // A certificate alone is not a revocation list.
        assert!(check(Held::RevocationList, &a).is_err());
    }

    #[test]
    fn pem_cells_give_der_values() {
        let a = cert("a@x.ca");
        let text = pem::encode(&pem::Pem::new("CERTIFICATE", a.clone()));
        assert!(looks_like_pem(&text));
        assert_eq!(from_pem(&text).unwrap(), [a]);
        assert!(from_pem("-----BEGIN CERTIFICATE-----\nnot base64!\n").is_err());
    }
}
