//! Change handlers of the port-binding stage (contract: [`crate::ic::incr`]).
//!
//! The unit of work is a transit datapath name: [`Key::Ts`] is a transit switch's sync plus the
//! deletion of the local switch bindings on that name no switch claims, [`Key::Tr`] the same for
//! a transit router. The full run is every key in a fixed order (switches by name, switch
//! orphans, routers by name, router orphans); a scoped run is the same steps for some keys, in
//! the same order, so it allocates the same port keys (and moves the process-lifetime hint the
//! same way) as the full run.
//!
//! The global parts stay exact: the taken-name sets (ISB `logical_port`, NB LSP/LRP `name`)
//! are looked up in the views, and a name that a scoped step frees by a deletion adds the later
//! steps of every datapath with a port of that name (the full run would let them use it in the
//! same run).
//!
//! Table changes map to keys through what the sync reads (old and new rows, so a port moved or
//! deleted maps to where it was): the NB images by their marker, NB ports and IC-NB transit
//! ports through the datapath listing them, ISB bindings through `transit_switch`, and the SB
//! rows a legacy port reads (its binding, the peer, `cr-<peer>`, their chassis and the peer's
//! datapath) through an index of those dependencies built from the current state. Since each
//! hop of such a chain is itself a row whose change is mapped, an index of the new state is
//! enough. Updates of columns the stage never reads map to nothing.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};

use super::{is_router_binding, Item, Phase, PortBindingState, Run};
use crate::ic::incr::{Keys, Unhandled};
use crate::ic::util::smap_bool_default_false;
use crate::ic::{Ctx, Out, Target, Views};
use crate::ovsdb::overlay::RowIntent;
use crate::ovsdb::replica::{Change, Row};
use crate::ovsdb::Uuid;

/// A unit of work of the stage, encoded in [`Keys`] as `ts:NAME` / `tr:NAME`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Key {
    /// Transit switch `NAME` and the local switch bindings on that name.
    Ts(String),
    /// Transit router `NAME` and the local router bindings on that name.
    Tr(String),
}

impl Key {
    pub fn encode(&self) -> String {
        match self {
            Key::Ts(n) => format!("ts:{n}"),
            Key::Tr(n) => format!("tr:{n}"),
        }
    }

    pub fn parse(s: &str) -> Option<Key> {
        if let Some(n) = s.strip_prefix("ts:") {
            Some(Key::Ts(n.to_string()))
        } else {
            s.strip_prefix("tr:").map(|n| Key::Tr(n.to_string()))
        }
    }

    /// The key of a binding's datapath name, by the binding's kind.
    fn of_binding(pb: &Row) -> Key {
        let dp = pb.str("transit_switch").to_string();
        if is_router_binding(pb) {
            Key::Tr(dp)
        } else {
            Key::Ts(dp)
        }
    }

    pub(super) fn items(&self) -> [Item; 2] {
        match self {
            Key::Ts(n) => [(Phase::SyncTs, n.clone()), (Phase::OrphanTs, n.clone())],
            Key::Tr(n) => [(Phase::SyncTr, n.clone()), (Phase::OrphanTr, n.clone())],
        }
    }
}

/// Which keys read what, built from the current state (see the module documentation).
#[derive(Debug, Default)]
struct Topo {
    /// NB LSPs listed by a transit switch's NB image.
    lsp: HashMap<Uuid, Keys>,
    /// NB LRPs listed by a transit router's NB image.
    lrp: HashMap<Uuid, Keys>,
    /// IC-NB ports listed by a transit switch / router.
    tsp: HashMap<Uuid, Keys>,
    trp: HashMap<Uuid, Keys>,
    /// Transit port names (a key may create rows of that name).
    name: HashMap<String, Keys>,
    /// SB `Port_Binding` rows read by `logical_port`.
    sb_pb: HashMap<String, Keys>,
    /// SB chassis read by name / by UUID.
    chassis_name: HashMap<String, Keys>,
    chassis: HashMap<Uuid, Keys>,
    /// SB datapaths read (the router id of legacy ports).
    dp: HashMap<Uuid, Keys>,
    have: Need,
}

