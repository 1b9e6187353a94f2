//! `cn=Monitor`: the server's figures as LDAP entries, for administrators, in the shape of
//! OpenLDAP's back-monitor where it fits (`cn=Connections`, `cn=Operations` with one entry per
//! operation, `cn=Statistics`, `cn=Time`, `cn=Databases`, `cn=Listeners`), plus ONE Pages'
//! own: the directory's census under its database, the last import and dormant run, the TLS
//! certificate. The counters are operational attributes (`monitorCounter`,
//! `monitorOpInitiated`, `monitorOpCompleted`, `monitorTimestamp`), as in slapd: ask for them
//! by name or with `+`.
//!
//! The entries are built from one `metrics::Snapshot` per search; nothing is stored.

use ldap3_proto::proto::LdapResultCode;

use super::select::{Emit, Selection};
use super::{SearchEnd, SearchRequest};
use crate::directory::dn::{is_within, Dn};
use crate::directory::entry::Entry;
use crate::directory::filter::Filter;
use crate::directory::schema::Schema;
use crate::metrics::Snapshot;
use crate::ops::context::RequestContext;
use crate::ops::{OpError, OpResult};

/// The monitor subtree's root.
pub const MONITOR_DN: &str = "cn=Monitor";
/// Its normalised form.
pub const MONITOR_NDN: &str = "cn=monitor";

/// Whether a normalised DN lies in the monitor subtree.
pub fn is_monitor(ndn: &str) -> bool {
    is_within(ndn, MONITOR_NDN)
}

/// Builds the entries of the subtree, parents before children.
struct Tree<'s> {
    schema: &'s Schema,
    entries: Vec<Entry>,
}

impl Tree<'_> {
    /// A new entry `cn=<cn>,<parent>` of `class`; returns its DN.
    fn add(&mut self, cn: &str, parent: &str, class: &str) -> String {
        let dn = if parent.is_empty() {
            format!("cn={cn}")
        } else {
            format!("cn={cn},{parent}")
        };
        let ndn = Dn::parse(&dn)
            .map(|d| d.normalize(self.schema))
            .unwrap_or_else(|_| dn.to_ascii_lowercase());
        let mut e = Entry::new(dn.clone(), ndn);
        e.add_values(
            self.schema,
            "objectClass",
            vec![
                b"top".to_vec(),
                b"monitor".to_vec(),
                class.as_bytes().to_vec(),
            ],
        );
        e.add_values(self.schema, "cn", vec![cn.as_bytes().to_vec()]);
        self.entries.push(e);
        dn
    }

    fn set(&mut self, attr: &str, values: Vec<String>) {
        if let Some(e) = self.entries.last_mut() {
            e.add_values(
                self.schema,
                attr,
                values.into_iter().map(String::into_bytes).collect(),
            );
        }
    }

    /// A counter entry: `cn=<cn>,<parent>` with `monitorCounter: n`.
    fn counter(&mut self, cn: &str, parent: &str, n: u64, about: &str) {
        self.add(cn, parent, "monitorCounterObject");
        self.set("monitorCounter", vec![n.to_string()]);
        self.set("description", vec![about.to_string()]);
    }

    /// A time entry.
    fn time(&mut self, cn: &str, parent: &str, at: i64, about: &str) {
        self.add(cn, parent, "monitoredObject");
        self.set("monitorTimestamp", vec![crate::clock::generalized_time(at)]);
        self.set("description", vec![about.to_string()]);
    }
}

