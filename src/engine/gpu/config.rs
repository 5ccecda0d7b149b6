//! The uniform block every shader reads, and the dispatch shapes derived from n and d.

use bytemuck::{Pod, Zeroable};

use crate::params::{OptimizerKind, Params};

/// Threads per workgroup of the force and update shaders (`WORKGROUP_SIZE` in common.wgsl).
pub(super) const WORKGROUP_SIZE: u32 = 64;

/// Largest dimension the shaders handle (`MAX_DIM` in common.wgsl).
pub const MAX_DIM: usize = 512;

/// Floats of workgroup memory that hold one tile of partners (`TILE_FLOATS` in force.wgsl).
const TILE_FLOATS: u32 = 2048;

/// Partners per tile when the dimension is small enough; at most one partner per thread.
const MAX_TILE_ROWS: u32 = WORKGROUP_SIZE;

/// `Status.diverged_step` while every position is finite (`NO_DIVERGENCE` in common.wgsl).
pub(super) const NO_DIVERGENCE: u32 = u32::MAX;

/// `Config.optimizer` value that skips the step and only applies the sphere projection.
const OPTIMIZER_HOLD: u32 = 4;

/// The `Config` uniform of common.wgsl, field for field: 28 four-byte scalars, 112 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub(super) struct ShaderConfig {
    pub n: u32,
    pub dim: u32,
    pub tile: u32,
    pub lanes: u32,
    pub shape: u32,
    pub has_anchors: u32,
    pub want_energy: u32,
    pub grid_x: u32,
    pub s: f32,
    pub eps2: f32,
    pub pair_scale: f32,
    pub attraction: f32,
    pub optimizer: u32,
    pub project_sphere: u32,
    pub step: u32,
    pub seed: u32,
    pub lr: f32,
    pub momentum: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub adam_eps: f32,
    pub total_n: u32,
    pub total_grid_x: u32,
    pub noise_scale: f32,
    pub block_grid_x: u32,
    pub chunk_rows: u32,
    pub batched: u32,
    pub padding: u32,
}

/// Work that one configuration of the shaders runs.
#[derive(Clone, Copy, Debug)]
pub(super) enum Pass {
    /// The force alone.
    Force,
    /// The force and the per-row energy sums.
    Energy,
    /// One optimizer step with 0-based index `step`, over the mini-batch `batch` or, when it is
    /// `None`, over every row.
    Step { step: u64, batch: Option<Batch> },
    /// The sphere projection alone, with no step; `step` is recorded if a row is not finite.
    Project { step: u64 },
}

/// A mini-batch: its size and the dispatch grids that cover it. The rows themselves are in the
/// engine's `rows` buffer.
#[derive(Clone, Copy, Debug)]
pub(super) struct Batch {
    pub size: usize,
    pub grids: Grids,
}

/// Layout of the force shader's tiles for dimension `dim`: partners per tile (a power of two up
/// to 64 with `tile * dim <= 2048`) and threads per partner in the distance phase.
pub(super) fn tile_shape(dim: usize) -> (u32, u32) {
    let dim = dim.max(1) as u32;
    let mut tile = MAX_TILE_ROWS;
    while tile > 1 && tile * dim > TILE_FLOATS {
        tile /= 2;
    }
    (tile, WORKGROUP_SIZE / tile)
}

/// Workgroups along x and y that cover `rows` rows with one workgroup each, at most
/// `max_per_dimension` along either axis. Returns `None` when even the square grid is too small.
pub(super) fn dispatch_grid(rows: usize, max_per_dimension: u32) -> Option<(u32, u32)> {
    let max = max_per_dimension.max(1) as usize;
    let x = rows.clamp(1, max);
    let y = rows.div_ceil(x);
    (y <= max).then_some((x as u32, y as u32))
}

/// Dispatch grids of one engine, as workgroups along x and y.
#[derive(Clone, Copy, Debug)]
pub(super) struct Grids {
    /// One workgroup per row: force.wgsl and update.wgsl.
    pub rows: (u32, u32),
    /// One workgroup per 64 rows: force_rows.wgsl.
    pub blocks: (u32, u32),
}

impl Grids {
    /// Returns the grid of the force kernel for dimension `dim`: force_rows.wgsl's per-block
    /// grid up to `ROWS_MAX_DIM`, force.wgsl's per-row grid above.
    pub fn force(&self, dim: usize) -> (u32, u32) {
        if dim <= ROWS_MAX_DIM { self.blocks } else { self.rows }
    }
}

/// Returns the grids for `n` rows, or `None` when they exceed `max_per_dimension`.
pub(super) fn grids_for(n: usize, max_per_dimension: u32) -> Option<Grids> {
    let rows = dispatch_grid(n, max_per_dimension)?;
    let blocks = dispatch_grid(n.div_ceil(WORKGROUP_SIZE as usize), max_per_dimension)?;
    Some(Grids { rows, blocks })
}

