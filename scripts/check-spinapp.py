#!/usr/bin/env python3
"""Checks the SpinKube manifests of a directory with no cluster: every document against its
published schema, then against spin.toml and against each other.

    target/python/bin/python scripts/check-spinapp.py [deploy/spinkube] \
        [--spin-toml spin.toml] [--component dispatcher] [--crd-dir ../shared/reference/spinkube] \
        [--kubernetes-version 1.37] [--ingress-class nginx] [--gateway-class eg]

The directory holds the files of docs/deployment.md's SpinKube steps, by name: spinapp.yaml (the
dispatcher), namespaces.yaml, secret.example.yaml, runtime-config.toml, redis.yaml, hpa.yaml,
tenant-spinapp.yaml, tls.yaml, gateway.yaml and ingress.yaml. Every one must be there.

Schemas:
- SpinApp and SpinAppExecutor: the openAPIV3Schema of SpinKube's CRDs (--crd-dir; by default
  shared/reference/spinkube beside the repository), turned into JSON Schema draft 4, the dialect
  of OpenAPI 3.0's schema object (boolean exclusiveMinimum): `nullable` becomes a "null" type,
  `x-kubernetes-int-or-string` an integer-or-string, list-type `set` uniqueItems, int32/int64
  formats bounds; CEL rules (`x-kubernetes-validations`) would be reported as not evaluated.
- Kubernetes' own kinds (Namespace, Secret, Service, Deployment, Ingress, NetworkPolicy,
  HorizontalPodAutoscaler, and every object's metadata): kubernetes-validate's bundled schemas
  for --kubernetes-version.
- Both strict: an unknown field is an error, as `kubectl apply` (server-side field validation,
  Strict by default) makes it. So is a duplicate key.
- cert-manager's kinds (ClusterIssuer, Certificate) and Gateway API's (Gateway, HTTPRoute) have
  no schema available offline: the project checks below, and the top-level `spec` fields of
  each kind checked against the fields these files use (UNSCHEMED_SPEC_FIELDS), so a misspelt
  one is not silently ignored.

Needs PyYAML, jsonschema and kubernetes-validate, pinned in tests/python/requirements.txt and
installed in target/python by scripts/python-env. Prints every problem found, each naming the
file, the object and the field, and exits 1 when there is one, 2 when a file or module is
missing.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

try:
    import jsonschema
    import kubernetes_validate
    import yaml
    from kubernetes_validate.utils import VersionNotSupportedError
except ImportError as missing:
    print(
        f"check-spinapp: the Python module {missing.name!r} is missing: run scripts/python-env and "
        "use target/python/bin/python",
        file=sys.stderr,
    )
    sys.exit(2)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CRD_DIR = ROOT.parent / "shared" / "reference" / "spinkube"
# The newest Kubernetes whose schemas kubernetes-validate 1.37.0 bundles.
KUBERNETES_VERSION = "1.37"
SPINKUBE_GROUP = "core.spinkube.dev"
SPINAPP_API_VERSION = f"{SPINKUBE_GROUP}/v1alpha1"
EXECUTOR = "containerd-shim-spin"
# What the operator makes for a SpinApp (spin-operator internal/controller): a Deployment and a
# ClusterIP Service, both with the SpinApp's name and namespace; the Service listens on port 80;
# the pods carry this label.
SERVICE_PORT = 80
APP_NAME_LABEL = f"{SPINKUBE_GROUP}/app-name"
CLUSTER_DOMAIN = "svc.cluster.local"
# Kinds with no schema available offline: checked by the project checks only, and their
# spec's own fields against the published API's (cert-manager v1, Gateway API v1).
UNSCHEMED_GROUPS = ("cert-manager.io", "acme.cert-manager.io", "gateway.networking.k8s.io")
UNSCHEMED_SPEC_FIELDS = {
    "ClusterIssuer": {"acme", "ca", "selfSigned", "vault", "venafi"},
    "Issuer": {"acme", "ca", "selfSigned", "vault", "venafi"},
    "Certificate": {
        "secretName", "issuerRef", "dnsNames", "commonName", "duration", "renewBefore", "ipAddresses",
        "uris", "emailAddresses", "privateKey", "usages", "isCA", "subject", "secretTemplate",
        "keystores", "revisionHistoryLimit", "additionalOutputFormats", "literalSubject",
        "renewBeforePercentage", "nameConstraints", "otherNames", "encodeUsagesInRequest",
    },
    "Gateway": {"gatewayClassName", "listeners", "addresses", "infrastructure", "backendTLS", "allowedListeners"},
    "HTTPRoute": {"parentRefs", "hostnames", "rules"},
}
# The RuntimeClass the containerd-shim-spin installer (and SpinKube's quickstart) creates.
RUNTIME_CLASS = "wasmtime-spin-v2"
# The files of a deployment directory.
FILES = {
    "spinapp": "spinapp.yaml",
    "namespaces": "namespaces.yaml",
    "secret": "secret.example.yaml",
    "runtime_config": "runtime-config.toml",
    "redis": "redis.yaml",
    "hpa": "hpa.yaml",
    "tenant": "tenant-spinapp.yaml",
    "tls": "tls.yaml",
    "gateway": "gateway.yaml",
    "ingress": "ingress.yaml",
}
# An OCI image reference, after distribution/reference's grammar: [domain[:port]/]path[:tag][@digest].
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*(?::[0-9]+)?"
IMAGE_REFERENCE = re.compile(
    rf"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*(?::[\w][\w.-]{{0,127}})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?"
)

LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")  # RFC 1123 label: worker names
DNS1035 = re.compile(r"[a-z]([a-z0-9-]{0,61}[a-z0-9])?")  # Service names


class InputError(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# Reading


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last)."""


