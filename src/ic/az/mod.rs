//! Availability-zone registration (spec ovn-ic-core.md §4.1).
//!
//! Runs before the engine in every iteration where the sync may run. It finds (or registers) the
//! local AZ's `IC-SB Availability_Zone` row, whose UUID every later stage uses as "our AZ"
//! ([`crate::ic::Ctx::az`]). Writes go through the unlocked IC-SB session ([`Out::icsb`]).
//!
//! Process-lifetime state: the AZ name seen in an earlier iteration ([`AzState`]), so that a
//! change of `NB_Global.name` renames the row in place (keeping its UUID, so Gateway /
//! Port_Binding / Route rows referencing it stay valid) and an empty name deletes it.
//!
//! Choices where the spec leaves room:
//! * Quirk Q4 (a failed delete after clearing the name is never retried) is **kept**. Retrying
//!   would be pointless: while the name is empty this AZ is idle, so nothing removes the rows
//!   that reference the AZ and make the delete fail; a retry would just fail again, and a failed
//!   commit forces an immediate recompute, i.e. a busy loop of failing transactions.
//! * Renaming to a name another row already has: upstream sets the name anyway and the commit
//!   fails on the `[name]` index; the name is forgotten by then, so the next iteration adopts the
//!   existing row and the old one is orphaned. We go straight to that end state (no rename, WARN)
//!   instead of sending a transaction that is bound to fail.

use crate::ic::{Out, Target, Views};
use crate::ovsdb::replica::{Change, ChangeKind};
use crate::ovsdb::{Datum, Uuid};

const AZ_TABLE: &str = "Availability_Zone";

/// What the AZ stage remembers across iterations of one process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AzState {
    /// The AZ name registered by an earlier iteration (`static char *az_name` upstream).
    remembered: Option<String>,
}

impl AzState {
    pub fn new() -> AzState {
        AzState::default()
    }

    /// The name remembered from an earlier iteration, if any.
    pub fn remembered(&self) -> Option<&str> {
        self.remembered.as_deref()
    }
}

/// The result of AZ determination for this iteration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AzOutcome {
    /// No `NB_Global` row: nothing else runs this iteration.
    NoNbGlobal,
    /// `NB_Global.name` is empty: the daemon is idle.
    NoName,
    /// The local AZ: its row (possibly inserted by this run, uncommitted) and name.
    Az { uuid: Uuid, name: String },
}

impl AzOutcome {
    /// The local AZ row's UUID and name, when there is one.
    pub fn az(&self) -> Option<(Uuid, &str)> {
        match self {
            AzOutcome::Az { uuid, name } => Some((*uuid, name.as_str())),
            _ => None,
        }
    }
}

/// Determine (and register, rename or delete) the local AZ. See the module documentation.
pub fn run(v: &Views, st: &mut AzState, out: &mut Out) -> AzOutcome {
    let outcome = determine(v, st, out);
    match &outcome {
        AzOutcome::Az { name, .. } => {
            tracing::debug!(target: "ovn_ic", "Availability zone: {}", name)
        }
        _ => tracing::debug!(target: "ovn_ic", "Availability zone: not created yet."),
    }
    outcome
}

fn determine(v: &Views, st: &mut AzState, out: &mut Out) -> AzOutcome {
    // `nbrec_nb_global_first`: the table has at most one row; take the first in UUID order.
    let Some(nb_global) = v.nb.rows("NB_Global").into_iter().next() else {
        tracing::info!(target: "ovn_ic", "NB Global not exist.");
        return AzOutcome::NoNbGlobal;
    };
    let name = nb_global.str("name").to_string();

    // The name changed while we run: rename the old row in place, or delete it for "".
    if let Some(old) = st.remembered.take_if(|old| *old != name) {
        if let Some(row) = v
            .icsb
            .find_by_str(AZ_TABLE, "name", &old)
            .into_iter()
            .next()
        {
            let uuid = row.uuid();
            if name.is_empty() {
                out.icsb.delete(AZ_TABLE, uuid);
            } else if v
                .icsb
                .find_by_str(AZ_TABLE, "name", &name)
                .iter()
                .any(|r| r.uuid() != uuid)
            {
                tracing::warn!(
                    target: "ovn_ic",
                    "Availability zone {} already exists in the interconnection DB; not renaming {} to it.",
                    name,
                    old
                );
            } else {
                out.icsb
                    .update(AZ_TABLE, uuid, vec![("name", Datum::scalar(name.as_str()))]);
            }
        }
    }

    if name.is_empty() {
        return AzOutcome::NoName;
    }

    if st.remembered.is_none() {
        st.remembered = Some(name.clone());
    }
    out.icsb.add_comment(&format!("AZ {name}"));

    // Read through our own intents so a rename just made is seen (read-your-writes).
    let view = v.icsb.with(&out.icsb);
    if let Some(row) = view.find_by_str(AZ_TABLE, "name", &name).into_iter().next() {
        return AzOutcome::Az {
            uuid: row.uuid(),
            name,
        };
    }

    tracing::info!(target: "ovn_ic", "Register AZ {} to interconnection DB.", name);
    let uuid = out
        .icsb
        .insert(AZ_TABLE, vec![("name", Datum::scalar(name.as_str()))]);
    AzOutcome::Az { uuid, name }
}

