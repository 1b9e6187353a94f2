//! Framing and decoding of LDAP request PDUs (RFC 4511 §4.1.1, X.690 BER).
//!
//! The length is read from the PDU header before anything is buffered beyond it, so an absurd
//! length claim is refused at once instead of waiting for (or allocating) gigabytes. Any valid
//! definite length form is accepted — Outlook sends every length in the 4-byte long form.
//!
//! The envelope (message ID, operation tag, controls) is taken apart here rather than by
//! ldap3_proto, for three reasons: a malformed operation then still gets an answer carrying its
//! message ID; control criticality is kept (ldap3_proto drops it for the controls it knows);
//! and a malformed value of a control the server ignores does not fail the whole request.

use ldap3_lber::common::TagClass;
use ldap3_lber::parse::Parser;
use ldap3_lber::structure::{StructureTag, PL};
use ldap3_proto::proto::LdapOp;

/// A request control as sent (RFC 4511 §4.1.11).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Control {
    pub oid: String,
    pub critical: bool,
    pub value: Option<Vec<u8>>,
}

/// One decoded request.
#[derive(Debug)]
pub struct Request {
    pub msgid: i32,
    /// The operation's application tag number (0 bind, 3 search ...).
    pub op_tag: u64,
    /// The decoded operation, or why it could not be decoded.
    pub op: Result<LdapOp, String>,
    pub controls: Vec<Control>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("the PDU does not start with a SEQUENCE tag (0x{0:02x})")]
    NotSequence(u8),
    #[error("indefinite lengths are not allowed in LDAP (RFC 4511 §5.1)")]
    Indefinite,
    #[error("length field of {0} bytes is too long")]
    LengthTooLong(usize),
    #[error("a PDU of {claimed} bytes exceeds the limit of {max} bytes")]
    TooLarge { claimed: u64, max: usize },
    #[error("malformed BER: {0}")]
    Malformed(String),
    #[error("bad LDAPMessage envelope: {0}")]
    Envelope(String),
}

/// Total size of the PDU at the start of `buf`, once enough of it is there to tell; `Ok(None)`
/// means "read more".
pub fn frame_len(buf: &[u8], max: usize) -> Result<Option<usize>, FrameError> {
    let Some(&tag) = buf.first() else {
        return Ok(None);
    };
    if tag != 0x30 {
        return Err(FrameError::NotSequence(tag));
    }
    let Some(&first) = buf.get(1) else {
        return Ok(None);
    };
    let (header, len) = if first < 0x80 {
        (2usize, u64::from(first))
    } else if first == 0x80 {
        return Err(FrameError::Indefinite);
    } else {
        let n = usize::from(first & 0x7f);
        if n > 8 {
            return Err(FrameError::LengthTooLong(n));
        }
        let Some(bytes) = buf.get(2..2 + n) else {
            return Ok(None);
        };
        let len = bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        (2 + n, len)
    };
    let total = (header as u64).saturating_add(len);
    if total > max as u64 {
        return Err(FrameError::TooLarge {
            claimed: total,
            max,
        });
    }
    let total = usize::try_from(total).map_err(|_| FrameError::TooLarge {
        claimed: total,
        max,
    })?;
    if buf.len() < total {
        Ok(None)
    } else {
        Ok(Some(total))
    }
}

/// Decodes one complete PDU (as delimited by [`frame_len`]).
pub fn decode(pdu: &[u8], max_depth: usize) -> Result<Request, FrameError> {
    let (rest, tag) = Parser::new(max_depth)
        .parse(pdu)
        .map_err(|e| FrameError::Malformed(format!("{e:?}").chars().take(120).collect()))?;
    if !rest.is_empty() {
        return Err(FrameError::Malformed("trailing bytes after the PDU".into()));
    }
    let items = match tag {
        StructureTag {
            class: TagClass::Universal,
            id: 16,
            payload: PL::C(items),
        } => items,
        _ => return Err(FrameError::Envelope("not a SEQUENCE".into())),
    };
    let mut it = items.into_iter();
    let msgid = match it.next() {
        Some(StructureTag {
            class: TagClass::Universal,
            id: 2,
            payload: PL::P(bytes),
        }) => parse_msgid(&bytes)?,
        _ => return Err(FrameError::Envelope("missing message ID".into())),
    };
    let op_tag = match it.next() {
        Some(t) if t.class == TagClass::Application => t,
        _ => return Err(FrameError::Envelope("missing protocol operation".into())),
    };
    let controls = match it.next() {
        None => Vec::new(),
        Some(StructureTag {
            class: TagClass::Context,
            id: 0,
            payload: PL::C(list),
        }) => decode_controls(list)?,
        Some(_) => {
            return Err(FrameError::Envelope(
                "unexpected element after the operation".into(),
            ))
        }
    };
    if it.next().is_some() {
        return Err(FrameError::Envelope("too many elements".into()));
    }
    let op_id = op_tag.id;
    let op = if known_operation(op_id, matches!(op_tag.payload, PL::C(_))) {
        LdapOp::try_from(op_tag).map_err(|e| format!("{e:?}"))
    } else {
        // Not handed to ldap3_proto: it prints every unknown operation on standard output,
        // which a client could use to flood the server's output.
        Err(format!("unknown protocol operation [APPLICATION {op_id}]"))
    };
    Ok(Request {
        msgid,
        op_tag: op_id,
        op,
        controls,
    })
}

