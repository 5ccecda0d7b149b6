// Mini-batch gather: copies the batch's rows of the positions and anchors into arrays of their
// own, so that the force shaders run on the batch as if it were the whole state.
//
// Workgroup size: 64 threads (WORKGROUP_SIZE), one workgroup per batch row k over the grid of
// common.wgsl (config.n is the batch size there).
//
// Bindings (group 0):
//   0  uniform              config           Config (common.wgsl)
//   1  storage, read        positions        array<f32>, total_n x d row-major
//   2  storage, read        anchors          array<f32>, total_n x d row-major
//   3  storage, read        rows             array<u32>, batch entries: the rows of the state
//   4  storage, read_write  batch_positions  array<f32>, batch x d row-major
//   5  storage, read_write  batch_anchors    array<f32>, batch x d row-major (written only with
//                                            has_anchors)

@group(0) @binding(1) var<storage, read> positions: array<f32>;
@group(0) @binding(2) var<storage, read> anchors: array<f32>;
@group(0) @binding(3) var<storage, read> rows: array<u32>;
@group(0) @binding(4) var<storage, read_write> batch_positions: array<f32>;
@group(0) @binding(5) var<storage, read_write> batch_anchors: array<f32>;

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) workgroup_id: vec3<u32>,
    @builtin(local_invocation_index) tid: u32,
) {
    let k_row = row_of_workgroup(workgroup_id);
    if k_row >= config.n {
        return;
    }
    let dim = config.dim;
    let state_row = rows[k_row] * dim;
    let batch_row = k_row * dim;
    for (var k = tid; k < dim; k += WORKGROUP_SIZE) {
        batch_positions[batch_row + k] = positions[state_row + k];
        if config.has_anchors != 0u {
            batch_anchors[batch_row + k] = anchors[state_row + k];
        }
    }
}
