//! A generator of large, valid profiles (for scale tests and benchmarks).

/// A profile with `layers` layers (the first `os`, the second `k8s`, then `cni`, `csi` and
/// add-ons), each with `images_per_layer` distinct images in `pack.content.images`, some
/// written through macros. Every image is distinct across the profile.
pub fn generate_large_profile(layers: usize, images_per_layer: usize) -> String {
    let mut out = String::from(
        "name: generated\nversion: 1.0.0\nvariables:\n  tag: \"1.0\"\nsystem:\n  kubernetes:\n    version: 1.30.1\nlayers:\n",
    );
    for l in 0..layers {
        let ty = match l {
            0 => "os",
            1 => "k8s",
            2 => "cni",
            3 => "csi",
            _ => "addon",
        };
        out.push_str(&format!(
            "  - name: layer-{l}\n    type: {ty}\n    version: 1.{l}.0\n    values: |\n      pack:\n        content:\n          images:\n"
        ));
        for i in 0..images_per_layer {
            let image = match i % 3 {
                0 => format!("registry.example.com/team-{l}/app-{i}:v{i}"),
                1 => format!(
                    "{{{{.spectro.pack.layer-{l}.options.registry}}}}/team-{l}/svc-{i}:{{{{ .spectro.var.tag }}}}"
                ),
                _ => format!("ghcr.io/org/l{l}-i{i}:{{{{.spectro.system.kubernetes.version}}}}"),
            };
            out.push_str(&format!("            - image: \"{image}\"\n"));
        }
        out.push_str("      options:\n        registry: quay.io\n");
    }
    out
}
