//! Schema checks for entries about to be written (RFC 4512 §2.4 and §2.5).
//!
//! [`prepare`] turns client- or file-supplied attributes into a stored entry: names in the
//! schema's spelling, the superclasses of every object class listed, the naming attributes
//! present, required attributes present, no attribute the classes do not allow, single-valued
//! attributes with one value, one structural class chain, values valid for their syntax and
//! unable to mislead (see [`super::values`]: no control characters or direction overrides,
//! enumerations from `X-ALLOWED-VALUES`, mail addresses, telephone numbers, a person's uid as
//! a ONE ID username). Operational attributes supplied
//! by an import of another server's data are kept where they mean the same here (timestamps,
//! creators, entryUUID) and dropped where they are computed (entryDN, hasSubordinates...).

use super::dn::Dn;
use super::entry::Entry;
use super::matching::Syntax;
use super::schema::{AttributeType, ClassKind, ObjectClass, Schema};
use super::values;

/// Operational attributes that an import may carry and that are recomputed, not stored.
const COMPUTED: &[&str] = &[
    "entryDN",
    "hasSubordinates",
    "subschemaSubentry",
    "structuralObjectClass",
    "entryCSN",
    "contextCSN",
    "numSubordinates",
    "oneMailSecure",
];

/// Operational attributes a client may not set over LDAP but an import may carry over.
pub const PRESERVED_ON_IMPORT: &[&str] = &[
    "createTimestamp",
    "modifyTimestamp",
    "creatorsName",
    "modifiersName",
    "entryUUID",
    "onePagesLastSignIn",
    "onePagesStatusChanged",
];

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ValidationError {
    #[error("{0}")]
    ObjectClassViolation(String),
    #[error("{0}")]
    UndefinedAttributeType(String),
    #[error("{0}")]
    InvalidAttributeSyntax(String),
    #[error("{0}")]
    NamingViolation(String),
    #[error("{0}")]
    ConstraintViolation(String),
}

/// Whether operational attributes come from a trusted import or from an LDAP client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Import,
    Client,
}

/// Why an import leaves this attribute out, if it does: computed by the server, or
/// maintained by it (and not one of [`PRESERVED_ON_IMPORT`]). `None`: the attribute is
/// kept (or, if the schema lacks it, refused).
pub fn dropped_on_import(schema: &Schema, name: &str) -> Option<&'static str> {
    let base = name.split(';').next().unwrap_or(name);
    if COMPUTED.iter().any(|c| c.eq_ignore_ascii_case(base)) {
        return Some("computed by the server");
    }
    let at = schema.attr(base)?;
    let preserved = PRESERVED_ON_IMPORT
        .iter()
        .any(|p| p.eq_ignore_ascii_case(at.name()));
    ((at.no_user_modification || at.usage.is_operational()) && !preserved)
        .then_some("maintained by the server")
}

/// Builds the stored form of an entry from its DN and attributes, or says what is wrong.
pub fn prepare(
    schema: &Schema,
    dn: &Dn,
    attrs: Vec<(String, Vec<Vec<u8>>)>,
    source: Source,
) -> Result<Entry, ValidationError> {
    let mut entry = Entry::new(dn.to_string(), dn.normalize(schema));
    let mut unknown = Vec::new();
    for (name, values) in attrs {
        let base = name.split(';').next().unwrap_or(&name);
        if COMPUTED.iter().any(|c| c.eq_ignore_ascii_case(base)) {
            if source == Source::Client {
                return Err(ValidationError::ConstraintViolation(format!(
                    "{base} is computed by the server and cannot be set"
                )));
            }
            continue;
        }
        // `;binary` names the same values; any other option is not recognized (RFC 4512
        // §2.5.2), and refused rather than stored under the bare type.
        let at = match schema.attr_described(&name) {
            Ok(at) => at,
            Err(why) => {
                unknown.push(ValidationError::UndefinedAttributeType(why.to_string()));
                continue;
            }
        };
        if at.no_user_modification || at.usage.is_operational() {
            let preserved = PRESERVED_ON_IMPORT
                .iter()
                .any(|p| p.eq_ignore_ascii_case(at.name()));
            if source == Source::Client || !preserved {
                if source == Source::Import {
                    continue;
                }
                return Err(ValidationError::ConstraintViolation(format!(
                    "{} is maintained by the server and cannot be set",
                    at.name()
                )));
            }
        }
        if values.is_empty() {
            continue;
        }
        entry.add_values(schema, &name, values);
    }
    if let Err(e) = check(schema, &mut entry, dn) {
        unknown.push(e);
    }
    combine(unknown)?;
    Ok(entry)
}

