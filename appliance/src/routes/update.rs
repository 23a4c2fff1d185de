//! `/api/update/status`: which slot runs, which is committed, the release in each, and the
//! last attempt with its result.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

use crate::api::{ApiError, Data};
use crate::http::{Reader, Shared};
use crate::update::UpdateError;
use crate::update::device::Device;
use crate::update::status::{Status, status};

pub fn routes() -> Router<Shared> {
    Router::new().route("/api/update/status", get(get_status))
}

fn api_error(e: UpdateError) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "update_unavailable",
        format!("the update state cannot be read: {e}"),
    )
}

async fn get_status(State(s): State<Shared>, _reader: Reader) -> Result<Data<Status>, ApiError> {
    let described = s.config.update_device.clone();
    let st = crate::api::blocking(
        "update status",
        move || {
            let d = match described {
                Some(p) => Device::load(&p)?,
                None => Device::discover()?,
            };
            status(&d)
        },
        api_error,
    )
    .await?;
    Ok(Data(st))
}
