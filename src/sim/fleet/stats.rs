//! The fleet's figures: latency samples gathered from many tasks, their percentiles, and what
//! a central instance's process uses, read from `/proc`.

use std::sync::Mutex;
use std::time::Duration;

/// Latency samples (in milliseconds) pushed from many tasks.
#[derive(Debug, Default)]
pub struct Samples(Mutex<Vec<f64>>);

impl Samples {
    pub fn push(&self, d: Duration) {
        self.0
            .lock()
            .expect("samples lock poisoned")
            .push(d.as_secs_f64() * 1000.0);
    }

    /// The samples, sorted.
    pub fn sorted(&self) -> Vec<f64> {
        let mut v = self.0.lock().expect("samples lock poisoned").clone();
        v.sort_by(f64::total_cmp);
        v
    }
}

/// The `p`-th percentile (0–100) of sorted `v` (nearest rank); NaN when empty.
pub fn percentile(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// A process's CPU time so far (user + system), from `/proc/PID/stat`.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state): utime is field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // Linux reports these in USER_HZ, which is 100 on every architecture it runs on.
    Some(Duration::from_secs_f64((utime + stime) as f64 / 100.0))
}

/// The machine's CPU time so far, from `/proc/stat`: (busy, total) in USER_HZ ticks, all
/// CPUs together (idle and iowait are not busy; steal is, the host took it).
pub fn machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = cpu
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest and guest_nice are in user).
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4)?;
    Some((total - idle, total))
}

/// The CPU time of every process whose command name is `comm` (e.g. `postgres`: the server
/// and its backends), summed.
pub fn cpu_time_of(comm: &str) -> Duration {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Duration::ZERO;
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == comm)
        })
        .filter_map(cpu_time)
        .sum()
}

/// How long a process's threads have run and waited on a run queue for a CPU, summed over its
/// threads (`/proc/PID/task/*/schedstat`: run ns, wait ns). The wait is what a saturated
/// machine adds to every request, whatever the process's own work.
pub fn sched_times(pid: u32) -> Option<(Duration, Duration)> {
    let mut run = 0u64;
    let mut wait = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let Ok(task) = task else { continue };
        let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue;
        };
        let mut f = text
            .split_whitespace()
            .map(|x| x.parse::<u64>().unwrap_or(0));
        run += f.next().unwrap_or(0);
        wait += f.next().unwrap_or(0);
    }
    Some((Duration::from_nanos(run), Duration::from_nanos(wait)))
}

/// A process's resident memory in MiB, from `/proc/PID/status`.
pub fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// A process's open file descriptors, from `/proc/PID/fd`.
pub fn open_fds(pid: u32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

/// Raises this process's open-file limit to its hard limit; returns the limit now in force.
pub fn raise_nofile() -> std::io::Result<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    Ok(getrlimit(Resource::RLIMIT_NOFILE)?.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_percentiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
        assert!(percentile(&[], 50.0).is_nan());
    }

    #[test]
    fn this_process_is_read_from_proc() {
        let pid = std::process::id();
        assert!(cpu_time(pid).is_some());
        assert!(rss_mib(pid).unwrap() > 0.0);
        assert!(open_fds(pid).unwrap() > 0);
        let (busy, total) = machine_ticks().unwrap();
        assert!(busy <= total && total > 0);
        let (run, _wait) = sched_times(pid).unwrap();
        assert!(run > Duration::ZERO);
    }
}
