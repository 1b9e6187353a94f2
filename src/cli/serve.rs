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

/// Where `serve --demo` offers the HTTP endpoints unless `http_listen` says otherwise.
const DEMO_HTTP_PORT: u16 = 8389;

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let mut common = args.common.clone();
    if args.demo && common.data_dir.is_none() && std::env::var_os("ONEPAGES_DATA_DIR").is_none() {
        common.data_dir = Some("onepages-demo".into());
    }
    let mut settings = common.settings(args.listen.clone())?;
    if !settings.store_cache_set {
        settings.store_cache_bytes = crate::config::SERVING_STORE_CACHE_MIB << 20;
    }
    // The demo shows TLS with a throw-away certificate, unless the configuration has one.
    let mut demo_ca = None;
    if args.demo && settings.tls.is_none() {
        let pki = crate::protocol::tls::demo_pki(&settings.data_dir.join("demo-tls"))?;
        settings.tls = Some(pki.files);
        if settings.ldaps_listen.is_none() {
            settings.ldaps_listen = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 6636)));
        }
        demo_ca = Some(std::fs::canonicalize(&pki.ca).unwrap_or(pki.ca));
    }
    // The demo shows the operators' endpoints too, on 127.0.0.1:8389 when that port is free
    // (several demos side by side: the others go without, even when two start at once).
    let demo_http = args.demo && settings.http_listen.is_none();
    if demo_http {
        settings.http_listen = Some(std::net::SocketAddr::from(([127, 0, 0, 1], DEMO_HTTP_PORT)));
    }
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all();
    if let Some(n) = args.threads {
        rt.worker_threads(n.max(1));
    }
    let rt = rt.build()?;
    rt.block_on(async move {
        let suffix = settings.suffix.clone();
        let data_dir = settings.data_dir.clone();
        let listen = settings.listen;
        let has_tls = settings.tls.is_some();
        let running = match crate::server::start(settings.clone(), args.demo, shutdown_signal())
            .await
        {
            Err(e)
                if demo_http
                    && e.downcast_ref::<crate::server::ListenError>()
                        .is_some_and(|l| l.kind == crate::server::ListenerKind::Http) =>
            {
                tracing::warn!(
                    error = %e,
                    "port taken: the demo serves no HTTP endpoints (set http_listen)"
                );
                settings.http_listen = None;
                crate::server::start(settings, args.demo, shutdown_signal()).await?
            }
            other => other?,
        };
        let n = running.entries;
        eprintln!(
            "ONE Pages is serving {n} entries of {suffix} on ldap://{} (data in {})",
            running.addr,
            data_dir.display()
        );
        if let Some(at) = running.ldaps_addr() {
            eprintln!("LDAPS on ldaps://{at}");
        }
        if let Some(at) = running.http_addr() {
            eprintln!("Health and metrics on http://{at}/healthz, http://{at}/readyz, http://{at}/metrics");
        }
        if !has_tls && !listen.ip().is_loopback() {
            tracing::warn!(
                %listen,
                "serving beyond loopback without a TLS certificate: passwords and health-care \
                 staff details cross the network in clear; set tls_cert_file and tls_key_file"
            );
        }
        tokio::spawn(reload_on_hangup(running.tls.clone(), running.logs()));
        if args.demo {
            let (rdn, password) = DEMO_READER;
            eprintln!("Try it (demo reader account):");
            eprintln!(
                "  ldapsearch -x -H ldap://{} -D \"{rdn},{suffix}\" -w {password} -b \"ou=people,{suffix}\" \"(cn=dewey*)\" cn mail o department",
                running.addr
            );
            if let (Some(ca), Some(at)) = (&demo_ca, running.ldaps_addr()) {
                eprintln!(
                    "  LDAPTLS_CACERT={} ldapsearch -x -H ldaps://{at} -D \"{rdn},{suffix}\" -w {password} -b \"ou=people,{suffix}\" \"(cn=dewey*)\" cn mail",
                    ca.display()
                );
                eprintln!(
                    "  LDAPTLS_CACERT={} ldapsearch -ZZ -x -H ldap://{} -D \"{rdn},{suffix}\" -w {password} -b \"ou=people,{suffix}\" \"(cn=dewey*)\" cn mail",
                    ca.display(),
                    running.addr
                );
            }
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

/// On every SIGHUP, reopens the audit and access log files (logrotate moved them) and reloads
/// the TLS certificate and key (an ACME renewal, say); a file that does not load leaves the
/// certificate in use and is logged.
async fn reload_on_hangup(
    tls: Option<std::sync::Arc<crate::protocol::tls::TlsCertificates>>,
    logs: crate::server::Logs,
) {
    #[cfg(unix)]
    {
        let Ok(mut hangups) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            tracing::warn!("cannot listen for SIGHUP: the TLS certificate reloads only on restart");
            return;
        };
        while hangups.recv().await.is_some() {
            logs.reopen();
            match tls.as_ref().map(|t| t.reload()) {
                Some(Ok(())) => tracing::info!("TLS certificate reloaded"),
                Some(Err(e)) => tracing::warn!(
                    error = %e,
                    "TLS certificate not reloaded; the previous one stays in use"
                ),
                None => {
                    tracing::info!("SIGHUP: no TLS certificate is configured, nothing to reload")
                }
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (tls, logs);
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
