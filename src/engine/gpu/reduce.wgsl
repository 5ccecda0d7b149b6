// Energy reduction: sums the per-row energy sums that force.wgsl writes with want_energy into one
// vec4, so the host reads back four floats instead of n.
//
// Workgroup size: 256 threads (REDUCE_WORKGROUP_SIZE), dispatched as a single workgroup. Thread t
// sums rows t, t + 256, ... and the 256 partial sums are then added in a tree of 8 levels.
// The host caps n at 256 x 32768 rows (MAX_ROWS in config.rs), so that each thread's loop stays
// within lavapipe's iteration budget (see chunk.wgsl).
//
// Bindings (group 0):
//   0  uniform              config    Config (common.wgsl); only `n` is read
//   1  storage, read        row_sums  array<vec4<f32>>, n entries (layout in force.wgsl)
//   2  storage, read_write  totals    vec4<f32>: the sums of row_sums over all rows

const REDUCE_WORKGROUP_SIZE: u32 = 256u;

@group(0) @binding(1) var<storage, read> row_sums: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> totals: vec4<f32>;

var<workgroup> partial_sums: array<vec4<f32>, REDUCE_WORKGROUP_SIZE>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) tid: u32) {
    var sum = vec4<f32>(0.0);
    for (var row = tid; row < config.n; row += REDUCE_WORKGROUP_SIZE) {
        sum += row_sums[row];
    }
    partial_sums[tid] = sum;
    workgroupBarrier();

    for (var stride = REDUCE_WORKGROUP_SIZE / 2u; stride > 0u; stride /= 2u) {
        if tid < stride {
            partial_sums[tid] += partial_sums[tid + stride];
        }
        workgroupBarrier();
    }
    if tid == 0u {
        totals = partial_sums[0];
    }
}
