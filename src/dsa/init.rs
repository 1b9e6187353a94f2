//! A fresh directory: the suffix entry, its four units and the first administrator.
//!
//! The layout every other part expects: people under `ou=people` (where a CSV row without a
//! DN lands), external contacts under `ou=contacts`, service accounts under `ou=services`,
//! registered secure mail domains under `ou=domains`.

use super::{Change, Dsa, DsaError, WriteGrant};
use crate::directory::dn::{Ava, Dn, Rdn};
use crate::directory::values;

/// The units made under the suffix, with what each holds.
pub const UNITS: [(&str, &str); 4] = [
    ("people", "Users of the secure mail service"),
    ("contacts", "External contacts (not secure)"),
    ("services", "Service accounts"),
    ("domains", "Mail domains registered with the secure service"),
];

/// Who the first administrator is.
#[derive(Debug, Clone)]
pub struct FirstAdmin {
    /// A ONE ID username (a person under `ou=people`) or a DN under `ou=people` (`uid=`) or
    /// `ou=services` (`cn=`, a service account).
    pub name: String,
    /// A person's full name (default: the ONE ID's local part).
    pub full_name: Option<String>,
    /// In clear text; stored as argon2id by the writer.
    pub password: Vec<u8>,
}

/// The shortest administrator password `init` accepts.
pub const MIN_ADMIN_PASSWORD: usize = 12;

/// Why `init` refused.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("the data directory already holds {0} entries: init makes a fresh directory only")]
    NotEmpty(usize),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Dsa(#[from] DsaError),
}

fn attr(name: &str, values: &[&str]) -> (String, Vec<Vec<u8>>) {
    (
        name.to_string(),
        values.iter().map(|v| v.as_bytes().to_vec()).collect(),
    )
}

/// The suffix entry: `dc=` (dcObject + organization), `o=` (organization) or `ou=`.
fn suffix_entry(suffix: &Dn, org: &str) -> Result<Change, InitError> {
    let rdn = suffix
        .rdns()
        .first()
        .ok_or_else(|| InitError::Invalid("the suffix must not be empty".into()))?;
    let (kind, value) = single(rdn)?;
    let attrs = match kind.to_ascii_lowercase().as_str() {
        "dc" => vec![
            attr("objectClass", &["top", "dcObject", "organization"]),
            attr("dc", &[&value]),
            attr("o", &[org]),
        ],
        "o" => vec![
            attr("objectClass", &["top", "organization"]),
            attr("o", &[&value]),
        ],
        "ou" => vec![
            attr("objectClass", &["top", "organizationalUnit"]),
            attr("ou", &[&value]),
        ],
        other => {
            return Err(InitError::Invalid(format!(
                "the suffix starts with {other}=: init makes dc=, o= or ou= suffixes"
            )))
        }
    };
    Ok(Change::Add {
        dn: suffix.clone(),
        attrs,
    })
}

fn rdn(attr: &str, value: &str) -> Rdn {
    Rdn(vec![Ava {
        attr: attr.to_string(),
        value: value.to_string(),
    }])
}

fn single(rdn: &Rdn) -> Result<(String, String), InitError> {
    match rdn.0.as_slice() {
        [ava] => Ok((ava.attr.clone(), ava.value.clone())),
        _ => Err(InitError::Invalid(format!(
            "a multi-valued name ({} parts) is not supported here",
            rdn.0.len()
        ))),
    }
}

