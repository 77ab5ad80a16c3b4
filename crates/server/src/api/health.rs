//! Liveness (`/healthz`) and readiness (`/readyz`: the store answers). Both public.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::error::envelope;
use super::Success;
use crate::state::AppState;

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

async fn healthz() -> Response {
    Success(StatusCode::OK, "ok").into_response()
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => Success(StatusCode::OK, "ready").into_response(),
        Err(e) => {
            // A public route: aggregated so probes (or anyone) cannot flood the log.
            tracing::debug!(error = %e, "readiness check failed");
            state.quiet.note(crate::quiet::Kind::NotReady);
            envelope(StatusCode::SERVICE_UNAVAILABLE, "store unreachable")
        }
    }
}