def _no_duplicates(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


class Doc:
    """One YAML document of a manifest file."""

    def __init__(self, path, index, body):
        self.path, self.index, self.body = path, index, body

    @property
    def kind(self):
        return self.body.get("kind") if isinstance(self.body, dict) else None

    @property
    def name(self):
        return _get(self.body, "metadata", "name")

    @property
    def namespace(self):
        return _get(self.body, "metadata", "namespace")

    def __str__(self):
        return f"{self.path}: {self.kind or 'document'}/{self.name or self.index}"


def load_documents(path):
    try:
        with open(path, encoding="utf-8") as f:
            bodies = list(yaml.load_all(f, Loader=_StrictLoader))
    except yaml.YAMLError as e:
        raise InputError(f"{path}: not valid YAML: {e}") from None
    return [Doc(path, i, body) for i, body in enumerate(bodies) if body is not None]


# ---------------------------------------------------------------------------------------------
# Schemas

_INT_BOUNDS = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
_ANNOTATIONS = {"description", "default", "example", "externalDocs", "nullable", "readOnly", "writeOnly", "deprecated"}


def json_schema_of(node, notes, where="$"):
    """A CRD's openAPIV3Schema (a Kubernetes structural schema) as JSON Schema draft 4."""
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key in ("properties", "patternProperties"):
            out[key] = {k: json_schema_of(v, notes, f"{where}.{k}") for k, v in value.items()}
        elif key in ("items", "additionalProperties", "not"):
            out[key] = json_schema_of(value, notes, f"{where}[]") if isinstance(value, dict) else value
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [json_schema_of(v, notes, where) for v in value]
        elif key == "x-kubernetes-validations":
            notes.add(f"CEL rules (x-kubernetes-validations) at {where} are not evaluated")
        elif key.startswith("x-kubernetes-") or key in _ANNOTATIONS:
            continue
        else:
            out[key] = value
    if node.get("nullable") is True:
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    if node.get("x-kubernetes-int-or-string") is True and "type" not in out and "anyOf" not in out:
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("x-kubernetes-list-type") == "set":
        out["uniqueItems"] = True
    if out.get("type") == "integer" and node.get("format") in _INT_BOUNDS:
        low, high = _INT_BOUNDS[node["format"]]
        out.setdefault("minimum", low)
        out.setdefault("maximum", high)
    open_object = node.get("x-kubernetes-preserve-unknown-fields") or node.get("x-kubernetes-embedded-resource")
    if "properties" in out and "additionalProperties" not in out and not open_object:
        out["additionalProperties"] = False  # unknown fields are errors (kubectl's Strict)
    return out


def _error_path(error):
    text = ""
    for part in error.absolute_path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


class Schemas:
    def __init__(self, crd_dir, kubernetes_version):
        self.kubernetes_version = kubernetes_version
        self.crds = {}  # (apiVersion, kind) -> (validator, CRD file)
        self.notes = set()
        crd_dir = Path(crd_dir)
        files = sorted(crd_dir.glob("*.yaml")) if crd_dir.is_dir() else []
        if not files:
            raise InputError(f"{crd_dir}: no CRD files (SpinKube's CRDs; pass --crd-dir)")
        for path in files:
            for doc in load_documents(path):
                if doc.kind != "CustomResourceDefinition":
                    continue
                group, kind = _get(doc.body, "spec", "group"), _get(doc.body, "spec", "names", "kind")
                for version in _get(doc.body, "spec", "versions") or []:
                    api_version = f"{group}/{version['name']}"
                    schema = json_schema_of(_get(version, "schema", "openAPIV3Schema"), self.notes)
                    schema.setdefault("required", [])
                    schema["required"] = sorted({*schema["required"], "apiVersion", "kind", "metadata"})
                    jsonschema.Draft4Validator.check_schema(schema)
                    self.crds[(api_version, kind)] = (jsonschema.Draft4Validator(schema), path.name)
        if (SPINAPP_API_VERSION, "SpinApp") not in self.crds:
            raise InputError(f"{crd_dir}: no SpinApp CRD for {SPINAPP_API_VERSION}")

    def check(self, doc):
        """(how it was checked, problems)."""
        body = doc.body
        if not isinstance(body, dict):
            return "nothing", [f"{doc}: not a mapping"]
        api_version, kind = body.get("apiVersion"), body.get("kind")
        if not isinstance(api_version, str) or not isinstance(kind, str):
            return "nothing", [f"{doc}: needs apiVersion and kind"]
        problems = []
        crd = self.crds.get((api_version, kind))
        if crd:
            validator, source = crd
            for error in sorted(validator.iter_errors(body), key=lambda e: list(map(str, e.absolute_path))):
                problems.append(f"{doc}: {_error_path(error)}: {error.message}")
            # The CRD leaves metadata open; the API server checks it as ObjectMeta.
            problems += self._kubernetes({"apiVersion": "v1", "kind": "ConfigMap", "metadata": body.get("metadata")}, doc)
            return f"the {kind} CRD ({source})", problems
        if api_version.split("/")[0] in UNSCHEMED_GROUPS:
            known = UNSCHEMED_SPEC_FIELDS.get(kind)
            spec = body.get("spec")
            if known is None:
                return "nothing", [f"{doc}: no checks for {kind} {api_version}"]
            if not isinstance(spec, dict):
                return None, [f"{doc}: spec: must be a mapping"]
            return None, [f"{doc}: spec.{field}: not a field of {kind} (known: {', '.join(sorted(known))})" for field in spec if field not in known]
        if api_version.split("/")[0].endswith(SPINKUBE_GROUP):
            return "nothing", [f"{doc}: no CRD for {kind} {api_version} in the CRD directory"]
        return f"Kubernetes {self.kubernetes_version}", self._kubernetes(body, doc)

    def _kubernetes(self, body, doc):
        try:
            kubernetes_validate.validate(body, self.kubernetes_version, strict=True)
        except kubernetes_validate.ValidationError as e:
            return [f"{doc}: {_error_path(e)}: {e.message}"]
        except kubernetes_validate.SchemaNotFoundError as e:
            return [f"{doc}: {e.message}"]
        return []


# ---------------------------------------------------------------------------------------------
# Helpers


def _get(obj, *keys):
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _find_key(obj, key, path=""):
    """Every path at which `key` occurs as a mapping key."""
    found = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            here = f"{path}.{k}" if path else str(k)
            if k == key:
                found.append(here)
            found.extend(_find_key(v, key, here))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            found.extend(_find_key(v, key, f"{path}[{i}]"))
    return found


def _templates(value):
    """Names used as `{{ name }}` anywhere in a TOML value."""
    names = set()
    if isinstance(value, str):
        names.update(re.findall(r"\{\{\s*([a-z0-9_]+)\s*\}\}", value))
    elif isinstance(value, dict):
        for v in value.values():
            names |= _templates(v)
    elif isinstance(value, list):
        for v in value:
            names |= _templates(v)
    return names


def probe_hosts(spec):
    """The Host header values of the SpinApp's probes."""
    return [
        str(h.get("value"))
        for kind in ("readiness", "liveness")
        for h in (_get(spec, "checks", kind, "httpGet", "httpHeaders") or [])
        if isinstance(h, dict) and str(h.get("name", "")).lower() == "host"
    ]


def dispatcher_settings(value, hosts=()):
    """What the dispatcher makes of a `settings` value, from its own parsers (`libra-check
    settings`, tests/host/src/bin/libra-check.rs): `ok`, the `problem` it would refuse it for,
    every key's `effective` value, `base_domain`, `dispatcher_hosts`, `local_workers`,
    `reserved_names`, the parsed `worker_url_template`, and each of `hosts` as the dispatcher
    normalises a Host header (`probe_hosts`, null when it refuses it). Nothing here re-implements
    them."""
    command = os.environ.get("LIBRA_CHECK")
    command = [command] if command else ["cargo", "run", "-q", "-p", "libra-test-host", "--bin", "libra-check", "--"]
    try:
        done = subprocess.run(
            command + ["settings", *hosts], input=value or "", capture_output=True, text=True, cwd=ROOT, check=False
        )
    except OSError as e:
        raise InputError(f"running libra-check: {e}") from e
    if done.returncode != 0:
        raise InputError(f"libra-check failed: {done.stderr.strip()}")
    return json.loads(done.stdout)


def _problem_text(problem):
    if problem.get("setting"):
        return f"setting '{problem['setting']}': {problem['problem']}"
    return f"{problem.get('variable')}: {problem.get('problem') or 'cannot be read'}"


def allowed_host_covers(entry, scheme, host, port):
    """Whether an allowed_outbound_hosts entry (`scheme://host[:port]`, `*.` wildcards) lets the
    component reach scheme://host:port."""
    e_scheme, sep, e_rest = entry.strip().lower().partition("://")
    if not sep:
        return False
    e_host, e_port = e_rest.rstrip("/"), None
    if ":" in e_host:
        e_host, e_port = e_host.rsplit(":", 1)
    want_port = port or (443 if scheme == "https" else 80)
    if e_scheme not in ("*", scheme):
        return False
    if e_port not in (None, "*") and e_port != str(want_port):
        return False
    if e_port is None and want_port != (443 if scheme == "https" else 80):
        return False
    if e_host == "*" or e_host == host:
        return True
    return e_host.startswith("*.") and host.endswith(e_host[1:]) and len(host) > len(e_host) - 1


# ---------------------------------------------------------------------------------------------
# Checks


class Checker:
    def __init__(self, args, schemas):
        self.args = args
        self.schemas = schemas
        self.problems = []
        self.report = []  # what was schema-checked, and how

    def problem(self, text):
        self.problems.append(text)

    def path(self, key):
        return str(Path(self.args.directory) / FILES[key])

    def load(self, key):
        path = self.path(key)
        docs = load_documents(path)
        for doc in docs:
            how, problems = self.schemas.check(doc)
            self.problems += problems
            if how is None:
                self.report.append(f"{doc}: no schema available offline; its spec fields and the project checks only")
            else:
                self.report.append(f"{doc}: schema-checked against {how}")
        return docs

    # -- the generic rules of a SpinApp, for the dispatcher and tenants alike -------------------

    def spinapp_rules(self, doc):
        spec = _get(doc.body, "spec") or {}
        name = doc.name
        if not isinstance(name, str) or not DNS1035.fullmatch(name):
            self.problem(
                f"{doc}: metadata.name must be a DNS-1035 label (lowercase letters, digits and "
                "'-', starting with a letter): the operator gives its Service this name"
            )
        if not doc.namespace:
            self.problem(f"{doc}: metadata.namespace must be set: the namespaces, Secrets and policies refer to it")
        image = spec.get("image")
        if not isinstance(image, str) or not IMAGE_REFERENCE.fullmatch(image) or len(image.split("@")[0]) > 255:
            self.problem(f"{doc}: spec.image {image!r} is not an OCI image reference ([registry[:port]/]name[:tag][@digest], lowercase name)")
        if spec.get("executor") != EXECUTOR:
            self.problem(f"{doc}: spec.executor is {spec.get('executor')!r}, expected {EXECUTOR!r}")
        # The operator's admission webhook (spin-operator internal/webhook/spinapp_validating.go).
        replicas = spec.get("replicas")
        if spec.get("enableAutoscaling") is True:
            if replicas is not None:
                self.problem(f"{doc}: spec.replicas is set with enableAutoscaling: the operator refuses it; the HPA sets replicas")
        elif not isinstance(replicas, int) or replicas < 1:
            self.problem(f"{doc}: spec.replicas must be at least 1 without enableAutoscaling (the operator refuses 0 or none)")

    # -- the dispatcher ------------------------------------------------------------------------

    def dispatcher(self):
        args = self.args
        spinapp_path, secret_path, rc_path = self.path("spinapp"), self.path("secret"), self.path("runtime_config")
        with open(args.spin_toml, "rb") as f:
            manifest = tomllib.load(f)
        declared = manifest.get("variables", {})
        component = _get(manifest, "component", args.component)
        if not isinstance(component, dict):
            self.problem(f"{args.spin_toml}: no [component.{args.component}]")
            return None
        # What the component reads: its variables and anything else templated (allowed_outbound_hosts).
        read = _templates(component)
        for vname in sorted(read - set(declared)):
            self.problem(f"{args.spin_toml}: component {args.component} uses '{vname}', not in [variables]")
        secret_vars = {n for n, d in declared.items() if isinstance(d, dict) and d.get("secret")}

        docs = self.load("spinapp")
        if len(docs) != 1 or docs[0].kind != "SpinApp":
            self.problem(f"{spinapp_path}: expected exactly one document, the SpinApp")
            return None
        doc = docs[0]
        app = doc.body
        if app.get("apiVersion") != SPINAPP_API_VERSION:
            self.problem(f"{doc}: apiVersion is {app.get('apiVersion')!r}, expected {SPINAPP_API_VERSION!r}")
        spec = app.get("spec") if isinstance(app.get("spec"), dict) else {}
        self.spinapp_rules(doc)
        autoscaling = spec.get("enableAutoscaling") is True
        replicas = spec.get("replicas")
        if not autoscaling and (not isinstance(replicas, int) or replicas < 2):
            self.problem(f"{doc}: spec.replicas is {replicas!r}: run at least 2 replicas, or enableAutoscaling with an HPA")
        for where in _find_key(app, "components"):
            self.problem(
                f"{doc}: {where}: component selection splits the app, and the local workers must run "
                "beside the dispatcher for service chaining (spin-operator#357); remove it"
            )

        # Variables.
        variables = spec.get("variables") or []
        set_vars = {}
        for i, var in enumerate(variables if isinstance(variables, list) else []):
            if not isinstance(var, dict) or not isinstance(var.get("name"), str):
                continue  # the schema reported it
            vname = var["name"]
            where = f"{doc}: variable '{vname}'"
            if vname in set_vars:
                self.problem(f"{where}: set twice")
            set_vars[vname] = var
            if vname not in declared:
                self.problem(f"{where}: not declared in {args.spin_toml} [variables], so Spin ignores it")
            has_value, has_from = "value" in var, "valueFrom" in var
            if has_value == has_from:
                self.problem(f"{where}: give exactly one of value and valueFrom")
            if vname in secret_vars:
                ref = _get(var, "valueFrom", "secretKeyRef")
                if has_value:
                    self.problem(f"{where}: a secret (secret = true in {args.spin_toml}) must not be a plain value; use valueFrom.secretKeyRef")
                elif not (isinstance(ref, dict) and ref.get("name") and ref.get("key")):
                    self.problem(f"{where}: a secret (secret = true in {args.spin_toml}) must come from valueFrom.secretKeyRef with name and key")
        for vname in sorted(read):
            decl = declared.get(vname)
            has_default = isinstance(decl, dict) and "default" in decl and not decl.get("required")
            if vname not in set_vars and not has_default:
                self.problem(f"{doc}: variable '{vname}' is read by {args.component}, has no default and is not set")

        def variable_value(vname):
            """The value the pod sees: set, or spin.toml's default; None when it comes from a Secret."""
            var = set_vars.get(vname)
            if var is not None:
                return str(var["value"]) if "value" in var else None
            decl = declared.get(vname)
            return str(decl.get("default", "")) if isinstance(decl, dict) else None

        report = None
        if "settings" in read:
            raw = variable_value("settings")
            if raw is None:
                self.problem(f"{doc}: variable 'settings' comes from valueFrom: keep it a plain value, so it can be checked")
            else:
                report = dispatcher_settings(raw, probe_hosts(spec))
                if not report["ok"]:
                    # The checks below would only repeat it with every setting at its default.
                    self.problem(
                        f"{doc}: variable 'settings': {_problem_text(report['problem'])}; "
                        "the dispatcher would refuse the requests that need it"
                    )
                    return None
        if report is None:
            report = dispatcher_settings("", probe_hosts(spec))

        def value_of(vname):
            """A key of `settings` (given, or its default) or a variable, as the dispatcher sees it."""
            if vname in report["effective"]:
                return report["effective"][vname]
            return variable_value(vname)

        # Runtime config: replicas must share the key-value store (the lookup caches).
        rc = spec.get("runtimeConfig") if isinstance(spec.get("runtimeConfig"), dict) else {}
        if rc.get("loadFromSecret") and set(rc) - {"loadFromSecret"}:
            self.problem(f"{doc}: runtimeConfig.loadFromSecret makes the operator ignore {sorted(set(rc) - {'loadFromSecret'})}")
        kv_stores = rc.get("keyValueStores") or []
        shared_kv = bool(rc.get("loadFromSecret")) or any(
            isinstance(s, dict) and s.get("name") == "default" and s.get("type") not in (None, "spin") for s in kv_stores
        )
        if (autoscaling or (isinstance(replicas, int) and replicas > 1)) and not shared_kv:
            self.problem(
                f"{doc}: several replicas but the `default` key-value store stays inside each pod; "
                "put it on Redis (runtimeConfig.loadFromSecret or keyValueStores)"
            )
        with open(rc_path, "rb") as f:
            rc_toml = tomllib.load(f)
        kv = _get(rc_toml, "key_value_store", "default")
        redis_url = None
        if not isinstance(kv, dict) or kv.get("type") != "redis":
            self.problem(f"{rc_path}: [key_value_store.default] must have type = \"redis\" so replicas share it")
        elif not str(kv.get("url", "")).startswith(("redis://", "rediss://")):
            self.problem(f"{rc_path}: [key_value_store.default] url must be a redis:// or rediss:// URL")
        else:
            redis_url = urlsplit(str(kv["url"]))

        # Probes reach the pod by IP: without a dispatcher Host they would be custom-domain lookups.
        base_domain = report["base_domain"]
        dispatcher_hosts = {base_domain} | set(report["dispatcher_hosts"])
        for kind in ("readiness", "liveness"):
            probe = _get(spec, "checks", kind)
            if probe is None:
                continue
            where = f"{doc}: spec.checks.{kind}"
            get = _get(probe, "httpGet") or {}
            if get.get("path") != "/health":
                self.problem(f"{where}: httpGet.path should be /health")
            hosts = [h.get("value") for h in (get.get("httpHeaders") or []) if isinstance(h, dict) and str(h.get("name", "")).lower() == "host"]
            if not hosts or report["probe_hosts"].get(hosts[0]) not in dispatcher_hosts:
                self.problem(f"{where}: needs an httpHeaders Host that is a dispatcher host ({', '.join(sorted(dispatcher_hosts))})")

        # Secrets: every secretKeyRef must name a key of a Secret in the example file, in the
        # SpinApp's own namespace (the only one a pod can read Secrets from).
        secrets = {}
        for sdoc in self.load("secret"):
            if sdoc.kind == "Secret":
                secrets.setdefault(sdoc.name, []).append(sdoc)
        for vname, var in set_vars.items():
            ref = _get(var, "valueFrom", "secretKeyRef")
            if not isinstance(ref, dict):
                continue
            found = secrets.get(ref.get("name"), [])
            here = [s for s in found if s.namespace == doc.namespace]
            if not found:
                self.problem(f"{doc}: variable '{vname}': Secret {ref.get('name')!r} is not in {secret_path}")
                continue
            if not here:
                self.problem(
                    f"{found[0]}: metadata.namespace is {found[0].namespace!r}, but the SpinApp's secretKeyRef "
                    f"for '{vname}' reads Secrets of its own namespace {doc.namespace!r}"
                )
                continue
            data = {**(_get(here[0].body, "data") or {}), **(_get(here[0].body, "stringData") or {})}
            if ref.get("key") not in data:
                self.problem(f"{doc}: variable '{vname}': Secret {ref.get('name')!r} has no key {ref.get('key')!r}")
            elif vname == "postgres_url" and "postgres_host" in read and data[ref["key"]]:
                url = urlsplit(str(data[ref["key"]]))
                want = f"{url.hostname}:{url.port or 5432}"
                have = value_of("postgres_host")
                if have != want:
                    self.problem(
                        f"{doc}: postgres_host is {have!r} but postgres_url in {secret_path} is at {want!r}: "
                        "the dispatcher may only connect to postgres_host"
                    )

        self.redis(doc, redis_url)
        self.edge(doc, base_domain)

        template = report.get("worker_url_template")
        if template:
            self.remote(doc, component, set_vars, value_of, template)
        return {
            "doc": doc,
            "template": template,
            "template_text": (value_of("worker_url_template") or "").strip(),
            "remote_hosts": value_of("remote_hosts") or "",
            "local_workers": set(report.get("local_workers") or []),
            "reserved": set(report["reserved_names"]),
        }

    def remote(self, doc, component, set_vars, value_of, template):
        """remote_hosts and membership for the template the dispatcher parsed (which refuses a
        template that is malformed or falls under the dispatcher's own hosts)."""
        scheme, host, port = template["scheme"], template["host"], template["port"]
        sample = host.replace("{worker}", "w0")
        if "{{ remote_hosts }}" not in [re.sub(r"\{\{\s*(\w+)\s*\}\}", r"{{ \1 }}", str(h)) for h in component.get("allowed_outbound_hosts", [])]:
            self.problem(f"{self.args.spin_toml}: [component.{self.args.component}] allowed_outbound_hosts lacks \"{{{{ remote_hosts }}}}\"")
        remote_hosts = value_of("remote_hosts") or ""
        if not allowed_host_covers(remote_hosts, scheme, sample, port):
            self.problem(f"{doc}: remote_hosts {remote_hosts!r} does not let the dispatcher reach {scheme}://{host}{f':{port}' if port else ''}")
        if not (value_of("remote_workers") or "").strip() and "postgres_url" not in set_vars:
            self.problem(
                f"{doc}: remote members come from the database (remote_workers is empty) but postgres_url is not set: "
                "each pod would ask its own empty SQLite file"
            )

    # -- the shared store -----------------------------------------------------------------------

    def redis(self, app, redis_url):
        """redis.yaml: the Service runtime-config.toml names, reachable from the dispatcher only."""
        path = self.path("redis")
        docs = self.load("redis")
        services = [d for d in docs if d.kind == "Service"]
        if redis_url is not None:
            host, port = (redis_url.hostname or ""), (redis_url.port or 6379)
            named = [
                d for d in services
                if host == f"{d.name}.{d.namespace}.{CLUSTER_DOMAIN}"
                and port in [p.get("port") for p in _get(d.body, "spec", "ports") or []]
            ]
            if not named:
                self.problem(
                    f"{self.path('runtime_config')}: [key_value_store.default] url is at {host}:{port}, "
                    f"not a Service of {path} (<name>.<namespace>.{CLUSTER_DOMAIN}:<port>)"
                )
        for deployment in (d for d in docs if d.kind == "Deployment"):
            for i, container in enumerate(_get(deployment.body, "spec", "template", "spec", "containers") or []):
                image = container.get("image") if isinstance(container, dict) else None
                if not isinstance(image, str) or not IMAGE_REFERENCE.fullmatch(image):
                    self.problem(f"{deployment}: spec.template.spec.containers[{i}].image {image!r} is not an OCI image reference")
        policies = [d for d in docs if d.kind == "NetworkPolicy"]
        if not policies:
            self.problem(f"{path}: no NetworkPolicy: every pod of the cluster, tenants included, could reach Redis")
        for policy in policies:
            self.only_the_dispatcher(policy, app, app.namespace)

    def only_the_dispatcher(self, policy, app, namespace):
        """A NetworkPolicy whose every peer is the dispatcher's pods: one peer with the pod label
        and, when the policy lives elsewhere, the dispatcher's namespace, both in the same item
        (an AND). Two items would be an OR."""
        if "Ingress" not in (_get(policy.body, "spec", "policyTypes") or ["Ingress"]):
            self.problem(f"{policy}: spec.policyTypes lacks Ingress, so it restricts nothing that comes in")
        rules = _get(policy.body, "spec", "ingress") or []
        if not rules:
            self.problem(f"{policy}: spec.ingress is empty: it admits no one, the dispatcher included")
        for r, rule in enumerate(rules):
            peers = rule.get("from") if isinstance(rule, dict) else None
            if not peers:
                self.problem(f"{policy}: spec.ingress[{r}].from is empty, which admits every source")
                continue
            for i, peer in enumerate(peers):
                where = f"{policy}: spec.ingress[{r}].from[{i}]"
                if not isinstance(peer, dict):
                    continue
                if "ipBlock" in peer:
                    self.problem(f"{where}.ipBlock: pod addresses change; admit the dispatcher by its labels")
                    continue
                labels = _get(peer, "podSelector", "matchLabels") or {}
                if "podSelector" not in peer or labels.get(APP_NAME_LABEL) != app.name:
                    self.problem(
                        f"{where}.podSelector: must select the dispatcher's pods ({APP_NAME_LABEL}: {app.name}) "
                        "in the same peer as the namespaceSelector; a peer without it admits a whole namespace"
                    )
                if policy.namespace == namespace:
                    if "namespaceSelector" in peer:
                        self.problem(f"{where}.namespaceSelector: the dispatcher is in this namespace; drop the selector")
                    continue
                selector = peer.get("namespaceSelector")
                names = (_get(selector, "matchLabels") or {}).get("kubernetes.io/metadata.name") if isinstance(selector, dict) else None
                if selector is None:
                    self.problem(
                        f"{where}.namespaceSelector: missing, so this peer admits those pods of {policy.namespace!r} "
                        f"itself, not the dispatcher's in {namespace!r}; give both selectors in one peer"
                    )
                elif names != namespace or set(selector) != {"matchLabels"} or len(selector["matchLabels"]) != 1:
                    self.problem(
                        f"{where}.namespaceSelector: selects {names or selector!r}, not the dispatcher's namespace: "
                        f"matchLabels {{kubernetes.io/metadata.name: {namespace}}}"
                    )

    # -- traffic in: TLS, then a Gateway (or the Ingress alternative) --------------------------

    def edge(self, app, base_domain):
        wanted = {base_domain, f"*.{base_domain}"}
        tls_path = self.path("tls")
        docs = self.load("tls")
        issuers = {(d.kind, d.name, d.namespace) for d in docs if d.kind in ("ClusterIssuer", "Issuer")}
        certs = [d for d in docs if d.kind == "Certificate"]
        secret_names = set()
        for cert in certs:
            ref = _get(cert.body, "spec", "issuerRef") or {}
            kind = ref.get("kind", "Issuer")
            key = (kind, ref.get("name"), None if kind == "ClusterIssuer" else cert.namespace)
            if key not in issuers:
                self.problem(
                    f"{cert}: spec.issuerRef names {kind} {ref.get('name')!r}, which {tls_path} does not define "
                    f"(it has: {', '.join(f'{k} {n}' for k, n, _ in sorted(issuers, key=str)) or 'none'})"
                )
            if cert.namespace != app.namespace:
                self.problem(f"{cert}: metadata.namespace is {cert.namespace!r}; the Gateway and Ingress read its Secret in {app.namespace!r}")
            if wanted <= set(_get(cert.body, "spec", "dnsNames") or []):
                secret_names.add(_get(cert.body, "spec", "secretName"))
        if not secret_names:
            self.problem(f"{tls_path}: no Certificate with spec.dnsNames {sorted(wanted)} (base_domain is {base_domain!r})")
        self.gateway(app, wanted, secret_names)
        self.ingress(app, wanted, secret_names)

    def backend_problem(self, where, ref, app):
        if ref.get("name") != app.name or ref.get("port") != SERVICE_PORT or ref.get("kind", "Service") != "Service":
            self.problem(f"{where}: goes to {ref.get('name')!r} port {ref.get('port')!r}, not the SpinApp's Service {app.name!r} port {SERVICE_PORT}")

    def gateway(self, app, wanted, secret_names):
        path = self.path("gateway")
        docs = self.load("gateway")
        gateways = [d for d in docs if d.kind == "Gateway"]
        routes = [d for d in docs if d.kind == "HTTPRoute"]
        if len(gateways) != 1:
            self.problem(f"{path}: expected one Gateway")
            return
        gw = gateways[0]
        spec = _get(gw.body, "spec") or {}
        if spec.get("gatewayClassName") != self.args.gateway_class:
            self.problem(
                f"{gw}: spec.gatewayClassName is {spec.get('gatewayClassName')!r}, not the cluster's class "
                f"{self.args.gateway_class!r} (--gateway-class)"
            )
        if gw.namespace != app.namespace:
            self.problem(f"{gw}: metadata.namespace is {gw.namespace!r}; keep it beside the dispatcher in {app.namespace!r}")
        listeners = {l.get("name"): l for l in spec.get("listeners") or [] if isinstance(l, dict)}
        https = {}
        for name, listener in listeners.items():
            if listener.get("protocol") != "HTTPS":
                continue
            https[name] = listener.get("hostname")
            refs = _get(listener, "tls", "certificateRefs") or []
            if not any(r.get("name") in secret_names and r.get("kind", "Secret") == "Secret" for r in refs):
                self.problem(f"{gw}: spec.listeners[{name}].tls.certificateRefs does not name the Certificate's Secret {sorted(secret_names)}")
        missing = wanted - set(https.values())
        if missing:
            self.problem(f"{gw}: spec.listeners: no HTTPS listener for {sorted(missing)}")
        served = set()
        for route in routes:
            rspec = _get(route.body, "spec") or {}
            if route.namespace != gw.namespace:
                self.problem(f"{route}: metadata.namespace is {route.namespace!r}; the listeners admit routes of {gw.namespace!r} only")
            parents = [p for p in rspec.get("parentRefs") or [] if isinstance(p, dict)]
            for i, parent in enumerate(parents):
                if parent.get("name") != gw.name or parent.get("sectionName", next(iter(listeners), None)) not in listeners:
                    self.problem(f"{route}: spec.parentRefs[{i}] names {parent.get('name')!r}/{parent.get('sectionName')!r}, not a listener of Gateway {gw.name!r}")
            redirect = all(
                any(f.get("type") == "RequestRedirect" for f in rule.get("filters") or []) for rule in rspec.get("rules") or [{}]
            )
            if redirect:
                continue
            for r, rule in enumerate(rspec.get("rules") or []):
                refs = rule.get("backendRefs") or []
                if not refs:
                    self.problem(f"{route}: spec.rules[{r}].backendRefs is empty")
                for b, ref in enumerate(refs):
                    self.backend_problem(f"{route}: spec.rules[{r}].backendRefs[{b}]", ref, app)
            if any(https.get(p.get("sectionName")) for p in parents):
                served |= set(rspec.get("hostnames") or [])
        if wanted - served:
            self.problem(f"{path}: no HTTPRoute on an HTTPS listener sends {sorted(wanted - served)} to the dispatcher")

    def ingress(self, app, wanted, secret_names):
        path = self.path("ingress")
        docs = self.load("ingress")
        ingresses = [d for d in docs if d.kind == "Ingress"]
        if not ingresses:
            self.problem(f"{path}: no Ingress")
        rule_hosts, tls_hosts = set(), set()
        for ing in ingresses:
            cls = _get(ing.body, "spec", "ingressClassName")
            if cls != self.args.ingress_class:
                self.problem(f"{ing}: spec.ingressClassName is {cls!r}, not the cluster's class {self.args.ingress_class!r} (--ingress-class)")
            for r, rule in enumerate(_get(ing.body, "spec", "rules") or []):
                rule_hosts.add(rule.get("host"))
                for i, p in enumerate(_get(rule, "http", "paths") or []):
                    svc = _get(p, "backend", "service") or {}
                    ref = {"name": svc.get("name"), "port": _get(svc, "port", "number")}
                    self.backend_problem(f"{ing}: spec.rules[{r}].http.paths[{i}].backend.service", ref, app)
            if ing.namespace != app.namespace:
                self.problem(f"{ing}: metadata.namespace is {ing.namespace!r}, the SpinApp's Service is in {app.namespace!r}")
            for t, tls in enumerate(_get(ing.body, "spec", "tls") or []):
                tls_hosts.update(tls.get("hosts") or [])
                if tls.get("secretName") not in secret_names:
                    self.problem(f"{ing}: spec.tls[{t}].secretName {tls.get('secretName')!r} is not the Certificate's Secret {sorted(secret_names)}")
        for what, hosts in (("spec.rules[].host", rule_hosts), ("spec.tls[].hosts", tls_hosts)):
            if ingresses and not wanted <= hosts:
                self.problem(f"{path}: Ingress {what} lack {sorted(wanted - hosts)}")

    # -- tenants -------------------------------------------------------------------------------

    def tenant(self, dispatcher):
        path = self.path("tenant")
        docs = self.load("tenant")
        apps = [d for d in docs if d.kind == "SpinApp"]
        if len(apps) != 1:
            self.problem(f"{path}: expected exactly one SpinApp, the tenant's")
            return None, []
        app = apps[0]
        hpas = []
        for other in docs:
            if other.kind == "Service" and other.name == app.name and other.namespace == app.namespace:
                self.problem(
                    f"{other}: the operator already creates this Service (the SpinApp's name, port {SERVICE_PORT}) "
                    "and force-applies it on every reconcile; remove this one"
                )
            elif other.kind == "HorizontalPodAutoscaler":
                hpas.append(other)
            elif other is not app:
                self.problem(f"{other}: a tenant's file holds its SpinApp and its HorizontalPodAutoscaler only")
        self.spinapp_rules(app)
        name = app.name or ""
        reserved = dispatcher["reserved"] if dispatcher else set()
        if not LABEL.fullmatch(name) or name in reserved:
            self.problem(f"{app}: metadata.name {name!r} is not a worker name (a lowercase RFC 1123 label, not reserved)")
        if dispatcher:
            if app.namespace == dispatcher["doc"].namespace:
                self.problem(f"{app}: metadata.namespace is the dispatcher's: tenants live in a namespace of their own, behind its policy")
            if name in dispatcher["local_workers"]:
                self.problem(f"{app}: {name!r} is a local worker of the dispatcher, which is tried first: this tenant would never be reached")
            self.tenant_host(app, dispatcher)
        return app, hpas

    def tenant_host(self, app, dispatcher):
        """The dispatcher's template must name this tenant's Service: <name>.<namespace>.svc.cluster.local:80."""
        doc = dispatcher["doc"]
        template = dispatcher["template"]
        if not template:
            self.problem(f"{doc}: worker_url_template is not set, so no tenant SpinApp is ever reached")
            return
        scheme, host, port = template["scheme"], template["host"], template["port"]
        want = f"{{worker}}.{app.namespace}.{CLUSTER_DOMAIN}"
        if host != want or scheme != "http" or port not in (None, SERVICE_PORT):
            self.problem(
                f"{doc}: worker_url_template is {dispatcher['template_text']!r}; tenant SpinApps in namespace {app.namespace!r} "
                f"are reached at their operator-made Service, http://{want} (port {SERVICE_PORT})"
            )
        actual = host.replace("{worker}", app.name or "")
        if actual != f"{app.name}.{app.namespace}.{CLUSTER_DOMAIN}":
            self.problem(f"{app}: the dispatcher would call {actual!r}, not this SpinApp's Service")
        remote_hosts = dispatcher["remote_hosts"].strip().lower()
        if remote_hosts not in (f"http://*.{app.namespace}.{CLUSTER_DOMAIN}", f"http://*.{app.namespace}.{CLUSTER_DOMAIN}:{SERVICE_PORT}"):
            self.problem(
                f"{doc}: remote_hosts is {remote_hosts!r}; let the dispatcher reach the tenants' namespace and "
                f"nothing more: 'http://*.{app.namespace}.{CLUSTER_DOMAIN}'"
            )

    # -- namespaces, executors and the tenants' policy -----------------------------------------

    def namespaces(self, apps, dispatcher_doc, tenant):
        path = self.path("namespaces")
        docs = self.load("namespaces")
        names = {d.name for d in docs if d.kind == "Namespace"}
        executors = [d for d in docs if d.kind == "SpinAppExecutor"]
        for executor in executors:
            config = _get(executor.body, "spec", "deploymentConfig") or {}
            if _get(executor.body, "spec", "createDeployment") is not True:
                self.problem(f"{executor}: spec.createDeployment must be true: the HPA scales the Deployment the operator creates")
            if config.get("runtimeClassName") != RUNTIME_CLASS:
                self.problem(
                    f"{executor}: spec.deploymentConfig.runtimeClassName is {config.get('runtimeClassName')!r}, "
                    f"not {RUNTIME_CLASS!r}, the RuntimeClass containerd-shim-spin installs: its pods would never start"
                )
        for app in apps:
            if app.namespace not in names:
                self.problem(f"{path}: no Namespace {app.namespace!r}, where {app} lives")
            executor = _get(app.body, "spec", "executor")
            if not any(e.name == executor and e.namespace == app.namespace for e in executors):
                self.problem(f"{path}: no SpinAppExecutor {executor!r} in namespace {app.namespace!r}: the operator looks it up in the SpinApp's namespace")
        if tenant is None or dispatcher_doc is None:
            return
        policies = [d for d in docs if d.kind == "NetworkPolicy" and d.namespace == tenant.namespace]
        if not policies:
            self.problem(f"{path}: no NetworkPolicy in the tenants' namespace {tenant.namespace!r}: any pod could call a tenant directly")
        for policy in (d for d in docs if d.kind == "NetworkPolicy"):
            if policy.namespace != tenant.namespace:
                self.problem(f"{policy}: metadata.namespace is {policy.namespace!r}, not the tenants' namespace {tenant.namespace!r}")
                continue
            if _get(policy.body, "spec", "podSelector") != {}:
                self.problem(f"{policy}: spec.podSelector must be {{}} (every tenant pod)")
            self.only_the_dispatcher(policy, dispatcher_doc, dispatcher_doc.namespace)
            ports = {p.get("port") for rule in _get(policy.body, "spec", "ingress") or [] for p in rule.get("ports") or []}
            if ports and SERVICE_PORT not in ports:
                self.problem(f"{policy}: spec.ingress[].ports does not admit port {SERVICE_PORT}, the tenants' Service port")

    # -- autoscalers ---------------------------------------------------------------------------

    def hpas(self, apps, dispatcher_doc, docs):
        by_target = {}
        for hpa in docs:
            if hpa.kind != "HorizontalPodAutoscaler":
                self.problem(f"{hpa}: expected HorizontalPodAutoscalers only")
                continue
            if hpa.body.get("apiVersion") != "autoscaling/v2":
                self.problem(f"{hpa}: apiVersion: use autoscaling/v2")
            spec = _get(hpa.body, "spec") or {}
            ref = spec.get("scaleTargetRef") or {}
            if ref.get("apiVersion") != "apps/v1" or ref.get("kind") != "Deployment":
                self.problem(f"{hpa}: spec.scaleTargetRef must be the apps/v1 Deployment the operator makes for a SpinApp")
            target = next((a for a in apps if a.name == ref.get("name") and a.namespace == hpa.namespace), None)
            if target is None:
                self.problem(
                    f"{hpa}: spec.scaleTargetRef.name: scales Deployment {ref.get('name')!r} in namespace {hpa.namespace!r}, "
                    "but no SpinApp of the same file set has that name and namespace (FailedGetScale)"
                )
                continue
            if target is not dispatcher_doc and target.path != hpa.path:
                self.problem(f"{hpa}: scales the tenant {target}: keep it in the tenant's file, so it is applied (and deleted) with it")
            by_target.setdefault(id(target), []).append(hpa)
            if _get(target.body, "spec", "enableAutoscaling") is not True:
                self.problem(f"{hpa}: {target} lacks enableAutoscaling: true, so the operator keeps resetting its replicas")
            low, high = spec.get("minReplicas", 1), spec.get("maxReplicas")
            if isinstance(low, int) and isinstance(high, int) and low > high:
                self.problem(f"{hpa}: spec.minReplicas {low} is above spec.maxReplicas {high}")
            if target is dispatcher_doc and (not isinstance(low, int) or low < 2):
                self.problem(f"{hpa}: spec.minReplicas is {low!r}: run at least 2 dispatchers, every request goes through one")
            requests = _get(target.body, "spec", "resources", "requests") or {}
            for metric in spec.get("metrics") or []:
                resource = _get(metric, "resource", "name") if metric.get("type") == "Resource" else None
                if resource and _get(metric, "resource", "target", "type") == "Utilization" and resource not in requests:
                    self.problem(f"{hpa}: scales on {resource} utilization but {target} has no spec.resources.requests.{resource}")
        for app in apps:
            if len(by_target.get(id(app), [])) > 1:
                self.problem(f"{app}: several HPAs scale it")
            if _get(app.body, "spec", "enableAutoscaling") is True and id(app) not in by_target:
                self.problem(f"{app}: spec.enableAutoscaling but no HPA scales it: it would run one pod")

    def run(self):
        dispatcher = self.dispatcher()
        dispatcher_doc = dispatcher["doc"] if dispatcher else None
        tenant, tenant_hpas = self.tenant(dispatcher)
        apps = [a for a in (dispatcher_doc, tenant) if a is not None]
        self.namespaces(apps, dispatcher_doc, tenant)
        self.hpas(apps, dispatcher_doc, self.load("hpa") + tenant_hpas)
        return self.problems


def main():
    parser = argparse.ArgumentParser(description="Check the SpinKube manifests of a directory against their schemas, spin.toml and each other.")
    parser.add_argument("directory", nargs="?", default="deploy/spinkube", help=f"holds {', '.join(FILES.values())} (default: %(default)s)")
    parser.add_argument("--spin-toml", default="spin.toml")
    parser.add_argument("--component", default="dispatcher", help="the component whose variables must be provided")
    parser.add_argument("--crd-dir", default=str(DEFAULT_CRD_DIR), help="SpinKube's CRD files (default: %(default)s)")
    parser.add_argument("--kubernetes-version", default=KUBERNETES_VERSION, help="schemas of this Kubernetes release (default: %(default)s)")
    parser.add_argument("--ingress-class", default="nginx", help="the cluster's IngressClass (default: %(default)s)")
    parser.add_argument("--gateway-class", default="eg", help="the cluster's GatewayClass (default: %(default)s)")
    args = parser.parse_args()
    missing = [name for name in FILES.values() if not (Path(args.directory) / name).is_file()]
    if missing:
        print(f"check-spinapp: {args.directory}: missing {', '.join(missing)}", file=sys.stderr)
        return 2
    try:
        schemas = Schemas(args.crd_dir, args.kubernetes_version)
        checker = Checker(args, schemas)
        problems = checker.run()
    except (OSError, InputError, tomllib.TOMLDecodeError) as e:
        print(f"check-spinapp: {e}", file=sys.stderr)
        return 2
    except VersionNotSupportedError:
        print(f"check-spinapp: kubernetes-validate has no schemas for Kubernetes {args.kubernetes_version}", file=sys.stderr)
        return 2
    for line in checker.report:
        print(f"check-spinapp: {line}")
    for note in sorted(schemas.notes):
        print(f"check-spinapp: note: {note}")
    for problem in problems:
        print(f"check-spinapp: {problem}", file=sys.stderr)
    if problems:
        print(f"check-spinapp: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"check-spinapp: ok (SpinKube CRDs from {args.crd_dir}; Kubernetes {args.kubernetes_version} schemas from kubernetes-validate {kubernetes_validate.__version__})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
