//! The test plan: which cases a run executes. A case is (variant, split, ordering choice) with
//! a stable id such as `F2/x/on-ack/udp/new/sdp/predefined/in-order`. The matrix comes from
//! `suites/default.yaml` (a [`DefaultSuite`]): sections, each a small cross product of figures ×
//! variant patches × splits × ordering choices, so each knob value is covered per figure
//! without the full cross product. The profile ([`Profile`]) then filters: a case whose split
//! or (relevant) variant knobs the profile does not declare is skipped with a reason.
//!
//! This module owns the `default.yaml` format, splits (including the 30 proper non-empty
//! subsets of the five roles), the ordering choices as named [`Holds`] sets, knob relevance
//! (a knob that cannot change what the SUT roles do is reset to the base value, so equivalent
//! cases merge into one id), and the case ids.
//!
//! # `default.yaml`
//!
//! ```yaml
//! base: {}                      # variant knobs under every case (trigger, transport, …)
//! orderings:                    # named ordering choices: Holds for the harness's entities
//!   in-order: {}
//!   pause:
//!     holds: { ack-delay: 200, answer-delay: 200, send-delay: 200 }
//!   ack-after-send:
//!     holds: { ack-after-first-send: true }
//!     when: { harness-plays: [client-a], sut-plays: [pf-a], opener: { L1: client-a } }
//! sections:
//!   - name: roles
//!     figures: [1, 2, 3, 4, 5, 6, 7]   # default: every figure with a suite file
//!     variants: [{}]                   # patches over base; default [{}]
//!     splits: [singles, network, none] # or all-proper, a role, or roles joined by , or +
//!     orderings: [in-order]            # default [in-order]
//! ```

use crate::codec::sip::Transport;
use crate::config::{
    AckTiming, Figure, GroupKind, Link, MiddleOpener, SetupMode, Trigger, Variant, XAnswer,
};
use crate::engine::profile::Profile;
use crate::engine::spec::{ack_name, case_id, parse_split, Case, Relevance};
use crate::engine::suite::{load_figures, locate, parse_yaml_hinted, Suite};
use crate::entity::Holds;
use crate::suggest::did_you_mean;
use crate::topology::Role;
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;

/// The cases to run, the ones skipped with their reason, and the figure suites they use.
#[derive(Debug, Clone)]
pub struct Plan {
    pub cases: Vec<Case>,
    /// (case id, reason).
    pub skipped: Vec<(String, String)>,
    /// The figure suites by figure number.
    pub suites: BTreeMap<u8, Suite>,
}

impl Plan {
    pub fn suite(&self, figure: u8) -> Option<&Suite> {
        self.suites.get(&figure)
    }
}

/// Variant knobs to set (every field optional); applied over `Variant::new(figure)`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct VariantPatch {
    pub trigger: Option<Trigger>,
    pub x_trigger: Option<Trigger>,
    pub l23_opener: Option<MiddleOpener>,
    #[serde(default, deserialize_with = "crate::engine::suite::ack_serde::option")]
    pub ack: Option<AckTiming>,
    pub reuse: Option<bool>,
    pub setup: Option<SetupMode>,
    pub group: Option<GroupKind>,
    pub transport: Option<Transport>,
    pub chunk_size: Option<u64>,
    /// `ip: v6`: every entity on IPv6.
    pub ip: Option<crate::config::IpFamily>,
    pub msrp_transport: Option<crate::config::MsrpTransport>,
}

impl VariantPatch {
    pub fn apply(&self, v: &mut Variant) {
        if let Some(t) = self.trigger {
            v.trigger = t;
        }
        if let Some(t) = self.x_trigger {
            v.x_trigger = Some(t);
        }
        if let Some(o) = self.l23_opener {
            v.l23_opener = o;
        }
        if let Some(a) = self.ack {
            v.ack = Some(a);
        }
        if let Some(r) = self.reuse {
            v.reuse = r;
        }
        if let Some(s) = self.setup {
            v.setup = s;
        }
        if let Some(g) = self.group {
            v.group = g;
        }
        if let Some(t) = self.transport {
            v.transport = t;
        }
        if let Some(c) = self.chunk_size {
            v.chunk_size = c;
        }
        if let Some(f) = self.ip {
            v.ip = f;
        }
        if let Some(m) = self.msrp_transport {
            v.msrp_transport = m;
        }
    }
}

/// When an ordering choice can make a difference; a (split, variant) where it cannot gets no
/// case with it (it would repeat `in-order`). Each list means "any of"; for the self-check
/// split `none` the role conditions hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct When {
    /// The harness plays at least one of these roles (it is where the holds act).
    #[serde(default)]
    pub harness_plays: Vec<Role>,
    /// The SUT plays at least one of these roles (it is who the choice tests).
    #[serde(default)]
    pub sut_plays: Vec<Role>,
    /// The figure's x answer timing.
    #[serde(default)]
    pub x_answer: Option<XAnswer>,
    /// The figure (under the variant) gives these links to these openers.
    #[serde(default)]
    pub opener: BTreeMap<Link, Role>,
}

