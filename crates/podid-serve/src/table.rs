//! The connection table: open connections overall and per source address, O(1) per accept and per close.
//! An address leaves the map when its count returns to zero, so the map holds only addresses with open
//! connections and cannot grow with the number of addresses ever seen.

use std::collections::HashMap;
use std::net::IpAddr;

use parking_lot::Mutex;

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// [`crate::Limits::max_connections`] connections are open.
    Total,
    /// [`crate::Limits::max_connections_per_ip`] connections from this address are open.
    PerIp,
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Open connections overall and per address.
#[derive(Default)]
pub(crate) struct ConnTable {
    counts: Mutex<Counts>,
}

/// One key per client: an IPv4 client seen on a dual-stack socket (`::ffff:a.b.c.d`) is the IPv4 address.
fn key(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

impl ConnTable {
    /// Take a slot for a connection from `ip`, unless a cap is reached.
    pub(crate) fn try_acquire(
        &self,
        ip: IpAddr,
        max_total: usize,
        max_per_ip: usize,
    ) -> Result<(), Refused> {
        let mut c = self.counts.lock();
        if c.total >= max_total {
            return Err(Refused::Total);
        }
        let n = c.per_ip.entry(key(ip)).or_insert(0);
        if *n >= max_per_ip {
            // The entry exists with a non-zero count (max_per_ip >= 1), so nothing is left behind.
            return Err(Refused::PerIp);
        }
        *n += 1;
        c.total += 1;
        Ok(())
    }

    /// Give back a slot taken for `ip`.
    pub(crate) fn release(&self, ip: IpAddr) {
        let mut c = self.counts.lock();
        let k = key(ip);
        let Some(n) = c.per_ip.get_mut(&k) else {
            debug_assert!(false, "release without acquire for {ip}");
            return;
        };
        *n -= 1;
        if *n == 0 {
            c.per_ip.remove(&k);
        }
        c.total = c.total.saturating_sub(1);
    }

    /// Open connections.
    #[cfg(test)]
    pub(crate) fn total(&self) -> usize {
        self.counts.lock().total
    }

    /// Addresses with open connections (the map's size).
    #[cfg(test)]
    pub(crate) fn addresses(&self) -> usize {
        self.counts.lock().per_ip.len()
    }

    /// Open connections from `ip`.
    #[cfg(test)]
    pub(crate) fn from(&self, ip: IpAddr) -> usize {
        self.counts
            .lock()
            .per_ip
            .get(&key(ip))
            .copied()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
    }

    #[test]
    fn per_address_cap_refuses_only_that_address() {
        let t = ConnTable::default();
        for _ in 0..3 {
            assert_eq!(t.try_acquire(ip(1), 100, 3), Ok(()));
        }
        assert_eq!(t.try_acquire(ip(1), 100, 3), Err(Refused::PerIp));
        assert_eq!(t.try_acquire(ip(2), 100, 3), Ok(()));
        assert_eq!((t.total(), t.from(ip(1)), t.from(ip(2))), (4, 3, 1));
        t.release(ip(1));
        assert_eq!(
            t.try_acquire(ip(1), 100, 3),
            Ok(()),
            "a freed slot is usable"
        );
    }

    #[test]
    fn total_cap_refuses_every_address() {
        let t = ConnTable::default();
        assert_eq!(t.try_acquire(ip(1), 2, 10), Ok(()));
        assert_eq!(t.try_acquire(ip(2), 2, 10), Ok(()));
        assert_eq!(t.try_acquire(ip(3), 2, 10), Err(Refused::Total));
        assert_eq!(t.addresses(), 2, "a refused address leaves no entry");
        t.release(ip(2));
        assert_eq!(t.try_acquire(ip(3), 2, 10), Ok(()));
    }

    #[test]
    fn entries_leave_the_map_when_their_count_returns_to_zero() {
        let t = ConnTable::default();
        for round in 0..3u8 {
            for a in 0..50u8 {
                for _ in 0..=(a % 4) {
                    t.try_acquire(ip(a), 10_000, 10).expect("slot");
                }
            }
            assert_eq!(t.addresses(), 50, "round {round}");
            for a in 0..50u8 {
                for _ in 0..=(a % 4) {
                    t.release(ip(a));
                }
            }
            assert_eq!((t.total(), t.addresses()), (0, 0), "round {round}");
        }
    }

    #[test]
    fn ipv4_mapped_ipv6_is_the_same_client() {
        let t = ConnTable::default();
        let mapped = IpAddr::V6(Ipv4Addr::new(127, 0, 0, 1).to_ipv6_mapped());
        assert_eq!(t.try_acquire(ip(1), 10, 1), Ok(()));
        assert_eq!(t.try_acquire(mapped, 10, 1), Err(Refused::PerIp));
        t.release(mapped);
        assert_eq!((t.total(), t.addresses()), (0, 0));
        let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
        assert_eq!(t.try_acquire(v6, 10, 1), Ok(()));
        assert_eq!(t.from(v6), 1);
    }
}
