//! The optional remote diagnosis: a problem sent to a configured service for a second
//! opinion. Off unless a URL is set; a short timeout; its answer, or its absence, never
//! holds up anything the device does.

use std::time::Duration;

use serde_json::json;

use super::detect::Finding;

/// Asks `url` about `f`; the service answers `{"diagnosis": "..."}`. Blocking: run it off
/// the async threads.
pub fn ask(url: &str, timeout: Duration, f: &Finding, device: &str) -> Result<String, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(true)
        .build()
        .into();
    let body = json!({
        "device": device,
        "rule": f.rule.as_str(),
        "subject": f.subject,
        "seen": f.seen,
        "advice": f.advice,
    });
    let mut res = agent
        .post(url)
        .header("content-type", "application/json")
        .send(body.to_string())
        .map_err(|e| format!("the diagnosis service did not answer: {e}"))?;
    let text = res
        .body_mut()
        .with_config()
        .limit(64 * 1024)
        .read_to_string()
        .map_err(|e| format!("the diagnosis service's answer could not be read: {e}"))?;
    let answer: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("the diagnosis service's answer is not JSON: {e}"))?;
    answer["diagnosis"]
        .as_str()
        .map(|s| s.chars().take(2_000).collect())
        .filter(|s: &String| !s.trim().is_empty())
        .ok_or_else(|| "the diagnosis service's answer has no `diagnosis` text".to_owned())
}
