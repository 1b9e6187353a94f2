//! LDAPS (issue 13): the server's certificate from PEM files, TLS 1.2/1.3 with rustls, clients
//! that verify it, and a reload that keeps established sessions and refuses bad files.

use std::path::Path;
use std::sync::Arc;

use ldap3::exop::WhoAmI;
use ldap3::{LdapConn, LdapConnSettings, Scope};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

use crate::support::*;

/// A throw-away CA and a server certificate for 127.0.0.1 and localhost it signed.
struct Pki {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

fn pki(name: &str) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("{name} test CA"));
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "ONE Pages test server");
    let cert = params.signed_by(&key, &ca).unwrap();
    Pki {
        ca_pem: ca.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

fn install(dir: &Path, pki: &Pki) {
    std::fs::write(dir.join("server.pem"), &pki.cert_pem).unwrap();
    std::fs::write(dir.join("server.key"), &pki.key_pem).unwrap();
}

/// A demo server with an LDAPS listener on an ephemeral port, and the certificate's folder.
fn tls_server(pki: &Pki) -> (TestServer, tempfile::TempDir) {
    let certs = tempfile::tempdir().unwrap();
    install(certs.path(), pki);
    let (cert, key) = (
        certs.path().join("server.pem"),
        certs.path().join("server.key"),
    );
    let server = TestServer::demo_with(|s| {
        s.tls = Some(onepages::config::TlsFiles { cert, key });
        s.ldaps_listen = Some("127.0.0.1:0".parse().unwrap());
    });
    (server, certs)
}

/// A client that trusts only `ca_pem`.
fn client_config(ca_pem: &str) -> Arc<rustls::ClientConfig> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    let ca = rustls_pki_types::CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap();
    roots.add(ca).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

fn ldaps(server: &TestServer, ca_pem: &str) -> ldap3::result::Result<LdapConn> {
    let port = server.ldaps.unwrap().port();
    let settings = LdapConnSettings::new().set_config(client_config(ca_pem));
    LdapConn::with_settings(settings, &format!("ldaps://127.0.0.1:{port}"))
}

fn who(c: &mut LdapConn) -> String {
    let (exop, _) = c.extended(WhoAmI).unwrap().success().unwrap();
    String::from_utf8(exop.val.unwrap_or_default()).unwrap()
}

#[test]
fn ldaps_serves_binds_and_searches_to_clients_that_verify_the_certificate() {
    let ca = pki("first");
    let (server, _certs) = tls_server(&ca);
    let mut c = ldaps(&server, &ca.ca_pem).unwrap();
    c.simple_bind(READER_DN, READER_PW)
        .unwrap()
        .success()
        .unwrap();
    assert_eq!(who(&mut c), format!("dn:{READER_DN}"));
    let (entries, _) = c
        .search(
            PEOPLE,
            Scope::Subtree,
            "(mail=dewey.rahim@one-mail.on.ca)",
            vec!["mail"],
        )
        .unwrap()
        .success()
        .unwrap();
    assert_eq!(entries.len(), 1);
    // A client that trusts another CA refuses the handshake.
    let other = pki("other");
    assert!(ldaps(&server, &other.ca_pem).is_err());
    // Plain LDAP spoken to the LDAPS port gets no answer but a closed connection; the server
    // carries on for everyone else.
    let mut raw = std::net::TcpStream::connect(server.ldaps.unwrap()).unwrap();
    raw.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    use std::io::{Read, Write};
    raw.write_all(&[
        0x30, 0x0c, 0x02, 0x01, 0x01, 0x60, 0x07, 0x02, 0x01, 0x03, 0x04, 0x00, 0x80, 0x00,
    ])
    .unwrap();
    let mut buf = [0u8; 64];
    let n = raw.read(&mut buf).unwrap_or(0);
    assert!(
        n == 0 || buf.first() == Some(&0x15),
        "expected a close or a TLS alert, got {:?}",
        &buf[..n]
    );
    assert_eq!(who(&mut c), format!("dn:{READER_DN}"));
    // The plain listener is still plain.
    let mut plain = server.reader();
    assert_eq!(who(&mut plain), format!("dn:{READER_DN}"));
}

#[test]
fn a_reloaded_certificate_serves_new_sessions_and_keeps_old_ones() {
    let first = pki("first");
    let (server, certs) = tls_server(&first);
    let tls = server.tls.clone().unwrap();
    let mut before = ldaps(&server, &first.ca_pem).unwrap();
    before
        .simple_bind(READER_DN, READER_PW)
        .unwrap()
        .success()
        .unwrap();
    // A renewal under another CA, then SIGHUP's reload.
    let second = pki("second");
    install(certs.path(), &second);
    tls.reload().unwrap();
    assert!(ldaps(&server, &first.ca_pem).is_err());
    let mut after = ldaps(&server, &second.ca_pem).unwrap();
    after
        .simple_bind(READER_DN, READER_PW)
        .unwrap()
        .success()
        .unwrap();
    assert_eq!(who(&mut before), format!("dn:{READER_DN}"));
    assert_eq!(who(&mut after), format!("dn:{READER_DN}"));
    // A broken file on reload: refused with the file's name, the current certificate stays.
    std::fs::write(certs.path().join("server.key"), "not a key").unwrap();
    let err = tls.reload().unwrap_err().to_string();
    assert!(err.contains("server.key"), "{err}");
    std::fs::write(certs.path().join("server.pem"), "").unwrap();
    let err = tls.reload().unwrap_err().to_string();
    assert!(err.contains("server.pem"), "{err}");
    let mut still = ldaps(&server, &second.ca_pem).unwrap();
    assert_eq!(who(&mut still), "");
}

#[test]
fn tls_settings_are_checked_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let missing = onepages::config::Settings::load_from(
        None,
        &[(
            "ONEPAGES_LDAPS_LISTEN".to_string(),
            "127.0.0.1:0".to_string(),
        )],
        &onepages::config::Overrides {
            data_dir: Some(dir.path().to_path_buf()),
            ..Default::default()
        },
    );
    assert!(missing.unwrap_err().to_string().contains("tls_cert_file"));
    let half = onepages::config::Settings::load_from(
        None,
        &[("ONEPAGES_TLS_CERT_FILE".to_string(), "/x.pem".to_string())],
        &onepages::config::Overrides::default(),
    );
    assert!(half.unwrap_err().to_string().contains("go together"));
}

