//! The HTTP API's OpenAPI document (appliance/web/openapi.json) held against the routes: the
//! daemon serves it, it lists exactly the routes the source registers, and on the running
//! daemon every operation it lists is routed, every method it does not list is refused with
//! 405, and an operation it marks as the owner's refuses a visitor.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{Device, create_owner, get, write};
use serde_json::{Value, json};

const METHODS: [&str; 4] = ["get", "post", "put", "delete"];

fn document() -> Value {
    serde_json::from_str(include_str!("../web/openapi.json")).expect("openapi.json is JSON")
}

/// (path, method) of every operation the document lists.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let paths = doc["paths"].as_object().expect("the document has paths");
    paths
        .iter()
        .flat_map(|(path, item)| {
            let item = item.as_object().expect("a path item is an object");
            item.keys()
                .filter(|k| METHODS.contains(&k.as_str()))
                .map(move |m| (path.clone(), m.clone()))
        })
        .collect()
}

/// The text from an opening parenthesis at `open` to its match.
fn balanced(text: &str, open: usize) -> &str {
    let mut depth = 0;
    for (i, c) in text[open..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return &text[open..=open + i];
                }
            }
            _ => {}
        }
    }
    &text[open..]
}

/// (path, method) of every route `text` registers with `.route("PATH", get(..).post(..))`;
/// a catch-all `{*name}` is written `{name}`, as OpenAPI writes it.
fn registered(text: &str) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (at, _) in text.match_indices(".route(") {
        let call = balanced(text, at + ".route".len());
        let Some(path) = call.split('"').nth(1) else {
            continue;
        };
        let path = path.replace("{*", "{");
        // The method router follows the path: its `get(`, `.post(`… calls at the top level.
        let rest = &call[call.find(',').unwrap_or(call.len())..];
        for m in METHODS {
            let called = rest.match_indices(&format!("{m}(")).any(|(i, _)| {
                i == 0 || !rest[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_')
            });
            if called {
                out.insert((path.clone(), m.to_owned()));
            }
        }
    }
    out
}

fn routes_in_source() -> BTreeSet<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/routes");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| registered(&std::fs::read_to_string(f).unwrap()))
        .collect()
}

/// What differs between the routes and the document, as messages that say what to do.
fn differences(
    source: &BTreeSet<(String, String)>,
    doc: &BTreeSet<(String, String)>,
) -> Vec<String> {
    let mut out: Vec<String> = source
        .difference(doc)
        .map(|(p, m)| {
            format!(
                "{} {p} is routed but not in openapi.json: describe it",
                m.to_uppercase()
            )
        })
        .collect();
    out.extend(doc.difference(source).map(|(p, m)| {
        format!(
            "{} {p} is in openapi.json but not routed: remove it",
            m.to_uppercase()
        )
    }));
    out
}

#[test]
fn the_daemon_serves_its_openapi_document() {
    let dev = Device::new("");
    let d = dev.start();
    let r = get(&d, "/api/openapi.json");
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .is_some_and(|t| t.starts_with("application/json")),
        "{:?}",
        r.headers
    );
    assert_eq!(r.body, include_bytes!("../web/openapi.json"));
    let doc = r.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let recipe: toml::Value = toml::from_str(include_str!("../../recipes/d3kos.toml")).unwrap();
    assert_eq!(
        doc["info"]["version"].as_str(),
        recipe["product"]["version"].as_str(),
        "the document's version is the release's (recipes/d3kos.toml)"
    );
}

#[test]
fn the_document_lists_exactly_the_routes_the_source_registers() {
    let source = routes_in_source();
    assert!(source.len() > 50, "the route scan found only {source:?}");
    let found = differences(&source, &documented(&document()));
    assert!(found.is_empty(), "\n{}", found.join("\n"));

    // Each operation is described and named once.
    let doc = document();
    let mut ids = BTreeSet::new();
    for (path, method) in documented(&doc) {
        let op = &doc["paths"][&path][&method];
        for key in ["operationId", "summary", "responses", "security", "tags"] {
            assert!(!op[key].is_null(), "{method} {path} lacks {key}");
        }
        let id = op["operationId"].as_str().unwrap().to_owned();
        assert!(ids.insert(id.clone()), "operationId {id} is used twice");
    }
}

#[test]
fn the_route_check_finds_an_undocumented_and_a_stale_operation() {
    let source = registered(
        r#"Router::new()
            .route("/api/a", get(show).put(set))
            .route(
                "/api/b/{*rest}",
                post(upload).layer(DefaultBodyLimit::disable()),
            )"#,
    );
    let want: BTreeSet<_> = [
        ("/api/a", "get"),
        ("/api/a", "put"),
        ("/api/b/{rest}", "post"),
    ]
    .iter()
    .map(|(p, m)| (p.to_string(), m.to_string()))
    .collect();
    assert_eq!(source, want);
    let mut doc = want.clone();
    doc.remove(&("/api/a".into(), "put".into()));
    doc.insert(("/api/c".into(), "delete".into()));
    assert_eq!(
        differences(&source, &doc),
        [
            "PUT /api/a is routed but not in openapi.json: describe it",
            "DELETE /api/c is in openapi.json but not routed: remove it",
        ]
    );
}

#[test]
fn every_listed_operation_is_routed_others_get_405_and_the_owners_refuse_a_visitor() {
    let doc = document();
    let dev = Device::new("");
    let d = dev.start();
    // With an owner, owner-only operations refuse whoever is not signed in.
    create_owner(&dev, &d);
    let ops = documented(&doc);
    let paths: BTreeSet<&String> = ops.iter().map(|(p, _)| p).collect();
    let mut wrong = Vec::new();
    for path in paths {
        // A value for each path parameter; the catch-all gets a Signal K path.
        let mut concrete = path.replace("{path}", "navigation/position");
        while let (Some(a), Some(b)) = (concrete.find('{'), concrete.find('}')) {
            concrete.replace_range(a..=b, "1");
        }
        for m in METHODS {
            let r = write(&d, &m.to_uppercase(), &concrete, None, &json!({}));
            let fallback =
                r.status == 404 && String::from_utf8_lossy(&r.body).contains("Nothing at");
            if !ops.contains(&(path.clone(), m.to_owned())) {
                if r.status != 405 {
                    wrong.push(format!("{m} {concrete}: not listed, answered {}", r.status));
                }
                continue;
            }
            let owners = doc["paths"][path][m]["security"]
                .as_array()
                .is_some_and(|s| !s.is_empty());
            if r.status == 405 || fallback {
                wrong.push(format!(
                    "{m} {concrete}: listed, but not routed ({})",
                    r.status
                ));
            } else if owners && r.status != 401 {
                wrong.push(format!(
                    "{m} {concrete}: the owner's, answered a visitor {}",
                    r.status
                ));
            } else if !owners && r.status == 401 {
                wrong.push(format!(
                    "{m} {concrete}: open to anyone, answered a visitor 401"
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
}
