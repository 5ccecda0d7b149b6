//! The GPU engine: steps a point set with wgpu compute shaders, in f32, with the same model and
//! optimizers as [`CpuEngine`](crate::engine::CpuEngine).
//!
//! Positions, force and optimizer state stay on the GPU. A step is one compute pass that reads
//! nothing back. It runs the `latch` entry point of update.wgsl, then the force kernel, then the
//! optimizer update of update.wgsl. The force kernel is force_rows.wgsl (one thread per particle)
//! for d up to 64 and force.wgsl (one workgroup per particle) above. It runs once per chunk of
//! partners (chunk.wgsl). A software adapter takes small chunks, so that lavapipe's loop limit
//! does not cut its sums short. Other adapters take chunks of 8192 partners, so that no dispatch
//! runs long enough to trip a driver's watchdog.
//!
//! A mini-batch step first saves the state (`save` in update.wgsl) and copies the batch's rows
//! out (gather.wgsl). The force kernel then runs on the batch alone, and the update moves only the
//! batch's rows. The host draws the batches from the same random stream as the CPU engine, so
//! for a seed both engines pick the same rows, except with Langevin dynamics, whose noise the CPU
//! engine draws from that stream too.
//!
//! [`GpuEngine::positions`], [`GpuEngine::current_force`] and [`GpuEngine::evaluate`] are the
//! only readbacks. The energy is reduced on the GPU (reduce.wgsl), so an evaluation reads back
//! 24 bytes.
//!
//! Supported: d from 1 to [`MAX_DIM`], full and mini-batches, every optimizer. Langevin noise comes
//! from a counter-based generator on the GPU, so it has the right distribution but is not the CPU
//! engine's random stream. Any adapter wgpu can open works, including Mesa's lavapipe on a
//! machine without a GPU. `WGPU_BACKEND` and `WGPU_POWER_PREF` choose the adapter.

mod config;
mod device;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use rand_chacha::ChaCha8Rng;

use super::cpu::{noise_rng, sample_batch};
use crate::bench::{BenchRow, step_flops};
use crate::error::{Error, Result};
use crate::model::points::norm2;
use crate::model::{EnergyParts, Evaluation, Points};
use crate::params::{InitKind, Params, TaskKind};

pub use config::MAX_DIM;
use config::{Batch, Grids, HARDWARE_CHUNK_ROWS, MAX_ROWS, NO_DIVERGENCE, Pass, ROWS_MAX_DIM, ShaderConfig, chunk_rows, grids_for};
use device::{GpuDevice, describe_adapter, max_binding_bytes, mebibytes, request_adapter};

const COMMON_WGSL: &str = include_str!("common.wgsl");
const KERNEL_WGSL: &str = include_str!("kernel.wgsl");
const FORCE_WGSL: &str = include_str!("force.wgsl");
const FORCE_ROWS_WGSL: &str = include_str!("force_rows.wgsl");
const UPDATE_WGSL: &str = include_str!("update.wgsl");
const REDUCE_WGSL: &str = include_str!("reduce.wgsl");
const CHUNK_WGSL: &str = include_str!("chunk.wgsl");
const GATHER_WGSL: &str = include_str!("gather.wgsl");

/// Environment variable that makes the engine destroy its device when it reaches the given
/// step, as a driver reset would. It lets the tests check the fallback to the CPU end to end.
pub const FAIL_AT_STEP_VARIABLE: &str = "ECCENTRIC_GPU_FAIL_AT_STEP";

/// Bytes of one f32 coordinate or one u32 row index.
const F32_BYTES: u64 = 4;
/// Bytes of one row's energy sums, a `vec4<f32>`.
const ROW_SUMS_BYTES: u64 = 16;
/// Bytes of the `Status` struct of update.wgsl: the diverged step and the stopped flag.
const STATUS_BYTES: u64 = 8;

/// GPU buffers of one engine. Every n x d array is f32, row-major.
struct Buffers {
    config: wgpu::Buffer,
    positions: wgpu::Buffer,
    /// Positions before the last step, restored after a divergence.
    previous: wgpu::Buffer,
    anchors: wgpu::Buffer,
    force: wgpu::Buffer,
    /// Heavy-ball velocity or Adam's first moment.
    first_moment: wgpu::Buffer,
    /// Adam's second moment.
    second_moment: wgpu::Buffer,
    row_sums: wgpu::Buffer,
    totals: wgpu::Buffer,
    status: wgpu::Buffer,
    /// First partner of the current force dispatch, set by chunk.wgsl.
    first_partner: wgpu::Buffer,
    /// The rows of the current mini-batch, u32.
    rows: wgpu::Buffer,
    /// Adam's step count t per row, u32.
    adam_steps: wgpu::Buffer,
}