fn add<K: std::hash::Hash + Eq>(m: &mut HashMap<K, Keys>, k: K, key: &str) {
    m.entry(k).or_default().insert(key.to_string());
}

/// The keys recorded under a string.
fn get<'m>(m: &'m HashMap<String, Keys>, k: &str) -> impl Iterator<Item = &'m String> {
    m.get(k).into_iter().flatten()
}

/// The parts of the dependency index a mapping needs (each is built at most once per call).
#[derive(Debug, Default, Clone, Copy)]
struct Need {
    /// IC-NB: transit ports by UUID, their names and chassis.
    ic: bool,
    /// NB images: their ports by UUID.
    nb: bool,
    /// The SB rows and gateways legacy ports read.
    legacy: bool,
}

const IC: Need = Need {
    ic: true,
    nb: false,
    legacy: false,
};
const NB: Need = Need {
    ic: false,
    nb: true,
    legacy: false,
};
const LEGACY: Need = Need {
    ic: false,
    nb: false,
    legacy: true,
};
const NAMES: Need = IC;
const CHASSIS_NAMES: Need = Need {
    ic: true,
    nb: false,
    legacy: true,
};

/// The NB images of transit switch `name` (as the sync looks them up).
fn ls_images<'a>(v: &Views<'a>, name: &str) -> Vec<Cow<'a, Row>> {
    super::committed_by_name(&v.nb, "Logical_Switch", name)
        .into_iter()
        .filter(|ls| ls.smap_get("other_config", "interconn-ts") == Some(name))
        .collect()
}

impl Topo {
    /// Build the parts of `need` not built yet.
    fn ensure(&mut self, v: &Views, need: Need) {
        if need.ic && !self.have.ic {
            self.have.ic = true;
            self.build_ic(v);
        }
        if need.nb && !self.have.nb {
            self.have.nb = true;
            self.build_nb(v);
        }
        if need.legacy && !self.have.legacy {
            self.have.legacy = true;
            self.build_legacy(v);
        }
    }

    fn build_ic(&mut self, v: &Views) {
        for (table, ports, kind) in [
            (
                "Transit_Switch",
                "Transit_Switch_Port",
                Key::Ts as fn(String) -> Key,
            ),
            ("Transit_Router", "Transit_Router_Port", Key::Tr),
        ] {
            for dp in v.icnb.rows(table) {
                let key = kind(dp.str("name").to_string()).encode();
                for u in dp.get("ports").uuids() {
                    let m = if table == "Transit_Switch" {
                        &mut self.tsp
                    } else {
                        &mut self.trp
                    };
                    add(m, u, &key);
                    if let Some(p) = v.icnb.get(ports, u) {
                        add(&mut self.name, p.str("name").to_string(), &key);
                        add(&mut self.chassis_name, p.str("chassis").to_string(), &key);
                    }
                }
            }
        }
    }

    fn build_nb(&mut self, v: &Views) {
        for ts in v.icnb.rows("Transit_Switch") {
            let name = ts.str("name");
            let key = Key::Ts(name.to_string()).encode();
            for ls in ls_images(v, name) {
                for u in ls.get("ports").uuids() {
                    add(&mut self.lsp, u, &key);
                }
            }
        }
        for tr in v.icnb.rows("Transit_Router") {
            let name = tr.str("name");
            let key = Key::Tr(name.to_string()).encode();
            for lr in super::committed_by_name(&v.nb, "Logical_Router", name) {
                if lr.smap_get("options", "interconn-tr").is_none() {
                    continue;
                }
                for u in lr.get("ports").uuids() {
                    add(&mut self.lrp, u, &key);
                }
            }
        }
    }

