//! `accounts.json` (the owner and the API tokens), the sessions of signed-in browsers, and
//! the one-time setup code. Everything here is quick: no password is hashed under its lock.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::AuthError;
use crate::state::{self, StateError};

pub const SESSION_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);
/// Sessions kept at once; the oldest goes when a new one would pass this. One owner with a
/// phone, a tablet and the helm screen needs a handful.
const MAX_SESSIONS: usize = 64;
/// Setup codes avoid characters a skipper could misread on a screen (0/O, 1/I/L).
const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Accounts {
    pub owner: Option<Owner>,
    #[serde(default)]
    pub tokens: Vec<TokenRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Owner {
    pub username: String,
    /// Argon2id, PHC string format.
    pub password_hash: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRecord {
    /// What the token is revoked by; tokens made before ids existed take the start of
    /// their hash.
    #[serde(default)]
    pub id: String,
    pub name: String,
    /// sha256 of the token: the token itself is shown once and never stored.
    pub sha256: String,
    pub created: String,
}

impl TokenRecord {
    fn id(&self) -> &str {
        if self.id.is_empty() {
            &self.sha256[..12.min(self.sha256.len())]
        } else {
            &self.id
        }
    }
}

/// A token as the owner sees it in the list: never the token or its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub created: String,
}

struct Session {
    username: String,
    started: Instant,
    expires: Instant,
}

pub struct Store {
    path: PathBuf,
    setup_file: PathBuf,
    accounts: Accounts,
    sessions: HashMap<String, Session>,
    /// The setup code, normalised; `None` once the owner exists.
    setup_code: Option<String>,
}

fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub(super) fn random_hex(bytes: usize) -> Result<String, AuthError> {
    let mut b = vec![0u8; bytes];
    getrandom::fill(&mut b).map_err(|e| AuthError::NoRandomness(e.to_string()))?;
    Ok(hex::encode(b))
}

fn normalize_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// Compares without an early exit, so timing tells nothing about how much matched.
pub(super) fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub fn check_new_credentials(username: &str, password: &str) -> Result<(), AuthError> {
    if username.is_empty()
        || username.len() > 32
        || !username
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return Err(AuthError::BadUsername);
    }
    if password.chars().count() < 8 {
        return Err(AuthError::ShortPassword);
    }
    if password.len() > super::MAX_PASSWORD_BYTES {
        return Err(AuthError::LongPassword);
    }
    Ok(())
}

impl Store {
    /// Loads the accounts; a corrupt file is moved aside and reported (the owner is then
    /// created again with a new setup code from the device's screen).
    pub fn load(
        state_dir: &Path,
        setup_file: &Path,
        now: u64,
    ) -> Result<(Store, Option<String>), StateError> {
        let path = state_dir.join("accounts.json");
        let (accounts, problem) = match state::load::<Accounts>(&path, now) {
            Ok(a) => (a.unwrap_or_default(), None),
            Err(e @ StateError::Corrupt { .. }) => (Accounts::default(), Some(e.to_string())),
            Err(e) => return Err(e),
        };
        let mut store = Store {
            path,
            setup_file: setup_file.to_owned(),
            accounts,
            sessions: HashMap::new(),
            setup_code: None,
        };
        if store.accounts.owner.is_none() {
            store.new_setup_code();
        }
        Ok((store, problem))
    }

    pub fn owner_exists(&self) -> bool {
        self.accounts.owner.is_some()
    }

    /// Makes the setup code of this start, shows it on the console and writes it to the
    /// config partition. It stays until the owner exists: wrong codes from the network never
    /// replace it, or a stranger could keep the owner from ever using it.
    fn new_setup_code(&mut self) {
        let mut b = [0u8; 8];
        if getrandom::fill(&mut b).is_err() {
            log::error!("no randomness for a setup code; owner setup is unavailable");
            return;
        }
        let raw: Vec<char> = b
            .iter()
            .map(|x| CODE_ALPHABET[*x as usize % CODE_ALPHABET.len()] as char)
            .collect();
        let code: String = raw[..4].iter().chain(&['-']).chain(&raw[4..]).collect();
        log::warn!(
            "owner setup code: {code} (enter it on the settings page to create the owner account)"
        );
        let text = format!(
            "d3kOS owner setup code: {code}\n\nOpen the settings page on the helm screen or http://d3kos.local/settings.html\n\
             and enter this code to create the owner account. It works once.\n"
        );
        if let Err(e) = state::write_atomic(&self.setup_file, text.as_bytes()) {
            log::warn!(
                "could not write the setup code to {}: {e}",
                self.setup_file.display()
            );
        }
        self.setup_code = Some(normalize_code(&code));
    }

