#!/usr/bin/env python3
"""Checks the SpinKube manifests against spin.toml, with no cluster and no third-party module.

    python3 scripts/check-spinapp.py deploy/spinkube/spinapp.yaml \
        [--spin-toml spin.toml] [--component dispatcher] [--secret deploy/spinkube/secret.example.yaml] \
        [--runtime-config deploy/spinkube/runtime-config.toml] [--ingress deploy/spinkube/ingress.yaml]

Prints every problem found and exits 1 when there is one (2 when a file cannot be read).

The YAML reader below understands the plain block subset the manifests use: mappings, sequences,
`- key: value` items, quoted and plain scalars, comments and `---` documents. Anything else
(flow collections, block scalars, anchors, tags) is refused rather than guessed at.
"""

import argparse
import json
import re
import sys
import tomllib
from urllib.parse import urlsplit

SPINAPP_API_VERSION = "core.spinkube.dev/v1alpha1"
EXECUTOR = "containerd-shim-spin"
# The operator's Service for a SpinApp has the app's name and listens on this port.
SERVICE_PORT = 80


class YamlError(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# A small YAML-subset reader


def _strip_comment(text):
    """Removes a trailing `# comment` that is outside quotes."""
    quote = None
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or text[i - 1] in " \t"):
            return text[:i].rstrip()
    return text.rstrip()


def _scalar(text, where):
    text = text.strip()
    if text == "":
        return None
    if text[0] in "|>":
        raise YamlError(f"{where}: block scalars ({text[0]}) are not supported")
    if text[0] in "&*!":
        raise YamlError(f"{where}: anchors, aliases and tags are not supported")
    if text in ("[]", "{}"):
        return [] if text == "[]" else {}
    if text[0] in "[{":
        raise YamlError(f"{where}: flow collections are not supported; use block style")
    if text[0] == '"':
        if len(text) < 2 or not text.endswith('"'):
            raise YamlError(f"{where}: unterminated double-quoted string")
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise YamlError(f"{where}: bad double-quoted string: {e}") from None
    if text[0] == "'":
        if len(text) < 2 or not text.endswith("'"):
            raise YamlError(f"{where}: unterminated single-quoted string")
        return text[1:-1].replace("''", "'")
    if text in ("true", "True", "TRUE"):
        return True
    if text in ("false", "False", "FALSE"):
        return False
    if text in ("null", "Null", "NULL", "~"):
        return None
    if re.fullmatch(r"[-+]?[0-9]+", text):
        return int(text)
    return text


def _split_key(content, where):
    """`key: rest` -> (key, rest), or None when the line is not a mapping entry."""
    if content[0] in "'\"":
        quote = content[0]
        end = content.find(quote, 1)
        while quote == "'" and end != -1 and content[end + 1 : end + 2] == "'":
            end = content.find(quote, end + 2)
        if end == -1:
            raise YamlError(f"{where}: unterminated quoted key")
        key = _scalar(content[: end + 1], where)
        rest = content[end + 1 :]
        if not (rest == ":" or rest.startswith(": ")):
            return None
        return key, rest[1:].strip()
    m = re.match(r"([^\s:#][^:#]*?)\s*:(\s+(.*))?$", content)
    if not m:
        return None
    return m.group(1), (m.group(3) or "").strip()


class _Lines:
    def __init__(self, lines):
        self.lines = lines  # [(lineno, indent, content)]
        self.pos = 0

    def peek(self):
        return self.lines[self.pos] if self.pos < len(self.lines) else None


def _parse_block(src, indent, name):
    first = src.peek()
    if first is None or first[1] < indent:
        return None
    if _is_item(first[2]):
        return _parse_seq(src, first[1], name)
    return _parse_map(src, first[1], name)


def _parse_value(src, rest, parent_indent, lineno, name, allow_same_indent_seq):
    where = f"{name}:{lineno}"
    if rest != "":
        return _scalar(rest, where)
    nxt = src.peek()
    if nxt is None:
        return None
    if nxt[1] > parent_indent:
        return _parse_block(src, nxt[1], name)
    if allow_same_indent_seq and nxt[1] == parent_indent and _is_item(nxt[2]):
        return _parse_seq(src, parent_indent, name)
    return None


def _next_at(src, indent, name):
    """The next line if it belongs to a block at `indent`, as (lineno, content, where); else None."""
    line = src.peek()
    if line is None or line[1] < indent:
        return None
    lineno, ind, content = line
    where = f"{name}:{lineno}"
    if ind > indent:
        raise YamlError(f"{where}: unexpected indentation")
    return lineno, content, where


