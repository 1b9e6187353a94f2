//! One fuzz target per parser reachable from input. Each runs an input through the parser
//! and what the server does next with its result, and checks what must hold (round trips,
//! bounds); a panic anywhere is a finding.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use ldap3_proto::proto::LdapOp;
use onepages::config::{Overrides, Settings};
use onepages::directory::dn::Dn;
use onepages::directory::entry::Entry;
use onepages::directory::filter::{compile, FilterLimits};
use onepages::directory::filter_text::{filter_to_text, parse_filter};
use onepages::directory::schema::Schema;
use onepages::directory::values;
use onepages::dsa::{Change, Dsa, WriteGrant};
use onepages::import::ldif::{LdifReader, RecordKind};
use onepages::import::Item;
use onepages::ops::search::SearchRequest;
use onepages::protocol::controls::search_controls;
use onepages::protocol::frame::{decode, frame_len};

use crate::seeds;

pub trait Target {
    fn name(&self) -> &'static str;
    fn seeds(&self) -> Vec<Vec<u8>>;
    fn dict(&self) -> Vec<&'static [u8]>;
    fn run(&mut self, input: &[u8]);
}

/// A few demo entries, for evaluating decoded filters.
fn sample_entries(schema: &Schema) -> Vec<Entry> {
    let demo = include_str!("../../data/demo.ldif");
    LdifReader::new(demo.as_bytes())
        .filter_map(Result::ok)
        .step_by(20)
        .filter_map(|r| {
            let RecordKind::Content { attrs } = r.kind else {
                return None;
            };
            let dn = Dn::parse(&r.dn).ok()?;
            let mut e = Entry::new(r.dn.clone(), dn.normalize(schema));
            for (a, v) in attrs {
                e.add_values(schema, &a, v);
            }
            Some(e)
        })
        .collect()
}

/// The BER envelope, the operation inside it, its controls, and a search's filter compiled
/// and evaluated (the server's path up to the directory).
pub struct Ber {
    schema: Schema,
    entries: Vec<Entry>,
}

impl Ber {
    pub fn new() -> Ber {
        let schema = Schema::builtin().unwrap();
        let entries = sample_entries(&schema);
        Ber { schema, entries }
    }
}

impl Target for Ber {
    fn name(&self) -> &'static str {
        "ber"
    }
    fn seeds(&self) -> Vec<Vec<u8>> {
        seeds::pdus()
    }
    fn dict(&self) -> Vec<&'static [u8]> {
        seeds::ber_dict()
    }
    fn run(&mut self, input: &[u8]) {
        let max = 1 << 20;
        // A prefix never claims more than it holds.
        for cut in [1, input.len() / 2, input.len().saturating_sub(1)] {
            if let Some(prefix) = input.get(..cut) {
                if let Ok(Some(n)) = frame_len(prefix, max) {
                    assert!(
                        n <= prefix.len(),
                        "frame_len {n} beyond a {cut}-byte prefix"
                    );
                }
            }
        }
        let Ok(Some(len)) = frame_len(input, max) else {
            return;
        };
        assert!(len <= input.len());
        let Ok(req) = decode(&input[..len], 256) else {
            return;
        };
        let Ok(LdapOp::SearchRequest(search)) = req.op else {
            return;
        };
        let Ok(controls) = search_controls(&req.controls) else {
            return;
        };
        let search = SearchRequest::new(search, controls);
        if let Ok(filter) = compile(&search.filter, &self.schema, FilterLimits::default()) {
            let _ = filter.cost();
            for e in &self.entries {
                let _ = filter.evaluate(e, &self.schema);
            }
        }
    }
}

/// Filters in RFC 4515 text: parse, print, parse again (the same filter), compile, evaluate.
pub struct FilterText {
    schema: Schema,
    entries: Vec<Entry>,
}

impl FilterText {
    pub fn new() -> FilterText {
        let schema = Schema::builtin().unwrap();
        let entries = sample_entries(&schema);
        FilterText { schema, entries }
    }
}