impl When {
    pub fn applies(&self, suite: &Suite, variant: &Variant, sut: &[Role]) -> bool {
        let self_check = sut.is_empty();
        let harness = self_check
            || self.harness_plays.is_empty()
            || self.harness_plays.iter().any(|r| !sut.contains(r));
        let tested = self_check
            || self.sut_plays.is_empty()
            || self.sut_plays.iter().any(|r| sut.contains(r));
        let xa = self.x_answer.is_none_or(|x| suite.x_answer() == x);
        let op = self
            .opener
            .iter()
            .all(|(l, r)| suite.opener_for(*l, variant) == *r);
        harness && tested && xa && op
    }
}

/// A named ordering choice.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Ordering {
    #[serde(default)]
    pub about: Option<String>,
    #[serde(default)]
    pub holds: Holds,
    #[serde(default)]
    pub when: When,
}

/// One block of the matrix: figures × variants × splits × orderings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Section {
    pub name: String,
    #[serde(default)]
    pub about: Option<String>,
    /// Figure numbers; default every figure with a suite file.
    #[serde(default)]
    pub figures: Option<Vec<Figure>>,
    /// Variant patches over `base`; default one empty patch.
    #[serde(default = "one_empty_patch")]
    pub variants: Vec<VariantPatch>,
    /// Split entries (see [`parse_split`]); default `none`.
    #[serde(default = "default_splits")]
    pub splits: Vec<String>,
    /// Ordering names; default `in-order`.
    #[serde(default = "default_orderings")]
    pub orderings: Vec<String>,
}

fn one_empty_patch() -> Vec<VariantPatch> {
    vec![VariantPatch::default()]
}
fn default_splits() -> Vec<String> {
    vec!["none".into()]
}
fn default_orderings() -> Vec<String> {
    vec!["in-order".into()]
}

/// The default run's matrix (`suites/default.yaml`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DefaultSuite {
    #[serde(default)]
    pub about: Option<String>,
    /// Knobs under every case.
    #[serde(default)]
    pub base: VariantPatch,
    pub orderings: BTreeMap<String, Ordering>,
    pub sections: Vec<Section>,
}

impl DefaultSuite {
    pub fn load(path: &Path) -> anyhow::Result<DefaultSuite> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
        DefaultSuite::parse(&text, &path.display().to_string())
    }

    /// Parses and validates: ordering names exist, splits parse, section names unique.
    pub fn parse(text: &str, origin: &str) -> anyhow::Result<DefaultSuite> {
        let d: DefaultSuite = parse_yaml_hinted(text, origin)?;
        d.validate(text, origin).map_err(|e| anyhow::anyhow!(e))?;
        Ok(d)
    }

    fn validate(&self, text: &str, origin: &str) -> Result<(), String> {
        let names: Vec<&str> = self.orderings.keys().map(String::as_str).collect();
        let mut seen = HashSet::new();
        let mut base = Variant::new(1);
        self.base.apply(&mut base);
        base.validate()
            .map_err(|e| format!("{origin}: base: {e}"))?;
        for s in &self.sections {
            let at = locate(text, origin, "name", &s.name);
            if !seen.insert(s.name.as_str()) {
                return Err(format!("{at}: section {:?} is defined twice", s.name));
            }
            for o in &s.orderings {
                if !self.orderings.contains_key(o) {
                    return Err(format!(
                        "{at}: section {}: unknown ordering {o:?}{}; defined: {}",
                        s.name,
                        did_you_mean(o, &names),
                        names.join(", ")
                    ));
                }
            }
            for sp in &s.splits {
                parse_split(sp).map_err(|e| format!("{at}: section {}: {e}", s.name))?;
            }
            for p in &s.variants {
                let mut v = base.clone();
                p.apply(&mut v);
                v.validate()
                    .map_err(|e| format!("{at}: section {}: {e}", s.name))?;
            }
            if s.variants.is_empty() || s.splits.is_empty() || s.orderings.is_empty() {
                return Err(format!(
                    "{at}: section {}: variants, splits and orderings must not be empty lists",
                    s.name
                ));
            }
        }
        Ok(())
    }

    /// The base variant of a figure.
    pub fn base_variant(&self, figure: Figure) -> Variant {
        let mut v = Variant::new(figure.n());
        self.base.apply(&mut v);
        v
    }
}

// ------------------------------------------------------------------------------------------
// Knob relevance

