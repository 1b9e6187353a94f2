//! The operators' HTTP listener (`http_listen`): `GET /healthz` (the process serves), `GET
//! /readyz` (the index has caught up with the store), `GET /metrics` (the exposition
//! `prometheus-client` writes: OpenMetrics 1.0 when asked for, the text format 0.0.4
//! otherwise) and `GET /status` (everything `onepages status` shows, JSON), on the server's
//! own runtime, stopped with the LDAP listeners.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::Shared;
use crate::metrics::Observe;

struct HttpState {
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
}

fn json(code: StatusCode, body: serde_json::Value) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn healthz(State(state): State<Arc<HttpState>>) -> Response {
    let uptime = state.shared.metrics.uptime().as_secs();
    if *state.stop.borrow() {
        return json(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"status": "stopping", "reason": "the server is shutting down"}),
        );
    }
    json(
        StatusCode::OK,
        serde_json::json!({"status": "serving", "uptime_secs": uptime}),
    )
}

async fn readyz(State(state): State<Arc<HttpState>>) -> Response {
    let lag = state.shared.dsa.index_lag();
    if *state.stop.borrow() {
        return json(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"ready": false, "reason": "the server is shutting down"}),
        );
    }
    if lag > 0 {
        return json(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({
                "ready": false,
                "index_lag": lag,
                "reason": format!("the search index is {lag} entries behind the store"),
            }),
        );
    }
    json(
        StatusCode::OK,
        serde_json::json!({"ready": true, "index_lag": 0}),
    )
}

/// The exposition: OpenMetrics 1.0 to a scraper that asks for it (Prometheus does), the
/// Prometheus text format 0.0.4 otherwise (curl, promtool, older agents).
async fn metrics(State(state): State<Arc<HttpState>>, headers: HeaderMap) -> Response {
    let open_metrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    let shared = Arc::clone(&state.shared);
    // Counting the entries reads the store: off the runtime's threads.
    let text = tokio::task::spawn_blocking(move || {
        let snap = shared.snapshot();
        if open_metrics {
            shared.metrics.render(&snap)
        } else {
            shared.metrics.render_text_004(&snap)
        }
    })
    .await
    .unwrap_or_default();
    let kind = if open_metrics {
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    } else {
        "text/plain; version=0.0.4; charset=utf-8"
    };
    (StatusCode::OK, [(header::CONTENT_TYPE, kind)], text).into_response()
}

/// Everything `onepages status` shows (JSON, `metrics::Snapshot`).
async fn status(State(state): State<Arc<HttpState>>) -> Response {
    let shared = Arc::clone(&state.shared);
    match tokio::task::spawn_blocking(move || shared.snapshot()).await {
        Ok(snap) => match serde_json::to_value(&snap) {
            Ok(v) => json(StatusCode::OK, v),
            Err(e) => json(
                StatusCode::INTERNAL_SERVER_ERROR,
                serde_json::json!({"reason": e.to_string()}),
            ),
        },
        Err(e) => json(
            StatusCode::INTERNAL_SERVER_ERROR,
            serde_json::json!({"reason": e.to_string()}),
        ),
    }
}

/// Serves until `stop` turns true.
pub async fn run(listener: TcpListener, shared: Arc<Shared>, stop: watch::Receiver<bool>) {
    let state = Arc::new(HttpState {
        shared,
        stop: stop.clone(),
    });
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/status", get(status))
        .with_state(state);
    let mut stop = stop;
    let stopped = async move {
        while !*stop.borrow() {
            if stop.changed().await.is_err() {
                break;
            }
        }
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(stopped)
        .await
    {
        tracing::warn!(error = %e, "the HTTP listener stopped");
    }
}
