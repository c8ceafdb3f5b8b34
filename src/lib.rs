//! nabla: a from-scratch multilayer-perceptron batch trainer.
//!
//! Layers follow the PyTorch-like Module convention ([`Module`]): `forward(input)`
//! returns the output, `backward(grad_output)` returns the input gradient and keeps the
//! parameter gradients on the layer; an optimizer ([`Sgd`]) applies them. Every product
//! is a GEMM through the system OpenBLAS; elementwise kernels use rayon.
//!
//! One training step by hand, then the whole assignment loop:
//!
//! ```
//! use nabla::{ActivationKind, Init, Module, MultiLayerPerceptron, Sgd, SoftmaxCrossEntropy};
//! use ndarray::array;
//!
//! // 4 inputs -> 8 ReLU units -> 3 classes, seeded uniform initialisation.
//! let mut model = MultiLayerPerceptron::<f64>::from_sizes(&[4, 8, 3], ActivationKind::Relu, Init::Uniform, 10701)?;
//! let x = array![[0.1, 0.2, 0.3, 0.4], [0.5, 0.1, 0.0, 0.9]]; // (batch, in)
//! let labels = array![2usize, 0];
//! let mut loss = SoftmaxCrossEntropy::new();
//! let mut optimizer = Sgd::new(0.1);
//! let before = loss.forward(model.forward(x.view()), labels.view());
//! model.backward(loss.backward()); // d_weights / d_bias now sit on each Linear
//! optimizer.step(&mut model);
//! let after = loss.forward(model.forward(x.view()), labels.view());
//! assert!(after < before);
//!
//! // The assignment's train_network on a data set (here the same two rows for both splits).
//! use nabla::data::{Dataset, Features};
//! let data = Dataset::new(Features::Dense(x.clone()), labels.clone(), Features::Dense(x), labels, 3)?;
//! let history = nabla::train::train_network(&mut model, &data, 20, 0.1, 2, 10701)?;
//! assert_eq!(history.epochs.len(), 20);
//! assert_eq!(history.epochs[19].train.accuracy, 1.0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The modules, bottom to top (each imports only from those above it in this list):
//! foundations ([`float`], [`module`], [`cgroup`], [`limits`], [`threads`], [`init`],
//! [`names`], [`atomic_file`], [`file_lock`]),
//! the model ([`layers`], [`loss`], [`optim`], [`network`]), [`data`], [`train`],
//! [`checkpoint`]; [`reference`] is the plain-loop oracle of the tests.

// Links the BLAS implementation (the system OpenBLAS) that the GEMMs call.
extern crate blas_src;

pub mod atomic_file;
pub(crate) mod buffer;
pub mod cgroup;
pub mod checkpoint;
pub(crate) mod crew;
pub mod data;
pub mod file_lock;
pub mod float;
#[doc(hidden)]
pub mod gemm;
pub mod init;
pub mod layers;
pub mod limits;
pub mod loss;
pub(crate) mod math;
pub mod module;
pub mod names;
pub mod network;
pub mod optim;
pub mod reference;
pub mod sklearn;
pub mod threads;
pub mod train;

pub use data::{DataError, Dataset, Features};
pub use float::Float;
pub use init::{Init, DEFAULT_SEED};
pub use layers::{Activation, ActivationKind, Layer, Linear};
pub use loss::{MeanSquaredError, SoftmaxCrossEntropy};
pub use module::{Module, Parameter, ParameterKey, ParameterKind};
pub use network::{ModelError, MultiLayerPerceptron};
pub use optim::Sgd;

/// The README's code, compiled and run as a doctest so that it cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
