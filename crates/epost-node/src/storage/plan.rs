//! What a repair pass does about one object, decided from what this pass's
//! probes found. Pure: [`super::maintenance`] gathers the facts and carries
//! the plan out.
//!
//! The rules (spec/store.md, "Repair"):
//! - a fragment is *missing* when no peer that answered holds it; it is
//!   rebuilt only if the peer it belongs on answered too (a peer that did
//!   not answer may be restarting: its fragments are rebuilt elsewhere once
//!   the grace period has made it gone and so dropped it from placement);
//! - the first peer in placement order that holds any fragment leads the
//!   rebuild; each next holder takes over after one more pass in which the
//!   object stayed short; a node holding fragments with no placement
//!   holder left leads at once;
//! - rebuilds are capped per pass by a budget counted in fragments;
//! - a fragment held here that belongs elsewhere is handed over, or just
//!   dropped when its rightful holder already has it.

use std::collections::{BTreeMap, BTreeSet};

use epost_dht::PeerId;

use super::placement::Placement;

/// What this pass knows of one object.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seen<'a> {
    /// Where the object's fragments belong among the peers not gone.
    pub(crate) placement: &'a Placement,
    /// The peers that answered this pass's probes holding each fragment.
    pub(crate) held: &'a BTreeMap<u8, BTreeSet<PeerId>>,
    /// Every peer that answered this pass's probe, holding anything or not.
    pub(crate) answered: &'a BTreeSet<PeerId>,
    /// The fragments this node holds, after scrubbing.
    pub(crate) mine: &'a [u8],
}

/// What to do about one object.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct ObjectPlan {
    /// Missing fragments to rebuild, by the peer they belong on.
    pub(crate) rebuild: BTreeMap<PeerId, Vec<usize>>,
    /// Fragments held here that belong on a peer without them: send,
    /// check it keeps them, then drop ours.
    pub(crate) hand_over: Vec<(u8, PeerId)>,
    /// Fragments held here whose rightful holder already has them.
    pub(crate) drop: Vec<u8>,
}

impl ObjectPlan {
    /// Fragments to rebuild.
    pub(crate) fn rebuilds(&self) -> usize {
        self.rebuild.values().map(Vec::len).sum()
    }
}

/// The missing fragments that can be rebuilt now, by the peer they belong
/// on. Empty: the object is not short (or nothing can be done this pass).
pub(crate) fn missing(seen: &Seen<'_>) -> BTreeMap<PeerId, Vec<usize>> {
    let mut missing: BTreeMap<PeerId, Vec<usize>> = BTreeMap::new();
    for index in 0..seen.placement.n {
        let held = u8::try_from(index)
            .ok()
            .and_then(|i| seen.held.get(&i))
            .is_some_and(|holders| !holders.is_empty());
        if held {
            continue;
        }
        if let Some(peer) = seen.placement.holder(index).filter(|p| seen.answered.contains(p)) {
            missing.entry(peer).or_default().push(index);
        }
    }
    missing
}

/// Plans one object. `waited` is in how many earlier passes in a row it
/// was short; `budget` is what is left of this pass's rebuild budget and
/// is charged for the rebuilds planned.
pub(crate) fn plan_object(
    seen: &Seen<'_>,
    me: PeerId,
    waited: u32,
    budget: &mut usize,
) -> ObjectPlan {
    let mut plan = ObjectPlan::default();
    if seen.mine.is_empty() {
        return plan;
    }
    let missing = missing(seen);
    if !missing.is_empty() && *budget > 0 && leads(seen, me, waited) {
        plan.rebuild = missing;
        *budget = budget.saturating_sub(plan.rebuilds());
    }
    for index in seen.mine {
        let Some(holder) = seen.placement.holder(usize::from(*index)) else { continue };
        if holder == me {
            continue;
        }
        if seen.held.get(index).is_some_and(|holders| holders.contains(&holder)) {
            plan.drop.push(*index);
        } else {
            plan.hand_over.push((*index, holder));
        }
    }
    plan
}

