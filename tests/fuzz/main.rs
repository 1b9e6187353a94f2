//! Robustness harness on the stable toolchain: a seeded mutation fuzzer with one target per
//! parser reachable from input — the BER envelope and operations (`ber`, and whole sessions
//! against a running server: `session`), filters (`filter`), DNs and value checks (`dn`), LDIF
//! (`ldif`), CSV (`csv`) and the TOML configuration (`config`).
//!
//! `cargo test --test fuzz` runs a short seeded pass of every target (part of the test
//! suite). A long run, in release mode, for as many seconds per target as
//! `ONEPAGES_FUZZ_SECS` says (default 600), from `ONEPAGES_FUZZ_SEED` (default: the clock),
//! over the targets `ONEPAGES_FUZZ_TARGETS` lists (default all):
//!
//! ```text
//! ONEPAGES_FUZZ_SECS=600 cargo test --release --test fuzz -- --ignored --nocapture
//! ```
//!
//! A panic, a broken round trip or an input slower than `ONEPAGES_FUZZ_SLOW_MS` (default 2000)
//! is a finding: the input is saved under `target/fuzz-findings/` and the run fails, naming
//! the file and the seed that reproduces it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod mutate;
mod seeds;
#[allow(dead_code)]
#[path = "../wire/support.rs"]
mod support;
mod targets;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use targets::Target;

/// How long a run goes on.
#[derive(Clone, Copy)]
enum Length {
    Runs(u64),
    Time(Duration),
}

struct Outcome {
    runs: u64,
    slowest: Duration,
    findings: Vec<String>,
}

fn all_targets(names: Option<&str>) -> Vec<Box<dyn Target>> {
    let wanted = |n: &str| names.is_none_or(|list| list.split(',').any(|w| w.trim() == n));
    let mut out: Vec<Box<dyn Target>> = Vec::new();
    if wanted("ber") {
        out.push(Box::new(targets::Ber::new()));
    }
    if wanted("filter") {
        out.push(Box::new(targets::FilterText::new()));
    }
    if wanted("dn") {
        out.push(Box::new(targets::DnText::new()));
    }
    if wanted("ldif") {
        out.push(Box::new(targets::Ldif::new()));
    }
    if wanted("csv") {
        out.push(Box::new(targets::Csv::new()));
    }
    if wanted("config") {
        out.push(Box::new(targets::Config::new()));
    }
    if wanted("session") {
        out.push(Box::new(targets::Session::new()));
    }
    out
}

fn save(target: &str, seed: u64, run: u64, input: &[u8]) -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-findings");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("{target}-seed{seed}-run{run}.bin"));
    let _ = std::fs::write(&path, input);
    path.display().to_string()
}

fn fuzz(target: &mut dyn Target, seed: u64, length: Length, slow: Option<Duration>) -> Outcome {
    let seeds = target.seeds();
    let dict = target.dict();
    let mut mutator = mutate::Mutator::new(seed);
    let started = Instant::now();
    let mut out = Outcome {
        runs: 0,
        slowest: Duration::ZERO,
        findings: Vec::new(),
    };
    // The seeds themselves first, then their mutations.
    let mut pending: Vec<Vec<u8>> = seeds.iter().rev().cloned().collect();
    loop {
        let more = match length {
            Length::Runs(n) => out.runs < n,
            Length::Time(d) => started.elapsed() < d,
        };
        if !more || out.findings.len() >= 5 {
            break;
        }
        let input = pending.pop().unwrap_or_else(|| mutator.next(&seeds, &dict));
        let t = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| target.run(&input)));
        let took = t.elapsed();
        out.slowest = out.slowest.max(took);
        if result.is_err() {
            let path = save(target.name(), seed, out.runs, &input);
            out.findings
                .push(format!("{}: panic, input in {path}", target.name()));
        } else if slow.is_some_and(|s| took > s) {
            let path = save(target.name(), seed, out.runs, &input);
            out.findings.push(format!(
                "{}: {} ms for one input, input in {path}",
                target.name(),
                took.as_millis()
            ));
        }
        out.runs += 1;
    }
    out
}

fn report(name: &str, seed: u64, o: &Outcome, elapsed: Duration) {
    eprintln!(
        "fuzz {name}: seed {seed}, {} inputs in {:.1} s ({:.0}/s), slowest {} ms, {} findings",
        o.runs,
        elapsed.as_secs_f64(),
        o.runs as f64 / elapsed.as_secs_f64().max(1e-9),
        o.slowest.as_millis(),
        o.findings.len()
    );
}

/// The seeded pass of the test suite: every target, a fixed seed, a few thousand inputs.
#[test]
fn seeded_pass() {
    let seed = 2026;
    let mut findings = Vec::new();
    for mut t in all_targets(None) {
        let runs = if t.name() == "session" { 300 } else { 3000 };
        let started = Instant::now();
        let o = fuzz(t.as_mut(), seed, Length::Runs(runs), None);
        report(t.name(), seed, &o, started.elapsed());
        assert!(o.runs >= runs.min(1));
        findings.extend(o.findings);
    }
    assert!(findings.is_empty(), "{findings:#?}");
}

/// The long run (see the module's documentation).
#[test]
#[ignore]
fn long_run() {
    let env = |k: &str| std::env::var(k).ok();
    let secs: u64 = env("ONEPAGES_FUZZ_SECS")
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    let seed: u64 = env("ONEPAGES_FUZZ_SEED")
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_secs())
        });
    let slow = Duration::from_millis(
        env("ONEPAGES_FUZZ_SLOW_MS")
            .and_then(|s| s.parse().ok())
            .unwrap_or(2000),
    );
    let names = env("ONEPAGES_FUZZ_TARGETS");
    let mut findings = Vec::new();
    for mut t in all_targets(names.as_deref()) {
        let started = Instant::now();
        let o = fuzz(
            t.as_mut(),
            seed,
            Length::Time(Duration::from_secs(secs)),
            Some(slow),
        );
        report(t.name(), seed, &o, started.elapsed());
        findings.extend(o.findings);
    }
    assert!(findings.is_empty(), "seed {seed}: {findings:#?}");
}
