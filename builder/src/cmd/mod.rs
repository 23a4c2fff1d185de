//! Subcommands, one module each.

pub mod build;
pub mod bundle;
pub mod inspect;
pub mod prepare;
pub mod verify;

use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum Command {
    // Boxed: its many options would make every other command as large.
    Build(Box<build::Args>),
    Bundle(bundle::Args),
    Inspect(inspect::Args),
    Prepare(prepare::Args),
    Verify(verify::Args),
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Build(a) => build::run(*a),
        Command::Bundle(a) => bundle::run(a),
        Command::Inspect(a) => inspect::run(a),
        Command::Prepare(a) => prepare::run(a),
        Command::Verify(a) => verify::run(a),
    }
}

/// Progress on a terminal as a bar; elsewhere (CI logs) a plain line every tenth.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    label: &'static str,
    last_tenth: u64,
}

impl Progress {
    pub fn new(label: &'static str) -> Self {
        use std::io::IsTerminal;
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = indicatif::ProgressBar::new(0);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg:>12} [{bar:40}] {bytes}/{total_bytes} ({eta})",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            b.set_message(label);
            b
        });
        Progress {
            bar,
            label,
            last_tenth: u64::MAX,
        }
    }

    pub fn update(&mut self, done: u64, total: u64) {
        match &self.bar {
            Some(b) => {
                b.set_length(total);
                b.set_position(done);
            }
            None => {
                let tenth = (done * 10).checked_div(total).unwrap_or(10);
                if tenth != self.last_tenth {
                    self.last_tenth = tenth;
                    eprintln!("{}: {}%", self.label, tenth * 10);
                }
            }
        }
    }

    pub fn finish(self) {
        if let Some(b) = self.bar {
            b.finish_and_clear();
        }
    }
}