    fn build_legacy(&mut self, v: &Views) {
        for ts in v.icnb.rows("Transit_Switch") {
            let name = ts.str("name");
            let key = Key::Ts(name.to_string()).encode();
            for ls in ls_images(v, name) {
                for u in ls.get("ports").uuids() {
                    if let Some(lsp) = v.nb.get("Logical_Switch_Port", u) {
                        self.legacy_port(v, &lsp, &key);
                    }
                }
            }
        }
    }

    /// What a port of a transit switch's NB image reads besides itself.
    fn legacy_port(&mut self, v: &Views, lsp: &Row, key: &str) {
        let name = lsp.str("name");
        if lsp.smap_get("options", "interconn-tsp").is_some() {
            return;
        }
        add(&mut self.sb_pb, name.to_string(), key);
        for pb in v.sb.find_by_str("Port_Binding", "logical_port", name) {
            if let Some(c) = pb.uuid_of("chassis") {
                add(&mut self.chassis, c, key);
            }
            let Some(peer) = pb.smap_get("options", "peer") else {
                continue;
            };
            let cr = format!("cr-{peer}");
            for p in v.sb.find_by_str("Port_Binding", "logical_port", peer) {
                if let Some(d) = p.uuid_of("datapath") {
                    add(&mut self.dp, d, key);
                }
            }
            for c in v.sb.find_by_str("Port_Binding", "logical_port", &cr) {
                if let Some(ch) = c.uuid_of("chassis") {
                    add(&mut self.chassis, ch, key);
                }
            }
            add(&mut self.sb_pb, peer.to_string(), key);
            add(&mut self.sb_pb, cr, key);
        }
        // A remote port follows its binding's gateway chassis (looked up by name).
        for pb in v.icsb.find_by_str("Port_Binding", "logical_port", name) {
            add(&mut self.chassis_name, pb.str("gateway").to_string(), key);
        }
    }

    /// The keys that may create a row named `name` (a name freed or taken): the datapaths with
    /// a transit port of that name, with an NB port of that name on their image, or with
    /// another AZ's binding of that name (its remote LSP).
    fn keys_for_name(&mut self, v: &Views, name: &str) -> Keys {
        self.ensure(v, NAMES);
        let mut keys: Keys = get(&self.name, name).cloned().collect();
        for pb in v.icsb.find_by_str("Port_Binding", "logical_port", name) {
            keys.insert(Key::Ts(pb.str("transit_switch").to_string()).encode());
        }
        let lsps = v.nb.find_by_str("Logical_Switch_Port", "name", name);
        if !lsps.is_empty() {
            // Through the index of image ports (built once): scanning every image's `ports`
            // for each name cost O(ports) per name, minutes of CPU for the echo of 32767
            // remote ports created in one run.
            self.ensure(v, NB);
            for l in &lsps {
                keys.extend(self.lsp.get(&l.uuid()).into_iter().flatten().cloned());
            }
        }
        keys
    }

    /// The steps that may use `name` once a step freed it.
    fn steps_for_name(&mut self, v: &Views, name: &str) -> Vec<Item> {
        self.keys_for_name(v, name)
            .iter()
            .filter_map(|k| Key::parse(k))
            .flat_map(|k| k.items())
            .collect()
    }
}

/// One changed row: before and after.
type RowChange<'r> = (Option<&'r Row>, Option<&'r Row>);

/// Whether a change matters when only `cols` are read (inserts and deletes always do).
fn touches(c: &RowChange, cols: &[&str]) -> bool {
    match c {
        (Some(o), Some(n)) => cols.iter().any(|col| o.get(col) != n.get(col)),
        _ => true,
    }
}

fn sides<'r>(c: &RowChange<'r>) -> impl Iterator<Item = &'r Row> {
    [c.0, c.1].into_iter().flatten()
}

fn uuid_of(c: &RowChange) -> Option<Uuid> {
    sides(c).next().map(Row::uuid)
}

/// Maps changed rows to keys, building the dependency index once if needed.
struct Mapper<'v, 'a> {
    v: &'v Views<'a>,
    topo: Option<Topo>,
    keys: Keys,
}