/// Buffers and bind groups of mini-batch steps, made on the first such step and remade when a
/// larger batch needs more room.
struct BatchResources {
    /// Rows the buffers hold.
    capacity: usize,
    gather_group: wgpu::BindGroup,
    force_group: wgpu::BindGroup,
    update_group: wgpu::BindGroup,
    // The bind groups keep their buffers alive; these fields only name them.
    _positions: wgpu::Buffer,
    _anchors: wgpu::Buffer,
    _force: wgpu::Buffer,
    _row_sums: wgpu::Buffer,
}

struct Pipelines {
    /// force_rows.wgsl up to `ROWS_MAX_DIM`, force.wgsl above.
    force: wgpu::ComputePipeline,
    force_group: wgpu::BindGroup,
    first_chunk: wgpu::ComputePipeline,
    first_chunk_group: wgpu::BindGroup,
    next_chunk: wgpu::ComputePipeline,
    next_chunk_group: wgpu::BindGroup,
    update: wgpu::ComputePipeline,
    update_group: wgpu::BindGroup,
    save: wgpu::ComputePipeline,
    save_group: wgpu::BindGroup,
    gather: wgpu::ComputePipeline,
    latch: wgpu::ComputePipeline,
    latch_group: wgpu::BindGroup,
    reduce: wgpu::ComputePipeline,
    reduce_group: wgpu::BindGroup,
}

/// A simulation state on the GPU with everything needed to step it.
///
/// Positions are f32 on the GPU, so a run agrees with the CPU engine (f64) up to rounding, not
/// bit for bit.
pub struct GpuEngine {
    gpu: GpuDevice,
    params: Params,
    n: usize,
    dim: usize,
    grids: Grids,
    /// Maximum workgroups along one dimension of a dispatch.
    grid_limit: u32,
    /// Partners per force dispatch: [`chunk_rows`] on a software adapter, whose loop budget it
    /// respects, and [`HARDWARE_CHUNK_ROWS`] elsewhere.
    partner_chunk: u32,
    /// Step at which to destroy the device, from [`FAIL_AT_STEP_VARIABLE`].
    fail_at_step: Option<u64>,
    /// Applies the anchors term regardless of `params.task`; set by [`gpu_force`].
    force_anchors: bool,
    buffers: Buffers,
    pipelines: Pipelines,
    /// Steps taken; atomic because a readback that finds a divergence rewinds it through `&self`.
    step: AtomicU64,
    /// Mini-batch buffers, once a mini-batch step has run.
    batch: Option<BatchResources>,
    /// Source of the mini-batches, the same stream as the CPU engine's.
    rng: ChaCha8Rng,
    /// The last step's submission, so that at most two steps wait in the queue.
    in_flight: Option<wgpu::SubmissionIndex>,
    /// Serialises the uniform write and submission of readbacks made through `&self`.
    readback_lock: Mutex<()>,
}

/// Returns the name and backend of the adapter a [`GpuEngine`] would use, or `None` when wgpu
/// finds none.
pub fn adapter_available() -> Option<String> {
    request_adapter().ok().map(|(_instance, adapter)| describe_adapter(&adapter))
}

/// Checks that `n` particles in `dim` dimensions fit the buffer limits of the default adapter,
/// without allocating anything. [`GpuEngine::new`] runs the same check.
pub fn check_capacity(n: usize, dim: usize) -> Result<()> {
    let (_instance, adapter) = request_adapter()?;
    check_size(n, dim, &adapter.limits()).map(|_grids| ())
}

