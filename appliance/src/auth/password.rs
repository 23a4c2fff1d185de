//! Password hashing with Argon2id on a small fixed pool: a couple of threads that each own
//! their Argon2 memory, and a short queue per lane, so that no flood of requests can make
//! the device hash more than a few passwords at a time or hold more than a few Argon2
//! buffers. What does not fit in the queue is refused at once (503, try again).
//!
//! Parameters: Argon2id with 19 MiB, 2 passes, 1 lane: the first of OWASP's equivalent
//! Argon2id settings (Password Storage Cheat Sheet), and the argon2 crate's default, so the
//! hashes of devices already set up verify unchanged. On a Raspberry Pi 4 (Cortex-A72) one
//! hash costs a fraction of a second; two workers hold 38 MiB, well inside a 1 GB Pi.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

use super::accounts::same;

/// KiB of memory per hash.
pub const M_COST: u32 = 19 * 1024;
pub const T_COST: u32 = 2;
pub const P_COST: u32 = 1;
const OUTPUT_LEN: usize = 32;
/// Passes a stored hash may ask for before it is taken for a hostile file: verifying must
/// stay as bounded as hashing.
const MAX_T_COST: u32 = 16;

/// Which queue a job waits in. The helm screen has its own, served first, so a flood from
/// the network cannot keep the owner at the helm from signing in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    Helm,
    Network,
}

/// The pool is full: try again in a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

enum Work {
    Hash(String),
    /// `None`: a stand-in hash of the same cost, for a user name that does not exist.
    Verify(String, Option<String>),
}

enum Done {
    Hashed(Result<String, String>),
    Verified(bool),
}

struct Job {
    work: Work,
    reply: tokio::sync::oneshot::Sender<Done>,
}

#[derive(Default)]
struct Queues {
    helm: VecDeque<Job>,
    network: VecDeque<Job>,
    closed: bool,
}

impl Queues {
    fn next(&mut self) -> Option<Job> {
        self.helm.pop_front().or_else(|| self.network.pop_front())
    }
}

struct Pool {
    queues: Mutex<Queues>,
    ready: Condvar,
    per_lane: usize,
    done: AtomicU64,
}

/// The hashing pool. Dropping it stops its threads once their queues are empty.
pub struct Hasher {
    pool: Arc<Pool>,
}

impl Hasher {
    /// `workers` threads, each holding one Argon2 buffer once it first hashes; `per_lane`
    /// jobs may wait in each lane.
    pub fn start(workers: usize, per_lane: usize) -> Hasher {
        let pool = Arc::new(Pool {
            queues: Mutex::new(Queues::default()),
            ready: Condvar::new(),
            per_lane,
            done: AtomicU64::new(0),
        });
        // No workers at all only in tests: jobs then wait in their queues.
        for n in 0..workers {
            let pool = pool.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || work(&pool))
                .expect("the hashing threads start");
        }
        Hasher { pool }
    }

    /// Hashes a new password into a PHC string.
    pub async fn hash(&self, lane: Lane, password: String) -> Result<Result<String, String>, Busy> {
        match self.submit(lane, Work::Hash(password)).await? {
            Done::Hashed(r) => Ok(r),
            Done::Verified(_) => unreachable!("a hash job answers with a hash"),
        }
    }

    /// Whether `password` matches `phc`; with `None`, the same work against a stand-in, so
    /// that a wrong user name costs what a wrong password costs.
    pub async fn verify(
        &self,
        lane: Lane,
        password: String,
        phc: Option<String>,
    ) -> Result<bool, Busy> {
        match self.submit(lane, Work::Verify(password, phc)).await? {
            Done::Verified(ok) => Ok(ok),
            Done::Hashed(_) => unreachable!("a verify job answers with a verdict"),
        }
    }

    /// How many jobs the pool has finished: what tests count work by.
    pub fn jobs_done(&self) -> u64 {
        self.pool.done.load(Ordering::SeqCst)
    }

    async fn submit(&self, lane: Lane, work: Work) -> Result<Done, Busy> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        {
            let mut q = self
                .pool
                .queues
                .lock()
                .expect("the queue lock is never poisoned");
            let queue = match lane {
                Lane::Helm => &mut q.helm,
                Lane::Network => &mut q.network,
            };
            if queue.len() >= self.pool.per_lane {
                return Err(Busy);
            }
            queue.push_back(Job { work, reply });
        }
        self.pool.ready.notify_one();
        // A worker always answers; a closed pool drops the job, which reads as busy.
        answer.await.map_err(|_| Busy)
    }
}

impl Drop for Hasher {
    fn drop(&mut self) {
        self.pool
            .queues
            .lock()
            .expect("the queue lock is never poisoned")
            .closed = true;
        self.pool.ready.notify_all();
    }
}

fn work(pool: &Pool) {
    let mut memory: Vec<Block> = Vec::new();
    loop {
        let job = {
            let mut q = pool
                .queues
                .lock()
                .expect("the queue lock is never poisoned");
            loop {
                if let Some(job) = q.next() {
                    break job;
                }
                if q.closed {
                    return;
                }
                q = pool
                    .ready
                    .wait(q)
                    .expect("the queue lock is never poisoned");
            }
        };
        if memory.is_empty() {
            memory = vec![Block::default(); params().block_count()];
        }
        let done = match job.work {
            Work::Hash(password) => Done::Hashed(hash_with(&password, &mut memory)),
            Work::Verify(password, phc) => {
                let phc = phc.unwrap_or_else(stand_in);
                Done::Verified(verify_with(&password, &phc, &mut memory))
            }
        };
        pool.done.fetch_add(1, Ordering::SeqCst);
        // The asker may have gone (its client hung up); the work is done either way.
        let _ = job.reply.send(done);
    }
}

