//! `onepages serve`.

use clap::Args;

use super::Common;
use crate::gen::{DEMO_PEOPLE, DEMO_READER};

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub common: Common,
    /// Address to listen on, HOST:PORT
    #[arg(long)]
    pub listen: Option<String>,
    /// Load the embedded demo directory into an empty data directory
    /// (default data directory: ./onepages-demo)
    #[arg(long)]
    pub demo: bool,
    /// Worker threads (default: one per core)
    #[arg(long)]
    pub threads: Option<usize>,
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let mut common = args.common.clone();
    if args.demo && common.data_dir.is_none() && std::env::var_os("ONEPAGES_DATA_DIR").is_none() {
        common.data_dir = Some("onepages-demo".into());
    }
    let settings = common.settings(args.listen.clone())?;
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all();
    if let Some(n) = args.threads {
        rt.worker_threads(n.max(1));
    }
    let rt = rt.build()?;
    rt.block_on(async move {
        let suffix = settings.suffix.clone();
        let data_dir = settings.data_dir.clone();
        let running = crate::server::start(settings, args.demo, shutdown_signal()).await?;
        let n = running.entries;
        eprintln!(
            "ONE Pages is serving {n} entries of {suffix} on ldap://{} (data in {})",
            running.addr,
            data_dir.display()
        );
        if args.demo {
            let (rdn, password) = DEMO_READER;
            eprintln!("Try it (demo reader account):");
            eprintln!(
                "  ldapsearch -x -H ldap://{} -D \"{rdn},{suffix}\" -w {password} -b \"ou=people,{suffix}\" \"(cn=dewey*)\" cn mail o department",
                running.addr
            );
            if let Some((given, sn, pw, _)) = DEMO_PEOPLE.first() {
                let uid = crate::gen::local_part(given, sn);
                eprintln!(
                    "  ldapwhoami -x -H ldap://{} -D {uid}@{} -w {pw}",
                    running.addr,
                    crate::directory::ONE_ID_DOMAIN
                );
            }
        }
        running.wait().await;
        eprintln!("ONE Pages stopped cleanly");
        Ok(())
    })
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
