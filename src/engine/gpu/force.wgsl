// Force kernel: F_i = pair_scale * sum_{j != i} w_ij (z_i - z_j) - attraction * z_i - (z_i - a_i),
// with w_ij = rho_ij^(-s-2) and rho_ij^2 = |z_i - z_j|^2 + eps^2 (the last term only with anchors).
//
// Workgroup size: 64 threads (WORKGROUP_SIZE), one workgroup per particle i, dispatched over the
// 2-D grid described in common.wgsl. Any d from 1 to MAX_DIM = 512 works; the host runs it for
// d above 64 and force_rows.wgsl below.
//
// Bindings (group 0):
//   0  uniform              config     Config (common.wgsl)
//   1  storage, read        positions  array<f32>, n x d row-major
//   2  storage, read        anchors    array<f32>, n x d row-major (read only with has_anchors)
//   3  storage, read_write  force      array<f32>, n x d row-major, written for every row
//   4  storage, read_write  row_sums   array<vec4<f32>>, n entries, written only with want_energy:
//                                      (|z_i|^2, sum_j K_s(rho_ij), sum_j w_ij |z_i - z_j|^2,
//                                       |z_i - a_i|^2 or 0)
//   5  storage, read        first_partner  u32: the partners of this dispatch (chunk.wgsl)
//
// One dispatch covers partners first_partner .. first_partner + config.chunk_rows - 1. The
// dispatch with first_partner = 0 writes `force` and `row_sums`; later ones add their pair sums.
//
// The partners j pass through workgroup memory in tiles of `config.tile` rows, which are
// contiguous in the row-major positions, so the loads coalesce. Each tile takes three phases.
// First the threads split the squared distances between them (`config.lanes` threads per
// partner). Then one thread per partner turns its distance into a weight. Last, each thread adds
// the weighted differences of the coordinates it owns. A partner past the end of the array gets weight 0, so n
// need not be a multiple of the tile.
//
// Precision: every sum is f32. Each tile's contribution is summed on its own before it is added
// to the running total, so a running total gains one rounding per tile rather than per partner.

// Floats of workgroup memory for one tile: tile * d <= TILE_FLOATS.
const TILE_FLOATS: u32 = 2048u;

@group(0) @binding(1) var<storage, read> positions: array<f32>;
@group(0) @binding(2) var<storage, read> anchors: array<f32>;
@group(0) @binding(3) var<storage, read_write> force: array<f32>;
@group(0) @binding(4) var<storage, read_write> row_sums: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> first_partner: u32;

var<workgroup> z_i: array<f32, MAX_DIM>;
var<workgroup> tile: array<f32, TILE_FLOATS>;
var<workgroup> partial_dist2: array<f32, WORKGROUP_SIZE>;
var<workgroup> weights: array<f32, WORKGROUP_SIZE>;
var<workgroup> energy_sums: array<vec4<f32>, WORKGROUP_SIZE>;

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) workgroup_id: vec3<u32>,
    @builtin(local_invocation_index) tid: u32,
) {
    let i = row_of_workgroup(workgroup_id);
    if i >= config.n {
        return;
    }
    let n = config.n;
    let dim = config.dim;
    let row_i = i * dim;
    let tile_rows = config.tile;
    let lanes = config.lanes;
    let tile_len = tile_rows * dim;

    for (var k = tid; k < dim; k += WORKGROUP_SIZE) {
        z_i[k] = positions[row_i + k];
    }

    // Thread tid computes part of the distance to partner `partner` of each tile.
    let partner = tid / lanes;
    let lane = tid % lanes;
    var sums: array<f32, COORDS_PER_THREAD>;
    var kernel_sum = 0.0;
    var virial_sum = 0.0;

    let j_begin = first_partner;
    let j_end = min(n, j_begin + config.chunk_rows);
    for (var j0 = j_begin; j0 < j_end; j0 += tile_rows) {
        let tile_start = j0 * dim;
        let tile_end = min(j_end * dim - tile_start, tile_len);
        for (var e = tid; e < tile_len; e += WORKGROUP_SIZE) {
            if e < tile_end {
                tile[e] = positions[tile_start + e];
            } else {
                tile[e] = 0.0;
            }
        }
        workgroupBarrier();

        let offset = partner * dim;
        var dist2_part = 0.0;
        for (var k = lane; k < dim; k += lanes) {
            let diff = z_i[k] - tile[offset + k];
            dist2_part += diff * diff;
        }
        partial_dist2[tid] = dist2_part;
        workgroupBarrier();

        if lane == 0u {
            var dist2 = 0.0;
            for (var l = 0u; l < lanes; l++) {
                dist2 += partial_dist2[tid + l];
            }
            let j = j0 + partner;
            var weight = 0.0;
            if j < j_end && j != i {
                let rho2 = dist2 + config.eps2;
                weight = kernel_weight(rho2);
                virial_sum += weight * dist2;
                if config.want_energy != 0u {
                    kernel_sum += kernel_value(rho2);
                }
            }
            weights[partner] = weight;
        }
        workgroupBarrier();

        // A loop bounded by k < dim rather than a fixed loop with `if k < dim`, because SIMD
        // implementations such as lavapipe run an `if` whose lanes are all inactive anyway but
        // leave a loop once no lane continues.
        var m = 0u;
        for (var k = tid; k < dim; k += WORKGROUP_SIZE) {
            let z = z_i[k];
            var tile_sum = 0.0;
            for (var t = 0u; t < tile_rows; t++) {
                tile_sum += weights[t] * (z - tile[t * dim + k]);
            }
            sums[m] += tile_sum;
            m++;
        }
        // The next tile overwrites `tile` and `weights`.
        workgroupBarrier();
    }

    // Uniform across the workgroup, so the barriers below stay in uniform control flow.
    let first = j_begin == 0u;
    var norm2_part = 0.0;
    var task_part = 0.0;
    var m = 0u;
    for (var k = tid; k < dim; k += WORKGROUP_SIZE) {
        if !first {
            force[row_i + k] += config.pair_scale * sums[m];
            m++;
            continue;
        }
        let z = z_i[k];
        var f = config.pair_scale * sums[m] - config.attraction * z;
        if config.has_anchors != 0u {
            let delta = z - anchors[row_i + k];
            f -= delta;
            task_part += delta * delta;
        }
        force[row_i + k] = f;
        norm2_part += z * z;
        m++;
    }

    if config.want_energy != 0u {
        energy_sums[tid] = vec4<f32>(norm2_part, kernel_sum, virial_sum, task_part);
        workgroupBarrier();
        for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride /= 2u) {
            if tid < stride {
                energy_sums[tid] += energy_sums[tid + stride];
            }
            workgroupBarrier();
        }
        if tid == 0u {
            if first {
                row_sums[i] = energy_sums[0];
            } else {
                row_sums[i] += energy_sums[0];
            }
        }
    }
}
