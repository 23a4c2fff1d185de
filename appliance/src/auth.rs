//! The owner account, sessions and API tokens. There is no default password: the first
//! visitor creates the owner with a one-time setup code that only the device's own screen
//! (and its config partition) shows.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::api::ApiError;
use crate::state::{self, StateError};

pub const SESSION_COOKIE: &str = "d3kos_session";
pub const SESSION_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);
/// Wrong passwords tolerated within [`FAILURE_WINDOW`] before sign-in pauses: Argon2 makes
/// each guess slow, this makes a marina-Wi-Fi guesser give up.
const SIGN_IN_FAILURES: usize = 5;
const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Wrong setup codes tolerated before the code is replaced by a new one.
const SETUP_ATTEMPTS: u32 = 10;
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
    pub name: String,
    /// sha256 of the token: the token itself is shown once and never stored.
    pub sha256: String,
    pub created: String,
}

struct Session {
    username: String,
    expires: Instant,
}

struct SetupCode {
    code: String,
    failures: u32,
}

pub struct Auth {
    path: PathBuf,
    setup_file: PathBuf,
    accounts: Accounts,
    sessions: HashMap<String, Session>,
    setup: Option<SetupCode>,
    failures: std::collections::VecDeque<Instant>,
}

fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn random_token() -> Result<String, ApiError> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| ApiError::internal(format!("no randomness: {e}")))?;
    Ok(hex::encode(b))
}

fn normalize_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// Compares without an early exit, so timing tells nothing about how much matched.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub fn hash_password(password: &str) -> Result<String, ApiError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| ApiError::internal(format!("no randomness: {e}")))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| ApiError::internal(e.to_string()))?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ApiError::internal(format!("cannot hash the password: {e}")))
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

pub fn check_new_credentials(username: &str, password: &str) -> Result<(), ApiError> {
    if username.is_empty()
        || username.len() > 32
        || !username
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return Err(ApiError::bad_request(
            "Choose a username of 1 to 32 letters, digits, '.', '_' or '-'.",
        ));
    }
    if password.chars().count() < 8 {
        return Err(ApiError::bad_request(
            "Choose a password of at least 8 characters.",
        ));
    }
    if password.len() > 1024 {
        return Err(ApiError::bad_request(
            "That password is longer than 1024 bytes.",
        ));
    }
    Ok(())
}

impl Auth {
    /// Loads the accounts; a corrupt file is moved aside and reported (the owner is then
    /// created again with a new setup code from the device's screen).
    pub fn load(
        state_dir: &Path,
        setup_file: &Path,
        now: u64,
    ) -> Result<(Auth, Option<String>), StateError> {
        let path = state_dir.join("accounts.json");
        let (accounts, problem) = match state::load::<Accounts>(&path, now) {
            Ok(a) => (a.unwrap_or_default(), None),
            Err(e @ StateError::Corrupt { .. }) => (Accounts::default(), Some(e.to_string())),
            Err(e) => return Err(e),
        };
        let mut auth = Auth {
            path,
            setup_file: setup_file.to_owned(),
            accounts,
            sessions: HashMap::new(),
            setup: None,
            failures: std::collections::VecDeque::new(),
        };
        if auth.accounts.owner.is_none() {
            auth.new_setup_code();
        }
        Ok((auth, problem))
    }

    pub fn owner_exists(&self) -> bool {
        self.accounts.owner.is_some()
    }

    /// Makes a fresh setup code, shows it on the console and writes it to the config
    /// partition.
    fn new_setup_code(&mut self) {
        let mut b = [0u8; 8];
        if getrandom::fill(&mut b).is_err() {
            log::error!("no randomness for a setup code; owner setup is unavailable");
            return;
        }
        let raw: String = b
            .iter()
            .map(|x| CODE_ALPHABET[*x as usize % CODE_ALPHABET.len()] as char)
            .collect();
        let code = format!("{}-{}", &raw[..4], &raw[4..]);
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
        self.setup = Some(SetupCode {
            code: normalize_code(&code),
            failures: 0,
        });
    }

