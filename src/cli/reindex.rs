//! `onepages reindex`: rebuild the search index from the store, offline.

use clap::Args;

use super::Common;
use crate::directory::schema::Schema;
use crate::index::terms::IndexSpec;
use crate::store::datadir::DataDir;
use crate::store::Store;

#[derive(Debug, Args)]
pub struct ReindexArgs {
    #[command(flatten)]
    pub common: Common,
}

pub fn run(args: ReindexArgs) -> anyhow::Result<()> {
    let settings = args.common.settings(None)?;
    let schema = match &settings.schema_dir {
        Some(d) => Schema::from_dir(d)?,
        None => Schema::builtin()?,
    };
    let dir = DataDir::open(&settings.data_dir, "onepages reindex")?;
    let store = Store::open(&dir.store_path(), settings.store_cache_bytes)?;
    let spec = IndexSpec::new(&settings.substring_attributes, &schema);
    let bar = super::progress("indexing");
    let started = std::time::Instant::now();
    let n = crate::index::rebuild_offline(&dir.index_path(), &store, &schema, &spec, &|n| {
        bar.set_position(u64::try_from(n).unwrap_or(0));
    })?;
    bar.finish_and_clear();
    eprintln!(
        "reindexed {n} entries in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
