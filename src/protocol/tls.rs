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
        let config = server_config(files)?;
        Ok(TlsCertificates {
            files: files.clone(),
            current: RwLock::new(Arc::new(config)),
        })
    }

    /// Reads the files again. On an error the certificate in use stays, and the error says
    /// which file and why.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = server_config(&self.files)?;
        if let Ok(mut current) = self.current.write() {
            *current = Arc::new(config);
        }
        Ok(())
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

fn server_config(files: &TlsFiles) -> Result<ServerConfig, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| file_error(&files.cert, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_error(&files.cert, e))?;
    if certs.is_empty() {
        return Err(file_error(&files.cert, "no CERTIFICATE block in the file"));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| file_error(&files.key, e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))
}
