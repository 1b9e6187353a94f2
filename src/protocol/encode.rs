//! Encoding of response PDUs.

use bytes::BytesMut;
use ldap3_lber::structure::StructureTag;
use ldap3_proto::proto::{LdapExtendedResponse, LdapMsg, LdapOp, LdapResult, LdapResultCode};

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
