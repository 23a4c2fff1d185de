//! What only the device's own screen shows: until the owner exists, the one-time setup code
//! and the setup Wi-Fi, on the first screen; and what the start found wrong.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde_json::{Value as Json, json};

use crate::api::{ApiError, Data};
use crate::http::{Client, Shared};

pub fn routes() -> Router<Shared> {
    Router::new().route("/api/helm/first-use", get(first_use))
}

/// `GET /api/helm/first-use`: for the helm screen (the device's own browser) only; anyone
/// on the network would otherwise read the code that makes the owner.
async fn first_use(State(s): State<Shared>, client: Client) -> Result<Data<Json>, ApiError> {
    if !client.0.is_helm() {
        return Err(ApiError::forbidden(
            "Only the helm screen shows the setup code and the setup Wi-Fi.",
        ));
    }
    let wifi = s.setup_wifi.lock().await.clone();
    let wifi = match &wifi {
        Some(w) => Some(super::wifi::status(w).await),
        None => None,
    };
    Ok(Data(json!({
        // What the start found wrong (Imager's settings that could not be applied, a state
        // file moved aside): also in /api/health, shown here on the screen.
        "problems": s.problems,
        "owner_exists": s.auth.owner_exists(),
        "setup_code": s.auth.setup_code_shown(),
        "setup_wifi": wifi,
    })))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{app, get};

    #[tokio::test]
    async fn the_helm_sees_the_setup_code_and_wifi_and_the_network_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let app = app(dir.path());
        let helm = [127, 0, 0, 1];
        let (status, _, body) = get(&app, "/api/helm/first-use", "localhost", helm, helm).await;
        assert_eq!(status, 200);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let code = v["data"]["setup_code"].as_str().unwrap();
        let file = std::fs::read_to_string(dir.path().join("config/d3kos-setup-code.txt")).unwrap();
        assert!(
            file.contains(code),
            "the screen and the card agree: {code} / {file}"
        );
        assert_eq!(v["data"]["owner_exists"], false);
        assert!(
            v["data"]["setup_wifi"]["ssid"]
                .as_str()
                .unwrap()
                .starts_with("d3kOS-")
        );
        assert_eq!(v["data"]["problems"], serde_json::json!([]));

        let (status, _, body) = get(
            &app,
            "/api/helm/first-use",
            "localhost",
            [192, 168, 1, 20],
            [192, 168, 1, 2],
        )
        .await;
        assert_eq!(status, 403);
        assert!(!body.contains(code));
    }
}
