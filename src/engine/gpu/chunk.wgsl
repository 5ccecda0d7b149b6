// Partner chunks of the force shaders: sets the first partner of the next force dispatch.
//
// lavapipe (llvmpipe) counts the loop iterations of a shader invocation across all its loops and
// leaves every loop once 65535 have run, which silently truncates the pair sums. The host
// therefore splits the partners into chunks of `config.chunk_rows` and runs one force dispatch
// per chunk, preceded by `first_chunk` or `next_chunk`.
//
// Entry points, workgroup size 1, one workgroup each:
//   `first_chunk`  sets first_partner to 0
//   `next_chunk`   advances first_partner by config.chunk_rows
//
// Bindings (group 0):
//   0  uniform              config         Config (common.wgsl)
//   1  storage, read_write  first_partner  u32

@group(0) @binding(1) var<storage, read_write> first_partner: u32;

@compute @workgroup_size(1)
fn first_chunk() {
    first_partner = 0u;
}

@compute @workgroup_size(1)
fn next_chunk() {
    first_partner += config.chunk_rows;
}