    /// The setup code as the console shows it (`ABCD-EFGH`), while no owner exists.
    pub fn setup_code_shown(&self) -> Option<String> {
        let c = self.setup_code.as_ref()?;
        let (a, b) = c.split_at(c.len().min(4));
        Some(format!("{a}-{b}"))
    }

    /// Whether `code` is the setup code. Quick, and changes nothing.
    pub fn setup_code_matches(&self, code: &str) -> Result<bool, AuthError> {
        let expected = self.setup_code.as_ref().ok_or(AuthError::NoSetupCode)?;
        Ok(same(normalize_code(code).as_bytes(), expected.as_bytes()))
    }

    /// Creates the owner with an already hashed password. Exactly one caller can win: the
    /// rest get [`AuthError::OwnerExists`].
    pub fn create_owner(
        &mut self,
        code: &str,
        username: &str,
        password_hash: String,
    ) -> Result<String, AuthError> {
        if self.owner_exists() {
            return Err(AuthError::OwnerExists);
        }
        if !self.setup_code_matches(code)? {
            return Err(AuthError::WrongCode);
        }
        let previous = self.accounts.clone();
        self.accounts.owner = Some(Owner {
            username: username.to_owned(),
            password_hash,
        });
        if let Err(e) = state::save(&self.path, &self.accounts) {
            self.accounts = previous;
            return Err(AuthError::Storage(e));
        }
        self.setup_code = None;
        let _ = std::fs::remove_file(&self.setup_file);
        self.start_session(username)
    }

    /// The owner's password hash when `username` is the owner's name.
    pub fn owner_hash(&self, username: &str) -> Option<String> {
        self.accounts
            .owner
            .as_ref()
            .filter(|o| same(o.username.as_bytes(), username.as_bytes()))
            .map(|o| o.password_hash.clone())
    }

    pub fn start_session(&mut self, username: &str) -> Result<String, AuthError> {
        let token = random_hex(32)?;
        let now = Instant::now();
        self.sessions.retain(|_, s| s.expires > now);
        while self.sessions.len() >= MAX_SESSIONS {
            let oldest = self
                .sessions
                .iter()
                .min_by_key(|(_, s)| s.started)
                .map(|(k, _)| k.clone())
                .expect("the table is not empty");
            self.sessions.remove(&oldest);
        }
        self.sessions.insert(
            digest(&token),
            Session {
                username: username.to_owned(),
                started: now,
                expires: now + SESSION_LIFETIME,
            },
        );
        Ok(token)
    }

    pub fn end_session(&mut self, token: &str) {
        self.sessions.remove(&digest(token));
    }

    pub fn session_user(&self, token: &str) -> Option<String> {
        self.sessions
            .get(&digest(token))
            .filter(|s| s.expires > Instant::now())
            .map(|s| s.username.clone())
    }

    /// The owner, when `token` is one of the API tokens made for scripts.
    pub fn token_user(&self, token: &str) -> Option<String> {
        let d = digest(token);
        let owner = self.accounts.owner.as_ref()?;
        self.accounts
            .tokens
            .iter()
            .any(|t| same(t.sha256.as_bytes(), d.as_bytes()))
            .then(|| owner.username.clone())
    }

    /// Makes an API token; the token is returned once and only its hash is kept.
    pub fn create_token(
        &mut self,
        name: &str,
        created: String,
    ) -> Result<(TokenInfo, String), AuthError> {
        if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
            return Err(AuthError::TokenName);
        }
        if self.accounts.tokens.iter().any(|t| t.name == name) {
            return Err(AuthError::TokenExists(name.to_owned()));
        }
        let token = random_hex(32)?;
        let record = TokenRecord {
            id: random_hex(6)?,
            name: name.to_owned(),
            sha256: digest(&token),
            created,
        };
        let info = info(&record);
        self.save_with(|a| a.tokens.push(record))?;
        Ok((info, token))
    }

    pub fn tokens(&self) -> Vec<TokenInfo> {
        self.accounts.tokens.iter().map(info).collect()
    }

    /// Revokes a token: scripts using it are refused from the next request on.
    pub fn revoke_token(&mut self, id: &str) -> Result<TokenInfo, AuthError> {
        let Some(at) = self.accounts.tokens.iter().position(|t| t.id() == id) else {
            return Err(AuthError::NoSuchToken(id.chars().take(64).collect()));
        };
        let gone = info(&self.accounts.tokens[at]);
        self.save_with(|a| {
            a.tokens.remove(at);
        })?;
        Ok(gone)
    }

    /// Changes the accounts and saves them; on a failed save nothing changes.
    fn save_with(&mut self, change: impl FnOnce(&mut Accounts)) -> Result<(), AuthError> {
        let mut next = self.accounts.clone();
        change(&mut next);
        state::save(&self.path, &next).map_err(AuthError::Storage)?;
        self.accounts = next;
        Ok(())
    }
}