    /// Creates the owner. Exactly one caller can win: the rest get 409.
    pub fn create_owner(
        &mut self,
        code: &str,
        username: &str,
        password_hash: String,
    ) -> Result<String, ApiError> {
        if self.owner_exists() {
            return Err(ApiError::conflict(
                "The owner account already exists: sign in instead.",
            ));
        }
        let Some(setup) = self.setup.as_mut() else {
            return Err(ApiError::internal(
                "No setup code is available; restart the device.",
            ));
        };
        if !same(normalize_code(code).as_bytes(), setup.code.as_bytes()) {
            setup.failures += 1;
            if setup.failures >= SETUP_ATTEMPTS {
                self.new_setup_code();
                return Err(ApiError::forbidden(
                    "Too many wrong setup codes: the device now shows a new one.",
                ));
            }
            return Err(ApiError::forbidden(
                "That setup code is not the one the helm screen shows.",
            ));
        }
        let previous = self.accounts.clone();
        self.accounts.owner = Some(Owner {
            username: username.to_owned(),
            password_hash,
        });
        if let Err(e) = state::save(&self.path, &self.accounts) {
            self.accounts = previous;
            return Err(ApiError::storage(&e));
        }
        self.setup = None;
        let _ = std::fs::remove_file(&self.setup_file);
        self.start_session(username)
    }

    /// The owner's password hash, to verify outside the lock (argon2 is slow on purpose).
    pub fn owner_hash(&self, username: &str) -> Option<String> {
        self.accounts
            .owner
            .as_ref()
            .filter(|o| same(o.username.as_bytes(), username.as_bytes()))
            .map(|o| o.password_hash.clone())
    }

    /// Refuses sign-in while too many wrong passwords were tried recently.
    pub fn check_sign_in_allowed(&mut self, now: Instant) -> Result<(), ApiError> {
        while self
            .failures
            .front()
            .is_some_and(|t| now.duration_since(*t) >= FAILURE_WINDOW)
        {
            self.failures.pop_front();
        }
        if self.failures.len() < SIGN_IN_FAILURES {
            return Ok(());
        }
        let wait = FAILURE_WINDOW.saturating_sub(now.duration_since(self.failures[0]));
        Err(ApiError::new(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            format!(
                "Too many wrong passwords: sign-in pauses for {} more minutes.",
                wait.as_secs().div_ceil(60)
            ),
        ))
    }

    pub fn record_sign_in(&mut self, ok: bool, now: Instant) {
        if ok {
            self.failures.clear();
        } else {
            self.failures.push_back(now);
        }
    }

    pub fn start_session(&mut self, username: &str) -> Result<String, ApiError> {
        let token = random_token()?;
        let now = Instant::now();
        self.sessions.retain(|_, s| s.expires > now);
        self.sessions.insert(
            digest(&token),
            Session {
                username: username.to_owned(),
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
    pub fn create_token(&mut self, name: &str, created: String) -> Result<String, ApiError> {
        if name.is_empty() || name.len() > 64 {
            return Err(ApiError::bad_request(
                "Name the token (1 to 64 characters).",
            ));
        }
        if self.accounts.tokens.iter().any(|t| t.name == name) {
            return Err(ApiError::conflict(format!(
                "A token named `{name}` exists already."
            )));
        }
        let token = random_token()?;
        let previous = self.accounts.clone();
        self.accounts.tokens.push(TokenRecord {
            name: name.to_owned(),
            sha256: digest(&token),
            created,
        });
        if let Err(e) = state::save(&self.path, &self.accounts) {
            self.accounts = previous;
            return Err(ApiError::storage(&e));
        }
        Ok(token)
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
    fn passwords_hash_and_verify() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse", &h));
    }

    #[test]
    fn sign_in_pauses_after_five_wrong_passwords_and_resumes_after_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let (mut auth, _) = Auth::load(dir.path(), &dir.path().join("code.txt"), 1).unwrap();
        let t0 = Instant::now();
        for i in 0..SIGN_IN_FAILURES {
            assert!(auth.check_sign_in_allowed(t0).is_ok(), "attempt {i}");
            auth.record_sign_in(false, t0);
        }
        let e = auth
            .check_sign_in_allowed(t0 + Duration::from_secs(60))
            .unwrap_err();
        assert_eq!(e.status.as_u16(), 429);
        assert!(e.message.contains("14 more minutes"), "{}", e.message);
        assert!(
            auth.check_sign_in_allowed(t0 + FAILURE_WINDOW).is_ok(),
            "the window has passed"
        );
    }

    #[test]
    fn ten_wrong_codes_rotate_the_code() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("code.txt");
        let (mut auth, _) = Auth::load(dir.path(), &file, 1).unwrap();
        let first = std::fs::read_to_string(&file).unwrap();
        for _ in 0..SETUP_ATTEMPTS {
            assert!(
                auth.create_owner("WRONG-CODE", "skipper", "h".into())
                    .is_err()
            );
        }
        assert_ne!(
            std::fs::read_to_string(&file).unwrap(),
            first,
            "a new code replaced the guessed-at one"
        );
        assert!(!auth.owner_exists());
    }
}
