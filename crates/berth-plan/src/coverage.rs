//! Where the settings the user wrote do not cover a target: every such case is a finding
//! (`berth lint --user-data`, and a warning of `images`, `mirror` and `verify`) that names the
//! rule, the image and the fix.
//!
//! - `unmapped-image`: the user data has mapping rules (or registries without rules), and no
//!   rule matches the image, so it is not redirected: the site pulls it from its source
//!   registry and `mirror` copies nothing for it.
//! - `target-without-registry`: a mapping rule sends images to a target that lies outside
//!   every `registries[].domain`, so no credentials and no CA certificate apply to it.
//! - `redirect-off`: `imageRedirectWebhook.enable: false`, so no image is redirected.

use berth_profile::{Finding, Severity};
use berth_reference::Reference;
use berth_rewrite::Rewriter;
use berth_userdata::{MappingRule, Redirect, is_under};

use crate::PlanEntry;

/// No mapping rule matches the image.
pub const UNMAPPED_IMAGE: &str = "unmapped-image";
/// A rule's target has no `registries[]` entry.
pub const TARGET_WITHOUT_REGISTRY: &str = "target-without-registry";
/// Redirection is switched off.
pub const REDIRECT_OFF: &str = "redirect-off";

const RULES: &str = "stylus.externalRegistries.registryMappingRules";
const REGISTRIES: &str = "stylus.externalRegistries.registries";

