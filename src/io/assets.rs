//! Finding the files shipped in `assets/`, whether the program runs from the repository, through
//! `cargo run`, or as an installed binary next to a copy of `assets/`.

use std::path::PathBuf;

/// Environment variable that points at an `assets/` folder, ahead of every other guess.
pub const ASSETS_ENV: &str = "ECCENTRIC_ASSETS";

/// Returns the path of `relative` inside the first `assets/` folder that contains it, or the
/// path under the source tree's `assets/` when none does (so the error names a real location).
pub fn asset_path(relative: &str) -> PathBuf {
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Some(dir) = std::env::var_os(ASSETS_ENV) {
        roots.push(PathBuf::from(dir));
    }
    if let Ok(cwd) = std::env::current_dir() {
        roots.push(cwd.join("assets"));
    }
    if let Ok(exe) = std::env::current_exe() {
        for ancestor in exe.ancestors().skip(1).take(4) {
            roots.push(ancestor.join("assets"));
        }
    }
    let source_tree = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets");
    roots.push(source_tree.clone());

    roots
        .into_iter()
        .map(|root| root.join(relative))
        .find(|path| path.exists())
        .unwrap_or_else(|| source_tree.join(relative))
}

/// Latent codes of the digits autoencoder, `(1797, 16)` float32.
pub const DIGITS_LATENT: &str = "data/digits_ae_latent16.npy";
/// Digit of each row of the digits files, int64.
pub const DIGITS_LABELS: &str = "data/digits_labels.npy";
/// UCI 8x8 digits: 64 pixel columns (0 to 16) and a `label` column.
pub const DIGITS_PIXELS: &str = "data/digits.csv";
