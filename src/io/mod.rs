//! Files: loading point sets with validation, and the run directory.

pub mod assets;
pub mod input;
pub mod npy;
pub mod rundir;

pub use input::{Dataset, load_labels, load_points};
pub use rundir::{RunInfo, RunWriter};
