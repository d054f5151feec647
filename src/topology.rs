//! The topology: the group, its members, the pf-b instances and whom each serves, and a SIP
//! and an MSRP address per entity instance. Loaded from YAML (unknown keys rejected) or
//! generated on a loopback subnet so parallel tests never share an address.

use crate::config::parse_yaml;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

/// First port of the IPv6 lab topologies ([`Topology::generate_lab`]): 20 ports per net,
/// below the kernel's ephemeral range (32768 up), so no outgoing connection takes one.
pub const V6_LAB_BASE: u16 = 10000;

/// The five roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Role {
    #[serde(rename = "client-a")]
    ClientA,
    #[serde(rename = "pf-a")]
    PfA,
    #[serde(rename = "x")]
    X,
    #[serde(rename = "pf-b")]
    PfB,
    #[serde(rename = "client-b")]
    ClientB,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::ClientA, Role::PfA, Role::X, Role::PfB, Role::ClientB];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::ClientA => "client-a",
            Role::PfA => "pf-a",
            Role::X => "x",
            Role::PfB => "pf-b",
            Role::ClientB => "client-b",
        }
    }

    pub fn parse(s: &str) -> Result<Role, String> {
        Role::ALL
            .iter()
            .copied()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Role::ALL.iter().map(|r| r.as_str()).collect();
                format!(
                    "unknown role {s:?}{}; expected one of {}",
                    crate::suggest::did_you_mean(s, &names),
                    names.join(", ")
                )
            })
    }

    /// Parses a comma-separated role list such as `pf-a,x,pf-b`.
    pub fn parse_list(s: &str) -> Result<Vec<Role>, String> {
        let mut out = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let r = Role::parse(part)?;
            if !out.contains(&r) {
                out.push(r);
            }
        }
        if out.is_empty() {
            return Err("empty role list".into());
        }
        out.sort();
        Ok(out)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Addresses of one entity instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    pub sip: SocketAddr,
    pub msrp: SocketAddr,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PfB {
    pub name: String,
    pub sip: SocketAddr,
    pub msrp: SocketAddr,
    /// Member names this instance serves.
    pub serves: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    pub name: String,
    pub uri: String,
    pub sip: SocketAddr,
    pub msrp: SocketAddr,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// The pre-defined group's SIP URI, hosted by x.
    pub group: String,
    /// x's conference-factory URI for ad-hoc groups (RFC 5366).
    pub factory: String,
    /// The sender's public URI.
    pub sender: String,
    #[serde(rename = "client-a")]
    pub client_a: Endpoint,
    #[serde(rename = "pf-a")]
    pub pf_a: Endpoint,
    pub x: Endpoint,
    #[serde(rename = "pf-b")]
    pub pf_b: Vec<PfB>,
    pub members: Vec<Member>,
    /// The SIP/IP core: when set, every entity sends its out-of-dialog requests to this
    /// proxy with a pre-loaded route to the next entity, and follows the route set the proxy
    /// records for in-dialog requests (RFC 3261 §§8.1.2, 12.2.1.1, 16.12).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub core: Option<SocketAddr>,
    /// Name and URI look-ups for large groups, built on first use. Every hit is checked
    /// against the fields (and a miss falls back to a scan), so editing the fields after a
    /// look-up never gives a wrong answer, only a slower one.
    #[serde(skip)]
    pub index: TopologyIndex,
}

/// Lazily built maps from names and URIs to positions in a [`Topology`].
#[derive(Default, Clone)]
pub struct TopologyIndex(std::sync::OnceLock<Index>);

#[derive(Default, Clone)]
pub struct Index {
    pf_b: std::collections::HashMap<String, usize>,
    members: std::collections::HashMap<String, usize>,
    member_uris: std::collections::HashMap<String, usize>,
    /// Member name → the pf-b that serves it.
    serving: std::collections::HashMap<String, usize>,
}

impl PartialEq for TopologyIndex {
    fn eq(&self, _: &Self) -> bool {
        true // A cache: never part of a topology's value.
    }
}

