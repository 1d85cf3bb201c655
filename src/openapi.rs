//! The OpenAPI 3.1 description of what a dispatcher host serves, built from the router's own
//! tables ([`API_ROUTES`], [`DISPATCH_PREFIXES`]) and the response types (utoipa schemas), so it
//! cannot drift from them. Built on the host only: the `docs` component's build script embeds the
//! result, and the tests check it against the router.

use serde_json::{Value, json};
use utoipa::PartialSchema;

use crate::VERSION;
use crate::api;
use crate::error::{DispatchError, PROBLEM_CONTENT_TYPE, Problem};
use crate::pipeline::route::{API_ROUTES, ApiTarget, DISPATCH_PREFIXES, EXPLAIN_PATHS, Endpoint};
use crate::pipeline::worker_name::BUILT_IN_RESERVED;

/// Methods path and query dispatch forward, as OpenAPI names them: the `Allow` list admission
/// sends when it refuses `CONNECT` or `TRACE`.
fn forwarded_methods() -> impl Iterator<Item = String> {
    crate::pipeline::admit::FORWARDED_METHODS
        .split(", ")
        .map(str::to_ascii_lowercase)
}

/// The whole document, as JSON.
pub fn document() -> Value {
    let mut paths = serde_json::Map::new();
    for route in API_ROUTES {
        let operations = match route.target {
            ApiTarget::Endpoint(endpoint) => endpoint_operations(endpoint),
            ApiTarget::Docs => docs_operations(route.path),
        };
        paths.insert(route.path.to_string(), operations);
    }
    for path in EXPLAIN_PATHS {
        paths.insert(path.to_string(), explain_operations(path != "/dispatch/explain"));
    }
    for prefix in DISPATCH_PREFIXES {
        let alias = prefix != "/dispatch";
        paths.insert(prefix.to_string(), query_dispatch(alias));
        paths.insert(format!("{prefix}/{{worker}}"), path_dispatch(alias, false));
        paths.insert(format!("{prefix}/{{worker}}/{{path}}"), path_dispatch(alias, true));
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "libra-dispatcher",
            "version": VERSION,
            "summary": "Routes each request to the tenant worker it belongs to.",
            "description": "The API a dispatcher host serves (the apex base domain and `dispatcher_hosts`). \
                Requests to `<worker>.<base_domain>` and to tenants' custom domains go to the workers \
                unchanged and are not described here: a tenant host belongs to its tenant, all of it.\n\n\
                Every response carries `X-Request-Id`. Errors are RFC 9457 problem documents with a \
                stable `code`.\n\n\
                CORS: pages on the origins of the `cors_origins` setting may read `/dispatch`, \
                `/health`, `/health/detailed`, `/openapi.json` and `/dispatch/explain`. The \
                dispatcher answers their preflights (`OPTIONS` with `Origin` and \
                `Access-Control-Request-Method`) with `204`; never with credentials.",
            "license": { "name": "Apache-2.0", "identifier": "Apache-2.0" }
        },
        "servers": [{ "url": "/" }],
        "tags": [
            { "name": "dispatch", "description": "Path and query dispatch to a worker of the namespace." },
            { "name": "about", "description": "Where to start." },
            { "name": "health", "description": "Liveness and dependency checks." },
            { "name": "docs", "description": "This description and its interactive reference." }
        ],
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "parameters": {
                "RequestId": {
                    "name": "X-Request-Id",
                    "in": "header",
                    "required": false,
                    "description": "Reused when it is 1 to 128 characters of `[A-Za-z0-9._:-]`; otherwise \
                        the dispatcher generates one. Forwarded to the worker and logged.",
                    "schema": { "type": "string" }
                }
            },
            "headers": {
                "RequestId": {
                    "description": "The request's id: the client's, or one the dispatcher generated.",
                    "required": true,
                    "schema": { "type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$" }
                },
                "RetryAfter": {
                    "description": "From the dispatcher: whole seconds until the request is worth \
                        sending again, at least 1. A worker's own answer may give a date instead.",
                    "required": false,
                    "schema": { "type": "string" },
                    "example": "17"
                },
                "RateLimitPolicy": {
                    "description": "The worker's rate limit, when it has one \
                        (draft-ietf-httpapi-ratelimit-headers-11): `\"tenant\";q=<quota>;w=<window seconds>`.",
                    "required": false,
                    "schema": { "type": "string" },
                    "example": "\"tenant\";q=100;w=60"
                },
                "RateLimit": {
                    "description": "What is left of the worker's quota, when it has a rate limit: \
                        `\"tenant\";r=<remaining>;t=<seconds until the window ends, or until a request \
                        fits again when refused>`.",
                    "required": false,
                    "schema": { "type": "string" },
                    "example": "\"tenant\";r=0;t=17"
                }
            },
            "securitySchemes": {
                "adminToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The admin token, whose SHA-256 is the `admin_token_sha256` setting. Needed only when it is set."
                }
            }
        }
    })
}