/// The coverage findings of `entries` under the user data of `rewriter` (none without user
/// data). Pure.
pub fn coverage(entries: &[PlanEntry], rewriter: &Rewriter) -> Vec<Finding> {
    let Some(file) = rewriter.user_data_file() else {
        return Vec::new();
    };
    let finding = |rule: &str, layer: &str, path: String, message: String| Finding {
        rule: rule.to_string(),
        severity: Severity::Warning,
        file: file.to_string(),
        layer: layer.to_string(),
        path,
        message,
    };
    if !rewriter.enabled() {
        if entries.is_empty() {
            return Vec::new();
        }
        return vec![finding(
            REDIRECT_OFF,
            "",
            "stylus.imageRedirectWebhook.enable".into(),
            format!(
                "is false, so none of the {} image(s) is redirected: the site pulls each from where the profile says and `berth mirror` has nothing to copy; remove `enable: false` to use the external registry",
                entries.len()
            ),
        )];
    }
    let registries = rewriter.registries();
    let rules: &[MappingRule] = match rewriter.redirect() {
        Redirect::Mapping { rules } => rules,
        // Registries without rules redirect nothing: every image is unmapped.
        Redirect::None if !registries.is_empty() => &[],
        // `registryCredentials` prefixes every image with its own domain; no settings at
        // all is refused or warned about elsewhere.
        _ => return Vec::new(),
    };
    let mut findings = Vec::new();
    let mut uncovered: Vec<(&MappingRule, Vec<(&PlanEntry, Reference)>)> = Vec::new();
    for e in entries {
        let name = e.source.name();
        let at_target = rules.iter().any(|r| is_under(&name, &r.target));
        let at_registry = registries.iter().any(|r| is_under(&name, &r.domain));
        match rewriter.redirect().rule_for(&name) {
            _ if at_target || at_registry => {}
            None => findings.push(finding(
                UNMAPPED_IMAGE,
                &e.layer,
                RULES.into(),
                format!(
                    "image `{}` matches no rule, so it is not redirected: the site pulls it from `{}` itself and `berth mirror` has nothing to copy for it; add a rule for its registry, e.g. \"{}\": \"{}/{}\"",
                    e.source,
                    e.source.domain(),
                    e.source.domain(),
                    suggested_base(rules, rewriter),
                    e.source.domain().replace(':', "_"),
                ),
            )),
            Some(rule) => {
                let Ok(target) = rewriter.external_target(&e.source) else {
                    continue;
                };
                if rewriter.registry_for(&target).is_some() {
                    continue;
                }
                match uncovered.iter_mut().find(|(r, _)| *r == rule) {
                    Some((_, v)) => v.push((e, target)),
                    None => uncovered.push((rule, vec![(e, target)])),
                }
            }
        }
    }
    for (rule, images) in uncovered {
        let (first, target) = &images[0];
        let more = match images.len() {
            1 => String::new(),
            n => format!(" (and {} more image(s))", n - 1),
        };
        let outside = match registries.is_empty() {
            true => format!("there is no `{REGISTRIES}[]` entry"),
            false => format!(
                "it lies outside every `{REGISTRIES}[].domain` ({})",
                registries
                    .iter()
                    .map(|r| r.domain.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let host = rule.target.split('/').next().unwrap_or(&rule.target);
        findings.push(finding(
            TARGET_WITHOUT_REGISTRY,
            &first.layer,
            format!("{RULES}[\"{}\"]", rule.source),
            format!(
                "the rule \"{}\": \"{}\" sends image `{}` to `{target}`{more}, and {outside}, so no credentials and no CA certificate apply to it: `berth mirror` pushes without a login and trusts only the system roots; add `- domain: {host}` (with its username, password and certificates) under `{REGISTRIES}`, or point the rule at a registry that has an entry",
                rule.source, rule.target, first.source,
            ),
        ));
    }
    findings
}

/// Where a suggested rule could send a registry: the first registry entry's domain, else
/// the host of the first rule's target.
fn suggested_base(rules: &[MappingRule], rewriter: &Rewriter) -> String {
    match (rewriter.registries().first(), rules.first()) {
        (Some(r), _) => r.domain.clone(),
        (None, Some(rule)) => rule.target.split('/').next().unwrap_or("").to_string(),
        (None, None) => "<registry>/<path>".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use berth_profile::Profile;
    use berth_rewrite::{LocalRegistry, Rewriter};
    use berth_userdata::UserData;

    use super::*;
    use crate::Plan;

    const PROFILE: &str = "name: p\nlayers:\n  - name: apps\n    type: addon\n    values:\n      pack:\n        content:\n          images:\n            - image: nginx:1\n            - image: quay.io/a/b:2\n            - image: quay.io/a/c:3\n            - image: ghcr.io/x/y:1\n            - image: ext.example.com/palette/own/app:1\n";

    fn findings(ud: &str, local: Option<LocalRegistry>) -> Vec<Finding> {
        let ud = UserData::parse(ud, "ud.yaml").unwrap();
        let profiles = [Profile::parse(PROFILE, "p.yaml").unwrap()];
        let plan = Plan::build(&profiles, &Rewriter::new(Some(&ud), local)).unwrap();
        plan.findings
    }

    const MAPPING: &str = "#cloud-config\nstylus:\n  externalRegistries:\n    registries:\n      - domain: ext.example.com/palette\n        username: u\n        password: p\n    registryMappingRules:\n      \"docker.io\": \"ext.example.com/palette/hub\"\n      \"quay.io\": \"other.example.com/quay\"\n";

    #[test]
    fn an_unmapped_image_and_a_rule_outside_the_registries_are_findings() {
        let f = findings(MAPPING, None);
        let rules: Vec<&str> = f.iter().map(|f| f.rule.as_str()).collect();
        assert_eq!(rules, [UNMAPPED_IMAGE, TARGET_WITHOUT_REGISTRY], "{f:#?}");
        assert!(f.iter().all(|f| f.severity == Severity::Warning));
        let unmapped = &f[0];
        assert_eq!(
            (unmapped.file.as_str(), unmapped.layer.as_str()),
            ("ud.yaml", "apps")
        );
        assert_eq!(unmapped.path, RULES);
        assert!(
            unmapped
                .message
                .contains("image `ghcr.io/x/y:1` matches no rule")
                && unmapped
                    .message
                    .contains("\"ghcr.io\": \"ext.example.com/palette/ghcr.io\""),
            "{}",
            unmapped.message
        );
        let outside = &f[1];
        assert_eq!(
            outside.path,
            "stylus.externalRegistries.registryMappingRules[\"quay.io\"]"
        );
        let m = &outside.message;
        assert!(
            m.contains("\"quay.io\": \"other.example.com/quay\" sends image `quay.io/a/b:2` to `other.example.com/quay/a/b:2` (and 1 more image(s))")
                && m.contains("(ext.example.com/palette)")
                && m.contains("add `- domain: other.example.com`"),
            "{m}"
        );
    }

    #[test]
    fn the_edge_registry_changes_nothing_and_covered_settings_give_no_finding() {
        let edge = LocalRegistry::new("edge:5000", None).unwrap();
        assert_eq!(findings(MAPPING, Some(edge)), findings(MAPPING, None));
        let covered = "#cloud-config\nstylus:\n  externalRegistries:\n    registries:\n      - domain: ext.example.com/palette\n      - domain: other.example.com\n    registryMappingRules:\n      \"docker.io\": \"ext.example.com/palette/hub\"\n      \"quay.io\": \"other.example.com/quay\"\n      \"ghcr.io\": \"ext.example.com/palette/ghcr\"\n";
        assert_eq!(findings(covered, None), []);
        let prepend =
            "#cloud-config\nstylus:\n  registryCredentials:\n    domain: ext.example.com/palette\n";
        assert_eq!(findings(prepend, None), []);
    }

    #[test]
    fn rules_without_registries_and_registries_without_rules() {
        let rules_only = "#cloud-config\nstylus:\n  externalRegistries:\n    registryMappingRules:\n      \"docker.io\": \"ext.example.com/hub\"\n      \"quay.io\": \"ext.example.com/quay\"\n      \"ghcr.io\": \"ext.example.com/ghcr\"\n";
        let f = findings(rules_only, None);
        // One per rule; the image at ext.example.com/palette matches no rule either.
        assert_eq!(f.len(), 4, "{f:#?}");
        assert_eq!(f[0].rule, UNMAPPED_IMAGE);
        assert!(f[1..].iter().all(|f| {
            f.rule == TARGET_WITHOUT_REGISTRY
                && f.message
                    .contains("there is no `stylus.externalRegistries.registries[]` entry")
        }));
        let registries_only = "#cloud-config\nstylus:\n  externalRegistries:\n    registries:\n      - domain: ext.example.com/palette\n";
        let f = findings(registries_only, None);
        // Every image but the one already at the registry.
        assert_eq!(f.len(), 4, "{f:#?}");
        assert!(f.iter().all(|f| f.rule == UNMAPPED_IMAGE));
        let off = "#cloud-config\nstylus:\n  registryCredentials:\n    domain: ext.example.com/palette\n  imageRedirectWebhook:\n    enable: false\n";
        let f = findings(off, None);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].rule, REDIRECT_OFF);
        assert!(
            f[0].message.contains("none of the 5 image(s)"),
            "{}",
            f[0].message
        );
    }
}