def _is_item(content):
    return content == "-" or content.startswith("- ")


def _parse_map(src, indent, name):
    result = {}
    while True:
        line = _next_at(src, indent, name)
        if line is None or _is_item(line[1]):
            return result
        lineno, content, where = line
        kv = _split_key(content, where)
        if kv is None:
            raise YamlError(f"{where}: expected `key: value`, got {content!r}")
        key, rest = kv
        if key in result:
            raise YamlError(f"{where}: duplicate key {key!r}")
        src.pos += 1
        result[key] = _parse_value(src, rest, indent, lineno, name, True)


def _parse_seq(src, indent, name):
    result = []
    while True:
        line = _next_at(src, indent, name)
        if line is None or not _is_item(line[1]):
            return result
        lineno, content, where = line
        item = content[1:].lstrip()
        src.pos += 1
        if item == "":
            result.append(_parse_block(src, indent + 1, name))
            continue
        item_indent = indent + (len(content) - len(item))
        if item[0] not in "'\"[{" and _is_item(item):
            raise YamlError(f"{where}: nested inline sequences are not supported")
        if _split_key(item, where) is not None:
            # `- key: value` opens a mapping whose keys sit at the column of `key`.
            src.pos -= 1
            src.lines[src.pos] = (lineno, item_indent, item)
            result.append(_parse_map(src, item_indent, name))
        else:
            result.append(_scalar(item, where))


def load_yaml_documents(path):
    with open(path, encoding="utf-8") as f:
        raw = f.read().split("\n")
    docs, current = [], []
    for lineno, text in enumerate(raw, 1):
        if "\t" in text[: len(text) - len(text.lstrip())]:
            raise YamlError(f"{path}:{lineno}: tabs in indentation")
        if text.rstrip() == "---":
            docs.append(current)
            current = []
            continue
        if text.strip() in ("...",) or text.startswith("%"):
            raise YamlError(f"{path}:{lineno}: directives and document end markers are not supported")
        content = _strip_comment(text)
        if content.strip() == "":
            continue
        indent = len(content) - len(content.lstrip(" "))
        current.append((lineno, indent, content.strip()))
    docs.append(current)
    result = []
    for lines in docs:
        if not lines:
            continue
        src = _Lines(lines)
        value = _parse_block(src, 0, path)
        if src.peek() is not None:
            lineno = src.peek()[0]
            raise YamlError(f"{path}:{lineno}: unexpected content (check the indentation)")
        result.append(value)
    return result


# ---------------------------------------------------------------------------------------------
# Checks


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


def _host_of(value):
    value = (value or "").strip().lower().rstrip(".")
    return value.rsplit(":", 1)[0] if re.fullmatch(r".+:[0-9]+", value) else value


