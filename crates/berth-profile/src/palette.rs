//! Palette cluster profile exports (shared/spec/palette-export.md): the JSON or YAML file the
//! Palette UI and API export, read into the same [`Profile`] model as Berth's own format.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use crate::error::{ProfileError, syntax};
use crate::profile::{Layer, LayerType, Manifest, Profile, layer_values};
use crate::value::Value;

/// What a profile text is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProfileFormat {
    /// Berth's own format (shared/spec/profile-format.md).
    Berth,
    /// One Palette export (`metadata` + `spec.template.packs`).
    PaletteExport,
    /// A list of Palette exports.
    PaletteExportList,
}

/// A Palette pack's `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PackType {
    Spectro,
    Helm,
    Manifest,
    Oci,
}

impl PackType {
    pub fn as_str(self) -> &'static str {
        match self {
            PackType::Spectro => "spectro",
            PackType::Helm => "helm",
            PackType::Manifest => "manifest",
            PackType::Oci => "oci",
        }
    }
}

/// What a layer read from a Palette export knows besides the common [`Layer`] fields.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PackInfo {
    pub pack_type: Option<PackType>,
    /// The tag the user picked (may be a range such as `1.33.x`).
    pub tag: Option<String>,
    /// `registry.metadata.name` (or its uid) of the pack registry.
    pub registry: Option<String>,
    /// Manifests the export names without content (`["name"]`, `[{uid, name}]`).
    pub manifest_refs: Vec<String>,
}

fn is_export(v: &Value) -> bool {
    v.get("metadata").is_some()
        && v.get("spec")
            .and_then(|s| s.get("template"))
            .and_then(|t| t.get("packs"))
            .is_some()
}

/// Detects the format of a profile text. Text that does not parse is reported as
/// [`ProfileFormat::Berth`], whose parser then names the syntax error.
pub fn detect_format(text: &str) -> ProfileFormat {
    match serde_saphyr::from_str::<Value>(text) {
        Ok(v @ Value::Map(_)) if is_export(&v) => ProfileFormat::PaletteExport,
        Ok(Value::Seq(items)) if !items.is_empty() && items.iter().all(is_export) => {
            ProfileFormat::PaletteExportList
        }
        Ok(_) => ProfileFormat::Berth,
        Err(_) if looks_like_export(text) => ProfileFormat::PaletteExport,
        Err(_) => ProfileFormat::Berth,
    }
}

fn looks_like_export(text: &str) -> bool {
    text.contains("metadata") && text.contains("packs") && text.contains("template")
}

/// Parses a profile text of any format: one Berth profile, one Palette export, or a list of
/// exports (one [`Profile`] each, in file order).
pub fn parse_profiles(text: &str, file: &str) -> Result<Vec<Profile>, ProfileError> {
    match detect_format(text) {
        ProfileFormat::Berth => Ok(vec![Profile::parse_berth(text, file)?]),
        ProfileFormat::PaletteExport => Ok(vec![parse_export(text, file)?]),
        ProfileFormat::PaletteExportList => {
            let list: Vec<RawExport> = serde_saphyr::from_str(text)
                .map_err(|e| syntax(file, "export list", text, &e, EXPORT_HINT))?;
            list.into_iter()
                .enumerate()
                .map(|(i, raw)| convert(raw, file, &format!("[{i}].")))
                .collect()
        }
    }
}

const EXPORT_HINT: &str = "fix the Palette export (metadata.name; spec.version, spec.variables[], spec.template.packs[] with name, tag, version, type, layer, values, manifests)";

/// Parses one Palette export.
pub fn parse_export(text: &str, file: &str) -> Result<Profile, ProfileError> {
    let raw: RawExport = serde_saphyr::from_str(text)
        .map_err(|e| syntax(file, "palette export", text, &e, EXPORT_HINT))?;
    convert(raw, file, "")
}

impl Profile {
    /// Sets `{{.spectro.var.NAME}}` values (`--var NAME=VALUE`, `--vars FILE`): an override
    /// replaces the export's `defaultValue`; a name the profile does not declare is added.
    pub fn set_variables(&mut self, overrides: &BTreeMap<String, String>) {
        for (name, value) in overrides {
            match self.variables.iter_mut().find(|(n, _)| n == name) {
                Some((_, v)) => v.clone_from(value),
                None => self.variables.push((name.clone(), value.clone())),
            }
        }
    }
}

