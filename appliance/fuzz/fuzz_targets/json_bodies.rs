//! Any bytes as the body of each JSON endpoint, read as its handler reads it and put
//! through the checks the handler makes before acting, and as a backup manifest: an
//! answer, never a panic.
#![no_main]

use appliance::routes::{backup, licence, session};
use libfuzzer_sys::fuzz_target;
use serde_json::from_slice;

fuzz_target!(|data: &[u8]| {
    if let Ok(b) = from_slice::<session::NewOwner>(data) {
        let _ = appliance::auth::accounts::check_new_credentials(&b.username, &b.password);
        let _ = b.setup_code.chars().filter(char::is_ascii_alphanumeric).count();
    }
    if let Ok(b) = from_slice::<session::Credentials>(data) {
        let _ = appliance::auth::accounts::check_new_credentials(&b.username, &b.password);
    }
    if let Ok(b) = from_slice::<session::NewToken>(data) {
        let _ = b.name.chars().count();
    }
    if let Ok(b) = from_slice::<backup::ById>(data) {
        if let Ok(id) = appliance::backup::BackupId::parse(&b.id) {
            let _ = id.unix();
        }
        let _ = b.destination.as_deref().map(|d| d.strip_prefix("usb:"));
    }
    if let Ok(b) = from_slice::<appliance::backup::Settings>(data) {
        let _ = b.check();
    }
    if let Ok(b) = from_slice::<licence::SetTier>(data) {
        let _ = b.tier;
    }
    if let Ok(m) = appliance::backup::Manifest::parse(data) {
        let _ = appliance::backup::manifest::readme(&m);
    }
});