/// Returns the dispatch grids for `n` rows, or an error that states what fits.
fn check_size(n: usize, dim: usize, limits: &wgpu::Limits) -> Result<Grids> {
    if dim > MAX_DIM {
        return Err(Error::Gpu(format!(
            "d = {dim} exceeds the GPU engine's maximum of {MAX_DIM}; lower d or use the CPU engine"
        )));
    }
    if n > MAX_ROWS {
        return Err(Error::Gpu(format!(
            "n = {n} exceeds the GPU engine's maximum of {MAX_ROWS} particles; lower n or use the CPU engine"
        )));
    }
    let rows = n as u64;
    let needed = (rows * dim as u64 * F32_BYTES).max(rows * ROW_SUMS_BYTES);
    // The shaders index with u32, so no array may hold more than u32::MAX elements.
    let allowed = max_binding_bytes(limits).min(u64::from(u32::MAX) * F32_BYTES);
    if needed > allowed {
        return Err(Error::Gpu(format!(
            "n = {n}, d = {dim} needs {} MiB per buffer but this adapter allows {} MiB; lower n or d",
            mebibytes(needed),
            allowed / (1 << 20)
        )));
    }
    grids_for(n, limits.max_compute_workgroups_per_dimension).ok_or_else(|| {
        Error::Gpu(format!(
            "n = {n} needs more workgroups than this adapter dispatches ({} per dimension); lower n",
            limits.max_compute_workgroups_per_dimension
        ))
    })
}

/// Reads [`FAIL_AT_STEP_VARIABLE`]. A value that is not a step number is logged and ignored.
fn fail_at_step_from_env() -> Option<u64> {
    let value = std::env::var(FAIL_AT_STEP_VARIABLE).ok()?;
    let step = value.trim().parse().ok();
    if step.is_none() {
        tracing::warn!("invalid {FAIL_AT_STEP_VARIABLE}={value:?}: not a step number, so it is ignored");
    }
    step
}

/// Scales rows to unit length as the CPU engine does; a zero row stays at the origin.
fn project_rows_to_sphere(points: &mut Points) {
    for i in 0..points.n() {
        let row = points.row_mut(i);
        let norm = norm2(row).sqrt();
        if norm > 0.0 {
            row.iter_mut().for_each(|x| *x /= norm);
        }
    }
}

fn to_f32_bytes(points: &Points) -> Vec<u8> {
    let coords: Vec<f32> = points.as_slice().iter().map(|&x| x as f32).collect();
    bytemuck::cast_slice(&coords).to_vec()
}

fn to_points(n: usize, dim: usize, bytes: &[u8]) -> Points {
    let coords: &[f32] = bytemuck::cast_slice(bytes);
    Points::from_rows(n, dim, coords.iter().map(|&x| f64::from(x)).collect())
}

impl GpuEngine {
    /// Creates an engine on the default adapter that starts from `start`, which also becomes the
    /// anchors. `params.n` and `params.dim` are taken from `start`.
    ///
    /// Fails with [`Error::Gpu`] when no adapter exists, when the system does not fit the
    /// adapter's buffer limits, or when the device rejects a shader or an allocation.
    pub fn new(params: Params, mut start: Points) -> Result<Self> {
        if params.project_sphere {
            project_rows_to_sphere(&mut start);
        }
        let anchors = start.clone();
        Self::with_anchors(params, start, anchors, false)
    }

    /// Creates an engine at `start` as given, with separate anchors.
    fn with_anchors(params: Params, start: Points, anchors: Points, force_anchors: bool) -> Result<Self> {
        Self::with_grid_limit(params, start, anchors, force_anchors, None)
    }