/// Whether tracked `changes` of `table` in database `target` may change what [`run`] decides
/// or writes, given the state and outcome of the last run. False means the AZ node can keep
/// its outcome and write nothing (the change handler's "unchanged").
///
/// [`run`] reads only the `name` of the first `NB_Global` row and the IC-SB `Availability_Zone`
/// rows named like the local AZ (the remembered name equals it after every run with a local
/// AZ). So: an `NB_Global` row inserted or deleted, or its `name` changed, matters; an
/// `Availability_Zone` change matters when the row is the local AZ's or carries (or carried)
/// its name, and only while there is a local AZ. Any other input is assumed to matter.
pub fn changes_matter(
    st: &AzState,
    outcome: &AzOutcome,
    target: Target,
    table: &str,
    changes: &[Change],
) -> bool {
    match (target, table) {
        (Target::Nb, "NB_Global") => changes
            .iter()
            .any(|c| c.kind != ChangeKind::Updated || c.column_changed("name")),
        (Target::IcSb | Target::IcSbLocked, AZ_TABLE) => {
            let Some((uuid, name)) = outcome.az() else {
                return false;
            };
            let names = [Some(name), st.remembered()];
            changes.iter().any(|c| {
                c.uuid == uuid
                    || [c.old, c.new]
                        .into_iter()
                        .flatten()
                        .any(|r| names.contains(&Some(r.str("name"))))
            })
        }
        _ => true,
    }
}

/// Log capture for the stage tests of this directory (target `ovn_ic`, every level).
#[cfg(test)]
pub(crate) mod test_logs {
    use std::sync::{Arc, Mutex};
    use tracing::field::{Field, Visit};
    use tracing_subscriber::layer::{Context, SubscriberExt};
    use tracing_subscriber::Layer;

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<String>>>);

    struct MsgVisitor(String);
    impl Visit for MsgVisitor {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            if field.name() == "message" {
                self.0 = format!("{value:?}");
            }
        }
    }

    impl<S: tracing::Subscriber> Layer<S> for Capture {
        fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
            let meta = event.metadata();
            if meta.target() != "ovn_ic" {
                return;
            }
            let mut v = MsgVisitor(String::new());
            event.record(&mut v);
            if let Ok(mut l) = self.0.lock() {
                l.push(format!("{} {}", meta.level(), v.0));
            }
        }
    }

    /// Run `f` and return its result with the `"LEVEL message"` lines it logged.
    pub(crate) fn with_logs<R>(f: impl FnOnce() -> R) -> (R, Vec<String>) {
        let cap = Capture::default();
        let sub = tracing_subscriber::registry().with(cap.clone());
        let r = tracing::subscriber::with_default(sub, f);
        let logs = cap.0.lock().map(|l| l.clone()).unwrap_or_default();
        (r, logs)
    }
}

#[cfg(test)]
pub(crate) mod test_incr;

#[cfg(test)]
mod tests {
    use super::test_logs::with_logs;
    use super::*;
    use crate::ic::testutil::{empty, replica, u};
    use crate::ic::Dbs;
    use crate::ovsdb::overlay::RowIntent;
    use crate::ovsdb::replica::Replica;
    use serde_json::{json, Value};

    struct World {
        nb: Replica,
        sb: Replica,
        icnb: Replica,
        icsb: Replica,
    }