/// Issue 13: with `cleartext_binds = "never"`, a password over plain LDAP is refused with
/// confidentialityRequired before any look-up (a known and an unknown name get the same
/// answer); over LDAPS it binds. Anonymous binds carry no password and stay possible.
#[test]
fn passwords_need_tls_when_cleartext_binds_are_never() {
    let ca = pki("first");
    let certs = tempfile::tempdir().unwrap();
    install(certs.path(), &ca);
    let (cert, key) = (
        certs.path().join("server.pem"),
        certs.path().join("server.key"),
    );
    let server = TestServer::demo_with(|s| {
        s.tls = Some(onepages::config::TlsFiles { cert, key });
        s.ldaps_listen = Some("127.0.0.1:0".parse().unwrap());
        s.cleartext_binds = onepages::config::CleartextBinds::Never;
    });
    let mut plain = server.conn();
    let known = plain.simple_bind(READER_DN, READER_PW).unwrap();
    assert_eq!(known.rc, 13, "{known:?}");
    assert!(known.text.contains("ldaps://"), "{}", known.text);
    let unknown = plain
        .simple_bind("nobody.here@oneid.on.ca", "whatever")
        .unwrap();
    assert_eq!((unknown.rc, unknown.text), (known.rc, known.text));
    assert_eq!(plain.simple_bind("", "").unwrap().rc, 0);
    let mut tls = ldaps(&server, &ca.ca_pem).unwrap();
    tls.simple_bind(READER_DN, READER_PW)
        .unwrap()
        .success()
        .unwrap();
    assert_eq!(who(&mut tls), format!("dn:{READER_DN}"));
}
