//! The OpenAPI document at `/api/openapi.json`: OpenAPI 3.1, read back with a parser other
//! than the one that wrote it, and naming exactly the endpoints the router serves.

use std::collections::{BTreeMap, BTreeSet};

use oas3::spec::{ObjectOrReference, ParameterIn, Schema, SecurityScheme};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use unlock_protocol::ErrorCode;

use crate::helpers::*;

const API_ERROR: &str = "#/components/schemas/ApiError";

/// The document as served, as JSON and as `oas3` reads it.
async fn document(app: &TestApp) -> (Value, oas3::Spec) {
    let reply = app.get("/api/openapi.json").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("content-type"), "application/json");
    let json = reply.json();
    let spec = oas3::from_json(String::from_utf8(reply.body).unwrap())
        .unwrap_or_else(|error| panic!("not an OpenAPI 3.1 document: {error}"));
    (json, spec)
}

/// The router's endpoints, as `(METHOD, path)`.
fn routed() -> BTreeSet<(String, String)> {
    let routes = unlock_server::http::routes();
    let set: BTreeSet<_> = routes
        .iter()
        .map(|(method, path)| (method.to_string(), (*path).to_owned()))
        .collect();
    assert_eq!(set.len(), routes.len(), "an endpoint is listed twice");
    set
}

/// `{name}` segments of a path.
fn path_parameters(path: &str) -> BTreeSet<String> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(str::to_owned)
        .collect()
}

/// A concrete URL path for a templated one.
fn concrete(path: &str) -> String {
    path.replace("{id}", HOLDER)
        .replace("{email}", "someone%40trust.example")
        .replace("{domain}", DOMAIN)
}

/// Every `$ref` anywhere in the document.
fn refs<'a>(value: &'a Value, found: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("$ref", Value::String(target)) => found.push(target),
                    _ => refs(value, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| refs(item, found)),
        _ => {}
    }
}

#[tokio::test]
async fn the_document_is_openapi_3_1_about_this_service() {
    let app = spawn_app().await;
    let (json, spec) = document(&app).await;
    assert_eq!(json["openapi"], "3.1.0");
    spec.validate_version().expect("an OpenAPI 3.1.x version");
    assert_eq!(spec.info.title, "Smartcard self-service unlock");
    assert_eq!(spec.info.version, env!("CARGO_PKG_VERSION"));

    let components = spec.components.as_ref().expect("components");
    let cookies: BTreeMap<&str, (String, String)> = components
        .security_schemes
        .iter()
        .map(|(name, scheme)| match scheme {
            ObjectOrReference::Object(SecurityScheme::ApiKey {
                name: n, location, ..
            }) => (name.as_str(), (location.clone(), n.clone())),
            other => panic!("{name}: {other:?}"),
        })
        .collect();
    assert_eq!(
        cookies,
        BTreeMap::from([
            ("journey_cookie", ("cookie".into(), "unlock_journey".into())),
            ("staff_cookie", ("cookie".into(), "unlock_staff".into())),
        ])
    );

    // Every reference resolves, and every schema with it.
    let mut found = Vec::new();
    refs(&json, &mut found);
    assert!(found.contains(&API_ERROR));
    for target in found {
        let name = target
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("a reference outside the schemas: {target}"));
        assert!(components.schemas.contains_key(name), "{target}");
    }
    for (name, schema) in &components.schemas {
        schema
            .resolve(&spec)
            .unwrap_or_else(|error| panic!("{name}: {error}"));
    }

    // The error codes are the protocol's, all of them.
    let codes: BTreeSet<&str> = json["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .expect("ErrorCode is an enum of strings")
        .iter()
        .map(|code| code.as_str().unwrap())
        .collect();
    let expected: BTreeSet<&str> = ErrorCode::ALL.into_iter().map(ErrorCode::as_str).collect();
    assert_eq!(codes, expected);
}

