//! Encryption certificates (issue 19): published with the `;binary` transfer option (RFC 4522),
//! checked on the way in, loaded from LDIF and CSV, and described by `onepages check`.

use std::collections::HashSet;

use ldap3::{LdapConn, Mod, Scope, SearchEntry};
use onepages::directory::certificate::certs_only_signed_data;

use crate::support::*;

const DEWEY: &str = "uid=dewey.rahim@oneid.on.ca,ou=people,dc=one-mail,dc=on,dc=ca";
const DEWEY_MAIL: &str = "dewey.rahim@one-mail.on.ca";

/// A DER certificate for `mail`, valid from `from_days` to `to_days` days from now.
fn cert_for(mail: &str, from_days: i64, to_days: i64) -> Vec<u8> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("S/MIME {mail}"));
    params.subject_alt_names = vec![rcgen::SanType::Rfc822Name(mail.try_into().unwrap())];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now + time::Duration::days(from_days);
    // Half a day past the whole days, so that "expires in N days" does not turn over between two
    // checks a second apart.
    params.not_after = now + time::Duration::days(to_days) + time::Duration::hours(12);
    let key = rcgen::KeyPair::generate().unwrap();
    params.self_signed(&key).unwrap().der().to_vec()
}

fn binary_values(conn: &mut LdapConn, filter: &str, attrs: Vec<&str>) -> SearchEntry {
    let (mut entries, _) = conn
        .search(SUFFIX, Scope::Subtree, filter, attrs)
        .unwrap()
        .success()
        .unwrap();
    assert_eq!(entries.len(), 1, "{filter}");
    SearchEntry::construct(entries.remove(0))
}

fn add(conn: &mut LdapConn, dn: &str, attr: &str, value: Vec<u8>) -> ldap3::LdapResult {
    conn.modify(
        dn,
        vec![Mod::Add(attr.as_bytes().to_vec(), HashSet::from([value]))],
    )
    .unwrap()
}

fn names(e: &SearchEntry) -> Vec<String> {
    let mut all: Vec<String> = e.attrs.keys().chain(e.bin_attrs.keys()).cloned().collect();
    all.sort();
    all
}

#[test]
fn certificates_are_published_with_the_binary_option_and_checked_on_the_way_in() {
    let server = TestServer::demo();
    let mut admin = server.admin();
    let der = cert_for(DEWEY_MAIL, -1, 365);
    let p7 = certs_only_signed_data(&[&der]).unwrap();
    assert_eq!(
        add(&mut admin, DEWEY, "userCertificate;binary", der.clone()).rc,
        0
    );
    assert_eq!(
        add(&mut admin, DEWEY, "userSMIMECertificate", p7.clone()).rc,
        0
    );

    let mut reader = server.reader();
    let filter = format!("(mail={DEWEY_MAIL})");
    // Outlook's and Direct discovery's request: both under the names asked for.
    let e = binary_values(
        &mut reader,
        &filter,
        vec!["userSMIMECertificate;binary", "userCertificate;binary"],
    );
    assert_eq!(
        e.bin_attrs["userCertificate;binary"],
        std::slice::from_ref(&der)
    );
    assert_eq!(
        e.bin_attrs["userSMIMECertificate;binary"],
        std::slice::from_ref(&p7)
    );
    // The Certificate syntax is always transferred with ;binary (RFC 4523 §2.1); the Binary
    // syntax under the name asked for.
    let e = binary_values(
        &mut reader,
        &filter,
        vec!["userCertificate", "userSMIMECertificate"],
    );
    assert_eq!(
        names(&e),
        ["userCertificate;binary", "userSMIMECertificate"]
    );
    // A type-ahead that does not ask for certificates gets none; `*` gets both.
    let e = binary_values(&mut reader, &filter, vec!["cn", "mail"]);
    assert_eq!(names(&e), ["cn", "mail"]);
    let e = binary_values(&mut reader, &filter, vec!["*"]);
    assert!(e.bin_attrs.contains_key("userCertificate;binary"), "{e:?}");
    assert!(e.bin_attrs.contains_key("userSMIMECertificate"), "{e:?}");
    // Presence filters with and without the option find the holder.
    for f in ["(userCertificate=*)", "(userCertificate;binary=*)"] {
        assert_eq!(dns(&mut reader, SUFFIX, f), [DEWEY], "{f}");
    }

    // What is not a certificate is refused, with the reason.
    for (attr, bad) in [
        ("userCertificate;binary", b"not a certificate".to_vec()),
        ("userCertificate", [der.clone(), vec![0]].concat()),
        ("userSMIMECertificate", b"\x30\x03\x02\x01\x01".to_vec()),
        ("cn;binary", der.clone()),
    ] {
        let r = add(&mut admin, DEWEY, attr, bad);
        let want = if attr == "cn;binary" { 17 } else { 21 };
        assert_eq!(r.rc, want, "{attr}: {r:?}");
        assert!(!r.text.is_empty(), "{attr}");
    }
    let r = add(&mut admin, DEWEY, "userCertificate", b"hello".to_vec());
    assert!(r.text.contains("not a DER X.509 certificate"), "{r:?}");

    // A value stored with the option is the same value without it.
    let r = admin
        .modify(
            DEWEY,
            vec![Mod::Delete(
                b"userCertificate".to_vec(),
                HashSet::from([der.clone()]),
            )],
        )
        .unwrap();
    assert_eq!(r.rc, 0, "{r:?}");
    assert!(dns(&mut reader, SUFFIX, "(userCertificate=*)").is_empty());

    // The organisation publishes its CA certificate (pkiCA, RFC 4523).
    let ca = cert_for("ca@one-mail.on.ca", -1, 3650);
    let r = admin
        .modify(
            SUFFIX,
            vec![
                Mod::Add(b"objectClass".to_vec(), HashSet::from([b"pkiCA".to_vec()])),
                Mod::Add(
                    b"cACertificate;binary".to_vec(),
                    HashSet::from([ca.clone()]),
                ),
            ],
        )
        .unwrap();
    assert_eq!(r.rc, 0, "{r:?}");
    let (entries, _) = reader
        .search(
            SUFFIX,
            Scope::Base,
            "(objectClass=*)",
            vec!["cACertificate"],
        )
        .unwrap()
        .success()
        .unwrap();
    let e = SearchEntry::construct(entries.into_iter().next().unwrap());
    assert_eq!(e.bin_attrs["cACertificate;binary"], [ca]);
}