impl Eq for TopologyIndex {}

impl std::fmt::Debug for TopologyIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TopologyIndex")
    }
}

/// One entity instance of the topology.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub role: Role,
    /// `client-a`, `pf-a`, `x`, a pf-b name or a member name.
    pub name: String,
    pub sip: SocketAddr,
    pub msrp: SocketAddr,
}

impl Topology {
    /// Generates a topology with `members` members spread over `pfbs` pf-b instances on the
    /// loopback subnet `127.<net>.<sub>.0/24`-ish: client-a .11, pf-a .12, x .13, pf-b .14…,
    /// members from .100 up (wrapping into the next /24 when needed).
    pub fn generate(
        net: u8,
        members: usize,
        pfbs: usize,
        sip_port: u16,
        msrp_port: u16,
    ) -> Topology {
        assert!(
            pfbs >= 1 && members >= 1,
            "at least one pf-b and one member"
        );
        let ip = |n: usize| -> IpAddr {
            let hi = 0u8.wrapping_add((n / 250) as u8);
            IpAddr::V4(Ipv4Addr::new(127, net, hi, (n % 250 + 1) as u8))
        };
        let ep = |n: usize| Endpoint {
            sip: SocketAddr::new(ip(n), sip_port),
            msrp: SocketAddr::new(ip(n), msrp_port),
        };
        let mut pf_b: Vec<PfB> = (0..pfbs)
            .map(|i| {
                let e = ep(13 + i);
                PfB {
                    name: format!("pf-b{}", i + 1),
                    sip: e.sip,
                    msrp: e.msrp,
                    serves: vec![],
                }
            })
            .collect();
        let members: Vec<Member> = (0..members)
            .map(|i| {
                let name = format!("b{}", i + 1);
                let e = ep(250 + i);
                pf_b[i * pfbs / members.max(1)].serves.push(name.clone());
                Member {
                    uri: format!("sip:{name}@example.com"),
                    name,
                    sip: e.sip,
                    msrp: e.msrp,
                }
            })
            .collect();
        Topology {
            group: "sip:friends@cf.example.com".into(),
            factory: "sip:factory@cf.example.com".into(),
            sender: "sip:alice@example.com".into(),
            client_a: ep(10),
            pf_a: ep(11),
            x: ep(12),
            pf_b,
            members,
            core: None,
            index: TopologyIndex::default(),
        }
    }

    /// Like [`Topology::generate`], but every entity on the one address `ip`, told apart by
    /// port: the k-th entity in chain order (client-a, pf-a, x, the pf-b instances, the
    /// members) listens for SIP on `base + 2k` and for MSRP on `base + 2k + 1` — how a
    /// vendor's SUT, or the harness's own side, lives on one host.
    pub fn generate_shared(ip: IpAddr, members: usize, pfbs: usize, base: u16) -> Topology {
        let mut t = Topology::generate(0, members, pfbs, 5060, 2855);
        t.place_shared(&Role::ALL, ip, base);
        t
    }

    /// The topology of a lab-mode case on `net` (3 members on 2 pf-b): IPv4, one address
    /// `127.<net>.x.x` per entity ([`Topology::generate`]); IPv6, every entity on `::1` (the
    /// one IPv6 loopback address) on the ports `V6_LAB_BASE + 20·net …`, so cases on
    /// different nets never share a port ([`Topology::generate_shared`]).
    pub fn generate_lab(net: u8, family: crate::config::IpFamily) -> Topology {
        match family {
            crate::config::IpFamily::V4 => Topology::generate(net, 3, 2, 5060, 2855),
            crate::config::IpFamily::V6 => Topology::generate_shared(
                IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
                3,
                2,
                V6_LAB_BASE + 20 * u16::from(net),
            ),
        }
    }

    /// The IP family of the topology: IPv6 when any instance listens on IPv6.
    pub fn family(&self) -> crate::config::IpFamily {
        if self.instances().iter().any(|i| i.sip.is_ipv6()) {
            crate::config::IpFamily::V6
        } else {
            crate::config::IpFamily::V4
        }
    }

