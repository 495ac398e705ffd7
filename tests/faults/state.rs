//! The rows ovn-ic is responsible for, rendered as exact one-line strings per database, and the
//! expected rendering of the standard topology (see `env.rs`), so a test can assert the final
//! state exactly and print a readable diff.
//!
//! Lines (UUIDs resolved to names; tunnel keys checked for consistency instead of printed, since
//! which AZ wins a key is a race):
//! * `isb`: `AZ <name>`, `DP <ts>`, `GW <chassis> az=<az> enc=<type>:<ip>`,
//!   `PB <ts> <port> az=<az> addr=<address> gw=<gateway>`,
//!   `RT <ts> <az> <prefix> -> <nexthop> <origin> rtb=<table>`;
//! * `nb:<az>`: `TS <ts> tnl=<isb|value>` (NB switch image; `isb` when its
//!   `requested-tnl-key` equals the ISB key), `LSP <ts> <port> type=<t> addrs=<a,b> tnl=<…>`
//!   (every port of a transit switch), `SR <lr> <prefix> -> <nexthop>` (the CMS's own static
//!   routes), `LRN <lr> <prefix> -> <nexthop> rtb=<t> from=<az>/<ts>`
//!   (learned routes; `from=gone` when the ISB row they name does not exist);
//! * `sb:<az>`: `CH <name> remote=<bool> enc=<type>:<ip>`.

#![allow(dead_code)]

use std::collections::BTreeMap;

use anyhow::Result;
use serde_json::Value;

use super::env::Env;
use crate::common::rows;

/// Section name → sorted lines.
pub type State = BTreeMap<String, Vec<String>>;

/// A value in OVSDB JSON notation as plain JSON (`["uuid", U]` → `U`, sets → sorted arrays,
/// maps → objects).
pub fn norm(v: &Value) -> Value {
    if let Some([Value::String(tag), inner]) = v.as_array().map(Vec::as_slice) {
        match tag.as_str() {
            "uuid" | "named-uuid" => return inner.clone(),
            "set" => {
                let mut xs: Vec<Value> = inner
                    .as_array()
                    .map(|a| a.iter().map(norm).collect())
                    .unwrap_or_default();
                xs.sort_by_cached_key(Value::to_string);
                return Value::Array(xs);
            }
            "map" => {
                let mut m = serde_json::Map::new();
                for pair in inner.as_array().map(Vec::as_slice).unwrap_or_default() {
                    if let Some([k, val]) = pair.as_array().map(Vec::as_slice) {
                        m.insert(k.as_str().unwrap_or_default().to_string(), norm(val));
                    }
                }
                return Value::Object(m);
            }
            _ => {}
        }
    }
    v.clone()
}

/// A scalar column as a string (`""` for an empty optional value).
pub fn s(row: &Value, col: &str) -> String {
    match row.get(col).map(norm) {
        Some(Value::String(x)) => x,
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Array(xs)) if xs.len() == 1 => match &xs[0] {
            Value::String(x) => x.clone(),
            other => other.to_string(),
        },
        _ => String::new(),
    }
}

/// A set column as strings.
pub fn set(row: &Value, col: &str) -> Vec<String> {
    match row.get(col).map(norm) {
        Some(Value::Array(xs)) => xs
            .iter()
            .map(|x| x.as_str().map(str::to_string).unwrap_or(x.to_string()))
            .collect(),
        Some(Value::String(x)) => vec![x],
        Some(Value::Number(n)) => vec![n.to_string()],
        _ => Vec::new(),
    }
}

/// One key of a map column.
pub fn key(row: &Value, col: &str, k: &str) -> Option<String> {
    row.get(col)
        .map(norm)
        .and_then(|m| m.get(k).and_then(Value::as_str).map(str::to_string))
}

fn uuid(row: &Value) -> String {
    s(row, "_uuid")
}