#[test]
fn attribute_options_other_than_binary_are_unrecognized() {
    let server = TestServer::demo();
    let mut c = server.reader();
    assert!(!dns(&mut c, SUFFIX, "(cn=dewey*)").is_empty());
    // No value has a language tag: the item is Undefined (RFC 4512 §2.5.2), so is its negation.
    for f in [
        "(cn;lang-fr=dewey*)",
        "(!(cn;lang-fr=dewey*))",
        "(cn;lang-fr=*)",
        "(cn;binary=*)",
        "(mail;x-anything=dewey.rahim@one-mail.on.ca)",
    ] {
        assert!(dns(&mut c, SUFFIX, f).is_empty(), "{f}");
    }
    // An attribute list naming a tagged description returns nothing for it.
    let e = one(&mut c, SUFFIX, "(cn=dewey rahim)", vec!["cn;lang-fr", "sn"]);
    assert_eq!(e.attrs.keys().collect::<Vec<_>>(), ["sn"]);
    // A write of a tagged value is refused, never stored under the bare type.
    let mut admin = server.admin();
    let r = admin
        .modify(
            DEWEY,
            vec![Mod::Replace(
                "description;lang-fr",
                HashSet::from(["bonjour"]),
            )],
        )
        .unwrap();
    assert_eq!(r.rc, 17, "{r:?}");
    assert!(r.text.contains("lang-fr"), "{r:?}");
    let e = one(&mut c, SUFFIX, "(cn=dewey rahim)", vec!["description"]);
    assert!(!e.attrs.contains_key("description"), "{e:?}");
    let r = admin
        .add(
            &format!("uid=tagged@oneid.on.ca,{PEOPLE}"),
            vec![
                ("objectClass", HashSet::from(["inetOrgPerson"])),
                ("cn", HashSet::from(["Tag Ged"])),
                ("sn", HashSet::from(["Ged"])),
                ("sn;lang-fr", HashSet::from(["Ged"])),
            ],
        )
        .unwrap();
    assert_eq!(r.rc, 17, "{r:?}");
    let r = c.compare(DEWEY, "cn;lang-fr", "Dewey Rahim").unwrap();
    assert_eq!(r.0.rc, 17, "{r:?}");
}