impl Mapper<'_, '_> {
    fn add_from(&mut self, need: Need, f: impl Fn(&Topo) -> Vec<String>) {
        let v = self.v;
        let t = self.topo.get_or_insert_with(Topo::default);
        t.ensure(v, need);
        let ks = f(t);
        self.keys.extend(ks);
    }

    fn add(&mut self, k: Key) {
        self.keys.insert(k.encode());
    }

    /// The keys with a port of `name` (a name freed or taken).
    fn named(&mut self, name: &str) {
        let v = self.v;
        let ks = self
            .topo
            .get_or_insert_with(Topo::default)
            .keys_for_name(v, name);
        self.keys.extend(ks);
    }

    /// The keys that read a changed row (a chassis, a datapath) in the current state.
    fn by_uuid(&mut self, c: &RowChange, need: Need, pick: fn(&Topo) -> &HashMap<Uuid, Keys>) {
        if let Some(u) = uuid_of(c) {
            self.add_from(need, |t| {
                pick(t).get(&u).into_iter().flatten().cloned().collect()
            });
        }
    }

    /// The datapath listing a changed port. Only updates matter: an inserted port is listed by
    /// its datapath's row, changed in the same transaction (ports are non-root rows), and a
    /// deleted one is no longer listed (that change of its datapath maps it).
    fn port(&mut self, c: &RowChange, need: Need, pick: fn(&Topo) -> &HashMap<Uuid, Keys>) {
        if c.0.is_some() && c.1.is_some() {
            self.by_uuid(c, need, pick);
        }
    }

    /// Insert, delete or rename of a named row: the keys with a port of either name.
    fn names(&mut self, c: &RowChange, col: &str) {
        if touches(c, &[col]) {
            for r in sides(c) {
                self.named(r.str(col));
            }
        }
    }

