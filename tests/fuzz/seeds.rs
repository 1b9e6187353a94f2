//! Valid inputs the mutations start from, and the tokens of each input language.

use bytes::BytesMut;
use ldap3_proto::proto::{
    LdapAddRequest, LdapAttribute, LdapBindCred, LdapBindRequest, LdapCompareRequest,
    LdapDerefAliases, LdapExtendedRequest, LdapModify, LdapModifyDNRequest, LdapModifyRequest,
    LdapModifyType, LdapMsg, LdapOp, LdapPartialAttribute, LdapSearchRequest, LdapSearchScope,
};
use ldap3_proto::LdapCodec;
use onepages::directory::filter_text::parse_filter;
use tokio_util::codec::Encoder;

pub const SUFFIX: &str = "dc=one-mail,dc=on,dc=ca";
pub const READER_DN: &str = "cn=demo-reader,ou=services,dc=one-mail,dc=on,dc=ca";
pub const READER_PW: &str = "demo-reader-2026";
pub const ADMIN_DN: &str = "cn=demo-admin,ou=services,dc=one-mail,dc=on,dc=ca";
pub const ADMIN_PW: &str = "demo-admin-2026";

/// Filters of every kind, including the client templates.
pub const FILTERS: &[&str] = &[
    "(objectClass=*)",
    "(&(mail=*)(|(mail=dew*)(|(cn=dew*)(|(sn=dew*)(givenName=dew*)))))",
    "(&(|(mail=n*)(cn=n*)(sn=n*)(givenName=n*)(displayName=n*)))",
    "(|(givenname=carmo)(sn=carmo)(cn=carmo)(mail=carmo))",
    "(|(cn=*john*smith*)(mail=*john smith*)(givenName=*john*)(sn=*john smith*))",
    "(anr=dewey rahim)",
    "(cn~=helene cote-tremblai)",
    "(!(onePagesStatus=disabled))",
    "(modifyTimestamp>=20260101000000Z)",
    "(createTimestamp<=20261231235959Z)",
    "(cn:caseExactMatch:=Dewey Rahim)",
    "(:dn:2.5.13.5:=people)",
    "(&(oneMailSecure=TRUE)(cn=d*))",
    "(telephoneNumber=*555*)",
    "(mail=dewey.rahim@one-mail.on.ca)",
    "(cn=\\2a\\28\\29\\5c\\00)",
    "(&)",
    "(|)",
];

pub fn filter_dict() -> Vec<&'static [u8]> {
    [
        "(",
        ")",
        "&",
        "|",
        "!",
        "=",
        "~=",
        ">=",
        "<=",
        "=*",
        "*",
        ":",
        ":dn:",
        ":=",
        "\\",
        "\\00",
        "\\2a",
        "cn",
        "objectClass",
        "1.2.840.113556.1.4.803",
        "anr",
        "2.5.13.2",
    ]
    .iter()
    .map(|s| s.as_bytes())
    .collect()
}

fn encode(msgid: i32, op: LdapOp) -> Vec<u8> {
    let mut buf = BytesMut::new();
    LdapCodec::default()
        .encode(
            LdapMsg {
                msgid,
                op,
                ctrl: Vec::new(),
            },
            &mut buf,
        )
        .expect("encodes");
    buf.to_vec()
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    let n = content.len();
    if n < 128 {
        v.push(n as u8);
    } else if n < 256 {
        v.extend_from_slice(&[0x81, n as u8]);
    } else {
        v.push(0x82);
        v.extend_from_slice(&(n as u16).to_be_bytes());
    }
    v.extend_from_slice(content);
    v
}

fn int(n: i64) -> Vec<u8> {
    let b = n.to_be_bytes();
    let mut s = 0;
    while s < 7 && ((b[s] == 0 && b[s + 1] & 0x80 == 0) || (b[s] == 0xff && b[s + 1] & 0x80 != 0)) {
        s += 1;
    }
    tlv(0x02, &b[s..])
}

/// A control (SEQUENCE { oid, criticality, value }).
fn control(oid: &str, value: &[u8]) -> Vec<u8> {
    tlv(
        0x30,
        &[
            tlv(0x04, oid.as_bytes()),
            tlv(0x01, &[0xff]),
            tlv(0x04, value),
        ]
        .concat(),
    )
}

