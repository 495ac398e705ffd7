//! The ovn-ic logic: one module per engine node (spec design.md), plus the output node.
//!
//! Every stage is a pure function: it reads the replicas through [`Views`] (replica + the
//! intents of the stages that ran before it in this run, i.e. read-your-writes as upstream's
//! IDL gives) and appends what it wants written to [`Out`]. Nothing here talks to a socket;
//! `crate::daemon` owns the sessions and commits what the output node assembles.
//!
//! Stage order inside one run (spec ovn-ic-core.md §4.0): AZ, gateway, datapath enumeration,
//! transit switches, transit routers, port bindings, routes, service monitors, address sets;
//! then sequence numbers.

pub mod address_set;
pub mod az;
pub mod enum_datapaths;
pub mod gateway;
pub mod graph;
pub mod incr;
pub mod port_binding;
pub mod route;
pub mod seqno;
pub mod service_monitor;
pub mod tables;
pub mod transit_router;
pub mod transit_switch;
pub mod util;

#[cfg(test)]
pub mod testutil;

use crate::ovsdb::overlay::{Intents, View};
use crate::ovsdb::replica::Replica;
use crate::ovsdb::Uuid;

/// The five databases/sessions a stage may write to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    Nb,
    Sb,
    IcNb,
    /// IC-SB through the lock-free session (per-AZ rows).
    IcSb,
    /// IC-SB through the `ovn_ic_sb`-locked session (global rows; ISB leader only).
    IcSbLocked,
}

/// The replicas of one AZ's ovn-ic. IC-SB reads come from the unlocked session except the
/// datapath enumeration, which uses the locked one (spec §2.1).
#[derive(Clone, Copy)]
pub struct Dbs<'a> {
    pub nb: &'a Replica,
    pub sb: &'a Replica,
    pub icnb: &'a Replica,
    pub icsb: &'a Replica,
    pub icsb_locked: &'a Replica,
}

/// What the stages of one run want written, per target.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Out {
    pub nb: Intents,
    pub sb: Intents,
    pub icnb: Intents,
    pub icsb: Intents,
    pub icsb_locked: Intents,
}

impl Out {
    pub fn get(&self, t: Target) -> &Intents {
        match t {
            Target::Nb => &self.nb,
            Target::Sb => &self.sb,
            Target::IcNb => &self.icnb,
            Target::IcSb => &self.icsb,
            Target::IcSbLocked => &self.icsb_locked,
        }
    }
    pub fn get_mut(&mut self, t: Target) -> &mut Intents {
        match t {
            Target::Nb => &mut self.nb,
            Target::Sb => &mut self.sb,
            Target::IcNb => &mut self.icnb,
            Target::IcSb => &mut self.icsb,
            Target::IcSbLocked => &mut self.icsb_locked,
        }
    }
    pub fn is_empty(&self) -> bool {
        self.nb.is_empty()
            && self.sb.is_empty()
            && self.icnb.is_empty()
            && self.icsb.is_empty()
            && self.icsb_locked.is_empty()
    }
    /// Merge another stage's output (later wins).
    pub fn merge(&mut self, o: &Out) {
        self.nb.merge(&o.nb);
        self.sb.merge(&o.sb);
        self.icnb.merge(&o.icnb);
        self.icsb.merge(&o.icsb);
        self.icsb_locked.merge(&o.icsb_locked);
    }
}

/// Views of the five databases with intent layers applied. IC-SB writes through either session
/// land in the same database, so both IC-SB views show both IC-SB intent sets.
#[derive(Clone)]
pub struct Views<'a> {
    pub nb: View<'a>,
    pub sb: View<'a>,
    pub icnb: View<'a>,
    pub icsb: View<'a>,
    pub icsb_locked: View<'a>,
}

impl<'a> Views<'a> {
    pub fn new(dbs: Dbs<'a>) -> Views<'a> {
        Views {
            nb: View::new(dbs.nb),
            sb: View::new(dbs.sb),
            icnb: View::new(dbs.icnb),
            icsb: View::new(dbs.icsb),
            icsb_locked: View::new(dbs.icsb_locked),
        }
    }

    /// These views with the intents of `out` layered on top.
    pub fn with(&self, out: &'a Out) -> Views<'a> {
        Views {
            nb: self.nb.with(&out.nb),
            sb: self.sb.with(&out.sb),
            icnb: self.icnb.with(&out.icnb),
            icsb: self.icsb.with(&out.icsb).with(&out.icsb_locked),
            icsb_locked: self.icsb_locked.with(&out.icsb).with(&out.icsb_locked),
        }
    }
}

/// Facts about this run every stage needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ctx {
    /// The local AZ: its Availability_Zone row UUID (possibly inserted in this run) and name.
    pub az: Uuid,
    pub az_name: String,
    /// This instance holds `ovn_ic_sb` and may write through the locked session this run.
    pub isb_leader: bool,
}

/// Whether the echo of our own write `e` to `table` of database `db` can be hidden from the
/// engine (see `Replica::absorb_echoes`). Only where every node reading the table needs
/// nothing from it: the route stage's own ISB `Route` rows and learned NB routes (it learns its
/// own ISB writes in the same run, `route::incr::learn_own_writes`), and its edits of a
/// router's `static_routes` alone. Other nodes keep state built from the changes they see (the
/// datapath images, for one), so their echoes are delivered.
pub fn echo_is_noop(db: &str, table: &str, e: &crate::ovsdb::replica::Expect) -> bool {
    use crate::ovsdb::replica::Expect;
    match (db, table) {
        (tables::ICSB_DB, "Route") | (tables::NB_DB, "Logical_Router_Static_Route") => true,
        (tables::NB_DB, "Logical_Router") => {
            let only_routes = |cols: &std::collections::BTreeMap<String, _>| {
                cols.keys().all(|c| c == "static_routes")
            };
            match e {
                Expect::Row(cols) => only_routes(cols),
                Expect::Edited { cols, toggles, .. } => {
                    cols.is_empty() && toggles.keys().all(|c| c == "static_routes")
                }
                Expect::Deleted => false,
            }
        }
        _ => false,
    }
}
