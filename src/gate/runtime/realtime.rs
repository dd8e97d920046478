//! `[realtime]` (`gate.toml`): real-time choices for the lanes, all off by default. Why they are
//! options and not defaults: each needs a privilege a gate may not be given (CAP_SYS_NICE for
//! SCHED_FIFO, CAP_IPC_LOCK or a large RLIMIT_MEMLOCK for `mlockall`), and what each buys is
//! measured, not assumed (`benches/gate_latency.rs`: the `spin_fifo.`, `spin_pinned.` and
//! `quiet_mlock.` variants against `quiet.` and `spin.`).
//!
//! - `lane_priority` (1–99): every lane thread runs under SCHED_FIFO at that priority, so a busy
//!   process of normal priority cannot keep a lane waiting for a core.
//! - `lane_cpus`: the CPUs lane threads may run on (`sched_setaffinity` of the thread).
//! - `lock_memory`: `mlockall(MCL_CURRENT | MCL_FUTURE)` at start, so no page of the index or
//!   the journal is ever paged out under a decision.
//! - `cpu_wake_latency_us`: a PM QoS request through `/dev/cpu_dma_latency`, held while the
//!   controller runs. A tag report's way to the OPEN wakes several threads (the kernel's pty or
//!   serial worker, the lane); each wake-up of an idle CPU pays its idle state's exit latency,
//!   and on a virtual machine that halts idle CPUs, a trip through the hypervisor. 0 keeps idle
//!   CPUs polling: the lowest latency, for a core's worth of power (and, on a VM, of the host's
//!   time).
//!
//! A choice the system refuses is not fatal: the gate runs without it and says so once, as a
//! warning naming the choice and the reason (a lane that would not start because it cannot be
//! real-time is worse than a lane that is a little slower). Values that cannot be right (a
//! priority over 99, a CPU this process may not use) are refused before start by
//! [`GateConfig::validate`](crate::gate::config::GateConfig::validate).

use crate::gate::config::RealtimeSection;

/// Locks the process's memory if `[realtime] lock_memory` asks; logs what happened.
pub(super) fn lock_memory(config: &RealtimeSection) {
    if !config.lock_memory {
        return;
    }
    use nix::sys::mman::{MlockAllFlags, mlockall};
    match mlockall(MlockAllFlags::MCL_CURRENT | MlockAllFlags::MCL_FUTURE) {
        Ok(()) => tracing::info!("realtime: memory locked (mlockall)"),
        Err(e) => tracing::warn!(
            error = %e,
            "realtime: lock_memory refused by the system (needs CAP_IPC_LOCK or a RLIMIT_MEMLOCK as large as the process); running without it"
        ),
    }
}

/// Opens `/dev/cpu_dma_latency` and asks for `[realtime] cpu_wake_latency_us` if configured;
/// the kernel's PM QoS request lasts while the returned file stays open (the gate holds it for
/// its life). Logs what happened.
pub(super) fn hold_cpu_wake_latency(config: &RealtimeSection) -> Option<std::fs::File> {
    let us = config.cpu_wake_latency_us?;
    let value = i32::try_from(us).unwrap_or(i32::MAX);
    let held = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/cpu_dma_latency")
        .and_then(|mut file| {
            use std::io::Write;
            file.write_all(&value.to_ne_bytes())?;
            Ok(file)
        });
    match held {
        Ok(file) => {
            tracing::info!(
                microseconds = us,
                "realtime: CPU wake-up latency held (/dev/cpu_dma_latency)"
            );
            Some(file)
        }
        Err(e) => {
            tracing::warn!(
                microseconds = us,
                error = %e,
                "realtime: cpu_wake_latency_us refused (needs write access to /dev/cpu_dma_latency, root by default); CPUs idle as the kernel chooses"
            );
            None
        }
    }
}

/// Applies `lane_cpus` and `lane_priority` to the calling thread (a lane's, before its runtime
/// runs anything); logs what happened.
pub(super) fn apply_to_lane_thread(config: &RealtimeSection, lane: &str) {
    if !config.lane_cpus.is_empty() {
        match pin(&config.lane_cpus) {
            Ok(()) => {
                tracing::info!(lane, cpus = ?config.lane_cpus, "realtime: lane thread pinned")
            }
            Err(e) => tracing::warn!(
                lane,
                cpus = ?config.lane_cpus,
                error = %e,
                "realtime: lane_cpus refused by the system; the lane runs on any CPU"
            ),
        }
    }
    if config.lane_priority > 0 {
        match fifo(config.lane_priority) {
            Ok(()) => tracing::info!(
                lane,
                priority = config.lane_priority,
                "realtime: lane thread runs under SCHED_FIFO"
            ),
            Err(e) => tracing::warn!(
                lane,
                priority = config.lane_priority,
                error = %e,
                "realtime: SCHED_FIFO refused (needs CAP_SYS_NICE, e.g. AmbientCapabilities=CAP_SYS_NICE in the systemd unit, or a RLIMIT_RTPRIO); the lane runs under the normal scheduler"
            ),
        }
    }
}

fn pin(cpus: &[usize]) -> Result<(), String> {
    use nix::sched::{CpuSet, sched_setaffinity};
    let mut set = CpuSet::new();
    for &cpu in cpus {
        set.set(cpu).map_err(|e| format!("CPU {cpu}: {e}"))?;
    }
    // Pid 0: the calling thread.
    sched_setaffinity(nix::unistd::Pid::from_raw(0), &set).map_err(|e| e.to_string())
}

fn fifo(priority: u8) -> Result<(), String> {
    use thread_priority::{
        RealtimeThreadSchedulePolicy, ThreadPriority, ThreadPriorityValue, ThreadSchedulePolicy,
        set_thread_priority_and_policy, thread_native_id,
    };
    let value = ThreadPriorityValue::try_from(priority)?;
    set_thread_priority_and_policy(
        thread_native_id(),
        ThreadPriority::Crossplatform(value),
        ThreadSchedulePolicy::Realtime(RealtimeThreadSchedulePolicy::Fifo),
    )
    .map_err(|e| format!("{e:?}"))
}