/// An encoded message with controls appended inside its envelope.
fn with_controls(pdu: &[u8], controls: &[Vec<u8>]) -> Vec<u8> {
    // Strip the outer SEQUENCE header (short or long form) and rebuild it.
    let header = match pdu.get(1) {
        Some(b) if b & 0x80 == 0 => 2,
        Some(b) => 2 + usize::from(b & 0x7f),
        None => return pdu.to_vec(),
    };
    let mut inner = pdu[header..].to_vec();
    inner.extend(tlv(0xa0, &controls.concat()));
    tlv(0x30, &inner)
}

fn search(msgid: i32, base: &str, filter: &str, attrs: &[&str]) -> Vec<u8> {
    encode(
        msgid,
        LdapOp::SearchRequest(LdapSearchRequest {
            base: base.into(),
            scope: LdapSearchScope::Subtree,
            aliases: LdapDerefAliases::Never,
            sizelimit: 100,
            timelimit: 30,
            typesonly: false,
            filter: parse_filter(filter).expect("seed filter"),
            attrs: attrs.iter().map(|a| (*a).to_string()).collect(),
        }),
    )
}

pub fn bind(msgid: i32, dn: &str, pw: &str) -> Vec<u8> {
    encode(
        msgid,
        LdapOp::BindRequest(LdapBindRequest {
            version: 3,
            dn: dn.into(),
            cred: LdapBindCred::Simple(pw.into()),
        }),
    )
}

/// A search of the root DSE (readable before any bind).
pub fn root_dse() -> Vec<u8> {
    search(12, "", "(objectClass=*)", &["+"])
}

/// LDAP messages of every operation, with and without the controls clients send.
pub fn pdus() -> Vec<Vec<u8>> {
    let people = format!("ou=people,{SUFFIX}");
    let dewey = format!("uid=dewey.rahim@oneid.on.ca,{people}");
    let mut out = vec![
        bind(1, READER_DN, READER_PW),
        bind(1, "dewey.rahim@oneid.on.ca", "dewey-demo-2026"),
        bind(1, "", ""),
        encode(2, LdapOp::UnbindRequest),
        encode(3, LdapOp::AbandonRequest(2)),
        encode(
            4,
            LdapOp::DelRequest(format!("uid=nobody@oneid.on.ca,{people}")),
        ),
        encode(
            5,
            LdapOp::CompareRequest(LdapCompareRequest {
                dn: dewey.clone(),
                atype: "mail".into(),
                val: b"dewey.rahim@one-mail.on.ca".to_vec(),
            }),
        ),
        encode(
            6,
            LdapOp::AddRequest(LdapAddRequest {
                dn: format!("uid=fuzz.person@oneid.on.ca,{people}"),
                attributes: vec![
                    LdapAttribute {
                        atype: "objectClass".into(),
                        vals: vec![b"inetOrgPerson".to_vec(), b"onePagesPerson".to_vec()],
                    },
                    LdapAttribute {
                        atype: "cn".into(),
                        vals: vec![b"Fuzz Person".to_vec()],
                    },
                    LdapAttribute {
                        atype: "sn".into(),
                        vals: vec![b"Person".to_vec()],
                    },
                    LdapAttribute {
                        atype: "mail".into(),
                        vals: vec![b"fuzz.person@one-mail.on.ca".to_vec()],
                    },
                ],
            }),
        ),
        encode(
            7,
            LdapOp::ModifyRequest(LdapModifyRequest {
                dn: format!("uid=fuzz.person@oneid.on.ca,{people}"),
                changes: vec![LdapModify {
                    operation: LdapModifyType::Replace,
                    modification: LdapPartialAttribute {
                        atype: "telephoneNumber".into(),
                        vals: vec![b"+1 416 555 0100".to_vec()],
                    },
                }],
            }),
        ),
        encode(
            8,
            LdapOp::ModifyDNRequest(LdapModifyDNRequest {
                dn: format!("uid=fuzz.person@oneid.on.ca,{people}"),
                newrdn: "uid=fuzz.renamed@oneid.on.ca".into(),
                deleteoldrdn: true,
                new_superior: None,
            }),
        ),
        encode(
            9,
            LdapOp::ExtendedRequest(LdapExtendedRequest {
                name: "1.3.6.1.4.1.4203.1.11.3".into(),
                value: None,
            }),
        ),
        encode(
            10,
            LdapOp::ExtendedRequest(LdapExtendedRequest {
                name: "1.3.6.1.4.1.4203.1.11.1".into(),
                value: Some(tlv(0x30, &tlv(0x82, b"new-password-2026"))),
            }),
        ),
        encode(
            11,
            LdapOp::ExtendedRequest(LdapExtendedRequest {
                name: "1.3.6.1.4.1.1466.20037".into(),
                value: None,
            }),
        ),
        root_dse(),
        search(13, "cn=subschema", "(objectClass=*)", &["attributeTypes"]),
    ];
    for (i, f) in FILTERS.iter().enumerate() {
        out.push(search(
            20 + i as i32,
            SUFFIX,
            f,
            &["cn", "mail", "oneMailSecure"],
        ));
    }
    let paged = control(
        "1.2.840.113556.1.4.319",
        &tlv(0x30, &[int(10), tlv(0x04, b"")].concat()),
    );
    let sort = control(
        "1.2.840.113556.1.4.473",
        &tlv(
            0x30,
            &tlv(0x30, &[tlv(0x04, b"cn"), tlv(0x80, b"2.5.13.3")].concat()),
        ),
    );
    let vlv = control(
        "2.16.840.1.113730.3.4.9",
        &tlv(
            0x30,
            &[int(0), int(9), tlv(0xa0, &[int(1), int(0)].concat())].concat(),
        ),
    );
    let vlv_ge = control(
        "2.16.840.1.113730.3.4.9",
        &tlv(0x30, &[int(1), int(5), tlv(0x81, b"Dew")].concat()),
    );
    let ppolicy = tlv(0x30, &[tlv(0x04, b"1.3.6.1.4.1.42.2.27.8.5.1")].concat());
    let s = search(40, &people, "(sn=*)", &["cn", "displayName"]);
    out.push(with_controls(&s, std::slice::from_ref(&paged)));
    out.push(with_controls(&s, std::slice::from_ref(&sort)));
    out.push(with_controls(&s, &[sort.clone(), vlv]));
    out.push(with_controls(&s, &[sort, vlv_ge]));
    out.push(with_controls(&bind(41, READER_DN, READER_PW), &[ppolicy]));
    out.push(with_controls(&s, &[control("1.2.3.4.5", b"")]));
    out
}