/// Checks (and completes) an entry against the schema; used after modifications too.
pub fn check(schema: &Schema, entry: &mut Entry, dn: &Dn) -> Result<(), ValidationError> {
    // Object classes: known, expanded with their superclasses, one structural chain.
    let listed: Vec<String> = entry
        .values("objectClass")
        .iter()
        .map(|v| String::from_utf8_lossy(v).trim().to_string())
        .collect();
    if listed.is_empty() {
        return Err(ValidationError::ObjectClassViolation(
            "entry has no objectClass".into(),
        ));
    }
    // Classes by index: this runs for every record of an import.
    let mut classes: Vec<usize> = Vec::new();
    for name in &listed {
        let Some(index) = schema.class_index(name) else {
            return Err(ValidationError::ObjectClassViolation(format!(
                "unknown object class '{name}'"
            )));
        };
        schema.push_class_chain(index, &mut classes);
    }
    let class_defs: Vec<&ObjectClass> = classes
        .iter()
        .filter_map(|i| schema.class_by_index(*i))
        .collect();
    structural_chain(schema, &classes)?;
    entry.set_values(
        schema,
        "objectClass",
        class_defs
            .iter()
            .map(|c| c.names.first().unwrap_or(&c.oid).as_bytes().to_vec())
            .collect(),
    );

    // Naming attributes: each RDN value must be among the entry's values.
    if let Some(rdn) = dn.rdn() {
        for ava in &rdn.0 {
            let Some(at) = schema.attr(&ava.attr) else {
                return Err(ValidationError::NamingViolation(format!(
                    "unknown naming attribute '{}'",
                    ava.attr
                )));
            };
            let rule = at.equality.unwrap_or(super::matching::Rule::CaseIgnore);
            let want = rule.normalize(ava.value.as_bytes(), schema);
            let present = entry
                .values(at.name())
                .iter()
                .any(|v| rule.normalize(v, schema) == want);
            if !present {
                if entry.values(at.name()).is_empty() || !at.single_value {
                    entry.add_values(schema, at.name(), vec![ava.value.as_bytes().to_vec()]);
                } else {
                    return Err(ValidationError::NamingViolation(format!(
                        "the RDN value {}={} is not among the entry's values",
                        at.name(),
                        ava.value
                    )));
                }
            }
        }
    }

    let is_class = |name: &str| {
        class_defs
            .iter()
            .any(|c| c.names.iter().any(|n| n.eq_ignore_ascii_case(name)))
    };
    // Outlook shows displayName; every person has one (the cn unless given).
    if is_class("inetOrgPerson") && entry.get("displayName").is_none() {
        if let Some(cn) = entry.values("cn").first().cloned() {
            entry.add_values(schema, "displayName", vec![cn]);
        }
    }

    // Outlook's Company and Department columns read company and department; feeds often give
    // only o and ou, or only the former: each pair fills its missing half.
    if is_class("onePagesPerson") && is_class("inetOrgPerson") {
        for (outlook, x500) in [("company", "o"), ("department", "ou")] {
            let from_x500 = entry.values(x500).first().cloned();
            let from_outlook = entry.values(outlook).first().cloned();
            match (from_outlook, from_x500) {
                (None, Some(v)) => entry.add_values(schema, outlook, vec![v]),
                (Some(v), None) => entry.add_values(schema, x500, vec![v]),
                _ => {}
            }
        }
    }

    // From here on every problem is collected, so that a refused record lists them all.
    let mut problems: Vec<ValidationError> = Vec::new();
    // Allowed and required attributes, as ids.
    let extensible = is_class("extensibleObject");
    let mut allowed = vec![false; schema.attribute_types().len()];
    for i in &classes {
        let Some(class) = schema.class_attrs(*i) else {
            continue;
        };
        for id in class.must.iter().chain(&class.may) {
            if let Some(slot) = allowed.get_mut(*id) {
                *slot = true;
            }
        }
        for id in &class.must {
            let name = schema.attr_by_id(*id).map_or("", |a| a.name());
            if entry.get(name).is_none() {
                problems.push(ValidationError::ObjectClassViolation(format!(
                    "attribute '{name}' is required by the entry's object classes"
                )));
            }
        }
    }
    for attr in &entry.attrs {
        let Some(id) = schema.attr_id(&attr.name) else {
            continue;
        };
        let Some(at) = schema.attr_by_id(id) else {
            continue;
        };
        if !extensible && !at.usage.is_operational() && !allowed.get(id).copied().unwrap_or(false) {
            problems.push(ValidationError::ObjectClassViolation(format!(
                "attribute '{}' is not allowed by the object classes {}",
                at.name(),
                listed.join(", ")
            )));
        }
        if at.single_value && attr.values.len() > 1 {
            problems.push(ValidationError::ConstraintViolation(format!(
                "attribute '{}' is single-valued",
                at.name()
            )));
        }
        for v in &attr.values {
            if let Err(e) = check_syntax(schema, at, v) {
                problems.push(e);
            }
        }
    }
    // A public webmail domain cannot be secure unless forced, with a reason kept on the entry.
    if is_class("onePagesMailDomain") {
        let reason = entry
            .first_str("onePagesForcedReason")
            .map(str::trim)
            .unwrap_or("");
        for v in entry.values("associatedDomain") {
            let domain = String::from_utf8_lossy(v);
            let Some(listed) = values::public_webmail(&domain) else {
                continue;
            };
            if reason.chars().count() < 8 {
                problems.push(ValidationError::ConstraintViolation(format!(
                    "{domain} is a public webmail domain (listed as {listed}): anyone can get an \
                     address there, so it is not registered as secure unless forced with a \
                     reason of at least 8 characters (onePagesForcedReason; onepages domains \
                     add {domain} --force --reason \"...\")"
                )));
            }
        }
    }
    // A person signs in with its ONE ID: its uid has that form.
    if is_class("person") {
        let domain = &schema.value_rules().oneid_domain;
        for v in entry.values("uid") {
            if let Some(why) = values::oneid_problem(&String::from_utf8_lossy(v), domain) {
                problems.push(ValidationError::InvalidAttributeSyntax(format!(
                    "uid: {why}"
                )));
            }
        }
    }
    combine(problems)
}

