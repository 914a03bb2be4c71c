//! `berth images`, `berth rewrite`, `berth lint`: the plan (berth-plan) and the profile
//! checks (berth-profile), read from files and printed.

use std::process::ExitCode;

use anyhow::{Result, anyhow, bail};
use berth_plan::Plan;
use berth_profile::{Finding, Severity};
use serde_json::json;

use crate::inputs::EdgeLogin;
use crate::{ImagesArgs, LintArgs, RewriteArgs, exit_status, inputs, json_out, json_word, show};

pub fn images(args: ImagesArgs) -> Result<ExitCode> {
    let (rewriter, _) =
        args.redirect
            .targets(&EdgeLogin::default(), None, args.example.is_some())?;
    let (profiles, charts) = args.inputs.read(&args.profiles, args.example.as_deref())?;
    let plan = match &args.chart {
        Some(path) => inputs::chart_plan(path, &args, &rewriter)?,
        None => Plan::build_with(&profiles, &charts, &rewriter)?,
    };
    if let Some(r) = &args.explain {
        return explain(&plan, r);
    }
    let row = |e: &berth_plan::PlanEntry| {
        let (s, t) = (e.source.to_string(), e.target.to_string());
        let p: Vec<String> = e.provenance.iter().map(json_word).collect();
        let found = e.found_in.first().cloned().unwrap_or_default();
        vec![
            json_word(&e.role),
            e.layer.clone(),
            s,
            t,
            p.join(","),
            found,
        ]
    };
    let rows = plan.entries.iter().map(row).collect();
    show(
        &plan,
        &["ROLE", "LAYER", "SOURCE", "TARGET", "PROVENANCE", "FOUND"],
        rows,
    )?;
    if !json_out() {
        let (n, p) = (plan.entries.len(), profiles.len());
        say!("{n} image(s) from {p} profile(s)");
    }
    plan.findings.iter().for_each(|f| eprintln!("{f}"));
    Ok(exit_status(Finding::any_error(&plan.findings)))
}

/// `images --explain REF`: where the plan found REF, and what it became.
fn explain(plan: &Plan, r: &str) -> Result<ExitCode> {
    let want = berth_reference::Reference::parse(r)?;
    let Some(e) = plan.entries.iter().find(|e| e.source == want) else {
        bail!("{r} ({want}) is not an image of the plan: `berth images` lists them");
    };
    if json_out() {
        return crate::print_json(e).map(|_| ExitCode::SUCCESS);
    }
    let prov: Vec<String> = e.provenance.iter().map(json_word).collect();
    println!(
        "{} -> {}\nprovenance: {}",
        e.source,
        e.target,
        prov.join(", ")
    );
    e.found_in.iter().for_each(|f| println!("  {f}"));
    Ok(ExitCode::SUCCESS)
}

pub fn rewrite(args: RewriteArgs) -> Result<ExitCode> {
    let (rewriter, _) = args.redirect.targets(&EdgeLogin::default(), None, false)?;
    let target = |r: &String| rewriter.rewrite_str(r).map_err(|e| anyhow!("{e}"));
    let targets = args.references.iter().map(target);
    let targets = targets.collect::<Result<Vec<_>>>()?;
    if json_out() {
        let pairs = args.references.iter().zip(&targets);
        let images: Vec<_> = pairs
            .map(|(s, t)| json!({"source": s, "target": t}))
            .collect();
        crate::print_json(&json!({ "images": images }))?;
    } else if !crate::quiet() {
        targets.iter().for_each(|t| println!("{t}"));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn lint(args: LintArgs) -> Result<ExitCode> {
    let (profiles, fixed) = berth_inputs::fix_and_read(&args.profiles, args.fix)?;
    for p in fixed {
        say!("fixed {}: removed AlwaysPullImages", p.display());
    }
    let ud = args.user_data.as_deref().map(inputs::user_data);
    let findings = berth_plan::lint(&profiles, ud.transpose()?.as_ref())?;
    if json_out() {
        crate::print_json(&json!({ "findings": findings }))?;
    } else if !crate::quiet() {
        findings.iter().for_each(|f| println!("{f}"));
        let errors = findings.iter().filter(|f| f.severity == Severity::Error);
        let (n, errors) = (findings.len(), errors.count());
        let warnings = n - errors;
        eprintln!("{n} finding(s): {errors} error(s), {warnings} warning(s)");
    }
    Ok(exit_status(Finding::any_error(&findings)))
}
