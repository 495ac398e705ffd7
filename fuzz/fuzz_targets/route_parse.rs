//! Prefix, next-hop, MAC, port-address and VIP parsing (`ovn_ic::ic::route::parse`): the
//! strings ovn-ic reads from NB `Logical_Router_Static_Route`, `Logical_Router_Port.networks`,
//! ISB `Route` and `Port_Binding.address`, LB `vips`, and the `ic-route-*` prefix filters.
//!
//! Checked besides "no panic":
//! * `format_prefix(parse_cidr(s))` parses back to the same address and length;
//! * a parsed prefix length never exceeds the family's width;
//! * `parse_route` agrees with `parse_cidr` on the prefix.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ovn_ic::ic::route::parse::{
    format_ip, format_prefix, lrp_networks, nexthop_is_lla, parse_cidr, parse_ip, parse_mac,
    parse_port_addresses, parse_route, parse_route_lla, parse_vip, prefix_is_link_local,
    PrefixList,
};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    // Two strings: "PREFIX\nNEXTHOP" (or the whole input twice).
    let (a, b) = s.split_once('\n').unwrap_or((s, s));

    for x in [a, b] {
        if let Some((ip, plen)) = parse_cidr(x) {
            assert!(plen <= if ip.is_v4() { 32 } else { 128 }, "plen {plen}");
            let text = format_prefix(ip, plen);
            assert_eq!(parse_cidr(&text), Some((ip, plen)), "{x:?} -> {text:?}");
            let _ = prefix_is_link_local(ip, plen);
            let _ = ip.masked(plen);
            let _ = ip.masked(plen.saturating_add(200));
        }
        if let Some(ip) = parse_ip(x) {
            assert_eq!(parse_ip(&format_ip(ip)), Some(ip), "{x:?}");
            let _ = nexthop_is_lla(ip);
        }
        if let Some(m) = parse_mac(x) {
            let text = format!(
                "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                m[0], m[1], m[2], m[3], m[4], m[5]
            );
            assert_eq!(parse_mac(&text), Some(m));
        }
        if let Some(pa) = parse_port_addresses(x) {
            for (ip, _) in pa.v4.iter().chain(&pa.v6) {
                let _ = (pa.owns_nexthop(*ip), pa.on_link(*ip));
            }
        }
        let _ = parse_vip(x);
    }

    for discard in [false, true] {
        if let Some(r) = parse_route(a, b, discard) {
            assert_eq!(parse_cidr(a), Some((r.prefix, r.plen)));
            assert!(r.nexthop.is_some() || (discard && b == "discard"));
        }
    }
    let _ = parse_route_lla(a, b);
    if let Some(pa) = lrp_networks(a, b.split(' ')) {
        assert!(!pa.v6.is_empty(), "the link-local network is always added");
    }
    let list = PrefixList::new("fuzz", [Some(a), None, Some(b)]);
    if let Some((ip, plen)) = parse_cidr(b) {
        let _ = list.matches(ip, plen);
    }
});
