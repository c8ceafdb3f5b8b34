//! Limits set from outside the process: the CPU affinity (`taskset`), the thread-count
//! variables that joblib's loky workers and users set, and an address-space limit
//! (`ulimit -v`). The cgroup limits are tested on fake trees in `src/cgroup.rs` and
//! against real cgroups by `scripts/test-limits.sh`.

use std::path::Path;
use std::process::{Command, Output};

/// nabla run through a shell as `{setup} exec {wrapper} nabla {args}`, so that
/// `ulimit`, variables and `taskset` apply as a user types them.
fn nabla(setup: &str, wrapper: &str, args: &str) -> Output {
    let binary = assert_cmd::cargo::cargo_bin("nabla");
    Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{setup} exec {wrapper} {} {args}",
            binary.display()
        ))
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")))
        .env_remove("OPENBLAS_NUM_THREADS")
        .env_remove("OMP_NUM_THREADS")
        .env_remove("GOTO_NUM_THREADS")
        .env_remove("RAYON_NUM_THREADS")
        .output()
        .unwrap()
}

const QUICK: &str = "--train-rows 200 --test-rows 50 --epochs 1";

/// The run header's thread part: `N thread(s) (why; gemm ...)`.
fn thread_part(output: &Output) -> String {
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let header = stdout.lines().next().unwrap_or_default();
    let start = header.rfind(", seed 10701, ").expect(header) + ", seed 10701, ".len();
    header[start..].to_string()
}

#[test]
fn the_affinity_mask_sets_the_threads() {
    let online = nabla::threads::online_cores();
    assert!(
        Command::new("taskset").arg("--version").output().is_ok(),
        "taskset (util-linux) is needed for this test"
    );
    let part = thread_part(&nabla("", "taskset -c 0", QUICK));
    let expected = if online > 1 {
        format!("1 thread (CPU affinity: 1 of {online} cores; gemm openblas, auto)")
    } else {
        "1 thread (the one core; gemm openblas, auto)".to_string()
    };
    assert_eq!(part, expected);
}

#[test]
fn thread_variables_are_limits_and_a_request_overrides_them() {
    for (variable, value) in [
        ("OPENBLAS_NUM_THREADS", "1"),
        ("OMP_NUM_THREADS", "1"),
        ("RAYON_NUM_THREADS", "1"),
    ] {
        let part = thread_part(&nabla(&format!("{variable}={value}"), "", QUICK));
        assert_eq!(
            part,
            format!("1 thread ({variable}=1; gemm openblas, auto)"),
            "{variable}"
        );
    }
    // OpenBLAS reads its own variable before OpenMP's.
    let part = thread_part(&nabla(
        "OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=2",
        "",
        QUICK,
    ));
    let cores = nabla::threads::available_cores();
    if cores >= 2 {
        assert!(
            part.starts_with("2 threads (OPENBLAS_NUM_THREADS=2; "),
            "{part}"
        );
        let part = thread_part(&nabla(
            "OPENBLAS_NUM_THREADS=1",
            "",
            &format!("{QUICK} --threads 2"),
        ));
        assert_eq!(part, "2 threads (--threads 2; gemm sliced, auto)");
    }
}

#[test]
fn an_address_space_limit_is_a_clear_refusal() {
    // 1.5 GB of address space; 200,000 hidden units need 2.5 GB of parameters.
    let output = nabla(
        "ulimit -v 1500000;",
        "",
        "--hidden 200000 --train-rows 100 --test-rows 10 --epochs 1",
    );
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("nabla: error: a 784-200000-10 network's parameters and gradients (f32) would need 2.5 GB")
            && stderr.trim_end().ends_with("of address space left under the limit (ulimit -v)"),
        "{stderr}"
    );
    // Under the same limit, a network that fits trains.
    let output = nabla(
        "ulimit -v 1500000;",
        "",
        "--hidden 64 --train-rows 100 --test-rows 10 --epochs 1 --quiet",
    );
    assert!(output.status.success(), "{output:?}");
}

#[test]
fn tight_address_space_limits_end_a_run_cleanly_never_hang() {
    // OpenBLAS takes a 128 MiB buffer per calling thread and retries forever when it
    // cannot have it: nabla leaves room for its threads' buffers, or refuses in words.
    for limit in [250_000, 400_000, 600_000] {
        let binary = assert_cmd::cargo::cargo_bin("nabla");
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ulimit -v {limit}; exec {} --train-rows 500 --test-rows 100 --epochs 1",
                binary.display()
            ))
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while child.try_wait().unwrap().is_none() {
            if std::time::Instant::now() > deadline {
                child.kill().unwrap();
                panic!("ulimit -v {limit}: the run hangs");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        match output.status.code() {
            Some(0) => {}
            Some(2) => assert!(
                stderr.lines().count() == 1
                    && stderr.starts_with("nabla: error: ")
                    && stderr.contains("(ulimit -v)"),
                "ulimit -v {limit}: {stderr}"
            ),
            other => panic!("ulimit -v {limit}: exit {other:?}: {stderr}"),
        }
    }
}