/// Reads every database and renders the state.
pub fn read(env: &Env) -> Result<State> {
    let isb = env.isb.dump()?;
    let mut st = State::new();
    let az_name = |u: &str| -> String {
        rows(&isb, "Availability_Zone")
            .iter()
            .find(|a| uuid(a) == u)
            .map(|a| s(a, "name"))
            .unwrap_or_else(|| format!("!{u}"))
    };
    let encap = |db: &Value, row: &Value| -> String {
        let mut encs: Vec<String> = set(row, "encaps")
            .iter()
            .filter_map(|u| rows(db, "Encap").iter().find(|e| uuid(e) == *u))
            .map(|e| format!("{}:{}", s(e, "type"), s(e, "ip")))
            .collect();
        encs.sort();
        encs.join(",")
    };
    let mut lines = Vec::new();
    for r in rows(&isb, "Availability_Zone") {
        lines.push(format!("AZ {}", s(r, "name")));
    }
    let mut dp_keys = BTreeMap::new();
    for r in rows(&isb, "Datapath_Binding") {
        lines.push(format!("DP {}", s(r, "transit_switch")));
        dp_keys.insert(s(r, "transit_switch"), s(r, "tunnel_key"));
    }
    for r in rows(&isb, "Gateway") {
        lines.push(format!(
            "GW {} az={} enc={}",
            s(r, "name"),
            az_name(&s(r, "availability_zone")),
            encap(&isb, r)
        ));
    }
    let mut pb_keys = BTreeMap::new();
    for r in rows(&isb, "Port_Binding") {
        lines.push(format!(
            "PB {} {} az={} addr={} gw={}",
            s(r, "transit_switch"),
            s(r, "logical_port"),
            az_name(&s(r, "availability_zone")),
            s(r, "address"),
            s(r, "gateway")
        ));
        pb_keys.insert(s(r, "logical_port"), s(r, "tunnel_key"));
    }
    let mut route_from = BTreeMap::new();
    for r in rows(&isb, "Route") {
        let az = az_name(&s(r, "availability_zone"));
        route_from.insert(uuid(r), format!("{az}/{}", s(r, "transit_switch")));
        lines.push(format!(
            "RT {} {az} {} -> {} {} rtb={}",
            s(r, "transit_switch"),
            s(r, "ip_prefix"),
            s(r, "nexthop"),
            s(r, "origin"),
            s(r, "route_table")
        ));
    }
    lines.sort();
    st.insert("isb".into(), lines);

    let tnl = |want: Option<&String>, got: Option<String>| -> String {
        match (want, got) {
            (Some(w), Some(g)) if *w == g => "isb".into(),
            (_, Some(g)) => g,
            (_, None) => "-".into(),
        }
    };
    for az in &env.azs {
        let nb = az.nb.dump()?;
        let mut lines = Vec::new();
        for ls in rows(&nb, "Logical_Switch") {
            let Some(ts) = key(ls, "other_config", "interconn-ts") else {
                continue;
            };
            lines.push(format!(
                "TS {ts} tnl={}",
                tnl(
                    dp_keys.get(&ts),
                    key(ls, "other_config", "requested-tnl-key")
                )
            ));
            for p in set(ls, "ports") {
                let Some(lsp) = rows(&nb, "Logical_Switch_Port")
                    .iter()
                    .find(|r| uuid(r) == p)
                else {
                    continue;
                };
                let name = s(lsp, "name");
                lines.push(format!(
                    "LSP {ts} {name} type={} addrs={} tnl={}",
                    s(lsp, "type"),
                    set(lsp, "addresses").join(","),
                    tnl(pb_keys.get(&name), key(lsp, "options", "requested-tnl-key"))
                ));
            }
        }
        for lr in rows(&nb, "Logical_Router") {
            for sr in set(lr, "static_routes") {
                let Some(r) = rows(&nb, "Logical_Router_Static_Route")
                    .iter()
                    .find(|r| uuid(r) == sr)
                else {
                    continue;
                };
                let Some(from) = key(r, "external_ids", "ic-learned-route") else {
                    lines.push(format!(
                        "SR {} {} -> {}",
                        s(lr, "name"),
                        s(r, "ip_prefix"),
                        s(r, "nexthop")
                    ));
                    continue;
                };
                lines.push(format!(
                    "LRN {} {} -> {} rtb={} from={}",
                    s(lr, "name"),
                    s(r, "ip_prefix"),
                    s(r, "nexthop"),
                    s(r, "route_table"),
                    route_from.get(&from).map(String::as_str).unwrap_or("gone")
                ));
            }
        }
        lines.sort();
        st.insert(format!("nb:{}", az.name), lines);

        let sb = az.sb.dump()?;
        let mut lines = Vec::new();
        for ch in rows(&sb, "Chassis") {
            lines.push(format!(
                "CH {} remote={} enc={}",
                s(ch, "name"),
                key(ch, "other_config", "is-remote").unwrap_or("false".into()),
                encap(&sb, ch)
            ));
        }
        lines.sort();
        st.insert(format!("sb:{}", az.name), lines);
    }
    Ok(st)
}

