//! What a modify or a rename does to an entry (RFC 4511 §4.6, §4.9; RFC 4525 increment),
//! computed on a copy: the writer then checks the result against the schema as a whole.

use super::change::{Edit, EditKind, WriteRefusal};
use crate::directory::dn::{Dn, Rdn};
use crate::directory::entry::Entry;
use crate::directory::schema::Schema;
use crate::directory::validate::ValidationError;

fn syntax(m: String) -> WriteRefusal {
    WriteRefusal::Invalid(ValidationError::InvalidAttributeSyntax(m))
}

fn constraint(m: String) -> WriteRefusal {
    WriteRefusal::Invalid(ValidationError::ConstraintViolation(m))
}

/// Applies modifications in order; any failing one refuses the whole modify.
pub(super) fn apply_edits(
    schema: &Schema,
    entry: &mut Entry,
    edits: &[Edit],
    dn: &Dn,
) -> Result<(), WriteRefusal> {
    for edit in edits {
        let at = schema.attr_described(&edit.attr).map_err(|why| {
            WriteRefusal::Invalid(ValidationError::UndefinedAttributeType(why.to_string()))
        })?;
        if at.no_user_modification || crate::directory::filter::is_virtual(at.name()) {
            return Err(constraint(format!(
                "{} is maintained by the server",
                at.name()
            )));
        }
        let canonical = at.name().to_string();
        let rule = at.equality;
        let norm = |v: &[u8]| match rule {
            Some(r) => r.normalize(v, schema),
            None => v.to_vec(),
        };
        let values = edit.values.clone();
        match edit.kind {
            EditKind::Add => {
                let existing: Vec<Vec<u8>> =
                    entry.values(&canonical).iter().map(|v| norm(v)).collect();
                if let Some(dup) = values.iter().find(|v| existing.contains(&norm(v))) {
                    return Err(WriteRefusal::ValueExists(format!(
                        "{canonical} already has the value '{}'",
                        String::from_utf8_lossy(dup)
                    )));
                }
                entry.add_values(schema, &canonical, values);
            }
            EditKind::Delete => {
                if entry.get(&canonical).is_none() {
                    return Err(WriteRefusal::NoSuchAttribute(format!(
                        "the entry has no {canonical} attribute"
                    )));
                }
                if values.is_empty() {
                    entry.remove(&canonical);
                } else {
                    let gone: Vec<Vec<u8>> = values.iter().map(|v| norm(v)).collect();
                    let current = entry.values(&canonical).to_vec();
                    if gone.iter().any(|g| !current.iter().any(|c| norm(c) == *g)) {
                        return Err(WriteRefusal::NoSuchAttribute(format!(
                            "{canonical} has no such value"
                        )));
                    }
                    let kept: Vec<Vec<u8>> = current
                        .into_iter()
                        .filter(|c| !gone.contains(&norm(c)))
                        .collect();
                    entry.set_values(schema, &canonical, kept);
                }
            }
            EditKind::Replace => entry.set_values(schema, &canonical, values),
            EditKind::Increment => {
                let by: i64 = values
                    .first()
                    .and_then(|v| std::str::from_utf8(v).ok())
                    .and_then(|s| s.trim().parse().ok())
                    .ok_or_else(|| syntax("increment needs one integer value".into()))?;
                let current = entry.values(&canonical).to_vec();
                if current.is_empty() {
                    return Err(WriteRefusal::NoSuchAttribute(format!(
                        "the entry has no {canonical} attribute"
                    )));
                }
                let mut next = Vec::with_capacity(current.len());
                for v in current {
                    let n: i64 = std::str::from_utf8(&v)
                        .ok()
                        .and_then(|s| s.trim().parse().ok())
                        .ok_or_else(|| constraint(format!("{canonical} is not an integer")))?;
                    next.push(n.saturating_add(by).to_string().into_bytes());
                }
                entry.set_values(schema, &canonical, next);
            }
        }
    }
    // RFC 4511 §4.6: the RDN values cannot be removed by a modify.
    if let Some(rdn) = dn.rdn() {
        for ava in &rdn.0 {
            let rule = schema.attr(&ava.attr).and_then(|a| a.equality);
            let want = rule.map(|r| r.normalize(ava.value.as_bytes(), schema));
            let present = entry
                .values(schema.canonical_name(&ava.attr))
                .iter()
                .any(|v| rule.map(|r| r.normalize(v, schema)) == want);
            if !present {
                return Err(WriteRefusal::NotAllowedOnRdn(format!(
                    "{}={} names the entry and cannot be removed",
                    ava.attr, ava.value
                )));
            }
        }
    }
    Ok(())
}

/// The entry under its new name: the new RDN's values added, the old RDN's removed when asked
/// (and not kept by the new one).
pub(super) fn renamed(
    schema: &Schema,
    old: &Entry,
    dn: &Dn,
    new_dn: &Dn,
    new_rdn: &Rdn,
    delete_old_rdn: bool,
) -> Entry {
    let mut entry = old.clone();
    entry.dn = new_dn.to_string();
    entry.ndn = new_dn.normalize(schema);
    if delete_old_rdn {
        if let Some(old_rdn) = dn.rdn() {
            for ava in &old_rdn.0 {
                let kept_by_new = new_rdn.0.iter().any(|n| {
                    schema.canonical_lower(&n.attr) == schema.canonical_lower(&ava.attr)
                        && schema.normalize_value(&n.attr, n.value.as_bytes())
                            == schema.normalize_value(&ava.attr, ava.value.as_bytes())
                });
                if kept_by_new {
                    continue;
                }
                let name = schema.canonical_name(&ava.attr).to_string();
                let gone = schema.normalize_value(&name, ava.value.as_bytes());
                let kept: Vec<Vec<u8>> = entry
                    .values(&name)
                    .iter()
                    .filter(|v| schema.normalize_value(&name, v) != gone)
                    .cloned()
                    .collect();
                entry.set_values(schema, &name, kept);
            }
        }
    }
    for ava in &new_rdn.0 {
        entry.add_values(schema, &ava.attr, vec![ava.value.as_bytes().to_vec()]);
    }
    entry
}
