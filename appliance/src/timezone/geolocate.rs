//! The time zone from an IP-geolocation service, when the configuration names one (off by
//! default: it tells a third party where the boat is). One GET with a short time limit;
//! the answer is JSON with the zone's IANA name, as ip-api.com, ipapi.co, ipinfo.io and
//! ipwho.is give it.

use std::time::Duration;

use serde_json::Value as Json;

/// The most of an answer that is read.
const MAX_ANSWER_BYTES: u64 = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GeolocateError {
    #[error("`{0}` is not an http(s) address ([timezone] geolocation_url)")]
    Url(String),
    #[error("the geolocation service did not answer within {0} s")]
    Timeout(u64),
    #[error("the geolocation service could not be asked: {0}")]
    Request(String),
    #[error("the geolocation service answered {0}")]
    Status(u16),
    #[error("the geolocation service's answer is not JSON: {0}")]
    NotJson(String),
    #[error("the geolocation service's answer names no time zone (`timezone`)")]
    NoZone,
    #[error(
        "the geolocation service answered `{0}`, which is not a zone of this system's tz database"
    )]
    Unknown(String),
}

/// Asks `url` for the zone; blocking, so run it off the async threads. The zone is one
/// the system's tz database has.
pub fn ask(url: &str, timeout: Duration) -> Result<String, GeolocateError> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(GeolocateError::Url(url.to_owned()));
    }
    let secs = timeout.as_secs().max(1);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build()
        .into();
    log::debug!("time zone: asking {url}");
    let mut res = agent
        .get(url)
        .header("Accept", "application/json")
        .call()
        .map_err(|e| match e {
            ureq::Error::Timeout(_) => GeolocateError::Timeout(secs),
            e => GeolocateError::Request(e.to_string()),
        })?;
    if !res.status().is_success() {
        return Err(GeolocateError::Status(res.status().as_u16()));
    }
    let text = res
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER_BYTES)
        .read_to_string()
        .map_err(|e| match e {
            ureq::Error::Timeout(_) => GeolocateError::Timeout(secs),
            e => GeolocateError::NotJson(e.to_string()),
        })?;
    parse(&text)
}

/// The zone in a service's answer: `timezone` (ip-api.com, ipapi.co, ipinfo.io), or
/// `timezone.id` (ipwho.is), `time_zone`/`time_zone.name` (ipgeolocation.io) or
/// `timeZone` — checked against the system's tz database and named as it names it.
pub fn parse(text: &str) -> Result<String, GeolocateError> {
    let answer: Json = serde_json::from_str(text).map_err(|e| {
        let mut shown: String = text.chars().take(60).collect();
        if text.chars().count() > 60 {
            shown.push('…');
        }
        GeolocateError::NotJson(format!("{e} in `{shown}`"))
    })?;
    let name = ["timezone", "time_zone", "timeZone"]
        .iter()
        .filter_map(|k| answer.get(k))
        .find_map(|v| match v {
            Json::String(s) => Some(s.as_str()),
            Json::Object(o) => ["id", "name"]
                .iter()
                .find_map(|k| o.get(*k).and_then(Json::as_str)),
            _ => None,
        })
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or(GeolocateError::NoZone)?;
    let tz = jiff::tz::TimeZone::get(name)
        .map_err(|_| GeolocateError::Unknown(name.chars().take(64).collect()))?;
    Ok(tz.iana_name().unwrap_or(name).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_zone_is_found_in_what_the_common_services_answer() {
        let ip_api = r#"{"status":"success","country":"Germany","timezone":"Europe/Berlin","query":"192.0.2.1"}"#;
        assert_eq!(parse(ip_api).unwrap(), "Europe/Berlin");
        let ipwho = r#"{"ip":"192.0.2.1","timezone":{"id":"America/New_York","utc":"-05:00"}}"#;
        assert_eq!(parse(ipwho).unwrap(), "America/New_York");
        let ipgeolocation = r#"{"time_zone":{"name":"Pacific/Auckland","offset":12}}"#;
        assert_eq!(parse(ipgeolocation).unwrap(), "Pacific/Auckland");
    }

    #[test]
    fn garbage_an_answer_without_a_zone_and_an_unknown_zone_are_refused_with_the_reason() {
        assert!(matches!(
            parse("<html>rate limited</html>"),
            Err(GeolocateError::NotJson(m)) if m.contains("<html>")
        ));
        assert_eq!(
            parse(r#"{"status":"fail","message":"private range"}"#),
            Err(GeolocateError::NoZone)
        );
        assert_eq!(parse(r#"{"timezone":""}"#), Err(GeolocateError::NoZone));
        assert_eq!(parse(r#"{"timezone":42}"#), Err(GeolocateError::NoZone));
        assert_eq!(
            parse(r#"{"timezone":"Mars/Olympus_Mons"}"#),
            Err(GeolocateError::Unknown("Mars/Olympus_Mons".into()))
        );
        assert!(matches!(
            parse(r#"{"timezone":"../../etc/passwd"}"#),
            Err(GeolocateError::Unknown(_))
        ));
    }

    #[test]
    fn an_address_that_is_not_http_is_refused_before_anything_is_sent() {
        assert_eq!(
            ask("file:///etc/passwd", Duration::from_secs(1)),
            Err(GeolocateError::Url("file:///etc/passwd".into()))
        );
    }
}