impl Target for FilterText {
    fn name(&self) -> &'static str {
        "filter"
    }
    fn seeds(&self) -> Vec<Vec<u8>> {
        seeds::FILTERS
            .iter()
            .map(|f| f.as_bytes().to_vec())
            .collect()
    }
    fn dict(&self) -> Vec<&'static [u8]> {
        seeds::filter_dict()
    }
    fn run(&mut self, input: &[u8]) {
        let text = String::from_utf8_lossy(input);
        let Ok(filter) = parse_filter(&text) else {
            return;
        };
        let printed = filter_to_text(&filter);
        let again = parse_filter(&printed)
            .unwrap_or_else(|e| panic!("{printed:?} (printed from {text:?}) does not parse: {e}"));
        assert_eq!(again, filter, "round trip of {text:?} through {printed:?}");
        if let Ok(compiled) = compile(&filter, &self.schema, FilterLimits::default()) {
            let _ = compiled.cost();
            for e in &self.entries {
                let _ = compiled.evaluate(e, &self.schema);
            }
        }
    }
}

/// DNs (RFC 4514): parse, print, parse again (the same normalised DN); and the value checks
/// (mail, domain, telephone, ONE ID, text) on the same text.
pub struct DnText {
    schema: Schema,
}

impl DnText {
    pub fn new() -> DnText {
        DnText {
            schema: Schema::builtin().unwrap(),
        }
    }
}

impl Target for DnText {
    fn name(&self) -> &'static str {
        "dn"
    }
    fn seeds(&self) -> Vec<Vec<u8>> {
        seeds::dns()
    }
    fn dict(&self) -> Vec<&'static [u8]> {
        seeds::dn_dict()
    }
    fn run(&mut self, input: &[u8]) {
        let text = String::from_utf8_lossy(input);
        if let Ok(dn) = Dn::parse(&text) {
            let printed = dn.to_string();
            let again = Dn::parse(&printed)
                .unwrap_or_else(|e| panic!("{printed:?} (printed from {text:?}): {e}"));
            assert_eq!(
                again.normalize(&self.schema),
                dn.normalize(&self.schema),
                "round trip of {text:?} through {printed:?}"
            );
        }
        let _ = values::mail_problem(&text);
        let _ = values::domain_problem(&text);
        let _ = values::ascii_mail_form(&text);
        let _ = values::telephone_problem(&text);
        let _ = values::oneid_problem(&text, "oneid.on.ca");
        let _ = values::text_problem(&text);
        let _ = values::printable_problem(&text);
        let _ = values::public_webmail(&text);
    }
}

/// An open directory (the demo loaded) whose writer checks records without writing them,
/// and now and then imports one for real.
struct Directory {
    _dir: tempfile::TempDir,
    dsa: Dsa,
    grant: WriteGrant,
    runs: u64,
}

impl Directory {
    fn open() -> Directory {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Settings::load_from(
            None,
            &[],
            &Overrides {
                data_dir: Some(dir.path().to_path_buf()),
                listen: Some("127.0.0.1:0".into()),
                suffix: None,
            },
        )
        .unwrap();
        settings.argon2 = onepages::directory::password::Argon2Cost {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        };
        let (dsa, _) = Dsa::open(settings, "fuzz", &|_| {}).unwrap();
        onepages::server::load_demo(&dsa).unwrap();
        let grant = dsa.operator_grant().unwrap();
        Directory {
            _dir: dir,
            dsa,
            grant,
            runs: 0,
        }
    }

    /// Checks each record as the writer would; every 32nd input is imported for real.
    fn take(&mut self, items: Vec<Item>, text: Option<&str>) {
        self.runs += 1;
        let writer = self.dsa.writer(&self.grant);
        for item in items {
            if let Item::Content { dn, attrs, .. } = item {
                if let Ok(dn) = Dn::parse(&dn) {
                    let _ = writer.prepare(Change::Import { dn, attrs });
                }
            }
        }
        if self.runs.is_multiple_of(32) {
            if let Some(text) = text {
                let _ = onepages::import::import_ldif_text(&writer, "fuzz.ldif", text);
            }
        }
    }
}

pub struct Ldif {
    directory: Directory,
}

impl Ldif {
    pub fn new() -> Ldif {
        Ldif {
            directory: Directory::open(),
        }
    }
}

impl Target for Ldif {
    fn name(&self) -> &'static str {
        "ldif"
    }
    fn seeds(&self) -> Vec<Vec<u8>> {
        seeds::ldif()
    }
    fn dict(&self) -> Vec<&'static [u8]> {
        seeds::ldif_dict()
    }
    fn run(&mut self, input: &[u8]) {
        let mut items = Vec::new();
        for (n, record) in LdifReader::new(input).enumerate() {
            assert!(n <= input.len(), "more records than bytes");
            if let Ok(r) = record {
                if let RecordKind::Content { attrs } = r.kind {
                    items.push(Item::Content {
                        line: r.line,
                        dn: r.dn,
                        attrs,
                    });
                }
            }
        }
        self.directory.take(items, std::str::from_utf8(input).ok());
    }
}

