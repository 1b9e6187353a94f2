//! The server's TLS identity: its certificate chain and key, loaded from PEM files, served
//! with rustls (the ring provider only), TLS 1.2 and 1.3 only.
//!
//! [`TlsCertificates::reload`] reads the files again (SIGHUP, after an ACME renewal): new
//! handshakes use the new certificate, sessions already established keep theirs, and a file
//! that does not load leaves the old certificate in place and says why.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::config::TlsFiles;

/// How long a client has to complete its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {why}")]
    File { path: String, why: String },
    #[error("the certificate and key do not make a TLS configuration: {0}")]
    Config(String),
}

/// The certificate the server presents, replaceable while serving.
pub struct TlsCertificates {
    files: TlsFiles,
    current: RwLock<Arc<ServerConfig>>,
    facts: RwLock<CertFacts>,
}

/// What operators watch of the certificate in use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertFacts {
    pub subject: String,
    /// When it expires (seconds since 1970).
    pub not_after: i64,
}

impl std::fmt::Debug for TlsCertificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsCertificates")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl TlsCertificates {
    /// Loads the files; refuses to start on files that do not load.
    pub fn load(files: &TlsFiles) -> Result<TlsCertificates, TlsError> {
        let (config, facts) = server_config(files)?;
        Ok(TlsCertificates {
            files: files.clone(),
            current: RwLock::new(Arc::new(config)),
            facts: RwLock::new(facts),
        })
    }

    /// Reads the files again. On an error the certificate in use stays, and the error says
    /// which file and why.
    pub fn reload(&self) -> Result<(), TlsError> {
        let (config, facts) = server_config(&self.files)?;
        if let Ok(mut current) = self.current.write() {
            *current = Arc::new(config);
        }
        if let Ok(mut f) = self.facts.write() {
            *f = facts;
        }
        Ok(())
    }

    /// The subject and expiry of the certificate in use.
    pub fn facts(&self) -> CertFacts {
        match self.facts.read() {
            Ok(f) => f.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// An acceptor for one handshake, with the certificate in use now.
    pub fn acceptor(&self) -> TlsAcceptor {
        let config = match self.current.read() {
            Ok(c) => Arc::clone(&c),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        };
        TlsAcceptor::from(config)
    }
}

fn file_error(path: &std::path::Path, why: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        path: path.display().to_string(),
        why: why.to_string(),
    }
}

/// The subject and expiry of a DER certificate.
fn facts_of(cert: &CertificateDer<'_>) -> Result<CertFacts, String> {
    let parsed = crate::directory::certificate::certificate(cert.as_ref())?;
    Ok(CertFacts {
        subject: parsed.subject,
        not_after: parsed.not_after,
    })
}

fn server_config(files: &TlsFiles) -> Result<(ServerConfig, CertFacts), TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| file_error(&files.cert, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_error(&files.cert, e))?;
    let Some(leaf) = certs.first() else {
        return Err(file_error(&files.cert, "no CERTIFICATE block in the file"));
    };
    let facts = facts_of(leaf).map_err(|e| {
        file_error(
            &files.cert,
            format!("the first certificate does not parse: {e}"),
        )
    })?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| file_error(&files.key, e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map(|config| (config, facts))
        .map_err(|e| TlsError::Config(e.to_string()))
}

/// The demo's throw-away certificate authority and server certificate (`serve --demo`).
#[derive(Debug, Clone)]
pub struct DemoPki {
    pub files: TlsFiles,
    /// The CA certificate clients trust (`LDAPTLS_CACERT`).
    pub ca: std::path::PathBuf,
}

/// Makes (once; later starts reuse them) a CA and a certificate for 127.0.0.1 and localhost
/// signed by it, in `dir` (created readable by its owner only). Demo data only: the CA's key
/// is thrown away, so it can sign nothing else.
pub fn demo_pki(dir: &std::path::Path) -> Result<DemoPki, TlsError> {
    let files = TlsFiles {
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
    };
    let ca = dir.join("ca.pem");
    if files.cert.is_file() && files.key.is_file() && ca.is_file() {
        return Ok(DemoPki { files, ca });
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| file_error(dir, e))?;
    let made = make_demo_pki().map_err(|e| TlsError::Config(format!("demo certificate: {e}")))?;
    write_private(&ca, &made.0)?;
    write_private(&files.cert, &made.1)?;
    write_private(&files.key, &made.2)?;
    Ok(DemoPki { files, ca })
}

/// (CA certificate, server certificate, server key), PEM.
fn make_demo_pki() -> Result<(String, String, String), rcgen::Error> {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "ONE Pages demo CA (throw-away)");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;
    let key = KeyPair::generate()?;
    let mut params =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])?;
    params
        .distinguished_name
        .push(DnType::CommonName, "ONE Pages demo server");
    let cert = params.signed_by(&key, &ca)?;
    Ok((ca.pem(), cert.pem(), key.serialize_pem()))
}

fn write_private(path: &std::path::Path, text: &str) -> Result<(), TlsError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| file_error(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The demo's certificates load as the server's, and a second start reuses them.
    #[test]
    fn demo_certificates_are_made_once_and_load() {
        let dir = tempfile::tempdir().unwrap();
        let pki = demo_pki(&dir.path().join("data").join("demo-tls")).unwrap();
        assert!(TlsCertificates::load(&pki.files).is_ok());
        let first = std::fs::read(&pki.files.cert).unwrap();
        let again = demo_pki(&dir.path().join("data").join("demo-tls")).unwrap();
        assert_eq!(std::fs::read(&again.files.cert).unwrap(), first);
        assert!(std::fs::read_to_string(&again.ca)
            .unwrap()
            .contains("BEGIN CERTIFICATE"));
    }
}
