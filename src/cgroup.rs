//! What this process's control groups allow it: a CPU quota (what `docker --cpus`,
//! systemd's `CPUQuota=` and Kubernetes CPU limits set) and memory headroom (what Slurm's
//! `--mem`, `docker --memory` and systemd's `MemoryMax=` set), in cgroup v2 and v1.
//!
//! The cgroup of this process is read from `/proc/self/cgroup`, where its hierarchies
//! are mounted from `/proc/self/mountinfo`; a limit set on any ancestor applies too, so
//! every directory from the process's cgroup up to the mount's root is read and the
//! tightest limit wins. Everything is read below a root directory (`/` for the real
//! system), so that tests can lay out a fake tree.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

/// A CPU quota: `quota` microseconds of CPU time per `period` microseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuQuota {
    /// CPU time allowed per period, in microseconds.
    pub quota: u64,
    /// The period, in microseconds.
    pub period: u64,
}

impl CpuQuota {
    /// The quota in cores (`quota / period`).
    pub fn cores(self) -> f64 {
        self.quota as f64 / self.period.max(1) as f64
    }

    /// Whole threads the quota keeps busy: `quota / period` rounded up, at least 1.
    pub fn threads(self) -> usize {
        (self.quota.div_ceil(self.period.max(1)) as usize).max(1)
    }
}

/// A memory cgroup's limit and what its processes use now (page cache that the kernel
/// can drop, `inactive_file`, not counted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryHeadroom {
    /// `memory.max` (v2) or `memory.limit_in_bytes` (v1).
    pub limit: u64,
    /// `memory.current` (v2) or `memory.usage_in_bytes` (v1), less `inactive_file`.
    pub used: u64,
}

impl MemoryHeadroom {
    /// Bytes that may still be charged to the cgroup.
    pub fn bytes(self) -> u64 {
        self.limit.saturating_sub(self.used)
    }
}

/// The control groups of this process, read below a root directory.
#[derive(Clone, Debug)]
pub struct Cgroups {
    root: PathBuf,
}

/// A mounted cgroup hierarchy: where it is mounted, the cgroup path it shows at its
/// mount point, and whether it is v2.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Mount {
    point: PathBuf,
    root: String,
    unified: bool,
    controllers: Vec<String>,
}

impl Cgroups {
    /// The running system's cgroups.
    pub fn system() -> Self {
        Self::at("/")
    }

    /// The cgroups of a fake system laid out below `root` (`root/proc/self/cgroup`,
    /// `root/proc/self/mountinfo`, and the mount points below `root`).
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The tightest CPU quota of this process's cgroups (v2 `cpu.max`, v1
    /// `cpu.cfs_quota_us` / `cpu.cfs_period_us`), `None` when there is none.
    pub fn cpu_quota(&self) -> Option<CpuQuota> {
        self.directories("cpu")
            .into_iter()
            .filter_map(|(dir, unified)| {
                if unified {
                    let text = self.read(&dir.join("cpu.max"))?;
                    let mut fields = text.split_whitespace();
                    let quota = fields.next()?.parse().ok()?;
                    let period = fields.next()?.parse().ok()?;
                    Some(CpuQuota { quota, period })
                } else {
                    let quota: i64 = self.read(&dir.join("cpu.cfs_quota_us"))?.parse().ok()?;
                    let period = self.read(&dir.join("cpu.cfs_period_us"))?.parse().ok()?;
                    Some(CpuQuota {
                        quota: u64::try_from(quota).ok()?,
                        period,
                    })
                }
            })
            .filter(|quota| quota.period > 0)
            .min_by(|a, b| a.cores().total_cmp(&b.cores()))
    }

    /// The smallest memory headroom of this process's cgroups (v2 `memory.max -
    /// memory.current`, v1 `memory.limit_in_bytes - memory.usage_in_bytes`, each less
    /// the reclaimable `inactive_file`), `None` when no cgroup limits memory.
    pub fn memory_headroom(&self) -> Option<MemoryHeadroom> {
        self.directories("memory")
            .into_iter()
            .filter_map(|(dir, unified)| {
                let (limit, usage, inactive) = if unified {
                    ("memory.max", "memory.current", "inactive_file")
                } else {
                    (
                        "memory.limit_in_bytes",
                        "memory.usage_in_bytes",
                        "total_inactive_file",
                    )
                };
                let limit: u64 = self.read(&dir.join(limit))?.parse().ok()?;
                // v1 writes "no limit" as the largest page-aligned i64.
                if limit >= i64::MAX as u64 / 2 {
                    return None;
                }
                let usage: u64 = self.read(&dir.join(usage))?.parse().ok()?;
                let inactive = self
                    .read(&dir.join("memory.stat"))
                    .and_then(|stat| stat_value(&stat, inactive))
                    .unwrap_or(0);
                Some(MemoryHeadroom {
                    limit,
                    used: usage.saturating_sub(inactive),
                })
            })
            .min_by_key(|headroom| headroom.bytes())
    }

