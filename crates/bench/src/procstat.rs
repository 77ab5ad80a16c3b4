//! CPU time of a process from `/proc/PID/stat`, to show how the two cores were
//! split between the load generator and the server under test.

/// Clock ticks per second of `/proc/*/stat` (USER_HZ; 100 on every Linux
/// architecture this harness runs on).
const TICKS_PER_SEC: f64 = 100.0;

/// User + system CPU seconds consumed so far by `pid` ("self" for this process),
/// or `None` when the process or the file is gone.
pub(crate) fn cpu_seconds(pid: &str) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; fields resume after its ')'.
    let rest = text.get(text.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')' the first field is state (field 3); utime is field 14, stime 15.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_SEC)
}

/// Busy CPU seconds of the whole machine so far (all cores: everything but idle
/// and iowait), from the first line of `/proc/stat`.
pub(crate) fn machine_busy_seconds() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().next()?;
    let mut fields = line.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let v: Vec<f64> = fields.filter_map(|f| f.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let total: f64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4).copied().unwrap_or(0.0);
    Some((total - idle) / TICKS_PER_SEC)
}

#[cfg(test)]
mod tests {
    use super::{cpu_seconds, machine_busy_seconds};

    #[test]
    fn own_cpu_time_is_readable() {
        let t = cpu_seconds("self");
        assert!(t.is_some_and(|t| t >= 0.0));
        assert!(machine_busy_seconds().is_some_and(|t| t >= 0.0));
    }
}
