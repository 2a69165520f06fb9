//! The OpenAPI 3.1 document of the control API, built from the wire types' JSON Schemas so
//! it cannot drift from what the server sends.

use cobox_schema::api;
use schemars::SchemaGenerator;
use schemars::generate::SchemaSettings;
use serde_json::{Value, json};

fn error_responses(r: &mut SchemaGenerator) -> Value {
    let e = r.subschema_for::<api::ApiError>();
    json!({
        "4XX": {"description": "refused; `code` is stable", "content": {"application/json": {"schema": e}}},
        "5XX": {"description": "failed inside the agent", "content": {"application/json": {"schema": e.clone()}}}
    })
}

fn op(
    g: &mut SchemaGenerator,
    summary: &str,
    request: Option<Value>,
    ok: Value,
    ok_type: &str,
) -> Value {
    let mut responses = error_responses(g);
    responses["200"] = json!({"description": "OK", "content": {ok_type: {"schema": ok}}});
    let mut o = json!({"summary": summary, "responses": responses});
    if let Some(req) = request {
        o["requestBody"] =
            json!({"required": true, "content": {"application/json": {"schema": req}}});
    }
    o
}

macro_rules! schema {
    ($g:expr, $t:ty) => {
        serde_json::to_value($g.subschema_for::<$t>()).expect("schemas serialize")
    };
}

/// The document served at `/v1/openapi.json`.
pub fn document() -> Value {
    let mut g = SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = "#/components/schemas/".into())
        .into_generator();
    let status = schema!(g, api::Status);
    let identity = schema!(g, api::Identity);
    let generations = schema!(g, api::Generations);
    let config_req = schema!(g, api::ConfigRequest);
    let plan = schema!(g, api::PlanResponse);
    let apply = schema!(g, api::ApplyResponse);
    let rollback = schema!(g, api::RollbackRequest);
    let prune_list = schema!(g, api::PruneCandidates);
    let prune_req = schema!(g, api::PruneRequest);
    let sync_req = schema!(g, api::SyncRequest);
    let sync = schema!(g, api::SyncResponse);
    let invite_req = schema!(g, api::InviteRequest);
    let invite = schema!(g, api::InviteResponse);
    let inspect_req = schema!(g, api::InviteInspectRequest);
    let inspect = schema!(g, api::InviteInfo);
    let export_req = schema!(g, api::KeyExportRequest);
    let export = schema!(g, api::KeyExportResponse);
    let event = schema!(g, api::Event);
    let mut paths = serde_json::Map::new();
    paths.insert(
        "/v1/status".into(),
        json!({"get": op(&mut g, "conditions of every resource, the running generation, the last invalid edit", None, status, "application/json")}),
    );
    paths.insert(
        "/v1/identity".into(),
        json!({"get": op(&mut g, "the device's public key", None, identity, "application/json")}),
    );
    paths.insert(
        "/v1/generations".into(),
        json!({"get": op(&mut g, "accepted configs, newest first", None, generations, "application/json")}),
    );
    paths.insert(
        "/v1/plan".into(),
        json!({"post": op(&mut g, "dry run: what applying the config would change now", Some(config_req.clone()), plan, "application/json")}),
    );
    paths.insert(
        "/v1/apply".into(),
        json!({"post": op(&mut g, "accept the config as the next generation (written to the agent's config file) and reconcile", Some(config_req), apply.clone(), "application/json")}),
    );
    paths.insert(
        "/v1/rollback".into(),
        json!({"post": op(&mut g, "run an earlier generation's config again, as a new generation", Some(rollback), apply, "application/json")}),
    );
    paths.insert(
        "/v1/sync".into(),
        json!({"post": op(&mut g, "replicate a space or seed now, outside its windows, until it is in step or the time is up", Some(sync_req), sync, "application/json")}),
    );
    paths.insert(
        "/v1/prune".into(),
        json!({
            "get": op(&mut g, "spaces with data here that the config no longer declares", None, prune_list.clone(), "application/json"),
            "post": op(&mut g, "delete the data of these undeclared spaces", Some(prune_req), prune_list, "application/json"),
        }),
    );
    paths.insert(
        "/v1/invites".into(),
        json!({"post": op(&mut g, "create an invite code for one device", Some(invite_req), invite, "application/json")}),
    );
    paths.insert(
        "/v1/invites/inspect".into(),
        json!({"post": op(&mut g, "what an invite code grants this device", Some(inspect_req), inspect, "application/json")}),
    );
    paths.insert(
        "/v1/keys/export".into(),
        json!({"post": op(&mut g, "paper keys (secret): only with `confirm: true`", Some(export_req), export, "application/json")}),
    );
    let mut events = op(
        &mut g,
        "server-sent events: `id` is the event id, `data` an Event as JSON",
        None,
        event,
        "text/event-stream",
    );
    events["parameters"] = json!([
        {"name": "after", "in": "query", "schema": {"type": "integer", "minimum": 0}, "description": "only events with a greater id"},
        {"name": "follow", "in": "query", "schema": {"type": "boolean"}, "description": "keep streaming new events"}
    ]);
    paths.insert("/v1/events".into(), json!({ "get": events }));
    paths.insert(
        "/v1/openapi.json".into(),
        json!({"get": op(&mut g, "this document", None, json!({"type": "object"}), "application/json")}),
    );
    let schemas = g.take_definitions(true);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "coboxd control API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "HTTP/JSON on the agent's unix socket (mode 0600). Errors are ApiError objects with a stable code."
        },
        "paths": paths,
        "components": {"schemas": schemas}
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::server::ROUTES;

    /// Every `$ref` in `v` points at a schema the document defines.
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r.clone());
                }
                m.values().for_each(|x| refs(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }

    #[test]
    fn the_document_lists_exactly_the_served_routes_and_resolves_every_reference() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        let mut documented: Vec<(String, String)> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(p, ops)| {
                ops.as_object()
                    .unwrap()
                    .keys()
                    .filter(|k| *k != "parameters")
                    .map(move |m| (m.clone(), p.clone()))
            })
            .collect();
        documented.sort();
        let mut served: Vec<(String, String)> = ROUTES
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        served.sort();
        assert_eq!(documented, served);
        let mut all = Vec::new();
        refs(&doc, &mut all);
        assert!(!all.is_empty());
        for r in all {
            let name = r
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("unexpected ref {r}"));
            assert!(
                doc["components"]["schemas"].get(name).is_some(),
                "{r} is not defined"
            );
        }
    }
}