    fn map(&mut self, target: Target, table: &str, rows: &[RowChange]) -> Result<(), Unhandled> {
        use Target::*;
        let input = matches!(
            (target, table),
            (
                Nb,
                "Logical_Switch" | "Logical_Router" | "Logical_Switch_Port" | "Logical_Router_Port"
            ) | (Sb, "Chassis" | "Datapath_Binding" | "Port_Binding")
                | (
                    IcNb,
                    "Transit_Switch"
                        | "Transit_Router"
                        | "Transit_Switch_Port"
                        | "Transit_Router_Port"
                )
                | (IcSb | IcSbLocked, "Port_Binding")
        );
        if !input {
            return Err(Unhandled("not an input of the port_binding stage"));
        }
        for c in rows {
            match (target, table) {
                (Nb, "Logical_Switch") => {
                    if !touches(c, &["name", "ports"])
                        && c.0.and_then(|o| o.smap_get("other_config", "interconn-ts"))
                            == c.1.and_then(|n| n.smap_get("other_config", "interconn-ts"))
                    {
                        continue;
                    }
                    for r in sides(c) {
                        if let Some(ts) = r.smap_get("other_config", "interconn-ts") {
                            self.add(Key::Ts(ts.to_string()));
                            self.add(Key::Ts(r.str("name").to_string()));
                        }
                    }
                }
                (Nb, "Logical_Router") => {
                    if !touches(c, &["name", "ports"])
                        && c.0.map(|o| o.smap_get("options", "interconn-tr").is_some())
                            == c.1.map(|n| n.smap_get("options", "interconn-tr").is_some())
                    {
                        continue;
                    }
                    for r in sides(c) {
                        if r.smap_get("options", "interconn-tr").is_some() {
                            self.add(Key::Tr(r.str("name").to_string()));
                        }
                    }
                }
                (Nb, "Logical_Switch_Port") => {
                    if touches(c, &["name", "type", "options", "addresses", "peer"]) {
                        self.port(c, NB, |t| &t.lsp);
                        self.names(c, "name");
                    }
                }
                (Nb, "Logical_Router_Port") => {
                    if touches(c, &["name", "options", "mac", "networks"]) {
                        self.port(c, NB, |t| &t.lrp);
                        self.names(c, "name");
                    }
                }
                (Sb, "Chassis") => {
                    let is_remote =
                        |r: &Row| smap_bool_default_false(r.smap_get("other_config", "is-remote"));
                    let relevant = match c {
                        (Some(o), Some(n)) => {
                            o.str("name") != n.str("name") || is_remote(o) != is_remote(n)
                        }
                        _ => true,
                    };
                    if relevant {
                        self.by_uuid(c, LEGACY, |t| &t.chassis);
                        for r in sides(c) {
                            let n = r.str("name").to_string();
                            self.add_from(CHASSIS_NAMES, |t| {
                                get(&t.chassis_name, n.as_str()).cloned().collect()
                            });
                        }
                    }
                }
                (Sb, "Datapath_Binding") => {
                    if touches(c, &["type", "nb_uuid", "external_ids"]) {
                        self.by_uuid(c, LEGACY, |t| &t.dp);
                    }
                }
                (Sb, "Port_Binding") => {
                    if touches(
                        c,
                        &["logical_port", "options", "chassis", "mac", "datapath"],
                    ) {
                        for r in sides(c) {
                            let n = r.str("logical_port").to_string();
                            self.add_from(LEGACY, |t| get(&t.sb_pb, n.as_str()).cloned().collect());
                        }
                    }
                }
                (IcNb, "Transit_Switch") => {
                    if touches(c, &["name", "ports"]) {
                        for r in sides(c) {
                            self.add(Key::Ts(r.str("name").to_string()));
                        }
                    }
                }
                (IcNb, "Transit_Router") => {
                    if touches(c, &["name", "ports"]) {
                        for r in sides(c) {
                            self.add(Key::Tr(r.str("name").to_string()));
                        }
                    }
                }
                (IcNb, "Transit_Switch_Port") => {
                    if touches(c, &["name", "type", "chassis", "peer", "addresses"]) {
                        self.port(c, IC, |t| &t.tsp);
                    }
                }
                (IcNb, "Transit_Router_Port") => {
                    if touches(c, &["name", "chassis", "mac", "networks"]) {
                        self.port(c, IC, |t| &t.trp);
                    }
                }
                (IcSb | IcSbLocked, "Port_Binding") => {
                    for r in sides(c) {
                        self.add(Key::of_binding(r));
                    }
                    self.names(c, "logical_port");
                }
                _ => return Err(Unhandled("not an input of the port_binding stage")),
            }
        }
        Ok(())
    }
}

/// The keys that changes to `table` of database `target` touch (see the module documentation).
pub fn keys_for_table(
    v: &Views,
    _ctx: &Ctx,
    target: Target,
    table: &str,
    changes: &[Change],
) -> Result<Keys, Unhandled> {
    let rows: Vec<RowChange> = changes.iter().map(|c| (c.old, c.new)).collect();
    let mut m = Mapper {
        v,
        topo: None,
        keys: Keys::new(),
    };
    m.map(target, table, &rows)?;
    Ok(m.keys)
}

