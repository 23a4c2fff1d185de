//! The one backup job the daemon runs at a time (create, restore, check or upload), and
//! how far it has got, for the progress bar.

use std::sync::{Arc, Mutex};

use super::Progress;

#[derive(Default)]
pub struct Jobs(Mutex<Option<Running>>);

#[derive(Clone)]
pub struct Running {
    pub what: &'static str,
    pub progress: Arc<Progress>,
}

/// The running job's hold on its slot, given back when dropped.
pub struct JobGuard<'a>(&'a Jobs);

impl Drop for JobGuard<'_> {
    fn drop(&mut self) {
        *self.0.0.lock().expect("the job lock is never poisoned") = None;
    }
}

impl Jobs {
    /// Takes the slot for `what`; when another job holds it, says which.
    pub fn start(&self, what: &'static str) -> Result<(JobGuard<'_>, Arc<Progress>), Running> {
        let mut slot = self.0.lock().expect("the job lock is never poisoned");
        if let Some(r) = slot.as_ref() {
            return Err(r.clone());
        }
        let progress = Arc::new(Progress::default());
        *slot = Some(Running {
            what,
            progress: progress.clone(),
        });
        Ok((JobGuard(self), progress))
    }

    pub fn current(&self) -> Option<Running> {
        self.0
            .lock()
            .expect("the job lock is never poisoned")
            .clone()
    }
}
