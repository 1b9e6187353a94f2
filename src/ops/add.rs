//! Add (RFC 4511 §4.7): administrators create entries.

use ldap3_proto::proto::LdapAddRequest;

use super::{first_refusal, parse_dn, prepare_passwords, require_writer, OpResult};
use crate::directory::access::Identity;
use crate::directory::validate::{prepare, Source};
use crate::dsa::{stamp_created, Change, Dsa};

pub fn add(dsa: &Dsa, who: &Identity, req: &LdapAddRequest) -> OpResult<()> {
    require_writer(dsa, who)?;
    let dn = parse_dn(&req.dn)?;
    let mut attrs = Vec::with_capacity(req.attributes.len());
    for a in &req.attributes {
        let values = if a.atype.eq_ignore_ascii_case("userPassword") {
            prepare_passwords(dsa, &a.vals)?
        } else {
            a.vals.clone()
        };
        attrs.push((a.atype.clone(), values));
    }
    let mut entry = prepare(&dsa.schema, &dn, attrs, Source::Client)?;
    stamp_created(&dsa.schema, &mut entry, who.dn());
    first_refusal(dsa.apply(vec![Change::Add(entry)])?)
}