pub struct Csv {
    directory: Directory,
}

impl Csv {
    pub fn new() -> Csv {
        Csv {
            directory: Directory::open(),
        }
    }
}

impl Target for Csv {
    fn name(&self) -> &'static str {
        "csv"
    }
    fn seeds(&self) -> Vec<Vec<u8>> {
        seeds::csv()
    }
    fn dict(&self) -> Vec<&'static [u8]> {
        seeds::csv_dict()
    }
    fn run(&mut self, input: &[u8]) {
        let map = [("Service".to_string(), "department".to_string())];
        if let Ok(rows) = onepages::import::csv_rows::items(input, seeds::SUFFIX, &map) {
            self.directory.take(rows.items, None);
        }
    }
}

/// The TOML configuration file, and the same text as `ONEPAGES_*` environment values.
pub struct Config {
    dir: tempfile::TempDir,
}

impl Config {
    pub fn new() -> Config {
        Config {
            dir: tempfile::tempdir().unwrap(),
        }
    }
}

impl Target for Config {
    fn name(&self) -> &'static str {
        "config"
    }
    fn seeds(&self) -> Vec<Vec<u8>> {
        seeds::toml()
    }
    fn dict(&self) -> Vec<&'static [u8]> {
        seeds::toml_dict()
    }
    fn run(&mut self, input: &[u8]) {
        let text = String::from_utf8_lossy(input);
        let overrides = Overrides {
            data_dir: Some(self.dir.path().to_path_buf()),
            listen: None,
            suffix: None,
        };
        let _ = Settings::load_from_text(Some(("fuzz.toml", &text)), &[], &overrides);
        // Each `key = value` line as an environment variable.
        let env: Vec<(String, String)> = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| {
                (
                    format!("ONEPAGES_{}", k.trim().to_ascii_uppercase()),
                    v.trim().to_string(),
                )
            })
            .collect();
        let _ = Settings::load_from(None, &env, &overrides);
    }
}

/// Whole sessions against a running server: mutated PDUs (after a bind as a reader, an
/// administrator or nobody) over a real connection; every 64 sessions a fresh connection
/// must still be answered.
pub struct Session {
    server: crate::support::TestServer,
    runs: u64,
}

impl Session {
    pub fn new() -> Session {
        Session {
            server: crate::support::TestServer::demo_with(|s| {
                s.limits.request_timeout = Duration::from_secs(2);
                s.limits.first_request_timeout = Duration::from_secs(2);
                s.limits.output_timeout = Duration::from_secs(2);
                s.limits.max_connections_per_ip = 4096;
                s.lockout.address_failures = 0;
                s.lockout.failures = 0;
            }),
            runs: 0,
        }
    }

    fn answers(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(self.server.addr) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
        if s.write_all(&seeds::root_dse()).is_err() {
            return false;
        }
        let mut buf = [0u8; 1];
        matches!(s.read(&mut buf), Ok(1) if buf[0] == 0x30)
    }
}

impl Target for Session {
    fn name(&self) -> &'static str {
        "session"
    }
    fn seeds(&self) -> Vec<Vec<u8>> {
        seeds::pdus()
    }
    fn dict(&self) -> Vec<&'static [u8]> {
        seeds::ber_dict()
    }
    fn run(&mut self, input: &[u8]) {
        self.runs += 1;
        let Ok(mut s) = TcpStream::connect(self.server.addr) else {
            panic!("the server stopped accepting connections");
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(50)));
        let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
        let bind = match input.first().map(|b| b % 3) {
            Some(0) => seeds::bind(1, seeds::READER_DN, seeds::READER_PW),
            Some(1) => seeds::bind(1, seeds::ADMIN_DN, seeds::ADMIN_PW),
            _ => Vec::new(),
        };
        let _ = s.write_all(&bind);
        let _ = s.write_all(input);
        if input.len().is_multiple_of(2) {
            let _ = s.shutdown(Shutdown::Write);
        }
        let until = Instant::now() + Duration::from_millis(200);
        let mut buf = [0u8; 16 * 1024];
        while Instant::now() < until {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => break,
                Err(_) => break,
            }
        }
        drop(s);
        if self.runs.is_multiple_of(64) {
            assert!(self.answers(), "the server stopped answering");
        }
    }
}
