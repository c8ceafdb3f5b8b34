//! Idle time of the CPUs this process may run on, from `/proc/stat`: how the pacer
//! learns that cores it gave up have become free again.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::time::Instant;

/// A reader of the idle time of a set of CPUs, between two looks. After the first
/// look it allocates nothing (the training step it serves is allocation-free).
#[derive(Debug)]
pub(crate) struct IdleCpus {
    /// The CPUs to watch (the affinity mask), or `None` for the whole machine.
    cpus: Option<Vec<usize>>,
    /// Clock ticks per second of `/proc/stat`.
    ticks_per_second: f64,
    last: Option<(Instant, u64)>,
    /// `/proc/stat`, kept open, and the text of the last look.
    file: Option<File>,
    text: String,
}

impl IdleCpus {
    /// A reader for this process's CPUs.
    pub(crate) fn new() -> Self {
        // SAFETY: sysconf only reads a system value.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        let mut idle = Self {
            cpus: crate::threads::allowed_cpus(),
            ticks_per_second: if ticks > 0 { ticks as f64 } else { 100.0 },
            last: None,
            file: File::open("/proc/stat").ok(),
            text: String::new(),
        };
        // The first look, which sizes the buffer (with room for the counters to grow).
        idle.idle_cores(0.0);
        idle.text.reserve(idle.text.len() + 4096);
        idle
    }

    /// Whether `/proc/stat` could be opened.
    pub(crate) fn readable(&self) -> bool {
        self.file.is_some()
    }

    /// Starts measuring from now (a look whose result is dropped).
    pub(crate) fn restart(&mut self) {
        self.last = None;
        self.idle_cores(0.0);
    }

    /// The average number of idle CPUs since the last call that returned a number, if
    /// at least `min_seconds` have passed (the counters move in ticks of 10 ms) and
    /// `/proc/stat` can be read.
    pub(crate) fn idle_cores(&mut self, min_seconds: f64) -> Option<f64> {
        let now = Instant::now();
        if let Some((then, _)) = self.last {
            if now.duration_since(then).as_secs_f64() < min_seconds {
                return None;
            }
        }
        let file = self.file.as_mut()?;
        self.text.clear();
        file.seek(SeekFrom::Start(0)).ok()?;
        file.read_to_string(&mut self.text).ok()?;
        let ticks = idle_ticks(&self.text, self.cpus.as_deref())?;
        let previous = self.last.replace((now, ticks));
        let (then, before) = previous?;
        let seconds = now.duration_since(then).as_secs_f64();
        Some(ticks.saturating_sub(before) as f64 / self.ticks_per_second / seconds)
    }
}

/// Tasks running or ready to run on the whole machine now (`/proc/loadavg`'s fourth
/// field), the calling process's included.
pub(crate) fn runnable_tasks() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace()
        .nth(3)?
        .split('/')
        .next()?
        .parse()
        .ok()
}

/// Idle plus iowait ticks of `cpus` (all CPUs when `None`) in a `/proc/stat` text.
fn idle_ticks(stat: &str, cpus: Option<&[usize]>) -> Option<u64> {
    let mut total = None;
    for line in stat.lines() {
        let mut fields = line.split_whitespace();
        let Some(name) = fields.next() else { continue };
        let Some(id) = name.strip_prefix("cpu").filter(|id| !id.is_empty()) else {
            continue;
        };
        let Ok(id) = id.parse::<usize>() else {
            continue;
        };
        if cpus.is_some_and(|cpus| !cpus.contains(&id)) {
            continue;
        }
        // user nice system idle iowait ...
        let mut values = fields.skip(3).map(|v| v.parse::<u64>().ok());
        if let (Some(Some(idle)), Some(Some(iowait))) = (values.next(), values.next()) {
            *total.get_or_insert(0) += idle + iowait;
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_ticks_of_the_chosen_cpus() {
        let stat = "cpu  10 0 10 500 5 0 0 0 0 0\n\
                    cpu0 5 0 5 200 1 0 0 0 0 0\n\
                    cpu1 5 0 5 300 4 0 0 0 0 0\n\
                    intr 1 2 3\n";
        assert_eq!(idle_ticks(stat, None), Some(505));
        assert_eq!(idle_ticks(stat, Some(&[1])), Some(304));
        assert_eq!(idle_ticks(stat, Some(&[7])), None);
    }

    #[test]
    fn this_machine_counts_its_runnable_tasks() {
        assert!(runnable_tasks().expect("/proc/loadavg is readable on Linux") >= 1);
    }

    #[test]
    fn this_machine_reports_idle_time() {
        let mut idle = IdleCpus::new();
        assert!(idle.readable());
        std::thread::sleep(std::time::Duration::from_millis(30));
        let cores = idle
            .idle_cores(0.0)
            .expect("/proc/stat is readable on Linux");
        assert!(cores >= 0.0, "{cores}");
    }
}
