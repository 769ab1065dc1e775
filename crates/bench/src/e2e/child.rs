//! The extractor as a user runs it: the release binary, built when needed, started as a
//! child process and measured from the outside — wall time from spawn to exit, its peak
//! memory (`VmHWM` of `/proc/PID/status`, read every few milliseconds until it exits) and
//! its CPU time (`wait4` rusage).
//!
//! Why not `ru_maxrss` for the peak: Linux carries the high-water mark of the memory a
//! process had *before* `exec` into it, and a spawned child (`posix_spawn`, or `fork`) had
//! the harness's own memory then — so `ru_maxrss` reports the larger of the two, which after
//! the long workload is the harness's. `VmHWM` belongs to the program's own address space.

use std::{
    io::BufRead as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail, ensure};

/// Builds the release binary of `binance-extractor` (a no-op when it is up to date) and
/// returns its path, as cargo reports it.
pub fn build_extractor() -> anyhow::Result<PathBuf> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("building the release binary: cargo build --release -p binance-extractor");
    let output = Command::new(cargo)
        .current_dir(&workspace)
        .args([
            "build",
            "--release",
            "-p",
            "binance-extractor",
            "--bin",
            "binance-extractor",
            "--message-format=json-render-diagnostics",
        ])
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo (pass --extractor PATH to use a binary you built)")?;
    ensure!(output.status.success(), "cargo build failed");
    for line in output.stdout.lines() {
        let line = line?;
        let Ok(message) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if message["reason"] == "compiler-artifact"
            && message["target"]["name"] == "binance-extractor"
            && let Some(exe) = message["executable"].as_str()
        {
            return Ok(PathBuf::from(exe));
        }
    }
    bail!("cargo built no binance-extractor executable")
}

/// How a finished run of the extractor went, measured from outside.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Exit code (128 + signal number when killed by a signal).
    pub code: i32,
    /// From spawn to exit.
    pub wall: Duration,
    /// Peak resident set size (`VmHWM`), KiB.
    pub max_rss_kib: u64,
    /// CPU time in user and kernel mode.
    pub cpu: Duration,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `command` to its end (killing it after `timeout`), with stdout and stderr in files
/// of `dir`, so nothing the child writes can block it.
pub async fn run_measured(mut command: Command, dir: &Path, timeout: Duration) -> anyhow::Result<Measured> {
    let stdout_path = dir.join("extractor.stdout");
    let stderr_path = dir.join("extractor.stderr");
    command
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path)?)
        .stderr(std::fs::File::create(&stderr_path)?);
    let started = Instant::now();
    let child = command
        .spawn()
        .with_context(|| format!("starting {:?}", command.get_program()))?;
    let pid = child.id();
    // The child is reaped by `wait4` below, not by `Child`, which is dropped unwaited.
    drop(child);
    let waiting = tokio::task::spawn_blocking(move || wait4(pid));
    tokio::pin!(waiting);
    let peak = Arc::new(AtomicU64::new(0));
    let watching = tokio::spawn(watch_peak(pid, peak.clone()));
    let waited = match tokio::time::timeout(timeout, &mut waiting).await {
        Ok(joined) => joined?,
        Err(_) => {
            eprintln!("the extractor ran past {timeout:?}: killing it");
            // SAFETY: `pid` is our own child, not yet reaped (wait4 is still blocked on it).
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            waiting.await?
        }
    }?;
    let wall = started.elapsed();
    watching.abort();
    let max_rss_kib = peak.load(Ordering::Relaxed);
    Ok(Measured {
        code: waited.code,
        wall,
        max_rss_kib,
        cpu: waited.cpu,
        stdout: std::fs::read_to_string(&stdout_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&stderr_path).unwrap_or_default(),
    })
}

/// Reads the `VmHWM` of `pid` into `peak` (KiB) every 5 ms while it lives. The mark only
/// grows, so the last read before exit is the peak up to then.
async fn watch_peak(pid: u32, peak: Arc<AtomicU64>) {
    let path = format!("/proc/{pid}/status");
    // Ends when the process is gone. A zombie has no memory lines left: what was read stays.
    while let Ok(status) = std::fs::read_to_string(&path) {
        if let Some(kib) = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            peak.fetch_max(kib, Ordering::Relaxed);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

struct Waited {
    code: i32,
    cpu: Duration,
}

/// Waits for child `pid` to exit and takes its resource usage.
fn wait4(pid: u32) -> anyhow::Result<Waited> {
    let pid = pid as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data; all-zero is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: valid pointers to locals; `pid` is a child of this process.
        let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if reaped == pid {
            break;
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            return Err(error).context("waiting for the extractor");
        }
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        -1
    };
    let time =
        |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
    Ok(Waited {
        code,
        cpu: time(usage.ru_utime) + time(usage.ru_stime),
    })
}