fn info(t: &TokenRecord) -> TokenInfo {
    TokenInfo {
        id: t.id().to_owned(),
        name: t.name.clone(),
        created: t.created.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_compare_loosely_but_exactly() {
        assert_eq!(normalize_code("ab2c-d3ef"), "AB2CD3EF");
        assert!(same(b"AB", b"AB") && !same(b"AB", b"AC") && !same(b"AB", b"ABC"));
    }

    #[test]
    fn wrong_setup_codes_never_replace_the_code() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("code.txt");
        let (mut store, _) = Store::load(dir.path(), &file, 1).unwrap();
        let shown = std::fs::read_to_string(&file).unwrap();
        for _ in 0..100 {
            assert!(matches!(
                store.create_owner("WRONG-CODE", "skipper", "h".into()),
                Err(AuthError::WrongCode)
            ));
        }
        assert_eq!(std::fs::read_to_string(&file).unwrap(), shown);
        let code = shown.split_whitespace().nth(4).unwrap();
        store.create_owner(code, "skipper", "h".into()).unwrap();
        assert!(store.owner_exists());
        assert!(!file.exists(), "the used code is removed from the card");
    }

    #[test]
    fn tokens_are_listed_without_secrets_and_revoked_by_id() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = Store::load(dir.path(), &dir.path().join("c"), 1).unwrap();
        store.accounts.owner = Some(Owner {
            username: "skipper".into(),
            password_hash: "h".into(),
        });
        let (a, token_a) = store.create_token("chart plotter", "t1".into()).unwrap();
        let (_, token_b) = store.create_token("logger", "t2".into()).unwrap();
        assert!(matches!(
            store.create_token("logger", "t3".into()),
            Err(AuthError::TokenExists(_))
        ));
        let listed = serde_json::to_string(&store.tokens()).unwrap();
        assert!(!listed.contains(&token_a) && !listed.contains(&digest(&token_a)));
        assert_eq!(store.token_user(&token_a).as_deref(), Some("skipper"));
        store.revoke_token(&a.id).unwrap();
        assert_eq!(store.token_user(&token_a), None, "revoked");
        assert_eq!(store.token_user(&token_b).as_deref(), Some("skipper"));
        let saved = std::fs::read_to_string(dir.path().join("accounts.json")).unwrap();
        assert!(!saved.contains(&digest(&token_a)), "gone from the file");
        assert!(matches!(
            store.revoke_token(&a.id),
            Err(AuthError::NoSuchToken(_))
        ));
    }

    #[test]
    fn tokens_made_before_ids_are_revoked_by_the_start_of_their_hash() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("accounts.json"),
            format!(
                r#"{{"owner":{{"username":"s","password_hash":"h"}},"tokens":[{{"name":"old","sha256":"{}","created":"x"}}]}}"#,
                digest("old-token")
            ),
        )
        .unwrap();
        let (mut store, problem) = Store::load(dir.path(), &dir.path().join("c"), 1).unwrap();
        assert_eq!(problem, None);
        let id = store.tokens()[0].id.clone();
        assert_eq!(id, digest("old-token")[..12]);
        store.revoke_token(&id).unwrap();
        assert_eq!(store.token_user("old-token"), None);
    }

    #[test]
    fn sessions_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = Store::load(dir.path(), &dir.path().join("c"), 1).unwrap();
        let first = store.start_session("s").unwrap();
        for _ in 0..MAX_SESSIONS {
            store.start_session("s").unwrap();
        }
        assert_eq!(store.sessions.len(), MAX_SESSIONS);
        assert_eq!(store.session_user(&first), None, "the oldest went");
    }
}
