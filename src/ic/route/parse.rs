//! Address parsing and formatting exactly as the C daemon does it (spec ovn-ic-routes.md
//! §0.4–0.8): `ip46_parse_cidr`, `ip46_parse`, glibc `inet_ntop`, the two link-local tests,
//! `parse_route`, prefix lists, `extract_lsp_addresses` and `extract_lrp_networks`.
//!
//! Addresses are 128-bit values with IPv4 stored IPv4-mapped (`::ffff:a.b.c.d`), as upstream
//! keeps them in a `struct in6_addr`; IPv4 prefix lengths stay in 0..=32.

use std::net::Ipv6Addr;

use crate::daemon::vlog::RateLimit;

/// Rate limit of the "Bad prefix" warnings (upstream `VLOG_RATE_LIMIT_INIT(5, 1)`).
static PREFIX_RL: RateLimit = RateLimit::new(5, 1);
/// Rate limit of the "invalid syntax" info lines (upstream 1/min burst 1 in ovn-util).
static SYNTAX_RL: RateLimit = RateLimit::new(1, 1);

const V4_MAPPED: u128 = 0xffff_u128 << 32;

/// An IPv4 or IPv6 address in upstream's `in6_addr` representation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ip46(pub u128);

impl Ip46 {
    pub fn v4(a: u32) -> Ip46 {
        Ip46(V4_MAPPED | u128::from(a))
    }
    /// `IN6_IS_ADDR_V4MAPPED`.
    pub fn is_v4(self) -> bool {
        self.0 >> 32 == 0xffff
    }
    pub fn v4_bits(self) -> u32 {
        self.0 as u32
    }
    /// `addr & mask(plen)` in the address's own family (plen of that family).
    pub fn masked(self, plen: u32) -> Ip46 {
        if self.is_v4() {
            Ip46::v4(self.v4_bits() & mask32(plen))
        } else {
            Ip46(self.0 & mask128(plen))
        }
    }
    /// Family-aware "same first `plen` bits".
    pub fn same_prefix(self, other: Ip46, plen: u32) -> bool {
        self.is_v4() == other.is_v4() && self.masked(plen) == other.masked(plen)
    }
}

impl std::fmt::Display for Ip46 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&format_ip(*self))
    }
}

fn mask32(plen: u32) -> u32 {
    match plen {
        0 => 0,
        p if p >= 32 => u32::MAX,
        p => u32::MAX << (32 - p),
    }
}

fn mask128(plen: u32) -> u128 {
    match plen {
        0 => 0,
        p if p >= 128 => u128::MAX,
        p => u128::MAX << (128 - p),
    }
}

/// Strict dotted-quad IPv4 (`inet_pton(AF_INET)`-like; leading zeros tolerated).
fn parse_v4(s: &str) -> Option<u32> {
    let mut v: u32 = 0;
    let mut n = 0;
    for part in s.split('.') {
        if part.is_empty() || part.len() > 3 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let o: u32 = part.parse().ok()?;
        if o > 255 {
            return None;
        }
        v = (v << 8) | o;
        n += 1;
    }
    (n == 4).then_some(v)
}

fn parse_v6(s: &str) -> Option<u128> {
    s.parse::<Ipv6Addr>().ok().map(u128::from)
}

fn parse_plen(s: &str, max: u32) -> Option<u32> {
    if s.is_empty() || s.len() > 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let p: u32 = s.parse().ok()?;
    (p <= max).then_some(p)
}

/// A contiguous mask to its prefix length.
fn mask_to_plen32(m: u32) -> Option<u32> {
    let p = m.leading_ones();
    (mask32(p) == m).then_some(p)
}
fn mask_to_plen128(m: u128) -> Option<u32> {
    let p = m.leading_ones();
    (mask128(p) == m).then_some(p)
}

/// `ip46_parse_cidr`: `(addr, plen)`, host bits kept. Leading whitespace is tolerated,
/// anything trailing fails.
pub fn parse_cidr(s: &str) -> Option<(Ip46, u32)> {
    let s = s.trim_start();
    let (a, m) = match s.split_once('/') {
        Some((a, m)) => (a, Some(m)),
        None => (s, None),
    };
    if let Some(v4) = parse_v4(a) {
        let plen = match m {
            None => 32,
            Some(m) => match parse_plen(m, 32) {
                Some(p) => p,
                None => mask_to_plen32(parse_v4(m)?)?,
            },
        };
        return Some((Ip46::v4(v4), plen));
    }
    let v6 = parse_v6(a)?;
    let plen = match m {
        None => 128,
        Some(m) => match parse_plen(m, 128) {
            Some(p) => p,
            None => mask_to_plen128(parse_v6(m)?)?,
        },
    };
    Some((Ip46(v6), plen))
}

