//! Error paths of the GPU engine: each wgpu failure must come back as `Error::Gpu`, never a panic.
//! Also the 2-D dispatch grids, which only a lowered grid limit reaches at a size a software
//! adapter steps quickly.
//!
//! Tests that need an adapter are skipped without one, unless ECCENTRIC_REQUIRE_GPU is set.

use super::*;
use crate::engine::{CpuEngine, sample_start};

/// Returns whether an adapter exists; fails when none does and ECCENTRIC_REQUIRE_GPU is set.
fn gpu_present() -> bool {
    if adapter_available().is_some() {
        return true;
    }
    assert!(
        std::env::var_os("ECCENTRIC_REQUIRE_GPU").is_none(),
        "no GPU adapter found but ECCENTRIC_REQUIRE_GPU is set; install a Vulkan driver such as Mesa's lavapipe"
    );
    println!("skipped: no GPU adapter");
    false
}

fn gpu_message(result: Result<impl Sized>) -> String {
    match result {
        Err(Error::Gpu(message)) => message,
        Err(other) => panic!("expected Error::Gpu, got {other}"),
        Ok(_) => panic!("expected Error::Gpu, got Ok"),
    }
}

#[test]
fn size_message_names_what_fits() {
    let limits = wgpu::Limits { max_storage_buffer_binding_size: 128 << 20, max_buffer_size: 256 << 20, ..wgpu::Limits::default() };
    let message = gpu_message(check_size(100_000, 512, &limits));
    assert_eq!(message, "n = 100000, d = 512 needs 196 MiB per buffer but this adapter allows 128 MiB; lower n or d");
    assert!(check_size(1000, 512, &limits).is_ok());
}

#[test]
fn size_check_counts_row_sums_in_low_dimension() {
    // In d = 1 the 16-byte energy sums per row outgrow the 4-byte coordinates.
    let limits = wgpu::Limits { max_storage_buffer_binding_size: 1 << 20, ..wgpu::Limits::default() };
    assert!(check_size(1 << 16, 1, &limits).is_ok());
    assert!(check_size((1 << 16) + 1, 1, &limits).is_err());
}

#[test]
fn count_above_reduction_limit() {
    let limits = wgpu::Limits { max_storage_buffer_binding_size: 1 << 40, max_buffer_size: 1 << 40, ..wgpu::Limits::default() };
    assert!(check_size(MAX_ROWS, 1, &limits).is_ok());
    let message = gpu_message(check_size(MAX_ROWS + 1, 1, &limits));
    assert!(message.contains("8388609"), "{message}");
    assert!(message.contains("lower n"), "{message}");
}

#[test]
fn dimension_above_maximum_is_rejected() {
    let message = gpu_message(check_size(10, MAX_DIM + 1, &wgpu::Limits::default()));
    assert!(message.contains("513"), "{message}");
    assert!(message.contains("lower d"), "{message}");
}

#[test]
fn broken_shader_returns_error() {
    if !gpu_present() {
        return;
    }
    let gpu = GpuDevice::new().unwrap();
    let message = gpu_message(gpu.create_pipeline("broken", "fn main( {", "main", &[]));
    assert!(message.starts_with("compiling the broken shader failed"), "{message}");
    // A captured error must not poison the device for later work.
    assert!(gpu.check().is_ok());
}

#[test]
fn oversized_buffer_returns_error() {
    if !gpu_present() {
        return;
    }
    let gpu = GpuDevice::new().unwrap();
    let size = gpu.limits().max_buffer_size.saturating_add(4);
    let message = gpu_message(gpu.create_buffer("oversized", size, wgpu::BufferUsages::STORAGE));
    assert!(message.contains("allocating the oversized buffer"), "{message}");
}

#[test]
fn lost_device_returns_error() {
    if !gpu_present() {
        return;
    }
    let start = sample_start(InitKind::Gaussian, 16, 3, 0);
    let mut engine = GpuEngine::new(Params::default(), start).unwrap();
    engine.step().unwrap();
    engine.gpu.destroy();
    let step_message = gpu_message(engine.step().and_then(|()| engine.wait_idle()));
    assert!(step_message.contains("lost") || step_message.contains("error"), "{step_message}");
    let read_message = gpu_message(engine.positions());
    assert!(!read_message.is_empty());
}

#[test]
fn engine_can_move_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<GpuEngine>();
}

#[test]
fn two_dimensional_grids_cover_every_row() {
    if !gpu_present() {
        return;
    }
    // A lowered limit on the workgroups per dimension puts small systems on the 2-D grids that
    // most adapters need past n = 65535. d = 3 runs force_rows.wgsl on 75 blocks of 64 rows,
    // 70 x 2 with a limit of 70. d = 65 runs force.wgsl on 300 rows, 18 x 17 with a limit of 18.
    // update.wgsl runs on the row grid in both. The mini-batches take 2-D grids too.
    for (dim, n, limit, force_grid, batch_size) in [(3, 4800, 70, (70, 2), 4600), (65, 300, 18, (18, 17), 130)] {
        let start = sample_start(InitKind::Gaussian, n, dim, 5);
        let params = Params { kernel_s: -1.0, lr: 0.02, task: TaskKind::Anchors, ..Params::default() };
        let mut gpu = GpuEngine::with_grid_limit(params.clone(), start.clone(), start.clone(), false, Some(limit)).unwrap();
        assert_eq!(gpu.grids.force(dim), force_grid, "d = {dim}");

        let mut reference = Points::zeros(n, dim);
        let evaluation = crate::model::evaluate(&params.model(), crate::model::Task::Anchors(&start), &start, &mut reference);
        let force = gpu.current_force().unwrap();
        let error = force.relative_error(&reference);
        assert!(error < 1e-4, "d = {dim}: force differs by {error:e} relative");
        let energy = gpu.evaluate_energy().unwrap().total();
        let expected = evaluation.energy.total();
        assert!((energy - expected).abs() < 1e-4 * expected.abs(), "d = {dim}: energy {energy}, expected {expected}");

        // Full-batch steps, then mini-batch steps.
        let mut cpu = CpuEngine::new(params.clone(), start).unwrap();
        for batch_size in [0, batch_size] {
            let params = Params { batch_size, ..params.clone() };
            cpu.set_params(params.clone()).unwrap();
            gpu.set_params(params).unwrap();
            for _ in 0..5 {
                cpu.step().unwrap();
                gpu.step().unwrap();
            }
        }
        let error = gpu.positions().unwrap().relative_error(cpu.positions());
        assert!(error < 1e-4, "d = {dim}: positions differ by {error:e} relative");
    }
}

