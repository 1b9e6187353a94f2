//! Micro-benchmarks of the hot paths: PDU decode and entry encode, entry codec, filter
//! evaluation, index look-up. `cargo bench --bench hot_paths`.

// Benchmarks stop on a broken fixture; the no-panic rule is for the server.
#![allow(clippy::expect_used)]

use std::hint::black_box;
use std::ops::ControlFlow;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ldap3_proto::proto::{LdapMsg, LdapOp, LdapPartialAttribute, LdapSearchResultEntry};
use onepages::directory::filter::{compile, FilterLimits};
use onepages::directory::filter_text::parse_filter;
use onepages::dsa::{Budget, Dsa, GrantCache, Identity, Query, Scope};

/// The server's allocator, so that allocation costs are the ones it pays.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SUFFIX: &str = "dc=one-mail,dc=on,dc=ca";

fn directory(n: usize) -> (tempfile::TempDir, Dsa) {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = onepages::config::Settings::load_from(
        None,
        &[],
        &onepages::config::Overrides {
            data_dir: Some(dir.path().to_path_buf()),
            listen: Some("127.0.0.1:0".into()),
            suffix: None,
        },
    )
    .expect("settings");
    // Searches here run as an anonymous session that may read, with the server's caps.
    let mut settings = settings;
    settings.anonymous_read = true;
    let (dsa, _) = Dsa::open(settings, "bench", &|_| {}).expect("open");
    let grant = dsa.operator_grant().expect("operator");
    let mut ldif = Vec::new();
    onepages::gen::write_ldif(&mut ldif, &onepages::gen::people(n, 1), SUFFIX).expect("ldif");
    onepages::import::import_ldif_text(
        &dsa.writer(&grant),
        "bench",
        std::str::from_utf8(&ldif).expect("utf8"),
    )
    .expect("import");
    (dir, dsa)
}

fn codec(c: &mut Criterion) {
    let entry = LdapSearchResultEntry {
        dn: format!("uid=helene.cote-tremblay@oneid.on.ca,ou=people,{SUFFIX}"),
        attributes: [
            "cn",
            "sn",
            "givenName",
            "mail",
            "o",
            "department",
            "title",
            "telephoneNumber",
        ]
        .iter()
        .map(|a| LdapPartialAttribute {
            atype: (*a).into(),
            vals: vec!["Hélène Côté-Tremblay".as_bytes().to_vec()],
        })
        .collect(),
    };
    let mut g = c.benchmark_group("pdu");
    g.throughput(Throughput::Elements(1));
    // What a search does: the entry rendered in place (borrowed), encoded into a buffer.
    let found = onepages::ops::search::Found::of(&entry);
    g.bench_function("encode entry (direct BER)", |b| {
        let mut out = Vec::with_capacity(1024);
        b.iter(|| {
            out.clear();
            onepages::protocol::encode::encode_found_into(
                &mut out,
                black_box(7),
                black_box(&found),
            );
            out.len()
        })
    });
    g.bench_function("encode entry (ldap3_proto)", |b| {
        b.iter(|| {
            onepages::protocol::encode::encode(LdapMsg::new(
                7,
                LdapOp::SearchResultEntry(black_box(entry.clone())),
            ))
        })
    });
    let search = onepages::protocol::encode::encode(LdapMsg::new(
        9,
        LdapOp::SearchRequest(ldap3_proto::proto::LdapSearchRequest {
            base: SUFFIX.into(),
            scope: ldap3_proto::proto::LdapSearchScope::Subtree,
            aliases: ldap3_proto::proto::LdapDerefAliases::Always,
            sizelimit: 100,
            timelimit: 60,
            typesonly: false,
            filter: parse_filter(
                "(&(mail=*)(|(mail=dew*)(|(cn=dew*)(|(sn=dew*)(givenName=dew*)))))",
            )
            .expect("filter"),
            attrs: vec!["cn".into(), "mail".into()],
        }),
    ));
    g.bench_function("decode Outlook search request", |b| {
        b.iter(|| onepages::protocol::frame::decode(black_box(&search), 64).expect("decode"))
    });
    g.finish();
}

