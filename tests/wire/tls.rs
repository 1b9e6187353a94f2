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

/// Binds as the demo reader, then checks Who am I? and one search for a known address.
fn reader_session(c: &mut LdapConn) {
    c.simple_bind(READER_DN, READER_PW)
        .unwrap()
        .success()
        .unwrap();
    assert_eq!(who(c), format!("dn:{READER_DN}"));
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
    reader_session(&mut c);
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
    let mut s = settings(dir.path());
    s.ldaps_listen = Some("127.0.0.1:0".parse().unwrap());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let started = rt.block_on(onepages::server::start(s, false, std::future::pending()));
    let err = started.err().unwrap().to_string();
    assert!(err.contains("tls_cert_file"), "{err}");
    let half = onepages::config::Settings::load_from(
        None,
        &[("ONEPAGES_TLS_CERT_FILE".to_string(), "/x.pem".to_string())],
        &onepages::config::Overrides::default(),
    );
    assert!(half.unwrap_err().to_string().contains("go together"));
    // A certificate file that does not load stops the start, naming the file.
    let mut s = settings(dir.path());
    s.tls = Some(onepages::config::TlsFiles {
        cert: dir.path().join("missing.pem"),
        key: dir.path().join("missing.key"),
    });
    let started = rt.block_on(onepages::server::start(s, false, std::future::pending()));
    let err = started.err().unwrap().to_string();
    assert!(err.contains("missing.pem"), "{err}");
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

const START_TLS: &str = "1.3.6.1.4.1.1466.20037";

fn start_tls_exop() -> ldap3::exop::Exop {
    ldap3::exop::Exop {
        name: Some(START_TLS.to_string()),
        val: None,
    }
}

fn supported_extensions(c: &mut LdapConn) -> Vec<String> {
    let (entries, _) = c
        .search(
            "",
            Scope::Base,
            "(objectClass=*)",
            vec!["supportedExtension"],
        )
        .unwrap()
        .success()
        .unwrap();
    let e = ldap3::SearchEntry::construct(entries.into_iter().next().unwrap());
    e.attrs
        .get("supportedExtension")
        .cloned()
        .unwrap_or_default()
}

/// StartTLS on the plain port (RFC 4511 §4.14, RFC 4513 §3), as `ldapsearch -ZZ` and
/// applications' `start_tls` use it: advertised, upgraded in place, then binds and searches.
#[test]
fn start_tls_upgrades_the_plain_port() {
    let ca = pki("first");
    let (server, _certs) = tls_server(&ca);
    assert!(supported_extensions(&mut server.conn()).contains(&START_TLS.to_string()));
    let settings = LdapConnSettings::new()
        .set_config(client_config(&ca.ca_pem))
        .set_starttls(true);
    let mut c = LdapConn::with_settings(settings, &server.url).unwrap();
    reader_session(&mut c);
    // A second StartTLS, or one on the LDAPS port: operationsError.
    let again = c.extended(start_tls_exop()).unwrap().1;
    assert_eq!(again.rc, 1, "{again:?}");
    let mut over_ldaps = ldaps(&server, &ca.ca_pem).unwrap();
    assert_eq!(over_ldaps.extended(start_tls_exop()).unwrap().1.rc, 1);
    // The session goes on after a refusal.
    assert_eq!(who(&mut over_ldaps), "");
    // A client that does not trust the certificate fails the handshake.
    let other = pki("other");
    let settings = LdapConnSettings::new()
        .set_config(client_config(&other.ca_pem))
        .set_starttls(true);
    assert!(LdapConn::with_settings(settings, &server.url).is_err());
}

#[test]
fn start_tls_without_a_certificate_is_not_offered() {
    let server = TestServer::demo();
    let mut c = server.conn();
    assert!(!supported_extensions(&mut c).contains(&START_TLS.to_string()));
    let r = c.extended(start_tls_exop()).unwrap().1;
    assert_eq!(r.rc, 2, "{r:?}");
    assert_eq!(who(&mut c), "");
}

/// The identity bound before StartTLS is kept; a handshake that fails ends the connection
/// (the client already got the StartTLS response, so nothing else can be said in clear).
#[test]
fn start_tls_keeps_the_identity_and_a_failed_handshake_closes() {
    use std::io::{Read, Write};
    let ca = pki("first");
    let (server, _certs) = tls_server(&ca);
    // Raw BER: an ExtendedRequest for StartTLS, message 1.
    let mut request = vec![0x30, 0x1d, 0x02, 0x01, 0x01, 0x77, 0x18, 0x80, 0x16];
    request.extend_from_slice(START_TLS.as_bytes());
    let mut raw = std::net::TcpStream::connect(server.addr).unwrap();
    raw.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    raw.write_all(&request).unwrap();
    let mut buf = [0u8; 128];
    let n = raw.read(&mut buf).unwrap();
    let response = &buf[..n];
    // ExtendedResponse (0x78) with resultCode success.
    assert!(response.contains(&0x78), "{response:?}");
    assert!(
        response.windows(3).any(|w| w == [0x0a, 0x01, 0x00]),
        "{response:?}"
    );
    raw.write_all(b"this is not a TLS ClientHello\n").unwrap();
    let mut rest = Vec::new();
    let _ = raw.read_to_end(&mut rest);
    assert!(
        rest.is_empty() || rest.first() == Some(&0x15),
        "expected a close or a TLS alert, got {rest:?}"
    );
    // Bound before the upgrade, the same after it.
    let mut before = server.conn();
    before
        .simple_bind(READER_DN, READER_PW)
        .unwrap()
        .success()
        .unwrap();
    let settings = LdapConnSettings::new()
        .set_config(client_config(&ca.ca_pem))
        .set_starttls(true);
    let mut c = LdapConn::with_settings(settings, &server.url).unwrap();
    assert_eq!(who(&mut c), "");
    c.simple_bind(READER_DN, READER_PW)
        .unwrap()
        .success()
        .unwrap();
    assert_eq!(who(&mut before), format!("dn:{READER_DN}"));
}

/// Reads one whole PDU from a byte stream.
fn read_pdu(stream: &mut impl std::io::Read, buf: &mut Vec<u8>) -> Vec<u8> {
    loop {
        if let Some(n) = onepages::protocol::frame::frame_len(buf, 1 << 20).unwrap() {
            return buf.drain(..n).collect();
        }
        let mut chunk = [0u8; 4096];
        let got = stream.read(&mut chunk).unwrap();
        assert!(got > 0, "the server closed the connection");
        buf.extend_from_slice(&chunk[..got]);
    }
}

fn pdu(msgid: i32, op: ldap3_proto::proto::LdapOp) -> Vec<u8> {
    onepages::protocol::encode::encode(ldap3_proto::proto::LdapMsg::new(msgid, op)).to_vec()
}

/// RFC 4513 §3 lets the server keep or reset the identity across StartTLS; ONE Pages keeps
/// it: bound in clear, Who am I? over the new TLS session names the same entry.
#[test]
fn the_identity_bound_before_start_tls_is_kept() {
    use ldap3_proto::proto::{LdapBindCred, LdapBindRequest, LdapExtendedRequest, LdapOp};
    use std::io::Write;
    let ca = pki("first");
    let (server, _certs) = tls_server(&ca);
    let mut tcp = std::net::TcpStream::connect(server.addr).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut buf = Vec::new();
    tcp.write_all(&pdu(
        1,
        LdapOp::BindRequest(LdapBindRequest {
            version: 3,
            dn: READER_DN.to_string(),
            cred: LdapBindCred::Simple(READER_PW.to_string()),
        }),
    ))
    .unwrap();
    let bound = read_pdu(&mut tcp, &mut buf);
    assert!(
        bound.windows(3).any(|w| w == [0x0a, 0x01, 0x00]),
        "{bound:?}"
    );
    tcp.write_all(&pdu(
        2,
        LdapOp::ExtendedRequest(LdapExtendedRequest {
            name: START_TLS.to_string(),
            value: None,
        }),
    ))
    .unwrap();
    let started = read_pdu(&mut tcp, &mut buf);
    assert!(
        started.windows(3).any(|w| w == [0x0a, 0x01, 0x00]),
        "{started:?}"
    );
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let session = rustls::ClientConnection::new(client_config(&ca.ca_pem), name).unwrap();
    let mut tls = rustls::StreamOwned::new(session, tcp);
    tls.write_all(&pdu(
        3,
        LdapOp::ExtendedRequest(LdapExtendedRequest {
            name: "1.3.6.1.4.1.4203.1.11.3".to_string(),
            value: None,
        }),
    ))
    .unwrap();
    let mut tls_buf = Vec::new();
    let answer = read_pdu(&mut tls, &mut tls_buf);
    let want = format!("dn:{READER_DN}");
    assert!(
        answer.windows(want.len()).any(|w| w == want.as_bytes()),
        "{}",
        String::from_utf8_lossy(&answer)
    );
}
