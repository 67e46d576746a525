//! Who may have how much work in flight, so that no caller can starve another.
//!
//! Work is partitioned by whom it is for: a non-root caller's calls are its uid's, whatever
//! user they name; a root caller (a login program: sshd, su, sudo, all of them root) is
//! working for the PAM user at one login [`Source`]. Any local user can make login programs
//! call as root (`su` to itself), so root is neither capped as a whole nor exempt.
//!
//! Each partition runs at most [`RUNNING_PER_PARTITION`] calls at once, and holds at most
//! [`WAITING_PER_PARTITION`] more in a queue; beyond that a call is refused at once, before
//! any of its work is queued. Calls of a connection that has left the bus are dropped from
//! the queue unrun.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_lock::{Semaphore, SemaphoreGuardArc};
use twofactor_config::Source;

use crate::identity::CallerIdentity;

/// Calls of one partition running at once: a login makes one call at a time, an admin
/// script a few.
pub const RUNNING_PER_PARTITION: usize = 4;
/// Calls of one partition waiting for a turn: parallel logins of one user from one host
/// (automation, several terminals) wait instead of failing.
pub const WAITING_PER_PARTITION: usize = 32;

/// Whom a call's work is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Partition {
    /// Everything a non-root uid asks.
    Uid(u32),
    /// A root caller working for this user (empty for calls that name none) at this source.
    Login { user: String, source: Source },
}

impl Partition {
    /// The partition of a call by `caller` about `user` from `source` (which only root
    /// reports).
    pub fn of(caller: &CallerIdentity, user: &str, source: impl FnOnce() -> Source) -> Partition {
        if caller.uid == 0 {
            Partition::Login {
                user: user.to_owned(),
                source: source(),
            }
        } else {
            Partition::Uid(caller.uid)
        }
    }
}

#[derive(Debug)]
struct Lane {
    turns: Arc<Semaphore>,
    /// Calls admitted: running or waiting.
    admitted: usize,
}

#[derive(Debug, Default)]
struct Lanes {
    by_partition: HashMap<Partition, Lane>,
    /// Connections with admitted calls, and how many; `left` marks those that left the bus.
    connections: HashMap<String, Connection>,
}

#[derive(Debug, Default)]
struct Connection {
    admitted: usize,
    left: bool,
}

/// The admission controller.
#[derive(Debug, Default)]
pub struct Admission {
    lanes: Mutex<Lanes>,
}

/// Why a call was not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Its partition has as many calls running and waiting as it may.
    Busy,
    /// Its connection left the bus while it waited.
    CallerLeft,
}

/// A call's place: released (and the partition's entry freed when empty) on drop.
#[derive(Debug)]
pub struct Ticket {
    admission: Arc<Admission>,
    partition: Partition,
    connection: String,
}

/// A call's turn to run: held while its work runs.
#[derive(Debug)]
pub struct Turn {
    _turn: SemaphoreGuardArc,
    _ticket: Ticket,
}

impl Admission {
    fn lanes(&self) -> MutexGuard<'_, Lanes> {
        self.lanes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admit a call of `connection` in `partition`, or refuse it at once if the partition is
    /// full; then wait for its turn. Refused too if the connection leaves while it waits.
    pub async fn enter(
        self: &Arc<Self>,
        partition: Partition,
        connection: &str,
    ) -> Result<Turn, Refusal> {
        let turns = {
            let mut lanes = self.lanes();
            let lane = lanes
                .by_partition
                .entry(partition.clone())
                .or_insert_with(|| Lane {
                    turns: Arc::new(Semaphore::new(RUNNING_PER_PARTITION)),
                    admitted: 0,
                });
            if lane.admitted >= RUNNING_PER_PARTITION + WAITING_PER_PARTITION {
                return Err(Refusal::Busy);
            }
            lane.admitted += 1;
            let turns = lane.turns.clone();
            lanes
                .connections
                .entry(connection.to_owned())
                .or_default()
                .admitted += 1;
            turns
        };
        let ticket = Ticket {
            admission: self.clone(),
            partition,
            connection: connection.to_owned(),
        };
        let turn = turns.acquire_arc().await;
        if self.has_left(connection) {
            return Err(Refusal::CallerLeft);
        }
        Ok(Turn {
            _turn: turn,
            _ticket: ticket,
        })
    }

    /// Whether `connection` left the bus while it had calls admitted.
    pub fn has_left(&self, connection: &str) -> bool {
        self.lanes()
            .connections
            .get(connection)
            .is_some_and(|entry| entry.left)
    }