/// Every problem of a record as one refusal: the first one's kind (its LDAP result code),
/// the messages joined by "; ".
pub fn combine(problems: Vec<ValidationError>) -> Result<(), ValidationError> {
    let mut it = problems.into_iter();
    let Some(first) = it.next() else {
        return Ok(());
    };
    let rest: Vec<String> = it.map(|e| e.to_string()).collect();
    if rest.is_empty() {
        return Err(first);
    }
    let text = format!("{first}; {}", rest.join("; "));
    Err(match first {
        ValidationError::ObjectClassViolation(_) => ValidationError::ObjectClassViolation(text),
        ValidationError::UndefinedAttributeType(_) => ValidationError::UndefinedAttributeType(text),
        ValidationError::InvalidAttributeSyntax(_) => ValidationError::InvalidAttributeSyntax(text),
        ValidationError::NamingViolation(_) => ValidationError::NamingViolation(text),
        ValidationError::ConstraintViolation(_) => ValidationError::ConstraintViolation(text),
    })
}

/// RFC 4512 §2.4.2: an entry belongs to exactly one structural class chain, so its
/// structural classes all lie on the superclass chain of one of them.
fn structural_chain(schema: &Schema, classes: &[usize]) -> Result<(), ValidationError> {
    let structural: Vec<usize> = classes
        .iter()
        .copied()
        .filter(|i| schema.class_by_index(*i).map(|c| c.kind) == Some(ClassKind::Structural))
        .collect();
    if structural.is_empty() {
        return Err(ValidationError::ObjectClassViolation(
            "entry has no structural object class".into(),
        ));
    }
    let covers_all = |i: usize| {
        let mut chain = Vec::new();
        schema.push_class_chain(i, &mut chain);
        structural.iter().all(|s| chain.contains(s))
    };
    if structural.iter().any(|i| covers_all(*i)) {
        return Ok(());
    }
    let names: Vec<&str> = structural
        .iter()
        .filter_map(|i| schema.class_by_index(*i))
        .map(|c| c.names.first().map_or(c.oid.as_str(), String::as_str))
        .collect();
    Err(ValidationError::ObjectClassViolation(format!(
        "an entry has one structural object class chain, and {} are not on one",
        names.join(", ")
    )))
}

