//! Training an autoencoder with eccentric regularization on its latent codes: the loss is the
//! reconstruction error plus `gamma` times the eccentric term R of each batch of codes.

pub mod images;
pub mod network;
pub mod run;
pub mod trainer;

pub use network::Autoencoder;
pub use trainer::{TrainParams, Trainer};
