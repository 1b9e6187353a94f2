//! The typed search request: what `protocol` decodes a SearchRequest PDU and its controls
//! into, and what the search operation consumes (protocol sits above ops: it imports these,
//! never the other way round).

use ldap3_proto::proto::{LdapFilter, LdapSearchRequest, LdapSearchScope};

pub const MANAGE_DSA_IT_OID: &str = "2.16.840.1.113730.3.4.2";
pub const PAGED_OID: &str = "1.2.840.113556.1.4.319";
pub const SORT_REQUEST_OID: &str = "1.2.840.113556.1.4.473";
pub const VLV_REQUEST_OID: &str = "2.16.840.1.113730.3.4.9";

/// A search request (RFC 4511 §4.5.1) with the controls that change how it runs.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchRequest {
    pub base: String,
    pub scope: LdapSearchScope,
    /// The client's size limit (0 = none; the server's cap applies either way).
    pub size_limit: i32,
    /// The client's time limit in seconds (0 = none).
    pub time_limit: i32,
    pub types_only: bool,
    pub filter: LdapFilter,
    pub attrs: Vec<String>,
    pub controls: SearchControls,
}

impl SearchRequest {
    /// The request as decoded by the wire codec, with its decoded controls.
    pub fn new(req: LdapSearchRequest, controls: SearchControls) -> SearchRequest {
        SearchRequest {
            base: req.base,
            scope: req.scope,
            size_limit: req.sizelimit,
            time_limit: req.timelimit,
            types_only: req.typesonly,
            filter: req.filter,
            attrs: req.attrs,
            controls,
        }
    }

    /// A search without controls (tests, internal callers).
    pub fn plain(
        base: &str,
        scope: LdapSearchScope,
        filter: LdapFilter,
        attrs: &[&str],
    ) -> SearchRequest {
        SearchRequest {
            base: base.to_string(),
            scope,
            size_limit: 0,
            time_limit: 0,
            types_only: false,
            filter,
            attrs: attrs.iter().map(|a| (*a).to_string()).collect(),
            controls: SearchControls::default(),
        }
    }

    /// A search for one mail address or ONE ID without controls: at most a few entries,
    /// cheaper to answer on the connection's own task than to hand over.
    pub fn is_exact_lookup(&self) -> bool {
        let keyed =
            |attr: &str| attr.eq_ignore_ascii_case("mail") || attr.eq_ignore_ascii_case("uid");
        self.controls.paged.is_none()
            && !self.controls.show_deleted
            && self.controls.sort.is_none()
            && self.controls.vlv.is_none()
            && matches!(&self.filter, LdapFilter::Equality(attr, _) if keyed(attr))
    }
}

/// Simple Paged Results request (RFC 2696).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PagedRequest {
    pub size: usize,
    pub cookie: Vec<u8>,
    pub critical: bool,
}

/// One key of a Server-Side Sort request (RFC 2891).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    pub attr: String,
    pub ordering_rule: Option<String>,
    pub reverse: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortRequest {
    pub keys: Vec<SortKey>,
    pub critical: bool,
}

/// Where a Virtual List View window is anchored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VlvTarget {
    /// 1-based offset, scaled by the client's idea of the list size (0 = unknown).
    Offset {
        offset: i64,
        content_count: i64,
    },
    GreaterOrEqual(Vec<u8>),
}

/// Virtual List View request (draft-ietf-ldapext-ldapv3-vlv-09).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VlvRequest {
    pub before: usize,
    pub after: usize,
    pub target: VlvTarget,
    pub context: Option<Vec<u8>>,
    pub critical: bool,
}

/// The controls of a search request that change how it runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchControls {
    pub paged: Option<PagedRequest>,
    pub sort: Option<SortRequest>,
    pub vlv: Option<VlvRequest>,
    /// Show Deleted (Active Directory's control): an administrator's view of the tombstones.
    pub show_deleted: bool,
}

/// Active Directory's Show Deleted control (no value): the search reads tombstones.
pub const SHOW_DELETED_OID: &str = "1.2.840.113556.1.4.417";

/// Response controls, encoded by the protocol layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseControl {
    Paged {
        size: usize,
        cookie: Vec<u8>,
    },
    Sort {
        result: u8,
        attr: Option<String>,
    },
    Vlv {
        target_position: usize,
        content_count: usize,
        result: u8,
        context: Option<Vec<u8>>,
    },
}