    /// As [`GpuEngine::with_anchors`], with at most `grid_limit` workgroups along each dimension
    /// of a dispatch when given, below the adapter's own limit. Tests lower it to reach the 2-D
    /// grids at small n.
    fn with_grid_limit(mut params: Params, start: Points, anchors: Points, force_anchors: bool, grid_limit: Option<u32>) -> Result<Self> {
        params.n = start.n();
        params.dim = start.dim();
        params.validate()?;
        let (n, dim) = (start.n(), start.dim());

        let gpu = GpuDevice::new()?;
        let mut limits = gpu.limits();
        if let Some(grid_limit) = grid_limit {
            limits.max_compute_workgroups_per_dimension = limits.max_compute_workgroups_per_dimension.min(grid_limit);
        }
        let grids = check_size(n, dim, &limits)?;
        let buffers = create_buffers(&gpu, &start, &anchors)?;
        let pipelines = create_pipelines(&gpu, &buffers, dim)?;

        Ok(Self {
            rng: noise_rng(params.seed),
            grid_limit: limits.max_compute_workgroups_per_dimension,
            partner_chunk: if gpu.is_software() { chunk_rows(dim) } else { HARDWARE_CHUNK_ROWS },
            fail_at_step: fail_at_step_from_env(),
            gpu,
            params,
            n,
            dim,
            grids,
            force_anchors,
            buffers,
            pipelines,
            step: AtomicU64::new(0),
            batch: None,
            in_flight: None,
            readback_lock: Mutex::new(()),
        })
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Name and backend of the adapter, for example "llvmpipe (LLVM 15.0.6, 256 bits) on vulkan".
    pub fn adapter_name(&self) -> String {
        self.gpu.adapter_name()
    }

    /// Number of steps taken since the start.
    pub fn step_index(&self) -> u64 {
        self.step.load(Ordering::Relaxed)
    }

    /// Changes the parameters of the dynamics while keeping the positions.
    ///
    /// `n` and `dim` stay those of the current state. A change of optimizer clears its moments,
    /// and switching the sphere projection on projects the rows, as on the CPU.
    pub fn set_params(&mut self, mut params: Params) -> Result<()> {
        params.n = self.n;
        params.dim = self.dim;
        params.validate()?;
        self.gpu.check()?;

        let mut encoder = self.gpu.create_encoder("set params");
        if params.optimizer != self.params.optimizer {
            encoder.clear_buffer(&self.buffers.first_moment, 0, None);
            encoder.clear_buffer(&self.buffers.second_moment, 0, None);
            encoder.clear_buffer(&self.buffers.adam_steps, 0, None);
        }
        if params.seed != self.params.seed {
            self.rng = noise_rng(params.seed);
        }
        let project = params.project_sphere && !self.params.project_sphere;
        self.params = params;
        if project {
            self.write_config(Pass::Project { step: self.step_index() });
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("project"), timestamp_writes: None });
            // The latch stops the projection from overwriting the last finite state after a
            // divergence that no readback has reported yet.
            self.record_latch(&mut pass);
            self.record_update(&mut pass);
        }
        self.gpu.submit(encoder)?;
        Ok(())
    }

    /// Takes one step on the GPU without reading anything back.
    ///
    /// A step that makes a position non-finite is detected at the next readback
    /// ([`GpuEngine::positions`] or [`GpuEngine::evaluate`]), which then returns
    /// [`Error::Diverged`] and restores the last finite state. Steps submitted in between change
    /// nothing.
    pub fn step(&mut self) -> Result<()> {
        let step = self.step.load(Ordering::Relaxed);
        if self.fail_at_step == Some(step) {
            tracing::warn!(step, "destroying the GPU device because {FAIL_AT_STEP_VARIABLE} names this step");
            self.gpu.destroy();
        }
        self.gpu.check()?;
        let size = self.params.effective_batch();
        let batch = if size < self.n { Some(self.prepare_batch(size)?) } else { None };
        self.write_config(Pass::Step { step, batch });

        let mut encoder = self.gpu.create_encoder("step");
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("step"), timestamp_writes: None });
            self.record_latch(&mut pass);
            match (batch, &self.batch) {
                (Some(batch), Some(resources)) => self.record_batch_step(&mut pass, batch, resources),
                _ => {
                    self.record_whole_force(&mut pass);
                    self.record_update(&mut pass);
                }
            }
        }
        let submission = self.gpu.submit(encoder)?;

        // Wait for the step before this one, so a caller that steps in a loop keeps the GPU busy
        // without queueing unbounded work.
        if let Some(previous) = self.in_flight.replace(submission) {
            self.gpu.wait(Some(previous))?;
        }
        self.step.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Blocks until every submitted step has finished on the GPU.
    pub fn wait_idle(&self) -> Result<()> {
        self.gpu.wait(None)
    }

    /// Reads the positions back as f64.
    ///
    /// Fails with [`Error::Diverged`] when a step since the last readback made a position
    /// non-finite. The engine is then back at the last finite state, which the next call returns.
    pub fn positions(&self) -> Result<Points> {
        let _lock = self.readback_lock.lock().unwrap_or_else(PoisonError::into_inner);
        let bytes = self.n as u64 * self.dim as u64 * F32_BYTES;
        let parts = self.gpu.read_back(&[(&self.buffers.status, STATUS_BYTES), (&self.buffers.positions, bytes)])?;
        self.check_status(&parts[0])?;
        Ok(to_points(self.n, self.dim, &parts[1]))
    }

    /// Computes the force `F_i = -n dE/dz_i` at the current positions and reads it back.
    pub fn current_force(&self) -> Result<Points> {
        let _lock = self.readback_lock.lock().unwrap_or_else(PoisonError::into_inner);
        self.write_config(Pass::Force);
        let mut encoder = self.gpu.create_encoder("force");
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("force"), timestamp_writes: None });
            self.record_whole_force(&mut pass);
        }
        self.gpu.submit(encoder)?;
        let bytes = self.n as u64 * self.dim as u64 * F32_BYTES;
        let parts = self.gpu.read_back(&[(&self.buffers.status, STATUS_BYTES), (&self.buffers.force, bytes)])?;
        self.check_status(&parts[0])?;
        Ok(to_points(self.n, self.dim, &parts[1]))
    }

    /// Evaluates the energy parts and both sides of the virial identity on the GPU, reading back
    /// four f32 sums. Fails with [`Error::Diverged`] as [`GpuEngine::positions`] does.
    pub fn evaluate(&self) -> Result<Evaluation> {
        let _lock = self.readback_lock.lock().unwrap_or_else(PoisonError::into_inner);
        self.write_config(Pass::Energy);
        let mut encoder = self.gpu.create_encoder("energy");
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("energy"), timestamp_writes: None });
            self.record_whole_force(&mut pass);
            pass.set_pipeline(&self.pipelines.reduce);
            pass.set_bind_group(0, &self.pipelines.reduce_group, &[]);
            pass.dispatch_workgroups(1, 1, 1);
        }
        self.gpu.submit(encoder)?;
        let parts = self.gpu.read_back(&[(&self.buffers.status, STATUS_BYTES), (&self.buffers.totals, ROW_SUMS_BYTES)])?;
        self.check_status(&parts[0])?;

        let totals: &[f32] = bytemuck::cast_slice(&parts[1]);
        let [norm2_sum, kernel_sum, virial_sum, task_sum] = [totals[0], totals[1], totals[2], totals[3]].map(f64::from);
        let model = self.params.model();
        let n = self.n as f64;
        let pair_norm = 1.0 / (n * (n - 1.0));
        Ok(Evaluation {
            energy: EnergyParts {
                attraction: model.gamma * model.lambda / (2.0 * n) * norm2_sum,
                repulsion: model.gamma * pair_norm * kernel_sum,
                task: task_sum / (2.0 * n),
            },
            virial_attraction: model.lambda / n * norm2_sum,
            virial_repulsion: pair_norm * virial_sum,
        })
    }

    /// Evaluates the energy parts on the GPU; see [`GpuEngine::evaluate`].
    pub fn evaluate_energy(&self) -> Result<EnergyParts> {
        self.evaluate().map(|evaluation| evaluation.energy)
    }

    /// Returns whether the anchors task term applies, with the same rule as the CPU engine.
    fn has_anchors(&self) -> bool {
        self.force_anchors || (self.params.task == TaskKind::Anchors && !self.params.project_sphere)
    }

    fn write_config(&self, pass: Pass) {
        let config = ShaderConfig::new(&self.params, self.n, self.dim, self.grids, self.has_anchors(), self.partner_chunk, pass);
        self.gpu.queue.write_buffer(&self.buffers.config, 0, bytemuck::bytes_of(&config));
    }

    fn record_latch(&self, pass: &mut wgpu::ComputePass<'_>) {
        pass.set_pipeline(&self.pipelines.latch);
        pass.set_bind_group(0, &self.pipelines.latch_group, &[]);
        pass.dispatch_workgroups(1, 1, 1);
    }

    /// Draws the next mini-batch of `size` rows, uploads it and makes sure the batch buffers
    /// hold it.
    fn prepare_batch(&mut self, size: usize) -> Result<Batch> {
        let rows: Vec<u32> = sample_batch(&mut self.rng, self.n, size).into_iter().map(|row| row as u32).collect();
        if self.batch.as_ref().is_none_or(|resources| resources.capacity < size) {
            // Drop the old buffers before allocating larger ones.
            self.batch = None;
            self.batch = Some(create_batch_resources(&self.gpu, &self.buffers, &self.pipelines, size, self.dim)?);
        }
        self.gpu.queue.write_buffer(&self.buffers.rows, 0, bytemuck::cast_slice(&rows));
        let grids = grids_for(size, self.grid_limit)
            .expect("a batch is smaller than the state, whose grids fit");
        Ok(Batch { size, grids })
    }

    /// Records a mini-batch step after the latch: save, gather, force over the batch, update.
    fn record_batch_step(&self, pass: &mut wgpu::ComputePass<'_>, batch: Batch, resources: &BatchResources) {
        let p = &self.pipelines;
        pass.set_pipeline(&p.save);
        pass.set_bind_group(0, &p.save_group, &[]);
        pass.dispatch_workgroups(self.grids.rows.0, self.grids.rows.1, 1);

        let (x, y) = batch.grids.rows;
        pass.set_pipeline(&p.gather);
        pass.set_bind_group(0, &resources.gather_group, &[]);
        pass.dispatch_workgroups(x, y, 1);

        self.record_force(pass, &resources.force_group, batch.size, batch.grids.force(self.dim));

        pass.set_pipeline(&p.update);
        pass.set_bind_group(0, &resources.update_group, &[]);
        pass.dispatch_workgroups(x, y, 1);
    }

    /// Records the force over the whole state.
    fn record_whole_force(&self, pass: &mut wgpu::ComputePass<'_>) {
        self.record_force(pass, &self.pipelines.force_group, self.n, self.grids.force(self.dim));
    }

    /// Records the force kernel over `rows` rows bound by `group`, one dispatch per chunk of
    /// partners, on a grid of `grid` workgroups.
    fn record_force(&self, pass: &mut wgpu::ComputePass<'_>, group: &wgpu::BindGroup, rows: usize, grid: (u32, u32)) {
        let p = &self.pipelines;
        let chunks = rows.div_ceil(self.partner_chunk as usize).max(1);
        for chunk in 0..chunks {
            let (pipeline, chunk_group) = if chunk == 0 { (&p.first_chunk, &p.first_chunk_group) } else { (&p.next_chunk, &p.next_chunk_group) };
            pass.set_pipeline(pipeline);
            pass.set_bind_group(0, chunk_group, &[]);
            pass.dispatch_workgroups(1, 1, 1);
            pass.set_pipeline(&p.force);
            pass.set_bind_group(0, group, &[]);
            pass.dispatch_workgroups(grid.0, grid.1, 1);
        }
    }

    fn record_update(&self, pass: &mut wgpu::ComputePass<'_>) {
        pass.set_pipeline(&self.pipelines.update);
        pass.set_bind_group(0, &self.pipelines.update_group, &[]);
        let (x, y) = self.grids.rows;
        pass.dispatch_workgroups(x, y, 1);
    }

    /// Returns [`Error::Diverged`] when `status` records a divergence, after restoring the
    /// positions from before that step and clearing the record.
    fn check_status(&self, status: &[u8]) -> Result<()> {
        let words: &[u32] = bytemuck::cast_slice(status);
        let diverged_step = words[0];
        if diverged_step == NO_DIVERGENCE {
            return Ok(());
        }
        let mut encoder = self.gpu.create_encoder("restore");
        let bytes = self.n as u64 * self.dim as u64 * F32_BYTES;
        encoder.copy_buffer_to_buffer(&self.buffers.previous, 0, &self.buffers.positions, 0, bytes);
        self.gpu.queue.write_buffer(&self.buffers.status, 0, bytemuck::cast_slice(&[NO_DIVERGENCE, 0]));
        let submission = self.gpu.submit(encoder)?;
        self.gpu.wait(Some(submission))?;
        self.step.store(u64::from(diverged_step), Ordering::Relaxed);
        Err(Error::Diverged { step: u64::from(diverged_step), what: "a particle position" })
    }
}

