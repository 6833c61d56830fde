//! What `/proc` says about processes: who is whose parent, in which state, and how much memory
//! a process holds. `contain` finds what a handler started by parentage, from these snapshots.

use std::collections::{HashMap, HashSet};
use std::fs;

/// The fields of `/proc/<pid>/stat` we use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proc {
    pub pid: u32,
    pub parent: u32,
    /// `R`, `S`, `D` (uninterruptible), `T` (stopped), `t` (traced), `Z` (zombie), ...
    pub state: char,
    /// When it started, in clock ticks since boot: with the pid, it names one process even
    /// after the pid is reused.
    pub start: u64,
}

impl Proc {
    /// A zombie has exited: it can no longer fork, and only its parent's reaping removes it.
    pub fn is_zombie(&self) -> bool {
        matches!(self.state, 'Z' | 'X')
    }
}

/// Every process, read once. Processes change while it is read; `contain` reads again until
/// two readings agree on what matters to it.
pub struct Snapshot {
    children: HashMap<u32, Vec<Proc>>,
}

impl Snapshot {
    pub fn take() -> Snapshot {
        let mut children: HashMap<u32, Vec<Proc>> = HashMap::new();
        let Ok(entries) = fs::read_dir("/proc") else { return Snapshot { children } };
        let pids = entries.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok());
        for pid in pids {
            if let Some(proc) = read_stat(pid) {
                children.entry(proc.parent).or_default().push(proc);
            }
        }
        Snapshot { children }
    }

    /// Every descendant of `root` (not `root` itself), parents before their children.
    pub fn descendants(&self, root: u32) -> Vec<Proc> {
        self.descendants_except(root, |_| false)
    }

    /// The descendants of `root`, leaving out the subtrees of the processes `skip` picks (and
    /// those processes).
    pub fn descendants_except(&self, root: u32, skip: impl Fn(u32) -> bool) -> Vec<Proc> {
        let mut found = Vec::new();
        let mut seen = HashSet::from([root]);
        let mut next = vec![root];
        while let Some(parent) = next.pop() {
            for child in self.children.get(&parent).into_iter().flatten() {
                // A pid that is its own ancestor cannot happen; `seen` keeps a torn read from
                // looping.
                if !skip(child.pid) && seen.insert(child.pid) {
                    found.push(*child);
                    next.push(child.pid);
                }
            }
        }
        found
    }
}

/// The children of `pid` (alive or exited, not yet reaped), from each of its threads'
/// `children` file: one small read per thread, far quicker than a `Snapshot`. `None` where the
/// kernel has no such file (`CONFIG_PROC_CHILDREN`).
pub fn children(pid: u32) -> Option<Vec<u32>> {
    let mut found = Vec::new();
    for task in fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
        let path = task.path().join("children");
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && found.is_empty() => return None,
            Err(_) => continue, // the thread ended meanwhile
        };
        found.extend(text.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
    }
    Some(found)
}

/// One process's parent and state, or `None` once it is gone.
pub fn read_stat(pid: u32) -> Option<Proc> {
    parse_stat(pid, &fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Reads `pid (comm) state ppid ... starttime ...` (`starttime` is the 22nd field). `comm` may
/// hold spaces and parentheses, so we split after the last `)`.
fn parse_stat(pid: u32, stat: &str) -> Option<Proc> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_comm.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let parent = fields.next()?.parse().ok()?;
    let start = fields.nth(17)?.parse().ok()?;
    Some(Proc { pid, parent, state, start })
}

/// Resident memory of a process in MiB, from `/proc/<pid>/status`.
pub fn resident_mib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_parsing_survives_odd_command_names() {
        let rest = "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1234 5678";
        assert_eq!(
            parse_stat(42, &format!("42 (perl) S 7 {rest}")),
            Some(Proc { pid: 42, parent: 7, state: 'S', start: 1234 })
        );
        let odd = parse_stat(42, &format!("42 (a) b (c)) Z 9 {rest}"));
        assert_eq!(odd.map(|s| (s.parent, s.state)), Some((9, 'Z')));
        assert_eq!(parse_stat(42, "42 (perl) S 7 40 40 0"), None, "too short");
        assert_eq!(parse_stat(42, "garbage"), None);
    }

    #[test]
    fn descendants_come_parents_first_and_skipped_subtrees_stay_out() {
        let p = |pid, parent| Proc { pid, parent, state: 'S', start: 0 };
        let mut children: HashMap<u32, Vec<Proc>> = HashMap::new();
        for proc in [p(2, 1), p(3, 2), p(4, 3), p(5, 1), p(6, 5)] {
            children.entry(proc.parent).or_default().push(proc);
        }
        let snapshot = Snapshot { children };
        let pids = |procs: Vec<Proc>| procs.iter().map(|p| p.pid).collect::<Vec<_>>();
        let all = pids(snapshot.descendants(1));
        assert_eq!(all.len(), 5);
        let at = |pid| all.iter().position(|p| *p == pid).unwrap();
        assert!(at(2) < at(3) && at(3) < at(4) && at(5) < at(6), "{all:?}");
        assert_eq!(pids(snapshot.descendants_except(1, |pid| pid == 5)), vec![2, 3, 4]);
        assert_eq!(pids(snapshot.descendants(4)), Vec::<u32>::new());
    }
}
