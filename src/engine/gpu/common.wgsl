// Declarations shared by force.wgsl, force_rows.wgsl, update.wgsl and reduce.wgsl. The host
// prepends this file to each of them before compiling, so every shader sees the same `Config`.
//
// Binding 0 of group 0 is always the uniform `Config` below. Its layout must match
// `ShaderConfig` in src/engine/gpu/config.rs: 28 four-byte scalars, 112 bytes.
//
// Rows are dispatched over a 2-D grid of workgroups because one dimension of a dispatch may hold
// at most 65535 workgroups on many adapters. In force.wgsl and update.wgsl, row i of the n x d
// row-major arrays is handled by workgroup (i % grid_x, i / grid_x).

// Threads per workgroup of the per-row shaders (force and update).
const WORKGROUP_SIZE: u32 = 64u;
// Largest dimension d, so that a row fits in workgroup memory.
const MAX_DIM: u32 = 512u;
// Coordinates each thread owns in the per-row shaders: MAX_DIM / WORKGROUP_SIZE.
const COORDS_PER_THREAD: u32 = 8u;
// Value of `Status.diverged_step` while every position is finite.
const NO_DIVERGENCE: u32 = 0xffffffffu;

struct Config {
    // Rows the force and update shaders work on (all particles, or the mini-batch), and the
    // dimension.
    n: u32,
    dim: u32,
    // Partners per tile in the force shader (a power of two), and threads per partner when
    // computing distances; tile * lanes == WORKGROUP_SIZE.
    tile: u32,
    lanes: u32,
    // Closed form of the kernel: 0 for s = -1, 1 for s = 0, 2 for s = 1, 3 for s = 2, 4 for any
    // other s (through pow).
    shape: u32,
    // 1 when the anchors task term is active.
    has_anchors: u32,
    // 1 when the force shader should also write the per-row energy sums.
    want_energy: u32,
    // Workgroups along x of the dispatch grid.
    grid_x: u32,
    // Riesz exponent s and the squared softening eps^2.
    s: f32,
    eps2: f32,
    // 2 gamma / (n - 1), the factor of the pair sum in the force.
    pair_scale: f32,
    // gamma * lambda, the factor of the pull towards the origin.
    attraction: f32,
    // 0 gradient descent, 1 heavy-ball momentum, 2 Adam, 3 Langevin, 4 no step (projection only).
    optimizer: u32,
    // 1 when rows are scaled back to unit length after the step.
    project_sphere: u32,
    // Index of the step being taken, recorded when a position stops being finite.
    step: u32,
    // Seed of the Langevin noise.
    seed: u32,
    lr: f32,
    momentum: f32,
    beta1: f32,
    beta2: f32,
    adam_eps: f32,
    // All rows of the state and the grid width over them. They differ from `n` and `grid_x` only
    // in a mini-batch step, where `n` counts the batch.
    total_n: u32,
    total_grid_x: u32,
    // Standard deviation of the Langevin noise per coordinate, sqrt(2 lr T).
    noise_scale: f32,
    // Workgroups along x of force_rows.wgsl's grid, which has one workgroup per 64 rows.
    block_grid_x: u32,
    // Partners that one dispatch of a force shader covers (chunk.wgsl).
    chunk_rows: u32,
    // 1 in a mini-batch step: the force shaders then work on the gathered batch (gather.wgsl),
    // and update.wgsl moves row rows[k] of the state by row k of the force.
    batched: u32,
    padding: u32,
}

@group(0) @binding(0) var<uniform> config: Config;

// Returns the row handled by the workgroup `workgroup_id`; rows >= config.n are past the end.
fn row_of_workgroup(workgroup_id: vec3<u32>) -> u32 {
    return workgroup_id.y * config.grid_x + workgroup_id.x;
}

// Tests the exponent bits, because compilers may fold `x != x` away under the assumption that
// shader arithmetic never produces NaN or infinity.
fn is_finite(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
}