fn create_buffers(gpu: &GpuDevice, start: &Points, anchors: &Points) -> Result<Buffers> {
    use wgpu::BufferUsages as Usage;
    let n = start.n() as u64;
    let coords_bytes = n * start.dim() as u64 * F32_BYTES;
    let storage = Usage::STORAGE | Usage::COPY_SRC | Usage::COPY_DST;

    let buffers = Buffers {
        config: gpu.create_buffer("config", std::mem::size_of::<ShaderConfig>() as u64, Usage::UNIFORM | Usage::COPY_DST)?,
        positions: gpu.create_buffer("positions", coords_bytes, storage)?,
        previous: gpu.create_buffer("previous positions", coords_bytes, storage)?,
        anchors: gpu.create_buffer("anchors", coords_bytes, storage)?,
        force: gpu.create_buffer("force", coords_bytes, storage)?,
        first_moment: gpu.create_buffer("first moment", coords_bytes, storage)?,
        second_moment: gpu.create_buffer("second moment", coords_bytes, storage)?,
        row_sums: gpu.create_buffer("row sums", n * ROW_SUMS_BYTES, storage)?,
        totals: gpu.create_buffer("energy totals", ROW_SUMS_BYTES, storage)?,
        status: gpu.create_buffer("status", STATUS_BYTES, storage)?,
        first_partner: gpu.create_buffer("first partner", F32_BYTES, storage)?,
        rows: gpu.create_buffer("mini-batch rows", n * F32_BYTES, storage)?,
        adam_steps: gpu.create_buffer("Adam step counts", n * F32_BYTES, storage)?,
    };
    let positions = to_f32_bytes(start);
    gpu.queue.write_buffer(&buffers.positions, 0, &positions);
    gpu.queue.write_buffer(&buffers.previous, 0, &positions);
    gpu.queue.write_buffer(&buffers.anchors, 0, &to_f32_bytes(anchors));
    gpu.queue.write_buffer(&buffers.status, 0, bytemuck::cast_slice(&[NO_DIVERGENCE, 0]));
    // New buffers are zero-filled, which is the optimizer's initial state.
    gpu.check()?;
    Ok(buffers)
}

