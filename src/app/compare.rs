//! The comparison view: a second simulation from the same start and seed, with one parameter
//! changed, stepped beside the first.

use bevy::prelude::*;

use super::bridge::{Command, EngineBridge, Source};
use crate::params::{OptimizerKind, Params};

/// The one parameter that differs in the second simulation, with its value there.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Variation {
    Gamma(f64),
    Lambda(f64),
    KernelS(f64),
    /// The explicit-projection baseline on the right, the eccentric run on the left.
    Projection,
    Optimizer(OptimizerKind),
}

impl Variation {
    pub const CHOICES: [Variation; 5] = [
        Variation::Gamma(10.0),
        Variation::Projection,
        Variation::KernelS(1.0),
        Variation::Lambda(4.0),
        Variation::Optimizer(OptimizerKind::Adam),
    ];

    pub fn name(&self) -> &'static str {
        match self {
            Variation::Gamma(_) => "scaling factor γ",
            Variation::Lambda(_) => "attraction λ",
            Variation::KernelS(_) => "kernel s",
            Variation::Projection => "explicit projection",
            Variation::Optimizer(_) => "optimizer",
        }
    }

    /// Parses `projection`, `gamma=X`, `lambda=X`, `s=X` or `optimizer=NAME` (the `--compare` flag).
    pub fn parse(text: &str) -> crate::Result<Self> {
        let invalid = || {
            crate::Error::param("--compare", text, "must be projection, gamma=X, lambda=X, s=X or optimizer=gd|momentum|adam|langevin")
        };
        if text == "projection" {
            return Ok(Variation::Projection);
        }
        let (name, value) = text.split_once('=').ok_or_else(invalid)?;
        let number = || value.parse::<f64>().ok().filter(|x| x.is_finite()).ok_or_else(invalid);
        match name {
            "gamma" => {
                let gamma = number()?;
                if gamma < 0.0 {
                    return Err(crate::Error::param("--compare gamma", gamma, "must be 0 or greater"));
                }
                Ok(Variation::Gamma(gamma))
            }
            "lambda" => {
                let lambda = number()?;
                if lambda <= 0.0 {
                    return Err(crate::Error::param("--compare lambda", lambda, "must be greater than 0"));
                }
                Ok(Variation::Lambda(lambda))
            }
            "s" => Ok(Variation::KernelS(number()?)),
            "optimizer" => {
                let optimizer = <OptimizerKind as clap::ValueEnum>::from_str(value, true).map_err(|_| invalid())?;
                Ok(Variation::Optimizer(optimizer))
            }
            _ => Err(invalid()),
        }
    }

    pub fn same_kind(&self, other: &Variation) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }

    /// Returns `params` with this variation applied.
    pub fn apply(&self, params: &Params) -> Params {
        let mut changed = params.clone();
        match *self {
            Variation::Gamma(gamma) => changed.gamma = gamma,
            Variation::Lambda(lambda) => changed.lambda = lambda,
            Variation::KernelS(s) => changed.kernel_s = s,
            Variation::Projection => changed.project_sphere = !params.project_sphere,
            Variation::Optimizer(optimizer) => changed.optimizer = optimizer,
        }
        changed
    }

    /// Short description of the right-hand simulation, for labels.
    pub fn describe(&self, params: &Params) -> String {
        match *self {
            Variation::Gamma(gamma) => format!("γ = {gamma:.3} (left {:.3})", params.gamma),
            Variation::Lambda(lambda) => format!("λ = {lambda:.3} (left {:.3})", params.lambda),
            Variation::KernelS(s) => format!("s = {s:.2} (left {:.2})", params.kernel_s),
            Variation::Projection if params.project_sphere => "eccentric (left: explicit projection)".into(),
            Variation::Projection => "explicit projection (left: eccentric)".into(),
            Variation::Optimizer(optimizer) => format!("{optimizer:?} (left {:?})", params.optimizer).to_lowercase(),
        }
    }
}

/// The second simulation, when the comparison view is on.
#[derive(Resource)]
pub struct Comparison {
    pub bridge: Option<EngineBridge>,
    pub variation: Variation,
    /// Backend of the second simulation, the same as the first's.
    pub backend: crate::engine::BackendChoice,
    /// Parameters last sent to the second engine.
    sent: Option<Params>,
}

impl Default for Comparison {
    fn default() -> Self {
        Self { bridge: None, variation: Variation::CHOICES[0], backend: crate::engine::BackendChoice::Cpu, sent: None }
    }
}

impl Comparison {
    pub fn is_on(&self) -> bool {
        self.bridge.is_some()
    }

    /// Starts the second simulation from `source` with the varied `params`.
    pub fn start(&mut self, params: &Params, source: &Source, steps_per_frame: u32) {
        let varied = self.variation.apply(params);
        info!(variation = ?self.variation, "comparison started");
        self.bridge = Some(EngineBridge::spawn(varied.clone(), source.clone(), steps_per_frame, self.backend));
        self.sent = Some(varied);
    }

    /// Stops the second simulation; its thread ends when the bridge is dropped.
    pub fn stop(&mut self) {
        if self.bridge.take().is_some() {
            info!("comparison stopped");
        }
        self.sent = None;
    }

    /// Forwards a command that concerns both simulations.
    pub fn send(&self, command: Command) {
        if let Some(bridge) = &self.bridge {
            bridge.send(command);
        }
    }

    /// Sends the varied parameters when they changed.
    pub fn sync_params(&mut self, params: &Params) {
        let varied = self.variation.apply(params);
        if let Some(bridge) = &self.bridge
            && self.sent.as_ref() != Some(&varied)
        {
            if let Some(sent) = &self.sent
                && (sent.n != varied.n || sent.dim != varied.dim)
            {
                bridge.send(Command::Resize { n: varied.n, dim: varied.dim });
            }
            bridge.send(Command::SetParams(varied.clone()));
            self.sent = Some(varied);
        }
    }

    /// Restarts the second simulation from the same source and seed as the first.
    pub fn reset(&mut self, params: &Params, source: &Source) {
        let varied = self.variation.apply(params);
        if let Some(bridge) = &self.bridge {
            bridge.send(Command::Reset { params: varied.clone(), source: source.clone() });
            self.sent = Some(varied);
        }
    }
}
