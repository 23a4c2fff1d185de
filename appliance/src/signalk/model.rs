//! The vessel's current values, one per Signal K path, with where each came from and
//! when; every change bumps a sequence number that stream clients wake on.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value as Json, json};

use super::from_n2k::PathValue;

/// One path's latest value.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub value: Json,
    /// `can0.1`: the interface and the sender's address.
    pub source: Arc<str>,
    pub pgn: Option<u32>,
    pub at_ms: i64,
    /// The model's sequence number when this value was set.
    pub seq: u64,
}

#[derive(Debug, Default)]
struct Inner {
    seq: u64,
    values: BTreeMap<String, Entry>,
}

/// The model, shared by ingest (writes), the REST API and every stream client (reads).
#[derive(Debug)]
pub struct Model {
    inner: Mutex<Inner>,
    changed: tokio::sync::watch::Sender<u64>,
    /// `vessels.urn:mrn:signalk:uuid:…`: this vessel in every delta's context.
    pub self_context: String,
}

impl Model {
    pub fn new(uuid: &str) -> Model {
        Model {
            inner: Mutex::default(),
            changed: tokio::sync::watch::channel(0).0,
            self_context: format!("vessels.urn:mrn:signalk:uuid:{uuid}"),
        }
    }

    /// Sets `values` from `source`, seen at `at_ms`.
    pub fn set(&self, source: &Arc<str>, pgn: Option<u32>, at_ms: i64, values: Vec<PathValue>) {
        if values.is_empty() {
            return;
        }
        let seq = {
            let mut inner = self.inner.lock().expect("signalk model");
            inner.seq += 1;
            let seq = inner.seq;
            for v in values {
                inner.values.insert(
                    v.path,
                    Entry {
                        value: v.value,
                        source: source.clone(),
                        pgn,
                        at_ms,
                        seq,
                    },
                );
            }
            seq
        };
        self.changed.send_replace(seq);
    }

    /// A receiver that wakes on every change.
    pub fn watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// The entries whose path passes `keep`, with the current sequence number.
    pub fn select(
        &self,
        mut keep: impl FnMut(&str, &Entry) -> bool,
    ) -> (u64, Vec<(String, Entry)>) {
        let inner = self.inner.lock().expect("signalk model");
        let picked = inner
            .values
            .iter()
            .filter(|(p, e)| keep(p, e))
            .map(|(p, e)| (p.clone(), e.clone()))
            .collect();
        (inner.seq, picked)
    }

    pub fn get(&self, path: &str) -> Option<Entry> {
        self.inner
            .lock()
            .expect("signalk model")
            .values
            .get(path)
            .cloned()
    }

    /// The full model of this vessel as a tree: each leaf `{value, $source, timestamp}`.
    pub fn tree(&self) -> Json {
        let inner = self.inner.lock().expect("signalk model");
        let mut root = Map::new();
        for (path, e) in &inner.values {
            let mut node = &mut root;
            let mut parts = path.split('.').peekable();
            while let Some(part) = parts.next() {
                if parts.peek().is_none() {
                    let mut leaf = json!({
                        "value": e.value,
                        "$source": &*e.source,
                        "timestamp": super::timestamp(e.at_ms),
                    });
                    if let Some(pgn) = e.pgn {
                        leaf["pgn"] = json!(pgn);
                    }
                    if let Some((units, description)) = super::from_n2k::meta(path) {
                        leaf["meta"] = json!({"units": units, "description": description});
                    }
                    node.insert(part.to_owned(), leaf);
                } else {
                    let next = node
                        .entry(part.to_owned())
                        .or_insert_with(|| Json::Object(Map::new()));
                    if !next.is_object() {
                        *next = Json::Object(Map::new());
                    }
                    node = next.as_object_mut().expect("an object");
                }
            }
        }
        Json::Object(root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tree_nests_paths_and_keeps_source_and_time() {
        let m = Model::new("0f0e");
        let src: Arc<str> = "can0.1".into();
        m.set(
            &src,
            Some(127_488),
            0,
            vec![PathValue {
                path: "propulsion.port.revolutions".into(),
                value: json!(30.0),
            }],
        );
        let t = m.tree();
        let leaf = &t["propulsion"]["port"]["revolutions"];
        assert_eq!(leaf["value"], json!(30.0));
        assert_eq!(leaf["$source"], json!("can0.1"));
        assert_eq!(leaf["timestamp"], json!("1970-01-01T00:00:00.000Z"));
        assert_eq!(leaf["meta"]["units"], json!("Hz"));
        assert_eq!(m.self_context, "vessels.urn:mrn:signalk:uuid:0f0e");
    }
}