    /// Moves the instances of `roles` to the one address `ip`, told apart by port as in
    /// [`Topology::generate_shared`]: the k-th instance in chain order (whatever its role)
    /// gets SIP `base + 2k` and MSRP `base + 2k + 1`, so two sides placed from different
    /// bases never collide.
    pub fn place_shared(&mut self, roles: &[Role], ip: IpAddr, base: u16) {
        let mut k = 0u16;
        let mut next = |role: Role, sip: &mut SocketAddr, msrp: &mut SocketAddr| {
            let port = base.saturating_add(2 * k);
            k += 1;
            if roles.contains(&role) {
                *sip = SocketAddr::new(ip, port);
                *msrp = SocketAddr::new(ip, port.saturating_add(1));
            }
        };
        next(
            Role::ClientA,
            &mut self.client_a.sip,
            &mut self.client_a.msrp,
        );
        next(Role::PfA, &mut self.pf_a.sip, &mut self.pf_a.msrp);
        next(Role::X, &mut self.x.sip, &mut self.x.msrp);
        for p in &mut self.pf_b {
            next(Role::PfB, &mut p.sip, &mut p.msrp);
        }
        for m in &mut self.members {
            next(Role::ClientB, &mut m.sip, &mut m.msrp);
        }
    }

    fn index(&self) -> &Index {
        self.index.0.get_or_init(|| {
            let mut ix = Index::default();
            for (i, p) in self.pf_b.iter().enumerate() {
                ix.pf_b.insert(p.name.clone(), i);
                for m in &p.serves {
                    ix.serving.entry(m.clone()).or_insert(i);
                }
            }
            for (i, m) in self.members.iter().enumerate() {
                ix.members.insert(m.name.clone(), i);
                ix.member_uris.entry(strip_uri(&m.uri)).or_insert(i);
            }
            ix
        })
    }

    /// The default: 3 members on 2 pf-b at 127.0.0.x (`suites/topology.yaml`).
    pub fn default_chain() -> Topology {
        Topology::generate(0, 3, 2, 5060, 2855)
    }

