//! `berth images`, `berth rewrite`, `berth lint`: the pure core, reading files and printing.

use std::process::ExitCode;

use anyhow::anyhow;
use berth_profile::{Finding, ImageUse, Profile, Severity};
use berth_rewrite::Rewriter;
use serde::Serialize;

use crate::inputs;
use crate::{EXIT_FINDINGS, Failure, ImagesArgs, LintArgs, Output, RewriteArgs};

/// One row of `berth images`: a profile image and where it lives after rewriting.
#[derive(Serialize)]
pub struct PlannedImage {
    pub source: String,
    pub target: String,
    pub layer: String,
    pub layer_type: berth_profile::LayerType,
    pub role: berth_profile::Role,
    pub found_in: Vec<String>,
}

/// Every image of the profiles with its target. Rewrite errors are bad input: they name the
/// image, where it was found, and the fix.
pub fn plan(
    profiles: &[Profile],
    rewriter: &Rewriter,
) -> Result<(Vec<PlannedImage>, Vec<Finding>), Failure> {
    let extraction = berth_profile::extract_images(profiles)?;
    let mut errors = Vec::new();
    let mut rows = Vec::new();
    for img in &extraction.images {
        match rewriter.rewrite(&img.source) {
            Ok(target) => rows.push(row(img, target.to_string())),
            Err(e) => errors.push(format!("{e} (found in {})", img.found_in.join("; "))),
        }
    }
    if !errors.is_empty() {
        return Err(Failure::BadInput(anyhow!(errors.join("\n"))));
    }
    Ok((rows, extraction.findings))
}

fn row(img: &ImageUse, target: String) -> PlannedImage {
    PlannedImage {
        source: img.source.to_string(),
        target,
        layer: img.layer.clone(),
        layer_type: img.layer_type,
        role: img.role,
        found_in: img.found_in.clone(),
    }
}

pub fn images(args: ImagesArgs) -> Result<ExitCode, Failure> {
    let profiles = if args.example {
        vec![Profile::parse(
            inputs::EXAMPLE_PROFILE,
            "<example profile>",
        )?]
    } else {
        inputs::profiles(&args.profiles)?
    };
    let rewriter = inputs::rewriter(&args.redirect, args.example)?;
    let (rows, findings) = plan(&profiles, &rewriter)?;
    match args.output {
        Output::Json => {
            #[derive(Serialize)]
            struct Out<'a> {
                images: &'a [PlannedImage],
            }
            println!("{}", serde_json::to_string_pretty(&Out { images: &rows })?);
        }
        Output::Table => {
            let table: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        json_word(&r.role),
                        r.layer.clone(),
                        r.source.clone(),
                        r.target.clone(),
                    ]
                })
                .collect();
            print_table(&["ROLE", "LAYER", "SOURCE", "TARGET"], &table);
            eprintln!("{} image(s) from {} profile(s)", rows.len(), profiles.len());
        }
    }
    for f in &findings {
        eprintln!("{}", finding_line(f));
    }
    Ok(exit_for(&findings))
}

pub fn rewrite(args: RewriteArgs) -> Result<ExitCode, Failure> {
    let rewriter = inputs::rewriter(&args.redirect, false)?;
    let mut out = Vec::new();
    for r in &args.references {
        let t = rewriter.rewrite_str(r).map_err(|e| anyhow!("{e}"))?;
        out.push(t.to_string());
    }
    for t in out {
        println!("{t}");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn lint(args: LintArgs) -> Result<ExitCode, Failure> {
    let mut texts = Vec::new();
    for p in &args.profiles {
        texts.push((p.clone(), inputs::read(p)?));
    }
    if args.fix {
        // Check and fix every file before writing any, so a bad file leaves all untouched.
        let mut fixed = Vec::new();
        for (p, text) in &texts {
            let fix = berth_profile::fix_always_pull_images(text, &p.display().to_string())?;
            fixed.push((p.clone(), fix));
        }
        for (p, fix) in fixed {
            let original = &texts
                .iter()
                .find(|(q, _)| *q == p)
                .map(|(_, t)| t.clone())
                .unwrap_or_default();
            if &fix.text != original {
                inputs::write_atomic(&p, &fix.text)?;
                eprintln!("fixed {}: removed AlwaysPullImages", p.display());
                if let Some(t) = texts.iter_mut().find(|(q, _)| *q == p) {
                    t.1 = fix.text;
                }
            }
        }
    }
    let profiles = texts
        .iter()
        .map(|(p, t)| Profile::parse(t, &p.display().to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let findings = berth_profile::lint(&profiles)?;
    match args.output {
        Output::Json => {
            #[derive(Serialize)]
            struct Out<'a> {
                findings: &'a [Finding],
            }
            println!(
                "{}",
                serde_json::to_string_pretty(&Out {
                    findings: &findings
                })?
            );
        }
        Output::Table => {
            for f in &findings {
                println!("{}", finding_line(f));
            }
            let errors = findings
                .iter()
                .filter(|f| f.severity == Severity::Error)
                .count();
            eprintln!(
                "{} finding(s): {errors} error(s), {} warning(s)",
                findings.len(),
                findings.len() - errors
            );
        }
    }
    Ok(exit_for(&findings))
}

pub fn exit_for(findings: &[Finding]) -> ExitCode {
    if findings.iter().any(|f| f.severity == Severity::Error) {
        ExitCode::from(EXIT_FINDINGS)
    } else {
        ExitCode::SUCCESS
    }
}

pub fn finding_line(f: &Finding) -> String {
    format!(
        "{}: {} [{}] layer {}: {}: {}",
        f.file,
        json_word(&f.severity),
        f.rule,
        f.layer,
        f.path,
        f.message
    )
}

/// The serde name of a unit enum value (`"provider"`).
pub fn json_word<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

pub fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        s
    };
    println!("{}", line(headers.to_vec()));
    for r in rows {
        println!("{}", line(r.iter().map(String::as_str).collect()));
    }
}
