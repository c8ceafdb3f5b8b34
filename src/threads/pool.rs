//! nabla's rayon pools: one per thread count, built on first use, and built again in a
//! child of `fork` (whose copy of the parent's pools has no threads: work sent there
//! would wait forever). rayon's global pool is never used, so a process that forks after
//! a fit (multiprocessing's `fork` pools, pre-fork servers) trains and predicts in the
//! child as in the parent.

use std::sync::{Mutex, PoisonError};

use rayon::{ThreadPool, ThreadPoolBuilder};

use super::fork;

/// The pools of one process.
struct Pools {
    pid: u32,
    pools: Vec<(usize, &'static ThreadPool)>,
}

static POOLS: Mutex<Pools> = Mutex::new(Pools {
    pid: 0,
    pools: Vec::new(),
});

/// This process's pool of `threads` threads (at least 1), or `None` if its threads
/// cannot be started (a limit on processes or threads).
///
/// A pool lives as long as the process. After a fork, the parent's pools are forgotten
/// (not dropped: dropping would signal threads that do not exist in the child).
pub(crate) fn pool(threads: usize) -> Option<&'static ThreadPool> {
    let threads = threads.max(1);
    fork::locked(|| {
        let mut pools = POOLS.lock().unwrap_or_else(PoisonError::into_inner);
        let pid = std::process::id();
        if pools.pid != pid {
            std::mem::forget(std::mem::take(&mut pools.pools));
            pools.pid = pid;
        }
        if let Some((_, pool)) = pools.pools.iter().find(|(size, _)| *size == threads) {
            return Some(*pool);
        }
        let pool: &'static ThreadPool = Box::leak(Box::new(
            ThreadPoolBuilder::new()
                .num_threads(threads)
                .thread_name(|index| format!("nabla-worker-{index}"))
                .build()
                .ok()?,
        ));
        pools.pools.push((threads, pool));
        Some(pool)
    })
}

/// Runs `work` on a worker of this process's pool of `threads` threads, unless the
/// caller already runs on a pool's worker (then on the caller, in its pool). Without a
/// pool (no thread could be started), `work` runs on the caller, serially.
pub fn on_pool<R: Send>(threads: usize, work: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        return work();
    }
    match pool(threads) {
        Some(pool) => pool.install(work),
        None => work(),
    }
}