    impl World {
        fn new(nb_global: Option<&str>, azs: Value) -> World {
            let nb = match nb_global {
                Some(n) => replica("ovn-nb", json!({"NB_Global": {u(100): {"name": n}}})),
                None => empty("ovn-nb"),
            };
            World {
                nb,
                sb: empty("ovn-sb"),
                icnb: empty("ovn-ic-nb"),
                icsb: replica("ovn-ic-sb", azs),
            }
        }
        fn views(&self) -> Views<'_> {
            Views::new(Dbs {
                nb: &self.nb,
                sb: &self.sb,
                icnb: &self.icnb,
                icsb: &self.icsb,
                icsb_locked: &self.icsb,
            })
        }
        fn run(&self, st: &mut AzState) -> (AzOutcome, Out, Vec<String>) {
            let mut out = Out::default();
            let (r, logs) = with_logs(|| run(&self.views(), st, &mut out));
            (r, out, logs)
        }
    }

    fn uuid(n: u32) -> Uuid {
        Uuid(u128::from(n))
    }

    fn azs(rows: &[(u32, &str)]) -> Value {
        let m: serde_json::Map<String, Value> = rows
            .iter()
            .map(|(n, name)| (u(*n), json!({"name": name})))
            .collect();
        json!({ "Availability_Zone": m })
    }

    fn name_of(i: &RowIntent) -> Option<String> {
        match i {
            RowIntent::Insert(c) | RowIntent::Update(c) => {
                c.get("name").and_then(|d| d.as_str()).map(str::to_string)
            }
            RowIntent::Delete => None,
        }
    }

    #[test]
    fn no_nb_global() {
        let w = World::new(None, azs(&[(1, "az1")]));
        let mut st = AzState::new();
        let (r, out, logs) = w.run(&mut st);
        assert_eq!(r, AzOutcome::NoNbGlobal);
        assert!(out.is_empty() && out.icsb.comments().is_empty());
        assert_eq!(
            logs,
            [
                "INFO NB Global not exist.",
                "DEBUG Availability zone: not created yet."
            ]
        );
        assert_eq!(st.remembered(), None);
    }

    #[test]
    fn empty_name_is_idle() {
        let w = World::new(Some(""), azs(&[(1, "az1")]));
        let mut st = AzState::new();
        let (r, out, logs) = w.run(&mut st);
        assert_eq!(r, AzOutcome::NoName);
        assert!(out.is_empty() && out.icsb.comments().is_empty());
        assert_eq!(logs, ["DEBUG Availability zone: not created yet."]);
        assert_eq!(st.remembered(), None);
    }

    #[test]
    fn registers_new_az() {
        let w = World::new(Some("az1"), azs(&[(2, "az2")]));
        let mut st = AzState::new();
        let (r, out, logs) = w.run(&mut st);
        let AzOutcome::Az { uuid: new, name } = &r else {
            panic!("{r:?}")
        };
        assert_eq!(name, "az1");
        let ins: Vec<_> = out.icsb.table(AZ_TABLE).collect();
        assert_eq!(ins.len(), 1);
        assert_eq!(ins[0].0, new);
        assert!(matches!(ins[0].1, RowIntent::Insert(_)));
        assert_eq!(name_of(ins[0].1).as_deref(), Some("az1"));
        assert_eq!(out.icsb.comments(), ["AZ az1"]);
        assert!(
            out.nb.is_empty()
                && out.sb.is_empty()
                && out.icnb.is_empty()
                && out.icsb_locked.is_empty()
        );
        assert_eq!(
            logs,
            [
                "INFO Register AZ az1 to interconnection DB.",
                "DEBUG Availability zone: az1"
            ]
        );
        assert_eq!(st.remembered(), Some("az1"));
        // Later stages see the uncommitted row.
        let v = w.views();
        let v2 = v.with(&out);
        assert_eq!(v2.icsb.get(AZ_TABLE, *new).unwrap().str("name"), "az1");
        assert_eq!(
            v2.icsb_locked.get(AZ_TABLE, *new).unwrap().str("name"),
            "az1"
        );
    }

    #[test]
    fn finds_existing_az() {
        let w = World::new(Some("az1"), azs(&[(1, "az1"), (2, "az2")]));
        let mut st = AzState::new();
        let (r, out, logs) = w.run(&mut st);
        assert_eq!(
            r,
            AzOutcome::Az {
                uuid: uuid(1),
                name: "az1".into()
            }
        );
        assert_eq!(r.az(), Some((uuid(1), "az1")));
        assert!(out.is_empty());
        assert_eq!(out.icsb.comments(), ["AZ az1"]);
        assert_eq!(logs, ["DEBUG Availability zone: az1"]);
        // Steady state: same result, nothing written.
        let (r2, out2, _) = w.run(&mut st);
        assert_eq!(r2, r);
        assert!(out2.is_empty());
    }

    #[test]
    fn rename_keeps_uuid() {
        // `ovn-ic -- AZ register`: az1 renamed to az3 in NB.
        let mut st = AzState::new();
        let w = World::new(Some("az1"), azs(&[(1, "az1"), (2, "az2")]));
        w.run(&mut st);
        let w = World::new(Some("az3"), azs(&[(1, "az1"), (2, "az2")]));
        let (r, out, logs) = w.run(&mut st);
        assert_eq!(
            r,
            AzOutcome::Az {
                uuid: uuid(1),
                name: "az3".into()
            }
        );
        let writes: Vec<_> = out.icsb.table(AZ_TABLE).collect();
        assert_eq!(writes.len(), 1);
        assert_eq!(*writes[0].0, uuid(1));
        assert!(matches!(writes[0].1, RowIntent::Update(_)));
        assert_eq!(name_of(writes[0].1).as_deref(), Some("az3"));
        assert_eq!(out.icsb.comments(), ["AZ az3"]);
        assert!(!logs.iter().any(|l| l.contains("Register AZ")));
        assert_eq!(st.remembered(), Some("az3"));
        // After the commit the row is found by its new name; nothing more is written.
        let w = World::new(Some("az3"), azs(&[(1, "az3"), (2, "az2")]));
        let (r, out, _) = w.run(&mut st);
        assert_eq!(
            r,
            AzOutcome::Az {
                uuid: uuid(1),
                name: "az3".into()
            }
        );
        assert!(out.is_empty());
    }

    #[test]
    fn empty_name_deletes_row_once() {
        // `ovn-ic -- AZ register`: az2's name set to "" → only az3 remains.
        let mut st = AzState::new();
        let w = World::new(Some("az2"), azs(&[(1, "az3"), (2, "az2")]));
        w.run(&mut st);
        let w = World::new(Some(""), azs(&[(1, "az3"), (2, "az2")]));
        let (r, out, _) = w.run(&mut st);
        assert_eq!(r, AzOutcome::NoName);
        assert_eq!(out.icsb.get(AZ_TABLE, uuid(2)), Some(&RowIntent::Delete));
        assert_eq!(out.icsb.len(), 1);
        assert!(out.icsb.comments().is_empty());
        assert_eq!(st.remembered(), None);
        // Q4 kept: if that delete failed (row still there), it is not retried.
        let (r, out, _) = w.run(&mut st);
        assert_eq!(r, AzOutcome::NoName);
        assert!(out.is_empty());
    }

    #[test]
    fn rename_without_old_row_registers_new() {
        let mut st = AzState::new();
        let w = World::new(Some("az1"), azs(&[(1, "az1")]));
        w.run(&mut st);
        // The old row vanished (deleted externally) and the name changed.
        let w = World::new(Some("az9"), azs(&[]));
        let (r, out, logs) = w.run(&mut st);
        let AzOutcome::Az { uuid: new, name } = r else {
            panic!()
        };
        assert_eq!(name, "az9");
        assert!(matches!(
            out.icsb.get(AZ_TABLE, new),
            Some(RowIntent::Insert(_))
        ));
        assert!(logs.contains(&"INFO Register AZ az9 to interconnection DB.".to_string()));
        assert_eq!(st.remembered(), Some("az9"));
    }

    #[test]
    fn reregisters_after_external_delete() {
        let mut st = AzState::new();
        let w = World::new(Some("az1"), azs(&[(1, "az1")]));
        w.run(&mut st);
        let w = World::new(Some("az1"), azs(&[]));
        let (r, out, _) = w.run(&mut st);
        let AzOutcome::Az { uuid: new, .. } = r else {
            panic!()
        };
        assert_ne!(new, uuid(1));
        assert!(matches!(
            out.icsb.get(AZ_TABLE, new),
            Some(RowIntent::Insert(_))
        ));
    }

    #[test]
    fn rename_onto_existing_name_adopts_it() {
        let mut st = AzState::new();
        let w = World::new(Some("az1"), azs(&[(1, "az1"), (2, "az2")]));
        w.run(&mut st);
        let w = World::new(Some("az2"), azs(&[(1, "az1"), (2, "az2")]));
        let (r, out, logs) = w.run(&mut st);
        assert_eq!(
            r,
            AzOutcome::Az {
                uuid: uuid(2),
                name: "az2".into()
            }
        );
        assert!(out.is_empty());
        assert!(logs.iter().any(|l| l.starts_with("WARN ")));
        assert_eq!(st.remembered(), Some("az2"));
    }

    #[test]
    fn name_change_back_and_forth_while_uncommitted() {
        // The rename is forgotten at once, even though it has not committed yet: a second change
        // before the commit looks for the intermediate name (upstream behaviour).
        let mut st = AzState::new();
        let w = World::new(Some("a"), azs(&[(1, "a")]));
        w.run(&mut st);
        let w = World::new(Some("b"), azs(&[(1, "a")]));
        w.run(&mut st);
        assert_eq!(st.remembered(), Some("b"));
        let w = World::new(Some("a"), azs(&[(1, "a")]));
        let (r, out, _) = w.run(&mut st);
        // No row named "b" exists (the rename never committed): "a" is simply found again.
        assert_eq!(
            r,
            AzOutcome::Az {
                uuid: uuid(1),
                name: "a".into()
            }
        );
        assert!(out.is_empty());
    }

    #[test]
    fn changes_matter_only_for_the_local_az() {
        use crate::ic::Target;
        let mut w = World::new(Some("az1"), azs(&[(1, "az1"), (2, "az2")]));
        let mut st = AzState::new();
        let (outcome, _, _) = w.run(&mut st);
        let nb_change = |w: &mut World, upd: Value| {
            w.nb.clear_changes();
            w.nb.apply_update2(&json!({ "NB_Global": { u(100): upd } }))
                .unwrap();
        };
        let matters = |w: &World, st: &AzState, o: &AzOutcome, t: Target, table: &str| {
            let r = if t == Target::Nb { &w.nb } else { &w.icsb };
            changes_matter(st, o, t, table, &r.changes(table))
        };
        // NB_Global: options are not the AZ's business, the name is.
        nb_change(
            &mut w,
            json!({"modify": {"options": ["map", [["ic-as-adv", "true"]]]}}),
        );
        assert!(!matters(&w, &st, &outcome, Target::Nb, "NB_Global"));
        nb_change(&mut w, json!({"modify": {"name": "az9"}}));
        assert!(matters(&w, &st, &outcome, Target::Nb, "NB_Global"));
        nb_change(&mut w, json!({"delete": null}));
        assert!(matters(&w, &st, &outcome, Target::Nb, "NB_Global"));
        // Availability_Zone: other AZs do not matter; ours, or a row taking our name, does.
        let isb_change = |w: &mut World, n: u32, upd: Value| {
            w.icsb.clear_changes();
            w.icsb
                .apply_update2(&json!({ "Availability_Zone": { u(n): upd } }))
                .unwrap();
        };
        isb_change(&mut w, 3, json!({"insert": {"name": "az3"}}));
        assert!(!matters(&w, &st, &outcome, Target::IcSb, AZ_TABLE));
        isb_change(&mut w, 2, json!({"modify": {"name": "az22"}}));
        assert!(!matters(&w, &st, &outcome, Target::IcSb, AZ_TABLE));
        isb_change(&mut w, 3, json!({"modify": {"name": "az1"}}));
        assert!(matters(&w, &st, &outcome, Target::IcSb, AZ_TABLE));
        isb_change(&mut w, 1, json!({"delete": null}));
        assert!(matters(&w, &st, &outcome, Target::IcSb, AZ_TABLE));
        // Without a local AZ, IC-SB changes are irrelevant.
        assert!(!matters(
            &w,
            &st,
            &AzOutcome::NoName,
            Target::IcSb,
            AZ_TABLE
        ));
        assert!(matters(&w, &st, &outcome, Target::Sb, "Chassis"));
    }
}
