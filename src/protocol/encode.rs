//! Encoding of response PDUs.
//!
//! Search result entries, the bulk of what the server sends, are written straight into bytes
//! ([`encode_entry`]); everything else goes through ldap3_proto's message types.

use bytes::{BufMut, BytesMut};
use smallvec::SmallVec;

use crate::ops::search::Found;
use ldap3_lber::structure::StructureTag;
use ldap3_proto::proto::{
    LdapExtendedResponse, LdapMsg, LdapOp, LdapResult, LdapResultCode, LdapSearchResultEntry,
};

/// RFC 4511 §4.4.1.
pub const NOTICE_OF_DISCONNECTION: &str = "1.3.6.1.4.1.1466.20036";

pub fn encode(msg: LdapMsg) -> BytesMut {
    let tag: StructureTag = msg.into();
    let mut buf = BytesMut::with_capacity(256);
    // Writing into memory cannot fail.
    let _ = ldap3_lber::write::encode_into(&mut buf, tag);
    buf
}

pub fn notice_of_disconnection(code: LdapResultCode, message: &str) -> BytesMut {
    encode(LdapMsg::new(
        0,
        LdapOp::ExtendedResponse(LdapExtendedResponse {
            res: LdapResult {
                code,
                matcheddn: String::new(),
                message: message.to_string(),
                referral: Vec::new(),
            },
            name: Some(NOTICE_OF_DISCONNECTION.to_string()),
            value: None,
        }),
    ))
}

/// The response operation for a request tag carrying `result`, or `None` for requests that
/// have no response (unbind, abandon) and tags that are not requests.
pub fn response_for(op_tag: u64, result: LdapResult) -> Option<LdapOp> {
    Some(match op_tag {
        0 => LdapOp::BindResponse(ldap3_proto::proto::LdapBindResponse {
            res: result,
            saslcreds: None,
        }),
        3 => LdapOp::SearchResultDone(result),
        6 => LdapOp::ModifyResponse(result),
        8 => LdapOp::AddResponse(result),
        10 => LdapOp::DelResponse(result),
        12 => LdapOp::ModifyDNResponse(result),
        14 => LdapOp::CompareResult(result),
        23 => LdapOp::ExtendedResponse(LdapExtendedResponse {
            res: result,
            name: None,
            value: None,
        }),
        _ => return None,
    })
}

/// Appends a definite-length BER element.
pub fn put_tlv(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    put_header(out, tag, content.len());
    out.extend_from_slice(content);
}

/// The minimal two's-complement content octets of an INTEGER.
pub fn int_bytes(v: i64) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let mut start = 0;
    while start < 7 {
        let a = bytes.get(start).copied().unwrap_or(0);
        let b = bytes.get(start + 1).copied().unwrap_or(0);
        let redundant = (a == 0 && b & 0x80 == 0) || (a == 0xff && b & 0x80 != 0);
        if !redundant {
            break;
        }
        start += 1;
    }
    bytes.get(start..).unwrap_or_default().to_vec()
}

/// A SearchResultEntry message (RFC 4511 §4.5.2), written directly.
pub fn encode_entry(msgid: i32, entry: &LdapSearchResultEntry) -> Vec<u8> {
    let mut out = Vec::new();
    encode_entry_into(&mut out, msgid, entry);
    out
}

/// Bytes of a length field.
fn len_of_len(len: usize) -> usize {
    if len < 0x80 {
        1
    } else {
        1 + (usize::BITS - len.leading_zeros()).div_ceil(8) as usize
    }
}

/// Bytes of a whole element with `len` content bytes.
fn tlv_size(len: usize) -> usize {
    1 + len_of_len(len) + len
}

fn put_header(out: &mut impl BufMut, tag: u8, len: usize) {
    out.put_u8(tag);
    if len < 0x80 {
        out.put_u8(u8::try_from(len).unwrap_or(0));
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let significant = bytes.get(skip..).unwrap_or_default();
        out.put_u8(0x80 | u8::try_from(significant.len()).unwrap_or(0));
        out.put_slice(significant);
    }
}

/// Appends a SearchResultEntry message: lengths are computed first, then every byte is
/// written once, with no intermediate buffers.
pub fn encode_entry_into(out: &mut impl BufMut, msgid: i32, entry: &LdapSearchResultEntry) {
    encode_found_into(out, msgid, &Found::of(entry));
}

/// [`encode_entry_into`] for an entry rendered in place by a search.
pub fn encode_found_into(out: &mut impl BufMut, msgid: i32, entry: &Found<'_>) {
    // Content lengths of each attribute's value set and of the attribute, computed once.
    let mut lens: SmallVec<[(usize, usize); 32]> = SmallVec::with_capacity(entry.attributes.len());
    let mut attrs_len = 0;
    for a in &entry.attributes {
        let mut vals_len = 0;
        a.values
            .each(|v, suffix| vals_len += tlv_size(v.len() + suffix.len()));
        let one_len = tlv_size(a.name.len()) + tlv_size(vals_len);
        attrs_len += tlv_size(one_len);
        lens.push((vals_len, one_len));
    }
    let op_len = tlv_size(entry.dn.len()) + tlv_size(attrs_len);
    let id = int_bytes(i64::from(msgid));
    let body_len = tlv_size(id.len()) + tlv_size(op_len);
    put_header(out, 0x30, body_len);
    put_header(out, 0x02, id.len());
    out.put_slice(&id);
    put_header(out, 0x64, op_len);
    put_header(out, 0x04, entry.dn.len());
    out.put_slice(entry.dn.as_bytes());
    put_header(out, 0x30, attrs_len);
    for (a, (vals_len, one_len)) in entry.attributes.iter().zip(lens) {
        put_header(out, 0x30, one_len);
        put_header(out, 0x04, a.name.len());
        out.put_slice(&a.name);
        put_header(out, 0x31, vals_len);
        a.values.each(|v, suffix| {
            put_header(out, 0x04, v.len() + suffix.len());
            out.put_slice(v);
            out.put_slice(suffix);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ldap3_proto::proto::LdapPartialAttribute;

    #[test]
    fn direct_entry_encoding_matches_ldap3_proto() {
        let entry = LdapSearchResultEntry {
            dn: "uid=x,dc=example".into(),
            attributes: vec![
                LdapPartialAttribute {
                    atype: "cn".into(),
                    vals: vec![b"X".to_vec(), "Hélène".as_bytes().to_vec()],
                },
                LdapPartialAttribute {
                    atype: "description".into(),
                    vals: vec![vec![b'y'; 300]],
                },
                LdapPartialAttribute {
                    atype: "empty".into(),
                    vals: vec![],
                },
                LdapPartialAttribute {
                    atype: "jpegPhoto".into(),
                    vals: vec![vec![0xff; 70_000], vec![0; 127], vec![1; 128], vec![2; 255]],
                },
            ],
        };
        for msgid in [1, 127, 128, 300, 2_147_483_647] {
            let direct = encode_entry(msgid, &entry);
            let reference = encode(LdapMsg::new(
                msgid,
                LdapOp::SearchResultEntry(entry.clone()),
            ));
            assert_eq!(direct, reference.to_vec(), "msgid {msgid}");
        }
    }
}