/// Resets knobs that do not matter for the split to `base`, and writes knobs equal to their
/// default as defaults (`x-trigger` equal to `trigger`, `ack` equal to the figure's), so
/// equivalent cases get one id.
pub fn normalize(suite: &Suite, variant: &Variant, base: &Variant, sut: &[Role]) -> Variant {
    let mut v = variant.clone();
    if !suite.has_l23_choice() {
        v.l23_opener = base.l23_opener;
    }
    // l23 first: it decides who opens what, hence which triggers matter.
    let rel = Relevance::of(suite, &v, sut);
    if !rel.l23 {
        v.l23_opener = base.l23_opener;
    }
    let rel = Relevance::of(suite, &v, sut);
    if !rel.trigger {
        v.trigger = base.trigger;
    }
    if !rel.x_trigger {
        v.x_trigger = base.x_trigger;
    }
    if !rel.ack {
        v.ack = base.ack;
    }
    if !rel.reuse {
        v.reuse = base.reuse;
    }
    if !rel.group {
        v.group = base.group;
    }
    if v.x_trigger == Some(v.trigger) {
        v.x_trigger = None;
    }
    if v.ack == Some(suite.default_ack()) {
        v.ack = None;
    }
    v
}

/// Whether the figure allows the variant (ACK timing and triggers).
pub fn figure_allows(suite: &Suite, variant: &Variant) -> Result<(), String> {
    let ack = variant.ack_timing();
    if !suite.ack_allowed().contains(&ack) {
        return Err(format!(
            "figure {} does not allow ack {} ({})",
            suite.figure(),
            ack_name(ack),
            suite.origin()
        ));
    }
    for l in Link::all() {
        suite.trigger_allowed(l, variant)?;
    }
    Ok(())
}

/// Builds the plan: the figure suites of `suite_dir` (`fig*.yaml`), the matrix of `default`,
/// filtered by `profile`. Cases come in section order; a case id met again (another section,
/// or an equivalent variant after [`normalize`]) is kept once.
pub fn plan(suite_dir: &Path, default: &DefaultSuite, profile: &Profile) -> anyhow::Result<Plan> {
    let suites = load_figures(suite_dir)?;
    plan_with(suites, default, profile)
}

/// [`plan`] over suites already loaded.
pub fn plan_with(
    suites: BTreeMap<u8, Suite>,
    default: &DefaultSuite,
    profile: &Profile,
) -> anyhow::Result<Plan> {
    let mut cases = Vec::new();
    let mut skipped = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for section in &default.sections {
        let figures: Vec<u8> = match &section.figures {
            Some(f) => f.iter().map(|f| f.n()).collect(),
            None => suites.keys().copied().collect(),
        };
        let mut splits: Vec<Vec<Role>> = Vec::new();
        for s in &section.splits {
            for sp in
                parse_split(s).map_err(|e| anyhow::anyhow!("section {}: {e}", section.name))?
            {
                if !splits.contains(&sp) {
                    splits.push(sp);
                }
            }
        }
        for fig in figures {
            let Some(suite) = suites.get(&fig) else {
                anyhow::bail!(
                    "section {}: no suite file for figure {fig} (expected a fig*.yaml with figure: {fig})",
                    section.name
                );
            };
            let base = default.base_variant(suite.figure());
            for patch in &section.variants {
                let mut v = base.clone();
                patch.apply(&mut v);
                v.validate()
                    .map_err(|e| anyhow::anyhow!("section {}: {e}", section.name))?;
                for sut in &splits {
                    // The self-check tests the harness, not a SUT: only the profiles that
                    // declare `self-check: true` (the reference one, `selftest`) run it, and a
                    // SUT's run does not even list it as skipped.
                    if sut.is_empty() && !profile.self_check {
                        continue;
                    }
                    let v = normalize(suite, &v, &base, sut);
                    for oname in &section.orderings {
                        let Some(ordering) = default.orderings.get(oname) else {
                            anyhow::bail!("section {}: unknown ordering {oname:?}", section.name);
                        };
                        if !ordering.when.applies(suite, &v, sut) {
                            continue;
                        }
                        let id = case_id(&v, sut, oname);
                        if !seen.insert(id.clone()) {
                            continue;
                        }
                        let verdict =
                            figure_allows(suite, &v).and_then(|_| profile.admits(suite, &v, sut));
                        match verdict {
                            Ok(()) => cases.push(Case {
                                id,
                                figure: fig,
                                // The suite file, not the built-in table, says what the
                                // figure's entities do and what the checks expect.
                                variant: Variant {
                                    rules: Some(suite.rules(&v)),
                                    ..v.clone()
                                },
                                sut: sut.clone(),
                                ordering: oname.clone(),
                                holds: ordering.holds.clone(),
                            }),
                            Err(reason) => skipped.push((id, reason)),
                        }
                    }
                }
            }
        }
    }
    Ok(Plan {
        cases,
        skipped,
        suites,
    })
}
