//! The owner account, sessions and API tokens. There is no default password: the first
//! visitor creates the owner with a one-time setup code that only the device's own screen
//! (and its config partition) shows.
//!
//! Every request is bounded before anything expensive runs: the cheap checks come first
//! (does an owner exist, is the setup code right, may this client try again), and passwords
//! are hashed only on the small pool in [`password`].

pub mod accounts;
pub mod password;
pub mod throttle;

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use accounts::Store;
pub use accounts::{SESSION_LIFETIME, TokenInfo};
use password::{Hasher, Lane};
use throttle::{Refused, Throttle};

use crate::peer::Peer;
use crate::state::StateError;

pub const SESSION_COOKIE: &str = "d3kos_session";
/// A longer password is refused before it is hashed.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Argon2 threads, and jobs that may wait in each lane.
const HASH_WORKERS: usize = 2;
const HASH_QUEUE: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the owner account already exists: sign in instead")]
    OwnerExists,
    #[error("that setup code is not the one the helm screen shows")]
    WrongCode,
    #[error("no setup code is available; restart the device")]
    NoSetupCode,
    #[error("wrong username or password")]
    BadCredentials,
    #[error("choose a username of 1 to 32 letters, digits, '.', '_' or '-'")]
    BadUsername,
    #[error("choose a password of at least 8 characters")]
    ShortPassword,
    #[error("that password is longer than {MAX_PASSWORD_BYTES} bytes")]
    LongPassword,
    #[error("too many wrong {what} from this device: try again in {}", wait_text(*wait))]
    Throttled { what: &'static str, wait: Duration },
    #[error("one {what} at a time from each device: wait for the first to finish")]
    InFlight { what: &'static str },
    #[error("the device is checking other passwords right now: try again in a few seconds")]
    Busy,
    #[error("name the token with 1 to 64 characters")]
    TokenName,
    #[error("a token named `{0}` exists already")]
    TokenExists(String),
    #[error("there is no token with id `{0}`")]
    NoSuchToken(String),
    #[error("no randomness: {0}")]
    NoRandomness(String),
    #[error("the password could not be hashed: {0}")]
    Hashing(String),
    #[error("{0}")]
    Storage(StateError),
}

impl AuthError {
    /// Seconds a client should wait before trying again, where that is known.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            AuthError::Throttled { wait, .. } => Some(wait.as_secs().max(1)),
            AuthError::InFlight { .. } => Some(1),
            AuthError::Busy => Some(2),
            _ => None,
        }
    }
}

fn wait_text(d: Duration) -> String {
    let s = d.as_secs().max(1);
    if s < 90 {
        format!("{s} seconds")
    } else {
        format!("{} minutes", s.div_ceil(60))
    }
}

fn lane(peer: &Peer) -> Lane {
    if peer.is_helm() {
        Lane::Helm
    } else {
        Lane::Network
    }
}

/// Accounts, sessions and tokens, with the hashing pool and the per-client counts.
pub struct Auth {
    store: Mutex<Store>,
    hasher: Hasher,
    sign_in: Throttle,
    setup: Throttle,
}

impl Auth {
    /// Loads the accounts; a corrupt file is moved aside and reported.
    pub fn load(
        state_dir: &Path,
        setup_file: &Path,
        now: u64,
    ) -> Result<(Auth, Option<String>), StateError> {
        let (store, problem) = Store::load(state_dir, setup_file, now)?;
        Ok((
            Auth {
                store: Mutex::new(store),
                hasher: Hasher::start(HASH_WORKERS, HASH_QUEUE),
                sign_in: Throttle::new(throttle::NETWORK, throttle::HELM),
                setup: Throttle::new(throttle::NETWORK, throttle::HELM),
            },
            problem,
        ))
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store
            .lock()
            .expect("the accounts lock is never poisoned")
    }

    /// The one-time setup code for the helm screen; `None` once the owner exists.
    pub fn setup_code_shown(&self) -> Option<String> {
        self.store().setup_code_shown()
    }

    pub fn owner_exists(&self) -> bool {
        self.store().owner_exists()
    }