/// Whether this node leads the object's rebuild.
fn leads(seen: &Seen<'_>, me: PeerId, waited: u32) -> bool {
    let holders: Vec<&PeerId> = seen
        .placement
        .peers
        .iter()
        .filter(|p| seen.held.values().any(|holders| holders.contains(p)))
        .collect();
    match holders.iter().position(|p| **p == me) {
        Some(rank) => rank <= waited as usize,
        None => holders.is_empty(),
    }
}

/// Where a fragment goes when the peer it belongs on declined it: spares
/// (near peers outside the placement) first, then the placement peers
/// holding fewest of the object's fragments; never a peer that declined.
/// `extra` counts fragments already placed this pass, by peer.
pub(crate) fn fallback_order(
    near: &[PeerId],
    placement: &Placement,
    held: &BTreeMap<u8, BTreeSet<PeerId>>,
    declined: &[PeerId],
    extra: &BTreeMap<PeerId, usize>,
) -> Vec<PeerId> {
    let mut load: Vec<(bool, usize, PeerId)> = near
        .iter()
        .filter(|p| !declined.contains(p))
        .map(|p| {
            let count = held.values().filter(|holders| holders.contains(p)).count();
            (placement.peers.contains(p), count + extra.get(p).copied().unwrap_or(0), *p)
        })
        .collect();
    load.sort();
    load.into_iter().map(|(_, _, peer)| peer).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::test_peers as peers;

    /// `held[i]` lists the positions (in `p`) of the peers holding fragment i.
    fn holding(p: &[PeerId], held: &[&[usize]]) -> BTreeMap<u8, BTreeSet<PeerId>> {
        held.iter()
            .enumerate()
            .filter(|(_, who)| !who.is_empty())
            .map(|(i, who)| (i as u8, who.iter().map(|w| p[*w]).collect()))
            .collect()
    }

    struct Case {
        name: &'static str,
        /// Peers in placement order (positions in `p`), n = 4 fragments.
        placement: &'static [usize],
        held: &'static [&'static [usize]],
        /// Positions of the peers that did not answer the probe.
        silent: &'static [usize],
        me: usize,
        mine: &'static [u8],
        waited: u32,
        budget: usize,
        /// (peer position, indices) to rebuild.
        rebuild: &'static [(usize, &'static [usize])],
        hand_over: &'static [(u8, usize)],
        drop: &'static [u8],
        budget_left: usize,
    }

    /// What a case says unless it says otherwise: full redundancy, this
    /// node first in placement order, a budget to spare.
    const BASE: Case = Case {
        name: "",
        placement: &[0, 1, 2, 3],
        held: &[&[0], &[1], &[2], &[3]],
        silent: &[],
        me: 0,
        mine: &[0],
        waited: 0,
        budget: 10,
        rebuild: &[],
        hand_over: &[],
        drop: &[],
        budget_left: 10,
    };

    const CASES: &[Case] = &[
        Case { name: "full redundancy: nothing to do", me: 1, mine: &[1], ..BASE },
        Case {
            name: "the first holder leads the rebuild",
            held: &[&[0], &[1], &[], &[3]],
            rebuild: &[(2, &[2])],
            budget_left: 9,
            ..BASE
        },
        Case {
            name: "the second holder waits a pass",
            held: &[&[0], &[1], &[], &[3]],
            me: 1,
            mine: &[1],
            ..BASE
        },
        Case {
            name: "the second holder takes over after a pass",
            held: &[&[0], &[1], &[], &[3]],
            me: 1,
            mine: &[1],
            waited: 1,
            rebuild: &[(2, &[2])],
            budget_left: 9,
            ..BASE
        },
        Case {
            name: "a silent rightful holder is waited for, not rebuilt round",
            held: &[&[0], &[1], &[], &[3]],
            silent: &[2],
            waited: 5,
            ..BASE
        },
        Case {
            name: "no budget: no rebuild, hand-over still happens",
            held: &[&[0], &[], &[0], &[3]],
            mine: &[0, 2],
            budget: 0,
            hand_over: &[(2, 2)],
            budget_left: 0,
            ..BASE
        },
        Case {
            name: "a partial budget is overdrawn by one object, not split",
            held: &[&[0], &[], &[], &[]],
            budget: 2,
            rebuild: &[(1, &[1]), (2, &[2]), (3, &[3])],
            budget_left: 0,
            ..BASE
        },
        Case {
            name: "a node outside the placement hands its fragment over",
            held: &[&[0], &[1], &[4], &[3]],
            me: 4,
            mine: &[2],
            hand_over: &[(2, 2)],
            ..BASE
        },
        Case {
            name: "a copy the rightful holder has is dropped",
            held: &[&[0], &[1], &[2, 4], &[3]],
            me: 4,
            mine: &[2],
            drop: &[2],
            ..BASE
        },
        Case {
            name: "fragments with no placement holder: their holder leads",
            held: &[&[4], &[], &[], &[]],
            me: 4,
            rebuild: &[(1, &[1]), (2, &[2]), (3, &[3])],
            hand_over: &[(0, 0)],
            budget_left: 7,
            ..BASE
        },
        Case {
            name: "wrapped round two peers: each holds two",
            placement: &[0, 1],
            held: &[&[0], &[1], &[0], &[]],
            mine: &[0, 2],
            rebuild: &[(1, &[3])],
            budget_left: 9,
            ..BASE
        },
        Case {
            name: "nothing held here: nothing to do",
            held: &[&[], &[1], &[], &[3]],
            mine: &[],
            waited: 9,
            ..BASE
        },
    ];

    #[test]
    fn plans() {
        let p = peers(6);
        for case in CASES {
            let order: Vec<PeerId> = case.placement.iter().map(|i| p[*i]).collect();
            let placement = Placement::new(&order, 4);
            let held = holding(&p, case.held);
            let answered: BTreeSet<PeerId> = p
                .iter()
                .enumerate()
                .filter(|(i, _)| !case.silent.contains(i))
                .map(|(_, peer)| *peer)
                .collect();
            let seen =
                Seen { placement: &placement, held: &held, answered: &answered, mine: case.mine };
            let mut budget = case.budget;
            let plan = plan_object(&seen, p[case.me], case.waited, &mut budget);
            let rebuild: BTreeMap<PeerId, Vec<usize>> =
                case.rebuild.iter().map(|(peer, indices)| (p[*peer], indices.to_vec())).collect();
            let hand_over: Vec<(u8, PeerId)> =
                case.hand_over.iter().map(|(index, peer)| (*index, p[*peer])).collect();
            assert_eq!(plan.rebuild, rebuild, "{}: rebuild", case.name);
            assert_eq!(plan.hand_over, hand_over, "{}: hand-over", case.name);
            assert_eq!(plan.drop, case.drop, "{}: drop", case.name);
            assert_eq!(budget, case.budget_left, "{}: budget", case.name);
        }
    }

    #[test]
    fn fallback_prefers_spares_then_the_least_loaded() {
        let p = peers(6);
        let placement = Placement::new(&p[..4], 4);
        // Peer 0 holds two fragments, peer 1 one, peers 2 and 3 none.
        let held = holding(&p, &[&[0], &[0, 1], &[], &[]]);
        let near = p.to_vec();
        let order = fallback_order(&near, &placement, &held, &[p[4]], &BTreeMap::new());
        assert_eq!(order[0], p[5], "the spare that did not decline comes first");
        assert!(!order.contains(&p[4]), "a peer that declined is passed over");
        assert_eq!(order.last(), Some(&p[0]), "the most loaded placement peer comes last");
        let extra = BTreeMap::from([(p[2], 3)]);
        let order = fallback_order(&near, &placement, &held, &[p[4]], &extra);
        assert_eq!(order[1], p[3], "what was placed this pass counts as load");
    }
}
