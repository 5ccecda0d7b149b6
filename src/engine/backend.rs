//! The choice between the CPU and the GPU engine, and one type that runs either.

use serde::{Deserialize, Serialize};

use super::CpuEngine;
use super::gpu::{GpuEngine, adapter_available};
use crate::error::Result;
use crate::model::{Evaluation, Points};
use crate::params::Params;

/// Engine that steps the simulation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// The rayon engine on the CPU.
    Cpu,
    /// wgpu compute shaders; an error where no GPU adapter exists.
    Gpu,
    /// The GPU when a hardware adapter exists, else the CPU with a notice. A software adapter
    /// (Mesa's lavapipe, which runs shaders on the CPU) does not count, because the CPU engine
    /// is faster than it.
    #[default]
    Auto,
}

/// Returns the hardware adapter's name, or why there is none usable by `Auto`.
fn hardware_adapter() -> std::result::Result<String, String> {
    let Some(name) = adapter_available() else { return Err("no GPU adapter found".into()) };
    let mut descriptor = wgpu::InstanceDescriptor::new_without_display_handle();
    descriptor.backends = wgpu::Backends::PRIMARY;
    let instance = wgpu::Instance::new(descriptor.with_env());
    let options = wgpu::RequestAdapterOptions {
        power_preference: wgpu::PowerPreference::from_env().unwrap_or(wgpu::PowerPreference::HighPerformance),
        force_fallback_adapter: false,
        compatible_surface: None,
    };
    match pollster::block_on(instance.request_adapter(&options)) {
        Ok(adapter) if adapter.get_info().device_type == wgpu::DeviceType::Cpu => {
            Err(format!("the only GPU adapter, {name}, is a software renderer"))
        }
        Ok(_) => Ok(name),
        Err(error) => Err(format!("no GPU adapter found ({error})")),
    }
}

/// A running engine of either kind.
pub enum Engine {
    Cpu(CpuEngine),
    Gpu {
        engine: Box<GpuEngine>,
        /// The starting points, the anchors of the task term, kept for the readouts.
        anchors: Points,
    },
}

impl Engine {
    /// Creates the engine `choice` asks for. Returns a notice to show the user when `Auto`
    /// falls back to the CPU.
    pub fn create(choice: BackendChoice, params: Params, start: Points) -> Result<(Self, Option<String>)> {
        match choice {
            BackendChoice::Cpu => Ok((Engine::Cpu(CpuEngine::new(params, start)?), None)),
            BackendChoice::Gpu => Ok((Self::gpu(params, start)?, None)),
            BackendChoice::Auto => {
                if let Err(reason) = hardware_adapter() {
                    let notice = format!("{reason}; using the CPU engine");
                    return Ok((Engine::Cpu(CpuEngine::new(params, start)?), Some(notice)));
                }
                match Self::gpu(params.clone(), start.clone()) {
                    Ok(engine) => Ok((engine, None)),
                    Err(error) => {
                        let notice = format!("{error}; using the CPU engine");
                        Ok((Engine::Cpu(CpuEngine::new(params, start)?), Some(notice)))
                    }
                }
            }
        }
    }

    fn gpu(params: Params, start: Points) -> Result<Self> {
        let mut anchors = start.clone();
        let engine = GpuEngine::new(params, start)?;
        if engine.params().project_sphere {
            anchors = engine.positions()?;
        }
        Ok(Engine::Gpu { engine: Box::new(engine), anchors })
    }

    /// `cpu`, or `gpu` with the adapter's name.
    pub fn describe(&self) -> String {
        match self {
            Engine::Cpu(_) => format!("cpu (rayon, {} threads)", rayon::current_num_threads()),
            Engine::Gpu { engine, .. } => format!("gpu ({})", engine.adapter_name()),
        }
    }

    /// `cpu` or `gpu`, as recorded in `run.json`.
    pub fn kind(&self) -> &'static str {
        match self {
            Engine::Cpu(_) => "cpu",
            Engine::Gpu { .. } => "gpu",
        }
    }

    pub fn step(&mut self) -> Result<()> {
        match self {
            Engine::Cpu(engine) => engine.step(),
            Engine::Gpu { engine, .. } => engine.step(),
        }
    }

    pub fn step_index(&self) -> u64 {
        match self {
            Engine::Cpu(engine) => engine.step_index(),
            Engine::Gpu { engine, .. } => engine.step_index(),
        }
    }

    pub fn params(&self) -> &Params {
        match self {
            Engine::Cpu(engine) => engine.params(),
            Engine::Gpu { engine, .. } => engine.params(),
        }
    }

    /// Changes the parameters of the dynamics while keeping the positions.
    pub fn set_params(&mut self, params: Params) -> Result<()> {
        match self {
            Engine::Cpu(engine) => engine.set_params(params),
            Engine::Gpu { engine, .. } => engine.set_params(params),
        }
    }

    /// Copies the positions to the host (a readback on the GPU).
    pub fn positions(&self) -> Result<Points> {
        match self {
            Engine::Cpu(engine) => Ok(engine.positions().clone()),
            Engine::Gpu { engine, .. } => engine.positions(),
        }
    }

    pub fn anchors(&self) -> &Points {
        match self {
            Engine::Cpu(engine) => engine.anchors(),
            Engine::Gpu { anchors, .. } => anchors,
        }
    }

    /// Energy parts and virial sums of the whole state (reduced on the GPU there).
    pub fn evaluate(&self) -> Result<Evaluation> {
        match self {
            Engine::Cpu(engine) => Ok(engine.evaluate()),
            Engine::Gpu { engine, .. } => engine.evaluate(),
        }
    }

    /// Replaces a failed GPU engine by a CPU engine that continues from `positions`, the state
    /// at step `step`, keeping the anchors. The optimizer's moments and the random stream start
    /// afresh, since a failed device cannot hand them over.
    pub fn fall_back_to_cpu(&mut self, positions: Points, step: u64) -> Result<()> {
        let (params, anchors) = (self.params().clone(), self.anchors().clone());
        let mut engine = CpuEngine::resume(params, positions, anchors, step)?;
        engine.set_force_path(super::ForcePath::Auto);
        *self = Engine::Cpu(engine);
        Ok(())
    }
}