    /// Creates the owner and returns a session token. Refused, before any hashing, when an
    /// owner exists, when the client must wait, and when the code is wrong.
    pub async fn create_owner(
        &self,
        peer: &Peer,
        code: &str,
        username: &str,
        password: &str,
    ) -> Result<String, AuthError> {
        if self.owner_exists() {
            return Err(AuthError::OwnerExists);
        }
        accounts::check_new_credentials(username, password)?;
        let attempt = self
            .setup
            .begin(peer, Instant::now())
            .map_err(|r| refused(r, "setup codes"))?;
        if !self.store().setup_code_matches(code)? {
            let wait = attempt.wrong();
            log::warn!(
                "a wrong setup code from {peer}{}",
                wait.map_or(String::new(), |w| format!("; it waits {}", wait_text(w)))
            );
            return Err(AuthError::WrongCode);
        }
        attempt.right();
        let hash = match self.hasher.hash(lane(peer), password.to_owned()).await {
            Ok(h) => h.map_err(AuthError::Hashing)?,
            Err(password::Busy) => return Err(AuthError::Busy),
        };
        let token = self.store().create_owner(code, username, hash)?;
        log::info!("owner account `{username}` created from {peer}");
        Ok(token)
    }

    /// Signs in and returns a session token. A wrong user name costs the same Argon2 work
    /// as a wrong password, so the time of the answer tells nothing.
    pub async fn sign_in(
        &self,
        peer: &Peer,
        username: &str,
        password: &str,
    ) -> Result<String, AuthError> {
        let attempt = self
            .sign_in
            .begin(peer, Instant::now())
            .map_err(|r| refused(r, "passwords"))?;
        // Too long to be the owner's: refused after the same work as any other wrong one.
        let password = if password.len() > MAX_PASSWORD_BYTES {
            String::new()
        } else {
            password.to_owned()
        };
        let hash = self.store().owner_hash(username);
        let exists = hash.is_some();
        let ok = match self.hasher.verify(lane(peer), password, hash).await {
            Ok(ok) => ok && exists,
            Err(password::Busy) => {
                attempt.withdraw();
                return Err(AuthError::Busy);
            }
        };
        if !ok {
            if let Some(w) = attempt.wrong() {
                log::warn!("wrong passwords from {peer}: it waits {}", wait_text(w));
            }
            return Err(AuthError::BadCredentials);
        }
        attempt.right();
        self.store().start_session(username)
    }

    /// The user a bearer token or session cookie belongs to.
    pub fn user_of(&self, bearer: Option<&str>, cookie: Option<&str>) -> Option<String> {
        let store = self.store();
        if let Some(t) = bearer {
            return store.token_user(t);
        }
        cookie.and_then(|t| store.session_user(t))
    }

    pub fn session_user(&self, cookie: &str) -> Option<String> {
        self.store().session_user(cookie)
    }

    pub fn sign_out(&self, cookie: &str) {
        self.store().end_session(cookie);
    }

    pub fn create_token(&self, name: &str, now: String) -> Result<(TokenInfo, String), AuthError> {
        self.store().create_token(name, now)
    }

    pub fn tokens(&self) -> Vec<TokenInfo> {
        self.store().tokens()
    }

    pub fn revoke_token(&self, id: &str) -> Result<TokenInfo, AuthError> {
        self.store().revoke_token(id)
    }

    /// Argon2 jobs finished so far: what tests count work by.
    pub fn hashes_done(&self) -> u64 {
        self.hasher.jobs_done()
    }
}

