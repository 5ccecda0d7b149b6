//! A small autoencoder with hand-written backpropagation in f64.
//!
//! Encoder `x -> [tanh(W1 x + b1)] -> z` and decoder `z -> [tanh(W3 z + b3)] -> x_hat`, where the
//! bracketed hidden layers exist when `hidden > 0` and the last layer of each half is linear.
//! Batches are rows: `X` is `b x p`, `Z` is `b x d`.

use nalgebra::{DMatrix, DVector};
use rand::Rng;
use rand_distr::StandardNormal;

/// One affine layer `y = W x + b`, optionally followed by tanh.
#[derive(Clone, Debug)]
pub struct Layer {
    /// `out x in`.
    pub weight: DMatrix<f64>,
    pub bias: DVector<f64>,
    pub tanh: bool,
}

/// Gradients of one layer, shaped like it.
#[derive(Clone, Debug)]
pub struct LayerGrad {
    pub weight: DMatrix<f64>,
    pub bias: DVector<f64>,
}

impl Layer {
    /// Draws weights from `N(0, 1/in)` (LeCun initialisation, suited to tanh) and zero biases.
    fn new(inputs: usize, outputs: usize, tanh: bool, rng: &mut impl Rng) -> Self {
        let scale = 1.0 / (inputs as f64).sqrt();
        let weight = DMatrix::from_fn(outputs, inputs, |_, _| scale * rng.sample::<f64, _>(StandardNormal));
        Self { weight, bias: DVector::zeros(outputs), tanh }
    }

    /// Applies the layer to the rows of `input`.
    pub fn forward(&self, input: &DMatrix<f64>) -> DMatrix<f64> {
        let mut output = input * self.weight.transpose();
        for mut row in output.row_iter_mut() {
            row += self.bias.transpose();
        }
        if self.tanh {
            output.apply(|x| *x = x.tanh());
        }
        output
    }

    /// Backpropagates `d_output` (gradient with respect to this layer's output) given the layer's
    /// input and output; returns the parameter gradients and the gradient with respect to the input.
    fn backward(&self, input: &DMatrix<f64>, output: &DMatrix<f64>, d_output: &DMatrix<f64>) -> (LayerGrad, DMatrix<f64>) {
        let d_pre = if self.tanh { d_output.component_mul(&output.map(|a| 1.0 - a * a)) } else { d_output.clone() };
        let weight = d_pre.transpose() * input;
        let bias = d_pre.row_sum().transpose();
        let d_input = &d_pre * &self.weight;
        (LayerGrad { weight, bias }, d_input)
    }
}

/// Encoder and decoder layers, in order.
#[derive(Clone, Debug)]
pub struct Autoencoder {
    pub encoder: Vec<Layer>,
    pub decoder: Vec<Layer>,
}

/// Activations of one forward pass, kept for backpropagation: `encoder[0]` is the input.
pub struct Forward {
    encoder: Vec<DMatrix<f64>>,
    decoder: Vec<DMatrix<f64>>,
}

impl Forward {
    /// Latent codes, `b x d`.
    pub fn latent(&self) -> &DMatrix<f64> {
        self.encoder.last().expect("the input is always kept")
    }

    /// Reconstruction, `b x p`.
    pub fn reconstruction(&self) -> &DMatrix<f64> {
        self.decoder.last().expect("the latent codes are always kept")
    }
}

impl Autoencoder {
    /// Builds a network for `features` inputs, `latent` codes and `hidden` tanh units per half
    /// (0 for a linear autoencoder).
    pub fn new(features: usize, hidden: usize, latent: usize, rng: &mut impl Rng) -> Self {
        let (encoder, decoder) = if hidden == 0 {
            (vec![Layer::new(features, latent, false, rng)], vec![Layer::new(latent, features, false, rng)])
        } else {
            (
                vec![Layer::new(features, hidden, true, rng), Layer::new(hidden, latent, false, rng)],
                vec![Layer::new(latent, hidden, true, rng), Layer::new(hidden, features, false, rng)],
            )
        };
        Self { encoder, decoder }
    }

    pub fn latent_dim(&self) -> usize {
        self.encoder.last().map(|l| l.weight.nrows()).unwrap_or(0)
    }

    pub fn encode(&self, input: &DMatrix<f64>) -> DMatrix<f64> {
        self.encoder.iter().fold(input.clone(), |x, layer| layer.forward(&x))
    }

    pub fn decode(&self, latent: &DMatrix<f64>) -> DMatrix<f64> {
        self.decoder.iter().fold(latent.clone(), |x, layer| layer.forward(&x))
    }

    /// Runs the network on `input`, keeping every activation.
    pub fn forward(&self, input: &DMatrix<f64>) -> Forward {
        let mut encoder = vec![input.clone()];
        for layer in &self.encoder {
            let next = layer.forward(encoder.last().unwrap());
            encoder.push(next);
        }
        let mut decoder = vec![encoder.last().unwrap().clone()];
        for layer in &self.decoder {
            let next = layer.forward(decoder.last().unwrap());
            decoder.push(next);
        }
        Forward { encoder, decoder }
    }

    /// Backpropagates the gradient with respect to the reconstruction (`d_output`) plus an extra
    /// gradient that enters at the latent codes (`d_latent`, the regularizer's). Returns the
    /// gradients of the encoder layers, then of the decoder layers.
    pub fn backward(&self, forward: &Forward, d_output: &DMatrix<f64>, d_latent: &DMatrix<f64>) -> Vec<LayerGrad> {
        let mut decoder_grads = Vec::with_capacity(self.decoder.len());
        let mut upstream = d_output.clone();
        for (k, layer) in self.decoder.iter().enumerate().rev() {
            let (grad, d_input) = layer.backward(&forward.decoder[k], &forward.decoder[k + 1], &upstream);
            decoder_grads.push(grad);
            upstream = d_input;
        }
        decoder_grads.reverse();

        upstream += d_latent;
        let mut encoder_grads = Vec::with_capacity(self.encoder.len());
        for (k, layer) in self.encoder.iter().enumerate().rev() {
            let (grad, d_input) = layer.backward(&forward.encoder[k], &forward.encoder[k + 1], &upstream);
            encoder_grads.push(grad);
            upstream = d_input;
        }
        encoder_grads.reverse();
        encoder_grads.into_iter().chain(decoder_grads).collect()
    }

    /// Every layer, encoder first.
    pub fn layers(&self) -> impl Iterator<Item = &Layer> {
        self.encoder.iter().chain(&self.decoder)
    }

    pub fn layers_mut(&mut self) -> impl Iterator<Item = &mut Layer> {
        self.encoder.iter_mut().chain(self.decoder.iter_mut())
    }
}
