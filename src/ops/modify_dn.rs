//! Modify DN (RFC 4511 §4.9): rename a leaf entry or move it under another parent.

use ldap3_proto::proto::{LdapModifyDNRequest, LdapResultCode};

use super::{no_such_object, parse_dn, require_writer, OpError, OpResult};
use crate::directory::access::Identity;
use crate::directory::dn::Dn;
use crate::dsa::Dsa;

pub fn modify_dn(dsa: &Dsa, who: &Identity, req: &LdapModifyDNRequest) -> OpResult<()> {
    require_writer(dsa, who)?;
    let schema = &dsa.schema;
    let dn = parse_dn(&req.dn)?;
    let Some((id, old)) = dsa.store.get_by_ndn(&dn.normalize(schema))? else {
        return Err(no_such_object(dsa, &dn));
    };
    let new_rdn_dn = parse_dn(&req.newrdn)?;
    let (Some(new_rdn), 1) = (new_rdn_dn.rdn().cloned(), new_rdn_dn.rdns().len()) else {
        return Err(OpError::new(
            LdapResultCode::InvalidDNSyntax,
            "the new RDN must be a single RDN",
        ));
    };
    let parent = match &req.new_superior {
        Some(sup) => parse_dn(sup)?,
        None => dn.parent().unwrap_or_else(Dn::root),
    };
    let new_dn = parent.child(new_rdn.clone());
    let mut entry = old.clone();
    entry.dn = new_dn.to_string();
    entry.ndn = new_dn.normalize(schema);
    if req.deleteoldrdn {
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
    super::replace_entry(dsa, who, id, old, entry, &new_dn)
}
