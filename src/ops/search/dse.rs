//! Discovery: the root DSE (RFC 4512 §5.1) and the subschema subentry (§4.2), readable
//! before binding; and what the root DSE advertises.

use super::request::{
    MANAGE_DSA_IT_OID, PAGED_OID, SHOW_DELETED_OID, SORT_REQUEST_OID, VLV_REQUEST_OID,
};
use crate::directory::entry::Entry;
use crate::dsa::Dsa;

pub const SUBSCHEMA_DN: &str = "cn=Subschema";
pub const VENDOR_NAME: &str = "ONE Pages";
pub const WHOAMI_OID: &str = "1.3.6.1.4.1.4203.1.11.3";
pub const PASSWORD_MODIFY_OID: &str = "1.3.6.1.4.1.4203.1.11.1";
/// StartTLS (RFC 4511 §4.14): carried out by the protocol layer, advertised here when a
/// certificate is configured.
pub const START_TLS_OID: &str = "1.3.6.1.4.1.1466.20037";

/// Controls the server implements, advertised in the root DSE.
pub const SUPPORTED_CONTROLS: &[&str] = &[
    MANAGE_DSA_IT_OID,
    PAGED_OID,
    SORT_REQUEST_OID,
    VLV_REQUEST_OID,
    SHOW_DELETED_OID,
    crate::ops::bind::PPOLICY_OID,
];
/// Restore a deleted entry (request value: its DN, ONE ID, mail or entryUUID; response value:
/// the restored DN). Administrators only.
pub const RESTORE_OID: &str = "2.25.284118977951875160080438219710100426701.4.1";
/// Purge tombstones (request value: none for those past their time, `all`, or a DN, ONE ID,
/// mail or entryUUID; response value: how many were purged). Administrators only.
pub const PURGE_OID: &str = "2.25.284118977951875160080438219710100426701.4.2";
/// Make a backup (no request value; response value: JSON with the token, the size and what
/// it holds). Administrators only.
pub const BACKUP_OID: &str = "2.25.284118977951875160080438219710100426701.4.7";
/// Fetch a made backup (request value: `token \n offset`; response value: the next bytes,
/// empty at the end, when the server forgets it). Administrators only.
pub const BACKUP_READ_OID: &str = "2.25.284118977951875160080438219710100426701.4.8";
/// Evaluate (and with `"apply": true`, apply) the dormant-account rules (request value: JSON
/// `{"as_of": GeneralizedTime or null, "apply": bool}`; response value: the report as JSON,
/// see `policy::dormant::Report`). Administrators only.
pub const DORMANT_OID: &str = "2.25.284118977951875160080438219710100426701.4.9";
pub const SUPPORTED_EXTENSIONS: &[&str] = &[
    BACKUP_OID,
    BACKUP_READ_OID,
    DORMANT_OID,
    WHOAMI_OID,
    PASSWORD_MODIFY_OID,
    RESTORE_OID,
    PURGE_OID,
    crate::import::online::BEGIN_OID,
    crate::import::online::DATA_OID,
    crate::import::online::RUN_OID,
    crate::import::online::STATUS_OID,
];
/// All operational attributes (`+`), object classes in attribute lists (`@inetOrgPerson`),
/// absolute true and false filters (`(&)`, `(|)`).
pub const SUPPORTED_FEATURES: &[&str] = &[
    "1.3.6.1.4.1.4203.1.5.1",
    // RFC 4529: `@objectClass` in an attribute list.
    "1.3.6.1.4.1.4203.1.5.2",
    "1.3.6.1.4.1.4203.1.5.3",
];

/// The root DSE (RFC 4512 §5.1).
pub fn root_dse(dsa: &Dsa) -> Entry {
    let schema = dsa.schema();
    let mut e = Entry::new(String::new(), String::new());
    let strs = |v: &[&str]| v.iter().map(|s| s.as_bytes().to_vec()).collect::<Vec<_>>();
    e.add_values(schema, "objectClass", strs(&["top", "extensibleObject"]));
    e.add_values(
        schema,
        "namingContexts",
        vec![dsa.settings().suffix.clone().into_bytes()],
    );
    e.add_values(schema, "subschemaSubentry", strs(&[SUBSCHEMA_DN]));
    e.add_values(
        schema,
        "monitorContext",
        strs(&[super::monitor::MONITOR_DN]),
    );
    e.add_values(schema, "supportedLDAPVersion", strs(&["3"]));
    e.add_values(schema, "supportedControl", strs(SUPPORTED_CONTROLS));
    let mut extensions = strs(SUPPORTED_EXTENSIONS);
    if dsa.settings().tls.is_some() {
        extensions.push(START_TLS_OID.as_bytes().to_vec());
    }
    e.add_values(schema, "supportedExtension", extensions);
    e.add_values(schema, "supportedFeatures", strs(SUPPORTED_FEATURES));
    e.add_values(schema, "vendorName", strs(&[VENDOR_NAME]));
    e.add_values(
        schema,
        "onePagesConfiguredDomain",
        dsa.settings()
            .secure_domains
            .iter()
            .map(|d| d.as_bytes().to_vec())
            .collect(),
    );
    e.add_values(
        schema,
        "vendorVersion",
        strs(&[concat!("ONE Pages ", env!("CARGO_PKG_VERSION"))]),
    );
    e
}

/// The subschema subentry, built from the loaded schema files.
pub fn subschema(dsa: &Dsa) -> Entry {
    let schema = dsa.schema();
    let mut e = Entry::new(SUBSCHEMA_DN.into(), "cn=subschema".into());
    let bytes = |s: &str| s.as_bytes().to_vec();
    e.add_values(
        schema,
        "objectClass",
        vec![bytes("top"), bytes("subschema")],
    );
    e.add_values(schema, "cn", vec![bytes("Subschema")]);
    let (created, modified) = dsa.schema_times();
    let time = |t: i64| vec![crate::clock::generalized_time(t).into_bytes()];
    e.add_values(schema, "createTimestamp", time(created));
    e.add_values(schema, "modifyTimestamp", time(modified));
    let defs = |it: Vec<String>| it.into_iter().map(String::into_bytes).collect::<Vec<_>>();
    e.add_values(
        schema,
        "ldapSyntaxes",
        defs(schema.syntax_definitions().map(str::to_string).collect()),
    );
    e.add_values(
        schema,
        "matchingRules",
        defs(
            schema
                .matching_rule_definitions()
                .map(str::to_string)
                .collect(),
        ),
    );
    e.add_values(
        schema,
        "attributeTypes",
        defs(
            schema
                .attribute_types()
                .iter()
                .map(|a| a.definition.clone())
                .collect(),
        ),
    );
    e.add_values(
        schema,
        "objectClasses",
        defs(
            schema
                .object_classes()
                .iter()
                .map(|c| c.definition.clone())
                .collect(),
        ),
    );
    e
}
