//! Names of the fixed choices (activations, initialisations, threading modes ...), as the
//! command line and the model files spell them, and the error for a name not on a list.

use thiserror::Error;

/// A name that is none of the choices it was looked up in.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("unknown {what} '{name}' (expected {expected})")]
pub struct UnknownName {
    /// What was looked up (`activation`, `init` ...).
    pub what: &'static str,
    /// The name given.
    pub name: String,
    /// The choices, as a list in words (`sigmoid, relu or tanh`).
    pub expected: String,
}

impl UnknownName {
    /// The choice among `all` whose `name_of` equals `name` (ignoring ASCII case), or the
    /// error listing them.
    pub(crate) fn find<T: Copy, const N: usize>(
        what: &'static str,
        name: &str,
        all: [T; N],
        name_of: fn(T) -> &'static str,
    ) -> Result<T, Self> {
        all.into_iter()
            .find(|&choice| name_of(choice).eq_ignore_ascii_case(name))
            .ok_or_else(|| Self {
                what,
                name: name.to_string(),
                expected: in_words(&all.map(name_of)),
            })
    }
}

/// `a`, `a or b`, `a, b or c`.
pub(crate) fn in_words(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [only] => (*only).to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}