/// LDIF (base64) and CSV (PEM) imports load certificates and refuse what is not one at its
/// line; `onepages check` then tells a sender what is published and warns of expiry.
#[test]
fn imports_load_certificates_and_check_describes_them() {
    use base64::Engine;
    let mut server = TestServer::demo();
    server.shutdown();
    let data = server.dir.take().unwrap();
    let dir = data.path().to_str().unwrap().to_string();
    let b64 = |v: &[u8]| base64::engine::general_purpose::STANDARD.encode(v);
    let good = cert_for(DEWEY_MAIL, -1, 365);
    let p7 = certs_only_signed_data(&[&good]).unwrap();
    let ldif = format!(
        "dn: {DEWEY}\nchangetype: modify\nadd: userSMIMECertificate\n\
         userSMIMECertificate:: {}\n-\nadd: userCertificate;binary\n\
         userCertificate;binary:: {}\n-\n\n\
         dn: uid=helene.cote-tremblay@oneid.on.ca,{PEOPLE}\nchangetype: modify\n\
         add: userCertificate;binary\nuserCertificate;binary:: aGVsbG8=\n-\n",
        b64(&p7),
        b64(&good)
    );
    let ldif_path = data.path().join("certs.ldif");
    std::fs::write(&ldif_path, &ldif).unwrap();
    let (_code, out, err) = onepages(&["import", "--data-dir", &dir, ldif_path.to_str().unwrap()]);
    let said = format!("{out}{err}");
    let bad_line = ldif
        .lines()
        .position(|l| l.starts_with("dn: uid=helene"))
        .unwrap()
        + 1;
    assert!(
        said.contains(&format!("certs.ldif:{bad_line}")) && said.contains("not a DER X.509"),
        "{said}"
    );

    // A tagged value is refused at its record's line, or left out with --drop-unknown.
    let tagged = format!(
        "dn: uid=tag.ged@oneid.on.ca,{PEOPLE}\nobjectClass: inetOrgPerson\ncn: Tag Ged\n\
         sn: Ged\ndescription;lang-fr: bonjour\n"
    );
    let tagged_path = data.path().join("tagged.ldif");
    std::fs::write(&tagged_path, &tagged).unwrap();
    let (_code, out, err) =
        onepages(&["import", "--data-dir", &dir, tagged_path.to_str().unwrap()]);
    let said = format!("{out}{err}");
    assert!(
        said.contains("tagged.ldif:1") && said.contains("lang-fr") && said.contains("1 refused"),
        "{said}"
    );
    let (_code, out, err) = onepages(&[
        "import",
        "--drop-unknown",
        "--data-dir",
        &dir,
        tagged_path.to_str().unwrap(),
    ]);
    let said = format!("{out}{err}");
    assert!(said.contains("1 added"), "{said}");

    // CSV: a PEM column; one soon-expiring, one expired, one broken.
    let soon = cert_for("csv.soon@one-mail.on.ca", -300, 10);
    let expired = cert_for("csv.old@one-mail.on.ca", -400, -5);
    let pem = |der: &[u8]| pem::encode(&pem::Pem::new("CERTIFICATE", der.to_vec()));
    let mut csv = String::from("uid,givenName,sn,mail,o,userCertificate\n");
    for (who, cert) in [("soon", pem(&soon)), ("old", pem(&expired))] {
        csv.push_str(&format!(
            "csv.{who}@oneid.on.ca,Csv,{who},csv.{who}@one-mail.on.ca,Clinic,\"{cert}\"\n"
        ));
    }
    let broken_line = csv.lines().count() + 1;
    csv.push_str(
        "csv.bad@oneid.on.ca,Csv,Bad,csv.bad@one-mail.on.ca,Clinic,\"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n\"\n",
    );
    let csv_path = data.path().join("certs.csv");
    std::fs::write(&csv_path, &csv).unwrap();
    let (_code, out, err) = onepages(&["import", "--data-dir", &dir, csv_path.to_str().unwrap()]);
    let said = format!("{out}{err}");
    assert!(said.contains("2 added"), "{said}");
    assert!(
        said.contains(&format!("certs.csv:{broken_line}")) && said.contains("userCertificate"),
        "{said}"
    );

    // check, offline: facts and warnings; the verdict does not depend on the certificate.
    let (code, out, _) = onepages(&[
        "check",
        "--data-dir",
        &dir,
        DEWEY_MAIL,
        "csv.soon@one-mail.on.ca",
        "csv.old@one-mail.on.ca",
        "darcy.oneil@one-mail.on.ca",
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains(&format!("{DEWEY_MAIL}: secure")), "{out}");
    assert!(
        out.contains(
            "certificate (userSMIMECertificate): subject CN=S/MIME dewey.rahim@one-mail.on.ca"
        ),
        "{out}"
    );
    assert_eq!(out.matches("subject CN=S/MIME dewey").count(), 1, "{out}");
    assert!(out.contains("expires in 10 days"), "{out}");
    assert!(
        out.contains("WARNING: this certificate expired on"),
        "{out}"
    );
    assert!(out.contains("no encryption certificate published"), "{out}");

    // A CSV export writes certificates as PEM, which a CSV import reads back as the same values.
    let export = data.path().join("out.csv");
    let (code, _, err) = onepages(&[
        "export",
        "--data-dir",
        &dir,
        "--format",
        "csv",
        "-o",
        export.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{err}");
    let text = std::fs::read_to_string(&export).unwrap();
    assert!(text.contains("-----BEGIN PKCS7-----"), "{text}");
    assert!(text.contains(&pem(&soon).replace("\r\n", "\n")), "{text}");
    assert!(!text.contains("\r\n"), "{text}");
    let (_, out2, err2) = onepages(&[
        "import",
        "--dry-run",
        "--data-dir",
        &dir,
        export.to_str().unwrap(),
    ]);
    let said = format!("{out2}{err2}");
    assert!(
        said.contains("0 refused") && said.contains("0 changed"),
        "{said}"
    );

    // check, online: the same facts over LDAP (userSMIMECertificate, userCertificate;binary).
    let served = TestServer::start(settings(data.path()), false);
    let (code, online, _) = onepages(&[
        "check",
        "--server",
        &served.url,
        "--bind-dn",
        READER_DN,
        "--password",
        READER_PW,
        DEWEY_MAIL,
        "csv.soon@one-mail.on.ca",
        "csv.old@one-mail.on.ca",
        "darcy.oneil@one-mail.on.ca",
    ]);
    assert_eq!(code, Some(0), "{online}");
    assert_eq!(online, out);
}
