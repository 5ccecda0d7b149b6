// Optimizer step: moves rows along the force kernel's output, then optionally scales each row
// back to unit length, and records the first step at which a position stops being finite.
//
// Entry points:
//   `main`   workgroup size 64 (WORKGROUP_SIZE), one workgroup per row of the force over the grid
//            of common.wgsl; thread t owns coordinates t, t + 64, ... of its row. Row k of the
//            force moves row k of the state, or row rows[k] in a mini-batch step.
//   `latch`  workgroup size 1, one workgroup; copies "has diverged" into `status.stopped` before
//            `main` runs, so every workgroup of one step sees the same value.
//   `save`   workgroup size 64, one workgroup per row of the whole state (config.total_n rows,
//            config.total_grid_x wide); copies positions into `previous`. A mini-batch step runs
//            it first, because `main` then saves only the rows it moves.
//
// Bindings (group 0):
//   0  uniform              config         Config (common.wgsl)
//   1  storage, read_write  positions      array<f32>, n x d row-major
//   2  storage, read_write  previous       array<f32>, n x d row-major: positions before the step
//   3  storage, read        force          array<f32>, n x d row-major (batch x d in a mini-batch)
//   4  storage, read_write  first_moment   array<f32>, n x d: momentum velocity or Adam's m
//   5  storage, read_write  second_moment  array<f32>, n x d: Adam's v
//   6  storage, read_write  status         Status
//   7  storage, read        rows           array<u32>: the mini-batch's rows (read when batched)
//   8  storage, read_write  adam_steps     array<u32>, n: Adam's step count t per row
//
// Once a step has produced a non-finite position, later dispatches of `main` and `save` that
// follow a `latch` leave `positions` and `previous` untouched, so `previous` keeps the last
// finite state for the host to restore.
//
// Update rules (F the force, matching src/engine/optim.rs):
//   gd        z += lr F
//   momentum  v = momentum v + F, z += lr v
//   Adam      g = -F, m = beta1 m + (1 - beta1) g, v = beta2 v + (1 - beta2) g^2,
//             z -= lr (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + adam_eps), with the row's
//             own t, so that rows outside earlier mini-batches keep the right bias correction
//   Langevin  z += lr F + noise_scale N(0, 1), with counter-based noise (not the CPU's stream)

struct Status {
    // First step that produced a non-finite position, or NO_DIVERGENCE.
    diverged_step: atomic<u32>,
    // 1 when an earlier step diverged, copied from `diverged_step` by `latch`.
    stopped: u32,
}

@group(0) @binding(1) var<storage, read_write> positions: array<f32>;
@group(0) @binding(2) var<storage, read_write> previous: array<f32>;
@group(0) @binding(3) var<storage, read> force: array<f32>;
@group(0) @binding(4) var<storage, read_write> first_moment: array<f32>;
@group(0) @binding(5) var<storage, read_write> second_moment: array<f32>;
@group(0) @binding(6) var<storage, read_write> status: Status;
@group(0) @binding(7) var<storage, read> rows: array<u32>;
@group(0) @binding(8) var<storage, read_write> adam_steps: array<u32>;

var<workgroup> stopped_flag: u32;
var<workgroup> adam_t: u32;
var<workgroup> norm2_parts: array<f32, WORKGROUP_SIZE>;

// PCG hash (O'Neill's permuted congruential generator, output function RXS-M-XS).
fn pcg_hash(value: u32) -> u32 {
    let state = value * 747796405u + 2891336453u;
    let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
    return (word >> 22u) ^ word;
}

// Returns a standard normal sample for coordinate `index` of this step, by Box-Muller on two
// hashed uniforms.
fn standard_normal(index: u32) -> f32 {
    let stream = pcg_hash(config.seed ^ pcg_hash(config.step));
    let a = pcg_hash(index ^ stream);
    let b = pcg_hash(a ^ 0x9e3779b9u);
    // u1 is in (0, 1] so that log(u1) is finite; both have 24 random bits.
    let u1 = (f32(a >> 8u) + 1.0) / 16777216.0;
    let u2 = f32(b >> 8u) / 16777216.0;
    return sqrt(-2.0 * log(u1)) * cos(6.2831853 * u2);
}

