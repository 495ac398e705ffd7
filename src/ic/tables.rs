//! Database names, lock names and what each session monitors (spec ovn-ic-core.md §2.1, §2.2).

use crate::ovsdb::replica::MonitorSpec;

pub const NB_DB: &str = "OVN_Northbound";
pub const SB_DB: &str = "OVN_Southbound";
pub const ICNB_DB: &str = "OVN_IC_Northbound";
pub const ICSB_DB: &str = "OVN_IC_Southbound";

/// SB lock: one active ovn-ic per AZ.
pub const SB_LOCK: &str = "ovn_ic";
/// IC-SB lock: one ISB leader across all AZs.
pub const ICSB_LOCK: &str = "ovn_ic_sb";

/// NB tables and the exact columns ovn-ic monitors.
pub const NB_MONITOR: &[(&str, &[&str])] = &[
    ("NB_Global", &["name", "options"]),
    (
        "Logical_Router_Static_Route",
        &[
            "route_table",
            "ip_prefix",
            "nexthop",
            "external_ids",
            "options",
            "policy",
        ],
    ),
    (
        "Logical_Router",
        &[
            "name",
            "static_routes",
            "ports",
            "options",
            "external_ids",
            "enabled",
            "load_balancer",
            "load_balancer_group",
        ],
    ),
    (
        "Logical_Router_Port",
        &["mac", "name", "networks", "external_ids", "options"],
    ),
    (
        "Logical_Switch",
        &["name", "ports", "other_config", "external_ids"],
    ),
    (
        "Logical_Switch_Port",
        &[
            "name",
            "addresses",
            "options",
            "type",
            "up",
            "enabled",
            "external_ids",
            "peer",
        ],
    ),
    ("Load_Balancer", &["vips"]),
    ("Load_Balancer_Group", &["load_balancer"]),
    (
        "Address_Set",
        &["name", "addresses", "options", "external_ids"],
    ),
];

/// SB tables and the exact columns ovn-ic monitors.
pub const SB_MONITOR: &[(&str, &[&str])] = &[
    ("SB_Global", &["options"]),
    ("Chassis", &["encaps", "name", "hostname", "other_config"]),
    ("Encap", &["chassis_name", "type", "ip", "options"]),
    ("Datapath_Binding", &["type", "external_ids", "nb_uuid"]),
    (
        "Port_Binding",
        &[
            "datapath",
            "mac",
            "options",
            "logical_port",
            "external_ids",
            "chassis",
            "up",
        ],
    ),
    (
        "Service_Monitor",
        &[
            "chassis_name",
            "external_ids",
            "type",
            "ip",
            "logical_port",
            "port",
            "protocol",
            "src_ip",
            "src_mac",
            "remote",
            "ic_learned",
            "status",
            "options",
        ],
    ),
    ("Learned_Route", &["ip_prefix", "datapath"]),
    ("Address_Set", &["name", "addresses", "options"]),
];

/// IC-NB: every table and column.
pub const ICNB_TABLES: &[&str] = &[
    "IC_NB_Global",
    "Transit_Switch",
    "Transit_Switch_Port",
    "Transit_Router",
    "Transit_Router_Port",
    "Connection",
    "SSL",
];

/// IC-SB: every table and column.
pub const ICSB_TABLES: &[&str] = &[
    "IC_SB_Global",
    "Availability_Zone",
    "Gateway",
    "Encap",
    "Datapath_Binding",
    "Port_Binding",
    "Route",
    "Service_Monitor",
    "Address_Set",
    "Connection",
    "SSL",
];

fn spec(cols: &[(&str, &[&str])]) -> MonitorSpec {
    cols.iter()
        .map(|(t, c)| {
            (
                t.to_string(),
                Some(c.iter().map(|s| s.to_string()).collect()),
            )
        })
        .collect()
}

fn all(tables: &[&str]) -> MonitorSpec {
    tables.iter().map(|t| (t.to_string(), None)).collect()
}

pub fn nb_monitor() -> MonitorSpec {
    spec(NB_MONITOR)
}
pub fn sb_monitor() -> MonitorSpec {
    spec(SB_MONITOR)
}
pub fn icnb_monitor() -> MonitorSpec {
    all(ICNB_TABLES)
}
pub fn icsb_monitor() -> MonitorSpec {
    all(ICSB_TABLES)
}
/// The IC-SB session that holds the lock: everything but `Route`. Only the unlocked session
/// reads and writes routes (the largest table by far), so a second copy of them would only cost
/// memory and decoding.
pub fn icsb_locked_monitor() -> MonitorSpec {
    all(ICSB_TABLES)
        .into_iter()
        .filter(|(t, _)| t != "Route")
        .collect()
}
