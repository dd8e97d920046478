//! (being written)

use utoipa_axum::router::OpenApiRouter;

use super::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
}