@compute @workgroup_size(1)
fn latch() {
    status.stopped = select(0u, 1u, atomicLoad(&status.diverged_step) != NO_DIVERGENCE);
}

@compute @workgroup_size(64)
fn save(
    @builtin(workgroup_id) workgroup_id: vec3<u32>,
    @builtin(local_invocation_index) tid: u32,
) {
    let i = workgroup_id.y * config.total_grid_x + workgroup_id.x;
    if i >= config.total_n || status.stopped != 0u {
        return;
    }
    for (var k = tid; k < config.dim; k += WORKGROUP_SIZE) {
        previous[i * config.dim + k] = positions[i * config.dim + k];
    }
}

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) workgroup_id: vec3<u32>,
    @builtin(local_invocation_index) tid: u32,
) {
    let k_row = row_of_workgroup(workgroup_id);
    if k_row >= config.n {
        return;
    }
    var i = k_row;
    if config.batched != 0u {
        i = rows[k_row];
    }
    if tid == 0u {
        stopped_flag = status.stopped;
        if stopped_flag == 0u && config.optimizer == 2u {
            adam_t = adam_steps[i] + 1u;
            adam_steps[i] = adam_t;
        }
    }
    if workgroupUniformLoad(&stopped_flag) != 0u {
        return;
    }
    let dim = config.dim;
    let row = i * dim;
    let force_row = k_row * dim;
    var updated: array<f32, COORDS_PER_THREAD>;
    var norm2_part = 0.0;
    for (var m = 0u; m < COORDS_PER_THREAD; m++) {
        let k = tid + m * WORKGROUP_SIZE;
        if k >= dim {
            break;
        }
        let index = row + k;
        let z = positions[index];
        let f = force[force_row + k];
        previous[index] = z;
        var next = z;
        switch config.optimizer {
            case 0u: {
                next = z + config.lr * f;
            }
            case 1u: {
                let velocity = config.momentum * first_moment[index] + f;
                first_moment[index] = velocity;
                next = z + config.lr * velocity;
            }
            case 2u: {
                let grad = -f;
                let first = config.beta1 * first_moment[index] + (1.0 - config.beta1) * grad;
                let second = config.beta2 * second_moment[index] + (1.0 - config.beta2) * grad * grad;
                first_moment[index] = first;
                second_moment[index] = second;
                // adam_t is written only for Adam, so it is read only here.
                let t = f32(adam_t);
                let m_hat = first / (1.0 - pow(config.beta1, t));
                let v_hat = second / (1.0 - pow(config.beta2, t));
                next = z - config.lr * m_hat / (sqrt(v_hat) + config.adam_eps);
            }
            case 3u: {
                next = z + config.lr * f + config.noise_scale * standard_normal(index);
            }
            default: {}
        }
        updated[m] = next;
        norm2_part += next * next;
    }

    var finite = true;
    var scale = 1.0;
    if config.project_sphere != 0u {
        norm2_parts[tid] = norm2_part;
        workgroupBarrier();
        for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride /= 2u) {
            if tid < stride {
                norm2_parts[tid] += norm2_parts[tid + stride];
            }
            workgroupBarrier();
        }
        // A zero row has no direction and stays at the origin, as on the CPU.
        // An overflowing norm would scale the row to zero and hide the divergence.
        let norm = sqrt(norm2_parts[0]);
        finite = is_finite(norm);
        if norm > 0.0 {
            scale = 1.0 / norm;
        }
    }

    for (var m = 0u; m < COORDS_PER_THREAD; m++) {
        let k = tid + m * WORKGROUP_SIZE;
        if k >= dim {
            break;
        }
        let value = updated[m] * scale;
        positions[row + k] = value;
        finite = finite && is_finite(updated[m]) && is_finite(value);
    }
    if !finite {
        atomicMin(&status.diverged_step, config.step);
    }
}
