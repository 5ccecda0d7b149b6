//! `eccentric`: latent codes as particles under eccentric regularization.
//!
//! The library holds everything that is not drawing: the model ([`model`]), the engines that
//! step it ([`engine`]), readouts ([`metrics`]), display projections ([`projection`]), files
//! ([`io`]) and the headless runner ([`runner`]). The desktop app ([`app`], behind the `app`
//! feature) and the command line are thin clients of it.

#[cfg(feature = "app")]
pub mod app;
pub mod bench;
pub mod engine;
pub mod error;
pub mod io;
pub mod metrics;
pub mod model;
pub mod params;
pub mod projection;
pub mod runner;
pub mod train;

pub use error::{Error, Result};
pub use params::Params;
