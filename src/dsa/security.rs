//! Secure recipients: whether mail to an entry is protected end to end, computed at read time
//! from the entry and the registry of secure mail domains (DESIGN decision 4).
//!
//! The registry is the configured `secure_domains` plus every `onePagesMailDomain` entry under
//! `ou=domains,<suffix>`; it is re-read when a write within `ou=domains` has moved the
//! domains epoch (the writer bumps it), so a registration takes effect on the next read and
//! other writes keep the registry.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::Dsa;
use crate::directory::entry::{AttrSource, Attribute, Entry};
use crate::directory::record::{self, AttrView, EntryView};
use crate::directory::values::{domain_ascii, status_is_active};

/// The secure-mail status of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    Secure,
    /// A contact at an outside address.
    External,
    /// A service account, not a person on the service.
    NotAUser,
    Disabled,
    /// The mail domain is not registered with the service.
    UnregisteredDomain,
}

impl Security {
    pub fn describe(self) -> &'static str {
        match self {
            Security::Secure => "secure",
            Security::External => "listed as an external contact, NOT secure",
            Security::NotAUser => "a service account, NOT secure",
            Security::Disabled => "listed but the account is disabled, NOT secure",
            Security::UnregisteredDomain => {
                "listed but the mail domain is not registered as secure, NOT secure"
            }
        }
    }
}

/// The secure mail domains: the configured ones and those registered as entries.
pub(super) fn secure_domains(dsa: &Dsa) -> Arc<BTreeSet<String>> {
    // Read before the entries, so that a registration racing this read moves the epoch past
    // what is cached here.
    let generation = dsa.domains_epoch.load(std::sync::atomic::Ordering::Acquire);
    if let Ok(cache) = dsa.registry.lock() {
        if let Some((g, set)) = cache.as_ref() {
            if *g == generation {
                return Arc::clone(set);
            }
        }
    }
    let mut set: BTreeSet<String> = dsa.settings.secure_domains.iter().cloned().collect();
    if let Ok(children) = dsa.store.children(&dsa.domains_ndn()) {
        for id in children {
            if let Ok(Some(e)) = dsa.store.get(id) {
                if e.has_value_ci("objectClass", "onePagesMailDomain") {
                    for d in e.values("associatedDomain") {
                        let d = String::from_utf8_lossy(d);
                        let d = d.trim();
                        set.insert(domain_ascii(d).unwrap_or_else(|_| d.to_ascii_lowercase()));
                    }
                }
            }
        }
    }
    let set = Arc::new(set);
    if let Ok(mut cache) = dsa.registry.lock() {
        *cache = Some((generation, Arc::clone(&set)));
    }
    set
}

/// Whether mail to this entry is protected end to end, and if not, why. `None` for entries
/// that are not people or contacts (no mail address).
pub fn security_of<E: AttrSource + ?Sized>(
    entry: &E,
    domains: &BTreeSet<String>,
) -> Option<Security> {
    let facts = SecurityFacts {
        mail: entry.first_text("mail"),
        kind: entry.first_text("onePagesAccountType"),
        service_class: entry.has_text_ci("objectClass", "onePagesService"),
        disabled: entry
            .values_of("onePagesStatus")
            .any(|v| !status_is_active(v)),
    };
    facts.security(domains)
}

/// The security of an entry read in place (`None`: not a person or contact).
pub(super) fn classify_view(view: &EntryView<'_>, domains: &BTreeSet<String>) -> Option<Security> {
    SecurityFacts::of_view(view).security(domains)
}

/// Adds `oneMailSecure` to an entry read in place.
pub(super) fn decorate_view(view: &mut EntryView<'_>, domains: &BTreeSet<String>) {
    if let Some(s) = SecurityFacts::of_view(view).security(domains) {
        let raw = if s == Security::Secure {
            record::ENCODED_TRUE
        } else {
            record::ENCODED_FALSE
        };
        view.attrs.push(AttrView::computed("oneMailSecure", raw));
    }
}

/// Adds `oneMailSecure` to an owned entry.
pub(super) fn decorate(entry: &mut Entry, domains: &BTreeSet<String>) {
    if let Some(s) = security_of(entry, domains) {
        let v: &[u8] = if s == Security::Secure {
            b"TRUE"
        } else {
            b"FALSE"
        };
        entry.attrs.push(Attribute {
            name: "oneMailSecure".into(),
            values: vec![v.to_vec()],
        });
    }
}

/// What the security of an entry depends on, read from it once.
struct SecurityFacts<'a> {
    mail: Option<&'a str>,
    kind: Option<&'a str>,
    service_class: bool,
    disabled: bool,
}

impl<'a> SecurityFacts<'a> {
    /// One pass over a view's attributes (every entry a search returns comes here).
    fn of_view(view: &EntryView<'a>) -> SecurityFacts<'a> {
        let mut facts = SecurityFacts {
            mail: None,
            kind: None,
            service_class: false,
            disabled: false,
        };
        let first = |a: &AttrView<'a>| a.values().next().and_then(|v| std::str::from_utf8(v).ok());
        let any_is = |a: &AttrView<'a>, want: &str| {
            a.values().any(|v| v.eq_ignore_ascii_case(want.as_bytes()))
        };
        for a in &view.attrs {
            if facts.mail.is_none() && a.is_named("mail") {
                facts.mail = first(a);
            } else if facts.kind.is_none() && a.is_named("onePagesAccountType") {
                facts.kind = first(a);
            } else if a.is_named("objectClass") {
                facts.service_class |= any_is(a, "onePagesService");
            } else if a.is_named("onePagesStatus") {
                facts.disabled |= a.values().any(|v| !status_is_active(v));
            }
        }
        facts
    }

    fn security(&self, domains: &BTreeSet<String>) -> Option<Security> {
        let mail = self.mail?;
        let kind = self.kind.unwrap_or("user");
        if kind.eq_ignore_ascii_case("external") {
            return Some(Security::External);
        }
        if kind.eq_ignore_ascii_case("service") || self.service_class {
            return Some(Security::NotAUser);
        }
        if self.disabled {
            return Some(Security::Disabled);
        }
        let Some(at) = mail.as_bytes().iter().rposition(|b| *b == b'@') else {
            return Some(Security::UnregisteredDomain);
        };
        let domain = mail.get(at + 1..).unwrap_or_default().trim();
        if !domain.is_ascii() {
            let registered = domain_ascii(domain).is_ok_and(|d| domains.contains(&d));
            return Some(if registered {
                Security::Secure
            } else {
                Security::UnregisteredDomain
            });
        }
        // Lower-case on the stack when short.
        let mut buf = [0u8; 128];
        let registered = match buf.get_mut(..domain.len()) {
            Some(lower) => {
                lower.copy_from_slice(domain.as_bytes());
                lower.make_ascii_lowercase();
                std::str::from_utf8(lower).is_ok_and(|d| domains.contains(d))
            }
            None => domains.contains(&domain.to_ascii_lowercase()),
        };
        Some(if registered {
            Security::Secure
        } else {
            Security::UnregisteredDomain
        })
    }
}