fn params() -> Params {
    Params::new(M_COST, T_COST, P_COST, Some(OUTPUT_LEN)).expect("valid Argon2 parameters")
}

fn hash_with(password: &str, memory: &mut [Block]) -> Result<String, String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| format!("no randomness for a salt: {e}"))?;
    phc(password, &salt, memory).map_err(|e| format!("cannot hash the password: {e}"))
}

fn phc(password: &str, salt: &[u8], memory: &mut [Block]) -> Result<String, String> {
    let params = params();
    let mut out = [0u8; OUTPUT_LEN];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, memory)
        .map_err(|e| e.to_string())?;
    let salt = SaltString::encode_b64(salt).map_err(|e| e.to_string())?;
    let hash = PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| e.to_string())?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| e.to_string())?),
    };
    Ok(hash.to_string())
}

/// A hash of the device's own parameters that no password matches.
fn stand_in() -> String {
    format!(
        "$argon2id$v=19$m={M_COST},t={T_COST},p={P_COST}$AAAAAAAAAAAAAAAAAAAAAA${}",
        "A".repeat(43)
    )
}

fn verify_with(password: &str, phc: &str, memory: &mut [Block]) -> bool {
    let checked = (|| {
        let hash = PasswordHash::new(phc).map_err(|e| e.to_string())?;
        let algorithm = Algorithm::try_from(hash.algorithm).map_err(|e| e.to_string())?;
        let version = hash
            .version
            .map_or(Ok(Version::V0x13), Version::try_from)
            .map_err(|e| e.to_string())?;
        let params = Params::try_from(&hash).map_err(|e| e.to_string())?;
        if params.block_count() > memory.len() || params.t_cost() > MAX_T_COST {
            return Err(format!(
                "it asks for m={} t={}, more than this device spends on one password",
                params.m_cost(),
                params.t_cost()
            ));
        }
        let mut salt = [0u8; 64];
        let salt = hash
            .salt
            .ok_or("it has no salt")?
            .decode_b64(&mut salt)
            .map_err(|e| e.to_string())?;
        let expected = hash.hash.ok_or("it has no hash")?;
        let mut out = vec![0u8; expected.len()];
        Argon2::new(algorithm, version, params.clone())
            .hash_password_into_with_memory(
                password.as_bytes(),
                salt,
                &mut out,
                &mut memory[..params.block_count()],
            )
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(same(&out, expected.as_bytes()))
    })();
    checked.unwrap_or_else(|e| {
        log::error!("a stored password hash cannot be checked: {e}");
        false
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::PasswordVerifier;

    #[tokio::test]
    async fn hashes_are_argon2id_phc_strings_any_verifier_reads() {
        let h = Hasher::start(1, 2);
        let phc = h
            .hash(Lane::Network, "correct horse".into())
            .await
            .unwrap()
            .unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        let parsed = PasswordHash::new(&phc).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        assert!(
            h.verify(Lane::Network, "correct horse".into(), Some(phc.clone()))
                .await
                .unwrap()
        );
        assert!(
            !h.verify(Lane::Network, "wrong horse".into(), Some(phc))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn hashes_made_before_the_pool_still_verify() {
        use argon2::PasswordHasher;
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let old = Argon2::default()
            .hash_password(b"an older password", &salt)
            .unwrap()
            .to_string();
        let h = Hasher::start(1, 1);
        assert!(
            h.verify(Lane::Helm, "an older password".into(), Some(old))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn a_stand_in_costs_a_whole_check_and_matches_nothing() {
        let h = Hasher::start(1, 1);
        assert!(!h.verify(Lane::Network, String::new(), None).await.unwrap());
        assert!(!h.verify(Lane::Network, "A".repeat(43), None).await.unwrap());
        assert_eq!(h.jobs_done(), 2, "each stand-in ran through Argon2");
        assert!(PasswordHash::new(&stand_in()).is_ok());
    }

    #[tokio::test]
    async fn a_hostile_stored_hash_is_refused_without_being_run() {
        let h = Hasher::start(1, 1);
        let huge = format!(
            "$argon2id$v=19$m=4000000,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA${}",
            "A".repeat(43)
        );
        assert!(
            !h.verify(Lane::Network, "x".into(), Some(huge))
                .await
                .unwrap()
        );
        assert!(
            !h.verify(Lane::Network, "x".into(), Some("not a hash".into()))
                .await
                .unwrap()
        );
    }

    #[test]
    fn a_full_lane_answers_busy_at_once_and_the_helm_lane_stays_open() {
        use futures_util::FutureExt;
        // No workers: what is queued stays queued.
        let h = Hasher::start(0, 2);
        for _ in 0..2 {
            assert!(
                h.verify(Lane::Network, "guess".into(), None)
                    .now_or_never()
                    .is_none(),
                "queued"
            );
        }
        assert_eq!(
            h.verify(Lane::Network, "one more".into(), None)
                .now_or_never(),
            Some(Err(Busy))
        );
        assert!(
            h.verify(Lane::Helm, "owner".into(), None)
                .now_or_never()
                .is_none(),
            "the helm lane takes the owner's job while the network lane is full"
        );
    }

    #[test]
    fn the_helm_lane_is_served_first() {
        let job = |p: &str| Job {
            work: Work::Hash(p.into()),
            reply: tokio::sync::oneshot::channel().0,
        };
        let mut q = Queues::default();
        q.network.push_back(job("n1"));
        q.network.push_back(job("n2"));
        q.helm.push_back(job("h1"));
        let order: Vec<String> = std::iter::from_fn(|| q.next())
            .map(|j| match j.work {
                Work::Hash(p) | Work::Verify(p, _) => p,
            })
            .collect();
        assert_eq!(order, ["h1", "n1", "n2"]);
    }
}