fn store_and_filters(c: &mut Criterion) {
    let (_dir, dsa) = directory(5_000);
    let entries: Vec<_> = dsa
        .reader()
        .all_entries()
        .take(1000)
        .map(|r| r.expect("entry").1)
        .collect();
    let encoded: Vec<Vec<u8>> = entries
        .iter()
        .map(onepages::directory::record::encode)
        .collect();
    let mut g = c.benchmark_group("entries");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("decode 1000 stored entries", |b| {
        b.iter(|| {
            for e in &encoded {
                black_box(onepages::directory::record::decode(e).expect("decode"));
            }
        })
    });
    g.bench_function("view 1000 stored entries in place", |b| {
        b.iter(|| {
            for e in &encoded {
                black_box(onepages::directory::record::view(e).expect("view"));
            }
        })
    });
    let filters: Vec<(&str, onepages::directory::filter::Filter)> = [
        (
            "outlook",
            "(&(mail=*)(|(mail=ga*)(|(cn=ga*)(|(sn=ga*)(givenName=ga*)))))",
        ),
        (
            "thunderbird",
            "(|(cn=*lav*)(mail=*lav*)(givenName=*lav*)(sn=*lav*))",
        ),
        ("anr", "(anr=marie tremblay)"),
    ]
    .into_iter()
    .map(|(name, f)| {
        let compiled = compile(
            &parse_filter(f).expect("filter"),
            dsa.schema(),
            FilterLimits::default(),
        )
        .expect("compile");
        (name, compiled)
    })
    .collect();
    for (name, compiled) in &filters {
        g.bench_function(format!("evaluate {name} on 1000 entries in place"), |b| {
            b.iter(|| {
                encoded
                    .iter()
                    .filter(|e| {
                        let view = onepages::directory::record::view(e).expect("view");
                        compiled.matches(&view, dsa.schema())
                    })
                    .count()
            })
        });
        g.bench_function(format!("evaluate {name} on 1000 entries"), |b| {
            b.iter(|| {
                entries
                    .iter()
                    .filter(|e| compiled.matches(*e, dsa.schema()))
                    .count()
            })
        });
    }
    g.finish();
    let mut candidates = c.benchmark_group("index");
    for (name, compiled) in &filters {
        candidates.bench_function(format!("candidates for {name} (5000 entries)"), |b| {
            b.iter(|| {
                let reader = dsa.reader();
                let query = Query {
                    base_ndn: "",
                    scope: Scope::Subtree,
                    filter: compiled,
                    hide_disabled: false,
                };
                let ids = reader
                    .search(query, Budget::unbounded())
                    .candidate_ids()
                    .expect("candidates");
                ids.map_or(0, |ids| ids.len())
            })
        });
    }
    candidates.finish();
}

/// A whole search as the server runs it, minus the socket: plan, candidates, read in place,
/// filter, render and BER-encode every entry into one buffer (what the writer task sends).
fn whole_searches(c: &mut Criterion) {
    let (_dir, dsa) = directory(20_000);
    dsa.start_serving().expect("hold");
    let who = Identity::Anonymous;
    let ctx = onepages::ops::context::RequestContext::local(
        &who,
        dsa.grant(&who, &mut GrantCache::default()),
    );
    let mut g = c.benchmark_group("search");
    for (name, filter) in [
        (
            "thunderbird 'ma', all attributes, size limit 100",
            "(|(cn=*ma*)(mail=*ma*)(givenName=*ma*)(sn=*ma*))",
        ),
        (
            "thunderbird 'é', all attributes, size limit 100",
            "(|(cn=*é*)(mail=*é*)(givenName=*é*)(sn=*é*))",
        ),
        (
            "outlook 'ga', size limit 100",
            "(&(mail=*)(|(mail=ga*)(|(cn=ga*)(|(sn=ga*)(givenName=ga*)))))",
        ),
    ] {
        let mut req = onepages::ops::search::SearchRequest::plain(
            SUFFIX,
            ldap3_proto::proto::LdapSearchScope::Subtree,
            onepages::directory::filter_text::parse_filter(filter).expect("filter"),
            &[],
        );
        req.size_limit = 100;
        let mut out = bytes::BytesMut::with_capacity(128 * 1024);
        g.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                let end = onepages::ops::search::simple_search(
                    &dsa,
                    &ctx,
                    &req,
                    &std::sync::atomic::AtomicBool::new(false),
                    &mut |found| {
                        onepages::protocol::encode::encode_found_into(&mut out, 7, found);
                        ControlFlow::Continue(())
                    },
                );
                black_box(end);
                out.len()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, codec, store_and_filters, whole_searches);
criterion_main!(benches);