/// Largest d that force_rows.wgsl handles (`ROWS_MAX_DIM` there); force.wgsl takes larger d.
///
/// NOTE: the crossover was measured only on lavapipe, where one thread per row ran 3 to 8 times
/// faster up to d = 64. On a discrete GPU that kernel keeps 3 d floats per thread, and with n
/// below a few thousand it starts too few threads to fill the device, so force.wgsl may win there.
pub(super) const ROWS_MAX_DIM: usize = 64;

/// Floats of workgroup memory for one tile of force_rows.wgsl (`ROWS_TILE_FLOATS` there).
const ROWS_TILE_FLOATS: u64 = 4096;

/// Loop iterations one force shader invocation may run in one dispatch. llvmpipe, which lavapipe
/// uses, gives all loops of an invocation one budget of 65535 iterations
/// (`LP_MAX_TGSI_LOOP_ITERATIONS` in Mesa's gallivm) and then leaves every loop, so the pair sums
/// come out truncated without an error. Half of it leaves room for iterations `chunk_rows` does
/// not count.
///
/// Other adapters have no such budget, so the engine uses these chunks only on software adapters
/// (`wgpu::DeviceType::Cpu`) and larger ones elsewhere (`HARDWARE_CHUNK_ROWS`).
const LOOP_BUDGET: u64 = 32768;

/// Partners per force dispatch on a hardware adapter. One dispatch could cover them all, but a
/// dispatch that runs for seconds can trip a driver's watchdog on a small GPU. At 8192 partners,
/// n = 65,536 takes 8 dispatches per step.
///
/// NOTE: no hardware GPU has run this value, so both the watchdog margin and the cost of the
/// extra dispatches are unmeasured.
pub(super) const HARDWARE_CHUNK_ROWS: u32 = 8192;

/// Threads of the single workgroup of reduce.wgsl (`REDUCE_WORKGROUP_SIZE` there).
const REDUCE_WORKGROUP_SIZE: u64 = 256;

/// Maximum particle count of the engine, because each thread of reduce.wgsl loops over n / 256
/// rows, which must stay within `LOOP_BUDGET` on lavapipe.
pub(super) const MAX_ROWS: usize = (REDUCE_WORKGROUP_SIZE * LOOP_BUDGET) as usize;

/// Returns the partners that one dispatch of the force shader for dimension `dim` covers: whole
/// tiles, as many as keep an invocation's loop iterations within `LOOP_BUDGET`, and at least one.
/// The iteration count is an estimate that assumes the compiler unrolls no loop.
pub(super) fn chunk_rows(dim: usize) -> u32 {
    let d = dim.max(1) as u64;
    let threads = u64::from(WORKGROUP_SIZE);
    let (tile_rows, tile_cost) = if dim <= ROWS_MAX_DIM {
        // Per tile: the tile loop, the load, clearing and adding the tile sums, then a distance
        // loop and a force loop per partner.
        let rows = ROWS_TILE_FLOATS / d;
        (rows, 1 + (rows * d).div_ceil(threads) + 2 * d + rows * (1 + 2 * d))
    } else {
        // Per tile: the tile loop, the load, the distance and lane loops, then each owned
        // coordinate's loop over the tile.
        let (tile, lanes) = tile_shape(dim);
        let (tile, lanes) = (u64::from(tile), u64::from(lanes));
        (tile, 1 + (tile * d).div_ceil(threads) + d.div_ceil(lanes) + lanes + d.div_ceil(threads) * (1 + tile))
    };
    // Loading the row, writing the force and the energy reduction run once per dispatch.
    let fixed = 2 * d + 2 * u64::from(WORKGROUP_SIZE.ilog2());
    let tiles = (LOOP_BUDGET.saturating_sub(fixed) / tile_cost).max(1);
    (tiles * tile_rows).min(u64::from(u32::MAX)) as u32
}

/// Closed form of the kernel for exponent `s` (`Config.shape` in common.wgsl).
fn kernel_shape(s: f64) -> u32 {
    if s == -1.0 {
        0
    } else if s == 0.0 {
        1
    } else if s == 1.0 {
        2
    } else if s == 2.0 {
        3
    } else {
        4
    }
}

/// Returns `step` as the u32 the shader records; NO_DIVERGENCE is reserved, so it saturates just
/// below it.
fn recorded_step(step: u64) -> u32 {
    step.min(u64::from(NO_DIVERGENCE - 1)) as u32
}

fn optimizer_code(kind: OptimizerKind) -> u32 {
    match kind {
        OptimizerKind::Gd => 0,
        OptimizerKind::Momentum => 1,
        OptimizerKind::Adam => 2,
        OptimizerKind::Langevin => 3,
    }
}