/// Title case for an operation's entry (`modrdn` → `Modrdn`), as slapd names them.
fn title(op: &str) -> String {
    let mut c = op.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// The subtree for one snapshot.
pub fn entries(schema: &Schema, s: &Snapshot) -> Vec<Entry> {
    let mut t = Tree {
        schema,
        entries: Vec::new(),
    };
    let root = t.add("Monitor", "", "monitorServer");
    t.set("monitoredInfo", vec![format!("ONE Pages {}", s.version)]);
    t.set(
        "description",
        vec!["The figures of this ONE Pages server; the same as its HTTP /metrics".into()],
    );

    let conns = t.add("Connections", &root, "monitorContainer");
    let open: u64 = s.connections_open.values().sum();
    t.counter(
        "Total",
        &conns,
        s.connections_total,
        "Connections accepted since the start",
    );
    t.counter("Current", &conns, open, "Connections open now");
    for (transport, n) in &s.connections_open {
        t.counter(
            &title(transport),
            &conns,
            *n,
            &format!("Connections open now over {transport}"),
        );
    }
    for (limit, n) in &s.connections_refused {
        t.counter(
            &format!("Refused {limit}"),
            &conns,
            *n,
            &format!("Connections refused by the {limit} limit"),
        );
    }

    let ops = t.add("Operations", &root, "monitorOperation");
    let initiated: u64 = s.operations.values().map(|c| c.initiated).sum();
    let completed: u64 = s.operations.values().map(|c| c.completed).sum();
    t.set("monitorOpInitiated", vec![initiated.to_string()]);
    t.set("monitorOpCompleted", vec![completed.to_string()]);
    for op in crate::metrics::OPERATIONS {
        let Some(c) = s.operations.get(op) else {
            continue;
        };
        t.add(&title(op), &ops, "monitorOperation");
        t.set("monitorOpInitiated", vec![c.initiated.to_string()]);
        t.set("monitorOpCompleted", vec![c.completed.to_string()]);
    }

    let stats = t.add("Statistics", &root, "monitorContainer");
    t.counter(
        "Entries",
        &stats,
        s.entries_returned,
        "Entries returned by searches",
    );
    t.counter(
        "Operations Last Minute",
        &stats,
        s.operations_last_minute,
        "Operations answered in the last 60 seconds",
    );
    for (outcome, n) in &s.binds {
        t.counter(
            &format!("Binds {outcome}"),
            &stats,
            *n,
            &format!("Binds since the start with the outcome {outcome}"),
        );
    }
    t.counter(
        "Failed Binds Last Hour",
        &stats,
        s.failed_binds_last_hour,
        "Binds refused for a wrong password or a locked account in the last hour",
    );
    t.counter(
        "Scanned Searches",
        &stats,
        s.searches_scanned,
        "Subtree searches the index could not narrow",
    );

    let time = t.add("Time", &root, "monitorContainer");
    t.time("Start", &time, s.started, "When the server started");
    t.time("Current", &time, s.now, "Now, by the server's clock");
    t.counter("Uptime", &time, s.uptime_secs, "Seconds since the start");

    let dbs = t.add("Databases", &root, "monitorContainer");
    let db = t.add("Database 1", &dbs, "monitoredObject");
    t.set(
        "monitoredInfo",
        vec!["sled (store) and tantivy (index)".into()],
    );
    t.set("namingContexts", vec![s.naming_context.clone()]);
    t.set("readOnly", vec!["FALSE".into()]);
    let c = &s.census;
    let figures: [(&str, u64, &str); 11] = [
        ("Entries", s.entries, "Entries in the directory"),
        ("People", c.people, "Accounts of people (last census)"),
        ("Contacts", c.contacts, "External contacts (last census)"),
        ("Services", c.services, "Service accounts (last census)"),
        (
            "Other",
            c.other,
            "The suffix, units and registered domains (last census)",
        ),
        (
            "Secure",
            c.secure,
            "People whose mail is secure end to end (last census)",
        ),
        (
            "Not Secure",
            c.not_secure,
            "People and contacts whose mail is not secure (last census)",
        ),
        (
            "Tombstones",
            c.tombstones,
            "Deleted entries waiting to be purged",
        ),
        ("Store Bytes", c.store_bytes, "Bytes of the store on disk"),
        (
            "Index Lag",
            s.index_lag,
            "Entries written but not yet in the search index",
        ),
        (
            "Census Generation",
            c.generation,
            "The store generation the census was taken at",
        ),
    ];
    for (cn, n, about) in figures {
        t.counter(cn, &db, n, about);
    }

    let listeners = t.add("Listeners", &root, "monitorContainer");
    for (n, url) in s.listeners.iter().enumerate() {
        t.add(&format!("Listener {n}"), &listeners, "monitoredObject");
        t.set("labeledURI", vec![url.clone()]);
    }

    let runs = t.add("Runs", &root, "monitorContainer");
    t.set(
        "description",
        vec!["The last import and the last run of the dormant-account rules".into()],
    );
    for (cn, note) in [
        ("Last Import", &s.last_import),
        ("Last Dormant Run", &s.last_dormant),
    ] {
        t.add(cn, &runs, "monitoredObject");
        match note {
            Some(n) => {
                let outcome = if n.ok { "ok" } else { "stopped" };
                t.set(
                    "monitoredInfo",
                    vec![format!("{outcome}: {} (by {})", n.summary, n.by)],
                );
                t.set(
                    "monitorTimestamp",
                    vec![crate::clock::generalized_time(n.finished)],
                );
            }
            None => t.set("monitoredInfo", vec!["none yet".into()]),
        }
    }
    if let Some(i) = &s.import {
        t.add("Import Running", &runs, "monitoredObject");
        t.set(
            "monitoredInfo",
            vec![format!(
                "{} {}: {} records read, {} written, {} refused, {} of {} bytes",
                i.state, i.file, i.records, i.written, i.refused, i.bytes, i.total_bytes
            )],
        );
    }

    if let Some(cert) = &s.certificate {
        let tls = t.add("TLS", &root, "monitorContainer");
        t.add("Certificate", &tls, "monitoredObject");
        t.set("monitoredInfo", vec![cert.subject.clone()]);
        t.set(
            "monitorTimestamp",
            vec![crate::clock::generalized_time(cert.not_after)],
        );
        t.set(
            "description",
            vec!["The served certificate: its subject and expiry".into()],
        );
    }
    t.entries
}

/// An administrator's search at or below `cn=Monitor`.
pub(super) fn view(
    ctx: &RequestContext<'_>,
    schema: &Schema,
    req: &SearchRequest,
    base_ndn: &str,
    filter: &Filter,
    sel: &Selection,
    emit: &mut Emit<'_>,
) -> OpResult<SearchEnd> {
    if !ctx.grant.is_admin() {
        return Err(OpError::new(
            LdapResultCode::InsufficentAccessRights,
            "cn=Monitor is readable by directory administrators only",
        ));
    }
    let Some(monitor) = ctx.monitor else {
        return Err(OpError::new(
            LdapResultCode::NoSuchObject,
            "cn=Monitor exists only in a running server",
        ));
    };
    let all = entries(schema, &monitor.0.snapshot());
    if !all.iter().any(|e| e.ndn == base_ndn) {
        let mut e = OpError::new(
            LdapResultCode::NoSuchObject,
            format!("{} is not an entry of cn=Monitor", req.base),
        );
        e.matched_dn = MONITOR_DN.to_string();
        return Err(e);
    }
    let within = all
        .iter()
        .filter(|e| super::in_scope(&req.scope, &e.ndn, base_ndn));
    Ok(super::send_owned(within, req, filter, sel, schema, emit))
}
