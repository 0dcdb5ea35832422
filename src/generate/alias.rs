//! A weighted pick of a patient in one memory read: the plan's hottest
//! loop.
//!
//! `rand_distr::WeightedAliasIndex` is Vose's alias method over positions:
//! a pick reads its odds, maybe its alias, and then the caller's table of
//! what each position stands for, three places in tables of a few MB each.
//! On a day of 100,000 encounters those cache misses were most of the
//! plan's time, and the plan is the one stretch of a batch that runs on
//! one core. [`AliasTable`] builds the same table with the same arithmetic
//! and draws the same two numbers in the same order, so every pick is the
//! one `WeightedAliasIndex` makes (a test holds them to it); it only keeps
//! each position's odds, item and alias's item side by side.

use rand::distr::Uniform;
use rand::{Rng, RngExt};

/// One position: the odds of keeping it, its item, and its alias's item.
#[derive(Clone, Copy, Debug)]
struct Entry {
    odds: f64,
    here: u32,
    there: u32,
}

#[derive(Clone, Debug)]
pub struct AliasTable {
    entries: Box<[Entry]>,
    index: Uniform<u32>,
    within: Uniform<f64>,
}

impl AliasTable {
    /// A pick among items, each as likely as its weight; `None` where
    /// `WeightedAliasIndex::new` fails (no items, a weight out of range, or
    /// all of them zero). The table is built in the list's own memory.
    pub fn new(weighted: Vec<(u32, f64)>) -> Option<AliasTable> {
        let n = u32::try_from(weighted.len()).ok().filter(|&n| n > 0)?;
        let max_weight = f64::MAX / f64::from(n);
        if !weighted.iter().all(|&(_, w)| 0.0 <= w && w <= max_weight) {
            return None;
        }
        let weight_sum = pairwise_sum(&weighted).min(f64::MAX);
        if weight_sum == 0.0 {
            return None;
        }
        let mut entries: Vec<Entry> = weighted
            .into_iter()
            .map(|(item, w)| Entry {
                odds: (w * f64::from(n)).min(f64::MAX),
                here: item,
                there: 0,
            })
            .collect();
        // `there` holds positions until the end: first the links of two
        // stacks, exactly as the crate threads them (the order they pop in
        // decides every alias), then each position's alias.
        const EMPTY: u32 = u32::MAX;
        let (mut smalls, mut bigs) = (EMPTY, EMPTY);
        for (index, e) in (0..n).zip(entries.iter_mut()) {
            let head = if e.odds < weight_sum {
                &mut smalls
            } else {
                &mut bigs
            };
            e.there = *head;
            *head = index;
        }
        let at = |i: u32| i as usize;
        while smalls != EMPTY && bigs != EMPTY {
            let (s, b) = (smalls, bigs);
            smalls = entries[at(s)].there;
            bigs = entries[at(b)].there;
            entries[at(s)].there = b;
            let odds = entries[at(b)].odds - weight_sum + entries[at(s)].odds;
            entries[at(b)].odds = odds;
            let head = if odds < weight_sum {
                &mut smalls
            } else {
                &mut bigs
            };
            entries[at(b)].there = *head;
            *head = b;
        }
        // The rest keep themselves: their odds are the whole sum (but for
        // rounding), which a draw stays below.
        for mut head in [smalls, bigs] {
            while head != EMPTY {
                let e = &mut entries[at(head)];
                let next = e.there;
                e.odds = weight_sum;
                e.there = head;
                head = next;
            }
        }
        for i in 0..entries.len() {
            let alias = entries[i].there;
            entries[i].there = entries[at(alias)].here;
        }
        Some(AliasTable {
            entries: entries.into_boxed_slice(),
            index: Uniform::new(0, n).ok()?,
            within: Uniform::new(0.0, weight_sum).ok()?,
        })
    }

    /// One item, drawn as `WeightedAliasIndex::sample` draws its position.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> u32 {
        let candidate = rng.sample(self.index) as usize;
        let keep = rng.sample(self.within);
        match self.entries.get(candidate) {
            Some(e) if keep < e.odds => e.here,
            Some(e) => e.there,
            None => 0,
        }
    }
}

/// The weights' sum as `rand_distr` forms it: pairwise, for accuracy.
fn pairwise_sum(values: &[(u32, f64)]) -> f64 {
    if values.len() <= 32 {
        values.iter().map(|&(_, w)| w).sum()
    } else {
        let (a, b) = values.split_at(values.len() / 2);
        pairwise_sum(a) + pairwise_sum(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::ChaCha8Rng;
    use rand_distr::weighted::WeightedAliasIndex;

    /// Every pick, and every number drawn, is the crate's.
    #[test]
    fn picks_what_weighted_alias_index_picks() {
        let mut make = ChaCha8Rng::seed_from_u64(7);
        let lognormal = rand_distr::LogNormal::new(0.0, 1.5).expect("lognormal");
        let mut cases: Vec<Vec<f64>> = vec![
            vec![1.0],
            vec![0.0, 3.0],
            vec![2.0; 1000],
            vec![1e-300, 1.0, 1e300],
            (0..4097).map(|i| f64::from(i % 7)).collect(),
        ];
        for n in [2usize, 33, 100, 5_000, 60_000] {
            cases.push((0..n).map(|_| make.sample(lognormal)).collect());
        }
        for weights in cases {
            let items: Vec<u32> = (0..weights.len() as u32).map(|i| i * 3 + 1).collect();
            let weighted = items.iter().copied().zip(weights.iter().copied()).collect();
            let ours = AliasTable::new(weighted).expect("table");
            let theirs = WeightedAliasIndex::new(weights.clone()).expect("index");
            let mut a = ChaCha8Rng::seed_from_u64(weights.len() as u64);
            let mut b = ChaCha8Rng::seed_from_u64(weights.len() as u64);
            for _ in 0..20_000 {
                assert_eq!(ours.sample(&mut a), items[b.sample(&theirs)]);
            }
            assert_eq!(a.random::<u64>(), b.random::<u64>());
        }
    }

    #[test]
    fn refuses_what_weighted_alias_index_refuses() {
        for weights in [vec![], vec![0.0, 0.0], vec![-1.0, 2.0], vec![f64::NAN]] {
            let weighted = weights.iter().map(|&w| (0, w)).collect();
            assert!(WeightedAliasIndex::new(weights).is_err());
            assert!(AliasTable::new(weighted).is_none());
        }
    }
}
