//! `onepages reindex`: rebuild the search index from the store, offline.

use clap::Args;

use super::Common;

#[derive(Debug, Args)]
pub struct ReindexArgs {
    #[command(flatten)]
    pub common: Common,
}

pub fn run(args: ReindexArgs) -> anyhow::Result<()> {
    let settings = args.common.settings(None)?;
    let bar = super::progress("indexing");
    let started = std::time::Instant::now();
    let n = crate::dsa::reindex_offline(&settings, "onepages reindex", &|n| {
        bar.set_position(u64::try_from(n).unwrap_or(0));
    })?;
    bar.finish_and_clear();
    eprintln!(
        "reindexed {n} entries in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
