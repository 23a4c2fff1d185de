//! Recipe and board files: the declared inputs of a build, parsed strictly.

pub mod board;
pub mod hat;
pub mod recipe;
mod size;

use std::ops::Range;
use std::path::{Path, PathBuf};

pub use board::Board;
pub use hat::{Hat, HatOverlay};
pub use recipe::Recipe;

/// A recipe or board file that cannot be used, located down to the line and key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}: {key}: {message}", path.display())]
    Invalid {
        path: PathBuf,
        line: usize,
        key: String,
        message: String,
    },
}

/// The text of one TOML file, kept to turn byte spans into line numbers.
pub(crate) struct Source {
    pub path: PathBuf,
    pub text: String,
}

impl Source {
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Ok(Source {
            path: path.to_owned(),
            text,
        })
    }

    pub fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    pub fn error(
        &self,
        span: Range<usize>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.clone(),
            line: self.line_of(span.start),
            key: key.into(),
            message: message.into(),
        }
    }

    /// Parses the whole file, turning serde's complaint (an unknown key, a wrong type, a
    /// missing field) into an error that names the key it is about.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, ConfigError> {
        toml::from_str(&self.text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            let key = self
                .text
                .get(span.clone())
                .map(|s| s.trim().trim_matches('"'))
                .filter(|s| !s.is_empty() && s.len() <= 64 && !s.contains('\n'))
                .unwrap_or("(file)")
                .to_owned();
            self.error(span, key, e.message().trim_end().to_owned())
        })
    }
}
