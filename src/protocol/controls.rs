//! The values of the search controls ONE Pages implements, decoded from and encoded to BER.
//!
//! - Simple Paged Results, 1.2.840.113556.1.4.319 (RFC 2696)
//! - Server-Side Sort request/response, 1.2.840.113556.1.4.473 / .474 (RFC 2891)
//! - Virtual List View request/response, 2.16.840.1.113730.3.4.9 / .10
//!   (draft-ietf-ldapext-ldapv3-vlv-09)
//!
//! ldap3_proto hands VLV over undecoded and drops the criticality of the others, so all three
//! are read here from the raw control (see [`super::frame::Control`]).

use ldap3_lber::common::TagClass;
use ldap3_lber::parse::Parser;
use ldap3_lber::structure::{StructureTag, PL};

use super::frame::Control;
use crate::ops::search::request::{
    PagedRequest, ResponseControl, SearchControls, SortKey, SortRequest, VlvRequest, VlvTarget,
    MANAGE_DSA_IT_OID, SHOW_DELETED_OID,
};
pub use crate::ops::search::request::{PAGED_OID, SORT_REQUEST_OID, VLV_REQUEST_OID};
use ldap3_proto::control::LdapControl;

pub const SORT_RESPONSE_OID: &str = "1.2.840.113556.1.4.474";
pub const VLV_RESPONSE_OID: &str = "2.16.840.1.113730.3.4.10";

/// A control that could not be decoded; whether that fails the search depends on criticality.
#[derive(Debug, PartialEq, Eq)]
pub struct BadControl {
    pub oid: String,
    pub critical: bool,
    pub why: String,
}

fn parse(value: &Option<Vec<u8>>) -> Result<StructureTag, String> {
    let bytes = value.as_deref().ok_or("the control has no value")?;
    let (rest, tag) = Parser::new(16)
        .parse(bytes)
        .map_err(|_| "the control value is not valid BER".to_string())?;
    if !rest.is_empty() {
        return Err("trailing bytes in the control value".into());
    }
    Ok(tag)
}

fn seq(tag: StructureTag) -> Result<Vec<StructureTag>, String> {
    match tag {
        StructureTag {
            class: TagClass::Universal,
            id: 16,
            payload: PL::C(items),
        } => Ok(items),
        _ => Err("expected a SEQUENCE".into()),
    }
}

fn integer(tag: Option<&StructureTag>) -> Result<i64, String> {
    match tag {
        Some(StructureTag {
            class: TagClass::Universal,
            id: 2 | 10,
            payload: PL::P(b),
        }) if !b.is_empty() && b.len() <= 8 => {
            let negative = b.first().is_some_and(|x| x & 0x80 != 0);
            let init: i64 = if negative { -1 } else { 0 };
            Ok(b.iter().fold(init, |acc, x| (acc << 8) | i64::from(*x)))
        }
        _ => Err("expected an INTEGER".into()),
    }
}

fn octets(tag: Option<&StructureTag>) -> Result<Vec<u8>, String> {
    match tag {
        Some(StructureTag {
            payload: PL::P(b), ..
        }) => Ok(b.clone()),
        _ => Err("expected an OCTET STRING".into()),
    }
}

fn decode_paged(c: &Control) -> Result<PagedRequest, String> {
    let items = seq(parse(&c.value)?)?;
    let size = integer(items.first())?;
    let cookie = octets(items.get(1))?;
    Ok(PagedRequest {
        size: usize::try_from(size.max(0)).unwrap_or(usize::MAX),
        cookie,
        critical: c.critical,
    })
}

