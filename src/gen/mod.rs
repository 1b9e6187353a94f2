//! A deterministic generator of realistic ONE Pages directories, for the demo and benchmarks.
//!
//! The same seed and size give the same directory, byte for byte: French and English names
//! with accents, hyphens and apostrophes; hospitals, clinics, laboratories and long-term-care
//! homes (all fictional), most with their own mail domain; a department on most entries;
//! titles, phones in the fictional 555-01xx range, ONE IDs; a few disabled accounts and
//! external contacts. It also samples query terms from what it generated (type-ahead prefixes,
//! exact addresses, full names, bind credentials), so load tests ask realistic questions.

mod names;

use std::io::Write;

use crate::directory::dn::escape_into;
use crate::directory::matching::fold;
use crate::export::write_attr;
use names::{Org, DEPARTMENTS, FIRST_NAMES, ORGS, SURNAMES, TITLES};

use crate::directory::{ONE_ID_DOMAIN, SERVICE_DOMAIN};
/// Passwords of the demo's service accounts (demo data only).
pub const DEMO_READER: (&str, &str) = ("cn=demo-reader,ou=services", "demo-reader-2026");
pub const DEMO_ADMIN: (&str, &str) = ("cn=demo-admin,ou=services", "demo-admin-2026");

/// SplitMix64: small, fast, and the same everywhere.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        let n64 = u64::try_from(n.max(1)).unwrap_or(u64::MAX);
        usize::try_from(self.next_u64() % n64).unwrap_or(0)
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        let i = self.below(items.len());
        items.get(i)
    }
}

/// One generated person or contact.
#[derive(Clone, Debug)]
pub struct Person {
    pub given: String,
    pub sn: String,
    pub cn: String,
    /// ONE ID; `None` for external contacts.
    pub uid: Option<String>,
    pub mail: String,
    pub org: &'static Org,
    pub department: Option<&'static str>,
    pub title: &'static str,
    pub phone: String,
    pub status: &'static str,
    pub kind: &'static str,
    /// Password in clear (for benchmarks' binds) and its stored form.
    pub password: Option<(String, String)>,
    /// Account history (see [`with_history`]): none unless asked for.
    pub history: Option<History>,
    /// An S/MIME certificate for the person's mail (DER, see [`with_certificates`]).
    pub certificate: Option<Vec<u8>>,
}

/// When an account was created, last signed in and is exempt until (seconds since 1970).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct History {
    pub created: i64,
    pub last_sign_in: Option<i64>,
    pub exempt: Option<(i64, &'static str)>,
}

/// Why generated accounts are exempt from the dormant-account rules.
const EXEMPT_REASONS: &[&str] = &[
    "parental leave",
    "sabbatical",
    "medical leave",
    "secondment",
];

fn below_i64(rng: &mut Rng, n: usize) -> i64 {
    i64::try_from(rng.below(n)).unwrap_or(0)
}

/// Gives every person who can sign in a realistic history as of `as_of`, deterministically:
/// created over the six years before; 7% never signed in (half of them created within the
/// last six months); 5% last signed in 13 to 30 months before; the rest within the last 90
/// days, most within the week; 1% exempt for up to 200 more days.
pub fn with_history(people: &mut [Person], as_of: i64, seed: u64) {
    const DAY: i64 = 86_400;
    let mut rng = Rng::new(seed ^ 0x5157);
    for p in people.iter_mut().filter(|p| p.uid.is_some()) {
        let mut created = as_of - DAY * (30 + below_i64(&mut rng, 6 * 365 - 30));
        let roll = rng.below(100);
        let last_sign_in = if roll < 7 {
            if roll < 3 {
                created = as_of - DAY * (1 + below_i64(&mut rng, 182));
            }
            None
        } else if roll < 12 {
            Some(as_of - DAY * (396 + below_i64(&mut rng, 520)))
        } else if roll < 40 {
            Some(as_of - DAY * (8 + below_i64(&mut rng, 82)))
        } else {
            Some(as_of - DAY * below_i64(&mut rng, 7) - below_i64(&mut rng, 86_400))
        };
        // Nobody signs in before the account exists.
        let last_sign_in = last_sign_in.map(|t| t.max(created + DAY));
        let exempt = rng.chance(1).then(|| {
            let reason = rng.pick(EXEMPT_REASONS).copied().unwrap_or("leave");
            (as_of + DAY * (1 + below_i64(&mut rng, 200)), reason)
        });
        p.history = Some(History {
            created,
            last_sign_in,
            exempt,
        });
    }
}

