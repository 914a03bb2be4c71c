//! The profile file format (see shared/spec/profile-format.md).

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use crate::error::{ProfileError, syntax};
use crate::palette::{PackInfo, ProfileFormat, detect_format, parse_export};
use crate::value::Value;

/// A layer's type, as in a pack's `pack.json` `layer` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerType {
    Kernel,
    Os,
    K8s,
    Cni,
    Csi,
    Addon,
}

impl LayerType {
    /// The role of the images of a layer of this type.
    pub fn role(self) -> Role {
        match self {
            LayerType::Kernel | LayerType::Os => Role::Provider,
            LayerType::K8s => Role::Core,
            LayerType::Cni | LayerType::Csi => Role::Infra,
            LayerType::Addon => Role::Addon,
        }
    }
}

/// What an image is for: `provider` (OS), `core` (Kubernetes), `infra` (CNI/CSI), `addon`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Provider,
    Core,
    Infra,
    Addon,
}

/// A layer's `values`: the pack's values.yaml, as a string (how Palette stores it) or a mapping.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    Text(String),
    Mapping(Value),
}

/// A manifest of a manifest layer. `content` may hold several `---` documents.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub name: String,
    pub content: String,
}

/// One layer of a profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    pub name: String,
    pub layer_type: LayerType,
    pub version: Option<String>,
    pub values: Option<Values>,
    pub manifests: Vec<Manifest>,
    /// Line of the file where `values` starts (0 when unknown), to point YAML errors inside it.
    pub values_line: u64,
    /// Set for a layer read from a Palette export: the pack's type, tag, registry.
    pub pack: Option<PackInfo>,
}

/// A parsed cluster profile file.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub name: String,
    pub version: Option<String>,
    /// `{{.spectro.var.NAME}}` values, in file order.
    pub variables: Vec<(String, String)>,
    /// `{{.spectro.system.*}}` values (a mapping, or `Value::Null`).
    pub system: Value,
    pub layers: Vec<Layer>,
    pub file: String,
    /// The file's text, to point an error inside embedded YAML (a `values: |` block, a
    /// manifest's content) at the line of the file.
    pub text: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    name: String,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    variables: Option<VarMap>,
    #[serde(default)]
    system: Option<Spanned<Value>>,
    #[serde(default)]
    layers: Option<Vec<RawLayer>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLayer {
    name: String,
    #[serde(rename = "type")]
    layer_type: LayerType,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    values: Option<Spanned<Value>>,
    #[serde(default)]
    manifests: Option<Vec<Manifest>>,
}

/// The example profile (`examples/retail-edge.yaml`), that of `berth images --example`.
pub const EXAMPLE: &str = include_str!("../../../examples/retail-edge.yaml");

impl Profile {
    /// [`EXAMPLE`], parsed.
    pub fn example() -> Result<Profile, ProfileError> {
        Profile::parse(EXAMPLE, "<example profile>")
    }

    /// Parses one profile in YAML or JSON: Berth's format or a Palette export (detected). A
    /// list of exports is an error here; [`crate::parse_profiles`] reads it. `file` is the name
    /// used in messages.
    pub fn parse(text: &str, file: &str) -> Result<Profile, ProfileError> {
        match detect_format(text) {
            ProfileFormat::Berth => Profile::parse_berth(text, file),
            ProfileFormat::PaletteExport => parse_export(text, file),
            ProfileFormat::PaletteExportList => Err(invalid(
                file,
                "profile",
                "the file is a list of Palette exports where one profile was expected; read it with parse_profiles, or split it into one file per export",
            )),
        }
    }

