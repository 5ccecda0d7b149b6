//! The CPU engine: advances a point set by steps of the chosen optimizer, in parallel with rayon.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::forces::{ForcePath, compute_force};
use super::optim::OptimizerState;
use crate::error::{Error, Result};
use crate::model::points::norm2;
use crate::model::{Evaluation, Points, Task, evaluate};

use crate::params::Params;

/// A simulation state on the CPU with everything needed to step it.
pub struct CpuEngine {
    params: Params,
    positions: Points,
    /// Starting points, the targets of the `anchors` task term.
    anchors: Points,
    force: Points,
    optimizer: OptimizerState,
    /// Source of mini-batches and Langevin noise, seeded from `params.seed`.
    rng: ChaCha8Rng,
    step: u64,
    force_path: ForcePath,
}

impl CpuEngine {
    /// Creates an engine that starts from `start`, which also becomes the anchors.
    ///
    /// `params.n` and `params.dim` are taken from `start`.
    pub fn new(mut params: Params, mut start: Points) -> Result<Self> {
        params.n = start.n();
        params.dim = start.dim();
        params.validate()?;
        if params.project_sphere {
            project_rows_to_sphere(&mut start, None);
        }
        let n = start.n();
        let dim = start.dim();
        Ok(Self {
            rng: noise_rng(params.seed),
            params,
            anchors: start.clone(),
            positions: start,
            force: Points::zeros(n, dim),
            optimizer: OptimizerState::default(),
            step: 0,
            force_path: ForcePath::Auto,
        })
    }

    /// Creates an engine that continues a run from `positions` at step `step`, with `anchors`
    /// as the task targets (a fallback from another engine).
    pub fn resume(params: Params, positions: Points, anchors: Points, step: u64) -> Result<Self> {
        let mut engine = Self::new(params, positions)?;
        engine.anchors = anchors;
        engine.step = step;
        Ok(engine)
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    pub fn positions(&self) -> &Points {
        &self.positions
    }

    pub fn anchors(&self) -> &Points {
        &self.anchors
    }

    /// Chooses the implementation of the force (the pairwise or matrix path by default).
    pub fn set_force_path(&mut self, path: ForcePath) {
        self.force_path = path;
    }

    pub fn force_path(&self) -> ForcePath {
        self.force_path.resolve(self.positions.dim())
    }

    /// Number of steps taken since the start.
    pub fn step_index(&self) -> u64 {
        self.step
    }

    /// Changes the parameters of the dynamics while keeping the positions.
    ///
    /// `n` and `dim` stay those of the current state. A change of optimizer clears its moments.
    pub fn set_params(&mut self, mut params: Params) -> Result<()> {
        params.n = self.positions.n();
        params.dim = self.positions.dim();
        params.validate()?;
        if params.optimizer != self.params.optimizer {
            self.optimizer.clear();
        }
        if params.seed != self.params.seed {
            self.rng = noise_rng(params.seed);
        }
        if params.project_sphere && !self.params.project_sphere {
            project_rows_to_sphere(&mut self.positions, None);
        }
        self.params = params;
        Ok(())
    }

    /// Task term at the current state.
    fn task(&self) -> Task<'_> {
        self.params.task_term(Some(&self.anchors))
    }

    /// Evaluates energy and virial sums over the whole state, without stepping.
    pub fn evaluate(&self) -> Evaluation {
        let mut force = Points::zeros(self.positions.n(), self.positions.dim());
        evaluate(&self.params.model(), self.task(), &self.positions, &mut force)
    }

    /// Takes one step.
    ///
    /// Fails when a position stops being finite, which leaves the last finite state behind.
    /// Energies are not computed here; [`CpuEngine::evaluate`] computes them when needed.
    pub fn step(&mut self) -> Result<()> {
        let n = self.positions.n();
        let dim = self.positions.dim();
        let batch = self.params.effective_batch();
        let model = self.params.model();

        let active = if batch == n {
            let task = self.params.task_term(Some(&self.anchors));
            compute_force(self.force_path, &model, task, &self.positions, &mut self.force);
            (0..n).collect::<Vec<_>>()
        } else {
            let indices = sample_batch(&mut self.rng, n, batch);
            let batch_points = self.positions.select_rows(&indices);
            let batch_anchors;
            let task = match self.task() {
                Task::Anchors(anchors) => {
                    batch_anchors = anchors.select_rows(&indices);
                    Task::Anchors(&batch_anchors)
                }
                Task::None => Task::None,
            };
            let mut batch_force = Points::zeros(batch, dim);
            compute_force(self.force_path, &model, task, &batch_points, &mut batch_force);
            for (row, &i) in indices.iter().enumerate() {
                self.force.row_mut(i).copy_from_slice(batch_force.row(row));
            }
            indices
        };

        let previous = self.positions.clone();
        self.optimizer.apply(
            &self.params,
            dim,
            self.positions.as_mut_slice(),
            self.force.as_slice(),
            &active,
            &mut self.rng,
        );
        if self.params.project_sphere {
            project_rows_to_sphere(&mut self.positions, Some(&active));
        }
        if !self.positions.is_finite() {
            self.positions = previous;
            return Err(Error::Diverged { step: self.step, what: "a particle position" });
        }

        self.step += 1;
        Ok(())
    }

    /// Last force computed, `F_i = -n dE/dz_i` (rows outside the last mini-batch are stale).
    pub fn force(&self) -> &Points {
        &self.force
    }
}

/// Draws a mini-batch of `batch` distinct rows out of `n`, in increasing order. The GPU engine
/// draws from the same stream, so both engines pick the same batches for a seed.
pub(super) fn sample_batch(rng: &mut ChaCha8Rng, n: usize, batch: usize) -> Vec<usize> {
    let mut rows = rand::seq::index::sample(rng, n, batch).into_vec();
    rows.sort_unstable();
    rows
}

/// Returns the generator of mini-batches and Langevin noise for `seed`.
pub(super) fn noise_rng(seed: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // A stream apart from the one that draws the starting points.
    rng.set_stream(1);
    rng
}

/// Scales rows to unit length; a zero row is left at the origin because it has no direction.
fn project_rows_to_sphere(points: &mut Points, rows: Option<&[usize]>) {
    let n = points.n();
    let all: Vec<usize>;
    let rows = match rows {
        Some(rows) => rows,
        None => {
            all = (0..n).collect();
            &all
        }
    };
    for &i in rows {
        let row = points.row_mut(i);
        let norm = norm2(row).sqrt();
        if norm > 0.0 {
            row.iter_mut().for_each(|x| *x /= norm);
        }
    }
}
