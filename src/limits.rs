//! How much memory nabla may ask for. Every size that comes from outside (flags, file
//! headers, model files, a scikit-learn estimator's parameters) is turned into a byte
//! count here with checked arithmetic and compared, before anything is allocated, with
//! the memory this process may still use: the smallest of the kernel's `MemAvailable`,
//! the address-space and data limits (`ulimit -v`, `ulimit -d`) less what the process
//! maps already (and, for the address space, less what its threads' OpenBLAS buffers
//! will take: [`THREAD_ADDRESS_SPACE`]), and its cgroups' memory limits less their
//! usage (Slurm's `--mem`,
//! Docker's `--memory`, systemd's `MemoryMax=`). A refusal says how many bytes it would
//! have needed and which limit refused them.

use std::fmt;

use thiserror::Error;

use crate::cgroup::Cgroups;

/// Which limit bounds the memory this process may still use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryLimit {
    /// The kernel's estimate of memory available to new work (`MemAvailable`).
    Available,
    /// The address-space limit (`RLIMIT_AS`, `ulimit -v`) less the process's size.
    AddressSpace,
    /// The data limit (`RLIMIT_DATA`, `ulimit -d`) less the process's data.
    Data,
    /// A cgroup's memory limit less its usage.
    Cgroup,
    /// None could be read.
    Unknown,
}

impl fmt::Display for MemoryLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Available => "memory available",
            Self::AddressSpace => "address space left under the limit (ulimit -v)",
            Self::Data => "data size left under the limit (ulimit -d)",
            Self::Cgroup => "memory left under the cgroup's limit",
            Self::Unknown => "memory",
        })
    }
}

/// Bytes this process may still use, and the limit that decides it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Headroom {
    /// Bytes.
    pub bytes: u64,
    /// The limit.
    pub limit: MemoryLimit,
}

/// A size that does not fit: what it was for, the bytes it needs (`None` when the
/// count overflows 64 bits), the bytes available and which limit set them.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("{what} would need {}, more than the {} of {limit}", Bytes(*.needed), Bytes(Some(*.available)))]
pub struct TooLarge {
    /// What the memory was for (`the model's parameters and gradients` ...).
    pub what: String,
    /// Bytes needed, or `None` beyond 2^64.
    pub needed: Option<u64>,
    /// Bytes available (see [`memory_headroom`]).
    pub available: u64,
    /// The limit that decided `available`.
    pub limit: MemoryLimit,
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

/// Address space that each thread calling OpenBLAS takes besides the data: OpenBLAS's
/// own GEMM buffer (128 MiB in Debian's OpenBLAS 0.3.21 on x86-64, allocated at the
/// thread's first call; when it cannot be had, OpenBLAS retries forever) and a glibc
/// malloc arena (64 MiB reserved). Measured: a one-thread run of the subset needs
/// 300-400 MB under `ulimit -v`, a two-thread run 500-600 MB.
pub const THREAD_ADDRESS_SPACE: u64 = 192 << 20;

/// The address space left under `ulimit -v` (`RLIMIT_AS` less what the process maps
/// now), if there is such a limit.
pub fn address_space_left() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().next()?.parse().ok()?;
    rlimit_left(libc::RLIMIT_AS, pages.checked_mul(page_size()))
}

/// The threads that an address-space limit leaves room for (see
/// [`THREAD_ADDRESS_SPACE`]): at most half of what is left goes to threads, and one
/// thread always runs. `None` without a limit.
pub fn address_space_threads() -> Option<usize> {
    let left = address_space_left()?;
    Some(
        usize::try_from(left / (2 * THREAD_ADDRESS_SPACE))
            .unwrap_or(usize::MAX)
            .max(1),
    )
}

/// The address space left for data: [`address_space_left`] less the threads' share
/// (as many threads as [`address_space_threads`] allows, up to the CPUs).
fn address_space_for_data() -> Option<u64> {
    let left = address_space_left()?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = address_space_threads().unwrap_or(1).min(cpus) as u64;
    Some(left.saturating_sub(threads.saturating_mul(THREAD_ADDRESS_SPACE)))
}

