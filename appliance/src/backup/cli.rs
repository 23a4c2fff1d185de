//! `d3kosd backup …`: the same backups as the web page, for an owner with a shell and for
//! the image's maintainers.

use std::io::Write;

use super::{BackupError, BackupId, Kind, LastResult, Paths, Progress, Settings};
use crate::config::Config;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Back up the boat's data now.
    Create,
    /// List the backups, newest first.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Read a whole backup and check it against its checksum and manifest.
    Verify { id: String },
    /// Replace the boat's data with a backup's; what it replaces is kept as a backup first.
    Restore { id: String },
    /// Delete a backup.
    Delete { id: String },
}

pub fn run(config: &Config, command: &Command) -> Result<(), BackupError> {
    let paths = crate::backup::Paths::of(config);
    let done = run_in(config, &paths, command);
    // From a root shell: what was written belongs to the daemon's user, as if it had.
    if paths.backup_dir.exists() {
        super::adopt(&paths.backup_dir, &paths.backup_dir)?;
    }
    done
}

fn run_in(config: &Config, paths: &Paths, command: &Command) -> Result<(), BackupError> {
    let paths = paths.clone();
    let limits = crate::backup::Limits::of(&config.backup);
    let mut out = std::io::stdout().lock();
    let mut say = |line: String| {
        let _ = writeln!(out, "{line}");
    };
    for line in super::recover(&paths, &limits) {
        say(format!("note: {line}"));
    }
    let now = crate::time::unix_now();
    match command {
        Command::Create => {
            let result = super::create::create(&paths, Kind::Manual, now, &Progress::default());
            super::record_result(&paths, &LastResult::of(&result, Kind::Manual, now));
            let c = result?;
            say(format!(
                "created {} ({} files, {} bytes of data, {} bytes compressed)",
                c.id,
                c.manifest.file_count(),
                c.manifest.total_bytes,
                c.size
            ));
            retain(&paths, &limits, &mut say);
        }
        Command::List { json } => {
            let all = super::list(&paths)?;
            if *json {
                say(serde_json::to_string_pretty(&all).expect("the list serializes"));
            } else if all.is_empty() {
                say(format!("no backups in {}", paths.backup_dir.display()));
            } else {
                say(format!(
                    "{:<32} {:<21} {:<12} {:>7} {:>14}  verified",
                    "id", "created", "kind", "files", "bytes"
                ));
                for b in all {
                    let verified = match b.verified {
                        Some(true) => "yes".to_owned(),
                        Some(false) => format!("NO: {}", b.problem.unwrap_or_default()),
                        None => "not yet".to_owned(),
                    };
                    say(format!(
                        "{:<32} {:<21} {:<12} {:>7} {:>14}  {verified}",
                        b.id.as_str(),
                        b.created,
                        format!("{:?}", b.kind).to_lowercase(),
                        b.files,
                        b.size
                    ));
                }
            }
        }
        Command::Verify { id } => {
            let id = BackupId::parse(id)?;
            let m = super::verify(&paths, &id, &limits, &Progress::default())?;
            say(format!(
                "{id} verifies: checksum and all {} files match its manifest",
                m.file_count()
            ));
        }
        Command::Restore { id } => {
            let id = BackupId::parse(id)?;
            // From a shell the daemon is one of the services holding the data.
            let mut units = config.backup.stop_units.clone();
            units.push("d3kosd.service".into());
            let r = super::restore::restore(
                &paths,
                &paths,
                &id,
                &limits,
                &units,
                now,
                &Progress::default(),
            )?;
            say(format!(
                "restored {} ({} files, {} bytes)",
                r.id, r.files, r.total_bytes
            ));
            if let Some(pre) = &r.pre_restore {
                say(format!("the data it replaced is kept as backup {pre}"));
            }
            for p in &r.problems {
                say(format!("warning: {p}"));
            }
            retain(&paths, &limits, &mut say);
        }
        Command::Delete { id } => {
            let id = BackupId::parse(id)?;
            super::delete(&paths, &id)?;
            say(format!("deleted {id}"));
        }
    }
    Ok(())
}

fn retain(paths: &Paths, limits: &super::Limits, say: &mut dyn FnMut(String)) {
    let settings = Settings::load(paths);
    match super::retain(paths, settings.keep, limits, crate::time::unix_now()) {
        Ok(gone) => {
            for id in gone {
                say(format!("deleted {id}: more than {} backups", settings.keep));
            }
        }
        Err(e) => say(format!("warning: old backups were not removed: {e}")),
    }
}
