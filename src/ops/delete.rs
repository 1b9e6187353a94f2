//! Delete (RFC 4511 §4.8): administrators remove leaf entries.

use super::{first_refusal, no_such_object, parse_dn, require_writer, OpResult};
use crate::directory::access::Identity;
use crate::dsa::{Change, Dsa};

pub fn delete(dsa: &Dsa, who: &Identity, dn_text: &str) -> OpResult<()> {
    require_writer(dsa, who)?;
    let dn = parse_dn(dn_text)?;
    let Some((id, old)) = dsa.store.get_by_ndn(&dn.normalize(&dsa.schema))? else {
        return Err(no_such_object(dsa, &dn));
    };
    first_refusal(dsa.apply(vec![Change::Delete { id, old }])?)
}