    pub fn load(path: &Path) -> anyhow::Result<Topology> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
        Topology::parse(&text, &path.display().to_string())
    }

    pub fn parse(text: &str, origin: &str) -> anyhow::Result<Topology> {
        let t: Topology = parse_yaml(text, origin)?;
        t.validate().map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
        Ok(t)
    }

    pub fn to_yaml(&self) -> String {
        serde_norway::to_string(self).expect("topology serialises")
    }

    /// Every member served by exactly one pf-b; names and addresses unique.
    pub fn validate(&self) -> Result<(), String> {
        let mut names = HashSet::new();
        for n in ["client-a", "pf-a", "x"] {
            names.insert(n.to_string());
        }
        for p in &self.pf_b {
            if !names.insert(p.name.clone()) {
                return Err(format!("duplicate instance name {:?}", p.name));
            }
        }
        // Linear in the group size (a group may have 10,000 members).
        let mut served: std::collections::HashMap<&str, usize> = Default::default();
        for p in &self.pf_b {
            let mut own = HashSet::new();
            for s in &p.serves {
                if own.insert(s.as_str()) {
                    *served.entry(s.as_str()).or_default() += 1;
                }
            }
        }
        for m in &self.members {
            if !names.insert(m.name.clone()) {
                return Err(format!("duplicate instance name {:?}", m.name));
            }
            let servers = served.get(m.name.as_str()).copied().unwrap_or(0);
            if servers != 1 {
                return Err(format!(
                    "member {:?} is served by {servers} pf-b instances; expected exactly 1",
                    m.name
                ));
            }
            if !m.uri.starts_with("sip:") {
                return Err(format!(
                    "member {:?}: uri {:?} is not a sip: URI",
                    m.name, m.uri
                ));
            }
        }
        let member_names: HashSet<&str> = self.members.iter().map(|m| m.name.as_str()).collect();
        for p in &self.pf_b {
            for s in &p.serves {
                if !member_names.contains(s.as_str()) {
                    return Err(format!("pf-b {:?} serves unknown member {s:?}", p.name));
                }
            }
        }
        let mut addrs = HashSet::new();
        for i in self.instances() {
            for a in [i.sip, i.msrp] {
                if !addrs.insert(a) {
                    return Err(format!("address {a} used twice (at {})", i.name));
                }
            }
        }
        if self.members.is_empty() {
            return Err("the group has no members".into());
        }
        Ok(())
    }

    /// All instances in chain order.
    pub fn instances(&self) -> Vec<Instance> {
        let mut v = vec![
            Instance {
                role: Role::ClientA,
                name: "client-a".into(),
                sip: self.client_a.sip,
                msrp: self.client_a.msrp,
            },
            Instance {
                role: Role::PfA,
                name: "pf-a".into(),
                sip: self.pf_a.sip,
                msrp: self.pf_a.msrp,
            },
            Instance {
                role: Role::X,
                name: "x".into(),
                sip: self.x.sip,
                msrp: self.x.msrp,
            },
        ];
        v.extend(self.pf_b.iter().map(|p| Instance {
            role: Role::PfB,
            name: p.name.clone(),
            sip: p.sip,
            msrp: p.msrp,
        }));
        v.extend(self.members.iter().map(|m| Instance {
            role: Role::ClientB,
            name: m.name.clone(),
            sip: m.sip,
            msrp: m.msrp,
        }));
        v
    }

    pub fn instance(&self, name: &str) -> Option<Instance> {
        let ix = self.index();
        let fixed = |role, e: &Endpoint| Instance {
            role,
            name: name.to_string(),
            sip: e.sip,
            msrp: e.msrp,
        };
        match name {
            "client-a" => return Some(fixed(Role::ClientA, &self.client_a)),
            "pf-a" => return Some(fixed(Role::PfA, &self.pf_a)),
            "x" => return Some(fixed(Role::X, &self.x)),
            _ => {}
        }
        let pf_b = |p: &PfB| Instance {
            role: Role::PfB,
            name: p.name.clone(),
            sip: p.sip,
            msrp: p.msrp,
        };
        let member = |m: &Member| Instance {
            role: Role::ClientB,
            name: m.name.clone(),
            sip: m.sip,
            msrp: m.msrp,
        };
        if let Some(p) = ix.pf_b.get(name).and_then(|&i| self.pf_b.get(i)) {
            if p.name == name {
                return Some(pf_b(p));
            }
        }
        if let Some(m) = ix.members.get(name).and_then(|&i| self.members.get(i)) {
            if m.name == name {
                return Some(member(m));
            }
        }
        self.instances().into_iter().find(|i| i.name == name)
    }

    pub fn member_by_uri(&self, uri: &str) -> Option<&Member> {
        let key = strip_uri(uri);
        if let Some(m) = self
            .index()
            .member_uris
            .get(&key)
            .and_then(|&i| self.members.get(i))
        {
            if strip_uri(&m.uri) == key {
                return Some(m);
            }
        }
        self.members.iter().find(|m| strip_uri(&m.uri) == key)
    }

    pub fn pf_b_serving(&self, member: &str) -> Option<&PfB> {
        if let Some(p) = self
            .index()
            .serving
            .get(member)
            .and_then(|&i| self.pf_b.get(i))
        {
            if p.serves.iter().any(|s| s == member) {
                return Some(p);
            }
        }
        self.pf_b
            .iter()
            .find(|p| p.serves.iter().any(|s| s == member))
    }

    /// Which entity instance listens at this SIP or MSRP address.
    pub fn name_of(&self, addr: SocketAddr) -> Option<String> {
        self.instances()
            .into_iter()
            .find(|i| i.sip == addr || i.msrp == addr)
            .map(|i| i.name)
    }

    /// A placeholder value for launch-command templates: `{x.sip}`, `{pf-a.msrp}`, `{b1.sip}`.
    pub fn placeholder(&self, key: &str) -> Option<String> {
        let (name, what) = key.rsplit_once('.')?;
        let i = self.instance(name)?;
        match what {
            "sip" => Some(i.sip.to_string()),
            "msrp" => Some(i.msrp.to_string()),
            "ip" => Some(i.sip.ip().to_string()),
            _ => None,
        }
    }
}