/// What the standard topology converges to with `azs` AZs, transit switches `tss` (`ts1` among
/// them) and, per AZ, the extra static routes `routes[az]` (prefixes; next hop
/// `192.168.<n>.10`) besides the base `10.<n>.1.0/24`.
pub fn expected(azs: usize, tss: &[&str], routes: &[Vec<String>]) -> State {
    let mut st = State::new();
    let mut isb = Vec::new();
    let prefixes = |m: usize| -> Vec<(String, &'static str)> {
        let mut v = vec![
            (format!("192.168.{m}.1/24"), "connected"),
            (format!("10.{m}.1.0/24"), "static"),
        ];
        v.extend(
            routes
                .get(m - 1)
                .into_iter()
                .flatten()
                .map(|p| (p.clone(), "static")),
        );
        v
    };
    for ts in tss {
        isb.push(format!("DP {ts}"));
    }
    for m in 1..=azs {
        isb.push(format!("AZ az{m}"));
        isb.push(format!("GW gw-az{m} az=az{m} enc=geneve:192.0.2.{m}"));
        isb.push(format!(
            "PB ts1 lsp-lr{m}-ts1 az=az{m} addr=aa:aa:aa:aa:aa:0{m} 169.254.100.{m}/24 gw="
        ));
        for (p, origin) in prefixes(m) {
            isb.push(format!("RT ts1 az{m} {p} -> 169.254.100.{m} {origin} rtb="));
        }
    }
    isb.sort();
    st.insert("isb".into(), isb);
    for n in 1..=azs {
        let mut nb = Vec::new();
        for ts in tss {
            nb.push(format!("TS {ts} tnl=isb"));
        }
        let mut sb = Vec::new();
        for m in 1..=azs {
            sb.push(format!(
                "CH gw-az{m} remote={} enc=geneve:192.0.2.{m}",
                m != n
            ));
            if m == n {
                for (p, origin) in prefixes(m) {
                    if origin == "static" {
                        nb.push(format!("SR lr{n} {p} -> 192.168.{n}.10"));
                    }
                }
                nb.push(format!(
                    "LSP ts1 lsp-lr{m}-ts1 type=router addrs=router tnl=isb"
                ));
                continue;
            }
            nb.push(format!(
                "LSP ts1 lsp-lr{m}-ts1 type=remote addrs=aa:aa:aa:aa:aa:0{m} 169.254.100.{m}/24 tnl=isb"
            ));
            for (p, _) in prefixes(m) {
                nb.push(format!(
                    "LRN lr{n} {p} -> 169.254.100.{m} rtb= from=az{m}/ts1"
                ));
            }
        }
        nb.sort();
        sb.sort();
        st.insert(format!("nb:az{n}"), nb);
        st.insert(format!("sb:az{n}"), sb);
    }
    st
}

/// Readable description of how `got` differs from `want`.
pub fn diff(want: &State, got: &State) -> String {
    let mut out = String::new();
    let empty = Vec::new();
    for (k, w) in want {
        let g = got.get(k).unwrap_or(&empty);
        let missing: Vec<&String> = w.iter().filter(|l| !g.contains(l)).collect();
        let extra: Vec<&String> = g.iter().filter(|l| !w.contains(l)).collect();
        // Duplicates count too: the same line twice is a row written twice.
        if missing.is_empty() && extra.is_empty() && w.len() == g.len() {
            continue;
        }
        out.push_str(&format!("== {k}\n"));
        for l in missing {
            out.push_str(&format!("  missing: {l}\n"));
        }
        for l in extra {
            out.push_str(&format!("  extra:   {l}\n"));
        }
        out.push_str("  all seen:\n");
        for l in g {
            out.push_str(&format!("    {l}\n"));
        }
    }
    out
}

/// Waits until the state equals `want` twice in a row 500 ms apart; panics with a diff.
pub fn expect(env: &Env, what: &str, want: &State) {
    let mut last: Result<State> = Err(anyhow::anyhow!("never read"));
    let mut matched_at: Option<std::time::Instant> = None;
    let ok = crate::common::wait_until(super::env::WAIT, || {
        last = read(env);
        match &last {
            Ok(got) if got == want => match matched_at {
                Some(t) => t.elapsed() >= std::time::Duration::from_millis(500),
                None => {
                    matched_at = Some(std::time::Instant::now());
                    false
                }
            },
            _ => {
                matched_at = None;
                false
            }
        }
    });
    if !ok {
        // Diagnosis: does a full recompute fix it (a missed incremental change) or not?
        for d in env.ics.iter().flatten().flatten() {
            let _ = d.appctl(&["inc-engine/recompute"]);
        }
        let fixed = crate::common::wait_until(std::time::Duration::from_secs(15), || {
            read(env).is_ok_and(|got| got == *want)
        });
        panic!(
            "{what}: the rows did not converge (after `inc-engine/recompute` in every ovn-ic \
             they {}converge)\n{}",
            if fixed { "do " } else { "still do not " },
            match &last {
                Ok(got) => diff(want, got),
                Err(e) => format!("reading the state failed: {e:#}"),
            }
        );
    }
}
