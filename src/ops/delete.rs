//! Delete (RFC 4511 §4.8): administrators remove leaf entries.

use super::context::RequestContext;
use super::{parse_dn, write, OpResult};
use crate::dsa::{Change, Dsa};

pub fn delete(dsa: &Dsa, ctx: &RequestContext<'_>, dn_text: &str) -> OpResult<()> {
    super::writer(dsa, ctx)?;
    let dn = parse_dn(dn_text)?;
    write(dsa, ctx, Change::Delete { dn })
}
