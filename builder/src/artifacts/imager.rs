//! `os_list.json` for Raspberry Pi Imager's custom repository format.

use serde_json::json;

use crate::config::{Board, Recipe};

pub struct ImagerEntry<'a> {
    pub recipe: &'a Recipe,
    pub board: &'a Board,
    pub download_name: &'a str,
    pub extract_size: u64,
    pub extract_sha256: &'a str,
    pub download_size: u64,
    pub download_sha256: &'a str,
}

pub fn render(e: &ImagerEntry) -> String {
    let r = e.recipe;
    let doc = json!({
        "os_list": [{
            "name": format!("{} {} ({})", r.name, r.version, e.board.description),
            "description": r.imager.description,
            "icon": r.imager.icon,
            "url": r.download_url(e.download_name),
            "extract_size": e.extract_size,
            "extract_sha256": e.extract_sha256,
            "image_download_size": e.download_size,
            "image_download_sha256": e.download_sha256,
            "release_date": crate::time::date(r.source_date_epoch),
            "devices": e.board.imager_devices,
            "init_format": r.imager.init_format,
        }]
    });
    let mut s = serde_json::to_string_pretty(&doc).expect("JSON values serialize");
    s.push('\n');
    s
}
