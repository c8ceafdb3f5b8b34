//! How much memory nabla may ask for. Every size that comes from outside (flags, file
//! headers, model files) is turned into a byte count here with checked arithmetic and
//! compared with the memory the machine has available, before anything is allocated;
//! a refusal says how many bytes it would have needed.

use std::fmt;

use thiserror::Error;

/// A size that does not fit: what it was for, the bytes it needs (`None` when the
/// count overflows 64 bits) and the bytes available.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("{what} would need {}, more than the {} of memory available", Bytes(*.needed), Bytes(Some(*.available)))]
pub struct TooLarge {
    /// What the memory was for (`the model's parameters and gradients` ...).
    pub what: String,
    /// Bytes needed, or `None` beyond 2^64.
    pub needed: Option<u64>,
    /// Bytes available (see [`available_memory`]).
    pub available: u64,
}

/// A byte count for messages: `1.2 GB (1,234,567,890 bytes)`.
struct Bytes(Option<u64>);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(bytes) = self.0 else {
            return f.write_str("more than 2^64 bytes");
        };
        let units = [(1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB")];
        match units.iter().find(|(size, _)| bytes as f64 >= *size) {
            Some((size, unit)) => write!(f, "{:.1} {unit} ({bytes} bytes)", bytes as f64 / size),
            None => write!(f, "{bytes} bytes"),
        }
    }
}

/// The memory this process may use: the kernel's `MemAvailable` (Linux), or, where the
/// system does not say, no limit beyond 64-bit arithmetic.
pub fn available_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let line = text
                .lines()
                .find(|line| line.starts_with("MemAvailable:"))?;
            let kilobytes: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            kilobytes.checked_mul(1024)
        })
        .unwrap_or(u64::MAX)
}

/// `count * element_bytes * ...`: the product of `factors`, or `None` on overflow.
pub fn product(factors: &[usize]) -> Option<u64> {
    factors
        .iter()
        .try_fold(1u64, |total, &factor| total.checked_mul(factor as u64))
}

/// The sum of `terms`, or `None` if one is `None` or the sum overflows.
pub fn sum(terms: impl IntoIterator<Item = Option<u64>>) -> Option<u64> {
    terms
        .into_iter()
        .try_fold(0u64, |total, term| total.checked_add(term?))
}

/// Accepts `needed` bytes for `what` if they fit in the available memory.
pub fn check_memory(what: impl Into<String>, needed: Option<u64>) -> Result<u64, TooLarge> {
    let available = available_memory();
    match needed {
        Some(bytes) if bytes <= available => Ok(bytes),
        _ => Err(TooLarge {
            what: what.into(),
            needed,
            available,
        }),
    }
}
