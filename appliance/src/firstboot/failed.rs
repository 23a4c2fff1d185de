//! A first boot that could not finish, shown to the owner: the failing step leaves a report,
//! and `d3kosd firstboot failed-page` answers every web request with what is wrong and what
//! to do, since the appliance cannot run without its data partition.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{FirstbootError, io};

/// Where the failing step leaves its report: in /run, so every boot decides afresh.
pub const REPORT: &str = "/run/d3kos/firstboot-failed.json";

/// What failed and what the owner can do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// The step: `grow`, `identity`.
    pub step: String,
    pub error: String,
    pub advice: Option<String>,
}

impl Report {
    pub fn of(step: &str, e: &FirstbootError) -> Report {
        Report {
            step: step.to_owned(),
            error: e.to_string(),
            advice: e.advice().map(str::to_owned),
        }
    }

    pub fn save(&self, path: &Path) -> Result<(), FirstbootError> {
        let bytes = serde_json::to_vec_pretty(self).expect("a report serializes");
        // Readable by the page's unprivileged server.
        Ok(crate::state::write_atomic_mode(path, &bytes, Some(0o644))?)
    }

    pub fn load(path: &Path) -> Result<Report, FirstbootError> {
        let text = std::fs::read_to_string(path).map_err(io(path))?;
        serde_json::from_str(&text).map_err(|e| FirstbootError::Io {
            path: path.to_owned(),
            source: std::io::Error::other(e.to_string()),
        })
    }

    /// The page: plain, large, readable on the helm screen and a phone, no script.
    pub fn html(&self) -> String {
        let advice = self.advice.as_deref().unwrap_or(
            "Restart the boat computer. If this page comes back, write the card again with \
             Raspberry Pi Imager from a d3kOS release.",
        );
        format!(
            "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>d3kOS could not start</title>\n<style>\n\
             body{{font:1.25rem/1.5 system-ui,sans-serif;margin:0;padding:2rem;background:#0b1d2a;color:#f4f7fa}}\n\
             main{{max-width:48rem;margin:auto}}h1{{font-size:2rem;margin:0 0 1rem}}\n\
             .what{{background:#3a1114;border-left:.4rem solid #ff6b6b;padding:1rem;margin:1rem 0}}\n\
             .todo{{background:#10324a;border-left:.4rem solid #5cc8ff;padding:1rem;margin:1rem 0}}\n\
             h2{{font-size:1.25rem;margin:0 0 .5rem}}p{{margin:0}}\n</style>\n</head>\n<body>\n<main>\n\
             <h1>d3kOS could not finish its first start</h1>\n\
             <section class=\"what\"><h2>What is wrong</h2><p id=\"error\">{error}</p></section>\n\
             <section class=\"todo\"><h2>What to do</h2><p id=\"advice\">{advice}</p></section>\n\
             <p>Step: {step}. Nothing on the card was saved while this page shows.</p>\n\
             </main>\n</body>\n</html>\n",
            error = escape(&self.error),
            advice = escape(advice),
            step = escape(&self.step),
        )
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[derive(Debug, clap::Args)]
pub struct PageArgs {
    /// The report the failing step left.
    #[arg(long, value_name = "FILE", default_value = REPORT)]
    pub report: PathBuf,
    /// Where to answer.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:80")]
    pub listen: SocketAddr,
}

/// Serves the page until SIGTERM: every path answers 503 with the page, `/api/health` with
/// the report as JSON, so the web UI's health check and a person's browser both learn it.
pub fn page(a: &PageArgs, out: &mut dyn Write) -> Result<(), FirstbootError> {
    let report = Report::load(&a.report)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io(Path::new("the runtime")))?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(a.listen)
            .await
            .map_err(io(Path::new("the listening socket")))?;
        let addr = listener.local_addr().map_err(io(Path::new("the socket")))?;
        super::say(
            out,
            format_args!(
                "first boot failed ({}); the web page (http://d3kos.local, port {}) says why and \
                 what to do",
                report.step,
                addr.port()
            ),
        )?;
        out.flush().map_err(io(Path::new("standard output")))?;
        let html = report.html();
        let json = serde_json::json!({
            "success": false,
            "error": {
                "code": "first_boot_failed",
                "message": format!("{} {}", report.error, report.advice.clone().unwrap_or_default()),
            },
            "status": "failed",
            "step": report.step,
        })
        .to_string();
        // The helm screen's browser can come up without drawing (see crate::helm); with no
        // appliance to notice, this page watches for its requests the same way.
        let seen = std::sync::Arc::new(crate::helm::Seen::default());
        tokio::spawn(crate::helm::watch(seen.clone()));
        let app = axum::Router::new().fallback(
            move |axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<
                std::net::SocketAddr,
            >,
                  uri: axum::http::Uri| {
                if crate::peer::Peer::of(peer).is_helm() {
                    seen.mark();
                }
                let (html, json) = (html.clone(), json.clone());
                async move { answer(uri.path(), html, json) }
            },
        );
        let stop = async {
            if let Ok(mut term) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            {
                term.recv().await;
            }
        };
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(stop)
            .await
            .map_err(io(Path::new("the page server")))
    })
}

fn answer(path: &str, html: String, json: String) -> axum::response::Response {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    let (kind, body) = if path.starts_with("/api/") {
        ("application/json", json)
    } else {
        ("text/html; charset=utf-8", html)
    };
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_says_what_is_wrong_and_what_to_do_escaped() {
        let r = Report {
            step: "grow".into(),
            error: "the card holds 4.0 GB <small>".into(),
            advice: Some("Use a card of 8 GB or more.".into()),
        };
        let html = r.html();
        assert!(
            html.contains("the card holds 4.0 GB &lt;small&gt;"),
            "{html}"
        );
        assert!(html.contains("Use a card of 8 GB or more."), "{html}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        r.save(&path).unwrap();
        assert_eq!(Report::load(&path).unwrap(), r);
    }
}