/// Allocates the buffers of mini-batches of up to `capacity` rows and binds them.
fn create_batch_resources(gpu: &GpuDevice, buffers: &Buffers, pipelines: &Pipelines, capacity: usize, dim: usize) -> Result<BatchResources> {
    use wgpu::BufferUsages as Usage;
    let storage = Usage::STORAGE | Usage::COPY_SRC | Usage::COPY_DST;
    let coords_bytes = capacity as u64 * dim as u64 * F32_BYTES;
    let positions = gpu.create_buffer("mini-batch positions", coords_bytes, storage)?;
    let anchors = gpu.create_buffer("mini-batch anchors", coords_bytes, storage)?;
    let force = gpu.create_buffer("mini-batch force", coords_bytes, storage)?;
    let row_sums = gpu.create_buffer("mini-batch row sums", capacity as u64 * ROW_SUMS_BYTES, storage)?;

    let (b, p) = (buffers, pipelines);
    let gather_group =
        gpu.create_bind_group("gather", &p.gather, &[], &[&b.config, &b.positions, &b.anchors, &b.rows, &positions, &anchors])?;
    let force_group =
        gpu.create_bind_group("mini-batch force", &p.force, &[], &[&b.config, &positions, &anchors, &force, &row_sums, &b.first_partner])?;
    let update_group = gpu.create_bind_group(
        "mini-batch update",
        &p.update,
        &[],
        &[&b.config, &b.positions, &b.previous, &force, &b.first_moment, &b.second_moment, &b.status, &b.rows, &b.adam_steps],
    )?;
    Ok(BatchResources {
        capacity,
        gather_group,
        force_group,
        update_group,
        _positions: positions,
        _anchors: anchors,
        _force: force,
        _row_sums: row_sums,
    })
}