/// `ip46_parse`: a bare address.
pub fn parse_ip(s: &str) -> Option<Ip46> {
    if let Some(v4) = parse_v4(s) {
        return Some(Ip46::v4(v4));
    }
    parse_v6(s).map(Ip46)
}

/// glibc `inet_ntop` text of an address (IPv4-mapped values print as IPv4).
pub fn format_ip(a: Ip46) -> String {
    if a.is_v4() {
        let v = a.v4_bits();
        return format!(
            "{}.{}.{}.{}",
            v >> 24,
            (v >> 16) & 0xff,
            (v >> 8) & 0xff,
            v & 0xff
        );
    }
    let words: Vec<u16> = (0..8).map(|i| (a.0 >> (112 - 16 * i)) as u16).collect();
    // Longest run (≥ 2) of zero words; the first one on ties.
    let (mut best_base, mut best_len) = (None::<usize>, 0usize);
    let mut i = 0;
    while i < 8 {
        if words[i] == 0 {
            let start = i;
            while i < 8 && words[i] == 0 {
                i += 1;
            }
            let len = i - start;
            if len >= 2 && len > best_len {
                best_base = Some(start);
                best_len = len;
            }
        } else {
            i += 1;
        }
    }
    let mut out = String::new();
    let mut i = 0;
    while i < 8 {
        if best_base == Some(i) {
            out.push_str("::");
            i += best_len;
            continue;
        }
        if i > 0 && !out.ends_with("::") {
            out.push(':');
        }
        // glibc: an "encapsulated IPv4" tail when words 0..5 are zero.
        if i == 6
            && best_base == Some(0)
            && (best_len == 6 || (best_len == 5 && words[5] == 0xffff))
        {
            let v = (a.0 & 0xffff_ffff) as u32;
            out.push_str(&format_ip(Ip46::v4(v)));
            break;
        }
        out.push_str(&format!("{:x}", words[i]));
        i += 1;
    }
    out
}

/// `addr/plen`, host bits kept, `/plen` always written.
pub fn format_prefix(a: Ip46, plen: u32) -> String {
    format!("{}/{}", format_ip(a), plen)
}

/// `prefix_is_link_local`: 169.254.0.0/16 (plen ≥ 16) or fe80::/10 (plen ≥ 10).
pub fn prefix_is_link_local(a: Ip46, plen: u32) -> bool {
    if a.is_v4() {
        plen >= 16 && a.v4_bits() >> 16 == 0xa9fe
    } else {
        plen >= 10 && (a.0 >> 118) == (0xfe80 >> 6)
    }
}

/// `in6_is_lla`: first 64 bits exactly fe80:0:0:0 (never true for IPv4).
pub fn nexthop_is_lla(a: Ip46) -> bool {
    !a.is_v4() && (a.0 >> 64) == 0xfe80_0000_0000_0000
}

/// A parsed route: prefix and next hop (`None` = `discard`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedRoute {
    pub prefix: Ip46,
    pub plen: u32,
    pub nexthop: Option<Ip46>,
}

/// `parse_route` (§0.7). `allow_discard` only for local (non-learned) NB static routes.
pub fn parse_route(prefix: &str, nexthop: &str, allow_discard: bool) -> Option<ParsedRoute> {
    let (p, plen) = parse_cidr(prefix)?;
    let nh = if nexthop == "discard" {
        if !allow_discard {
            return None;
        }
        None
    } else {
        let (nh, _) = parse_cidr(nexthop)?;
        if nexthop_is_lla(nh) {
            return None;
        }
        Some(nh)
    };
    Some(ParsedRoute {
        prefix: p,
        plen,
        nexthop: nh,
    })
}

/// `parse_route` for an ISB row that tolerates a link-local next hop, reporting it: the
/// advertiser keeps such a row when it still matches a candidate (A.7.8 [REC]).
pub fn parse_route_lla(prefix: &str, nexthop: &str) -> Option<(ParsedRoute, bool)> {
    let (p, plen) = parse_cidr(prefix)?;
    if nexthop == "discard" {
        return None;
    }
    let (nh, _) = parse_cidr(nexthop)?;
    Some((
        ParsedRoute {
            prefix: p,
            plen,
            nexthop: Some(nh),
        },
        nexthop_is_lla(nh),
    ))
}