pub fn ber_dict() -> Vec<&'static [u8]> {
    vec![
        &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
        &[0x02, 0x01, 0x01],
        &[0x04, 0x00],
        &[0x0a, 0x01, 0x02],
        &[0x01, 0x01, 0xff],
        &[0xa0, 0x00],
        &[0x87, 0x0b],
        &[0x63],
        &[0x60],
        &[0x77],
        &[0x30, 0x80],
        b"objectClass",
        b"1.2.840.113556.1.4.319",
        b"2.16.840.1.113730.3.4.9",
    ]
}

pub fn dns() -> Vec<Vec<u8>> {
    [
        SUFFIX,
        "uid=dewey.rahim@oneid.on.ca,ou=people,dc=one-mail,dc=on,dc=ca",
        "cn=Côté\\, Hélène+sn=Côté,ou=people,dc=one-mail,dc=on,dc=ca",
        "cn=#04024869,dc=x",
        "cn=\\20leading and trailing\\20,dc=x",
        "OID.2.5.4.3=x,DC=y",
        "cn=a\\2Cb\\3Dc\\2B\\3C\\3E\\23\\3B\\22\\5C,dc=x",
        "associatedDomain=bücher.example,ou=domains,dc=one-mail,dc=on,dc=ca",
        "",
        "dewey.rahim@one-mail.on.ca",
        "+1 416 555 0100 x 204",
        "x@xn--bcher-kva.example",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

pub fn dn_dict() -> Vec<&'static [u8]> {
    [
        ",", "+", "=", "\\", "\\2C", "#", "\"", ";", " ", "\\00", "@", "@@", "xn--", ".",
        "\u{202e}", "\u{feff}",
    ]
    .iter()
    .map(|s| s.as_bytes())
    .collect()
}

pub fn ldif() -> Vec<Vec<u8>> {
    let demo = include_str!("../../data/demo.ldif");
    let records: Vec<&str> = demo.split("\n\n").collect();
    let mut out: Vec<Vec<u8>> = records
        .iter()
        .step_by(15)
        .map(|r| format!("{r}\n\n").into_bytes())
        .collect();
    out.push(
        "version: 1\ndn: uid=dewey.rahim@oneid.on.ca,ou=people,dc=one-mail,dc=on,dc=ca\n\
         changetype: modify\nreplace: telephoneNumber\ntelephoneNumber: +1 416 555 0100\n-\n\n\
         dn: uid=nobody@oneid.on.ca,ou=people,dc=one-mail,dc=on,dc=ca\nchangetype: delete\n\n"
            .into(),
    );
    out.push(
        "dn:: dWlkPWEsZGM9eA==\ncn:: w4lsaXNl\n description: folded\n line\n# comment\n\n".into(),
    );
    // Issue 15's change records: modrdn / moddn with every key, and a modify of each kind.
    out.push(
        "dn: uid=dewey.rahim@oneid.on.ca,ou=people,dc=one-mail,dc=on,dc=ca\n\
         changetype: modrdn\nnewrdn: uid=dewey.r@oneid.on.ca\ndeleteoldrdn: 1\n\
         newsuperior: ou=contacts,dc=one-mail,dc=on,dc=ca\n\n\
         dn: uid=dewey.r@oneid.on.ca,ou=contacts,dc=one-mail,dc=on,dc=ca\n\
         changetype: moddn\nnewrdn: uid=dewey.rahim@oneid.on.ca\ndeleteoldrdn: 0\n\n\
         dn: uid=dewey.rahim@oneid.on.ca,ou=people,dc=one-mail,dc=on,dc=ca\n\
         changetype: modify\nadd: mobile\nmobile: +1 416 555 0101\n-\ndelete: title\n-\n\
         increment: uidNumber\nuidNumber: 1\n-\n\n"
            .into(),
    );
    out
}

pub fn ldif_dict() -> Vec<&'static [u8]> {
    [
        "\n",
        "\n ",
        ": ",
        ":: ",
        ":< ",
        "dn: ",
        "changetype: ",
        "add",
        "modify",
        "delete",
        "modrdn",
        "moddn",
        "newrdn: ",
        "deleteoldrdn: 1\n",
        "newsuperior: ",
        "replace: ",
        "increment: ",
        "-\n",
        "objectClass: ",
        "version: 1\n",
        "# ",
        "\r\n",
        "=",
    ]
    .iter()
    .map(|s| s.as_bytes())
    .collect()
}

