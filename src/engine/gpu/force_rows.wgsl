// Force kernel for d up to ROWS_MAX_DIM = 64: the same force and row sums as force.wgsl, with
// one thread per particle i instead of one workgroup.
//
// Workgroup size: 64 threads (WORKGROUP_SIZE); workgroup b handles rows 64 b .. 64 b + 63 and is
// placed on the 2-D grid of common.wgsl with `config.block_grid_x` workgroups along x.
// Pipeline constant: DIM, the dimension d. It gives the loops over coordinates a constant trip
// count, so that compilers can unroll them and keep the per-thread arrays in registers.
//
// Bindings (group 0), identical to force.wgsl:
//   0  uniform              config     Config (common.wgsl)
//   1  storage, read        positions  array<f32>, n x d row-major
//   2  storage, read        anchors    array<f32>, n x d row-major (read only with has_anchors)
//   3  storage, read_write  force      array<f32>, n x d row-major, written for every row
//   4  storage, read_write  row_sums   array<vec4<f32>>, n entries, written only with want_energy
//   5  storage, read        first_partner  u32: the partners of this dispatch (chunk.wgsl)
//
// One dispatch covers partners first_partner .. first_partner + config.chunk_rows - 1. The
// dispatch with first_partner = 0 writes `force` and `row_sums`; later ones add their pair sums.
//
// The 64 threads load a tile of partner rows into workgroup memory together; each thread then
// walks the whole tile, and all threads read the same partner at the same time, so the reads
// broadcast. A thread past the end of the array (n not a multiple of 64) helps load tiles but
// writes nothing.
//
// Precision: each tile's contribution is summed on its own before it is added to the running
// total, as in force.wgsl.

override DIM: u32 = 1u;

// Largest d this kernel takes; the host uses force.wgsl above it.
const ROWS_MAX_DIM: u32 = 64u;
// Floats of workgroup memory for one tile of partners.
const ROWS_TILE_FLOATS: u32 = 4096u;

@group(0) @binding(1) var<storage, read> positions: array<f32>;
@group(0) @binding(2) var<storage, read> anchors: array<f32>;
@group(0) @binding(3) var<storage, read_write> force: array<f32>;
@group(0) @binding(4) var<storage, read_write> row_sums: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> first_partner: u32;

var<workgroup> tile: array<f32, ROWS_TILE_FLOATS>;

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) workgroup_id: vec3<u32>,
    @builtin(local_invocation_index) tid: u32,
) {
    let block = workgroup_id.y * config.block_grid_x + workgroup_id.x;
    let n = config.n;
    // Whole workgroups past the end exist only where the grid is 2-D; they skip every tile.
    if block * WORKGROUP_SIZE >= n {
        return;
    }
    let i = block * WORKGROUP_SIZE + tid;
    let in_range = i < n;
    let tile_rows = ROWS_TILE_FLOATS / DIM;

    var z_i: array<f32, ROWS_MAX_DIM>;
    var sums: array<f32, ROWS_MAX_DIM>;
    var tile_sums: array<f32, ROWS_MAX_DIM>;
    if in_range {
        for (var k = 0u; k < DIM; k++) {
            z_i[k] = positions[i * DIM + k];
        }
    }
    var kernel_sum = 0.0;
    var virial_sum = 0.0;

    let j_begin = first_partner;
    let j_end = min(n, j_begin + config.chunk_rows);
    for (var j0 = j_begin; j0 < j_end; j0 += tile_rows) {
        let count = min(tile_rows, j_end - j0);
        let tile_start = j0 * DIM;
        for (var e = tid; e < count * DIM; e += WORKGROUP_SIZE) {
            tile[e] = positions[tile_start + e];
        }
        workgroupBarrier();

        if in_range {
            for (var k = 0u; k < DIM; k++) {
                tile_sums[k] = 0.0;
            }
            for (var t = 0u; t < count; t++) {
                let offset = t * DIM;
                var dist2 = 0.0;
                for (var k = 0u; k < DIM; k++) {
                    let diff = z_i[k] - tile[offset + k];
                    dist2 += diff * diff;
                }
                if j0 + t == i {
                    continue;
                }
                let rho2 = dist2 + config.eps2;
                let weight = kernel_weight(rho2);
                virial_sum += weight * dist2;
                if config.want_energy != 0u {
                    kernel_sum += kernel_value(rho2);
                }
                for (var k = 0u; k < DIM; k++) {
                    tile_sums[k] += weight * (z_i[k] - tile[offset + k]);
                }
            }
            for (var k = 0u; k < DIM; k++) {
                sums[k] += tile_sums[k];
            }
        }
        // The next tile overwrites `tile`.
        workgroupBarrier();
    }

    if !in_range {
        return;
    }
    let row_i = i * DIM;
    if j_begin != 0u {
        for (var k = 0u; k < DIM; k++) {
            force[row_i + k] += config.pair_scale * sums[k];
        }
        if config.want_energy != 0u {
            row_sums[i] += vec4<f32>(0.0, kernel_sum, virial_sum, 0.0);
        }
        return;
    }
    var norm2_sum = 0.0;
    var task_sum = 0.0;
    for (var k = 0u; k < DIM; k++) {
        let z = z_i[k];
        var f = config.pair_scale * sums[k] - config.attraction * z;
        if config.has_anchors != 0u {
            let delta = z - anchors[row_i + k];
            f -= delta;
            task_sum += delta * delta;
        }
        force[row_i + k] = f;
        norm2_sum += z * z;
    }
    if config.want_energy != 0u {
        row_sums[i] = vec4<f32>(norm2_sum, kernel_sum, virial_sum, task_sum);
    }
}