fn create_pipelines(gpu: &GpuDevice, buffers: &Buffers, dim: usize) -> Result<Pipelines> {
    let force = if dim <= ROWS_MAX_DIM {
        let source = format!("{COMMON_WGSL}\n{KERNEL_WGSL}\n{FORCE_ROWS_WGSL}");
        gpu.create_pipeline("force (one thread per row)", &source, "main", &[("DIM", dim as f64)])?
    } else {
        let source = format!("{COMMON_WGSL}\n{KERNEL_WGSL}\n{FORCE_WGSL}");
        gpu.create_pipeline("force", &source, "main", &[])?
    };
    let update_source = format!("{COMMON_WGSL}\n{UPDATE_WGSL}");
    let update = gpu.create_pipeline("update", &update_source, "main", &[])?;
    let latch = gpu.create_pipeline("update (latch)", &update_source, "latch", &[])?;
    let save = gpu.create_pipeline("update (save)", &update_source, "save", &[])?;
    let gather = gpu.create_pipeline("gather", &format!("{COMMON_WGSL}\n{GATHER_WGSL}"), "main", &[])?;
    let reduce = gpu.create_pipeline("reduce", &format!("{COMMON_WGSL}\n{REDUCE_WGSL}"), "main", &[])?;
    let chunk_source = format!("{COMMON_WGSL}\n{CHUNK_WGSL}");
    let first_chunk = gpu.create_pipeline("first chunk", &chunk_source, "first_chunk", &[])?;
    let next_chunk = gpu.create_pipeline("next chunk", &chunk_source, "next_chunk", &[])?;

    let b = buffers;
    let force_group =
        gpu.create_bind_group("force", &force, &[], &[&b.config, &b.positions, &b.anchors, &b.force, &b.row_sums, &b.first_partner])?;
    let update_group = gpu.create_bind_group(
        "update",
        &update,
        &[],
        &[&b.config, &b.positions, &b.previous, &b.force, &b.first_moment, &b.second_moment, &b.status, &b.rows, &b.adam_steps],
    )?;
    let save_group = gpu.create_bind_group("update (save)", &save, &[0, 1, 2, 6], &[&b.config, &b.positions, &b.previous, &b.status])?;
    let latch_group = gpu.create_bind_group("update (latch)", &latch, &[6], &[&b.status])?;
    let reduce_group = gpu.create_bind_group("reduce", &reduce, &[], &[&b.config, &b.row_sums, &b.totals])?;
    let first_chunk_group = gpu.create_bind_group("first chunk", &first_chunk, &[1], &[&b.first_partner])?;
    let next_chunk_group = gpu.create_bind_group("next chunk", &next_chunk, &[], &[&b.config, &b.first_partner])?;

    Ok(Pipelines {
        force,
        force_group,
        first_chunk,
        first_chunk_group,
        next_chunk,
        next_chunk_group,
        update,
        update_group,
        save,
        save_group,
        gather,
        latch,
        latch_group,
        reduce,
        reduce_group,
    })
}

