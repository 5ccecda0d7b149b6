//! Pure math of the model: no I/O and no threads of its own beyond rayon's pool.

pub mod energy;
pub mod kernel;
pub mod points;

pub use energy::{EnergyParts, Evaluation, Model, Task, energy, evaluate, gradient};
pub use kernel::Kernel;
pub use points::Points;
