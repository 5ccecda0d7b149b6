//! `cargo bench`: steps per second of both CPU force paths on a small grid, next to the
//! machine's f32 GEMM rate. `eccentric bench` runs the full grid with more options.

use std::time::Duration;

use eccentric::bench::{CSV_HEADER, bench_engine, gemm_rate};
use eccentric::engine::ForcePath;

fn main() {
    let budget = Duration::from_secs(2);
    let gemm = gemm_rate(1024, budget);
    println!("f32 GEMM 1024^3 on {} threads: {gemm:.1} GFLOP/s", rayon::current_num_threads());
    println!("{CSV_HEADER}");
    for (n, d) in [(2000, 3), (4096, 3), (1024, 64), (4096, 64)] {
        for path in [ForcePath::Pairwise, ForcePath::Matrix] {
            let row = bench_engine(path, n, d, 0.0, budget);
            println!("{}", row.csv_line());
        }
    }
}