fn decode_sort(c: &Control) -> Result<SortRequest, String> {
    let mut keys = Vec::new();
    for k in seq(parse(&c.value)?)? {
        let parts = seq(k)?;
        let attr = String::from_utf8(octets(parts.first())?)
            .map_err(|_| "sort attribute is not text".to_string())?;
        let mut ordering_rule = None;
        let mut reverse = false;
        for p in parts.iter().skip(1) {
            match (p.class, p.id, &p.payload) {
                (TagClass::Context, 0, PL::P(b)) => {
                    ordering_rule = Some(String::from_utf8_lossy(b).to_string());
                }
                (TagClass::Context, 1, PL::P(b)) => reverse = b.first().is_some_and(|x| *x != 0),
                _ => return Err("unexpected element in a sort key".into()),
            }
        }
        keys.push(SortKey {
            attr,
            ordering_rule,
            reverse,
        });
    }
    if keys.is_empty() {
        return Err("the sort control has no keys".into());
    }
    Ok(SortRequest {
        keys,
        critical: c.critical,
    })
}

fn decode_vlv(c: &Control) -> Result<VlvRequest, String> {
    let items = seq(parse(&c.value)?)?;
    let before = integer(items.first())?;
    let after = integer(items.get(1))?;
    let target = match items.get(2) {
        Some(StructureTag {
            class: TagClass::Context,
            id: 0,
            payload: PL::C(parts),
        }) => VlvTarget::Offset {
            offset: integer(parts.first())?,
            content_count: integer(parts.get(1))?,
        },
        Some(StructureTag {
            class: TagClass::Context,
            id: 1,
            payload: PL::P(v),
        }) => VlvTarget::GreaterOrEqual(v.clone()),
        _ => return Err("the VLV target must be byOffset or greaterThanOrEqual".into()),
    };
    let context = items.get(3).map(|t| octets(Some(t))).transpose()?;
    if before < 0 || after < 0 {
        return Err("negative before/after counts".into());
    }
    Ok(VlvRequest {
        before: usize::try_from(before).unwrap_or(0),
        after: usize::try_from(after).unwrap_or(0),
        target,
        context,
        critical: c.critical,
    })
}

/// The search controls of a request. A malformed critical control fails the request; a
/// malformed non-critical one is ignored (RFC 4511 §4.1.11).
pub fn search_controls(controls: &[Control]) -> Result<SearchControls, BadControl> {
    let mut out = SearchControls::default();
    for c in controls {
        let bad = |why: String| BadControl {
            oid: c.oid.clone(),
            critical: c.critical,
            why,
        };
        match c.oid.as_str() {
            PAGED_OID => match decode_paged(c) {
                Ok(p) => out.paged = Some(p),
                Err(e) if c.critical => return Err(bad(e)),
                Err(_) => {}
            },
            SORT_REQUEST_OID => match decode_sort(c) {
                Ok(s) => out.sort = Some(s),
                Err(e) if c.critical => return Err(bad(e)),
                Err(_) => {}
            },
            VLV_REQUEST_OID => match decode_vlv(c) {
                Ok(v) => out.vlv = Some(v),
                Err(e) if c.critical => return Err(bad(e)),
                Err(_) => {}
            },
            SHOW_DELETED_OID => out.show_deleted = true,
            _ => {}
        }
    }
    Ok(out)
}

/// Definite-length BER encoding of one element.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    super::encode::put_tlv(&mut out, tag, content);
    out
}

use super::encode::int_bytes;

/// A response control as `(oid, value)`.
pub fn encode_response(c: &ResponseControl) -> (String, Vec<u8>) {
    match c {
        ResponseControl::Paged { size, cookie } => {
            let body = [
                tlv(0x02, &int_bytes(i64::try_from(*size).unwrap_or(i64::MAX))),
                tlv(0x04, cookie),
            ]
            .concat();
            (PAGED_OID.into(), tlv(0x30, &body))
        }
        ResponseControl::Sort { result, attr } => {
            let mut body = tlv(0x0a, &int_bytes(i64::from(*result)));
            if let Some(a) = attr {
                body.extend(tlv(0x80, a.as_bytes()));
            }
            (SORT_RESPONSE_OID.into(), tlv(0x30, &body))
        }
        ResponseControl::Vlv {
            target_position,
            content_count,
            result,
            context,
        } => {
            let mut body = [
                tlv(
                    0x02,
                    &int_bytes(i64::try_from(*target_position).unwrap_or(0)),
                ),
                tlv(0x02, &int_bytes(i64::try_from(*content_count).unwrap_or(0))),
                tlv(0x0a, &int_bytes(i64::from(*result))),
            ]
            .concat();
            if let Some(ctx) = context {
                body.extend(tlv(0x04, ctx));
            }
            (VLV_RESPONSE_OID.into(), tlv(0x30, &body))
        }
    }
}

