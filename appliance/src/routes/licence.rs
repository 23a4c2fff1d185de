//! Licence and tier: `/license/info`, `/tier/status`, `/api/license` (the seed's paths).

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::Deserialize;

use crate::api::{ApiError, Body, Data};
use crate::http::{Owner, Shared};
use crate::licence::LicenceInfo;

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/license/info", get(info))
        .route("/tier/status", get(info))
        .route("/api/license", get(info).put(set_tier))
}

async fn info(State(s): State<Shared>) -> Data<LicenceInfo> {
    Data(s.licence.lock().await.info())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetTier {
    pub tier: u8,
}

/// Changes the tier (the owner applying a licence). The installation id never changes.
async fn set_tier(
    State(s): State<Shared>,
    _owner: Owner,
    Body(req): Body<SetTier>,
) -> Result<Data<LicenceInfo>, ApiError> {
    if req.tier > 3 {
        return Err(ApiError::bad_request(format!(
            "Tier {} does not exist: tiers are 0 to 3.",
            req.tier
        )));
    }
    let _writing = s.writing()?;
    let mut l = s.licence.lock().await;
    let mut next = l.clone();
    next.tier = req.tier;
    crate::state::save(&crate::licence::Licence::path(&s.config.state_dir), &next)
        .map_err(|e| ApiError::storage(&e))?;
    *l = next;
    Ok(Data(l.info()))
}