#[tokio::test]
async fn the_document_and_the_router_name_the_same_endpoints() {
    let app = spawn_app().await;
    let (_, spec) = document(&app).await;
    let documented: BTreeSet<(String, String)> = spec
        .operations()
        .map(|(path, method, _)| (method.to_string(), path))
        .collect();
    assert_eq!(documented.len(), spec.operations().count());
    let routed = routed();
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(
        undocumented.is_empty() && unrouted.is_empty(),
        "routed but not documented: {undocumented:?}; documented but not routed: {unrouted:?}"
    );
    for probe in ["/healthz", "/readyz", "/api/openapi.json"] {
        assert!(
            routed.contains(&("GET".to_owned(), probe.to_owned())),
            "{probe}"
        );
    }

    // The running server answers each endpoint, and refuses every other method on its path.
    let mut methods: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (method, path) in &routed {
        methods
            .entry(path.clone())
            .or_default()
            .insert(method.clone());
    }
    for (path, allowed) in &methods {
        for method in [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ] {
            let reply = read(
                app.client
                    .request(method.clone(), app.url(&concrete(path)))
                    .send()
                    .await
                    .expect("send"),
            )
            .await;
            let code = if reply.body.starts_with(b"{") {
                reply.code()
            } else {
                String::new()
            };
            if allowed.contains(method.as_str()) {
                assert!(
                    reply.status != StatusCode::METHOD_NOT_ALLOWED && code != "not_found",
                    "{method} {path}: {} {code}",
                    reply.status
                );
            } else {
                assert_refused(&reply, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
            }
        }
    }
}

#[tokio::test]
async fn every_operation_has_its_responses_and_every_refusal_an_api_error() {
    let app = spawn_app().await;
    let (_, spec) = document(&app).await;
    let schemes: BTreeSet<&str> = spec
        .components
        .as_ref()
        .expect("components")
        .security_schemes
        .keys()
        .map(String::as_str)
        .collect();
    let tags: BTreeSet<&str> = spec.tags.iter().map(|tag| tag.name.as_str()).collect();
    assert_eq!(tags, BTreeSet::from(["holder", "staff", "health", "meta"]));
    let mut ids = BTreeSet::new();
    for (path, method, operation) in spec.operations() {
        let at = format!("{method} {path}");
        let id = operation.operation_id.clone().expect(&at);
        assert!(ids.insert(id), "{at}: operationId used twice");
        assert!(operation.summary.is_some(), "{at}: no summary");
        assert!(!operation.tags.is_empty(), "{at}: no tag");
        for tag in &operation.tags {
            assert!(tags.contains(tag.as_str()), "{at}: tag {tag}");
        }
        for requirement in &operation.security {
            for scheme in requirement.0.keys() {
                assert!(schemes.contains(scheme.as_str()), "{at}: scheme {scheme}");
            }
        }
        let declared: BTreeSet<String> = operation
            .parameters(&spec)
            .expect(&at)
            .into_iter()
            .filter(|parameter| parameter.location == ParameterIn::Path)
            .map(|parameter| parameter.name)
            .collect();
        assert_eq!(declared, path_parameters(&path), "{at}: path parameters");

        let responses = operation.responses(&spec);
        assert_eq!(
            responses.len(),
            operation.responses.as_ref().map_or(0, |r| r.len()),
            "{at}: a response does not resolve"
        );
        assert!(
            responses.keys().any(|status| status.starts_with('2')),
            "{at}: no success response"
        );
        for (status, response) in &responses {
            assert!(
                status.len() == 3 && status.bytes().all(|b| b.is_ascii_digit()),
                "{at}: status {status}"
            );
            if !(status.starts_with('4') || status.starts_with('5')) {
                continue;
            }
            let media: Vec<&String> = response.content.keys().collect();
            assert_eq!(media, ["application/json"], "{at} {status}");
            match response.content["application/json"].schema.as_ref() {
                Some(Schema::Object(schema)) => match schema.as_ref() {
                    ObjectOrReference::Ref { ref_path, .. } => {
                        assert_eq!(ref_path, API_ERROR, "{at} {status}")
                    }
                    other => panic!("{at} {status}: {other:?}"),
                },
                other => panic!("{at} {status}: {other:?}"),
            }
        }
    }
    assert_eq!(ids.len(), unlock_server::http::routes().len());
}