fn refused(r: Refused, what: &'static str) -> AuthError {
    match r {
        Refused::Wait(wait) => AuthError::Throttled { what, wait },
        Refused::InFlight => AuthError::InFlight {
            what: if what == "passwords" {
                "sign-in"
            } else {
                "setup attempt"
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(s: &str) -> Peer {
        Peer::of(s.parse().unwrap())
    }

    fn device() -> (tempfile::TempDir, Auth, String) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("code.txt");
        let (auth, _) = Auth::load(dir.path(), &file, 1).unwrap();
        let code = std::fs::read_to_string(&file)
            .unwrap()
            .split_whitespace()
            .nth(4)
            .unwrap()
            .to_owned();
        (dir, auth, code)
    }

    /// A device whose owner was made at the helm screen.
    async fn with_owner() -> (tempfile::TempDir, Auth) {
        let (dir, auth, code) = device();
        auth.create_owner(
            &peer("127.0.0.1:1"),
            &code,
            "skipper",
            "correct horse battery",
        )
        .await
        .unwrap();
        (dir, auth)
    }

    #[tokio::test]
    async fn owner_setup_is_refused_before_any_password_is_hashed() {
        let (_dir, auth, code) = device();
        let stranger = peer("192.168.4.66:1");
        for _ in 0..3 {
            let e = auth
                .create_owner(&stranger, "WRONG-CODE", "mallory", "long enough password")
                .await
                .unwrap_err();
            assert!(matches!(e, AuthError::WrongCode), "{e}");
        }
        assert_eq!(auth.hashes_done(), 0, "a wrong code costs no Argon2 work");
        auth.create_owner(
            &peer("127.0.0.1:1"),
            &code,
            "skipper",
            "correct horse battery",
        )
        .await
        .unwrap();
        assert_eq!(auth.hashes_done(), 1);
        for _ in 0..20 {
            let e = auth
                .create_owner(&stranger, &code, "mallory", "long enough password")
                .await
                .unwrap_err();
            assert!(matches!(e, AuthError::OwnerExists), "{e}");
        }
        assert_eq!(
            auth.hashes_done(),
            1,
            "an existing owner costs no Argon2 work"
        );
    }

    #[tokio::test]
    async fn wrong_setup_codes_slow_one_stranger_and_never_the_owner() {
        let (_dir, auth, code) = device();
        let stranger = peer("192.168.4.66:1");
        let mut throttled = false;
        for _ in 0..30 {
            match auth
                .create_owner(&stranger, "AAAA-AAAA", "mallory", "long enough password")
                .await
            {
                Err(AuthError::WrongCode) => {}
                Err(AuthError::Throttled { .. }) => throttled = true,
                other => panic!("{other:?}"),
            }
        }
        assert!(throttled, "the stranger waits");
        auth.create_owner(
            &peer("192.168.4.20:1"),
            &code,
            "skipper",
            "correct horse battery",
        )
        .await
        .expect("the code still works for the owner, from another address");
    }

    #[tokio::test]
    async fn a_wrong_user_name_costs_a_password_check() {
        let (_dir, auth) = with_owner().await;
        let before = auth.hashes_done();
        let p = peer("10.0.0.5:1");
        assert!(matches!(
            auth.sign_in(&p, "nobody", "correct horse battery").await,
            Err(AuthError::BadCredentials)
        ));
        assert_eq!(
            auth.hashes_done(),
            before + 1,
            "the unknown name was hashed"
        );
        assert!(matches!(
            auth.sign_in(&p, "skipper", "wrong horse battery").await,
            Err(AuthError::BadCredentials)
        ));
        assert_eq!(auth.hashes_done(), before + 2);
        assert!(matches!(
            auth.sign_in(&p, "skipper", &"x".repeat(5000)).await,
            Err(AuthError::BadCredentials)
        ));
        assert_eq!(auth.hashes_done(), before + 3, "an overlong one too");
        let token = auth
            .sign_in(&p, "skipper", "correct horse battery")
            .await
            .unwrap();
        assert_eq!(auth.session_user(&token).as_deref(), Some("skipper"));
    }

    #[tokio::test]
    async fn the_owner_signs_in_while_a_stranger_is_locked_out() {
        let (_dir, auth) = with_owner().await;
        let stranger = peer("192.168.4.66:1");
        for _ in 0..8 {
            let _ = auth.sign_in(&stranger, "skipper", "guess").await;
        }
        assert!(matches!(
            auth.sign_in(&stranger, "skipper", "correct horse battery")
                .await,
            Err(AuthError::Throttled { .. })
        ));
        auth.sign_in(&peer("192.168.4.20:1"), "skipper", "correct horse battery")
            .await
            .expect("the owner's phone");
        auth.sign_in(&peer("127.0.0.1:1"), "skipper", "correct horse battery")
            .await
            .expect("the helm screen");
    }
}