/// The variable overrides of `--vars FILE` (`vars`: its name and text, a YAML mapping of
/// names to scalars) and then `--var NAME=VALUE` flags (a flag wins), for
/// [`Profile::set_variables`].
pub fn variable_overrides(
    vars: Option<(&str, &str)>,
    flags: &[String],
) -> Result<BTreeMap<String, String>, ProfileError> {
    let mut out = BTreeMap::new();
    if let Some((file, text)) = vars {
        let hint = "write one `NAME: VALUE` per line";
        let bad = |place: String, message: String| ProfileError::Invalid {
            file: file.to_string(),
            place,
            message,
        };
        match serde_saphyr::from_str::<Value>(text) {
            Err(e) => return Err(syntax(file, "variables", text, &e, hint)),
            Ok(Value::Null) => {}
            Ok(Value::Map(entries)) => {
                for (k, v) in entries {
                    let Some(value) = v.scalar_text() else {
                        let m = format!("variable `{k}` is {}, not a scalar; {hint}", v.kind());
                        return Err(bad(k, m));
                    };
                    out.insert(k, value);
                }
            }
            Ok(other) => {
                let m = format!("the file is {}, not a mapping; {hint}", other.kind());
                return Err(bad("variables".into(), m));
            }
        }
    }
    for f in flags {
        match f.split_once('=') {
            Some((name, value)) if !name.trim().is_empty() => {
                out.insert(name.trim().to_string(), value.to_string());
            }
            _ => {
                return Err(ProfileError::Invalid {
                    file: "--var".into(),
                    place: f.clone(),
                    message: "expected NAME=VALUE (e.g. `--var mirror=registry.local:5000`)".into(),
                });
            }
        }
    }
    Ok(out)
}

#[derive(Deserialize)]
struct RawExport {
    metadata: RawMeta,
    spec: RawSpec,
}

#[derive(Deserialize)]
struct RawMeta {
    name: String,
}

#[derive(Deserialize)]
struct RawSpec {
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    variables: Option<Vec<RawVar>>,
    template: RawTemplate,
}

#[derive(Deserialize)]
struct RawVar {
    name: String,
    #[serde(default, rename = "defaultValue")]
    default_value: Option<Value>,
}

#[derive(Deserialize)]
struct RawTemplate {
    #[serde(default)]
    packs: Option<Vec<RawPack>>,
}

#[derive(Deserialize)]
struct RawPack {
    name: String,
    #[serde(default)]
    tag: Option<String>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default, rename = "type")]
    pack_type: Option<PackType>,
    layer: LayerType,
    #[serde(default)]
    values: Option<Spanned<Value>>,
    #[serde(default)]
    manifests: Option<Vec<RawManifest>>,
    #[serde(default)]
    registry: Option<Value>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawManifest {
    Name(String),
    Full { name: String, content: String },
    Reference { name: String },
}

fn convert(raw: RawExport, file: &str, prefix: &str) -> Result<Profile, ProfileError> {
    let invalid = |place: String, message: &str| ProfileError::Invalid {
        file: file.to_string(),
        place,
        message: message.to_string(),
    };
    if raw.metadata.name.trim().is_empty() {
        return Err(invalid(
            format!("{prefix}metadata.name"),
            "the profile name is empty; give the profile a name",
        ));
    }
    let variables = raw
        .spec
        .variables
        .unwrap_or_default()
        .into_iter()
        .map(|v| {
            let value = v
                .default_value
                .as_ref()
                .and_then(Value::scalar_text)
                .unwrap_or_default();
            (v.name, value)
        })
        .collect();
    let mut layers: Vec<Layer> = Vec::new();
    for (i, p) in raw
        .spec
        .template
        .packs
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let place = format!("{prefix}spec.template.packs[{i}]");
        if p.name.trim().is_empty() {
            return Err(invalid(
                format!("{place}.name"),
                "the pack name is empty; give the pack its name",
            ));
        }
        if layers.iter().any(|x| x.name == p.name) {
            return Err(invalid(
                format!("pack {}", p.name),
                "two packs have this name; pack names must be unique (macros find a pack by name)",
            ));
        }
        let (values, values_line) = layer_values(&p.name, p.values, file)?;
        let mut manifests = Vec::new();
        let mut manifest_refs = Vec::new();
        for m in p.manifests.unwrap_or_default() {
            match m {
                RawManifest::Full { name, content } => manifests.push(Manifest { name, content }),
                RawManifest::Name(name) | RawManifest::Reference { name } => {
                    manifest_refs.push(name)
                }
            }
        }
        let registry = p.registry.as_ref().and_then(|r| {
            let meta = r.get("metadata")?;
            meta.get("name")
                .or_else(|| meta.get("uid"))
                .and_then(Value::scalar_text)
        });
        layers.push(Layer {
            name: p.name,
            layer_type: p.layer,
            version: p.version.or_else(|| p.tag.clone()),
            values,
            manifests,
            values_line,
            pack: Some(PackInfo {
                pack_type: p.pack_type,
                tag: p.tag,
                registry,
                manifest_refs,
            }),
        });
    }
    Ok(Profile {
        name: raw.metadata.name,
        version: raw.spec.version,
        variables,
        system: Value::Null,
        layers,
        file: file.to_string(),
        // Errors inside an export's values already name the line of the `values` string.
        text: String::new(),
    })
}
