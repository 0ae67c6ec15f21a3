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

/// A call of `attributed` over its threshold, split by the scheduler's own accounting.
pub struct SlowCall {
    pub ns: f64,
    /// The calling thread's run-queue wait (runnable, not running: preempted) that fell
    /// within the call, at least: what the window's reads may have taken is not counted.
    pub run_queue_ns: f64,
    /// Voluntary context switches (the thread blocked: a lock, I/O) around the call.
    pub waited: i64,
}

impl SlowCall {
    /// What preemption does not explain: the call less its run-queue wait (at most this).
    pub fn unexplained_ns(&self) -> f64 {
        (self.ns - self.run_queue_ns).max(0.0)
    }
}

/// What `attributed` found.
pub struct Attribution {
    pub calls: usize,
    pub longest_ns: f64,
    /// The largest `SlowCall::unexplained_ns` over every call (slow or not).
    pub longest_unexplained_ns: f64,
    /// Calls over the threshold, in order.
    pub slow: Vec<SlowCall>,
    /// Voluntary and involuntary context switches of the calling thread over all the calls.
    pub waited: i64,
    pub preempted: i64,
}

/// Times each of `calls` calls of `f` and, for each, reads the calling thread's run-queue wait
/// (`/proc/thread-self/schedstat`, field 2, ns) and context switches (`getrusage`) after it:
/// a separate pass, as those two reads cost ~1-2 µs a call. A call's run-queue wait is the
/// growth since the previous call's reads, less everything outside the call in that window
/// (the reads themselves), so a preemption during a read is never credited to the call; a call
/// that blocks (a lock, I/O) sleeps, which is not run-queue time, and so stays unexplained.
pub fn attributed(
    calls: usize,
    threshold_ns: f64,
    mut f: impl FnMut(),
) -> std::io::Result<Attribution> {
    use std::os::unix::fs::FileExt;
    let schedstat = fs::File::open("/proc/thread-self/schedstat")?;
    let mut text = [0u8; 128];
    let mut run_queue = || -> std::io::Result<f64> {
        let len = schedstat.read_at(&mut text, 0)?;
        std::str::from_utf8(&text[..len])
            .ok()
            .and_then(|t| t.split_whitespace().nth(1))
            .and_then(|wait| wait.parse::<u64>().ok())
            .map(|wait| wait as f64)
            .ok_or_else(|| std::io::Error::other("unreadable /proc/thread-self/schedstat"))
    };
    let switches = || {
        let (_, preempted, waited) = thread_sys();
        (preempted, waited)
    };
    let (preempted_before, waited_before) = switches();
    let mut result = Attribution {
        calls,
        longest_ns: 0.0,
        longest_unexplained_ns: 0.0,
        slow: Vec::new(),
        waited: 0,
        preempted: 0,
    };
    let mut wait_before = run_queue()?;
    let mut waited_so_far = switches().1;
    let mut reads_end = Instant::now();
    for _ in 0..calls {
        let start = Instant::now();
        f();
        let end = Instant::now();
        let wait = run_queue()?;
        let waited = switches().1;
        let after = Instant::now();
        let ns = (end - start).as_nanos() as f64;
        let outside = ((start - reads_end) + (after - end)).as_nanos() as f64;
        let call = SlowCall {
            ns,
            run_queue_ns: (wait - wait_before - outside).clamp(0.0, ns),
            waited: waited - waited_so_far,
        };
        result.longest_ns = result.longest_ns.max(ns);
        result.longest_unexplained_ns = result.longest_unexplained_ns.max(call.unexplained_ns());
        if ns > threshold_ns {
            result.slow.push(call);
        }
        (wait_before, waited_so_far, reads_end) = (wait, waited, after);
    }
    let (preempted_after, waited_after) = switches();
    result.preempted = preempted_after - preempted_before;
    result.waited = waited_after - waited_before;
    Ok(result)
}
