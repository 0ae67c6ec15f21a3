//! Timing, statistics and process measurements for the benchmark. No library code here.
//!
//! Two ways of timing a call that costs tens of nanoseconds, both with `Instant` (the vDSO
//! `clock_gettime(CLOCK_MONOTONIC)`, ~20 ns here):
//! - `batched`: one clock read per batch of calls; each sample is the batch's mean per call. The
//!   clock's cost is spread over the batch, so the median batch is an unbiased estimate of a
//!   typical call, but it averages away the tail within a batch.
//! - `per_call`: one clock read between consecutive calls (a chain, so one read per call, not
//!   two); each sample is one call plus one clock read, and the clock's own cost (the median
//!   of an empty chain, measured in the same run) is subtracted. This gives the tail (p99).

use std::fs;
use std::time::{Duration, Instant};

/// Samples in nanoseconds, sorted.
pub struct Distribution {
    sorted: Vec<f64>,
}

impl Distribution {
    pub fn new(mut samples: Vec<f64>) -> Distribution {
        samples.sort_by(f64::total_cmp);
        Distribution { sorted: samples }
    }

    /// Nearest-rank quantile, `q` in (0, 1].
    pub fn quantile(&self, q: f64) -> f64 {
        if self.sorted.is_empty() {
            return f64::NAN;
        }
        let rank = (q * self.sorted.len() as f64).ceil() as usize;
        self.sorted[rank.clamp(1, self.sorted.len()) - 1]
    }

    pub fn median(&self) -> f64 {
        self.quantile(0.5)
    }

    pub fn max(&self) -> f64 {
        self.sorted.last().copied().unwrap_or(f64::NAN)
    }

    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// How many samples are above `ns`.
    pub fn count_above(&self, ns: f64) -> usize {
        self.sorted.len() - self.sorted.partition_point(|&s| s <= ns)
    }

    /// Merges several distributions (e.g. one per thread).
    pub fn merge(parts: Vec<Distribution>) -> Distribution {
        Distribution::new(parts.into_iter().flat_map(|d| d.sorted).collect())
    }
}

/// The cost of one link of a chain of clock reads: what `per_call` subtracts.
pub fn clock_overhead_ns(reads: usize) -> f64 {
    let mut samples = Vec::with_capacity(reads);
    let mut previous = Instant::now();
    for _ in 0..reads {
        let now = Instant::now();
        samples.push((now - previous).as_nanos() as f64);
        previous = now;
    }
    Distribution::new(samples).median()
}

/// Runs `calls` calls of `f` in batches of `batch`; one sample (mean ns per call) per batch.
pub fn batched(calls: usize, batch: usize, mut f: impl FnMut()) -> Distribution {
    let batches = calls.div_ceil(batch);
    let mut samples = Vec::with_capacity(batches);
    for _ in 0..batches {
        let start = Instant::now();
        for _ in 0..batch {
            f();
        }
        samples.push(start.elapsed().as_nanos() as f64 / batch as f64);
    }
    Distribution::new(samples)
}

/// Times each of `calls` calls of `f`; the clock's own cost (`overhead_ns`) is subtracted.
pub fn per_call(calls: usize, overhead_ns: f64, mut f: impl FnMut()) -> Distribution {
    let mut samples = Vec::with_capacity(calls);
    let mut previous = Instant::now();
    for _ in 0..calls {
        f();
        let now = Instant::now();
        samples.push(((now - previous).as_nanos() as f64 - overhead_ns).max(0.0));
        previous = now;
    }
    Distribution::new(samples)
}

/// "85 ns", "1.23 µs", "34.5 ms", "1.92 s".
pub fn fmt_ns(ns: f64) -> String {
    if ns.is_nan() {
        "n/a".into()
    } else if ns < 1_000.0 {
        format!("{ns:.0} ns")
    } else if ns < 1_000_000.0 {
        format!("{:.2} µs", ns / 1_000.0)
    } else if ns < 1_000_000_000.0 {
        format!("{:.1} ms", ns / 1_000_000.0)
    } else {
        format!("{:.2} s", ns / 1_000_000_000.0)
    }
}

pub fn fmt_duration(duration: Duration) -> String {
    fmt_ns(duration.as_nanos() as f64)
}

/// "2,738,752 B (2.74 MB)".
pub fn fmt_bytes(bytes: u64) -> String {
    let digits = bytes.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{grouped} B ({:.2} MB)", bytes as f64 / 1e6)
}

/// User + system CPU time of this process so far, all threads.
pub fn process_cpu() -> Duration {
    rusage(libc::RUSAGE_SELF)
}

/// User + system CPU time of the calling thread so far.
pub fn thread_cpu() -> Duration {
    rusage(libc::RUSAGE_THREAD)
}

/// System CPU time of the calling thread so far, its involuntary context switches (preempted)
/// and its voluntary ones (it waited: a lock, I/O).
pub fn thread_sys() -> (Duration, i64, i64) {
    // SAFETY: getrusage fills the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    (
        Duration::from_secs(usage.ru_stime.tv_sec as u64)
            + Duration::from_micros(usage.ru_stime.tv_usec as u64),
        usage.ru_nivcsw,
        usage.ru_nvcsw,
    )
}

fn rusage(who: libc::c_int) -> Duration {
    // SAFETY: getrusage fills the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(who, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// A `kB` field of /proc/self/status (VmRSS, RssAnon, RssFile, ...), in bytes.
pub fn status_kb(field: &str) -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// What the table's reader needs to judge the numbers: CPUs, model, load.
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cpus} CPUs ({model}), {}", load())
}

/// "load average 1.82 3.66 3.67".
pub fn load() -> String {
    let load = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let parts: Vec<&str> = load.split_whitespace().take(3).collect();
    format!("load average {}", parts.join(" "))
}
