//! The setup wizard: `GET /api/onboarding/questions` (the steps and the rules the page
//! checks with), `GET`/`PUT /api/onboarding` (the progress), `GET /api/onboarding/dip`,
//! `GET /api/onboarding/pairing` and `/api/onboarding/qr.svg`, and
//! `POST /api/onboarding/reset` (the seed's paths). Reads follow the live-data rule; writes
//! are the owner's.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::api::{ApiError, Body, Data};
use crate::http::{Owner, Reader, Shared};
use crate::licence::{Licence, ResetAllowance};
use crate::onboarding::questions::{self, RULES, STEPS};
use crate::onboarding::store::Progress;
use crate::onboarding::{self, OnboardingError, Save, View, dip};

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/onboarding", get(show).put(save))
        .route("/api/onboarding/questions", get(asked))
        .route("/api/onboarding/dip", get(switches))
        .route("/api/onboarding/pairing", get(pairing))
        .route("/api/onboarding/qr.svg", get(qr))
        .route("/api/onboarding/reset", post(reset))
}

/// The newest engine year the wizard accepts: this year by the device's clock.
fn this_year() -> i32 {
    crate::time::civil(crate::time::unix_now()).year as i32
}

fn api_error(e: OnboardingError) -> ApiError {
    match e {
        OnboardingError::Invalid(problems) => {
            let fields: Vec<(String, String)> = problems
                .iter()
                .map(|p| (p.field.clone(), p.message.clone()))
                .collect();
            ApiError::bad_request(OnboardingError::Invalid(problems).to_string())
                .with_fields(fields)
        }
        e @ (OnboardingError::NoSuchStep(_) | OnboardingError::NotConfirmed) => {
            ApiError::bad_request(sentence(&e))
        }
        OnboardingError::Unanswered(keys) => {
            let fields = keys
                .iter()
                .map(|k| ((*k).to_owned(), "Not answered yet.".to_owned()))
                .collect();
            let e = OnboardingError::Unanswered(keys);
            ApiError::new(StatusCode::CONFLICT, "unanswered", sentence(&e)).with_fields(fields)
        }
        e @ (OnboardingError::Finished | OnboardingError::NothingToReset) => {
            ApiError::conflict(sentence(&e))
        }
        OnboardingError::NoResetsLeft(m) => {
            ApiError::new(StatusCode::CONFLICT, "no_resets_left", m)
        }
        OnboardingError::Store(e) if e.is_full() => ApiError::no_space(),
        OnboardingError::Store(e) => ApiError::internal(format!("onboarding: {e}")),
        OnboardingError::Licence(e) => ApiError::storage(&e),
    }
}

/// An error's text as a sentence for a person.
fn sentence(e: &OnboardingError) -> String {
    let t = e.to_string();
    let mut c = t.chars();
    match c.next() {
        Some(f) => format!("{}{}.", f.to_uppercase(), c.as_str()),
        None => t,
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, OnboardingError> + Send + 'static,
) -> Result<T, ApiError> {
    crate::api::blocking("onboarding", f, api_error).await
}

async fn progress(s: &Shared) -> Result<Progress, ApiError> {
    let st = s.clone();
    blocking(move || Ok(st.onboarding.load()?)).await
}

/// `GET /api/onboarding/questions`: the steps, the questions and the rules between them.
async fn asked(_r: Reader) -> Data<Value> {
    Data(json!({
        "steps": STEPS,
        "questions": questions::questions(this_year()),
        "rules": RULES,
    }))
}

/// `GET /api/onboarding`.
async fn show(State(s): State<Shared>, _r: Reader) -> Result<Data<View>, ApiError> {
    let p = progress(&s).await?;
    let licence = s.licence.lock().await.clone();
    Ok(Data(onboarding::view(
        p,
        &questions::questions(this_year()),
        &licence,
    )))
}

/// `PUT /api/onboarding`: the owner's answers so far and the step reached.
async fn save(
    State(s): State<Shared>,
    _owner: Owner,
    Body(req): Body<Save>,
) -> Result<Data<View>, ApiError> {
    let _writing = s.writing()?;
    let st = s.clone();
    let (p, qs) = blocking(move || {
        let qs = questions::questions(this_year());
        let p = onboarding::save(&st.onboarding, &req, &qs, crate::time::unix_now())?;
        st.apply_engine_limits_of(&p);
        Ok((p, qs))
    })
    .await?;
    let licence = s.licence.lock().await.clone();
    Ok(Data(onboarding::view(p, &qs, &licence)))
}

#[derive(Serialize)]
struct Switches {
    #[serde(flatten)]
    setting: dip::Setting,
    /// The engine they are for, for the printout.
    engine: Value,
}

/// `GET /api/onboarding/dip`: the CX5106's switches for the answers, with the reasons.
async fn switches(State(s): State<Shared>, _r: Reader) -> Result<Data<Switches>, ApiError> {
    let p = progress(&s).await?;
    let setting =
        onboarding::switches(&p).map_err(|keys| api_error(OnboardingError::Unanswered(keys)))?;
    let a = |k: &str| p.answers.get(k).cloned().unwrap_or(Value::Null);
    Ok(Data(Switches {
        setting,
        engine: json!({
            "manufacturer": a("manufacturer"),
            "model": a("model"),
            "year": a("year"),
            "boat_name": a("boat_name"),
        }),
    }))
}

async fn pairing_url(s: &Shared) -> Result<String, ApiError> {
    let p = progress(s).await?;
    let l = s.licence.lock().await.clone();
    Ok(onboarding::pairing::url(
        &l.installation_id,
        crate::release::version(),
        l.tier,
        onboarding::boat_name(&p),
    ))
}

/// `GET /api/onboarding/pairing`: the pairing URL the QR code holds.
async fn pairing(State(s): State<Shared>, _r: Reader) -> Result<Data<Value>, ApiError> {
    Ok(Data(json!({ "url": pairing_url(&s).await? })))
}

/// `GET /api/onboarding/qr.svg`: the pairing URL as a QR code, made afresh on every request.
async fn qr(State(s): State<Shared>, _r: Reader) -> Result<Response, ApiError> {
    let url = pairing_url(&s).await?;
    let mut r = (StatusCode::OK, crate::qr::svg(&url)).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        "image/svg+xml".parse().expect("a type"),
    );
    h.insert(header::CACHE_CONTROL, "no-store".parse().expect("a value"));
    Ok(r)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Reset {
    confirm: bool,
}

#[derive(Serialize)]
struct ResetDone {
    resets: ResetAllowance,
}

/// `POST /api/onboarding/reset {"confirm": true}`: forgets the answers, counted against the
/// licence.
async fn reset(
    State(s): State<Shared>,
    _owner: Owner,
    Body(req): Body<Reset>,
) -> Result<Data<ResetDone>, ApiError> {
    let _writing = s.writing()?;
    let st = s.clone();
    let resets = blocking(move || {
        let mut licence = st.licence.blocking_lock();
        let path = Licence::path(&st.config.state_dir);
        let r = onboarding::reset(
            &st.onboarding,
            &mut licence,
            &path,
            req.confirm,
            crate::time::unix_now(),
        )?;
        drop(licence);
        // A reset leaves the wizard unfinished: the configured limits again.
        st.apply_engine_limits_of(&Progress::default());
        Ok(r)
    })
    .await?;
    Ok(Data(ResetDone { resets }))
}