/// The keys that an earlier stage's writes of this run (`upstream`, already layered in `v`)
/// touch: each written row is mapped like a table change from the committed row to the row as
/// written. Rows of tables the stage never reads are ignored; a write of the local AZ's row is
/// Unhandled.
pub fn keys_for_stage(v: &Views, _ctx: &Ctx, upstream: &Out) -> Result<Keys, Unhandled> {
    let mut m = Mapper {
        v,
        topo: None,
        keys: Keys::new(),
    };
    for target in [
        Target::Nb,
        Target::Sb,
        Target::IcNb,
        Target::IcSb,
        Target::IcSbLocked,
    ] {
        let view = match target {
            Target::Nb => &v.nb,
            Target::Sb => &v.sb,
            Target::IcNb => &v.icnb,
            Target::IcSb | Target::IcSbLocked => &v.icsb,
        };
        let intents = upstream.get(target);
        let tables: Vec<&str> = KNOWN
            .iter()
            .copied()
            .filter(|t| intents.table(t).next().is_some())
            .collect();
        let known: usize = tables.iter().map(|t| intents.table(t).count()).sum();
        if known != intents.len() {
            return Err(Unhandled(
                "an earlier stage wrote a table this stage does not know",
            ));
        }
        for table in tables {
            match (target, table) {
                // Never read by this stage.
                (Target::Sb, "Encap")
                | (Target::IcSb | Target::IcSbLocked, "Encap" | "Gateway" | "Datapath_Binding") => {
                    continue
                }
                (Target::IcSb | Target::IcSbLocked, "Availability_Zone") => {
                    return Err(Unhandled("availability zone written"))
                }
                _ => {}
            }
            let mut pairs: Vec<(Option<&Row>, Option<Cow<Row>>)> = vec![];
            for (u, i) in intents.table(table) {
                let old = view.replica().get(table, *u);
                let new = match i {
                    RowIntent::Delete => None,
                    _ => view.get(table, *u),
                };
                if old != new.as_deref() {
                    pairs.push((old, new));
                }
            }
            let rows: Vec<RowChange> = pairs.iter().map(|(o, n)| (*o, n.as_deref())).collect();
            m.map(target, table, &rows)?;
        }
    }
    Ok(m.keys)
}

/// The tables earlier stages write.
const KNOWN: &[&str] = &[
    "Logical_Switch",
    "Logical_Router",
    "Logical_Switch_Port",
    "Logical_Router_Port",
    "Chassis",
    "Datapath_Binding",
    "Port_Binding",
    "Transit_Switch",
    "Transit_Router",
    "Transit_Switch_Port",
    "Transit_Router_Port",
    "Availability_Zone",
    "Encap",
    "Gateway",
];

/// Redo the full run's work for `keys` only. `out` holds what the node already wants this run:
/// when earlier scoped runs of this engine run made it, the union of their keys and `keys` is
/// redone from scratch (so several handlers in one engine run give the result of one scoped
/// run); otherwise the scoped run reads through it.
pub fn run_scoped(
    v: &Views,
    ctx: &Ctx,
    st: &mut PortBindingState,
    keys: &Keys,
    out: &mut Out,
) -> Result<(), Unhandled> {
    if st.last != Some((ctx.az, ctx.isb_leader)) {
        return Err(Unhandled(
            "no full run yet under this availability zone and ISB leadership",
        ));
    }
    let mut all = keys.clone();
    for k in keys {
        Key::parse(k).ok_or(Unhandled("not a port_binding key"))?;
    }
    match &st.scoped {
        _ if out.is_empty() => st.scoped = Some((keys.clone(), st.hint)),
        Some((before, hint)) => {
            // Another scoped run of this engine run: redo the union from where it started.
            all.extend(before.iter().cloned());
            st.hint = *hint;
            st.scoped = Some((all.clone(), *hint));
            *out = Out::default();
        }
        // Intents this stage did not make in a scoped run: read through them.
        None => {}
    }
    let work: BTreeSet<Item> = all
        .iter()
        .filter_map(|k| Key::parse(k))
        .flat_map(|k| k.items())
        .collect();
    if work.is_empty() {
        return Ok(());
    }
    let prev = std::mem::take(out);
    let mut fresh = Out::default();
    {
        let v = v.with(&prev);
        let mut topo: Option<Topo> = None;
        let mut r = Run::new(&v, ctx, st, &mut fresh, false);
        r.drive(work, |name| {
            topo.get_or_insert_with(Topo::default)
                .steps_for_name(&v, name)
        });
    }
    *out = prev;
    out.merge(&fresh);
    Ok(())
}

#[cfg(test)]
#[path = "incr_tests.rs"]
mod tests;