/// Lower-case ASCII local part from a name: "Hélène Côté-Tremblay" → "helene.cote-tremblay".
pub fn local_part(given: &str, sn: &str) -> String {
    let clean = |s: &str| -> String {
        fold(s)
            .chars()
            .filter_map(|c| match c {
                'a'..='z' | '0'..='9' | '-' => Some(c),
                ' ' => Some('-'),
                _ => None,
            })
            .collect()
    };
    format!("{}.{}", clean(given), clean(sn))
}

fn ssha(password: &str, rng: &mut Rng) -> String {
    use base64::Engine;
    use sha1::{Digest, Sha1};
    let salt = rng.next_u64().to_be_bytes();
    let mut h = Sha1::new();
    h.update(password.as_bytes());
    h.update(salt);
    let mut raw = h.finalize().to_vec();
    raw.extend_from_slice(&salt);
    format!(
        "{{SSHA}}{}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// Generates `n` people (and contacts) deterministically from `seed`.
pub fn people(n: usize, seed: u64) -> Vec<Person> {
    let mut rng = Rng::new(seed);
    let mut taken = std::collections::HashMap::<String, usize>::new();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let given = rng.pick(FIRST_NAMES).copied().unwrap_or("Alex").to_string();
        let sn = if rng.chance(4) {
            // Double-barrelled surnames are common in Quebec and Ontario.
            let a = rng.pick(SURNAMES).copied().unwrap_or("Roy");
            let b = rng.pick(SURNAMES).copied().unwrap_or("Côté");
            format!("{a}-{b}")
        } else {
            rng.pick(SURNAMES).copied().unwrap_or("Roy").to_string()
        };
        let Some(org) = rng.pick(ORGS) else { break };
        let base = local_part(&given, &sn);
        let count = taken.entry(base.clone()).or_insert(0);
        *count += 1;
        let local = if *count == 1 {
            base
        } else {
            format!("{base}{count}")
        };
        let external = rng.chance(3);
        let (uid, mail, kind) = if external {
            let domain = rng
                .pick(names::WEBMAIL)
                .copied()
                .unwrap_or("webmail.example");
            (None, format!("{local}@{domain}"), "external")
        } else {
            let domain = match org.domain {
                Some(d) if rng.chance(45) => d,
                _ => SERVICE_DOMAIN,
            };
            (
                Some(format!("{local}@{ONE_ID_DOMAIN}")),
                format!("{local}@{domain}"),
                "user",
            )
        };
        let department = if rng.chance(75) {
            rng.pick(DEPARTMENTS).copied()
        } else {
            None
        };
        let title = rng.pick(TITLES).copied().unwrap_or("Physician");
        let phone = format!("+1 {} 555 01{:02}", org.area_code, rng.below(100));
        let status = if !external && rng.chance(3) {
            "disabled"
        } else {
            "active"
        };
        let password = uid.as_ref().map(|_| {
            let clear = format!("pw-{seed}-{i}");
            let stored = ssha(&clear, &mut rng);
            (clear, stored)
        });
        out.push(Person {
            cn: format!("{given} {sn}"),
            given,
            sn,
            uid,
            mail,
            org,
            department,
            title,
            phone,
            status,
            kind,
            password,
            history: None,
            certificate: None,
        });
    }
    out
}

/// Stores the passwords of every `every`-th person who can sign in as argon2id (the default
/// cost), as ONE Pages stores new passwords; the rest keep `{SSHA}`. Deterministic for a seed.
/// Hashing is spread over the machine's cores (argon2id is slow by design).
pub fn use_argon2(people: &mut [Person], every: usize, seed: u64) -> std::io::Result<()> {
    use crate::directory::password::{hash_password_with_salt, Argon2Cost};
    if every == 0 {
        return Ok(());
    }
    let mut rng = Rng::new(seed ^ 0xa2a2);
    let mut jobs: Vec<(&mut Person, [u8; 8])> = people
        .iter_mut()
        .enumerate()
        .filter(|(i, p)| i % every == 0 && p.password.is_some())
        .map(|(_, p)| (p, rng.next_u64().to_be_bytes()))
        .collect();
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let per = jobs.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| -> std::io::Result<()> {
        let handles: Vec<_> = jobs
            .chunks_mut(per)
            .map(|chunk| {
                scope.spawn(move || -> std::io::Result<()> {
                    for (p, salt) in chunk.iter_mut() {
                        if let Some((clear, stored)) = p.password.as_mut() {
                            *stored = hash_password_with_salt(
                                clear.as_bytes(),
                                salt.as_slice(),
                                Argon2Cost::default(),
                            )
                            .map_err(|e| std::io::Error::other(e.to_string()))?;
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join()
                .map_err(|_| std::io::Error::other("a hashing thread failed"))??;
        }
        Ok(())
    })
}

/// Gives every `every`-th person an S/MIME certificate for their mail address, signed by one
/// throw-away CA (ECDSA P-256, valid two years from `not_before`, seconds since 1970). Keys and
/// signatures are random, so the certificates differ from run to run; who has one does not.
pub fn with_certificates(
    people: &mut [Person],
    every: usize,
    not_before: i64,
) -> Result<(), String> {
    use rcgen::{CertificateParams, CertifiedIssuer, DnType, KeyPair, SanType};
    if every == 0 {
        return Ok(());
    }
    let err = |e: rcgen::Error| e.to_string();
    let start = time::OffsetDateTime::from_unix_timestamp(not_before).map_err(|e| e.to_string())?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca.distinguished_name
        .push(DnType::CommonName, "ONE Pages generated S/MIME CA");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.not_before = start;
    ca.not_after = start + time::Duration::days(3 * 365);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().map_err(err)?).map_err(err)?;
    // One key for every person: generating keys is not what the directory is measured on.
    let key = KeyPair::generate().map_err(err)?;
    for (i, p) in people.iter_mut().enumerate() {
        if i % every != 0 {
            continue;
        }
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        params
            .distinguished_name
            .push(DnType::CommonName, p.cn.as_str());
        params
            .distinguished_name
            .push(DnType::OrganizationName, p.org.name);
        let mail = rcgen::string::Ia5String::try_from(p.mail.as_str()).map_err(err)?;
        params.subject_alt_names = vec![SanType::Rfc822Name(mail)];
        params.serial_number = Some(rcgen::SerialNumber::from(u64::try_from(i).unwrap_or(0) + 1));
        params.not_before = start;
        params.not_after = start + time::Duration::days(2 * 365);
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::EmailProtection];
        let cert = params.signed_by(&key, &ca).map_err(err)?;
        p.certificate = Some(cert.der().to_vec());
    }
    Ok(())
}

/// The DN of a generated person under `suffix`.
pub fn dn_of(p: &Person, suffix: &str) -> String {
    let mut rdn = String::new();
    match &p.uid {
        Some(uid) => {
            rdn.push_str("uid=");
            escape_into(&mut rdn, uid);
            format!("{rdn},ou=people,{suffix}")
        }
        None => {
            rdn.push_str("mail=");
            escape_into(&mut rdn, &p.mail);
            format!("{rdn},ou=contacts,{suffix}")
        }
    }
}

fn write_person<W: Write>(out: &mut W, p: &Person, suffix: &str) -> std::io::Result<()> {
    write_attr(out, "dn", dn_of(p, suffix).as_bytes())?;
    for oc in [
        "top",
        "person",
        "organizationalPerson",
        "inetOrgPerson",
        "onePagesPerson",
    ] {
        write_attr(out, "objectClass", oc.as_bytes())?;
    }
    if let Some(uid) = &p.uid {
        write_attr(out, "uid", uid.as_bytes())?;
    }
    write_attr(out, "cn", p.cn.as_bytes())?;
    write_attr(out, "givenName", p.given.as_bytes())?;
    write_attr(out, "sn", p.sn.as_bytes())?;
    write_attr(out, "displayName", p.cn.as_bytes())?;
    write_attr(out, "mail", p.mail.as_bytes())?;
    write_attr(out, "o", p.org.name.as_bytes())?;
    write_attr(out, "company", p.org.name.as_bytes())?;
    if let Some(d) = p.department {
        write_attr(out, "ou", d.as_bytes())?;
        write_attr(out, "department", d.as_bytes())?;
    }
    write_attr(out, "title", p.title.as_bytes())?;
    write_attr(out, "telephoneNumber", p.phone.as_bytes())?;
    write_attr(out, "l", p.org.city.as_bytes())?;
    write_attr(out, "onePagesStatus", p.status.as_bytes())?;
    write_attr(out, "onePagesAccountType", p.kind.as_bytes())?;
    if let Some((_, stored)) = &p.password {
        write_attr(out, "userPassword", stored.as_bytes())?;
    }
    if let Some(h) = &p.history {
        let time = |t: i64| crate::clock::generalized_time(t).into_bytes();
        write_attr(out, "createTimestamp", &time(h.created))?;
        if let Some(t) = h.last_sign_in {
            // OpenLDAP lastbind's spelling, as a migrated export carries it.
            write_attr(out, "authTimestamp", &time(t))?;
        }
        if let Some((until, reason)) = h.exempt {
            write_attr(out, "onePagesExemptUntil", &time(until))?;
            write_attr(out, "onePagesExemptReason", reason.as_bytes())?;
        }
    }
    if let Some(der) = &p.certificate {
        // As Outlook publishes it (SignedData) and as RFC 4523 names it.
        let p7 = crate::directory::certificate::certs_only_signed_data(&[der])
            .map_err(std::io::Error::other)?;
        write_attr(out, "userSMIMECertificate", &p7)?;
        write_attr(out, "userCertificate;binary", der)?;
    }
    out.write_all(b"\n")
}

/// The suffix entry and its organisational units.
pub fn write_tree<W: Write>(out: &mut W, suffix: &str) -> std::io::Result<()> {
    let first = suffix
        .split(',')
        .next()
        .and_then(|r| r.split_once('='))
        .map(|(_, v)| v.to_string())
        .unwrap_or_else(|| "one-mail".into());
    // No "version: 1" line: slapadd takes it, followed by a blank line, for a record
    // without a DN, and the line is optional (RFC 2849).
    write_attr(out, "dn", suffix.as_bytes())?;
    for oc in ["top", "dcObject", "organization"] {
        write_attr(out, "objectClass", oc.as_bytes())?;
    }
    write_attr(out, "dc", first.as_bytes())?;
    write_attr(out, "o", b"ONE Pages")?;
    write_attr(out, "description", "ONE Pages: the directory of the secure health-mail service / l'annuaire du service de courriel sécurisé".as_bytes())?;
    out.write_all(b"\n")?;
    for (ou, desc) in [
        ("people", "Users of the secure mail service"),
        ("contacts", "External contacts (not secure)"),
        ("services", "Service accounts"),
        ("domains", "Mail domains registered with the secure service"),
    ] {
        write_attr(out, "dn", format!("ou={ou},{suffix}").as_bytes())?;
        for oc in ["top", "organizationalUnit"] {
            write_attr(out, "objectClass", oc.as_bytes())?;
        }
        write_attr(out, "ou", ou.as_bytes())?;
        write_attr(out, "description", desc.as_bytes())?;
        out.write_all(b"\n")?;
    }
    // Organisations that registered their own domain with the service; the others' addresses
    // are listed but not secure until they do.
    for org in ORGS.iter().filter(|o| o.registered) {
        let Some(domain) = org.domain else { continue };
        write_attr(
            out,
            "dn",
            format!("associatedDomain={domain},ou=domains,{suffix}").as_bytes(),
        )?;
        for oc in ["top", "onePagesMailDomain"] {
            write_attr(out, "objectClass", oc.as_bytes())?;
        }
        write_attr(out, "associatedDomain", domain.as_bytes())?;
        write_attr(out, "o", org.name.as_bytes())?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// One service account entry (reader or administrator).
fn write_service_account<W: Write>(
    out: &mut W,
    rdn: &str,
    suffix: &str,
    role: &str,
    description: &str,
    stored_password: &str,
) -> std::io::Result<()> {
    write_attr(out, "dn", format!("{rdn},{suffix}").as_bytes())?;
    for oc in [
        "top",
        "applicationProcess",
        "simpleSecurityObject",
        "onePagesService",
    ] {
        write_attr(out, "objectClass", oc.as_bytes())?;
    }
    let cn = rdn
        .trim_start_matches("cn=")
        .split(',')
        .next()
        .unwrap_or("service");
    write_attr(out, "cn", cn.as_bytes())?;
    write_attr(out, "description", description.as_bytes())?;
    write_attr(out, "onePagesRole", role.as_bytes())?;
    write_attr(out, "userPassword", stored_password.as_bytes())?;
    out.write_all(b"\n")
}

/// The reader and administrator service accounts, with `{SSHA}` passwords any LDAP server
/// verifies (benchmarks bind with them on ONE Pages and on OpenLDAP alike).
fn write_services<W: Write>(out: &mut W, suffix: &str, rng: &mut Rng) -> std::io::Result<()> {
    for ((rdn, password), role) in [(DEMO_READER, "reader"), (DEMO_ADMIN, "admin")] {
        let stored = ssha(password, rng);
        write_service_account(out, rdn, suffix, role, "Benchmark service account", &stored)?;
    }
    Ok(())
}

/// A directory of `n` people as LDIF, with the tree entries and service accounts first.
pub fn write_ldif<W: Write>(out: &mut W, people: &[Person], suffix: &str) -> std::io::Result<()> {
    write_tree(out, suffix)?;
    write_services(out, suffix, &mut Rng::new(0x5e41))?;
    for p in people {
        write_person(out, p, suffix)?;
    }
    Ok(())
}

/// The same people as CSV (the layout `import` reads).
pub fn write_csv<W: Write>(out: W, people: &[Person]) -> Result<(), csv::Error> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record([
        "uid",
        "givenName",
        "sn",
        "cn",
        "displayName",
        "mail",
        "o",
        "company",
        "ou",
        "department",
        "title",
        "telephoneNumber",
        "l",
        "onePagesStatus",
        "onePagesAccountType",
        "userPassword",
    ])?;
    for p in people.iter().filter(|p| p.uid.is_some()) {
        let dept = p.department.unwrap_or("");
        w.write_record([
            p.uid.as_deref().unwrap_or(""),
            &p.given,
            &p.sn,
            &p.cn,
            &p.cn,
            &p.mail,
            p.org.name,
            p.org.name,
            dept,
            dept,
            p.title,
            &p.phone,
            p.org.city,
            p.status,
            p.kind,
            p.password.as_ref().map(|(_, s)| s.as_str()).unwrap_or(""),
        ])?;
    }
    w.flush()?;
    Ok(())
}

/// Query terms sampled from the data, one per line, tab-separated:
/// `prefix TAB <1-6 chars>`, `mail TAB <address>`, `name TAB <full name>`,
/// `bind TAB <uid> TAB <password>` (`bind-argon2` for users whose password is stored as
/// argon2id, see [`use_argon2`]), and `cert TAB <address>` for people with a certificate
/// (see [`with_certificates`]).
pub fn write_queries<W: Write>(
    out: &mut W,
    people: &[Person],
    count: usize,
    seed: u64,
) -> std::io::Result<()> {
    let mut rng = Rng::new(seed ^ 0x5eed);
    let active: Vec<&Person> = people
        .iter()
        .filter(|p| p.status == "active" && p.uid.is_some())
        .collect();
    if active.is_empty() {
        return Ok(());
    }
    for _ in 0..count {
        let Some(p) = rng.pick(&active) else { break };
        match rng.below(4) {
            0 => {
                let source = if rng.chance(50) { &p.given } else { &p.sn };
                let len = 1 + rng.below(6);
                let prefix: String = fold(source).chars().take(len).collect();
                writeln!(out, "prefix\t{prefix}")?;
            }
            1 => writeln!(out, "mail\t{}", p.mail)?,
            2 => writeln!(out, "name\t{}", p.cn)?,
            _ => {
                if let (Some(uid), Some((clear, stored))) = (&p.uid, &p.password) {
                    let tag = if stored.starts_with("{ARGON2}") {
                        "bind-argon2"
                    } else {
                        "bind"
                    };
                    writeln!(out, "{tag}\t{uid}\t{clear}")?;
                }
            }
        }
    }
    // `cert TAB <address>`: recipients who publish a certificate (the cert-lookup workload).
    let holders: Vec<&Person> = active
        .iter()
        .copied()
        .filter(|p| p.certificate.is_some())
        .collect();
    for _ in 0..count / 4 {
        let Some(p) = rng.pick(&holders) else { break };
        writeln!(out, "cert\t{}", p.mail)?;
    }
    Ok(())
}

/// Demo people every demo directory has, with the password each signs in with and how it is
/// stored (one per imported scheme family, as an OpenLDAP export would carry them).
pub const DEMO_PEOPLE: &[(&str, &str, &str, &str)] = &[
    ("Dewey", "Rahim", "dewey-demo-2026", "ssha"),
    ("Hélène", "Côté-Tremblay", "helene-demo-2026", "crypt"),
    ("D'Arcy", "O'Neil", "darcy-demo-2026", "argon2"),
];

fn demo_person(given: &str, sn: &str, org: &'static Org, dept: Option<&'static str>) -> Person {
    let local = local_part(given, sn);
    Person {
        given: given.to_string(),
        sn: sn.to_string(),
        cn: format!("{given} {sn}"),
        uid: Some(format!("{local}@{ONE_ID_DOMAIN}")),
        mail: format!("{local}@{SERVICE_DOMAIN}"),
        org,
        department: dept,
        title: "Physician",
        phone: format!("+1 {} 555 0100", org.area_code),
        status: "active",
        kind: "user",
        password: None,
        history: None,
        certificate: None,
    }
}

/// The embedded demo directory: the tree, two service accounts, the named demo people and
/// `n` generated people.
pub fn write_demo<W: Write>(out: &mut W, n: usize, seed: u64, suffix: &str) -> std::io::Result<()> {
    use crate::directory::password::{hash_password_with_salt, Argon2Cost};
    let mut rng = Rng::new(seed ^ 0xde40);
    write_tree(out, suffix)?;
    let hash_err =
        |e: crate::directory::password::PasswordError| std::io::Error::other(e.to_string());
    for ((rdn, password), role, description) in [
        (
            DEMO_READER,
            "reader",
            "Demo directory reader (demo data only)",
        ),
        (
            DEMO_ADMIN,
            "admin",
            "Demo directory administrator (demo data only)",
        ),
    ] {
        let salt = rng.next_u64().to_be_bytes();
        let stored = hash_password_with_salt(password.as_bytes(), &salt, Argon2Cost::default())
            .map_err(hash_err)?;
        write_service_account(out, rdn, suffix, role, description, &stored)?;
    }
    for (i, (given, sn, password, scheme)) in DEMO_PEOPLE.iter().enumerate() {
        let Some(org) = ORGS.get(i * 5 % ORGS.len()) else {
            continue;
        };
        let mut p = demo_person(
            given,
            sn,
            org,
            if i == 1 {
                None
            } else {
                Some("Family Medicine")
            },
        );
        let salt = rng.next_u64().to_be_bytes();
        let stored = match *scheme {
            "crypt" => {
                let s: String = salt.iter().map(|b| format!("{b:02x}")).collect();
                let h = pwhash::sha512_crypt::hash_with(format!("$6${s}").as_str(), password)
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                format!("{{CRYPT}}{h}")
            }
            "argon2" => hash_password_with_salt(password.as_bytes(), &salt, Argon2Cost::default())
                .map_err(hash_err)?,
            _ => ssha(password, &mut rng),
        };
        p.password = Some(((*password).to_string(), stored));
        write_person(out, &p, suffix)?;
    }
    for p in people(n, seed) {
        write_person(out, &p, suffix)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_realistic() {
        let a = people(500, 7);
        let b = people(500, 7);
        assert_eq!(
            a.iter().map(|p| p.mail.clone()).collect::<Vec<_>>(),
            b.iter().map(|p| p.mail.clone()).collect::<Vec<_>>()
        );
        assert!(a.iter().any(|p| !p.cn.is_ascii()));
        assert!(a.iter().any(|p| p.department.is_none()));
        assert!(a.iter().any(|p| p.kind == "external"));
        let uids: std::collections::HashSet<_> = a.iter().filter_map(|p| p.uid.clone()).collect();
        assert_eq!(uids.len(), a.iter().filter(|p| p.uid.is_some()).count());
        assert_eq!(
            local_part("Hélène", "Côté-Tremblay"),
            "helene.cote-tremblay"
        );
        assert_eq!(local_part("D'Arcy", "O'Neil"), "darcy.oneil");
    }
}