fn schemas() -> Value {
    let mut schemas = serde_json::Map::new();
    let mut add = |name: &str, schema: utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>| {
        schemas.insert(
            name.to_string(),
            serde_json::to_value(schema).expect("schemas serialise"),
        );
    };
    add("Health", <api::Health<'static> as PartialSchema>::schema());
    add("Index", <api::Index as PartialSchema>::schema());
    add("IndexLinks", <api::IndexLinks as PartialSchema>::schema());
    add(
        "HealthDetailed",
        <api::HealthDetailed<'static> as PartialSchema>::schema(),
    );
    add("Checks", <api::Checks as PartialSchema>::schema());
    add("DatabaseCheck", <api::DatabaseCheck as PartialSchema>::schema());
    add("NamespaceCheck", <api::NamespaceCheck as PartialSchema>::schema());
    add(
        "OpenBreaker",
        <crate::pipeline::limit::OpenBreaker as PartialSchema>::schema(),
    );
    add(
        "NamespaceInfo",
        <api::NamespaceInfo<'static> as PartialSchema>::schema(),
    );
    add("Namespace", <api::Namespace<'static> as PartialSchema>::schema());
    add("Routing", <api::Routing as PartialSchema>::schema());
    use crate::pipeline::explain;
    add("Explanation", <explain::Explanation as PartialSchema>::schema());
    add(
        "ExplainedLocation",
        <explain::ExplainedLocation as PartialSchema>::schema(),
    );
    add("CacheState", <explain::CacheState as PartialSchema>::schema());
    add("ExplainedLimits", <explain::ExplainedLimits as PartialSchema>::schema());
    add("Outcome", <explain::Outcome as PartialSchema>::schema());
    add("SettingUsed", <explain::SettingUsed as PartialSchema>::schema());
    add("Problem", <Problem<'static> as PartialSchema>::schema());
    let mut codes: Vec<&str> = DispatchError::every_kind().iter().map(DispatchError::code).collect();
    codes.sort();
    let problem = &mut schemas["Problem"];
    problem["properties"]["code"]["enum"] = json!(codes);
    problem["properties"]["status"]["minimum"] = json!(400);
    problem["properties"]["status"]["maximum"] = json!(599);
    Value::Object(schemas)
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn with_request_id(description: &str, content: Value) -> Value {
    let mut response = json!({
        "description": description,
        "headers": { "X-Request-Id": { "$ref": "#/components/headers/RequestId" } }
    });
    if !content.is_null() {
        response["content"] = content;
    }
    response
}

fn problem(description: &str) -> Value {
    with_request_id(
        description,
        json!({ PROBLEM_CONTENT_TYPE: { "schema": schema_ref("Problem") } }),
    )
}

/// A status a worker may answer with as well as the dispatcher: either body can come back.
fn problem_or_worker(description: &str) -> Value {
    with_request_id(
        description,
        json!({ PROBLEM_CONTENT_TYPE: { "schema": schema_ref("Problem") }, "*/*": {} }),
    )
}

/// Errors any request to a dispatcher host can get before it is routed.
fn common_errors(responses: &mut serde_json::Map<String, Value>) {
    responses.insert(
        "400".into(),
        problem("`invalid_host`: the Host header is not one valid host name."),
    );
    responses.insert(
        "414".into(),
        problem("`uri_too_long`: the request target is over 8 KiB."),
    );
    responses.insert(
        "431".into(),
        problem("`headers_too_large`: the request headers are too large."),
    );
    responses.insert(
        "500".into(),
        problem("`configuration_error`: a Spin variable is invalid."),
    );
}

fn operation(tag: &str, summary: &str, operation_id: String, responses: serde_json::Map<String, Value>) -> Value {
    json!({
        "tags": [tag],
        "summary": summary,
        "operationId": operation_id,
        "parameters": [{ "$ref": "#/components/parameters/RequestId" }],
        "responses": responses
    })
}

/// `GET` and `HEAD` of an exact-path route; `HEAD` answers the same without a body.
fn read_only(tag: &str, summary: &str, id: &str, responses: serde_json::Map<String, Value>) -> Value {
    let mut responses = responses;
    common_errors(&mut responses);
    responses.insert("405".into(), problem("`method_not_allowed`: only GET and HEAD."));
    let mut get = operation(tag, summary, format!("get{id}"), responses.clone());
    get["description"] = json!("`HEAD` answers the same, without the body.");
    // In the document for tools; the reference shows the `GET` only.
    let mut head = operation(tag, summary, format!("head{id}"), responses);
    head["x-scalar-ignore"] = json!(true);
    json!({ "get": get, "head": head })
}

fn endpoint_operations(endpoint: Endpoint) -> Value {
    let json_body = |schema: &str| json!({ "application/json": { "schema": schema_ref(schema) } });
    let mut responses = serde_json::Map::new();
    match endpoint {
        // `OPTIONS *` has no path to describe it in OpenAPI; docs/forwarding.md documents it.
        Endpoint::ServerOptions => unreachable!("not in the route table"),
        Endpoint::Index => {
            responses.insert(
                "200".into(),
                with_request_id(
                    "For clients that do not accept HTML: where the API's parts are.",
                    json_body("Index"),
                ),
            );
            responses.insert(
                "302".into(),
                json!({
                    "description": "For browsers (`Accept` includes `text/html`): to the API reference.",
                    "headers": {
                        "Location": { "schema": { "type": "string", "const": "/docs" } },
                        "X-Request-Id": { "$ref": "#/components/headers/RequestId" }
                    }
                }),
            );
            read_only(
                "about",
                "Where to start: the reference for a browser, links for the rest",
                "Index",
                responses,
            )
        }
        Endpoint::Health => {
            responses.insert(
                "200".into(),
                with_request_id("The dispatcher is up.", json_body("Health")),
            );
            read_only("health", "Liveness", "Health", responses)
        }
        Endpoint::HealthDetailed => {
            responses.insert(
                "200".into(),
                with_request_id("Every dependency answered.", json_body("HealthDetailed")),
            );
            responses.insert(
                "503".into(),
                with_request_id(
                    "The database failed its round trip, or no worker is deployed.",
                    json_body("HealthDetailed"),
                ),
            );
            responses.insert(
                "401".into(),
                problem("`unauthorized`: `admin_token_sha256` is set and the token was not given."),
            );
            let mut operations = read_only(
                "health",
                "Dependency checks: a real database round trip and the namespace",
                "HealthDetailed",
                responses,
            );
            admin_only(&mut operations);
            operations
        }
        Endpoint::NamespaceInfo => unreachable!("served at the dispatch prefixes, described there"),
        Endpoint::Preflight | Endpoint::Explain => unreachable!("not in the route table"),
    }
}

/// `/dispatch/explain` and its deprecated alias.
fn explain_operations(alias: bool) -> Value {
    let mut responses = serde_json::Map::new();
    responses.insert(
        "200".into(),
        with_request_id(
            "How the URL would be routed. No worker was called and nothing was counted or cached.",
            json!({ "application/json": { "schema": schema_ref("Explanation") } }),
        ),
    );
    responses.insert(
        "400".into(),
        problem(
            "`invalid_url`: `url` is missing, repeated, not UTF-8 or not an absolute http(s) URL; or `invalid_host`.",
        ),
    );
    responses.insert(
        "401".into(),
        problem("`unauthorized`: `admin_token_sha256` is set and the token was not given."),
    );
    let id = if alias { "ApiExplain" } else { "Explain" };
    let mut operations = read_only(
        "about",
        "Explain how a URL would be routed, without calling any worker",
        id,
        responses,
    );
    for operation in operations.as_object_mut().expect("operations").values_mut() {
        operation["parameters"].as_array_mut().expect("parameters").push(json!({
            "name": "url",
            "in": "query",
            "required": true,
            "description": "The absolute http(s) URL to explain, percent-encoded.",
            "schema": { "type": "string", "format": "uri" },
            "example": "https://shop.example.com/cart?item=1"
        }));
        operation["description"] = json!(
            "Runs the dispatcher's own phases on a `GET` of `url` in a world that only reads: host \
             class, route kind, worker, location (local component or remote URL), the custom-domain \
             cache's state, the limits and breaker state that apply, and the settings that decided it. \
             Admin only when `admin_token_sha256` is set."
        );
        if alias {
            operation["deprecated"] = json!(true);
            operation["x-scalar-ignore"] = json!(true);
        }
    }
    admin_only(&mut operations);
    operations
}

/// Optional bearer: needed only when the `admin_token_sha256` setting is set.
fn admin_only(operations: &mut Value) {
    for operation in operations.as_object_mut().expect("operations").values_mut() {
        operation["security"] = json!([{}, { "adminToken": [] }]);
    }
}

fn docs_operations(path: &str) -> Value {
    let (summary, id, media_type) = match path {
        "/openapi.json" => ("This OpenAPI description", "OpenApi", "application/json"),
        "/docs" => ("Interactive API reference (Scalar)", "Docs", "text/html"),
        "/docs/scalar.js" => (
            "The API reference's script, served offline",
            "DocsScript",
            "text/javascript",
        ),
        "/favicon.ico" => ("The product's icon", "Favicon", "image/x-icon"),
        other => panic!("{other} has no description"),
    };
    let content = if media_type == "application/json" {
        json!({ media_type: { "schema": { "type": "object" } } })
    } else {
        json!({ media_type: {} })
    };
    let mut responses = serde_json::Map::new();
    responses.insert("200".into(), with_request_id(summary, content));
    responses.insert("502".into(), problem("`worker_failed`: the docs component failed."));
    responses.insert(
        "504".into(),
        problem("`worker_timeout`: the docs component did not answer in time."),
    );
    read_only("docs", summary, id, responses)
}

/// Errors of forwarding to a worker, which may also be the worker's own statuses.
fn dispatch_responses(namespace_info: bool) -> serde_json::Map<String, Value> {
    let mut responses = serde_json::Map::new();
    if namespace_info {
        responses.insert(
            "200".into(),
            with_request_id(
                "Without `worker`: the namespace's name, size and addressing examples. With it: the \
                 worker's response.",
                json!({
                    "application/json": {
                        "schema": {
                            "anyOf": [
                                schema_ref("NamespaceInfo"),
                                { "description": "A worker's JSON answer, when `worker` is given." }
                            ]
                        }
                    },
                    "*/*": {}
                }),
            ),
        );
        responses.insert("401".into(), problem_or_worker("`unauthorized` (namespace info only)."));
    }
    responses.insert(
        "default".into(),
        with_request_id("The worker's response, passed through.", json!({ "*/*": {} })),
    );
    for (status, text) in [
        (
            "400",
            "`missing_worker_name`, `invalid_worker_name`, `reserved_worker_name`, `invalid_host`, \
             `invalid_path` (a dot segment) or `invalid_content_length`.",
        ),
        ("404", "`worker_not_found`: no such worker in the namespace."),
        (
            "408",
            "`request_timeout`: the request body paused for longer than `idle_timeout_ms`.",
        ),
        ("413", "`payload_too_large`: the body is over `max_body_bytes`."),
        ("414", "`uri_too_long`."),
        ("431", "`headers_too_large`."),
        ("500", "`configuration_error`."),
        (
            "502",
            "`worker_failed`: the worker trapped or failed before answering; `worker_unreachable`: a \
             remote worker's host could not be reached.",
        ),
        (
            "503",
            "`worker_unavailable`: the worker's circuit breaker is open (`breakers`), it is not \
             called until `Retry-After` has passed; `rate_limiter_unavailable`: the store of rate \
             limits failed and `limits_on_store_error=closed`; `database_unavailable` (a remote \
             worker's membership could not be looked up) or `configuration_unavailable` (a \
             variable's provider failed).",
        ),
        (
            "504",
            "`worker_timeout`: no answer within `upstream_timeout_ms` of the body's end.",
        ),
        (
            "508",
            "`loop_detected`: the request already passed through the dispatcher.",
        ),
    ] {
        responses.insert(status.into(), problem_or_worker(text));
    }
    responses["503"]["headers"]["Retry-After"] = json!({ "$ref": "#/components/headers/RetryAfter" });
    let mut limited = problem_or_worker(
        "`rate_limited`: the worker's rate limit (`rate_limits`) is reached; the worker was not \
         called. `Retry-After` says when a request fits again.",
    );
    limited["headers"]["Retry-After"] = json!({ "$ref": "#/components/headers/RetryAfter" });
    limited["headers"]["RateLimit-Policy"] = json!({ "$ref": "#/components/headers/RateLimitPolicy" });
    limited["headers"]["RateLimit"] = json!({ "$ref": "#/components/headers/RateLimit" });
    responses.insert("429".into(), limited);
    // A limited worker's answers carry its quota too.
    for (_, response) in responses
        .iter_mut()
        .filter(|(status, _)| status.as_str() == "200" || status.as_str() == "default")
    {
        response["headers"]["RateLimit-Policy"] = json!({ "$ref": "#/components/headers/RateLimitPolicy" });
        response["headers"]["RateLimit"] = json!({ "$ref": "#/components/headers/RateLimit" });
    }
    responses
}

/// A worker name as `WorkerName::parse` accepts it, in canonical lowercase: an RFC 1123 label
/// that is not a built-in reserved name (operators may reserve more). The dispatcher also accepts
/// uppercase letters and lowercases them, as it does for host labels.
fn worker_name_schema() -> Value {
    json!({
        "type": "string",
        "pattern": "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$",
        "not": { "enum": BUILT_IN_RESERVED },
        "examples": [crate::api::EXAMPLE_WORKER]
    })
}

fn worker_parameter() -> Value {
    json!({
        "name": "worker",
        "in": "path",
        "required": true,
        "description": "A worker of the namespace. Names are lowercased; built-in and operator-reserved \
            names are refused with 400.",
        "schema": worker_name_schema()
    })
}

fn path_dispatch(alias: bool, with_rest: bool) -> Value {
    let prefix = if alias { "/api/dispatch" } else { "/dispatch" };
    let summary = if with_rest {
        "Path dispatch: the worker receives /<path> and the query"
    } else {
        "Path dispatch: the worker receives / and the query"
    };
    let mut parameters = vec![worker_parameter()];
    if with_rest {
        parameters.push(json!({
            "name": "path",
            "in": "path",
            "required": true,
            "description": "The rest of the path, passed to the worker (it may contain `/`).",
            "schema": { "type": "string" }
        }));
    }
    let mut item = serde_json::Map::new();
    for method in forwarded_methods() {
        let id = format!(
            "{method}{}Dispatch{}",
            if alias { "Api" } else { "" },
            if with_rest { "Path" } else { "Root" }
        );
        let mut op = operation("dispatch", summary, id, dispatch_responses(false));
        op["description"] = json!(format!(
            "{ANY_METHOD} The worker's response passes through an allow-list of headers and gets \
             `Content-Security-Policy: sandbox`: every tenant shares this origin through `{prefix}`. \
             {ALIASES}"
        ));
        hide_repeats(&mut op, alias, &method);
        op["parameters"]
            .as_array_mut()
            .expect("parameters")
            .extend(parameters.iter().cloned());
        item.insert(method, op);
    }
    Value::Object(item)
}

/// Said once, on the operation the reference shows for each dispatch path.
const ANY_METHOD: &str = "This one operation stands for every method: `POST`, `PUT`, `PATCH`, \
    `DELETE`, `OPTIONS`, `HEAD` and extension methods are forwarded the same way (the document \
    lists each, for tools); `CONNECT` and `TRACE` are `405`.";
const ALIASES: &str = "The same paths under `/api/dispatch` are kept for the original \
    dispatcher's clients (deprecated; hidden in this reference).";

/// The reference shows each dispatch path once: the `GET` operation of `/dispatch...`. The other
/// methods and the deprecated `/api/dispatch` aliases stay in the document for tools, with
/// `x-scalar-ignore` so the reference does not repeat them.
fn hide_repeats(operation: &mut Value, alias: bool, method: &str) {
    if alias {
        operation["deprecated"] = json!(true);
    }
    if alias || method != "get" {
        operation["x-scalar-ignore"] = json!(true);
    }
}

fn query_dispatch(alias: bool) -> Value {
    let mut item = serde_json::Map::new();
    for method in forwarded_methods() {
        let read = matches!(method.as_str(), "get" | "head");
        let id = format!("{method}{}DispatchQuery", if alias { "Api" } else { "" });
        let summary = if read {
            "Namespace info, or query dispatch with worker"
        } else {
            "Query dispatch: the worker receives / and the other parameters"
        };
        let mut op = operation("dispatch", summary, id, dispatch_responses(read));
        op["parameters"].as_array_mut().expect("parameters").push(json!({
            "name": "worker",
            "in": "query",
            "required": !read,
            "description": "The worker to send the request to; the other query parameters go with it.",
            "schema": worker_name_schema()
        }));
        if read {
            op["security"] = json!([{}, { "adminToken": [] }]);
        }
        op["description"] = json!(format!(
            "With `worker`: query dispatch. {ANY_METHOD} Without it, `GET` and `HEAD` describe the \
             namespace (admin only when `admin_token_sha256` is set). {ALIASES}"
        ));
        hide_repeats(&mut op, alias, &method);
        item.insert(method, op);
    }
    Value::Object(item)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::pipeline::host::HostClass;
    use crate::pipeline::route::{Resolution, RouteKind, resolve};

    fn described_paths() -> Vec<String> {
        document()["paths"].as_object().unwrap().keys().cloned().collect()
    }

    /// A concrete request path for a described path template.
    fn instance(template: &str) -> String {
        if DISPATCH_PREFIXES.contains(&template) {
            return format!("{template}?worker=hello");
        }
        template.replace("{worker}", "hello").replace("{path}", "some/where")
    }

    fn config() -> Config {
        Config::from_lookup(|name| (name == "workers").then(|| "hello,echo".to_string())).unwrap()
    }

    #[test]
    fn tenant_limits_are_documented_on_every_dispatch_operation() {
        let document = document();
        for (template, item) in document["paths"].as_object().unwrap() {
            if !template.contains("dispatch") || EXPLAIN_PATHS.contains(&template.as_str()) {
                continue;
            }
            for (method, operation) in item.as_object().unwrap() {
                let responses = &operation["responses"];
                let limited = &responses["429"];
                for header in ["Retry-After", "RateLimit-Policy", "RateLimit"] {
                    assert!(
                        limited["headers"][header].is_object(),
                        "{method} {template}: 429 {header}"
                    );
                }
                assert!(
                    responses["503"]["headers"]["Retry-After"].is_object(),
                    "{method} {template}"
                );
                assert!(
                    responses["503"]["description"]
                        .as_str()
                        .unwrap()
                        .contains("worker_unavailable"),
                    "{method} {template}"
                );
            }
        }
        for header in ["RetryAfter", "RateLimitPolicy", "RateLimit"] {
            assert!(document["components"]["headers"][header].is_object(), "{header}");
        }
    }

    #[test]
    fn every_described_path_is_served_by_every_described_method() {
        let document = document();
        for (template, item) in document["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                let method = method.to_ascii_uppercase();
                let resolution = resolve(&HostClass::Dispatcher, &method, &instance(template), &config());
                assert!(
                    resolution.is_ok(),
                    "{method} {template} is described but the router answers {resolution:?}"
                );
            }
        }
    }

    #[test]
    fn every_route_the_router_serves_is_described() {
        let described = described_paths();
        for route in API_ROUTES {
            assert!(
                described.contains(&route.path.to_string()),
                "{} is not described",
                route.path
            );
        }
        for prefix in DISPATCH_PREFIXES {
            for path in [
                prefix.to_string(),
                format!("{prefix}/{{worker}}"),
                format!("{prefix}/{{worker}}/{{path}}"),
            ] {
                assert!(described.contains(&path), "{path} is not described");
            }
        }
        for path in EXPLAIN_PATHS {
            assert!(described.contains(&path.to_string()), "{path} is not described");
        }
        assert_eq!(
            described.len(),
            API_ROUTES.len() + 3 * DISPATCH_PREFIXES.len() + EXPLAIN_PATHS.len()
        );
    }

    #[test]
    fn paths_near_described_ones_are_not_served() {
        for path in [
            "/healthz",
            "/health/",
            "/docs/other.js",
            "/openapi.yaml",
            "/favicon.png",
            "//",
            "/index.html",
            "/api",
        ] {
            let resolution = resolve(&HostClass::Dispatcher, "GET", path, &config());
            assert_eq!(resolution, Err(DispatchError::NotFound), "{path}");
        }
    }

    #[test]
    fn docs_routes_go_to_the_docs_component_unchanged() {
        let resolution = resolve(&HostClass::Dispatcher, "GET", "/docs?x=1", &config()).unwrap();
        match resolution {
            Resolution::Worker {
                worker,
                kind,
                path_and_query,
            } => {
                assert_eq!(worker.as_str(), "docs");
                assert_eq!(kind, RouteKind::Docs);
                assert_eq!(path_and_query, "/docs?x=1");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            resolve(&HostClass::Dispatcher, "POST", "/openapi.json", &config()),
            Err(DispatchError::MethodNotAllowed { allow: "GET, HEAD" })
        );
    }

    #[test]
    fn problem_codes_are_the_error_enum() {
        let document = document();
        let codes = document["components"]["schemas"]["Problem"]["properties"]["code"]["enum"]
            .as_array()
            .unwrap()
            .len();
        assert_eq!(codes, DispatchError::every_kind().len());
        assert_eq!(document["openapi"], "3.1.0");
    }

    #[test]
    fn the_worker_name_schema_accepts_what_the_validator_accepts() {
        let schema = worker_name_schema();
        let pattern = regex::Regex::new(schema["pattern"].as_str().unwrap()).unwrap();
        let reserved: Vec<&str> = schema["not"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let long = "a".repeat(63);
        let too_long = "a".repeat(64);
        for name in [
            "hello", "My-App", "a", "0", "a-b", &long, &too_long, "", "-a", "a-", "a_b", "a.b", "é", "..", "docs",
            "admin", "Admin", "%2e",
        ] {
            let by_schema = pattern.is_match(name) && !reserved.contains(&name);
            let parsed = crate::pipeline::worker_name::WorkerName::parse(name, &[]);
            // The schema describes the canonical form: what the validator accepts and leaves as is.
            let by_validator = parsed.is_ok_and(|parsed| parsed.as_str() == name);
            assert_eq!(by_schema, by_validator, "{name:?}");
        }
    }
}
