//! The setup Wi-Fi: its name, passphrase and QR code for the helm screen and the owner,
//! and the owner's switch.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value as Json, json};

use crate::api::{ApiError, Body, Data};
use crate::http::{Client, Owner, Shared};
use crate::wifi::{ADDRESS, SetupWifi};

/// The unit that decides and (re)starts the access point (rootfs-overlay).
const UNIT: &str = "d3kos-setup-wifi.service";
/// The access point itself: running or not.
const AP_UNIT: &str = "d3kos-setup-wifi-ap.service";

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/setup/wifi", get(show).put(set))
        .route("/api/setup/wifi/qr.svg", get(qr))
}

/// The passphrase is shown to the device's own screen and to the owner; anyone else on the
/// network learns nothing from here.
fn helm_or_owner(client: &Client, owner: &Result<Owner, ApiError>) -> Result<(), ApiError> {
    match owner {
        Ok(_) => Ok(()),
        Err(_) if client.0.is_helm() => Ok(()),
        Err(e) => Err(e.clone()),
    }
}

async fn credentials(s: &Shared) -> Result<SetupWifi, ApiError> {
    s.setup_wifi.lock().await.clone().ok_or_else(|| {
        ApiError::not_found(
            "This device has no setup Wi-Fi: it keeps its passphrase on the data partition, \
             which is not there.",
        )
    })
}

/// The setup Wi-Fi as the helm screen and the owner see it.
pub(super) async fn status(w: &SetupWifi) -> Json {
    let running = crate::systemd::unit_states(&[AP_UNIT.to_owned()])
        .await
        .first()
        .and_then(|u| u.active_state.clone());
    json!({
        "ssid": w.ssid,
        "passphrase": w.passphrase,
        "join": w.join_uri(),
        "address": ADDRESS,
        "owner_on": w.owner_on,
        // systemd's ActiveState of the access point; null where systemd cannot be asked.
        "access_point": running,
    })
}

/// `GET /api/setup/wifi`.
async fn show(
    State(s): State<Shared>,
    client: Client,
    owner: Result<Owner, ApiError>,
) -> Result<Data<Json>, ApiError> {
    helm_or_owner(&client, &owner)?;
    let w = credentials(&s).await?;
    Ok(Data(status(&w).await))
}

/// `GET /api/setup/wifi/qr.svg`: the code a phone's camera joins by.
async fn qr(
    State(s): State<Shared>,
    client: Client,
    owner: Result<Owner, ApiError>,
) -> Result<Response, ApiError> {
    helm_or_owner(&client, &owner)?;
    let w = credentials(&s).await?;
    let mut r = (StatusCode::OK, crate::qr::svg(&w.join_uri())).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("image/svg+xml"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Switch {
    on: bool,
}

/// `PUT /api/setup/wifi {"on": true}`: the owner turns the setup Wi-Fi on (it then runs
/// even with the boat's Wi-Fi set up, which it takes the radio from) or back to automatic.
async fn set(
    State(s): State<Shared>,
    _o: Owner,
    Body(body): Body<Switch>,
) -> Result<Data<Json>, ApiError> {
    let w = {
        let mut kept = s.setup_wifi.lock().await;
        let mut w = kept.clone().ok_or_else(|| {
            ApiError::not_found("This device has no setup Wi-Fi to turn on or off.")
        })?;
        w.owner_on = body.on;
        w.save(&s.config.data_dir).map_err(|e| match e {
            crate::wifi::WifiError::State(e) => ApiError::storage(&e),
            e => ApiError::internal(e.to_string()),
        })?;
        *kept = Some(w.clone());
        w
    };
    // The root step decides again and the access point follows (polkit lets the appliance
    // restart its own d3kos-* units).
    let radio = match crate::systemd::job(
        crate::systemd::Job::Restart,
        UNIT,
        Duration::from_secs(60),
    )
    .await
    {
        Ok(()) => None,
        Err(e) => {
            log::warn!("setup Wi-Fi: {e}");
            Some(e)
        }
    };
    let mut answer = status(&w).await;
    answer["radio_error"] = json!(radio);
    Ok(Data(answer))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{app, get};

    const HELM: [u8; 4] = [127, 0, 0, 1];

    #[tokio::test]
    async fn the_helm_screen_gets_the_credentials_the_config_partition_has() {
        let dir = tempfile::tempdir().unwrap();
        let app = app(dir.path());
        let (status, _, body) = get(&app, "/api/setup/wifi", "localhost", HELM, HELM).await;
        assert_eq!(status, 200);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let card = std::fs::read_to_string(dir.path().join("config/d3kos-setup-wifi.txt")).unwrap();
        let pass = v["data"]["passphrase"].as_str().unwrap();
        let ssid = v["data"]["ssid"].as_str().unwrap();
        assert!(card.contains(&format!("Passphrase: {pass}\n")), "{card}");
        assert!(card.contains(&format!("Network:    {ssid}\n")), "{card}");
        assert!(ssid.starts_with("d3kOS-") && ssid.len() == 10, "{ssid}");
        assert_eq!(
            v["data"]["join"],
            format!("WIFI:T:WPA;S:{ssid};P:{pass};;"),
            "{v}"
        );
        let (status, headers, body) =
            get(&app, "/api/setup/wifi/qr.svg", "localhost", HELM, HELM).await;
        assert_eq!(status, 200);
        assert_eq!(headers["content-type"], "image/svg+xml");
        assert!(body.contains("<svg"));
    }

    #[tokio::test]
    async fn the_network_learns_nothing_without_the_owner() {
        let dir = tempfile::tempdir().unwrap();
        let app = app(dir.path());
        for path in ["/api/setup/wifi", "/api/setup/wifi/qr.svg"] {
            let (status, _, body) = get(
                &app,
                path,
                "d3kos.local",
                [192, 168, 1, 20],
                [192, 168, 1, 2],
            )
            .await;
            assert_eq!(status, 401, "{path}");
            assert!(!body.contains("d3kOS-"), "{body}");
        }
    }

    #[tokio::test]
    async fn a_phone_on_the_setup_wifi_asking_a_vendors_name_is_sent_to_the_owner_setup() {
        let dir = tempfile::tempdir().unwrap();
        let app = app(dir.path());
        let vendor = "connectivitycheck.gstatic.com";
        let (status, headers, _) = get(
            &app,
            "/generate_204",
            vendor,
            [10, 42, 0, 23],
            [10, 42, 0, 1],
        )
        .await;
        assert_eq!(status, 302);
        assert_eq!(headers["location"], "http://d3kos.local/settings.html");
        // The same name on the boat's network is DNS rebinding, and refused.
        let (status, _, _) = get(
            &app,
            "/generate_204",
            vendor,
            [192, 168, 1, 20],
            [192, 168, 1, 2],
        )
        .await;
        assert_eq!(status, 421);
    }
}