/// A prefix list (§0.8): the concatenation of option values split on `,`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixList {
    /// Name used in the warning for unparseable tokens.
    pub name: &'static str,
    pub tokens: Vec<String>,
}

impl PrefixList {
    pub fn new<'a>(name: &'static str, values: impl IntoIterator<Item = Option<&'a str>>) -> Self {
        let mut tokens: Vec<String> = vec![];
        for v in values.into_iter().flatten() {
            for t in v.split(',') {
                if !t.is_empty() && !tokens.iter().any(|x| x == t) {
                    tokens.push(t.to_string());
                }
            }
        }
        PrefixList { name, tokens }
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// `find_prefix_in_set`.
    pub fn matches(&self, addr: Ip46, plen: u32) -> bool {
        for t in &self.tokens {
            let Some((ta, tp)) = parse_cidr(t) else {
                crate::vlog_rl!(PREFIX_RL, warn, target: "ovn_ic",
                    "Bad prefix ({}) format: {}. CIDR expected.", self.name, t);
                continue;
            };
            if ta.is_v4() == addr.is_v4() && tp <= plen && addr.same_prefix(ta, tp) {
                return true;
            }
        }
        false
    }
}

/// An Ethernet address.
pub type Mac = [u8; 6];

/// `eth_addr_from_string`-like strict MAC parse (`xx:xx:xx:xx:xx:xx`, 1–2 hex digits each).
pub fn parse_mac(s: &str) -> Option<Mac> {
    let mut m = [0u8; 6];
    let mut n = 0;
    for part in s.split(':') {
        if n >= 6 || part.is_empty() || part.len() > 2 {
            return None;
        }
        m[n] = u8::from_str_radix(part, 16).ok()?;
        n += 1;
    }
    (n == 6).then_some(m)
}

/// EUI-64 link-local address from a MAC (`in6_generate_lla`).
pub fn lla_from_mac(m: Mac) -> Ip46 {
    let b = [
        0xfe,
        0x80,
        0,
        0,
        0,
        0,
        0,
        0,
        m[0] ^ 0x02,
        m[1],
        m[2],
        0xff,
        0xfe,
        m[3],
        m[4],
        m[5],
    ];
    Ip46(u128::from_be_bytes(b))
}

/// Addresses of a port: MAC and ordered IPv4 / IPv6 `(addr, plen)` lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortAddrs {
    pub mac: Mac,
    pub v4: Vec<(Ip46, u32)>,
    pub v6: Vec<(Ip46, u32)>,
}

/// `extract_lsp_addresses` of an ISB `Port_Binding.address`: a MAC then IPs (with or without
/// `/plen`); parsing stops at the first bad token (logged), keeping what was parsed.
pub fn parse_port_addresses(s: &str) -> Option<PortAddrs> {
    let mut it = s.split_ascii_whitespace();
    let mac = parse_mac(it.next()?)?;
    let mut pa = PortAddrs {
        mac,
        v4: vec![],
        v6: vec![],
    };
    for tok in it {
        match parse_cidr(tok) {
            Some((a, p)) if a.is_v4() => pa.v4.push((a, p)),
            Some((a, p)) => pa.v6.push((a, p)),
            None => {
                crate::vlog_rl!(SYNTAX_RL, info, target: "ovn_util",
                    "invalid syntax '{}' in address", s);
                break;
            }
        }
    }
    Some(pa)
}

/// `extract_lrp_networks`: None without a valid MAC; the implicit `fe80::/64` link-local
/// network is appended to the IPv6 list. Unparseable networks are skipped.
pub fn lrp_networks<'a>(
    mac: &str,
    networks: impl IntoIterator<Item = &'a str>,
) -> Option<PortAddrs> {
    let mac = parse_mac(mac)?;
    let mut pa = PortAddrs {
        mac,
        v4: vec![],
        v6: vec![],
    };
    for n in networks {
        match parse_cidr(n) {
            Some((a, p)) if a.is_v4() && a.v4_bits() != 0 => pa.v4.push((a, p)),
            Some((a, _)) if a.is_v4() => {}
            Some((a, p)) => pa.v6.push((a, p)),
            None => {}
        }
    }
    pa.v6.push((lla_from_mac(mac), 64));
    Some(pa)
}