fn check_syntax(schema: &Schema, at: &AttributeType, value: &[u8]) -> Result<(), ValidationError> {
    let name = at.name();
    let bad = |why: &str| {
        Err(ValidationError::InvalidAttributeSyntax(format!(
            "{name}: {why}"
        )))
    };
    if at.syntax.is_human_readable() && std::str::from_utf8(value).is_err() {
        return bad("value is not valid UTF-8");
    }
    if at.syntax.is_human_readable() && value.iter().all(u8::is_ascii_whitespace) {
        return bad("empty value");
    }
    if at.syntax.is_human_readable() {
        let text = String::from_utf8_lossy(value);
        if let Some(why) = values::text_problem(&text) {
            return bad(&why);
        }
        if !at.allowed_values.is_empty() {
            if !at
                .allowed_values
                .iter()
                .any(|a| a.eq_ignore_ascii_case(&text))
            {
                return bad(&format!(
                    "'{text}' is not one of {}",
                    at.allowed_values.join(", ")
                ));
            }
            return Ok(());
        }
        let problem = match at.syntax {
            Syntax::PrintableString => values::printable_problem(&text),
            Syntax::CountryString => values::country_problem(&text),
            // A facsimile number may carry `$`-separated parameters (RFC 4517 §3.3.11).
            Syntax::TelephoneNumber => {
                values::telephone_problem(text.split('$').next().unwrap_or(""))
            }
            _ => None,
        };
        let problem = problem.or_else(|| match name {
            "mail" => values::mail_problem(&text),
            "associatedDomain" => values::domain_problem(&text),
            _ => None,
        });
        if let Some(why) = problem {
            return bad(&why);
        }
    }
    if let Some(held) = super::certificate::Held::of(at) {
        if let Err(why) = super::certificate::check(held, value) {
            return bad(&why);
        }
    }
    if let Some(rule) = at.equality {
        if !matches!(rule, super::matching::Rule::OctetString)
            && rule.try_normalize(value, schema).is_none()
        {
            return bad(&format!(
                "'{}' is not a valid value",
                String::from_utf8_lossy(value)
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(list: &[(&str, &str)]) -> Vec<(String, Vec<Vec<u8>>)> {
        list.iter()
            .map(|(a, v)| ((*a).to_string(), vec![v.as_bytes().to_vec()]))
            .collect()
    }

    #[test]
    fn completes_a_person() {
        let schema = Schema::builtin().unwrap();
        let dn = Dn::parse("uid=dewey.rahim@oneid.on.ca,ou=people,dc=x").unwrap();
        let e = prepare(
            &schema,
            &dn,
            attrs(&[
                ("objectclass", "inetOrgPerson"),
                ("CN", "Dewey Rahim"),
                ("sn", "Rahim"),
                ("entryCSN", "x"),
            ]),
            Source::Import,
        )
        .unwrap();
        assert_eq!(e.values("objectClass").len(), 4);
        assert_eq!(e.first_str("uid"), Some("dewey.rahim@oneid.on.ca"));
        assert!(e.get("entryCSN").is_none());
        assert_eq!(e.attrs[0].name, "objectClass");
        assert_eq!(e.attrs[1].name, "cn");
    }

    /// Issue 15, point 8: Outlook's Company and Department columns are never empty when a
    /// feed gives o and ou (and the reverse).
    #[test]
    fn company_and_department_fill_from_o_and_ou() {
        let schema = Schema::builtin().unwrap();
        let dn = Dn::parse("uid=x@oneid.on.ca,dc=x").unwrap();
        let person = [
            ("objectClass", "inetOrgPerson"),
            ("objectClass", "onePagesPerson"),
            ("cn", "X"),
            ("sn", "X"),
        ];
        let mut a = person.to_vec();
        a.extend([("o", "Lakeshore General"), ("ou", "Cardiology")]);
        let e = prepare(&schema, &dn, attrs(&a), Source::Import).unwrap();
        assert_eq!(e.first_str("company"), Some("Lakeshore General"));
        assert_eq!(e.first_str("department"), Some("Cardiology"));
        let mut b = person.to_vec();
        b.extend([
            ("company", "Lakeshore General"),
            ("department", "Cardiology"),
            ("o", "LG"),
        ]);
        let e = prepare(&schema, &dn, attrs(&b), Source::Client).unwrap();
        assert_eq!(e.first_str("o"), Some("LG"), "a given o is kept");
        assert_eq!(e.first_str("ou"), Some("Cardiology"));
    }

    /// Issue 15, point 3: a refused record lists every problem, not just the first.
    #[test]
    fn a_refusal_lists_every_problem() {
        let schema = Schema::builtin().unwrap();
        let dn = Dn::parse("uid=x@oneid.on.ca,dc=x").unwrap();
        let err = prepare(
            &schema,
            &dn,
            attrs(&[
                ("objectClass", "inetOrgPerson"),
                ("cn", "X"),
                ("mail", "x@@one-mail"),
                ("telephoneNumber", "not a phone"),
                ("pagerCode", "7"),
            ]),
            Source::Import,
        )
        .unwrap_err();
        let text = err.to_string();
        for part in ["pagerCode", "'sn' is required", "mail:", "telephoneNumber:"] {
            assert!(text.contains(part), "{part}: {text}");
        }
        assert!(matches!(err, ValidationError::UndefinedAttributeType(_)));
    }

    #[test]
    fn rejects_what_the_schema_forbids() {
        let schema = Schema::builtin().unwrap();
        let dn = Dn::parse("cn=x,dc=x").unwrap();
        let cases = [
            vec![("objectClass", "person"), ("sn", "x"), ("mail", "x@y")],
            vec![("objectClass", "nosuchclass"), ("sn", "x")],
            vec![("objectClass", "person")],
            vec![("objectClass", "person"), ("sn", "x"), ("bogus", "1")],
            vec![("objectClass", "onePagesPerson"), ("sn", "x")],
        ];
        for c in cases {
            assert!(
                prepare(&schema, &dn, attrs(&c), Source::Client).is_err(),
                "{c:?}"
            );
        }
        let r = prepare(
            &schema,
            &dn,
            attrs(&[
                ("objectClass", "person"),
                ("sn", "x"),
                ("createTimestamp", "20260101000000Z"),
            ]),
            Source::Client,
        );
        assert!(matches!(r, Err(ValidationError::ConstraintViolation(_))));
    }
}
