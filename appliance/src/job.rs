//! One job of a kind at a time (a backup, an update): what holds the slot and how far it has
//! got, for the status pages; the slot is given back when its holder is dropped.

use std::sync::{Mutex, MutexGuard};

/// The slot, free or holding the running job's description `T`.
#[derive(Debug)]
pub struct Single<T>(Mutex<Option<T>>);

impl<T> Default for Single<T> {
    fn default() -> Self {
        Single(Mutex::new(None))
    }
}

/// The running job's hold on its slot.
pub struct Held<'a, T>(&'a Single<T>);

impl<T> Single<T> {
    // A job that panicked leaves its description behind; the slot stays usable.
    fn lock(&self) -> MutexGuard<'_, Option<T>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<T: Clone> Single<T> {
    /// Takes the slot for `job`; when another holds it, says which.
    pub fn start(&self, job: T) -> Result<Held<'_, T>, T> {
        let mut slot = self.lock();
        if let Some(running) = slot.as_ref() {
            return Err(running.clone());
        }
        *slot = Some(job);
        Ok(Held(self))
    }

    /// The running job, if any.
    pub fn current(&self) -> Option<T> {
        self.lock().clone()
    }
}

impl<T> Held<'_, T> {
    /// Changes what the slot says about the running job.
    pub fn update(&self, f: impl FnOnce(&mut T)) {
        if let Some(job) = self.0.lock().as_mut() {
            f(job);
        }
    }
}

impl<T> Drop for Held<'_, T> {
    fn drop(&mut self) {
        *self.0.lock() = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_job_at_a_time_and_the_slot_comes_back() {
        let slot = Single::default();
        let held = slot.start("backup").unwrap();
        assert_eq!(slot.start("update").err(), Some("backup"));
        held.update(|j| *j = "backup, half done");
        assert_eq!(slot.current(), Some("backup, half done"));
        drop(held);
        assert_eq!(slot.current(), None);
        assert!(slot.start("update").is_ok());
    }
}
