//! nabla: a from-scratch multilayer-perceptron batch trainer.
//!
//! Layers follow the PyTorch-like Module convention ([`Module`]): `forward(input)`
//! returns the output, `backward(grad_output)` returns the input gradient and keeps the
//! parameter gradients on the layer; [`optim::GradientDescent`] applies them. Every
//! product is a GEMM through the system OpenBLAS; elementwise kernels use rayon.

// Links the BLAS implementation (the system OpenBLAS) that ndarray's `blas` feature calls.
extern crate blas_src;

pub mod buffer;
pub mod checkpoint;
pub mod data;
pub mod float;
pub mod gemm;
pub mod init;
pub mod layers;
pub mod loss;
pub mod module;
pub mod network;
pub mod optim;
pub mod parallel;
pub mod reference;
pub mod train;

pub use data::{DataError, Dataset, Features};
pub use float::Float;
pub use init::{Init, DEFAULT_SEED};
pub use layers::{ActivationKind, Layer, Linear, Relu, Sigmoid, Tanh};
pub use loss::{MeanSquaredError, SoftmaxCrossEntropy};
pub use module::{Module, Parameter, ParameterKind};
pub use network::{ModelError, MultiLayerPerceptron};
pub use optim::GradientDescent;