pub fn csv() -> Vec<Vec<u8>> {
    vec![
        b"uid,givenName,sn,mail,o,department,telephoneNumber\n\
          dewey.rahim@oneid.on.ca,Dewey,Rahim,dewey.rahim@one-mail.on.ca,Lakeshore General,ER,+1 416 555 0100\n\
          h.c@oneid.on.ca,H\xc3\xa9l\xc3\xa8ne,C\xc3\xb4t\xc3\xa9,h.c@one-mail.on.ca,\"Clinique, Ontario\",,\n"
            .to_vec(),
        b"dn,objectClass,cn,sn\n\"cn=x,dc=one-mail,dc=on,dc=ca\",person|top,x,y\n".to_vec(),
    ]
}

pub fn csv_dict() -> Vec<&'static [u8]> {
    [
        ",",
        "\"",
        "\n",
        "\r\n",
        "|",
        "dn",
        "uid",
        "objectClass",
        ";",
        "\t",
        "\u{feff}",
        "First Name",
        "E-mail",
        "Service",
        "é",
    ]
    .iter()
    .map(|s| s.as_bytes())
    .collect()
}

pub fn toml() -> Vec<Vec<u8>> {
    vec![
        b"listen = \"127.0.0.1:3389\"\nsuffix = \"dc=one-mail,dc=on,dc=ca\"\nsize_limit = 500\n\
          secure_domains = [\"one-mail.on.ca\", \"lakeshoregeneral.ca\"]\n\
          [argon2]\nmemory_kib = 19456\niterations = 2\nparallelism = 1\n"
            .to_vec(),
        b"read_budget_per_minute = 3000\n[role_limits.admin]\nsize_limit = 0\n\
          [identity_limits.\"cn=gal-sync,ou=services,dc=one-mail,dc=on,dc=ca\"]\n\
          size_limit = 0\ntime_limit_secs = 600\n"
            .to_vec(),
        b"cleartext_binds = \"never\"\nlockout_failures = 5\nlockout_window_secs = 900\n\
          audit_log = \"-\"\ninsecure_marker = \" [NOT SECURE]\"\noneid_domain = \"oneid.on.ca\"\n\
          admins = [\"cn=admin,dc=one-mail,dc=on,dc=ca\"]\nmax_pdu_bytes = 1048576\n"
            .to_vec(),
    ]
}

pub fn toml_dict() -> Vec<&'static [u8]> {
    [
        "=",
        "\"",
        "'''",
        "[",
        "]",
        "[[",
        "\n",
        "{",
        "}",
        ",",
        "0",
        "-1",
        "18446744073709551615",
        "1e400",
        "true",
        "inf",
        "nan",
        "\\u0000",
    ]
    .iter()
    .map(|s| s.as_bytes())
    .collect()
}