/// Controls each operation understands; any other critical control is refused.
pub fn is_supported(op_tag: u64, oid: &str) -> bool {
    match op_tag {
        0 => oid == crate::ops::bind::PPOLICY_OID || oid == MANAGE_DSA_IT_OID,
        3 => matches!(
            oid,
            PAGED_OID | SORT_REQUEST_OID | VLV_REQUEST_OID | MANAGE_DSA_IT_OID | SHOW_DELETED_OID
        ),
        _ => oid == MANAGE_DSA_IT_OID,
    }
}

/// The password policy response control of a bind: empty, or with the error accountLocked
/// (PasswordPolicyResponseValue ::= SEQUENCE { warning [0] ... OPTIONAL, error [1] ENUMERATED
/// OPTIONAL }, as OpenLDAP's ppolicy encodes it).
pub fn password_policy_response(account_locked: bool) -> LdapControl {
    let value = if account_locked {
        vec![0x30, 0x03, 0x81, 0x01, 0x01]
    } else {
        vec![0x30, 0x00]
    };
    LdapControl::Unknown {
        oid: crate::ops::bind::PPOLICY_OID.to_string(),
        criticality: false,
        value: Some(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctrl(oid: &str, critical: bool, value: Vec<u8>) -> Control {
        Control {
            oid: oid.into(),
            critical,
            value: Some(value),
        }
    }

    #[test]
    fn vlv_and_sort_decode() {
        // beforeCount 1, afterCount 9, byOffset { offset 5, contentCount 0 }
        let vlv = tlv(
            0x30,
            &[
                tlv(0x02, &[1]),
                tlv(0x02, &[9]),
                tlv(0xa0, &[tlv(0x02, &[5]), tlv(0x02, &[0])].concat()),
            ]
            .concat(),
        );
        let sort = tlv(
            0x30,
            &tlv(0x30, &[tlv(0x04, b"cn"), tlv(0x81, &[0xff])].concat()),
        );
        let c = search_controls(&[
            ctrl(VLV_REQUEST_OID, true, vlv),
            ctrl(SORT_REQUEST_OID, false, sort),
        ])
        .unwrap();
        let v = c.vlv.unwrap();
        assert_eq!((v.before, v.after), (1, 9));
        assert_eq!(
            v.target,
            VlvTarget::Offset {
                offset: 5,
                content_count: 0
            }
        );
        assert!(v.critical);
        let s = c.sort.unwrap();
        assert_eq!(s.keys[0].attr, "cn");
        assert!(s.keys[0].reverse);
        assert!(!s.critical);
    }

    #[test]
    fn malformed_values_fail_only_when_critical() {
        let junk = vec![0x30, 0x03, 0x02];
        assert!(search_controls(&[ctrl(PAGED_OID, true, junk.clone())]).is_err());
        let c = search_controls(&[ctrl(PAGED_OID, false, junk)]).unwrap();
        assert!(c.paged.is_none());
    }

    #[test]
    fn integers_are_minimal() {
        assert_eq!(int_bytes(0), vec![0]);
        assert_eq!(int_bytes(127), vec![0x7f]);
        assert_eq!(int_bytes(128), vec![0, 0x80]);
        assert_eq!(int_bytes(-1), vec![0xff]);
        assert_eq!(int_bytes(100_000), vec![0x01, 0x86, 0xa0]);
    }
}
