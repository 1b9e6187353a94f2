//! Modify (RFC 4511 §4.6, RFC 4525 increment): administrators change attributes.
//!
//! Changes apply in order to a copy of the entry; the result must pass the schema checks as a
//! whole, or nothing is written.

use ldap3_proto::proto::{LdapModifyRequest, LdapModifyType, LdapResultCode};

use super::{no_such_object, parse_dn, prepare_passwords, require_writer};
use super::{OpError, OpResult};
use crate::directory::access::Identity;
use crate::dsa::Dsa;

pub fn modify(dsa: &Dsa, who: &Identity, req: &LdapModifyRequest) -> OpResult<()> {
    require_writer(dsa, who)?;
    let schema = &dsa.schema;
    let dn = parse_dn(&req.dn)?;
    let Some((id, old)) = dsa.store.get_by_ndn(&dn.normalize(schema))? else {
        return Err(no_such_object(dsa, &dn));
    };
    let mut entry = old.clone();
    for change in &req.changes {
        let name = change.modification.atype.as_str();
        let Some(at) = schema.attr(name) else {
            return Err(OpError::new(
                LdapResultCode::UndefinedAttributeType,
                format!("unknown attribute type '{name}'"),
            ));
        };
        if at.no_user_modification || crate::directory::filter::is_virtual(at.name()) {
            return Err(OpError::new(
                LdapResultCode::ConstraintViolation,
                format!("{} is maintained by the server", at.name()),
            ));
        }
        let canonical = at.name().to_string();
        let values = if canonical == "userPassword" {
            prepare_passwords(dsa, &change.modification.vals)?
        } else {
            change.modification.vals.clone()
        };
        let rule = at.equality;
        let norm = |v: &[u8]| match rule {
            Some(r) => r.normalize(v, schema),
            None => v.to_vec(),
        };
        match change.operation {
            LdapModifyType::Add => {
                let existing: Vec<Vec<u8>> =
                    entry.values(&canonical).iter().map(|v| norm(v)).collect();
                if let Some(dup) = values.iter().find(|v| existing.contains(&norm(v))) {
                    return Err(OpError::new(
                        LdapResultCode::AttributeOrValueExists,
                        format!(
                            "{canonical} already has the value '{}'",
                            String::from_utf8_lossy(dup)
                        ),
                    ));
                }
                entry.add_values(schema, &canonical, values);
            }
            LdapModifyType::Delete => {
                if entry.get(&canonical).is_none() {
                    return Err(OpError::new(
                        LdapResultCode::NoSuchAttribute,
                        format!("the entry has no {canonical} attribute"),
                    ));
                }
                if values.is_empty() {
                    entry.remove(&canonical);
                } else {
                    let gone: Vec<Vec<u8>> = values.iter().map(|v| norm(v)).collect();
                    let current = entry.values(&canonical).to_vec();
                    for g in &gone {
                        if !current.iter().any(|c| norm(c) == *g) {
                            return Err(OpError::new(
                                LdapResultCode::NoSuchAttribute,
                                format!("{canonical} has no such value"),
                            ));
                        }
                    }
                    let kept: Vec<Vec<u8>> = current
                        .into_iter()
                        .filter(|c| !gone.contains(&norm(c)))
                        .collect();
                    entry.set_values(schema, &canonical, kept);
                }
            }
            LdapModifyType::Replace => entry.set_values(schema, &canonical, values),
            LdapModifyType::Increment => {
                let by: i64 = values
                    .first()
                    .and_then(|v| std::str::from_utf8(v).ok())
                    .and_then(|s| s.trim().parse().ok())
                    .ok_or_else(|| {
                        OpError::new(
                            LdapResultCode::InvalidAttributeSyntax,
                            "increment needs one integer value",
                        )
                    })?;
                let current = entry.values(&canonical).to_vec();
                if current.is_empty() {
                    return Err(OpError::new(
                        LdapResultCode::NoSuchAttribute,
                        format!("the entry has no {canonical} attribute"),
                    ));
                }
                let mut next = Vec::with_capacity(current.len());
                for v in current {
                    let n: i64 = std::str::from_utf8(&v)
                        .ok()
                        .and_then(|s| s.trim().parse().ok())
                        .ok_or_else(|| {
                            OpError::new(
                                LdapResultCode::ConstraintViolation,
                                format!("{canonical} is not an integer"),
                            )
                        })?;
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
                return Err(OpError::new(
                    LdapResultCode::NotALlowedOnRDN,
                    format!(
                        "{}={} names the entry and cannot be removed",
                        ava.attr, ava.value
                    ),
                ));
            }
        }
    }
    super::replace_entry(dsa, who, id, old, entry, &dn)
}