impl ShaderConfig {
    /// Builds the uniform for `pass` over `n` rows of dimension `dim`, with `partner_chunk`
    /// partners per force dispatch. `grids` holds the widths of the per-row grid and of
    /// force_rows.wgsl's per-block grid over all n rows. A mini-batch step narrows `n` and the
    /// grids to the batch and keeps the whole in `total_n`. Factors are computed in f64 and
    /// rounded to f32 once.
    pub fn new(params: &Params, n: usize, dim: usize, grids: Grids, has_anchors: bool, partner_chunk: u32, pass: Pass) -> Self {
        let model = params.model();
        let (tile, lanes) = tile_shape(dim);
        let mut config = ShaderConfig {
            n: n as u32,
            dim: dim as u32,
            tile,
            lanes,
            shape: kernel_shape(model.kernel.s),
            has_anchors: has_anchors as u32,
            want_energy: matches!(pass, Pass::Energy) as u32,
            grid_x: grids.rows.0,
            block_grid_x: grids.blocks.0,
            total_n: n as u32,
            total_grid_x: grids.rows.0,
            chunk_rows: partner_chunk,
            s: model.kernel.s as f32,
            eps2: (model.kernel.softening * model.kernel.softening) as f32,
            pair_scale: (2.0 * model.gamma / (n as f64 - 1.0)) as f32,
            attraction: (model.gamma * model.lambda) as f32,
            optimizer: optimizer_code(params.optimizer),
            project_sphere: params.project_sphere as u32,
            seed: (params.seed ^ (params.seed >> 32)) as u32,
            lr: params.lr as f32,
            momentum: params.momentum as f32,
            beta1: params.beta1 as f32,
            beta2: params.beta2 as f32,
            adam_eps: params.adam_eps as f32,
            noise_scale: (2.0 * params.lr * params.temperature).sqrt() as f32,
            ..Default::default()
        };
        match pass {
            Pass::Step { step, batch } => {
                config.step = recorded_step(step);
                if let Some(batch) = batch {
                    config.n = batch.size as u32;
                    config.pair_scale = (2.0 * model.gamma / (batch.size as f64 - 1.0)) as f32;
                    config.grid_x = batch.grids.rows.0;
                    config.block_grid_x = batch.grids.blocks.0;
                    config.batched = 1;
                }
            }
            Pass::Project { step } => {
                config.step = recorded_step(step);
                config.optimizer = OPTIMIZER_HOLD;
                config.project_sphere = 1;
            }
            Pass::Force | Pass::Energy => {}
        }
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_112_bytes() {
        assert_eq!(std::mem::size_of::<ShaderConfig>(), 112);
    }

    #[test]
    fn tile_shape_fills_the_workgroup() {
        for dim in 1..=MAX_DIM {
            let (tile, lanes) = tile_shape(dim);
            assert_eq!(tile * lanes, WORKGROUP_SIZE, "d = {dim}");
            assert!(tile.is_power_of_two(), "d = {dim}: tile {tile}");
            assert!(tile * dim as u32 <= TILE_FLOATS, "d = {dim}: tile {tile}");
        }
        assert_eq!(tile_shape(3), (64, 1));
        assert_eq!(tile_shape(64), (32, 2));
        assert_eq!(tile_shape(512), (4, 16));
    }

    #[test]
    fn chunks_are_whole_tiles_within_the_loop_budget() {
        for dim in 1..=MAX_DIM {
            let rows = chunk_rows(dim);
            let tile_rows = if dim <= ROWS_MAX_DIM { (ROWS_TILE_FLOATS / dim as u64) as u32 } else { tile_shape(dim).0 };
            assert!(rows >= tile_rows, "d = {dim}: {rows} rows, tiles of {tile_rows}");
            assert_eq!(rows % tile_rows, 0, "d = {dim}: {rows} rows, tiles of {tile_rows}");
            // Each partner costs at least one iteration of a loop over the tile.
            assert!(u64::from(rows) <= LOOP_BUDGET, "d = {dim}: {rows} rows");
        }
        assert_eq!(chunk_rows(64), 192);
    }

    #[test]
    fn dispatch_grid_covers_every_row() {
        assert_eq!(dispatch_grid(5, 65535), Some((5, 1)));
        assert_eq!(dispatch_grid(65535, 65535), Some((65535, 1)));
        assert_eq!(dispatch_grid(100_000, 65535), Some((65535, 2)));
        assert_eq!(dispatch_grid(10, 3), None);
        let (x, y) = dispatch_grid(1_000_003, 65535).unwrap();
        assert!(x as usize * y as usize >= 1_000_003);
    }
}
