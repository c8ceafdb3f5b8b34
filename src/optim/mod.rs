//! Optimizers: they read the gradients that `backward` left on a model's parameters and
//! update the values, keeping any state (momentum buffers ...) under each parameter's
//! [`crate::module::ParameterKey`].

mod sgd;

pub(crate) use sgd::PlainUpdate;
pub use sgd::Sgd;