/// The administrator's entry.
fn admin_entry(dsa: &Dsa, suffix: &Dn, admin: &FirstAdmin) -> Result<Change, InitError> {
    let name = admin.name.trim();
    let password = String::from_utf8_lossy(&admin.password).into_owned();
    if password.chars().count() < MIN_ADMIN_PASSWORD {
        return Err(InitError::Invalid(format!(
            "the administrator's password must have at least {MIN_ADMIN_PASSWORD} characters"
        )));
    }
    let unit = |u: &str| suffix.child(rdn("ou", u));
    let (dn, person) = if name.contains('=') {
        let dn = Dn::parse(name).map_err(|e| InitError::Invalid(format!("--admin: {e}")))?;
        let parent = dn.parent().unwrap_or_else(Dn::root);
        let ndn = |d: &Dn| dsa.normalize_dn(d);
        let (kind, _) = single(
            dn.rdns()
                .first()
                .ok_or_else(|| InitError::Invalid("--admin: the DN must not be empty".into()))?,
        )?;
        let kind = kind.to_ascii_lowercase();
        if ndn(&parent) == ndn(&unit("services")) && kind == "cn" {
            (dn, false)
        } else if ndn(&parent) == ndn(&unit("people")) && kind == "uid" {
            (dn, true)
        } else {
            return Err(InitError::Invalid(format!(
                "--admin {name}: give a ONE ID username, uid=...,ou=people,{suffix} or \
                 cn=...,ou=services,{suffix}"
            )));
        }
    } else {
        let rules = dsa.schema().value_rules();
        if let Some(why) = values::oneid_problem(name, &rules.oneid_domain) {
            return Err(InitError::Invalid(format!("--admin {name}: {why}")));
        }
        (unit("people").child(rdn("uid", name)), true)
    };
    let (_, rdn_value) = single(
        dn.rdns()
            .first()
            .ok_or_else(|| InitError::Invalid("--admin: the DN must not be empty".into()))?,
    )?;
    let mut attrs = if person {
        let local = rdn_value
            .split('@')
            .next()
            .unwrap_or(&rdn_value)
            .to_string();
        let full = admin
            .full_name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .unwrap_or(&local)
            .to_string();
        let surname = full.rsplit(' ').next().unwrap_or(&full).to_string();
        vec![
            attr(
                "objectClass",
                &[
                    "top",
                    "person",
                    "organizationalPerson",
                    "inetOrgPerson",
                    "onePagesPerson",
                ],
            ),
            attr("uid", &[&rdn_value]),
            attr("cn", &[&full]),
            attr("sn", &[&surname]),
            attr("onePagesAccountType", &["user"]),
        ]
    } else {
        vec![
            attr(
                "objectClass",
                &[
                    "top",
                    "applicationProcess",
                    "simpleSecurityObject",
                    "onePagesService",
                ],
            ),
            attr("cn", &[&rdn_value]),
            attr("description", &["Directory administrator"]),
        ]
    };
    attrs.push(attr("onePagesRole", &["admin"]));
    attrs.push(("userPassword".into(), vec![admin.password.clone()]));
    Ok(Change::Add { dn, attrs })
}

impl Dsa {
    /// Makes a fresh directory: the suffix entry (`o` = `org`), its units and the first
    /// administrator, in one atomic batch. Returns the DNs written. Refused on a directory
    /// that holds anything.
    pub fn initialize(
        &self,
        grant: &WriteGrant,
        org: &str,
        admin: &FirstAdmin,
    ) -> Result<Vec<String>, InitError> {
        let count = self.entry_count();
        if count > 0 {
            return Err(InitError::NotEmpty(count));
        }
        let suffix = Dn::parse(&self.settings().suffix)
            .map_err(|e| InitError::Invalid(format!("suffix: {e}")))?;
        let org = org.trim();
        if org.is_empty() {
            return Err(InitError::Invalid("the organisation name is empty".into()));
        }
        let mut changes = vec![suffix_entry(&suffix, org)?];
        for (ou, description) in UNITS {
            changes.push(Change::Add {
                dn: suffix.child(rdn("ou", ou)),
                attrs: vec![
                    attr("objectClass", &["top", "organizationalUnit"]),
                    attr("ou", &[ou]),
                    attr("description", &[description]),
                ],
            });
        }
        changes.push(admin_entry(self, &suffix, admin)?);
        let dns: Vec<String> = changes
            .iter()
            .filter_map(|c| match c {
                Change::Add { dn, .. } => Some(dn.to_string()),
                _ => None,
            })
            .collect();
        // All or nothing: planned first, applied only when nothing is refused.
        let writer = self.writer(grant);
        let refused = |refusals: &[(usize, super::WriteRefusal)]| {
            refusals.first().map(|(pos, why)| {
                let dn = dns.get(*pos).map(String::as_str).unwrap_or("");
                InitError::Invalid(format!("{dn}: {why}"))
            })
        };
        let batch = changes.into_iter().map(|c| writer.prepare(c)).collect();
        let plan = writer.plan(batch)?;
        if let Some(e) = refused(&plan.refusals()) {
            return Err(e);
        }
        let applied = writer.apply(plan)?;
        if let Some(e) = refused(&applied.refused) {
            return Err(e);
        }
        self.sync_index()?;
        Ok(dns)
    }
}