/// Computes the force `F_i = -n dE/dz_i` once on the GPU, for comparison with
/// [`crate::model::evaluate`].
///
/// `params` supplies the model through [`Params::model`]. The task term is the anchors term when
/// `anchors` is given and none otherwise, regardless of `params.task`, as with
/// [`crate::model::Task`].
pub fn gpu_force(params: &Params, points: &Points, anchors: Option<&Points>) -> Result<Points> {
    let params = Params { batch_size: 0, ..params.clone() };
    let engine = match anchors {
        Some(anchors) => {
            if (anchors.n(), anchors.dim()) != (points.n(), points.dim()) {
                return Err(Error::param(
                    "anchors shape",
                    format!("{} x {}", anchors.n(), anchors.dim()),
                    format!("must match the points, {} x {}", points.n(), points.dim()),
                ));
            }
            GpuEngine::with_anchors(params, points.clone(), anchors.clone(), true)?
        }
        None => {
            let params = Params { task: TaskKind::None, ..params };
            GpuEngine::new(params, points.clone())?
        }
    };
    engine.current_force()
}

/// Times gradient-descent steps of `n` Gaussian particles in `d` dimensions on the GPU: one
/// warm-up step, then steps until `budget` has passed (at least one), counting the time until the
/// GPU has finished them.
///
/// The row has implementation name "gpu" and `threads` 0, because the CPU thread count does not
/// apply. GFLOP/s use the nominal count of [`step_flops`].
pub fn bench_gpu(n: usize, d: usize, kernel_s: f64, budget: Duration) -> Result<BenchRow> {
    let params = Params { kernel_s, lr: 0.01, ..Params::default() };
    let mut engine = GpuEngine::new(params, crate::engine::sample_start(InitKind::Gaussian, n, d, 0))?;
    engine.step()?;
    engine.wait_idle()?;

    let started = Instant::now();
    let mut steps = 0u64;
    while steps == 0 || started.elapsed() < budget {
        engine.step()?;
        steps += 1;
    }
    engine.wait_idle()?;
    let steps_per_second = steps as f64 / started.elapsed().as_secs_f64();
    Ok(BenchRow {
        implementation: "gpu".to_string(),
        n,
        d,
        threads: 0,
        steps_per_second,
        pair_interactions_per_second: steps_per_second * (n * (n - 1) / 2) as f64,
        gflops: steps_per_second * step_flops(n, d) / 1e9,
    })
}

#[cfg(test)]
mod tests;
