//! The library's error type. Each variant prints as one line that names the value and the fix.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A parameter outside its valid range.
    #[error("invalid {name} {value}: {expected}")]
    InvalidParam { name: &'static str, value: String, expected: String },

    /// An input file that cannot be used as a point set.
    #[error("{}: {problem}", path.display())]
    Input { path: PathBuf, problem: String },

    /// A failure to create or write an output file.
    #[error("{}: {problem}", path.display())]
    Output { path: PathBuf, problem: String },

    /// The requested system does not fit in memory.
    #[error("{n} particles in {dim} dimensions need about {needed_mib} MiB, {limit}; lower --n or --dim")]
    TooLarge { n: usize, dim: usize, needed_mib: u64, limit: String },

    /// The state left the finite numbers during a run.
    #[error("the run diverged at step {step} ({what} is not finite); lower the step size lr or raise the softening")]
    Diverged { step: u64, what: &'static str },

    /// The GPU backend could not be used.
    #[error("GPU backend: {0}")]
    Gpu(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn input(path: impl Into<PathBuf>, problem: impl Into<String>) -> Self {
        Error::Input { path: path.into(), problem: problem.into() }
    }

    pub(crate) fn output(path: impl Into<PathBuf>, problem: impl std::fmt::Display) -> Self {
        Error::Output { path: path.into(), problem: problem.to_string() }
    }

    pub fn param(name: &'static str, value: impl std::fmt::Display, expected: impl Into<String>) -> Self {
        Error::InvalidParam { name, value: value.to_string(), expected: expected.into() }
    }
}