    /// Parses Berth's own profile format.
    pub(crate) fn parse_berth(text: &str, file: &str) -> Result<Profile, ProfileError> {
        let raw: RawProfile = serde_saphyr::from_str(text).map_err(|e| {
            syntax(
                file,
                "profile",
                text,
                &e,
                "fix the profile (fields: name, version, variables, system, layers; a layer has name, type, version, values, manifests)",
            )
        })?;
        if raw.name.trim().is_empty() {
            return Err(invalid(
                file,
                "name",
                "the profile name is empty; give the profile a `name:`",
            ));
        }
        let system = match raw.system {
            None => Value::Null,
            Some(s) => match s.value {
                Value::Map(_) | Value::Null => s.value,
                other => {
                    return Err(ProfileError::Syntax {
                        file: file.to_string(),
                        place: "system".to_string(),
                        line: s.referenced.line(),
                        column: s.referenced.column(),
                        message: format!(
                            "`system` must be a mapping (such as `kubernetes: {{version: 1.29.4}}`), found {}",
                            other.kind()
                        ),
                    });
                }
            },
        };
        let mut layers: Vec<Layer> = Vec::new();
        for (i, l) in raw.layers.unwrap_or_default().into_iter().enumerate() {
            if l.name.trim().is_empty() {
                return Err(invalid(
                    file,
                    &format!("layers[{i}].name"),
                    "the layer name is empty; give the layer its pack name",
                ));
            }
            if layers.iter().any(|x| x.name == l.name) {
                return Err(invalid(
                    file,
                    &format!("layer {}", l.name),
                    "two layers have this name; layer names must be unique (macros find a layer by name)",
                ));
            }
            let (values, values_line) = layer_values(&l.name, l.values, file)?;
            layers.push(Layer {
                name: l.name,
                layer_type: l.layer_type,
                version: l.version,
                values,
                manifests: l.manifests.unwrap_or_default(),
                values_line,
                pack: None,
            });
        }
        Ok(Profile {
            name: raw.name,
            version: raw.version,
            variables: raw.variables.map(|v| v.0).unwrap_or_default(),
            system,
            layers,
            file: file.to_string(),
            text: text.to_string(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn file(&self) -> &str {
        &self.file
    }
}

/// A layer's `values` (a YAML string or a mapping) and the line of the file where they start.
pub(crate) fn layer_values(
    layer: &str,
    values: Option<Spanned<Value>>,
    file: &str,
) -> Result<(Option<Values>, u64), ProfileError> {
    let Some(v) = values else {
        return Ok((None, 0));
    };
    let line = v.referenced.line();
    let values = match v.value {
        Value::Null => None,
        Value::String(s) => Some(Values::Text(s)),
        m @ Value::Map(_) => Some(Values::Mapping(m)),
        other => {
            return Err(ProfileError::Syntax {
                file: file.to_string(),
                place: format!("layer {layer}: values"),
                line,
                column: v.referenced.column(),
                message: format!(
                    "`values` must be a YAML string (`values: |`) or a mapping, found {}",
                    other.kind()
                ),
            });
        }
    };
    Ok((values, line))
}

fn invalid(file: &str, place: &str, message: &str) -> ProfileError {
    ProfileError::Invalid {
        file: file.to_string(),
        place: place.to_string(),
        message: message.to_string(),
    }
}

/// `variables:`: a mapping of names to scalars, kept in file order. Numbers and booleans are
/// kept as written (`appTag: 2.40` stays `2.40`).
#[derive(Default)]
struct VarMap(Vec<(String, String)>);

impl<'de> Deserialize<'de> for VarMap {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<VarMap, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = VarMap;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a mapping of variable names to scalar values")
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<VarMap, E> {
                Ok(VarMap::default())
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<VarMap, A::Error> {
                let mut out: Vec<(String, String)> = Vec::new();
                while let Some(k) = m.next_key::<String>()? {
                    let v = m.next_value::<String>()?;
                    if out.iter().any(|(n, _)| *n == k) {
                        return Err(serde::de::Error::custom(format!(
                            "variable `{k}` is defined twice"
                        )));
                    }
                    out.push((k, v));
                }
                Ok(VarMap(out))
            }
        }
        d.deserialize_map(V)
    }
}
