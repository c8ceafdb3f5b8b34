//! Early stopping: watch the monitored loss after every epoch, keep the best epoch's
//! weights (and batch normalisation's running statistics), and stop when it has not
//! improved for `patience` epochs.

use crate::float::Float;
use crate::layers::Layer;
use crate::module::{Module, Parameter};
use crate::network::MultiLayerPerceptron;

/// What early stopping remembers; saved whole to resume a run.
#[derive(Clone, Debug, PartialEq)]
pub struct EarlyStopping<F> {
    /// Epochs without improvement before stopping.
    pub patience: usize,
    /// The improvement that counts: a loss below `best - min_delta`.
    pub min_delta: f64,
    /// The lowest monitored loss so far.
    pub best_loss: f64,
    /// Its epoch (0 before the first).
    pub best_epoch: usize,
    /// Epochs since it.
    pub bad_epochs: usize,
    /// The best epoch's parameters, in the model's parameter order.
    pub best_weights: Vec<Vec<F>>,
    /// The best epoch's running statistics: each batch normalisation layer's running
    /// mean, then its running variance, in layer order (empty without such layers).
    pub best_statistics: Vec<Vec<F>>,
}

impl<F: Float> EarlyStopping<F> {
    /// Nothing seen yet.
    pub fn new(patience: usize, min_delta: f64) -> Self {
        Self {
            patience,
            min_delta,
            best_loss: f64::INFINITY,
            best_epoch: 0,
            bad_epochs: 0,
            best_weights: Vec::new(),
            best_statistics: Vec::new(),
        }
    }

    /// Takes epoch `epoch`'s monitored `loss` (with `model` as it stands after it) and
    /// says whether to stop. An improvement copies the weights into kept buffers
    /// (allocating only the first time).
    pub fn observe(
        &mut self,
        epoch: usize,
        loss: f64,
        model: &mut MultiLayerPerceptron<F>,
    ) -> bool {
        if loss < self.best_loss - self.min_delta {
            self.best_loss = loss;
            self.best_epoch = epoch;
            self.bad_epochs = 0;
            let mut index = 0;
            let best = &mut self.best_weights;
            model.visit_parameters(&mut |parameter: Parameter<'_, F>| {
                if best.len() <= index {
                    best.push(Vec::new());
                }
                best[index].clear();
                best[index].extend_from_slice(parameter.value);
                index += 1;
            });
            let statistics = &mut self.best_statistics;
            for (index, values) in model.running_statistics().enumerate() {
                if statistics.len() <= index {
                    statistics.push(Vec::new());
                }
                statistics[index].clear();
                statistics[index].extend(values.iter().copied());
            }
        } else {
            self.bad_epochs += 1;
        }
        self.bad_epochs >= self.patience
    }

    /// Puts the best epoch's weights back into `model`; `false` if none was kept.
    pub fn restore(&self, model: &mut MultiLayerPerceptron<F>) -> bool {
        if self.best_weights.is_empty() {
            return false;
        }
        let mut index = 0;
        let best = &self.best_weights;
        model.visit_parameters(&mut |parameter: Parameter<'_, F>| {
            if let Some(values) = best.get(index) {
                if values.len() == parameter.value.len() {
                    parameter.value.copy_from_slice(values);
                }
            }
            index += 1;
        });
        let mut statistics = self.best_statistics.iter();
        for layer in model.layers_mut() {
            if let Layer::BatchNorm(norm) = layer {
                let restore = |mut target: ndarray::ArrayViewMut1<'_, F>,
                               source: Option<&Vec<F>>| {
                    if let Some(source) = source.filter(|source| source.len() == target.len()) {
                        target.iter_mut().zip(source).for_each(|(t, &v)| *t = v);
                    }
                };
                restore(norm.running_mean_mut(), statistics.next());
                restore(norm.running_var_mut(), statistics.next());
            }
        }
        true
    }
}