def check(args):
    problems = []
    spinapp_path = args.spinapp

    with open(args.spin_toml, "rb") as f:
        manifest = tomllib.load(f)
    declared = manifest.get("variables", {})
    component = _get(manifest, "component", args.component)
    if not isinstance(component, dict):
        return [f"{args.spin_toml}: no [component.{args.component}]"]
    # What the component reads: its variables and anything else templated (allowed_outbound_hosts).
    read = _templates(component)
    for name in sorted(read - set(declared)):
        problems.append(f"{args.spin_toml}: component {args.component} uses '{name}', not in [variables]")
    secret_vars = {name for name, decl in declared.items() if isinstance(decl, dict) and decl.get("secret")}

    docs = load_yaml_documents(spinapp_path)
    if len(docs) != 1 or not isinstance(docs[0], dict):
        return problems + [f"{spinapp_path}: expected exactly one document, the SpinApp"]
    app = docs[0]
    if app.get("kind") != "SpinApp":
        problems.append(f"{spinapp_path}: kind is {app.get('kind')!r}, expected 'SpinApp'")
    if app.get("apiVersion") != SPINAPP_API_VERSION:
        problems.append(f"{spinapp_path}: apiVersion is {app.get('apiVersion')!r}, expected {SPINAPP_API_VERSION!r}")
    name = _get(app, "metadata", "name")
    if not isinstance(name, str) or not name:
        problems.append(f"{spinapp_path}: metadata.name is missing")
    spec = app.get("spec")
    if not isinstance(spec, dict):
        return problems + [f"{spinapp_path}: spec is missing"]

    image = spec.get("image")
    if not isinstance(image, str) or not image.strip():
        problems.append(f"{spinapp_path}: spec.image is missing")
    if spec.get("executor") != EXECUTOR:
        problems.append(f"{spinapp_path}: spec.executor is {spec.get('executor')!r}, expected {EXECUTOR!r}")
    replicas = spec.get("replicas")
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 2:
        shown = "not set" if replicas is None else repr(replicas)
        problems.append(f"{spinapp_path}: spec.replicas is {shown}: run at least 2 replicas")
    for where in _find_key(app, "components"):
        problems.append(
            f"{spinapp_path}: {where}: component selection splits the app, and the workers must run "
            "beside the dispatcher for service chaining (spin-operator#357); remove it"
        )

    # Variables.
    variables = spec.get("variables") or []
    if not isinstance(variables, list):
        problems.append(f"{spinapp_path}: spec.variables must be a list")
        variables = []
    set_vars = {}
    for i, var in enumerate(variables):
        where = f"{spinapp_path}: spec.variables[{i}]"
        if not isinstance(var, dict) or not isinstance(var.get("name"), str):
            problems.append(f"{where}: needs a name")
            continue
        vname = var["name"]
        where = f"{spinapp_path}: variable '{vname}'"
        if vname in set_vars:
            problems.append(f"{where}: set twice")
        set_vars[vname] = var
        if vname not in declared:
            problems.append(f"{where}: not declared in {args.spin_toml} [variables], so Spin ignores it")
        has_value, has_from = "value" in var, "valueFrom" in var
        if has_value == has_from:
            problems.append(f"{where}: give exactly one of value and valueFrom")
        if vname in secret_vars:
            ref = _get(var, "valueFrom", "secretKeyRef")
            if has_value:
                problems.append(f"{where}: a secret (secret = true in {args.spin_toml}) must not be a plain value; use valueFrom.secretKeyRef")
            elif not (isinstance(ref, dict) and ref.get("name") and ref.get("key")):
                problems.append(f"{where}: a secret (secret = true in {args.spin_toml}) must come from valueFrom.secretKeyRef with name and key")
    for vname in sorted(read):
        decl = declared.get(vname)
        has_default = isinstance(decl, dict) and "default" in decl and not decl.get("required")
        if vname not in set_vars and not has_default:
            problems.append(f"{spinapp_path}: variable '{vname}' is read by {args.component}, has no default and is not set")

    def value_of(vname):
        var = set_vars.get(vname)
        if var is not None and "value" in var:
            return str(var["value"])
        decl = declared.get(vname)
        return str(decl.get("default", "")) if isinstance(decl, dict) and var is None else None

    # Runtime config: replicas must share the key-value store (the custom-domain cache).
    rc = spec.get("runtimeConfig") or {}
    if not isinstance(rc, dict):
        problems.append(f"{spinapp_path}: spec.runtimeConfig must be a mapping")
        rc = {}
    if rc.get("loadFromSecret") and set(rc) - {"loadFromSecret"}:
        problems.append(f"{spinapp_path}: runtimeConfig.loadFromSecret makes the operator ignore {sorted(set(rc) - {'loadFromSecret'})}")
    kv_stores = rc.get("keyValueStores") or []
    shared_kv = bool(rc.get("loadFromSecret")) or any(
        isinstance(s, dict) and s.get("name") == "default" and s.get("type") not in (None, "spin") for s in kv_stores
    )
    if isinstance(replicas, int) and replicas > 1 and not shared_kv:
        problems.append(
            f"{spinapp_path}: {replicas} replicas but the `default` key-value store stays inside each pod; "
            "put it on Redis (runtimeConfig.loadFromSecret or keyValueStores)"
        )
    if args.runtime_config:
        with open(args.runtime_config, "rb") as f:
            rc_toml = tomllib.load(f)
        kv = _get(rc_toml, "key_value_store", "default")
        if not isinstance(kv, dict) or kv.get("type") != "redis":
            problems.append(f"{args.runtime_config}: [key_value_store.default] must have type = \"redis\" so replicas share it")
        elif not str(kv.get("url", "")).startswith(("redis://", "rediss://")):
            problems.append(f"{args.runtime_config}: [key_value_store.default] url must be a redis:// or rediss:// URL")

    # Probes reach the pod by IP: without a dispatcher Host they would be custom-domain lookups.
    base_domain = _host_of(value_of("base_domain"))
    dispatcher_hosts = {base_domain} | {_host_of(h) for h in (value_of("dispatcher_hosts") or "").split(",") if h.strip()}
    for kind in ("readiness", "liveness"):
        probe = _get(spec, "checks", kind)
        if probe is None:
            continue
        where = f"{spinapp_path}: spec.checks.{kind}"
        get = _get(probe, "httpGet") or {}
        if get.get("path") != "/health":
            problems.append(f"{where}: httpGet.path should be /health")
        hosts = [h.get("value") for h in (get.get("httpHeaders") or []) if isinstance(h, dict) and str(h.get("name", "")).lower() == "host"]
        if not hosts or _host_of(hosts[0]) not in dispatcher_hosts:
            problems.append(f"{where}: needs an httpHeaders Host that is a dispatcher host ({', '.join(sorted(dispatcher_hosts))})")

    # Secrets: every secretKeyRef must name a key of a Secret in the example file.
    if args.secret:
        secrets = {}
        for doc in load_yaml_documents(args.secret):
            if isinstance(doc, dict) and doc.get("kind") == "Secret":
                data = {**(doc.get("data") or {}), **(doc.get("stringData") or {})}
                secrets[_get(doc, "metadata", "name")] = data
        for vname, var in set_vars.items():
            ref = _get(var, "valueFrom", "secretKeyRef")
            if not isinstance(ref, dict):
                continue
            data = secrets.get(ref.get("name"))
            if data is None:
                problems.append(f"{spinapp_path}: variable '{vname}': Secret {ref.get('name')!r} is not in {args.secret}")
            elif ref.get("key") not in data:
                problems.append(f"{spinapp_path}: variable '{vname}': Secret {ref.get('name')!r} has no key {ref.get('key')!r}")
            elif vname == "postgres_url" and "postgres_host" in read and data[ref["key"]]:
                url = urlsplit(str(data[ref["key"]]))
                want = f"{url.hostname}:{url.port or 5432}"
                have = value_of("postgres_host")
                if have != want:
                    problems.append(
                        f"{spinapp_path}: postgres_host is {have!r} but postgres_url in {args.secret} is at {want!r}: "
                        "the dispatcher may only connect to postgres_host"
                    )

    # Ingress and certificate: both the apex and the wildcard, to the operator's Service.
    if args.ingress:
        wanted = {base_domain, f"*.{base_domain}"}
        ingresses, certs = [], []
        for doc in load_yaml_documents(args.ingress):
            if isinstance(doc, dict) and doc.get("kind") == "Ingress":
                ingresses.append(doc)
            elif isinstance(doc, dict) and doc.get("kind") == "Certificate":
                certs.append(doc)
        if not ingresses:
            problems.append(f"{args.ingress}: no Ingress")
        rule_hosts, tls_hosts = set(), set()
        for ing in ingresses:
            for rule in _get(ing, "spec", "rules") or []:
                rule_hosts.add(rule.get("host"))
                for p in _get(rule, "http", "paths") or []:
                    svc = _get(p, "backend", "service") or {}
                    if svc.get("name") != name or _get(svc, "port", "number") != SERVICE_PORT:
                        problems.append(
                            f"{args.ingress}: rule {rule.get('host')!r} goes to {svc.get('name')!r} port "
                            f"{_get(svc, 'port', 'number')!r}, not the SpinApp's Service {name!r} port {SERVICE_PORT}"
                        )
            for tls in _get(ing, "spec", "tls") or []:
                tls_hosts.update(tls.get("hosts") or [])
        for what, hosts in (("Ingress rules", rule_hosts), ("Ingress TLS", tls_hosts)):
            if ingresses and not wanted <= hosts:
                problems.append(f"{args.ingress}: {what} lack {sorted(wanted - hosts)} (base_domain is {base_domain!r})")
        if not any(wanted <= set(_get(c, "spec", "dnsNames") or []) for c in certs):
            problems.append(f"{args.ingress}: no Certificate with dnsNames {sorted(wanted)}")

    return problems


def main():
    parser = argparse.ArgumentParser(description="Check the SpinKube manifests against spin.toml.")
    parser.add_argument("spinapp", help="the SpinApp manifest")
    parser.add_argument("--spin-toml", default="spin.toml")
    parser.add_argument("--component", default="dispatcher", help="the component whose variables must be provided")
    parser.add_argument("--secret", help="example Secret manifest(s) that the secretKeyRefs must match")
    parser.add_argument("--runtime-config", help="the runtime-config.toml loaded from the runtime config Secret")
    parser.add_argument("--ingress", help="the Ingress and Certificate manifest")
    args = parser.parse_args()
    try:
        problems = check(args)
    except (OSError, YamlError, tomllib.TOMLDecodeError) as e:
        print(f"check-spinapp: {e}", file=sys.stderr)
        return 2
    for problem in problems:
        print(f"check-spinapp: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"check-spinapp: {args.spinapp} ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