    /// Every cgroup directory that can hold limits of `controller` for this process,
    /// from its own cgroup up to each hierarchy's root, with whether it is v2. For the
    /// running system they are worked out again only when the process's cgroups change
    /// (`/proc/self/cgroup`, read on every call; the mount table is not): limits are
    /// read afresh on every call.
    fn directories(&self, controller: &str) -> Vec<(PathBuf, bool)> {
        type Found = Vec<(String, Vec<(PathBuf, bool)>)>;
        static SYSTEM: Mutex<(String, Found)> = Mutex::new((String::new(), Vec::new()));
        if self.root != Path::new("/") {
            return self.find_directories(controller);
        }
        let Some(membership) = self.read(Path::new("/proc/self/cgroup")) else {
            return Vec::new();
        };
        let mut cache = SYSTEM.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.0 != membership {
            *cache = (membership, Vec::new());
        }
        if let Some((_, found)) = cache.1.iter().find(|(name, _)| name == controller) {
            return found.clone();
        }
        let found = self.find_directories(controller);
        cache.1.push((controller.to_string(), found.clone()));
        found
    }

    /// [`Cgroups::directories`], read from `/proc/self`.
    fn find_directories(&self, controller: &str) -> Vec<(PathBuf, bool)> {
        let (Some(membership), Some(mountinfo)) = (
            self.read(Path::new("/proc/self/cgroup")),
            self.read(Path::new("/proc/self/mountinfo")),
        ) else {
            return Vec::new();
        };
        let mounts: Vec<Mount> = mountinfo.lines().filter_map(parse_mount).collect();
        let mut directories = Vec::new();
        for line in membership.lines() {
            let mut fields = line.splitn(3, ':');
            let (Some(_), Some(controllers), Some(path)) =
                (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            let unified = controllers.is_empty();
            let mount = mounts.iter().find(|mount| {
                mount.unified == unified
                    && (unified || mount.controllers.iter().any(|c| c == controller))
                    && controllers
                        .split(',')
                        .all(|c| c.is_empty() || mount.controllers.iter().any(|m| m == c))
            });
            let Some(mount) = mount else { continue };
            // The cgroup's path as seen below the mount point.
            let relative = path
                .strip_prefix(mount.root.as_str())
                .unwrap_or(path)
                .trim_start_matches('/');
            let mut dir = mount.point.join(relative);
            loop {
                directories.push((dir.clone(), unified));
                if dir == mount.point || !dir.pop() || !dir.starts_with(&mount.point) {
                    break;
                }
            }
        }
        directories
    }

    /// A file below the root, trimmed; `None` if it cannot be read.
    fn read(&self, path: &Path) -> Option<String> {
        let relative = path.strip_prefix("/").unwrap_or(path);
        fs::read_to_string(self.root.join(relative))
            .ok()
            .map(|text| text.trim().to_string())
    }
}

/// One line of `/proc/self/mountinfo`, if it mounts a cgroup hierarchy:
/// `id parent major:minor root mount-point options [optional...] - type source super-options`.
fn parse_mount(line: &str) -> Option<Mount> {
    let (before, after) = line.split_once(" - ")?;
    let before: Vec<&str> = before.split(' ').collect();
    let after: Vec<&str> = after.split(' ').collect();
    let (root, point) = (before.get(3)?, before.get(4)?);
    let (kind, options) = (after.first()?, after.get(2).copied().unwrap_or(""));
    let unified = match *kind {
        "cgroup2" => true,
        "cgroup" => false,
        _ => return None,
    };
    Some(Mount {
        point: PathBuf::from(unescape(point)),
        root: unescape(root),
        unified,
        controllers: if unified {
            Vec::new()
        } else {
            options.split(',').map(str::to_string).collect()
        },
    })
}

/// mountinfo's octal escapes (`\040` for a space) undone.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|digits| {
            let text = std::str::from_utf8(digits).ok()?;
            u8::from_str_radix(text, 8).ok()
        });
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The value of `key` in a `memory.stat` file (`key value` lines).
fn stat_value(stat: &str, key: &str) -> Option<u64> {
    stat.lines().find_map(|line| {
        let (name, value) = line.split_once(' ')?;
        (name == key).then(|| value.trim().parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake system below a temporary directory: `files` are (path, contents).
    fn fake(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, contents) in files {
            let path = dir.path().join(path.trim_start_matches('/'));
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, contents).unwrap();
        }
        dir
    }

    const V2_MOUNT: &str = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n";

    #[test]
    fn v2_quota_and_memory_take_the_tightest_ancestor() {
        let dir = fake(&[
            ("/proc/self/mountinfo", V2_MOUNT),
            ("/proc/self/cgroup", "0::/job/step\n"),
            ("/sys/fs/cgroup/cpu.max", "max 100000"),
            ("/sys/fs/cgroup/job/cpu.max", "150000 100000"),
            ("/sys/fs/cgroup/job/step/cpu.max", "max 100000"),
            ("/sys/fs/cgroup/job/memory.max", "4000000000"),
            ("/sys/fs/cgroup/job/memory.current", "1500000000"),
            (
                "/sys/fs/cgroup/job/memory.stat",
                "anon 1\ninactive_file 500000000\n",
            ),
            ("/sys/fs/cgroup/job/step/memory.max", "max"),
            ("/sys/fs/cgroup/job/step/memory.current", "10"),
        ]);
        let cgroups = Cgroups::at(dir.path());
        let quota = cgroups.cpu_quota().unwrap();
        assert_eq!(
            quota,
            CpuQuota {
                quota: 150000,
                period: 100000
            }
        );
        assert_eq!(quota.threads(), 2);
        assert_eq!(quota.cores(), 1.5);
        let memory = cgroups.memory_headroom().unwrap();
        assert_eq!(memory.bytes(), 4_000_000_000 - 1_000_000_000);
    }

    #[test]
    fn v1_hierarchies_by_controller_and_a_container_root() {
        let mountinfo = "\
25 24 0:22 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n\
26 25 0:23 /docker/abc /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
27 25 0:24 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
28 25 0:25 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n";
        let dir = fake(&[
            ("/proc/self/mountinfo", mountinfo),
            (
                "/proc/self/cgroup",
                "4:memory:/user/job\n3:cpu,cpuacct:/docker/abc\n0::/\n",
            ),
            ("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "50000"),
            ("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000"),
            (
                "/sys/fs/cgroup/memory/memory.limit_in_bytes",
                "9223372036854771712",
            ),
            ("/sys/fs/cgroup/memory/memory.usage_in_bytes", "5"),
            (
                "/sys/fs/cgroup/memory/user/job/memory.limit_in_bytes",
                "1073741824",
            ),
            (
                "/sys/fs/cgroup/memory/user/job/memory.usage_in_bytes",
                "73741824",
            ),
            (
                "/sys/fs/cgroup/memory/user/job/memory.stat",
                "total_inactive_file 0\n",
            ),
        ]);
        let cgroups = Cgroups::at(dir.path());
        let quota = cgroups.cpu_quota().unwrap();
        assert_eq!((quota.threads(), quota.cores()), (1, 0.5));
        assert_eq!(cgroups.memory_headroom().unwrap().bytes(), 1_000_000_000);
    }

    #[test]
    fn no_limits_or_no_files_mean_none() {
        let dir = fake(&[
            ("/proc/self/mountinfo", V2_MOUNT),
            ("/proc/self/cgroup", "0::/\n"),
            ("/sys/fs/cgroup/cpu.max", "max 100000"),
            ("/sys/fs/cgroup/memory.max", "max"),
        ]);
        assert_eq!(Cgroups::at(dir.path()).cpu_quota(), None);
        assert_eq!(Cgroups::at(dir.path()).memory_headroom(), None);
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(Cgroups::at(empty.path()).cpu_quota(), None);
        assert_eq!(Cgroups::at(empty.path()).memory_headroom(), None);
    }

    #[test]
    fn mount_points_with_escaped_spaces() {
        let mount = parse_mount("1 2 0:1 / /sys/fs/my\\040cgroup rw - cgroup2 none rw").unwrap();
        assert_eq!(mount.point, PathBuf::from("/sys/fs/my cgroup"));
        assert!(parse_mount("1 2 0:1 / /proc rw - proc proc rw").is_none());
    }
}
