//! One stream client's subscriptions and what is due to it (Signal K 1.7, "Subscription
//! Protocol"): the `subscribe` query parameter, subscribe and unsubscribe messages with
//! `period`, `minPeriod` and `policy`, and the deltas built from the model.

use std::collections::{HashMap, HashSet};

use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::model::{Entry, Model};

/// How often values go out (Signal K's `policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Every change, no faster than `minPeriod`.
    Instant,
    /// A changed value at most once per `period` (what Signal K servers do by default).
    Ideal,
    /// The latest value every `period`, changed or not.
    Fixed,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    pub path: String,
    pub period_ms: u64,
    pub min_period_ms: u64,
    pub policy: Policy,
}

impl Subscription {
    fn matches(&self, path: &str) -> bool {
        glob(&self.path, path)
    }

    /// How long after the last send of a path it may be sent again.
    fn interval_ms(&self) -> u64 {
        match self.policy {
            Policy::Instant => self.min_period_ms,
            Policy::Ideal | Policy::Fixed => self.period_ms.max(self.min_period_ms),
        }
    }
}

/// `*` matches one or more path segments' worth of text, like Signal K servers do
/// (`propulsion.*` and `propulsion.*.revolutions`).
fn glob(pattern: &str, path: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == path || path.starts_with(&format!("{pattern}.")),
        Some((head, tail)) => {
            let Some(rest) = path.strip_prefix(head) else {
                return false;
            };
            if tail.is_empty() {
                return true;
            }
            (0..=rest.len()).any(|i| rest.is_char_boundary(i) && glob(tail, &rest[i..]))
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireSub {
    path: Option<String>,
    period: Option<u64>,
    min_period: Option<u64>,
    policy: Option<Policy>,
}

#[derive(Debug, Deserialize)]
struct WireMessage {
    context: Option<String>,
    subscribe: Option<Vec<WireSub>>,
    unsubscribe: Option<Vec<WireSub>>,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    #[error("not a subscription message: {0}")]
    Malformed(String),
    #[error("only this vessel (`vessels.self`) can be subscribed to here, not {0}")]
    OtherContext(String),
    #[error("at most {MAX_SUBSCRIPTIONS} subscriptions per connection")]
    TooMany,
}

/// Subscriptions a client may hold: each costs a scan of the model per change.
pub const MAX_SUBSCRIPTIONS: usize = 64;

/// Signal K's default period.
const DEFAULT_PERIOD_MS: u64 = 1000;

/// One update being put together: source, time, values and meta.
type Update = (std::sync::Arc<str>, i64, Vec<Json>, Vec<Json>);

/// A connected client.
#[derive(Debug)]
pub struct Client {
    pub subs: Vec<Subscription>,
    send_meta: bool,
    /// Per path: the sequence number and the time of the last send.
    sent: HashMap<String, (u64, i64)>,
    meta_sent: HashSet<String>,
}

/// What the `subscribe` query parameter asks for.
pub fn initial(subscribe: Option<&str>) -> Vec<Subscription> {
    match subscribe.unwrap_or("self") {
        "none" => vec![],
        // `all` is every vessel: only this one is known here.
        _ => vec![Subscription {
            path: "*".into(),
            period_ms: DEFAULT_PERIOD_MS,
            min_period_ms: 0,
            policy: Policy::Instant,
        }],
    }
}

impl Client {
    pub fn new(subs: Vec<Subscription>, send_meta: bool) -> Client {
        Client {
            subs,
            send_meta,
            sent: HashMap::new(),
            meta_sent: HashSet::new(),
        }
    }

    /// Applies a subscribe or unsubscribe message.
    pub fn handle(&mut self, text: &str, model: &Model) -> Result<(), StreamError> {
        let msg: WireMessage =
            serde_json::from_str(text).map_err(|e| StreamError::Malformed(e.to_string()))?;
        let context = msg.context.as_deref().unwrap_or("vessels.self");
        if !matches!(context, "vessels.self" | "*" | "vessels.*") && context != model.self_context {
            return Err(StreamError::OtherContext(context.to_owned()));
        }
        if let Some(unsub) = msg.unsubscribe {
            for u in unsub {
                match u.path.as_deref() {
                    None | Some("*") => self.subs.clear(),
                    Some(p) => self.subs.retain(|s| s.path != p),
                }
            }
        }
        if let Some(subs) = msg.subscribe {
            for s in subs {
                let path = s.path.unwrap_or_else(|| "*".into());
                let policy = s.policy.unwrap_or(Policy::Ideal);
                self.subs.retain(|old| old.path != path);
                if self.subs.len() >= MAX_SUBSCRIPTIONS {
                    return Err(StreamError::TooMany);
                }
                self.subs.push(Subscription {
                    path,
                    period_ms: s.period.unwrap_or(DEFAULT_PERIOD_MS),
                    min_period_ms: s.min_period.unwrap_or(0),
                    policy,
                });
            }
        }
        Ok(())
    }

    /// The delta due at `now_ms`, if anything is.
    pub fn due(&mut self, model: &Model, now_ms: i64) -> Option<Json> {
        if self.subs.is_empty() {
            return None;
        }
        let subs = &self.subs;
        let sent = &self.sent;
        let (_, entries) = model.select(|path, e| {
            let Some(sub) = subs.iter().find(|s| s.matches(path)) else {
                return false;
            };
            match sent.get(path) {
                None => true,
                Some(&(seq, at)) => {
                    let waited = now_ms.saturating_sub(at) >= sub.interval_ms() as i64;
                    let changed = e.seq > seq;
                    waited && (changed || sub.policy == Policy::Fixed)
                }
            }
        });
        if entries.is_empty() {
            return None;
        }
        for (path, e) in &entries {
            self.sent.insert(path.clone(), (e.seq, now_ms));
        }
        Some(self.delta(model, entries))
    }

    /// When something may next be due, at the latest: periodic policies resend on time
    /// even without a change.
    pub fn next_tick_ms(&self) -> u64 {
        self.subs
            .iter()
            .map(|s| s.interval_ms().max(50))
            .min()
            .unwrap_or(1000)
    }

    fn delta(&mut self, model: &Model, entries: Vec<(String, Entry)>) -> Json {
        // One update per source and time, as Signal K servers group them.
        let mut updates: Vec<Update> = vec![];
        for (path, e) in entries {
            let at = updates
                .iter()
                .position(|u| u.0 == e.source && u.1 == e.at_ms)
                .unwrap_or_else(|| {
                    updates.push((e.source.clone(), e.at_ms, vec![], vec![]));
                    updates.len() - 1
                });
            if self.send_meta
                && !self.meta_sent.contains(&path)
                && let Some((units, description)) = super::from_n2k::meta(&path)
            {
                updates[at].3.push(
                    json!({"path": path, "value": {"units": units, "description": description}}),
                );
                self.meta_sent.insert(path.clone());
            }
            updates[at].2.push(json!({"path": path, "value": e.value}));
        }
        let updates: Vec<Json> = updates
            .into_iter()
            .map(|(source, at, values, meta)| {
                let mut u = json!({
                    "$source": &*source,
                    "timestamp": super::timestamp(at),
                    "values": values,
                });
                if !meta.is_empty() {
                    u["meta"] = Json::Array(meta);
                }
                u
            })
            .collect();
        json!({"context": model.self_context, "updates": updates})
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signalk::from_n2k::PathValue;
    use std::sync::Arc;

    fn model_with(values: &[(&str, f64)], at_ms: i64) -> Model {
        let m = Model::new("u");
        set(&m, values, at_ms);
        m
    }

    fn set(m: &Model, values: &[(&str, f64)], at_ms: i64) {
        let src: Arc<str> = "can0.1".into();
        m.set(
            &src,
            None,
            at_ms,
            values
                .iter()
                .map(|(p, v)| PathValue {
                    path: (*p).into(),
                    value: json!(v),
                })
                .collect(),
        );
    }

    fn paths(delta: &Json) -> Vec<String> {
        delta["updates"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|u| u["values"].as_array().unwrap().clone())
            .map(|v| v["path"].as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn globs_match_like_signal_k_servers() {
        assert!(glob("*", "navigation.position"));
        assert!(glob("propulsion.*", "propulsion.port.revolutions"));
        assert!(glob(
            "propulsion.*.revolutions",
            "propulsion.port.revolutions"
        ));
        assert!(!glob(
            "propulsion.*.revolutions",
            "propulsion.port.oilPressure"
        ));
        assert!(glob("navigation", "navigation.position"));
        assert!(!glob("navigation", "navigationx.position"));
    }

    #[test]
    fn a_period_subscription_sends_changes_at_most_once_a_period() {
        let m = model_with(
            &[
                ("propulsion.port.revolutions", 30.0),
                ("navigation.speedOverGround", 2.0),
            ],
            0,
        );
        let mut c = Client::new(initial(Some("none")), false);
        assert!(c.due(&m, 0).is_none(), "subscribe=none sends nothing");
        c.handle(
            r#"{"context":"vessels.self","subscribe":[{"path":"propulsion.*","period":1000}]}"#,
            &m,
        )
        .unwrap();
        let d = c.due(&m, 0).unwrap();
        assert_eq!(paths(&d), vec!["propulsion.port.revolutions"]);
        assert_eq!(d["context"], json!("vessels.urn:mrn:signalk:uuid:u"));
        assert_eq!(d["updates"][0]["$source"], json!("can0.1"));
        set(&m, &[("propulsion.port.revolutions", 31.0)], 100);
        assert!(c.due(&m, 500).is_none(), "within the period");
        assert_eq!(
            paths(&c.due(&m, 1000).unwrap()),
            vec!["propulsion.port.revolutions"]
        );
        assert!(
            c.due(&m, 2500).is_none(),
            "no change: nothing under `ideal`"
        );
        c.handle(
            r#"{"context":"vessels.self","unsubscribe":[{"path":"*"}]}"#,
            &m,
        )
        .unwrap();
        set(&m, &[("propulsion.port.revolutions", 32.0)], 3000);
        assert!(c.due(&m, 5000).is_none(), "unsubscribed");
    }

    #[test]
    fn fixed_resends_and_instant_follows_every_change() {
        let m = model_with(&[("a.b", 1.0)], 0);
        let mut c = Client::new(vec![], true);
        c.handle(
            r#"{"subscribe":[{"path":"a.b","period":200,"policy":"fixed"}]}"#,
            &m,
        )
        .unwrap();
        let first = c.due(&m, 0).unwrap();
        assert!(
            first["updates"][0]["meta"].is_null(),
            "no meta known for a.b"
        );
        assert!(c.due(&m, 200).is_some(), "fixed resends unchanged");
        let mut i = Client::new(initial(None), false);
        assert!(i.due(&m, 0).is_some());
        set(&m, &[("a.b", 2.0)], 1);
        assert!(i.due(&m, 1).is_some(), "instant: at once");
    }

    #[test]
    fn meta_goes_with_the_first_value_of_a_path_when_asked() {
        let m = model_with(&[("propulsion.port.oilPressure", 3e5)], 0);
        let mut c = Client::new(initial(Some("self")), true);
        let d = c.due(&m, 0).unwrap();
        assert_eq!(d["updates"][0]["meta"][0]["value"]["units"], json!("Pa"));
        set(&m, &[("propulsion.port.oilPressure", 3.1e5)], 1);
        assert!(c.due(&m, 1).unwrap()["updates"][0]["meta"].is_null());
    }

    #[test]
    fn bad_messages_are_refused_and_change_nothing() {
        let m = model_with(&[], 0);
        let mut c = Client::new(vec![], false);
        assert!(matches!(
            c.handle("{nope", &m),
            Err(StreamError::Malformed(_))
        ));
        assert_eq!(
            c.handle(
                r#"{"context":"vessels.urn:mrn:imo:mmsi:1","subscribe":[{"path":"*"}]}"#,
                &m
            ),
            Err(StreamError::OtherContext(
                "vessels.urn:mrn:imo:mmsi:1".into()
            ))
        );
        assert!(c.subs.is_empty());
        let many: Vec<String> = (0..=MAX_SUBSCRIPTIONS)
            .map(|i| format!(r#"{{"path":"p{i}"}}"#))
            .collect();
        let msg = format!(r#"{{"subscribe":[{}]}}"#, many.join(","));
        assert_eq!(c.handle(&msg, &m), Err(StreamError::TooMany));
    }
}