    /// `connection` left the bus: its calls still waiting will not run. Only connections
    /// with calls admitted are remembered, so this set stays as small as the work in flight.
    pub fn connection_left(&self, connection: &str) {
        if let Some(entry) = self.lanes().connections.get_mut(connection) {
            entry.left = true;
        }
    }

    fn release(&self, partition: &Partition, connection: &str) {
        let mut lanes = self.lanes();
        if let Some(lane) = lanes.by_partition.get_mut(partition) {
            lane.admitted = lane.admitted.saturating_sub(1);
            if lane.admitted == 0 {
                lanes.by_partition.remove(partition);
            }
        }
        if let Some(entry) = lanes.connections.get_mut(connection) {
            entry.admitted = entry.admitted.saturating_sub(1);
            if entry.admitted == 0 {
                lanes.connections.remove(connection);
            }
        }
    }

    #[cfg(test)]
    fn tracked(&self) -> (usize, usize) {
        let lanes = self.lanes();
        (lanes.by_partition.len(), lanes.connections.len())
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.admission.release(&self.partition, &self.connection);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Peer;
    use futures_lite::future::{block_on, poll_once};

    fn by(uid: u32) -> CallerIdentity {
        CallerIdentity {
            uid,
            peer: Peer::Direct(u64::from(uid)),
        }
    }

    fn login(user: &str) -> Partition {
        Partition::of(&by(0), user, || Source::Local)
    }

    #[test]
    fn a_full_partition_refuses_at_once_and_others_are_untouched() {
        let admission = Arc::new(Admission::default());
        let attacker = Partition::of(&by(1000), "victim", || Source::Console);
        assert_eq!(
            attacker,
            Partition::Uid(1000),
            "non-root: by uid, whatever the user"
        );
        let mut running = Vec::new();
        for _ in 0..RUNNING_PER_PARTITION {
            running.push(block_on(admission.enter(attacker.clone(), ":1.1")).expect("room"));
        }
        let mut waiting: Vec<_> = (0..WAITING_PER_PARTITION)
            .map(|_| Box::pin(admission.enter(attacker.clone(), ":1.1")))
            .collect();
        for call in &mut waiting {
            assert!(block_on(poll_once(call)).is_none(), "waits for a turn");
        }
        let refused = block_on(admission.enter(attacker.clone(), ":1.2"));
        assert_eq!(refused.err(), Some(Refusal::Busy));
        // Another uid, and root working for another user, still get in at once.
        assert!(block_on(poll_once(admission.enter(Partition::Uid(1001), ":1.3"))).is_some());
        assert!(block_on(poll_once(admission.enter(login("victim"), ":1.4"))).is_some());
        // A finished call lets a waiting one run.
        running.pop();
        assert!(block_on(poll_once(&mut waiting[0])).is_some_and(|turn| turn.is_ok()));
    }

    #[test]
    fn root_is_partitioned_by_user_and_source() {
        let remote = |address: &str| Source::parse(address).unwrap_or(Source::Local);
        assert_ne!(login("alice"), login("bob"));
        assert_ne!(
            Partition::of(&by(0), "alice", || remote("192.0.2.1")),
            Partition::of(&by(0), "alice", || remote("192.0.2.2"))
        );
        assert_eq!(
            Partition::of(&by(0), "alice", || remote("2001:db8::1")),
            Partition::of(&by(0), "alice", || remote("2001:db8::2")),
            "one IPv6 /64 is one source"
        );
    }

    #[test]
    fn calls_of_a_connection_that_left_are_dropped_unrun() {
        let admission = Arc::new(Admission::default());
        let partition = login("alice");
        let running: Vec<_> = (0..RUNNING_PER_PARTITION)
            .map(|_| block_on(admission.enter(partition.clone(), ":1.9")).expect("room"))
            .collect();
        let mut waiting = Box::pin(admission.enter(partition.clone(), ":1.9"));
        assert!(block_on(poll_once(&mut waiting)).is_none());
        admission.connection_left(":1.9");
        drop(running);
        assert_eq!(block_on(waiting).err(), Some(Refusal::CallerLeft));
        assert_eq!(
            admission.tracked(),
            (0, 0),
            "nothing kept once all calls are done"
        );
    }

    #[test]
    fn a_departure_without_calls_is_not_remembered() {
        let admission = Admission::default();
        admission.connection_left(":1.77");
        assert!(!admission.has_left(":1.77"));
        assert_eq!(admission.tracked(), (0, 0));
    }
}
