//! Compare (RFC 4511 §4.10): does the entry hold this value, by the attribute's equality rule?

use ldap3_proto::proto::{LdapCompareRequest, LdapResultCode};

use super::context::RequestContext;
use super::{no_such_object, parse_dn, OpError, OpResult};
use crate::directory::secret::Sight;
use crate::dsa::Dsa;

pub fn compare(dsa: &Dsa, ctx: &RequestContext<'_>, req: &LdapCompareRequest) -> OpResult<bool> {
    super::require_reader(ctx)?;
    let dn = parse_dn(&req.dn)?;
    let schema = dsa.schema();
    let at = schema
        .attr_described(&req.atype)
        .map_err(|why| OpError::new(LdapResultCode::UndefinedAttributeType, why.to_string()))?;
    let sight = if ctx.grant.is_admin() {
        Sight::Full
    } else {
        Sight::Public
    };
    if sight.hides(at.name()) {
        return Err(OpError::new(
            LdapResultCode::InsufficentAccessRights,
            format!("{} cannot be compared", at.name()),
        ));
    }
    let Some(rule) = at.equality else {
        return Err(OpError::new(
            LdapResultCode::InappropriateMatching,
            format!("{} has no equality matching rule", at.name()),
        ));
    };
    let reader = dsa.reader();
    let Some((_, mut entry)) = reader.entry(&dn.normalize(schema))? else {
        return Err(no_such_object(&reader, &dn));
    };
    if sight == Sight::Public && crate::dsa::access::is_disabled(&entry) {
        // Out of the address book for everyone but administrators.
        return Err(no_such_object(&reader, &dn));
    }
    reader.decorate(&mut entry);
    let Some(assertion) = rule.try_normalize(&req.val, schema) else {
        return Err(OpError::new(
            LdapResultCode::InvalidAttributeSyntax,
            format!("the value is not valid for {}", at.name()),
        ));
    };
    let id = schema.attr_id(at.name());
    let names: Vec<&str> = id
        .map(|i| schema.with_subtypes(i))
        .unwrap_or_default()
        .iter()
        .filter_map(|i| schema.attr_by_id(*i))
        .map(|a| a.name())
        .collect();
    let mut present = false;
    for name in names {
        for v in entry.values(name) {
            present = true;
            if rule
                .try_normalize(v, schema)
                .is_some_and(|n| n == assertion)
            {
                return Ok(true);
            }
        }
    }
    if !present {
        return Err(OpError::new(
            LdapResultCode::NoSuchAttribute,
            format!("the entry has no {} attribute", at.name()),
        ));
    }
    Ok(false)
}
