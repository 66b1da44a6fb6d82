//! An idle toy costs nothing: every thread of a running `sim` sleeps. A receive on a closed
//! channel is always ready, so a controller that kept polling one (the button channel is
//! closed from the start in `--virtual-time`) would burn a whole core; this reads each
//! thread's CPU time from `/proc/PID/task/*/stat` over two idle seconds.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Child, Stdio};
use std::time::Duration;

use common::alsa::{sine_i16, AlsaSandbox};
use common::toy::{sim, sim_real_time, write_config, ToyConfig};

/// CPU ticks (user + system) of each thread of `pid`, by "tid name".
fn thread_ticks(pid: u32) -> BTreeMap<String, u64> {
    let mut ticks = BTreeMap::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("task list")
        .flatten()
    {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue; // the thread ended meanwhile
        };
        // "tid (name) state ppid ..." - the name may hold spaces, so split after ')'.
        let open = stat.find('(').unwrap();
        let close = stat.rfind(')').unwrap();
        let name = &stat[open + 1..close];
        let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
        // Fields 14 and 15 of stat (utime, stime) are 11 and 12 after the name.
        let used: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        ticks.insert(format!("{} {name}", &stat[..open - 1]), used);
    }
    ticks
}

fn idle_threads_use_no_cpu(mut child: Child) {
    std::thread::sleep(Duration::from_millis(1500)); // start-up done
    let pid = child.id();
    let before = thread_ticks(pid);
    std::thread::sleep(Duration::from_secs(2));
    let after = thread_ticks(pid);
    child.stdin.take().unwrap().write_all(b"quit\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(before.len() >= 5, "threads: {before:?}");
    // 2 s is 200 ticks at the usual 100 Hz; a spinning thread takes nearly all of them.
    // 20 ticks (10 % of a core) leaves room for a slow, shared machine.
    let busy: Vec<String> = after
        .iter()
        .filter_map(|(thread, t)| {
            let used = t - before.get(thread).copied().unwrap_or(0);
            (used > 20).then(|| format!("{thread}: {used} ticks in 2 s"))
        })
        .collect();
    assert!(busy.is_empty(), "busy threads while idle: {busy:?}");
}

fn toy() -> (AlsaSandbox, std::path::PathBuf) {
    let sb = AlsaSandbox::new().expect("sandbox");
    sb.write_mic(&sine_i16(440.0, 48_000, 2, 48_000 * 30, 0.3))
        .expect("mic file");
    let config = write_config(&sb, &ToyConfig::default());
    (sb, config)
}

fn start_idle(mut sim: std::process::Command) -> Child {
    sim.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sim")
}

#[test]
fn every_thread_of_an_idle_virtual_time_sim_sleeps() {
    let (sb, config) = toy();
    idle_threads_use_no_cpu(start_idle(sim(&sb, &config)));
}

#[test]
fn every_thread_of_an_idle_real_time_sim_sleeps() {
    let (sb, config) = toy();
    idle_threads_use_no_cpu(start_idle(sim_real_time(&sb, &config)));
}