/// The operations (tag number, constructed or not) that `LdapOp::try_from` decodes.
fn known_operation(id: u64, constructed: bool) -> bool {
    match id {
        2 => true,
        10 | 16 => !constructed,
        0 | 1 | 3..=9 | 11..=15 | 19 | 23..=25 => constructed,
        _ => false,
    }
}

fn parse_msgid(bytes: &[u8]) -> Result<i32, FrameError> {
    if bytes.is_empty() || bytes.len() > 5 {
        return Err(FrameError::Envelope("message ID out of range".into()));
    }
    let negative = bytes.first().is_some_and(|b| b & 0x80 != 0);
    if negative {
        return Err(FrameError::Envelope("negative message ID".into()));
    }
    let v = bytes.iter().fold(0i64, |acc, b| (acc << 8) | i64::from(*b));
    i32::try_from(v).map_err(|_| FrameError::Envelope("message ID out of range".into()))
}

fn decode_controls(list: Vec<StructureTag>) -> Result<Vec<Control>, FrameError> {
    let bad = |m: &str| FrameError::Envelope(format!("malformed control: {m}"));
    let mut out = Vec::with_capacity(list.len());
    for c in list {
        let parts = match c {
            StructureTag {
                class: TagClass::Universal,
                id: 16,
                payload: PL::C(parts),
            } => parts,
            _ => return Err(bad("not a SEQUENCE")),
        };
        let mut oid = None;
        let mut critical = false;
        let mut value = None;
        for (i, p) in parts.into_iter().enumerate() {
            match (i, p.class, p.id, p.payload) {
                (0, TagClass::Universal, 4, PL::P(b)) => {
                    oid = Some(String::from_utf8(b).map_err(|_| bad("OID is not text"))?);
                }
                (1, TagClass::Universal, 1, PL::P(b)) => {
                    critical = b.first().is_some_and(|x| *x != 0);
                }
                (1 | 2, TagClass::Universal, 4, PL::P(b)) if value.is_none() => value = Some(b),
                _ => return Err(bad("unexpected element")),
            }
        }
        let oid = oid.ok_or_else(|| bad("missing OID"))?;
        out.push(Control {
            oid,
            critical,
            value,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_form_lengths_are_accepted() {
        // Outlook's bind: every length in the 4-byte long form.
        let pdu = [
            0x30, 0x84, 0, 0, 0, 0x18, 0x02, 0x01, 0x01, 0x60, 0x84, 0, 0, 0, 0x0f, 0x02, 0x01,
            0x03, 0x04, 0x84, 0, 0, 0, 0x00, 0x80, 0x84, 0, 0, 0, 0x00,
        ];
        assert_eq!(frame_len(&pdu, 1024).unwrap(), Some(pdu.len()));
        let req = decode(&pdu, 64).unwrap();
        assert_eq!(req.msgid, 1);
        assert_eq!(req.op_tag, 0);
        assert!(matches!(req.op, Ok(LdapOp::BindRequest(_))));
    }

    #[test]
    fn absurd_lengths_are_refused_before_reading() {
        let pdu = [0x30, 0x84, 0x7f, 0xff, 0xff, 0xff];
        assert!(matches!(
            frame_len(&pdu, 1 << 20),
            Err(FrameError::TooLarge { .. })
        ));
        assert_eq!(frame_len(&[0x30], 100).unwrap(), None);
        assert_eq!(frame_len(&[0x30, 0x80], 100), Err(FrameError::Indefinite));
        assert!(matches!(
            frame_len(&[0x02, 0x01], 100),
            Err(FrameError::NotSequence(2))
        ));
    }

    #[test]
    fn controls_keep_criticality() {
        // search request with a critical unknown control 1.2.3
        let mut op = vec![0x63, 0x0b];
        op.extend([0x04, 0x00, 0x0a, 0x01, 0x00, 0x0a, 0x01, 0x00]);
        op.extend([0x87, 0x01, b'x']); // (x=*) - truncated request on purpose below
        let ctrl = [
            0xa0, 0x0a, 0x30, 0x08, 0x04, 0x03, b'1', b'.', b'2', 0x01, 0x01, 0xff,
        ];
        let mut body = vec![0x02, 0x01, 0x07];
        body.extend(&op);
        body.extend(ctrl);
        let mut pdu = vec![0x30, u8::try_from(body.len()).unwrap()];
        pdu.extend(body);
        let req = decode(&pdu, 64).unwrap();
        assert_eq!(req.msgid, 7);
        assert_eq!(req.controls.len(), 1);
        assert!(req.controls[0].critical);
        assert_eq!(req.controls[0].oid, "1.2");
        // The search body is incomplete: the op fails, the envelope does not.
        assert!(req.op.is_err());
    }

    #[test]
    fn unknown_operations_keep_their_message_id() {
        // [APPLICATION 30] and a constructed [APPLICATION 10] (delete is primitive)
        for (tag, body) in [(0x7e_u8, vec![0x04, 0x00]), (0x6a, vec![0x04, 0x00])] {
            let mut pdu = vec![0x30, 0x07, 0x02, 0x01, 0x05, tag, 0x02];
            pdu.extend(body);
            let req = decode(&pdu, 64).unwrap();
            assert_eq!(req.msgid, 5);
            let err = req.op.unwrap_err();
            assert!(err.contains("unknown protocol operation"), "{err}");
        }
    }
}