impl PortAddrs {
    /// A.5 ownership: IPv4 equal to one of the addresses, IPv6 inside one of the networks.
    pub fn owns_nexthop(&self, nh: Ip46) -> bool {
        if nh.is_v4() {
            self.v4.iter().any(|(a, _)| *a == nh)
        } else {
            self.v6.iter().any(|(a, p)| nh.same_prefix(*a, *p))
        }
    }
    /// L5.9 on-link: the next hop lies inside one of the networks of its family.
    pub fn on_link(&self, nh: Ip46) -> bool {
        let l = if nh.is_v4() { &self.v4 } else { &self.v6 };
        l.iter().any(|(a, p)| nh.same_prefix(*a, *p))
    }
}

/// An LB VIP key: `IP`, `IP:port`, `[IPv6]`, `[IPv6]:port` or bare IPv6.
pub fn parse_vip(k: &str) -> Option<Ip46> {
    let port_ok = |p: &str| {
        !p.is_empty()
            && p.len() <= 5
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u32>().is_ok_and(|v| v <= 65535)
    };
    if let Some(rest) = k.strip_prefix('[') {
        let (a, tail) = rest.split_once(']')?;
        let ip = parse_v6(a)?;
        return match tail {
            "" => Some(Ip46(ip)),
            t => t.strip_prefix(':').filter(|p| port_ok(p)).map(|_| Ip46(ip)),
        };
    }
    if let Some(a) = parse_ip(k) {
        return Some(a);
    }
    let (a, p) = k.rsplit_once(':')?;
    if !port_ok(p) {
        return None;
    }
    parse_v4(a).map(Ip46::v4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt_cidr(s: &str) -> String {
        let (a, p) = parse_cidr(s).unwrap();
        format_prefix(a, p)
    }

    #[test]
    fn cidr_keeps_host_bits_and_always_writes_plen() {
        assert_eq!(fmt_cidr("200.1.3.55"), "200.1.3.55/32");
        assert_eq!(fmt_cidr("192.168.1.1/24"), "192.168.1.1/24");
        assert_eq!(fmt_cidr("2001:DB8:0::1/64"), "2001:db8::1/64");
        assert_eq!(fmt_cidr("4242::1"), "4242::1/128");
        assert_eq!(fmt_cidr("10.0.0.0/255.255.0.0"), "10.0.0.0/16");
        assert_eq!(fmt_cidr("  10.1.0.0/16"), "10.1.0.0/16");
        assert!(parse_cidr("10.0.0.0/255.0.255.0").is_none());
        assert!(parse_cidr("10.0.0.0/33").is_none());
        assert!(parse_cidr("10.0.0.0/16 ").is_none());
        assert!(parse_cidr("2001:db8::/129").is_none());
        assert!(parse_cidr("300.1.1.1").is_none());
        assert_eq!(fmt_cidr("2001:db8::/ffff:ffff::"), "2001:db8::/32");
        assert!(parse_ip("10.0.0.1/32").is_none());
        assert_eq!(parse_ip("10.0.0.1"), Some(Ip46::v4(0x0a00_0001)));
    }

    #[test]
    fn glibc_ipv6_text() {
        let f = |s: &str| format_ip(parse_ip(s).unwrap());
        assert_eq!(f("::102:304"), "::1.2.3.4");
        assert_eq!(f("::1"), "::1");
        assert_eq!(f("::"), "::");
        assert_eq!(f("2001:db8:0:1:0:0:0:1"), "2001:db8:0:1::1");
        assert_eq!(f("2001:0:0:1:0:0:1:1"), "2001::1:0:0:1:1");
        assert_eq!(f("1:0:2:0:3:0:4:0"), "1:0:2:0:3:0:4:0");
        assert_eq!(f("fe80::a8aa:aaff:feaa:aa01"), "fe80::a8aa:aaff:feaa:aa01");
        assert_eq!(f("::ffff:1.2.3.4"), "1.2.3.4");
        assert_eq!(f("1::"), "1::");
    }

    #[test]
    fn link_local_rules() {
        let c = |s: &str| parse_cidr(s).unwrap();
        let (a, p) = c("169.254.0.0/16");
        assert!(prefix_is_link_local(a, p));
        let (a, p) = c("169.254.0.0/15");
        assert!(!prefix_is_link_local(a, p));
        let (a, p) = c("fe80::/10");
        assert!(prefix_is_link_local(a, p));
        let (a, p) = c("febf::/64");
        assert!(prefix_is_link_local(a, p));
        let (a, p) = c("fe80::/9");
        assert!(!prefix_is_link_local(a, p));
        assert!(nexthop_is_lla(parse_ip("fe80::1").unwrap()));
        assert!(!nexthop_is_lla(parse_ip("fe80:10::2").unwrap()));
        assert!(!nexthop_is_lla(parse_ip("169.254.0.1").unwrap()));
    }

    #[test]
    fn route_parse() {
        assert!(parse_route("10.0.0.0/24", "discard", true)
            .unwrap()
            .nexthop
            .is_none());
        assert!(parse_route("10.0.0.0/24", "discard", false).is_none());
        assert!(parse_route("2001::/64", "fe80::1", true).is_none());
        assert!(parse_route("2001::/64", "fe80:10::2", false).is_some());
        let r = parse_route("10.0.0.0/24", "1.1.1.1/24", false).unwrap();
        assert_eq!(r.nexthop, parse_ip("1.1.1.1"));
        assert!(parse_route("bad", "1.1.1.1", false).is_none());
    }

    #[test]
    fn prefix_lists() {
        let l = PrefixList::new(
            "ic-route-deny-adv",
            [Some("10.0.0.0/8,,bad"), None, Some(" 2001:db8::/32")],
        );
        assert_eq!(l.tokens.len(), 3);
        let (a, p) = parse_cidr("10.1.0.0/16").unwrap();
        assert!(l.matches(a, p));
        let (a, p) = parse_cidr("2001:db8:1::/48").unwrap();
        assert!(l.matches(a, p));
        // token plen longer than the route: no match
        let (a, p) = parse_cidr("10.0.0.0/7").unwrap();
        assert!(!l.matches(a, p));
        // family mismatch
        let l4 = PrefixList::new("x", [Some("0.0.0.0/0")]);
        let (a, p) = parse_cidr("2001::/16").unwrap();
        assert!(!l4.matches(a, p));
        // host bits in the token are ignored
        let l = PrefixList::new("x", [Some("10.1.2.3/16")]);
        let (a, p) = parse_cidr("10.1.9.0/24").unwrap();
        assert!(l.matches(a, p));
        // only invalid tokens: non-empty, matches nothing
        let l = PrefixList::new("x", [Some("junk,10.0.0.0/8 ")]);
        assert!(!l.is_empty());
        assert!(!l.matches(a, p));
    }

    #[test]
    fn port_addresses_and_networks() {
        let pa =
            parse_port_addresses("aa:aa:aa:aa:aa:01 169.254.100.1/24 2001:db8:100::1/64").unwrap();
        assert_eq!(pa.v4, vec![parse_cidr("169.254.100.1/24").unwrap()]);
        assert_eq!(pa.v6, vec![parse_cidr("2001:db8:100::1/64").unwrap()]);
        assert!(parse_port_addresses("").is_none());
        assert!(parse_port_addresses("zz 1.1.1.1").is_none());
        let pa = parse_port_addresses("aa:aa:aa:aa:aa:01 1.1.1.1 junk 2.2.2.2").unwrap();
        assert_eq!(pa.v4.len(), 1);
        assert_eq!(format_ip(lla_from_mac(pa.mac)), "fe80::a8aa:aaff:feaa:aa01");

        let n = lrp_networks(
            "aa:aa:aa:aa:aa:01",
            ["169.254.100.1/24", "2001:db8:100::1/64"],
        )
        .unwrap();
        assert!(n.owns_nexthop(parse_ip("169.254.100.1").unwrap()));
        assert!(!n.owns_nexthop(parse_ip("169.254.100.2").unwrap()));
        assert!(n.on_link(parse_ip("169.254.100.2").unwrap()));
        assert!(!n.on_link(parse_ip("169.254.101.2").unwrap()));
        assert!(n.owns_nexthop(parse_ip("2001:db8:100::77").unwrap()));
        assert!(n.owns_nexthop(parse_ip("fe80::1234").unwrap()));
        assert!(lrp_networks("nomac", ["1.1.1.1/24"]).is_none());
    }

    #[test]
    fn vips() {
        assert_eq!(parse_vip("10.50.0.10:80"), parse_ip("10.50.0.10"));
        assert_eq!(parse_vip("10.50.0.10"), parse_ip("10.50.0.10"));
        assert_eq!(
            parse_vip("[2001:db8:50::10]:80"),
            parse_ip("2001:db8:50::10")
        );
        assert_eq!(parse_vip("[4242::1]"), parse_ip("4242::1"));
        assert_eq!(parse_vip("4242::1"), parse_ip("4242::1"));
        assert!(parse_vip("^VIP:^PORT").is_none());
        assert!(parse_vip("10.0.0.1:99999").is_none());
        assert!(parse_vip("host.example:80").is_none());
    }
}
