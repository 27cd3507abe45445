//! Random steal order (Go's `randomOrder`): to visit all `n` Ps exactly once
//! in a pseudo-random order, start anywhere and step by a stride coprime with
//! `n`. The strides are the integers in `[1, n]` coprime with `n`.

/// The coprimes of one `n`.
#[derive(Debug, Clone)]
pub(crate) struct StealOrder {
    count: u32,
    coprimes: Vec<u32>,
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl StealOrder {
    /// The order for `n` Ps.
    pub fn new(n: u32) -> StealOrder {
        StealOrder {
            count: n,
            coprimes: (1..=n).filter(|&i| gcd(i, n) == 1).collect(),
        }
    }

    /// The strides used.
    #[cfg(test)]
    pub fn coprimes(&self) -> &[u32] {
        &self.coprimes
    }

    /// One enumeration of all `n` indices, chosen by `r`.
    pub fn start(&self, r: u32) -> impl Iterator<Item = u32> + '_ {
        let n = self.count;
        let inc = self.coprimes[(r / n) as usize % self.coprimes.len()];
        let mut pos = r % n;
        (0..n).map(move |_| {
            let p = pos;
            pos = (pos + inc) % n;
            p
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// I36: one enumeration visits every P exactly once.
        #[test]
        fn visits_every_p_once(n in 1u32..300, r in any::<u32>()) {
            let o = StealOrder::new(n);
            let mut seen: Vec<u32> = o.start(r).collect();
            seen.sort_unstable();
            prop_assert_eq!(seen, (0..n).collect::<Vec<_>>());
        }

        /// I27: the stride list is exactly {k in [1, n] : gcd(k, n) = 1}.
        #[test]
        fn coprimes_are_exact(n in 1u32..500) {
            let o = StealOrder::new(n);
            for k in 1..=n {
                prop_assert_eq!(o.coprimes().contains(&k), gcd(k, n) == 1);
            }
        }
    }
}
