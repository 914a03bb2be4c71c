//! A real Helm chart repository on 127.0.0.1: charts packaged by real `helm package`, indexed
//! by `helm repo index`, served over HTTPS (and Basic auth) by [`HttpsFiles`].

use std::path::{Path, PathBuf};

use tempfile::TempDir;

use crate::helm::Helm;
use crate::https_files::HttpsFiles;

/// A served chart repository; stopped and removed when dropped.
pub struct ChartRepo {
    pub server: HttpsFiles,
    /// The packaged charts, in the order given: `NAME-VERSION.tgz` under [`ChartRepo::dir`].
    pub packages: Vec<PathBuf>,
    helm: Helm,
    dir: TempDir,
}

impl ChartRepo {
    /// Packages each chart directory (at its own version, or the one given) with `helm
    /// package`, indexes them with `helm repo index` (URLs relative to the repository), and
    /// serves the directory, requiring `basic` when given.
    pub fn serve(charts: &[(&Path, Option<&str>)], basic: Option<(&str, &str)>) -> ChartRepo {
        let helm = Helm::new();
        let dir = tempfile::Builder::new()
            .prefix("berth-chart-repo-")
            .tempdir()
            .expect("temp dir");
        let root = dir.path();
        let mut packages = Vec::new();
        for (chart, version) in charts {
            let mut args = vec!["package", chart.to_str().expect("UTF-8 path"), "-d"];
            args.push(root.to_str().expect("UTF-8 path"));
            if let Some(v) = version {
                args.extend(["--version", *v]);
            }
            let out = helm.run(&args);
            let said = String::from_utf8_lossy(&out.stdout).to_string();
            assert!(
                out.status.success(),
                "helm package: {said}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            // "Successfully packaged chart and saved it to: /path/NAME-VERSION.tgz"
            let path = said
                .trim()
                .rsplit(": ")
                .next()
                .expect("helm package names the file");
            packages.push(PathBuf::from(path));
        }
        let server = HttpsFiles::serve(root, basic);
        let repo = ChartRepo {
            server,
            packages,
            helm,
            dir,
        };
        repo.index(None);
        repo
    }

    /// `helm repo index DIR [--url URL]` again (absolute URLs under `url` when given).
    pub fn index(&self, url: Option<&str>) {
        let root = self.dir.path().to_str().expect("UTF-8 path");
        let mut args = vec!["repo", "index", root];
        if let Some(u) = url {
            args.extend(["--url", u]);
        }
        let out = self.helm.run(&args);
        assert!(
            out.status.success(),
            "helm repo index: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The served directory (index.yaml and the packages).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `https://127.0.0.1:PORT`, the repository URL.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The CA file a client must trust.
    pub fn ca_path(&self) -> &Path {
        &self.server.certs().ca_path
    }

    pub fn helm(&self) -> &Helm {
        &self.helm
    }
}
