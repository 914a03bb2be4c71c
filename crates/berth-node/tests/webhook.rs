//! The webhook over HTTPS with real AdmissionReview JSON built from k8s-openapi types.

use std::sync::{Arc, Mutex};

use berth_node::webhook::{self, FailurePolicy, Mutator};
use berth_rewrite::{LocalRegistry, Rewriter};
use berth_testkit::Certs;
use berth_userdata::UserData;
use k8s_openapi::api::core::v1::{Container, EphemeralContainer, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Value, json};

const PREPEND: &str = "#cloud-config
stylus:
  registryCredentials:
    domain: 10.10.254.254:8000/spectro-images
    username: ubuntu
    password: \"s3cret-pw\"
";

const MAPPING: &str = "#cloud-config
stylus:
  externalRegistries:
    registries:
      - domain: registry.example.com
        username: u
        password: p
    registryMappingRules:
      \"quay.io\": \"registry.example.com/quay\"
";

const DISABLED: &str = "#cloud-config
stylus:
  imageRedirectWebhook:
    enable: false
  registryCredentials:
    domain: 10.10.254.254:8000/spectro-images
    username: ubuntu
    password: \"s3cret-pw\"
";

struct Server {
    url: String,
    client: reqwest::Client,
    log: Arc<Mutex<Vec<String>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _certs: Certs,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

async fn start(user_data: &str, edge: Option<&str>, policy: FailurePolicy) -> Server {
    let certs = Certs::generate(&["127.0.0.1", "localhost"]);
    let ud = UserData::parse(user_data, "user-data.yaml").unwrap();
    let local = edge.map(|e| LocalRegistry::new(e, None).unwrap());
    let mutator = Arc::new(Mutator::new(Rewriter::new(Some(&ud), local), policy));
    let tls = webhook::tls_config(
        &std::fs::read(&certs.cert_path).unwrap(),
        &std::fs::read(&certs.key_path).unwrap(),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = log.clone();
    let logger: webhook::Logger = Arc::new(move |l: &str| sink.lock().unwrap().push(l.to_string()));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(webhook::serve(listener, tls, mutator, logger, async {
        let _ = rx.await;
    }));
    let ca = reqwest::Certificate::from_pem(certs.ca_pem.as_bytes()).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only([ca])
        .build()
        .unwrap();
    Server {
        url: format!("https://127.0.0.1:{port}"),
        client,
        log,
        stop: Some(tx),
        _certs: certs,
    }
}

fn container(name: &str, image: &str) -> Container {
    Container {
        name: name.into(),
        image: Some(image.into()),
        ..Default::default()
    }
}

fn pod(containers: &[(&str, &str)], init: &[(&str, &str)], ephemeral: &[(&str, &str)]) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some("shop".into()),
            ..Default::default()
        },
        spec: Some(PodSpec {
            containers: containers.iter().map(|(n, i)| container(n, i)).collect(),
            init_containers: (!init.is_empty())
                .then(|| init.iter().map(|(n, i)| container(n, i)).collect()),
            ephemeral_containers: (!ephemeral.is_empty()).then(|| {
                ephemeral
                    .iter()
                    .map(|(n, i)| EphemeralContainer {
                        name: n.to_string(),
                        image: Some(i.to_string()),
                        ..Default::default()
                    })
                    .collect()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn review(pod: &Pod, operation: &str, sub_resource: Option<&str>) -> Value {
    let mut req = json!({
        "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
        "requestResource": {"group": "", "version": "v1", "resource": "pods"},
        "name": "web",
        "namespace": "shop",
        "operation": operation,
        "userInfo": {"username": "admin", "groups": ["system:authenticated"]},
        "object": serde_json::to_value(pod).unwrap(),
        "oldObject": null,
        "dryRun": false,
        "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}
    });
    if let Some(s) = sub_resource {
        req["subResource"] = json!(s);
        req["oldObject"] = serde_json::to_value(pod).unwrap();
    }
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req})
}

/// Posts a review; returns the response object.
async fn post(s: &Server, body: &Value) -> Value {
    let r = s
        .client
        .post(format!("{}/mutate", s.url))
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(v["kind"], "AdmissionReview");
    assert_eq!(v["response"]["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
    v["response"].clone()
}

/// Applies the response's JSONPatch to the pod; returns every image by list.
fn apply(pod: &Pod, response: &Value) -> (Pod, Vec<Value>) {
    use base64::Engine as _;
    let mut doc = serde_json::to_value(pod).unwrap();
    let mut ops = Vec::new();
    if let Some(p) = response.get("patch").and_then(Value::as_str) {
        assert_eq!(response["patchType"], "JSONPatch");
        let bytes = base64::engine::general_purpose::STANDARD.decode(p).unwrap();
        let patch: json_patch::Patch = serde_json::from_slice(&bytes).unwrap();
        let raw: Vec<Value> = serde_json::from_slice(&bytes).unwrap();
        ops = raw;
        json_patch::patch(&mut doc, &patch).unwrap();
    }
    (serde_json::from_value(doc).unwrap(), ops)
}

fn images(p: &Pod) -> Vec<String> {
    let spec = p.spec.as_ref().unwrap();
    let mut v: Vec<String> = spec
        .containers
        .iter()
        .map(|c| c.image.clone().unwrap())
        .collect();
    v.extend(
        spec.init_containers
            .iter()
            .flatten()
            .map(|c| c.image.clone().unwrap()),
    );
    v.extend(
        spec.ephemeral_containers
            .iter()
            .flatten()
            .map(|c| c.image.clone().unwrap()),
    );
    v
}

#[tokio::test]
async fn every_kind_of_container_is_rewritten_and_a_second_pass_changes_nothing() {
    let s = start(PREPEND, None, FailurePolicy::Ignore).await;
    let p = pod(
        &[
            ("app", "nginx"),
            (
                "sidecar",
                "quay.io/kairos/core:v1@sha256:0123456789012345678901234567890123456789012345678901234567890123",
            ),
        ],
        &[("init", "registry.k8s.io/pause:3.9")],
        &[("debug", "busybox:1.36")],
    );
    let resp = post(&s, &review(&p, "CREATE", None)).await;
    assert_eq!(resp["allowed"], true);
    let (mutated, ops) = apply(&p, &resp);
    assert_eq!(
        images(&mutated),
        [
            "10.10.254.254:8000/spectro-images/docker.io/library/nginx:latest",
            "10.10.254.254:8000/spectro-images/quay.io/kairos/core:v1@sha256:0123456789012345678901234567890123456789012345678901234567890123",
            "10.10.254.254:8000/spectro-images/registry.k8s.io/pause:3.9",
            "10.10.254.254:8000/spectro-images/docker.io/library/busybox:1.36",
        ]
    );
    assert_eq!(
        ops.iter()
            .map(|o| (o["op"].as_str().unwrap(), o["path"].as_str().unwrap()))
            .collect::<Vec<_>>(),
        [
            ("replace", "/spec/containers/0/image"),
            ("replace", "/spec/containers/1/image"),
            ("replace", "/spec/initContainers/0/image"),
            ("replace", "/spec/ephemeralContainers/0/image"),
        ]
    );
    // The pod as mutated, seen again (reinvocation): no patch.
    let again = post(&s, &review(&mutated, "CREATE", None)).await;
    assert_eq!(again["allowed"], true);
    assert!(again.get("patch").is_none(), "{again}");
    assert!(again.get("patchType").is_none());
    // Every change is logged, without the password.
    let log = s.log.lock().unwrap().join("\n");
    assert!(log.contains("shop/web"), "{log}");
    assert!(
        log.contains("-> 10.10.254.254:8000/spectro-images/docker.io/library/nginx:latest"),
        "{log}"
    );
    assert!(!log.contains("s3cret-pw"));
}

#[tokio::test]
async fn edge_registry_and_mapping_rules_and_unmatched_images() {
    let s = start(MAPPING, Some("127.0.0.1:30003"), FailurePolicy::Ignore).await;
    let p = pod(
        &[("a", "quay.io/org/app:1"), ("b", "ghcr.io/x/y:2")],
        &[],
        &[],
    );
    let resp = post(&s, &review(&p, "CREATE", None)).await;
    let (mutated, _) = apply(&p, &resp);
    assert_eq!(
        images(&mutated),
        [
            "127.0.0.1:30003/spectro-images/registry.example.com/quay/org/app:1",
            "127.0.0.1:30003/spectro-images/ghcr.io/x/y:2",
        ]
    );
    // Without the edge registry an image no rule matches gets no operation at all.
    let s = start(MAPPING, None, FailurePolicy::Ignore).await;
    let p = pod(
        &[
            ("a", "quay.io/org/app:1"),
            ("b", "ghcr.io/x/y:2"),
            ("c", "nginx"),
        ],
        &[],
        &[],
    );
    let resp = post(&s, &review(&p, "CREATE", None)).await;
    let (mutated, ops) = apply(&p, &resp);
    assert_eq!(ops.len(), 1, "{ops:?}");
    assert_eq!(
        images(&mutated),
        [
            "registry.example.com/quay/org/app:1",
            "ghcr.io/x/y:2",
            "nginx"
        ]
    );
}

#[tokio::test]
async fn bad_images_fail_open_by_default() {
    let s = start(PREPEND, None, FailurePolicy::Ignore).await;
    let p = pod(
        &[
            ("ok", "nginx:1.25"),
            ("broken", "Not A Valid Image!"),
            ("v6", "[fd00::1]:5000/app:1"),
        ],
        &[],
        &[],
    );
    let resp = post(&s, &review(&p, "CREATE", None)).await;
    assert_eq!(resp["allowed"], true);
    let warnings: Vec<String> = serde_json::from_value(resp["warnings"].clone()).unwrap();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings[0].contains("\"broken\"") && warnings[0].contains("Not A Valid Image!"),
        "{warnings:?}"
    );
    assert!(
        warnings[1].contains("\"v6\"") && warnings[1].contains("registryMappingRules"),
        "{warnings:?}"
    );
    let (mutated, _) = apply(&p, &resp);
    assert_eq!(
        images(&mutated),
        [
            "10.10.254.254:8000/spectro-images/docker.io/library/nginx:1.25",
            "Not A Valid Image!",
            "[fd00::1]:5000/app:1",
        ]
    );
    let log = s.log.lock().unwrap().join("\n");
    assert!(
        log.contains("image not redirected") && log.contains("Not A Valid Image!"),
        "{log}"
    );
}

#[tokio::test]
async fn bad_images_are_denied_with_fail_policy() {
    let s = start(PREPEND, None, FailurePolicy::Fail).await;
    let p = pod(
        &[("ok", "nginx:1.25"), ("broken", "Not A Valid Image!")],
        &[],
        &[],
    );
    let resp = post(&s, &review(&p, "CREATE", None)).await;
    assert_eq!(resp["allowed"], false);
    assert!(resp.get("patch").is_none());
    let msg = resp["status"]["message"].as_str().unwrap();
    assert!(
        msg.contains("container \"broken\" (containers[1]) image \"Not A Valid Image!\""),
        "{msg}"
    );
    assert_eq!(resp["status"]["code"], 403);
    // A good pod is still mutated.
    let p = pod(&[("ok", "nginx:1.25")], &[], &[]);
    let resp = post(&s, &review(&p, "CREATE", None)).await;
    assert_eq!(resp["allowed"], true);
    assert!(resp["patch"].is_string());
}

#[tokio::test]
async fn disabled_webhook_changes_nothing() {
    let s = start(DISABLED, Some("127.0.0.1:30003"), FailurePolicy::Fail).await;
    let p = pod(&[("app", "nginx")], &[("init", "quay.io/a/b:1")], &[]);
    let resp = post(&s, &review(&p, "CREATE", None)).await;
    assert_eq!(resp["allowed"], true);
    assert!(resp.get("patch").is_none(), "{resp}");
}

#[tokio::test]
async fn ephemeral_container_update_patches_only_ephemeral_containers() {
    let s = start(PREPEND, None, FailurePolicy::Ignore).await;
    // A pod created before the webhook: its containers stay, the new debug container moves.
    let p = pod(&[("app", "nginx")], &[], &[("debugger", "busybox")]);
    let resp = post(&s, &review(&p, "UPDATE", Some("ephemeralcontainers"))).await;
    let (mutated, _) = apply(&p, &resp);
    assert_eq!(
        images(&mutated),
        [
            "nginx",
            "10.10.254.254:8000/spectro-images/docker.io/library/busybox:latest"
        ]
    );
    // Other updates are allowed untouched.
    let resp = post(&s, &review(&p, "UPDATE", None)).await;
    assert_eq!(resp["allowed"], true);
    assert!(resp.get("patch").is_none());
}

#[tokio::test]
async fn healthz_and_bad_requests() {
    let s = start(PREPEND, None, FailurePolicy::Ignore).await;
    let r = s
        .client
        .get(format!("{}/healthz", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = s
        .client
        .post(format!("{}/mutate", s.url))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("not an AdmissionReview"));
    let r = s
        .client
        .post(format!("{}/mutate", s.url))
        .json(&json!({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[test]
fn manifest_whole_file() {
    let o = webhook::ManifestOptions {
        ca_bundle_pem: Some(
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".into(),
        ),
        ..Default::default()
    };
    let got = webhook::manifest(&o);
    let want = r#"# Generated by `berth webhook manifest`.
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata:
  name: "berth-image-redirect"
webhooks:
  - name: "image-redirect.berth.stylus.io"
    admissionReviewVersions: ["v1"]
    sideEffects: None
    failurePolicy: Ignore
    matchPolicy: Equivalent
    reinvocationPolicy: IfNeeded
    timeoutSeconds: 10
    clientConfig:
      service:
        namespace: "berth-system"
        name: "berth-webhook"
        path: "/mutate"
        port: 443
      caBundle: "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUIKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo="
    rules:
      - apiGroups: [""]
        apiVersions: ["v1"]
        operations: ["CREATE"]
        resources: ["pods"]
        scope: "Namespaced"
      - apiGroups: [""]
        apiVersions: ["v1"]
        operations: ["UPDATE"]
        resources: ["pods/ephemeralcontainers"]
        scope: "Namespaced"
    namespaceSelector:
      matchExpressions:
        - key: "stylus.io/imageswap"
          operator: NotIn
          values: ["disable"]
        - key: "kubernetes.io/metadata.name"
          operator: NotIn
          values: ["berth-system"]
---
apiVersion: v1
kind: Service
metadata:
  name: "berth-webhook"
  namespace: "berth-system"
spec:
  type: ClusterIP
  selector:
    "app.kubernetes.io/name": "berth-webhook"
  ports:
    - name: "https"
      protocol: TCP
      port: 443
      targetPort: 8443
"#;
    assert_eq!(got, want);
    // It decodes as the real Kubernetes types.
    let docs: Vec<&str> = got.split("\n---\n").collect();
    let mwc: k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration =
        serde_saphyr::from_str(docs[0]).unwrap();
    let wh = &mwc.webhooks.as_ref().unwrap()[0];
    assert_eq!(wh.side_effects, "None");
    assert_eq!(wh.failure_policy.as_deref(), Some("Ignore"));
    let sel = wh
        .namespace_selector
        .as_ref()
        .unwrap()
        .match_expressions
        .as_ref()
        .unwrap();
    assert_eq!(sel[0].key, "stylus.io/imageswap");
    assert_eq!(sel[0].operator, "NotIn");
    let svc: k8s_openapi::api::core::v1::Service = serde_saphyr::from_str(docs[1]).unwrap();
    assert_eq!(svc.spec.unwrap().ports.unwrap()[0].port, 443);

    // A URL endpoint, fail closed: no Service.
    let o = webhook::ManifestOptions {
        endpoint: webhook::Endpoint::Url("https://127.0.0.1:8443/mutate".into()),
        failure_policy: FailurePolicy::Fail,
        ..Default::default()
    };
    let got = webhook::manifest(&o);
    assert!(got.contains("      url: \"https://127.0.0.1:8443/mutate\"\n"));
    assert!(got.contains("    failurePolicy: Fail\n"));
    assert!(!got.contains("kind: Service"));
    assert!(!got.contains("caBundle"));
}
