//! The one backup job the daemon runs at a time (create, restore, check or upload), and
//! how far it has got, for the progress bar.

use std::sync::Arc;

use super::Progress;
use crate::job::{Held, Single};

pub type Jobs = Single<Running>;

#[derive(Clone)]
pub struct Running {
    pub what: &'static str,
    pub progress: Arc<Progress>,
}

/// The running job's hold on its slot, given back when dropped.
pub type JobGuard<'a> = Held<'a, Running>;

impl Jobs {
    /// Takes the slot for `what`; when another job holds it, says which.
    pub fn begin(&self, what: &'static str) -> Result<(JobGuard<'_>, Arc<Progress>), Running> {
        let progress = Arc::new(Progress::default());
        let held = self.start(Running {
            what,
            progress: progress.clone(),
        })?;
        Ok((held, progress))
    }
}
