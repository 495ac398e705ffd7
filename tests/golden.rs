//! Replays the golden vectors of the upstream C daemon (../shared/golden, when present) against
//! our binary: same input databases, same converged output, compared by the vectors' own
//! normaliser. Skips (with a message) when the folder is absent.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Scenarios whose features are implemented and must match exactly.
const MUST_MATCH: &[&str] = &[
    "address-sets",
    "cleanup",
    "ipv4-via-ipv6",
    "lb-and-discard",
    "route-filters",
    "route-tables",
    "routes-basic",
    "transit-router",
    "ts-port",
    "vxlan-mode",
];

fn golden_dir() -> Option<PathBuf> {
    let d = std::env::var_os("OVN_IC_GOLDEN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/golden"));
    d.join("replay.sh").exists().then_some(d)
}

fn replay(dir: &Path, scenario: &str) -> (bool, String) {
    let out = Command::new("bash")
        .arg(dir.join("replay.sh"))
        .arg(dir.join(scenario))
        .arg(env!("CARGO_BIN_EXE_ovn-ic"))
        .env("REPLAY_TIMEOUT", "60")
        .output()
        .expect("run replay.sh");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.status.success() && text.contains("RESULT: IDENTICAL"),
        text,
    )
}

#[test]
fn golden_core_scenarios_match_the_c_daemon() {
    let Some(dir) = golden_dir() else {
        eprintln!("skipping: no golden vectors (../shared/golden)");
        return;
    };
    let mut failed = vec![];
    for s in MUST_MATCH {
        if !dir.join(s).join("input").exists() {
            eprintln!("skipping {s}: not in this golden set");
            continue;
        }
        let (ok, text) = replay(&dir, s);
        if !ok {
            eprintln!("=== {s}\n{text}");
            failed.push(*s);
        }
    }
    assert!(failed.is_empty(), "golden scenarios differ: {failed:?}");
}
