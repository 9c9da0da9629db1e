//! Who holds a lease: the host and the process, written into the lease's owner name.
//!
//! A lease outlives a holder that is killed (`kill -9`, an OOM kill), and another worker would
//! wait for it to expire. When the holder ran on this very host, whether its process still exists
//! can be asked of the kernel, so a worker that finds such a lease takes it over at once: a
//! `ctxsync sync` killed mid-run can be rerun immediately. The process is named by its pid *and*
//! its start time, so a pid the kernel has since handed to another program does not pass for the
//! holder; the host by its name, boot and pid namespace, so a holder on another machine, or in
//! another container, is never judged from here.

use std::fmt;

/// A lease holder's identity as its owner name records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    host: String,
    /// The boot and the pid namespace the pid belongs to.
    space: String,
    pid: u32,
    /// The process's start time in clock ticks since boot (`/proc/<pid>/stat`, field 22).
    started: u64,
}

impl Holder {
    /// This process, or `None` where the kernel does not say enough (not Linux).
    pub fn this_process() -> Option<Holder> {
        let pid = std::process::id();
        Some(Holder { host: host()?, space: space()?, pid, started: started(pid)? })
    }

    /// The owner name for a lease taken by this process; `unique` tells apart the workers of one
    /// process.
    pub fn owner_name(holder: Option<&Holder>, unique: &str) -> String {
        match holder {
            Some(h) => format!("{h};{unique}"),
            None => format!("pid={};{unique}", std::process::id()),
        }
    }

    /// Reads an owner name back; `None` for names that do not record a full identity.
    pub fn parse(owner: &str) -> Option<Holder> {
        let field = |name: &str| {
            owner.split(';').find_map(|part| part.strip_prefix(name)?.strip_prefix('=')).map(str::to_owned)
        };
        Some(Holder {
            host: field("host")?,
            space: field("space")?,
            pid: field("pid")?.parse().ok()?,
            started: field("started")?.parse().ok()?,
        })
    }

    /// Whether this is a process of `here`'s host and pid namespace that no longer exists.
    pub fn is_gone_from(&self, here: &Holder) -> bool {
        self.host == here.host && self.space == here.space && started(self.pid) != Some(self.started)
    }
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "host={};space={};pid={};started={}", self.host, self.space, self.pid, self.started)
    }
}

/// The process an owner name records, without what tells apart its workers: the leases of one
/// process's workers share it. A name without a full identity (`pid=…`, which processes on other
/// hosts may share) stands for its worker alone.
pub fn process_of(owner: &str) -> &str {
    match owner.rsplit_once(';') {
        Some((process, _)) if Holder::parse(owner).is_some() => process,
        _ => owner,
    }
}

/// A lease holder in words, for messages: `pid 4242 on host db-1`, or the raw owner name.
pub fn describe(owner: &str) -> String {
    match Holder::parse(owner) {
        Some(h) => format!("pid {} on host {}", h.pid, h.host),
        None => format!("worker {owner}"),
    }
}

fn host() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    Some(name.trim().replace([';', '='], "_"))
}

fn space() -> Option<String> {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let namespace = std::fs::read_link("/proc/self/ns/pid").ok()?;
    Some(format!("{}:{}", boot.trim(), namespace.display()).replace([';', '='], "_"))
}

fn started(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces; fields count after it.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workers_of_one_process_share_its_process_and_a_bare_pid_is_its_worker_alone() {
        let Some(me) = Holder::this_process() else { return };
        let (a, b) = (Holder::owner_name(Some(&me), "a"), Holder::owner_name(Some(&me), "b"));
        assert_eq!(process_of(&a), me.to_string());
        assert_eq!(process_of(&a), process_of(&b));
        let bare = Holder::owner_name(None, "a");
        assert_eq!(process_of(&bare), bare);
        assert_ne!(process_of(&bare), process_of(&Holder::owner_name(None, "b")));
    }

    #[test]
    fn an_owner_name_reads_back() {
        let Some(me) = Holder::this_process() else { return };
        let owner = Holder::owner_name(Some(&me), "abc");
        assert_eq!(Holder::parse(&owner), Some(me.clone()));
        assert!(describe(&owner).starts_with(&format!("pid {} on host ", std::process::id())));
        assert_eq!(Holder::parse("1234-abc"), None, "older names record no identity");
        assert_eq!(describe("1234-abc"), "worker 1234-abc");
    }

    #[test]
    fn only_a_process_of_this_host_that_ended_is_gone() {
        let Some(me) = Holder::this_process() else { return };
        assert!(!me.is_gone_from(&me), "this process is alive");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let ended = Holder { pid, started: 1, ..me.clone() };
        assert!(ended.is_gone_from(&me));
        let reused = Holder { started: me.started + 1, ..me.clone() };
        assert!(reused.is_gone_from(&me), "a pid with another start time is another process");
        let elsewhere = Holder { host: "other-host".into(), ..ended.clone() };
        assert!(!elsewhere.is_gone_from(&me), "another host's processes are not judged from here");
        let other_namespace = Holder { space: "other".into(), ..ended };
        assert!(!other_namespace.is_gone_from(&me));
    }
}