/// `sip:bob@example.com;x=y` → `sip:bob@example.com`, lower-cased scheme/host: the key an
/// AoR (group, factory, member) is recognised by. `sips:` reads as `sip:`: a request to the
/// SIPS form of an AoR is for the same resource, to be reached over TLS (RFC 3261 §19.1,
/// §26.2.2; SIG-TLS judges the transport).
pub fn strip_uri(uri: &str) -> String {
    let u = uri.trim().trim_start_matches('<').trim_end_matches('>');
    let u = u.split(';').next().unwrap_or(u);
    let u = u.to_ascii_lowercase();
    match u.strip_prefix("sips:") {
        Some(rest) => format!("sip:{rest}"),
        None => u,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_chain_is_valid_and_round_trips() {
        let t = Topology::default_chain();
        t.validate().unwrap();
        assert_eq!(t.members.len(), 3);
        assert_eq!(t.pf_b.len(), 2);
        let back = Topology::parse(&t.to_yaml(), "t.yaml").unwrap();
        assert_eq!(back, t);
        assert_eq!(t.placeholder("x.sip").unwrap(), t.x.sip.to_string());
        assert_eq!(t.pf_b_serving("b3").unwrap().name, "pf-b2");
    }

    #[test]
    fn unknown_key_names_the_place() {
        let t = Topology::default_chain();
        let yaml = t.to_yaml().replace("factory:", "factroy:");
        let err = Topology::parse(&yaml, "topo.yaml").unwrap_err().to_string();
        assert!(err.starts_with("topo.yaml:"), "{err}");
        assert!(err.contains("factroy"), "{err}");
    }

    #[test]
    fn member_served_twice_is_rejected() {
        let mut t = Topology::default_chain();
        t.pf_b[1].serves.push("b1".into());
        assert!(t.validate().unwrap_err().contains("served by 2"));
    }

    #[test]
    fn roles_parse() {
        assert_eq!(
            Role::parse_list("x, pf-a").unwrap(),
            vec![Role::PfA, Role::X]
        );
        assert!(Role::parse("pfa").unwrap_err().contains("expected one of"));
    }

    /// Look-ups go through an index built on first use, and stay right when the fields are
    /// edited afterwards.
    #[test]
    fn lookups_survive_edits_after_the_index_was_built() {
        let mut t = Topology::generate(3, 1000, 10, 5060, 2855);
        assert_eq!(t.instance("b999").unwrap().role, Role::ClientB);
        assert_eq!(t.pf_b_serving("b1000").unwrap().name, "pf-b10");
        assert_eq!(t.member_by_uri("<SIP:b7@example.com>").unwrap().name, "b7");
        assert_eq!(t.instance("pf-b3").unwrap().role, Role::PfB);
        assert!(t.instance("nobody").is_none());
        // Edit after the index exists: a rename, a moved member, a reordered list.
        t.members[6].name = "seven".into();
        t.members[6].uri = "sip:seven@example.com".into();
        t.pf_b[0].serves.retain(|m| m != "b1");
        t.pf_b[1].serves.push("b1".into());
        t.members.swap(0, 999);
        assert!(t.instance("b7").is_none());
        assert_eq!(t.instance("seven").unwrap().name, "seven");
        assert!(t.member_by_uri("sip:b7@example.com").is_none());
        assert_eq!(
            t.member_by_uri("sip:seven@example.com").unwrap().name,
            "seven"
        );
        assert_eq!(t.pf_b_serving("b1").unwrap().name, "pf-b2");
        assert_eq!(t.instance("b1").unwrap().sip, t.members[999].sip);
        assert_eq!(t.instance("b1000").unwrap().sip, t.members[0].sip);
    }
}