/// The memory this process may still use and the limit that decides it (see the module
/// docs); where nothing can be read, no limit beyond 64-bit arithmetic.
pub fn memory_headroom() -> Headroom {
    let statm = std::fs::read_to_string("/proc/self/statm").ok();
    let pages = |field: usize| -> Option<u64> {
        let count: u64 = statm
            .as_deref()?
            .split_whitespace()
            .nth(field)?
            .parse()
            .ok()?;
        count.checked_mul(page_size())
    };
    let candidates = [
        (mem_available(), MemoryLimit::Available),
        (address_space_for_data(), MemoryLimit::AddressSpace),
        (rlimit_left(libc::RLIMIT_DATA, pages(5)), MemoryLimit::Data),
        (
            Cgroups::system().memory_headroom().map(|h| h.bytes()),
            MemoryLimit::Cgroup,
        ),
    ];
    candidates
        .into_iter()
        .filter_map(|(bytes, limit)| {
            Some(Headroom {
                bytes: bytes?,
                limit,
            })
        })
        .min_by_key(|headroom| headroom.bytes)
        .unwrap_or(Headroom {
            bytes: u64::MAX,
            limit: MemoryLimit::Unknown,
        })
}

/// The memory this process may still use, in bytes (see [`memory_headroom`]).
pub fn available_memory() -> u64 {
    memory_headroom().bytes
}

/// The kernel's `MemAvailable`, in bytes.
fn mem_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text
        .lines()
        .find(|line| line.starts_with("MemAvailable:"))?;
    let kilobytes: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kilobytes.checked_mul(1024)
}

/// What is left under the soft limit `resource` when `used` bytes count against it;
/// `None` without a limit.
fn rlimit_left(resource: libc::__rlimit_resource_t, used: Option<u64>) -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit struct, which we own.
    if unsafe { libc::getrlimit(resource, &mut limit) } != 0
        || limit.rlim_cur == libc::RLIM_INFINITY
    {
        return None;
    }
    Some(limit.rlim_cur.saturating_sub(used.unwrap_or(0)))
}

fn page_size() -> u64 {
    // SAFETY: sysconf only reads a system value.
    u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096)
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

/// Requests up to this many bytes are accepted without reading the limits: less than
/// any limit worth checking, and reading them costs tens of microseconds (a one-row
/// prediction takes about as long).
pub const SMALL_REQUEST: u64 = 1 << 20;

/// Accepts `needed` bytes for `what` if they fit in the memory this process may still
/// use ([`memory_headroom`]); up to [`SMALL_REQUEST`] bytes are accepted at once.
pub fn check_memory(what: impl Into<String>, needed: Option<u64>) -> Result<u64, TooLarge> {
    match needed {
        Some(bytes) if bytes <= SMALL_REQUEST => Ok(bytes),
        _ => check_against(memory_headroom(), what, needed),
    }
}

/// Accepts `needed` bytes for `what` if they fit in `headroom`.
pub fn check_against(
    headroom: Headroom,
    what: impl Into<String>,
    needed: Option<u64>,
) -> Result<u64, TooLarge> {
    match needed {
        Some(bytes) if bytes <= headroom.bytes => Ok(bytes),
        _ => Err(TooLarge {
            what: what.into(),
            needed,
            available: headroom.bytes,
            limit: headroom.limit,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_headroom_is_at_most_what_the_kernel_says_is_available() {
        let headroom = memory_headroom();
        assert!(headroom.bytes <= mem_available().unwrap());
        assert_ne!(headroom.limit, MemoryLimit::Unknown);
    }

    #[test]
    fn refusals_name_the_bytes_and_the_limit() {
        let headroom = Headroom {
            bytes: 1_500_000_000,
            limit: MemoryLimit::AddressSpace,
        };
        assert_eq!(check_against(headroom, "x", Some(1_000)), Ok(1_000));
        let refused = check_against(headroom, "the buffers", Some(3_200_000_000)).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "the buffers would need 3.2 GB (3200000000 bytes), more than the 1.5 GB \
             (1500000000 bytes) of address space left under the limit (ulimit -v)"
        );
        let overflow = check_against(headroom, "y", None).unwrap_err();
        assert!(overflow.to_string().contains("more than 2^64 bytes"));
    }
}
